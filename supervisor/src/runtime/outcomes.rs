//! Cumulative counts of how processes ended on this runtime and of the
//! spawn requests it refused, by a small fixed set of reason classes, for
//! the node's load report (and from there the master's metrics).
//!
//! One relaxed atomic per class: the exit path adds one without a lock and
//! without touching a shared cache line more than once; readers (one report
//! a second) take a snapshot that may be a few exits behind, which is all
//! a counter needs.

use std::sync::atomic::{AtomicU64, Ordering};

use pool_proto::{ErrorCode, ExitReason, ProcessOutcomes};

#[cfg(test)]
mod tests;

/// Exit reason classes, in the order of [`Outcomes::exits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExitClass {
    Normal = 0,
    Shutdown = 1,
    Killed = 2,
    Error = 3,
    NoConnection = 4,
    Other = 5,
}

impl ExitClass {
    fn of(reason: &ExitReason) -> Self {
        match reason {
            ExitReason::Normal => ExitClass::Normal,
            ExitReason::Shutdown | ExitReason::ShutdownWith(_) => ExitClass::Shutdown,
            ExitReason::Killed | ExitReason::Kill => ExitClass::Killed,
            ExitReason::Panic(_) | ExitReason::Error(_) => ExitClass::Error,
            ExitReason::NoConnection => ExitClass::NoConnection,
            ExitReason::NoProc => ExitClass::Other,
        }
    }
}

/// The counters of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Exits per [`ExitClass`].
    exits: [AtomicU64; 6],
    /// Refused spawn requests: unknown function, bad arguments, other.
    spawn_failures: [AtomicU64; 3],
}

impl Outcomes {
    /// Counts one exit with `reason`.
    pub(crate) fn exited(&self, reason: &ExitReason) {
        self.exits[ExitClass::of(reason) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one spawn request refused with `code`.
    pub(crate) fn spawn_refused(&self, code: ErrorCode) {
        let i = match code {
            ErrorCode::UnknownFunction => 0,
            ErrorCode::BadArgs => 1,
            _ => 2,
        };
        self.spawn_failures[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> ProcessOutcomes {
        let e = |c: ExitClass| self.exits[c as usize].load(Ordering::Relaxed);
        let s = |i: usize| self.spawn_failures[i].load(Ordering::Relaxed);
        ProcessOutcomes {
            exits_normal: e(ExitClass::Normal),
            exits_shutdown: e(ExitClass::Shutdown),
            exits_killed: e(ExitClass::Killed),
            exits_error: e(ExitClass::Error),
            exits_noconnection: e(ExitClass::NoConnection),
            exits_other: e(ExitClass::Other),
            spawn_unknown_function: s(0),
            spawn_bad_args: s(1),
            spawn_other: s(2),
        }
    }
}
