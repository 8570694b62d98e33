//! [`NodeEvent`]: what the parts ask of the node task (`node.rs`), which
//! owns every part and so is the one place where a step that touches
//! several of them (fencing, a node going down, application roots) runs.
//!
//! The master link sends these (it must not call the parts that use its
//! `MasterHandle`: they depend on it). The node task handles them in order,
//! one at a time; long work (starting a tree) is spawned so the loop stays
//! responsive.

use pool_proto::{Fence, NodeId, Pid, ReqId, TreeSpec};
use tokio::sync::oneshot;

/// An event for the node task.
#[derive(Debug)]
pub(crate) enum NodeEvent {
    /// The master declared this incarnation down while it was cut off:
    /// fence (break links with other nodes, stop the listed roots, forget
    /// the lost names), then answer `done` so the link sends `Ready`.
    Fence {
        /// What to stop and forget.
        fence: Fence,
        /// Answered once fenced; dropped if the node stops first.
        done: oneshot::Sender<()>,
    },
    /// The master says `node` is down: close its connections and fire
    /// `noconnection` on links and monitors towards it.
    NodeDown(NodeId),
    /// The master asks this node to run an application root; the answer
    /// goes back as the response to request `id`.
    StartApp {
        /// The master's request id.
        id: ReqId,
        /// Application id.
        app: String,
        /// Its generation.
        generation: u64,
        /// The tree.
        spec: Box<TreeSpec>,
    },
    /// The lease ran out and this node is the one cut off from the
    /// master (docs/semantics.md, "The worker's lease"): stop the
    /// supervised work it hosts at once — kill every application root and
    /// act as if every other node went down — before the master restarts
    /// that work elsewhere.
    CutOff,
    /// The master asks this node to watch `pid`, which holds the global
    /// name `name` another node registered; the answer goes back as the
    /// response to request `id`.
    WatchName {
        /// The master's request id.
        id: ReqId,
        /// The name.
        name: String,
        /// Its holder, a process of this node.
        pid: Pid,
    },
    /// The master asks this node to stop an application root in order.
    StopApp {
        /// The master's request id.
        id: ReqId,
        /// Application id.
        app: String,
    },
}
