//! Pending children, the pure part (`docs/semantics.md`, `pending.*`): how
//! a failed start is classified — *transient* (it may pass: no node can
//! take the child now, its node was lost during the start) or *permanent*
//! (OTP's start failure) — and the capped, jittered exponential backoff of
//! the retries of a pending child. No I/O and no clock: the supervisor
//! process passes the attempt number and the jitter in.
//!
//! A transient failure never fails a supervisor's start and never counts
//! against its restart intensity; the child waits *pending* and is retried
//! on this backoff and at once when the pool's membership changes.

use std::time::Duration;

use pool_proto::ExitReason;

use crate::error::Error;

/// Why a child's start failed, as the supervisor acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFailure {
    /// It may pass by itself: the child waits pending, with this reason in
    /// words (e.g. `placement label zone=z2 failed: no live node has label
    /// zone=z2`), and is retried with backoff. Not counted.
    Transient(String),
    /// OTP's start failure (`{error, R}`, a crash of the start function,
    /// an unknown function, arguments that do not fit): at init it fails
    /// the start, during a restart it is retried at once and counted.
    Permanent(ExitReason),
}

impl StartFailure {
    /// A failure of the runtime's spawn or of a placement: transient iff
    /// [`Error::is_transient`] says so; its text either way.
    pub fn from_error(context: &str, e: &Error) -> Self {
        let text = if context.is_empty() {
            e.to_string()
        } else {
            format!("{context}: {e}")
        };
        if e.is_transient() {
            StartFailure::Transient(text)
        } else {
            StartFailure::Permanent(ExitReason::Error(text))
        }
    }

    /// A start function's own failure reason: `noconnection` (a custom
    /// start whose node was lost under it) may pass; anything else is the
    /// child's own failure.
    pub fn from_reason(reason: ExitReason) -> Self {
        match reason {
            ExitReason::NoConnection => StartFailure::Transient(
                "the node the child was being started on was lost (noconnection)".into(),
            ),
            r => StartFailure::Permanent(r),
        }
    }

    /// The failure as an exit reason (for events and OTP-shaped answers).
    pub fn reason(&self) -> ExitReason {
        match self {
            StartFailure::Transient(t) => ExitReason::Error(t.clone()),
            StartFailure::Permanent(r) => r.clone(),
        }
    }
}

impl From<ExitReason> for StartFailure {
    fn from(reason: ExitReason) -> Self {
        StartFailure::from_reason(reason)
    }
}

/// The retry schedule of a pending child: `first`, doubling per attempt,
/// never above `cap`, each delay shortened by up to a quarter at random so
/// that the supervisors of a pool that all lost the same node do not ask
/// the master in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub first: Duration,
    /// The longest delay between two retries.
    pub cap: Duration,
}

/// 100 ms doubling to 2 s: a node that joins is usually seen through
/// [`Runtime::nodes_changed`](crate::Runtime::nodes_changed) at once, so
/// the backoff only has to bound the wait when that signal is missing,
/// while keeping a lost label's placements to one query every 2 s or so.
pub const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_secs(2),
};

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry),
    /// with `jitter` in `[0, 1)` (clamped): `min(cap, first·2^attempt)`,
    /// less `jitter` times a quarter of it. Never more than `cap`, never
    /// less than three quarters of the unjittered delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::supervisor::pending::BACKOFF;
    ///
    /// assert_eq!(BACKOFF.delay(0, 0.0), Duration::from_millis(100));
    /// assert_eq!(BACKOFF.delay(3, 0.0), Duration::from_millis(800));
    /// assert_eq!(BACKOFF.delay(30, 0.0), Duration::from_secs(2));
    /// assert_eq!(BACKOFF.delay(30, 0.5), Duration::from_millis(1750));
    /// ```
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let base = self.first.saturating_mul(factor).min(self.cap);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(1.0 - jitter / 4.0)
    }
}

#[cfg(test)]
mod tests;
