//! The seam to other nodes, for whoever implements it: [`RemoteRouter`],
//! which pool-worker implements over its peer connections (and tests
//! implement in memory), [`Placer`], which chooses the node of a placed
//! child, and what goes with them ([`Reach`], [`SpawnReply`], [`SpawnGate`],
//! [`NodeChanges`], [`note_busy`], and [`batch_sends`], which holds a
//! process's sends to a node until its poll ends).
//!
//! The runtime calls the router for every operation on a pid of another
//! node. Each operation has a default implementation that turns it into the
//! node-to-node frame of `pool-proto` and hands it to
//! [`RemoteRouter::send_frame`]; the other node applies the frame with
//! [`Runtime::handle_remote`](crate::Runtime::handle_remote) (and a spawn
//! request with [`Runtime::handle_spawn`](crate::Runtime::handle_spawn)). A
//! router must keep frames to one node in the order it was given them: that
//! is what keeps message order between two processes, and a process's
//! messages ahead of its exit signal.
//!
//! This file names nothing of the runtime: the runtime holds a router, so
//! the router's side of the seam sits below it.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use pool_proto::{
    ExitReason, Msg, NodeId, Payload, Pid, Placement, Ref, RemoteError, SendMsg, SpawnRequest,
};
use tokio::sync::{oneshot, watch};

mod batch;

pub use batch::{Flush, batch_sends, defer_flush};

thread_local! {
    /// A node whose outgoing queue a send of the running process found
    /// over its busy limit ([`note_busy`]); taken by the process's next
    /// `yield_now`, cleared when a process poll begins.
    static BUSY: Cell<Option<NodeId>> = const { Cell::new(None) };
}

/// Called by a router from [`RemoteRouter::send_frame`] (on the sending
/// process's thread) when the queue towards `node` is over its busy limit:
/// the process's next [`Ctx::yield_now`](crate::Ctx::yield_now) waits for
/// [`RemoteRouter::drained`] before it continues. This is how a sender that
/// outruns the connection is slowed to the pace the peer reads at, as
/// Erlang suspends a process on a busy distribution port, instead of
/// queueing without bound.
pub fn note_busy(node: NodeId) {
    BUSY.with(|b| b.set(Some(node)));
}

/// Takes the node noted by [`note_busy`] on this thread.
pub(crate) fn take_busy() -> Option<NodeId> {
    BUSY.with(|b| b.take())
}

/// Forgets a busy node noted by another process's poll on this thread.
pub(crate) fn clear_busy() {
    BUSY.with(|b| b.set(None));
}

/// Whether a node can be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A live member of the pool.
    Up,
    /// A node that was a member and is gone: its pids give `noconnection`.
    Down,
    /// A node never seen (or an old incarnation): its pids give `noproc`.
    Unknown,
}

/// Holds back a process spawned for another node until the answer to the
/// spawn request has been queued, so that the requester always learns the
/// pid before any signal from the new process. Dropping it opens the gate
/// ([`Runtime::handle_spawn`](crate::Runtime::handle_spawn) returns it).
#[derive(Debug)]
pub struct SpawnGate(
    /// Never sent on: dropping it completes the held-back process's wait.
    #[allow(dead_code)]
    oneshot::Sender<()>,
);

impl SpawnGate {
    /// A gate and the receiver the held-back process waits on: the
    /// receiver completes (with an error) when the gate is dropped.
    pub(crate) fn new() -> (SpawnGate, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (SpawnGate(tx), rx)
    }
}

/// The answer slot of a remote spawn. The router must call
/// [`complete`](SpawnReply::complete) when the answer arrives, before it
/// applies any later frame from that node; dropping it unanswered completes
/// it with a "connection lost" error.
pub struct SpawnReply {
    done: Option<SpawnCallback>,
}

/// What a [`SpawnReply`] calls with the answer.
type SpawnCallback = Box<dyn FnOnce(Result<Pid, RemoteError>) + Send>;

impl SpawnReply {
    /// A reply slot that calls `f` with the answer.
    pub fn new(f: impl FnOnce(Result<Pid, RemoteError>) + Send + 'static) -> Self {
        SpawnReply {
            done: Some(Box::new(f)),
        }
    }

    /// Delivers the answer.
    pub fn complete(mut self, result: Result<Pid, RemoteError>) {
        if let Some(f) = self.done.take() {
            f(result);
        }
    }
}

impl Drop for SpawnReply {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            f(Err(RemoteError::new(
                pool_proto::ErrorCode::UnknownNode,
                "the connection to the node was lost before it answered the spawn; retry on another node",
            )));
        }
    }
}

impl fmt::Debug for SpawnReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpawnReply")
    }
}

