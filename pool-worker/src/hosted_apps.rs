//! Application roots this node runs for the master (pool applications),
//! and the events it reports about them.
//!
//! A root is an unlinked supervisor started from the tree the master sent.
//! A watcher process monitors it; when the root exits, the master hears
//! `RootExited` with the reason. Child restarts inside the tree are
//! forwarded as `ChildRestarted` events (for metrics and the dashboard).
//!
//! - **Owns** [`HostedApps`]: which roots run here, with their generation.
//! - **Calls** the process runtime (start, stop and watch trees) and the
//!   master ([`MasterHandle`]: pushes of app events).
//! - **Start-up**: `node.rs` makes it, spawns [`HostedApps::forward_events`]
//!   (tracked) and hands it the master's `StartApp`/`StopApp`.
//!   **Shutdown**: the node's graceful stop stops every root in order
//!   ([`HostedApps::stop_all`]); the forwarder ends with the node token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_proto::{
    AppEvent, AppEventKind, ErrorCode, Msg, Pid, RemoteError, Response, RunningApp, TreeSpec,
};
use supervisor::supervisor as sup;
use supervisor::{Runtime, RuntimeEvent, SpawnOpts};
use tokio_util::sync::CancellationToken;

use crate::master_link::MasterHandle;

#[cfg(test)]
mod tests;

/// How long one root may take to stop in order before it is left behind.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// An application root running here.
#[derive(Debug, Clone)]
struct HostedApp {
    /// The generation the master started it as.
    generation: u64,
    /// The root supervisor.
    root: Pid,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The application roots of this node (see the module docs).
#[derive(Debug)]
pub(crate) struct HostedApps {
    /// The process runtime the trees run in.
    rt: Runtime,
    /// Where app events go.
    master: MasterHandle,
    /// The roots running here, by application id; an entry leaves when its
    /// root exits (the watcher removes it).
    apps: Mutex<HashMap<String, HostedApp>>,
    /// Bumped when this node is fenced or cut off: a start that began
    /// before (its `StartApp` came from a master session that has since
    /// given this node up) must not leave a root behind when it ends,
    /// since the master has already placed that app again.
    epoch: AtomicU64,
    /// The roots (app, generation) the last Join listed: the master judged
    /// those (adopted, or listed to stop in a fence); a root not among
    /// them finished starting after that Join was built, unknown to it.
    announced: Mutex<Vec<(String, u64)>>,
    /// Starts under way, by app: a ticket each. A later start of the same
    /// app takes the entry over, and a `StopApp` (the master gave up
    /// waiting for this start) removes it: a start that no longer holds
    /// its ticket when it ends stops the root it made.
    starting: Mutex<HashMap<String, u64>>,
    /// The next ticket.
    tickets: AtomicU64,
}

impl HostedApps {
    /// No roots yet.
    pub(crate) fn new(rt: Runtime, master: MasterHandle) -> Self {
        HostedApps {
            rt,
            master,
            apps: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            announced: Mutex::new(Vec::new()),
            starting: Mutex::new(HashMap::new()),
            tickets: AtomicU64::new(0),
        }
    }

    /// This node is being fenced or cut off: starts under way belong to a
    /// master session that gave the node up, and stop their roots when
    /// they end instead of keeping them.
    pub(crate) fn end_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The roots this node runs, for Join.
    pub(crate) fn running(&self) -> Vec<RunningApp> {
        lock(&self.apps)
            .iter()
            .map(|(app, h)| RunningApp {
                app: app.clone(),
                generation: h.generation,
                root: h.root,
            })
            .collect()
    }

    /// The roots this node runs, for a Join that lists them: remembered as
    /// what the master will judge (see [`unannounced`](Self::unannounced)).
    pub(crate) fn running_for_join(&self) -> Vec<RunningApp> {
        let running = self.running();
        *lock(&self.announced) = running
            .iter()
            .map(|r| (r.app.clone(), r.generation))
            .collect();
        running
    }

    /// The roots running here that the last Join did not list: their start
    /// ended after it was built, so the master never judged them. In a
    /// fence (the master gave this node up and placed its apps again) they
    /// are stale like the ones it lists.
    pub(crate) fn unannounced(&self) -> Vec<String> {
        let announced = lock(&self.announced);
        lock(&self.apps)
            .iter()
            .filter(|(app, h)| {
                !announced
                    .iter()
                    .any(|(a, g)| a == *app && *g == h.generation)
            })
            .map(|(app, _)| app.clone())
            .collect()
    }

