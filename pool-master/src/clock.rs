//! The clocks, read in one place. The pool state never reads a clock
//! itself: the async shell reads both here and passes them in ([`Now`]), so
//! every transition can be replayed at any time in unit tests.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock now, ms since the Unix epoch (0 before 1970, saturating far
/// in the future).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One reading of both clocks, handed to a state transition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    /// The monotonic clock: report deadlines, load ages, app holds.
    pub(crate) at: Instant,
    /// The wall clock, ms since the Unix epoch: what the dashboard shows
    /// and the state directory keeps (down records outlive a restart).
    pub(crate) ms: u64,
}

impl Now {
    /// Reads both clocks.
    pub(crate) fn read() -> Self {
        Now {
            at: Instant::now(),
            ms: now_ms(),
        }
    }
}
