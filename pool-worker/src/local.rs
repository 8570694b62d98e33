//! What this node says about its own processes: the rows of `poolctl ps`
//! and the tree view of a local supervisor. A leaf over the process
//! runtime; the master link and the peers both answer with it.

use pool_proto::{ErrorCode, Pid, ProcessInfo, RemoteError, Response};
use supervisor::Runtime;
use supervisor::supervisor as sup;

/// This node's processes, for `poolctl ps` (the short-lived helpers of
/// calls and waits left out).
pub(crate) fn processes(rt: &Runtime, node_name: &str) -> Vec<ProcessInfo> {
    let now = std::time::Instant::now();
    rt.processes()
        .into_iter()
        .filter(|p| p.function != "call" && p.function != "wait")
        .map(|p| ProcessInfo {
            pid: p.pid,
            node: node_name.to_owned(),
            function: p.function,
            status: p.status,
            age_ms: now.saturating_duration_since(p.started).as_millis() as u64,
            mailbox: p.mailbox as u64,
            name: p.name,
            owner: p.owner,
        })
        .collect()
}

/// The tree view of supervisor `pid` of this node.
pub(crate) async fn inspect(rt: &Runtime, pid: Pid) -> Response {
    if !rt.is_alive(pid) {
        return Response::Error(RemoteError::new(
            ErrorCode::NotFound,
            format!("no supervisor {pid} on this node"),
        ));
    }
    match sup::inspect(rt, pid).await {
        Ok(view) => Response::Tree(Box::new(view)),
        Err(e) => Response::Error(RemoteError::new(ErrorCode::Internal, e.to_string())),
    }
}
