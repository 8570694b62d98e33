//! The wall clock, read in one place. The pool state never reads a clock
//! itself: the async shell reads it here and passes the time in, so the
//! state's transitions can be replayed with any time in unit tests.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock now, ms since the Unix epoch (0 before 1970, saturating far
/// in the future).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
