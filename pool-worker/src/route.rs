//! The runtime's view of the other nodes: [`Router`] implements the
//! supervisor crate's `RemoteRouter` over the peer connections.
//!
//! The runtime owns the router and the node owns the runtime, so the router
//! holds the peers weakly: once the node is gone, frames are dropped and
//! every node reads as down.
//!
//! Owns no state and no task; reads `members`, calls `peer`. Start-up:
//! `node.rs` hands it to the runtime (`set_router`) before any process can
//! reach another node; shutdown: nothing of its own.

use std::sync::Weak;

use futures_util::future::BoxFuture;
use pool_proto::{Msg, NodeId, SpawnRequest};
use supervisor::remote::{Reach, RemoteRouter, SpawnReply};

use crate::members::{self, SharedMembers};
use crate::peer::Peers;

/// Carries process signals to other nodes.
#[derive(Debug)]
pub(crate) struct Router {
    /// The connections (weak: see the module docs).
    peers: Weak<Peers>,
    /// Who is up, who was declared down.
    members: SharedMembers,
}

impl Router {
    /// A router over `peers`, answering reachability from `members`.
    pub(crate) fn new(peers: Weak<Peers>, members: SharedMembers) -> Self {
        Router { peers, members }
    }
}

impl RemoteRouter for Router {
    fn send_frame(&self, node: NodeId, frame: Msg) {
        if let Some(p) = self.peers.upgrade() {
            p.send_frame(node, frame);
        }
    }

    fn reach(&self, node: NodeId) -> Reach {
        if self.peers.strong_count() == 0 {
            return Reach::Down;
        }
        members::read(&self.members).reach(node)
    }

    fn spawn(&self, node: NodeId, req: SpawnRequest, reply: SpawnReply) {
        if let Some(p) = self.peers.upgrade() {
            p.spawn_on(node, req, reply);
        }
    }

    fn drained(&self, node: NodeId) -> Option<BoxFuture<'static, ()>> {
        self.peers.upgrade()?.drained(node)
    }
}
