//! Application roots this node runs for the master (pool applications),
//! and the events it reports about them.
//!
//! A root is an unlinked supervisor started from the tree the master sent.
//! A watcher process monitors it; when the root exits, the master hears
//! `RootExited` with the reason. Child restarts inside the tree are
//! forwarded as `ChildRestarted` events (for metrics and the dashboard).

use std::sync::Arc;
use std::time::Duration;

use pool_proto::{
    AppEvent, AppEventKind, ErrorCode, ExitReason, Msg, Pid, RemoteError, Response, RunningApp,
    TreeSpec,
};
use supervisor::supervisor as sup;
use supervisor::{RuntimeEvent, SpawnOpts};

use crate::node::Shared;

/// An application root running here.
#[derive(Debug, Clone)]
pub(crate) struct HostedApp {
    pub(crate) generation: u64,
    pub(crate) root: Pid,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The roots this node runs, for Join.
    pub(crate) fn running_apps(&self) -> Vec<RunningApp> {
        lock(&self.apps)
            .iter()
            .map(|(app, h)| RunningApp {
                app: app.clone(),
                generation: h.generation,
                root: h.root,
            })
            .collect()
    }

    /// Starts an application root (master's `StartApp`).
    pub(crate) async fn start_app(
        self: &Arc<Self>,
        app: String,
        generation: u64,
        spec: TreeSpec,
    ) -> Response {
        if let Some(h) = lock(&self.apps).get(&app)
            && h.generation == generation
        {
            // The master asked twice (it did not see our answer).
            return Response::Spawned(h.root);
        }
        if lock(&self.apps).contains_key(&app) {
            // An older generation runs here: replace it.
            self.stop_app(&app).await;
        }
        match sup::start_tree(&self.rt, spec).await {
            Ok(root) => {
                lock(&self.apps).insert(app.clone(), HostedApp { generation, root });
                self.watch_root(app.clone(), generation, root);
                tracing::info!(%app, generation, %root, "application root started");
                Response::Spawned(root)
            }
            Err(e) => {
                tracing::error!(%app, cause = %e, "application root failed to start");
                Response::Error(RemoteError::new(ErrorCode::BadSpec, e.to_string()))
            }
        }
    }

    /// Reports the root's exit to the master when it happens.
    fn watch_root(self: &Arc<Self>, app: String, generation: u64, root: Pid) {
        let shared = Arc::downgrade(self);
        self.rt.spawn_opts(
            SpawnOpts::new().function("app.watch").owner(app.clone()),
            move |mut ctx| async move {
                let mref = ctx.monitor(root);
                let Some(down) = ctx.wait_down(mref, None).await else {
                    return;
                };
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let ours = {
                    let mut apps = lock(&shared.apps);
                    let ours = apps.get(&app).is_some_and(|h| h.root == root);
                    if ours {
                        apps.remove(&app);
                    }
                    ours
                };
                if ours {
                    tracing::info!(%app, reason = %down.reason, "application root exited");
                    shared.master_push(Msg::AppEvent(AppEvent {
                        app,
                        generation,
                        kind: AppEventKind::RootExited(down.reason),
                    }));
                }
            },
        );
    }

    /// Stops an application root in order and waits for it.
    pub(crate) async fn stop_app(self: &Arc<Self>, app: &str) {
        let root = lock(&self.apps).get(app).map(|h| h.root);
        let Some(root) = root else {
            return;
        };
        if let Err(e) = sup::stop(&self.rt, root).await {
            tracing::warn!(%app, cause = %e, "stopping the application root failed; killing it");
            self.rt.kill(root);
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), self.rt.wait(root)).await;
    }

    /// Forwards supervisor events of application trees to the master.
    pub(crate) async fn forward_events(self: Arc<Self>) {
        let mut events = self.rt.events();
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = self.token.cancelled() => return,
            };
            match ev {
                Ok(RuntimeEvent::ChildRestarted {
                    path,
                    child,
                    new,
                    reason,
                    ..
                }) => {
                    let app = path.split('/').next().unwrap_or_default().to_owned();
                    let generation = lock(&self.apps).get(&app).map(|h| h.generation);
                    if let Some(generation) = generation {
                        self.master_push(Msg::AppEvent(AppEvent {
                            app,
                            generation,
                            kind: AppEventKind::ChildRestarted {
                                supervisor: path,
                                child,
                                pid: new,
                                reason,
                            },
                        }));
                    }
                }
                Ok(RuntimeEvent::SupervisorGaveUp { .. }) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "supervisor events were dropped");
                }
                Err(_) => return,
            }
        }
    }

    /// The tree view of supervisor `pid` of this node.
    pub(crate) async fn inspect_local(&self, pid: Pid) -> Response {
        if !self.rt.is_alive(pid) {
            return Response::Error(RemoteError::new(
                ErrorCode::NotFound,
                format!("no supervisor {pid} on this node"),
            ));
        }
        match sup::inspect(&self.rt, pid).await {
            Ok(view) => Response::Tree(view),
            Err(e) => Response::Error(RemoteError::new(ErrorCode::Internal, e.to_string())),
        }
    }

    /// Waits until no process of this node is linked to another node, or
    /// `timeout` passes.
    pub(crate) async fn wait_remote_linked_gone(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.rt.linked_to_other_nodes().is_empty() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The reason hosted children are stopped with when their node stops
/// gracefully: their supervisors elsewhere restart them per their type.
pub(crate) const NODE_STOP_REASON: ExitReason = ExitReason::Shutdown;
