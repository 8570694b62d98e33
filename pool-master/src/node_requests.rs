//! The master's requests that wait for answers from nodes — starting and
//! stopping application roots, the `ListProcesses` fan-out, `TreeShow`,
//! `TreeStart`, `TreeStop` — as async functions over [`Shared`]. Sessions
//! (the wire) and the HTTP API call the same functions, so both give the
//! same answers; the state's [`NodeRequest`] effects run here too
//! ([`spawn`]).
//!
//! Each function holds the lock only between awaits:
//!
//! 1. decide under the lock (which node, which connection);
//! 2. release it and ask the node(s) over their [`NodeLink`]s;
//! 3. hand the answer to the state under the lock again, which checks that
//!    what was decided still holds (a node may have gone down meanwhile)
//!    and may ask for more requests.
//!
//! Every task spawned here is on the master's tracker; a request whose
//! connection closes fails at once ([`RequestError::Closed`]), so none
//! outlives the master's stop by more than its timeout.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use pool_proto::{
    AppStatus, AppSummary, ErrorCode, NodeKind, ProcessInfo, RemoteError, Request, Response,
    TreeSpec, TreeView,
};
use tracing::{debug, info, warn};

use crate::apps::{stopped_view, view};
use crate::clock::{Now, now_ms};
use crate::outbox::{NodeLink, RequestError};
use crate::shared::Shared;
use crate::state::{NodeRequest, StartAnswer, StartOrder, Started, unknown_tree};

/// Runs the requests a transition asked for, each as a task on the
/// master's tracker. Call it after the lock is released.
pub(crate) fn spawn(shared: &Arc<Shared>, requests: Vec<NodeRequest>) {
    for request in requests {
        let s = shared.clone();
        match request {
            NodeRequest::StartRoot(order) => {
                shared.tracker.spawn(async move {
                    let _ = start_root(&s, order).await;
                });
            }
            NodeRequest::WatchName { to, name, pid } => {
                let Some(link) = shared.lock().link(to) else {
                    // Its node is gone: so is the process, and the name
                    // went with the node (or goes now).
                    shared
                        .lock()
                        .watch_failed(&name, pid, "its node's connection is gone");
                    continue;
                };
                let timeout = shared.config.request_timeout;
                shared.tracker.spawn(async move {
                    let why = match link
                        .request(
                            Request::WatchName {
                                name: name.clone(),
                                pid,
                            },
                            timeout,
                        )
                        .await
                    {
                        Ok(Response::Ok) => return,
                        Ok(Response::Error(e)) => e.message,
                        Ok(other) => format!("it answered {other:?}"),
                        // No answer in time: a hung node is declared down
                        // soon, and its names with it.
                        Err(RequestError::Timeout) => return,
                        Err(RequestError::Closed) => "its node's connection closed".to_owned(),
                    };
                    s.lock().watch_failed(&name, pid, &why);
                });
            }
            NodeRequest::StopApp { to, app } => {
                let Some(link) = shared.lock().link(to) else {
                    continue; // its connection is gone, and the root with it
                };
                let timeout = shared.config.stop_timeout;
                shared.tracker.spawn(async move {
                    let _ = link.request(Request::StopApp { app }, timeout).await;
                });
            }
        }
    }
}

/// Sends `StartApp` for an assignment and hands the answer to the state.
pub(crate) async fn start_root(shared: &Arc<Shared>, order: StartOrder) -> Started {
    let a = &order.assignment;
    let name = &order.name;
    info!(app = %a.app, generation = a.generation, node = %name, "starting application root");
    let link = shared.lock().link(order.to);
    let timeout = shared.config.request_timeout;
    let res = match link {
        Some(link) => {
            link.request(
                Request::StartApp {
                    app: a.app.clone(),
                    generation: a.generation,
                    spec: a.spec.clone(),
                },
                timeout,
            )
            .await
        }
        None => Err(RequestError::Closed),
    };
    let answer = match res {
        Ok(Response::Spawned(root)) => StartAnswer::Spawned(root),
        Ok(Response::Error(e)) => StartAnswer::Failed {
            code: e.code,
            reason: format!("the root could not start on {name}: {}", e.message),
        },
        Ok(other) => StartAnswer::Failed {
            code: ErrorCode::Internal,
            reason: format!("{name} answered StartApp with {other:?} instead of Spawned"),
        },
        Err(RequestError::Timeout) => StartAnswer::Timeout(timeout),
        // The master is stopping: nothing is placed again.
        Err(RequestError::Closed) if shared.token.is_cancelled() => return Started::Moved,
        Err(RequestError::Closed) => StartAnswer::Closed,
    };
    let (started, requests) = shared.transition(|s| s.start_answered(&order, answer, Now::read()));
    spawn(shared, requests);
    started
}

