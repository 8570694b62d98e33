//! Worker-side placement: [`PoolPlacer`] implements the supervisor crate's
//! `Placer` by asking the master where a child should run.
//!
//! Owns no task; calls the master through its `MasterHandle`, and holds the
//! membership-change signal ([`NodeChanges`]) that wakes supervisors with
//! pending children when a node joins (the master link fires it through
//! `Runtime::nodes_changed` on `NodeUp`). Start-up: `node.rs` hands it to
//! the runtime (`set_placer`); once the node stops, placements fail at
//! once ("the node is stopping").

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{
    ErrorCode, LabelReq, NodeId, PlaceQuery, Placement, RemoteError, Request, Response, WasmName,
};
use supervisor::remote::{NodeChanges, Placer};

use crate::error::Error;
use crate::master_link::MasterHandle;

/// Places supervisors' children through the master.
#[derive(Debug)]
pub(crate) struct PoolPlacer {
    /// Where placement queries go.
    master: MasterHandle,
    /// Fired when a node joins; supervisors with pending children hold
    /// receivers. Nothing to stop: receivers just stop waking.
    changes: NodeChanges,
}

impl PoolPlacer {
    /// A placer asking the master behind `master`.
    pub(crate) fn new(master: MasterHandle) -> Self {
        PoolPlacer {
            master,
            changes: NodeChanges::new(),
        }
    }
}

/// The placement query for a child's `placement`; with `function`, only
/// nodes that register it are chosen.
pub(crate) fn query_for(
    placement: &Placement,
    function: Option<&str>,
    exclude: &[NodeId],
) -> Result<PlaceQuery, RemoteError> {
    let mut q = PlaceQuery {
        count: 1,
        exclude: exclude.to_vec(),
        commit: true,
        function: function.map(str::to_owned),
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

impl PoolPlacer {
    /// Asks the master for a node for `placement` (running `function`, if
    /// known).
    fn ask(
        &self,
        placement: &Placement,
        function: Option<&str>,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let master = self.master.clone();
        let query = query_for(placement, function, exclude);
        async move {
            let query = query?;
            match master.request(Request::Place(query)).await {
                Ok(Response::Placed(p)) => p.first().map(|p| p.id).ok_or_else(|| {
                    RemoteError::new(ErrorCode::NoNode, "the master placed nothing")
                }),
                Ok(Response::Error(e)) => Err(e),
                Ok(other) => Err(RemoteError::new(
                    ErrorCode::Internal,
                    format!("unexpected answer to Place: {other:?}"),
                )),
                Err(Error::ShuttingDown) => Err(RemoteError::new(
                    ErrorCode::Internal,
                    "the node is stopping",
                )),
                Err(e) => Err(RemoteError::new(ErrorCode::NoNode, e.to_string())),
            }
        }
        .boxed()
    }
}

impl Placer for PoolPlacer {
    fn place(
        &self,
        placement: &Placement,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        self.ask(placement, None, exclude)
    }

    /// No live node with the function is `NoNode` from the master: the
    /// child waits pending until one joins.
    fn place_function(
        &self,
        placement: &Placement,
        function: &str,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        self.ask(placement, Some(function), exclude)
    }

    /// A named wasm form (`app.wasm:count`) is resolved by the master to
    /// the module pushed under that name now; any other name (a native
    /// one, a canonical wasm one) is answered unchanged, without a round
    /// trip. A master that cannot be reached is `NoNode`, so the child
    /// waits pending rather than failing.
    fn resolve_function(&self, function: &str) -> BoxFuture<'static, Result<String, RemoteError>> {
        let function = function.to_owned();
        if !matches!(WasmName::parse(&function), Some(WasmName::Named { .. })) {
            return futures_util::future::ready(Ok(function)).boxed();
        }
        let master = self.master.clone();
        async move { resolve_via(&master, function).await }.boxed()
    }

    fn node_changes(&self) -> Option<NodeChanges> {
        Some(self.changes.clone())
    }
}

/// Asks the master for the canonical name of `function`
/// (`ResolveFunction`), with the failure as a supervisor's start needs it.
pub(crate) async fn resolve_via(
    master: &MasterHandle,
    function: String,
) -> Result<String, RemoteError> {
    match master.request(Request::ResolveFunction { function }).await {
        Ok(Response::Function(f)) => Ok(f),
        Ok(other) => Err(RemoteError::new(
            ErrorCode::Internal,
            format!("unexpected answer to ResolveFunction: {other:?}"),
        )),
        Err(Error::Remote(e)) => Err(e),
        Err(Error::ShuttingDown) => Err(RemoteError::new(
            ErrorCode::Internal,
            "the node is stopping",
        )),
        Err(e) => Err(RemoteError::new(ErrorCode::NoNode, e.to_string())),
    }
}
