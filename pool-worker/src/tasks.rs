//! Where the node's tasks run: the control runtime, one `TaskTracker` for
//! all of them, and the node's root `CancellationToken`.
//!
//! Every part that spawns holds a clone of [`Tasks`]; nothing in the crate
//! calls `tokio::spawn`. When the node stops, `node.rs` cancels the token
//! (every long-running loop selects on it, and every connection's token is
//! a child of it), closes the tracker and waits for it to drain, so no task
//! outlives its node.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's spawner. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Tasks {
    /// Where [`Tasks::spawn`] runs tasks: the control runtime, never the
    /// threads of the processes, except for a spawner made by
    /// [`Tasks::on`] (for an in-process node, the caller's runtime).
    ctl: Handle,
    /// Every task spawned through [`Tasks::spawn`]; the node waits for it
    /// to be empty when it stops.
    tracker: TaskTracker,
    /// The node's root token: cancelled when the node stops (gracefully,
    /// after the ordered part, or at once on abort).
    token: CancellationToken,
}

impl Tasks {
    /// A spawner onto `ctl` with a fresh tracker and root token.
    pub(crate) fn new(ctl: Handle) -> Self {
        Tasks {
            ctl,
            tracker: TaskTracker::new(),
            token: CancellationToken::new(),
        }
    }

    /// The same tracker and token, spawning onto `handle` instead (the
    /// process runtime, for connections from other workers: `peer.rs`).
    pub(crate) fn on(&self, handle: Handle) -> Tasks {
        Tasks {
            ctl: handle,
            tracker: self.tracker.clone(),
            token: self.token.clone(),
        }
    }

    /// The runtime this spawner runs tasks on.
    pub(crate) fn handle(&self) -> &Handle {
        &self.ctl
    }

    /// Runs `task` on this spawner's runtime, tracked.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn_on(task, &self.ctl);
    }

    /// The node's root token.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The last step of a stop: cancels the token, then waits up to
    /// `timeout` for every tracked task to end; true if they all did.
    pub(crate) async fn stop(&self, timeout: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
    }
}