/// Carries process operations to other nodes. See the module docs.
pub trait RemoteRouter: Send + Sync + 'static {
    /// Queues a node-to-node frame for `node`, in order.
    fn send_frame(&self, node: NodeId, frame: Msg);

    /// Whether `node` can be reached.
    fn reach(&self, node: NodeId) -> Reach;

    /// Asks `node` to spawn a process; the answer goes to `reply`.
    fn spawn(&self, node: NodeId, req: SpawnRequest, reply: SpawnReply);

    /// When the queue towards `node` is over its busy limit (see
    /// [`note_busy`]), a future that resolves once it is back under it, or
    /// once the connection is gone; `None` when it is not busy.
    fn drained(&self, node: NodeId) -> Option<BoxFuture<'static, ()>> {
        let _ = node;
        None
    }

    /// A message to a process (or a name) on `node`.
    fn send(&self, node: NodeId, msg: SendMsg) {
        self.send_frame(node, Msg::Send(msg));
    }

    /// Link local `from` with remote `to`.
    fn link(&self, from: Pid, to: Pid) {
        self.send_frame(to.node(), Msg::Link { from, to });
    }

    /// Remove the link between local `from` and remote `to`.
    fn unlink(&self, from: Pid, to: Pid) {
        self.send_frame(to.node(), Msg::Unlink { from, to });
    }

    /// Local `watcher` monitors remote `target`.
    fn monitor(&self, watcher: Pid, target: Pid, mref: Ref, with_result: bool) {
        self.send_frame(
            target.node(),
            Msg::Monitor {
                watcher,
                target,
                mref,
                with_result,
            },
        );
    }

    /// Remove a monitor of local `watcher` on remote `target`.
    fn demonitor(&self, watcher: Pid, target: Pid, mref: Ref) {
        self.send_frame(
            target.node(),
            Msg::Demonitor {
                watcher,
                target,
                mref,
            },
        );
    }

    /// An exit signal from local `from` to remote `to`.
    fn exit(&self, from: Pid, to: Pid, reason: ExitReason, explicit: bool) {
        self.send_frame(
            to.node(),
            Msg::Exit {
                from,
                to,
                reason,
                explicit,
            },
        );
    }

    /// A monitor of remote `watcher` on local `pid` fired.
    fn down(&self, watcher: Pid, mref: Ref, pid: Pid, reason: ExitReason, result: Option<Payload>) {
        self.send_frame(
            watcher.node(),
            Msg::Down {
                watcher,
                mref,
                pid,
                reason,
                result,
            },
        );
    }
}

/// Chooses the node a supervisor's child runs on, for children whose spec
/// has a `placement` (pool-worker implements it by asking the master).
pub trait Placer: Send + Sync + 'static {
    /// The node for `placement`, never one of `exclude` (e.g. the node a
    /// child was just lost with).
    fn place(
        &self,
        placement: &Placement,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>>;

    /// [`place`](Self::place) for a child that runs `function`: a placer
    /// that knows which nodes register which functions chooses only among
    /// those (a supervisor places its children through this). The default
    /// ignores the function.
    fn place_function(
        &self,
        placement: &Placement,
        function: &str,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let _ = function;
        self.place(placement, exclude)
    }

    /// The canonical name of `function`, which a supervisor asks once per
    /// child, at its first start, and keeps for every restart of that
    /// child (here or elsewhere): a named wasm form (`app.wasm:count`)
    /// becomes the hash of the module pushed under that name now
    /// (`<hash>:count`), so a restart never silently upgrades. The default
    /// answers the name unchanged, at once (a ready future, no round
    /// trip); pool-worker's placer asks the master for named wasm forms
    /// only.
    fn resolve_function(&self, function: &str) -> BoxFuture<'static, Result<String, RemoteError>> {
        let function = function.to_owned();
        Box::pin(std::future::ready(Ok(function)))
    }

    /// The signal of the pool's membership changes, if this placer has
    /// one: supervisors whose children wait *pending* (no node could take
    /// them) retry at once when it fires, instead of at their next backoff
    /// step. [`Runtime::nodes_changed`](crate::Runtime::nodes_changed)
    /// fires it. The default has none: pending children are retried on
    /// their backoff alone.
    fn node_changes(&self) -> Option<NodeChanges> {
        None
    }
}

/// A counter of the pool's membership changes, for a [`Placer`] to hand
/// out ([`Placer::node_changes`]): [`notify`](NodeChanges::notify) when a
/// node joins, and every supervisor with pending children, each holding a
/// [`subscribe`](NodeChanges::subscribe)d receiver, wakes and retries them.
/// Cheap to clone; clones share the counter.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::remote::NodeChanges;
///
/// let changes = NodeChanges::new();
/// let mut rx = changes.subscribe();
/// changes.notify();
/// rx.changed().await.unwrap();
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct NodeChanges {
    /// The change counter; receivers wake when it moves. Closed only when
    /// the last clone is dropped, and then waiting receivers simply never
    /// wake again (their backoff still runs).
    tx: Arc<watch::Sender<u64>>,
}

impl NodeChanges {
    /// A counter at zero, with no receiver yet.
    pub fn new() -> Self {
        NodeChanges {
            tx: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The membership changed: wakes every receiver.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes at the next [`notify`](Self::notify) (changes
    /// before this call are already seen).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
