//! When a pending app tries again: capped exponential backoff, 100 ms
//! doubling to 2 s. A leaf of `apps`: plain data, time as an argument.
//!
//! Why these numbers: the first retry comes before a person would notice
//! (a root whose node died during its start is usually placed again within
//! a report interval), and the cap keeps a pool with no capable node from
//! sending a `StartApp` more than every 2 s per app — while a node that
//! joins or becomes ready retries every pending app at once anyway.

use std::time::{Duration, Instant};

/// The first delay.
pub(crate) const FIRST: Duration = Duration::from_millis(100);
/// The longest delay.
pub(crate) const CAP: Duration = Duration::from_secs(2);

/// A pending app's retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Attempts that failed so far (1 after the first).
    pub(crate) failures: u32,
    /// Not before this instant.
    pub(crate) at: Instant,
}

impl Retry {
    /// The schedule after one more failure at `now`, following `before`
    /// (none: the first failure).
    pub(crate) fn after(before: Option<Retry>, now: Instant) -> Retry {
        let failures = before.map_or(0, |r| r.failures).saturating_add(1);
        Retry {
            failures,
            at: now + delay(failures),
        }
    }
}

/// The delay after `failures` failed attempts: 100 ms, 200 ms, 400 ms, ...
/// up to 2 s.
pub(crate) fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(CAP)
}
