//! The master's requests that need answers from nodes — starting and
//! stopping application roots, the `ListProcesses` fan-out, `TreeShow` —
//! as async functions over the shared state. Sessions (the wire) and the
//! HTTP API call the same functions, so both give the same answers.
//!
//! Each function locks the pool only between awaits: it decides under the
//! lock, releases it, asks the node(s), then applies the answer under the
//! lock again, checking that what it decided still holds (a node may have
//! gone down meanwhile).

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use pool_proto::{
    AppStatus, AppSummary, ErrorCode, NodeKind, ProcessInfo, RemoteError, Request, Response,
    TreeSpec, TreeView,
};
use tracing::{debug, info, warn};

use crate::apps::stopped_view;
use crate::clock::now_ms;
use crate::outbox::RequestError;
use crate::shared::Shared;
use crate::state::{Gone, StartOrder};

/// What became of a `StartApp`.
#[derive(Debug)]
pub(crate) enum Started {
    /// The root runs.
    Root,
    /// The node went away before answering; the root is (or will be)
    /// started elsewhere.
    Moved,
    /// The app failed: the node refused or did not answer.
    Failed(RemoteError),
}

/// Sends `StartApp` for an assignment and applies the answer.
pub(crate) async fn start_root(shared: &Arc<Shared>, order: StartOrder) -> Started {
    let StartOrder {
        assignment: a,
        peer,
    } = order;
    info!(app = %a.app, generation = a.generation, node = %peer.name, "starting application root");
    let res = peer
        .request(
            Request::StartApp {
                app: a.app.clone(),
                generation: a.generation,
                spec: a.spec.clone(),
            },
            shared.config.request_timeout,
        )
        .await;
    let now = Instant::now();
    let mut pool = shared.lock();
    let fail = |pool: &mut crate::shared::PoolGuard<'_>, code, reason: String| {
        warn!(app = %a.app, node = %peer.name, %reason, "application failed to start");
        if pool
            .apps
            .start_failed(&a.app, a.generation, a.node, reason.clone())
        {
            pool.dirty = true;
            pool.activity.app_failed(&a.app, &reason, now_ms());
        }
        Started::Failed(RemoteError::new(code, reason))
    };
    match res {
        Ok(Response::Spawned(root)) => {
            if pool.apps.started(&a.app, a.generation, a.node, root) {
                pool.dirty = true;
                info!(app = %a.app, generation = a.generation, %root, node = %peer.name, "application root running");
                pool.activity
                    .app_started(&a.app, a.generation, &peer.name, now_ms());
            } else {
                // The app moved on meanwhile (stopped, or restarted
                // elsewhere): this root must not run beside the other.
                let elsewhere = pool.apps.get(&a.app).is_none_or(|app| {
                    app.rec.status != AppStatus::Running || app.rec.node != Some(a.node)
                });
                if elsewhere {
                    let peer = peer.clone();
                    let app = a.app.clone();
                    let timeout = shared.config.stop_timeout;
                    shared.tracker.spawn(async move {
                        let _ = peer.request(Request::StopApp { app }, timeout).await;
                    });
                }
            }
            Started::Root
        }
        Ok(Response::Error(e)) => fail(
            &mut pool,
            e.code,
            format!("the root could not start on {}: {}", peer.name, e.message),
        ),
        Ok(other) => fail(
            &mut pool,
            ErrorCode::Internal,
            format!(
                "{} answered StartApp with {other:?} instead of Spawned",
                peer.name
            ),
        ),
        Err(RequestError::Timeout) => {
            let timeout = shared.config.request_timeout;
            let failed = fail(
                &mut pool,
                ErrorCode::Internal,
                format!("{} did not start the root within {timeout:?}", peer.name),
            );
            // It may still start it late: ask it to stop.
            let (peer, app) = (peer.clone(), a.app.clone());
            let stop = shared.config.stop_timeout;
            shared.tracker.spawn(async move {
                let _ = peer.request(Request::StopApp { app }, stop).await;
            });
            failed
        }
        Err(RequestError::Closed) => {
            // If this was still the node's session, its close declares
            // the node down and that re-places the root. Only when a
            // new session of the same node replaced this one is the
            // assignment void with the node still live: place again.
            let replaced = pool
                .members
                .get(a.node)
                .is_some_and(|m| m.peer.session != peer.session);
            if replaced
                && !shared.token.is_cancelled()
                && pool.apps.unassign(&a.app, a.generation, a.node)
            {
                pool.dirty = true;
                let orders = pool.schedule(now);
                drop(pool);
                spawn_starts(shared, orders);
            }
            Started::Moved
        }
    }
}

/// `TreeStart`: checks and records the tree, saves it, starts its root.
pub(crate) async fn tree_start(
    shared: &Arc<Shared>,
    spec: TreeSpec,
    source: Option<String>,
    text: Option<String>,
) -> Result<Vec<AppSummary>, RemoteError> {
    let id = spec.supervisor.id.clone();
    let (order, saved) = {
        let mut pool = shared.lock();
        let order = pool.tree_start(spec, source, text.as_deref())?;
        (order, pool.save())
    };
    // Stored before it runs anywhere: a master restart keeps it.
    shared.persister.flush(saved).await;
    match start_root(shared, order).await {
        Started::Failed(e) => Err(e),
        Started::Root | Started::Moved => {
            let pool = shared.lock();
            Ok(pool
                .apps
                .summary(&id, |n| pool.name_of(n))
                .into_iter()
                .collect())
        }
    }
}

