//! The runtime's view of the pool: [`Router`] implements the supervisor
//! crate's `RemoteRouter` over peer connections, [`PoolPlacer`] its `Placer`
//! by asking the master.
//!
//! Both hold a weak reference to the node: the runtime owns them and the
//! node owns the runtime.

use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{
    ErrorCode, LabelReq, Msg, NodeId, PlaceQuery, Placement, RemoteError, Request, Response,
    SpawnRequest,
};
use supervisor::remote::{Placer, Reach, RemoteRouter, SpawnReply};

use crate::node::Shared;

/// Carries process signals to other nodes.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) shared: Weak<Shared>,
}

impl RemoteRouter for Router {
    fn send_frame(&self, node: NodeId, frame: Msg) {
        if let Some(s) = self.shared.upgrade() {
            s.send_frame(node, frame);
        }
    }

    fn reach(&self, node: NodeId) -> Reach {
        match self.shared.upgrade() {
            Some(s) => s.members.read().map_or(Reach::Unknown, |m| m.reach(node)),
            None => Reach::Down,
        }
    }

    fn spawn(&self, node: NodeId, req: SpawnRequest, reply: SpawnReply) {
        if let Some(s) = self.shared.upgrade() {
            s.spawn_on_peer(node, req, reply);
        }
    }

    fn drained(&self, node: NodeId) -> Option<BoxFuture<'static, ()>> {
        self.shared.upgrade()?.peer_drained(node)
    }
}

/// Places supervisors' children through the master.
#[derive(Debug)]
pub(crate) struct PoolPlacer {
    pub(crate) shared: Weak<Shared>,
}

/// The placement query for a child's `placement`.
pub(crate) fn query_for(
    placement: &Placement,
    exclude: &[NodeId],
) -> Result<PlaceQuery, RemoteError> {
    let mut q = PlaceQuery {
        count: 1,
        exclude: exclude.to_vec(),
        commit: true,
        ..PlaceQuery::default()
    };
    match placement {
        Placement::Local | Placement::LeastLoaded => {}
        Placement::Node(n) => q.node = Some(n.clone()),
        Placement::Key(k) => q.key = Some(k.clone()),
        Placement::Label(l) => {
            q.labels = LabelReq::parse_list(l)
                .map_err(|e| RemoteError::new(ErrorCode::BadSpec, e.to_string()))?;
        }
    }
    Ok(q)
}

impl Placer for PoolPlacer {
    fn place(
        &self,
        placement: &Placement,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let shared = self.shared.clone();
        let query = query_for(placement, exclude);
        async move {
            let query = query?;
            let shared: Arc<Shared> = shared
                .upgrade()
                .ok_or_else(|| RemoteError::new(ErrorCode::Internal, "the node is stopping"))?;
            match shared.master_request(Request::Place(query)).await {
                Ok(Response::Placed(p)) => p.first().map(|p| p.id).ok_or_else(|| {
                    RemoteError::new(ErrorCode::NoNode, "the master placed nothing")
                }),
                Ok(Response::Error(e)) => Err(e),
                Ok(other) => Err(RemoteError::new(
                    ErrorCode::Internal,
                    format!("unexpected answer to Place: {other:?}"),
                )),
                Err(e) => Err(RemoteError::new(ErrorCode::NoNode, e.to_string())),
            }
        }
        .boxed()
    }
}