/// `TreeStart`: checks and records the tree, saves it, starts its root.
pub(crate) async fn tree_start(
    shared: &Arc<Shared>,
    spec: TreeSpec,
    source: Option<String>,
    text: Option<String>,
) -> Result<Vec<AppSummary>, RemoteError> {
    let id = spec.supervisor.id.clone();
    check_modules(shared, &spec, source.as_deref())?;
    let (order, saved) = {
        let mut pool = shared.lock();
        let order = pool.tree_start(spec, source, text.as_deref())?;
        (order, pool.save())
    };
    // Stored before it runs anywhere: a master restart keeps it.
    shared.persister.flush(saved).await;
    match start_root(shared, order).await {
        Started::Failed(e) => Err(e),
        // A pending app is kept and retried: the answer lists it, pending
        // with the reason.
        Started::Root | Started::Moved | Started::Pending(_) => {
            let pool = shared.lock();
            Ok(pool
                .apps
                .summary(&id, |n| pool.name_of(n))
                .into_iter()
                .collect())
        }
    }
}

/// Checks that every wasm function a tree names is stored in the pool
/// (its children resolve them at their first start, on their node): a
/// module never pushed fails the start now, naming the field.
fn check_modules(
    shared: &Shared,
    spec: &TreeSpec,
    source: Option<&str>,
) -> Result<(), RemoteError> {
    for (field, f) in crate::apps::functions(spec) {
        if pool_proto::WasmName::is_wasm(&f)
            && let Err(e) = shared.modules.resolve(&f)
        {
            return Err(RemoteError::new(
                ErrorCode::BadSpec,
                format!("{}: {field}: {}", source.unwrap_or("<tree>"), e.message),
            ));
        }
    }
    Ok(())
}

/// `TreeStop`: stops the root in order (if it runs), then marks the app
/// stopped and saves it.
pub(crate) async fn tree_stop(
    shared: &Arc<Shared>,
    id: &str,
) -> Result<Vec<AppSummary>, RemoteError> {
    let link = {
        let mut pool = shared.lock();
        match pool.apps.stop_begin(id) {
            Err(()) => return Err(not_found(id)),
            Ok(None) => {
                pool.dirty = true;
                None
            }
            Ok(Some(node)) => pool.link_of(node),
        }
    };
    if let Some(link) = link {
        let name = &link.conn.name;
        info!(app = %id, node = %name, "stopping application root");
        match link
            .request(
                Request::StopApp { app: id.to_owned() },
                shared.config.stop_timeout,
            )
            .await
        {
            Ok(Response::Ok) => {}
            Ok(other) => {
                warn!(app = %id, node = %name, answer = ?other, "StopApp was not answered Ok; marking the app stopped anyway")
            }
            Err(e) => {
                warn!(app = %id, node = %name, error = ?e, "StopApp got no answer; marking the app stopped anyway")
            }
        }
    }
    let (summary, saved) = {
        let mut pool = shared.lock();
        pool.apps.stop_done(id);
        pool.dirty = true;
        pool.activity.app_stopped(id, now_ms());
        let saved = pool.save();
        (pool.apps.summary(id, |n| pool.name_of(n)), saved)
    };
    shared.persister.flush(saved).await;
    Ok(summary.into_iter().collect())
}

/// `TreeRestart`: a failed or stopped app runs again; saved, then its
/// root started. Answers its summary once the start is answered (running,
/// or pending with the reason), or the node's refusal.
pub(crate) async fn tree_restart(
    shared: &Arc<Shared>,
    id: &str,
) -> Result<Vec<AppSummary>, RemoteError> {
    let (requests, saved) = {
        let mut pool = shared.lock();
        let effects = pool.tree_restart(id, Now::read())?;
        let requests = pool.apply(effects);
        (requests, pool.save())
    };
    shared.persister.flush(saved).await;
    // Its own start is awaited; others placed by the same pass are not.
    let (mine, others): (Vec<NodeRequest>, Vec<NodeRequest>) = requests
        .into_iter()
        .partition(|r| matches!(r, NodeRequest::StartRoot(o) if o.assignment.app == id));
    spawn(shared, others);
    for request in mine {
        if let NodeRequest::StartRoot(order) = request
            && let Started::Failed(e) = start_root(shared, order).await
        {
            return Err(e);
        }
    }
    let pool = shared.lock();
    Ok(pool
        .apps
        .summary(id, |n| pool.name_of(n))
        .into_iter()
        .collect())
}

/// `TreeRemove`: forgets a failed or stopped app and saves; answers the
/// apps left.
pub(crate) async fn tree_remove(
    shared: &Arc<Shared>,
    id: &str,
) -> Result<Vec<AppSummary>, RemoteError> {
    let (left, saved) = {
        let mut pool = shared.lock();
        pool.tree_remove(id)?;
        pool.activity.app_removed(id, now_ms());
        (pool.app_summaries(), pool.save())
    };
    // Forgotten on disk before the answer: a master restart does not bring
    // it back.
    shared.persister.flush(saved).await;
    Ok(left)
}