/// `TreeStop`: stops the root in order (if it runs), then marks the app
/// stopped and saves it.
pub(crate) async fn tree_stop(
    shared: &Arc<Shared>,
    id: &str,
) -> Result<Vec<AppSummary>, RemoteError> {
    let peer = {
        let mut pool = shared.lock();
        match pool.apps.stop_begin(id) {
            Err(()) => return Err(not_found(id)),
            Ok(None) => {
                pool.dirty = true;
                None
            }
            Ok(Some(node)) => pool.members.get(node).map(|m| m.peer.clone()),
        }
    };
    if let Some(peer) = peer {
        info!(app = %id, node = %peer.name, "stopping application root");
        match peer
            .request(
                Request::StopApp { app: id.to_owned() },
                shared.config.stop_timeout,
            )
            .await
        {
            Ok(Response::Ok) => {}
            Ok(other) => {
                warn!(app = %id, node = %peer.name, answer = ?other, "StopApp was not answered Ok; marking the app stopped anyway")
            }
            Err(e) => {
                warn!(app = %id, node = %peer.name, error = ?e, "StopApp got no answer; marking the app stopped anyway")
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

/// `TreeShow`: the live tree from the root's node (node ids replaced by
/// names), or the tree with everything stopped if no root runs.
pub(crate) async fn tree_show(shared: &Arc<Shared>, id: &str) -> Result<TreeView, RemoteError> {
    tree_show_within(shared, id, shared.config.request_timeout).await
}

/// [`tree_show`], waiting at most `timeout` for the
/// root's node (the dashboard waits less than `poolctl`).
pub(crate) async fn tree_show_within(
    shared: &Arc<Shared>,
    id: &str,
    timeout: std::time::Duration,
) -> Result<TreeView, RemoteError> {
    let (peer, root) = {
        let pool = shared.lock();
        let app = pool.apps.get(id).ok_or_else(|| not_found(id))?;
        let target = match (app.rec.status, app.rec.node, app.rec.root) {
            (AppStatus::Running, Some(node), Some(root)) => pool
                .members
                .get(node)
                .filter(|m| m.live)
                .map(|m| (m.peer.clone(), root)),
            _ => None,
        };
        match target {
            Some(t) => t,
            None => return Ok(stopped_view(&app.rec.spec)),
        }
    };
    match peer.request(Request::Inspect { pid: root }, timeout).await {
        Ok(Response::Tree(mut view)) => {
            shared.lock().name_nodes(&mut view);
            Ok(view)
        }
        Ok(Response::Error(e)) => Err(e),
        Ok(other) => Err(RemoteError::new(
            ErrorCode::Internal,
            format!(
                "{} answered Inspect with {other:?} instead of a tree",
                peer.name
            ),
        )),
        Err(e) => Err(RemoteError::new(
            ErrorCode::Internal,
            format!(
                "{} did not show the tree ({}): try again",
                peer.name,
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
    let peers = {
        let pool = shared.lock();
        match node {
            Some(name) => match pool.members.by_name(name) {
                Some(m) if m.live && m.info.kind == NodeKind::Worker => vec![m.peer.clone()],
                _ => {
                    return Err(RemoteError::new(
                        ErrorCode::UnknownNode,
                        format!(
                            "node {name} is not a live worker (live workers: {})",
                            pool.live_worker_names()
                        ),
                    ));
                }
            },
            None => pool
                .members
                .live_workers()
                .map(|m| m.peer.clone())
                .collect(),
        }
    };
    let timeout = shared.config.list_timeout;
    let answers = join_all(
        peers
            .iter()
            .map(|p| p.request(Request::LocalProcesses, timeout)),
    )
    .await;
    let mut all = Vec::new();
    for (peer, answer) in peers.iter().zip(answers) {
        match answer {
            Ok(Response::Processes(list)) => all.extend(list),
            other => debug!(node = %peer.name, answer = ?other, "left out of the process list"),
        }
    }
    if let Some(name) = node {
        all.retain(|p| p.node == name);
    }
    all.sort_by(|a, b| a.node.cmp(&b.node).then(a.pid.cmp(&b.pid)));
    Ok(all)
}

/// Runs start orders in the background, on the master's tracker.
pub(crate) fn spawn_starts(shared: &Arc<Shared>, orders: Vec<StartOrder>) {
    for order in orders {
        let s = shared.clone();
        shared.tracker.spawn(async move {
            let _ = start_root(&s, order).await;
        });
    }
}

/// Finishes nodes that went down: closes their connections and starts
/// their roots elsewhere.
pub(crate) fn finish_downs(shared: &Arc<Shared>, gone: Vec<Gone>) {
    for g in gone {
        g.peer.closed.cancel();
        spawn_starts(shared, g.starts);
    }
}

/// The error for an unknown app.
fn not_found(id: &str) -> RemoteError {
    RemoteError::new(
        ErrorCode::NotFound,
        format!("no tree {id}: `poolctl tree ls` lists the trees the master keeps"),
    )
}
