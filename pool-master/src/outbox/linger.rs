//! [`Linger`]: when a connection's writer sends its node the membership
//! changes it lacks. At once in a quiet pool; during a burst (a join
//! storm, or every node rejoining a restarted master) the changes gather
//! for a short wait after the last write that carried some, so each node
//! gets one delta per wait rather than one frame per change. The wait
//! ends early for a `Down`, for any other frame, and once the changes
//! gathered reach [`DELTA_CAP`] bytes.
//!
//! Plain data: a function of time and of what the node lacks. The writer
//! (`outbox.rs`) owns one per connection, does the waiting, and asks it
//! again whenever something could change its answer.

use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// How long changes gather after a write that carried some, in a small
/// pool ([`push_linger`] scales it). A burst of joins makes one change per
/// join for every node; without the wait each would cost every connection
/// a `write` of its own (O(n²) system calls, and as many wake-ups on every
/// node, while a 10,000-node pool starts).
pub(crate) const PUSH_LINGER: Duration = Duration::from_millis(100);

/// The longest changes gather ([`push_linger`]): how late a node may
/// learn of a newcomer during a burst.
pub(crate) const MAX_PUSH_LINGER: Duration = Duration::from_secs(1);

/// About the most bytes of changes a writer lets gather before it sends
/// them (between half of it and all of it, see [`CAP_STEP`]): however
/// fast a storm goes, its deltas stay within the writer's kept buffer
/// (`KEEP_BUF`), and a node reads them in steady portions.
pub(crate) const DELTA_CAP: usize = 64 * 1024;

/// Every this many bytes of changes recorded, the feed wakes the writers
/// that let changes gather, so that they can check [`DELTA_CAP`]. A writer
/// sends once it lacks a step's worth; woken at each step, it has less
/// than two steps' worth then (it lacked less than one at the step
/// before).
pub(crate) const CAP_STEP: u64 = DELTA_CAP as u64 / 2;

/// How long changes gather in a pool of `members`: [`PUSH_LINGER`] per
/// 1,000 members (at least one), at most [`MAX_PUSH_LINGER`]. Every
/// connection writes the changes of a burst about once per wait, so the
/// master's writes (and the nodes' wake-ups) per second stay near 10,000
/// whatever the pool's size, rather than growing with it (a fixed wait of
/// a few milliseconds would mean millions of writes a second at 10,000
/// nodes).
pub(crate) fn push_linger(members: usize) -> Duration {
    let thousands = u32::try_from(members / 1000).unwrap_or(u32::MAX).max(1);
    PUSH_LINGER.saturating_mul(thousands).min(MAX_PUSH_LINGER)
}

/// What a node lacks, as its writer sees it when it wakes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lacking {
    /// Changes it lacks.
    pub(crate) changes: u64,
    /// Their encoded bytes.
    pub(crate) bytes: u64,
    /// Whether one of them is a `Down` (never held back: callers of the
    /// node that is gone should hear of it at once).
    pub(crate) down: bool,
    /// Whether other frames are to be written now (the changes go in front
    /// of them, so they cost no write of their own).
    pub(crate) frames: bool,
}

/// What the writer does about the changes its node lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    /// Nothing to send.
    Idle,
    /// Send them now.
    Now,
    /// Let them gather until then (asking again on news before).
    At(Instant),
}

/// One writer's burst state: see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Linger {
    /// When a write last carried changes, and how long changes gather
    /// after it (fixed then, from the pool's size).
    last: Option<(Instant, Duration)>,
}

impl Linger {
    /// Until when changes gather, if a wait is running at `now`.
    pub(crate) fn until(&self, now: Instant) -> Option<Instant> {
        self.last
            .map(|(at, wait)| at + wait)
            .filter(|until| *until > now)
    }

    /// What to do at `now` about what the node lacks.
    pub(crate) fn when(&self, now: Instant, lacking: &Lacking) -> When {
        if lacking.changes == 0 {
            return When::Idle;
        }
        if lacking.down || lacking.frames || lacking.bytes >= CAP_STEP {
            return When::Now;
        }
        match self.until(now) {
            Some(until) => When::At(until),
            None => When::Now,
        }
    }

    /// A write carried changes at `now`, in a pool of `members`: the next
    /// ones gather for [`push_linger`].
    pub(crate) fn sent(&mut self, now: Instant, members: usize) {
        self.last = Some((now, push_linger(members)));
    }
}