/// `TreeShow`: the live tree from the root's node (node ids replaced by
/// names), or the tree from its spec with everything stopped if no root
/// runs; at the top the app's own status and reason (as `tree ls` says
/// them), and the restart counts the master kept laid over the view.
pub(crate) async fn tree_show(shared: &Arc<Shared>, id: &str) -> Result<TreeView, RemoteError> {
    tree_show_within(shared, id, shared.config.request_timeout).await
}

/// [`tree_show`], waiting at most `timeout` for the root's node (the
/// dashboard waits less than `poolctl`).
pub(crate) async fn tree_show_within(
    shared: &Arc<Shared>,
    id: &str,
    timeout: Duration,
) -> Result<TreeView, RemoteError> {
    let (link, root) = {
        let pool = shared.lock();
        let app = pool.apps.get(id).ok_or_else(|| not_found(id))?;
        let target = match (app.rec.status, app.rec.node, app.rec.root) {
            (AppStatus::Running, Some(node), Some(root)) => pool
                .members
                .get(node)
                .filter(|m| m.live)
                .and_then(|m| pool.link(m.session))
                .map(|link| (link, root)),
            _ => None,
        };
        match target {
            Some(t) => t,
            None => {
                let mut view = stopped_view(&app.rec.spec);
                view::set_top(&mut view, app.rec.status, app.rec.reason.as_deref());
                view::overlay_restarts(&mut view, &app.restarts, false);
                return Ok(view);
            }
        }
    };
    let name = &link.conn.name;
    match link.request(Request::Inspect { pid: root }, timeout).await {
        Ok(Response::Tree(mut view)) => {
            let pool = shared.lock();
            pool.name_nodes(&mut view);
            if let Some(app) = pool.apps.get(id) {
                // The app's word at the top, as `tree ls` says it (it may
                // have changed while the node answered).
                view::set_top(&mut view, app.rec.status, app.rec.reason.as_deref());
                view::overlay_restarts(&mut view, &app.restarts, true);
            }
            Ok(*view)
        }
        Ok(Response::Error(e)) => Err(e),
        Ok(other) => Err(RemoteError::new(
            ErrorCode::Internal,
            format!("{name} answered Inspect with {other:?} instead of a tree"),
        )),
        Err(e) => Err(RemoteError::new(
            ErrorCode::Internal,
            format!(
                "{name} did not show the tree ({}): try again",
                match e {
                    RequestError::Timeout => "no answer in time",
                    RequestError::Closed => "its connection closed",
                }
            ),
        )),
    }
}

/// `ListProcesses`: asks every live worker (or the named one) for its
/// processes, concurrently, each within the list timeout, and merges
/// the answers. A worker that does not answer in time is left out.
pub(crate) async fn list_processes(
    shared: &Arc<Shared>,
    node: Option<&str>,
) -> Result<Vec<ProcessInfo>, RemoteError> {
    let links: Vec<Arc<NodeLink>> = {
        let pool = shared.lock();
        match node {
            Some(name) => match pool.members.by_name(name) {
                Some(m) if m.live && m.info.kind == NodeKind::Worker => {
                    pool.link(m.session).into_iter().collect()
                }
                _ => {
                    return Err(RemoteError::new(
                        ErrorCode::UnknownNode,
                        format!(
                            "node {name} is not a live worker (live workers: {})",
                            pool.members.live_worker_names()
                        ),
                    ));
                }
            },
            None => pool
                .members
                .live_workers()
                .filter_map(|m| pool.link(m.session))
                .collect(),
        }
    };
    let timeout = shared.config.list_timeout;
    let answers = join_all(
        links
            .iter()
            .map(|l| l.request(Request::LocalProcesses, timeout)),
    )
    .await;
    let mut all = Vec::new();
    for (link, answer) in links.iter().zip(answers) {
        match answer {
            Ok(Response::Processes(list)) => all.extend(list),
            // The one node asked for did not answer: say so, rather than
            // list it as running nothing.
            other if node.is_some() => {
                return Err(RemoteError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "node {} did not list its processes ({}): try again, or check `poolctl nodes`",
                        link.conn.name,
                        match other {
                            Ok(Response::Error(e)) => e.to_string(),
                            Ok(_) => "an unexpected answer".to_owned(),
                            Err(RequestError::Closed) => "its connection closed".to_owned(),
                            Err(RequestError::Timeout) => format!("no answer within {timeout:?}"),
                        }
                    ),
                ));
            }
            other => {
                debug!(node = %link.conn.name, answer = ?other, "left out of the process list")
            }
        }
    }
    if let Some(name) = node {
        all.retain(|p| p.node == name);
    }
    all.sort_by(|a, b| a.node.cmp(&b.node).then(a.pid.cmp(&b.pid)));
    Ok(all)
}

/// The error for an unknown app.
fn not_found(id: &str) -> RemoteError {
    unknown_tree(id)
}
