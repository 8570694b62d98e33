//! Frames for a process runtime that polls nothing: the control thread
//! reads them.
//!
//! The connections other workers open to a node are read on its process
//! runtime (`peer.rs`), beside their receivers: a frame read there wakes
//! its receiver on the same thread. But a runtime whose every thread runs
//! a process that computes without awaiting polls neither its tasks nor its
//! reactor, and what arrives meanwhile would wait: a monitor set up on a
//! spinning process would be applied only after it ended (`noproc` instead
//! of the reason it died with), a link from it would not be there when it
//! dies. So every [`TICK`] the control thread looks at the process
//! runtime's threads; when one has been running without a pause since the
//! last look ([`Stall`]), it reads each watched connection whose reader
//! was not polled since the last look, straight from the socket
//! (`pool_proto::transport::read_past_reactor`), and delivers what it finds
//! in order, under the same lock as the reader task.
//!
//! ```text
//! control thread, every TICK:  worker park counts ──> Stall::observe
//!                                   │ a thread busy since the last look
//!                                   v
//!                     for each watched connection: ReadPast::read_past
//!                     (skipped if its reader ran since the last look)
//! ```

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How often the control thread looks at the process runtime. A frame for
/// a stalled runtime waits at most about two ticks.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// A connection whose frames the control thread can read.
pub(crate) trait ReadPast: Send + Sync {
    /// Reads and delivers what the socket holds, unless the connection's
    /// reader ran since the last call (or holds its lock now).
    fn read_past(&self);
}

/// The connections read on the process runtime.
#[derive(Default)]
pub(crate) struct Stalls {
    conns: Mutex<Vec<Weak<dyn ReadPast>>>,
}

impl std::fmt::Debug for Stalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stalls").finish_non_exhaustive()
    }
}

impl Stalls {
    /// Watches `conn` until it is dropped.
    pub(crate) fn watch(&self, conn: Weak<dyn ReadPast>) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    /// Reads past the reactor on every watched connection, forgetting the
    /// dropped ones.
    pub(crate) fn read_past(&self) {
        let live: Vec<Arc<dyn ReadPast>> = {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.retain(|c| c.strong_count() > 0);
            conns.iter().filter_map(Weak::upgrade).collect()
        };
        for c in live {
            c.read_past();
        }
    }
}

/// Whether a runtime's thread has been running without a pause between
/// two looks, from its workers' park/unpark counts (tokio's
/// `worker_park_unpark_count`: odd while the worker is parked, and changed
/// by every park and unpark).
#[derive(Debug, Default)]
pub(crate) struct Stall {
    /// The counts at the previous look.
    last: Vec<u64>,
}

impl Stall {
    /// The counts now: true if a worker was running at the previous look
    /// and has neither parked nor woken since.
    pub(crate) fn observe(&mut self, counts: &[u64]) -> bool {
        let stalled = counts
            .iter()
            .zip(&self.last)
            .any(|(now, before)| now == before && now % 2 == 0);
        self.last.clear();
        self.last.extend_from_slice(counts);
        stalled
    }
}

/// Looks at `proc_rt` every [`TICK`] and reads past its reactor while it
/// stalls, until `token` is cancelled. Runs on the control runtime.
pub(crate) async fn watch(stalls: Arc<Stalls>, proc_rt: Handle, token: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stall = Stall::default();
    let mut counts = Vec::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let m = proc_rt.metrics();
        counts.clear();
        counts.extend((0..m.num_workers()).map(|w| m.worker_park_unpark_count(w)));
        if stall.observe(&counts) {
            stalls.read_past();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_running_between_two_looks_is_a_stall() {
        let mut s = Stall::default();
        // The first look has nothing to compare with.
        assert!(!s.observe(&[4, 7]));
        // Worker 0 ran all along (even, unchanged).
        assert!(s.observe(&[4, 9]));
        // It parked and woke meanwhile: not stalled.
        assert!(!s.observe(&[6, 11]));
    }

    #[test]
    fn a_parked_worker_is_not_a_stall() {
        let mut s = Stall::default();
        assert!(!s.observe(&[5]));
        // Parked (odd) at both looks: idle, not stuck.
        assert!(!s.observe(&[5]));
        assert!(!s.observe(&[5]));
    }

    #[test]
    fn one_stalled_worker_among_busy_ones_is_a_stall() {
        let mut s = Stall::default();
        s.observe(&[2, 2, 2]);
        assert!(s.observe(&[4, 2, 8]));
    }
}