    /// Starts an application root (master's `StartApp`).
    pub(crate) async fn start(
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
            self.stop(&app).await;
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        lock(&self.starting).insert(app.clone(), ticket);
        let started = sup::start_tree(&self.rt, spec).await;
        let current = {
            let mut starting = lock(&self.starting);
            let mine = starting.get(&app) == Some(&ticket);
            if mine {
                starting.remove(&app);
            }
            mine
        };
        match started {
            Ok(root) if !current => {
                tracing::warn!(%app, generation, %root, "killed an application root that finished starting after the master stopped waiting for it (or started it again)");
                self.kill_tree(&app, root);
                Response::Error(RemoteError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "application {app} started after the master stopped waiting for it; it was stopped"
                    ),
                ))
            }
            Ok(root) => {
                {
                    let mut apps = lock(&self.apps);
                    // Checked under the lock that fencing and cut-off
                    // drain: either they saw this root, or it sees them.
                    if self.epoch.load(Ordering::SeqCst) != epoch {
                        drop(apps);
                        tracing::warn!(%app, generation, %root, "killed an application root that finished starting after this node was fenced or cut off: the master placed it again");
                        self.kill_tree(&app, root);
                        return Response::Error(RemoteError::new(
                            ErrorCode::Unavailable,
                            format!(
                                "application {app} started after this node was fenced or cut off; it was stopped, place it again"
                            ),
                        ));
                    }
                    apps.insert(app.clone(), HostedApp { generation, root });
                }
                self.watch_root(app.clone(), generation, root);
                tracing::info!(%app, generation, %root, "application root started");
                Response::Spawned(root)
            }
            Err(e) => {
                tracing::error!(%app, cause = %e, "application root failed to start");
                // A start that may pass (no node for a child now, a node
                // lost during the start) is for the master to retry; any
                // other failure is the spec's.
                let code = if e.is_transient() {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::BadSpec
                };
                Response::Error(RemoteError::new(code, e.to_string()))
            }
        }
    }

    /// Reports the root's exit to the master when it happens.
    fn watch_root(self: &Arc<Self>, app: String, generation: u64, root: Pid) {
        // The watcher is a process: it holds no strong reference, so the
        // node can stop while it waits.
        let apps = Arc::downgrade(self);
        self.rt.spawn_opts(
            SpawnOpts::new().function("app.watch").owner(app.clone()),
            move |mut ctx| async move {
                let mref = ctx.monitor(root);
                let Some(down) = ctx.wait_down(mref, None).await else {
                    return;
                };
                let Some(apps) = apps.upgrade() else {
                    return;
                };
                let ours = {
                    let mut map = lock(&apps.apps);
                    let ours = map.get(&app).is_some_and(|h| h.root == root);
                    if ours {
                        map.remove(&app);
                    }
                    ours
                };
                if ours {
                    tracing::info!(%app, reason = %down.reason, "application root exited");
                    apps.master.push(Msg::AppEvent(AppEvent {
                        app,
                        generation,
                        kind: AppEventKind::RootExited(down.reason),
                    }));
                }
            },
        );
    }

    /// Stops an application root in order and waits for it; a start of
    /// it under way stops its root when it ends.
    pub(crate) async fn stop(&self, app: &str) {
        lock(&self.starting).remove(app);
        let root = lock(&self.apps).get(app).map(|h| h.root);
        let Some(root) = root else {
            return;
        };
        if let Err(e) = sup::stop(&self.rt, root).await {
            tracing::warn!(%app, cause = %e, "stopping the application root failed; killing it");
            self.rt.kill(root);
        }
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.rt.wait(root)).await;
    }

    /// Kills every root at once, and whatever of their trees runs here
    /// (this node is cut off from the master, which restarts them
    /// elsewhere). They are forgotten first, so their exits are not
    /// reported as the applications' end. Returns the applications.
    pub(crate) fn kill_all(&self) -> Vec<String> {
        let killed: Vec<(String, HostedApp)> = {
            let mut apps = lock(&self.apps);
            self.end_epoch();
            apps.drain().collect()
        };
        for (app, h) in &killed {
            tracing::warn!(%app, generation = h.generation, root = %h.root, "killed the application root: this node is cut off from the master");
            self.kill_tree(app, h.root);
        }
        killed.into_iter().map(|(app, _)| app).collect()
    }

    /// Kills a root and whatever of its tree runs here: children that trap
    /// exits would outlive a killed root.
    fn kill_tree(&self, app: &str, root: Pid) {
        self.rt.kill(root);
        for p in self.rt.processes() {
            let in_tree = p
                .owner
                .as_deref()
                .is_some_and(|o| o.strip_prefix(app).is_some_and(|r| r.starts_with('/')));
            if in_tree {
                self.rt.kill(p.pid);
            }
        }
    }

    /// Stops every root, one after the other, in order (graceful stop).
    pub(crate) async fn stop_all(&self) {
        let apps: Vec<String> = lock(&self.apps).keys().cloned().collect();
        for app in apps {
            self.stop(&app).await;
        }
    }

    /// Forwards supervisor events of application trees to the master
    /// until `stop` is cancelled.
    pub(crate) async fn forward_events(self: Arc<Self>, stop: CancellationToken) {
        let mut events = self.rt.events();
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = stop.cancelled() => return,
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
                        self.master.push(Msg::AppEvent(AppEvent {
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
}
