//! Pool applications (DESIGN.md "Pool applications"): the trees the master
//! keeps alive. This module owns each app's record — spec, generation,
//! status, reason, the node assigned its root and the root's pid — and the
//! decisions on it: which apps wait for a node, what a rejoining node's
//! roots mean (adopt, or stop as stale), what a root's exit or its node's
//! death does; [`schedule`] decides where roots go. Plain data with time
//! as an argument; the pool state turns these decisions into the
//! `StartApp` / `StopApp` requests the shell sends.
//!
//! Life of an app:
//!
//! ```text
//!   TreeStart ──> running, no node ──place──> running on N (generation g)
//!                     ^                            │
//!                     ├──── N down / N left ───────┤ (g + 1 on the next node)
//!                     │                            ├─ start failed for a reason that
//!                     │                            │  may pass, or no node ──> pending
//!                     │                            ├─ RootExited (gave up) ──> failed
//!                     │                            └─ TreeStop ──────────────> stopped
//!   pending ── backoff (100 ms .. 2 s) or a node joins ──> a new start (g + 1)
//!   failed, stopped ── TreeRestart ──> running, no node (restart counts kept)
//!   failed, stopped ── TreeRemove ──> forgotten
//! ```
//!
//! `pending` is never `failed`: a start lost with its node, a node that
//! does not answer, or no node able to take the tree now is retried
//! ([`retry`]); only the tree giving up by itself fails it, or a start the
//! worker refuses because the spec is wrong.

use std::collections::BTreeMap;
use std::time::Instant;

use pool_proto::ErrorCode;

use pool_proto::{AppStatus, AppSummary, NodeId, Pid, RunningApp, SupervisorSpec, TreeSpec};
use serde::{Deserialize, Serialize};

pub(crate) mod retry;
pub(crate) mod schedule;
#[cfg(test)]
mod tests;
pub(crate) mod view;

use retry::Retry;
pub(crate) use view::stopped_view;

/// What the state directory keeps of an app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppRecord {
    /// The app id: its root supervisor's id.
    pub(crate) id: String,
    /// The tree.
    pub(crate) spec: TreeSpec,
    /// Where the tree came from (a file name), for messages.
    #[serde(default)]
    pub(crate) source: Option<String>,
    /// The generation of the last `StartApp` (0 before the first).
    pub(crate) generation: u64,
    /// Running, pending, failed or stopped.
    pub(crate) status: AppStatus,
    /// Why it is pending or failed, in words.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// The node its root was last assigned to.
    #[serde(default)]
    pub(crate) node: Option<NodeId>,
    /// The root's pid, once the node answered `Spawned` (or was adopted).
    #[serde(default)]
    pub(crate) root: Option<Pid>,
    /// The name of `node`: after a master restart, a newer incarnation of
    /// that name joining means the assigned one is gone (no hold for it).
    #[serde(default)]
    pub(crate) node_name: Option<String>,
}

/// Child restarts counted from `ChildRestarted` events, by child path
/// (`app/sup/child`), over every generation: `tree show` shows them where
/// the supervisors' own counts started again from zero. Kept in the state
/// directory beside the records (`restarts`, by app id).
pub(crate) type RestartCounts = BTreeMap<String, u64>;

/// An app: its record and what only matters while this master runs.
#[derive(Clone, Debug)]
pub(crate) struct App {
    /// What is persisted.
    pub(crate) rec: AppRecord,
    /// After a master restart: do not start the root elsewhere before this
    /// instant, so that its node can rejoin and be adopted.
    pub(crate) hold_until: Option<Instant>,
    /// `TreeStop` is in progress: the root's exit and its node's death no
    /// longer restart it.
    pub(crate) stopping: bool,
    /// A pending app: when it tries again, and how many tries failed.
    pub(crate) retry: Option<Retry>,
    /// Its child restarts, counted (persisted beside the record).
    pub(crate) restarts: RestartCounts,
}

/// A decision to start an app's root: send `StartApp` to `node`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Assignment {
    /// The app.
    pub(crate) app: String,
    /// Its new generation.
    pub(crate) generation: u64,
    /// Where its root goes.
    pub(crate) node: NodeId,
    /// The tree.
    pub(crate) spec: TreeSpec,
}

/// What a rejoining node's list of roots means.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Adoption {
    /// Apps whose roots the node runs and the master now counts as theirs.
    pub(crate) adopted: Vec<String>,
    /// Roots it must stop (`Fence.stop_apps`): stale generations, apps that
    /// run elsewhere, stopped or failed apps.
    pub(crate) stop: Vec<String>,
    /// Apps the master does not know (its state was lost): left alone.
    pub(crate) unknown: Vec<String>,
}

/// Every app, by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Apps {
    /// Id → app, sorted so listings come out in id order.
    by_id: BTreeMap<String, App>,
}

impl Apps {
    /// Apps loaded from the state directory at `now`: those that were
    /// running wait `grace` for their node to rejoin.
    pub(crate) fn restore(records: Vec<AppRecord>, hold_until: Instant) -> Self {
        let by_id = records
            .into_iter()
            .map(|rec| {
                let hold = wants_root(rec.status).then_some(hold_until);
                (
                    rec.id.clone(),
                    App {
                        rec,
                        hold_until: hold,
                        stopping: false,
                        retry: None,
                        restarts: RestartCounts::new(),
                    },
                )
            })
            .collect();
        Apps { by_id }
    }

    /// The app `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&App> {
        self.by_id.get(id)
    }

    /// Whether an app `id` is known, whatever its status.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Whether `id` is running or pending (so a new `TreeStart`, a
    /// `TreeRestart` or a `TreeRemove` of it is refused).
    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.by_id.get(id).is_some_and(|a| wants_root(a.rec.status))
    }

    /// Records a submitted tree as running and waiting for a node. A failed
    /// or stopped app of the same id is replaced; its generation goes on, so
    /// a stale root of the old one is still recognised as stale, and so do
    /// its restart counts.
    pub(crate) fn submit(&mut self, spec: TreeSpec, source: Option<String>) {
        let id = spec.supervisor.id.clone();
        let old = self.by_id.get(&id);
        let generation = old.map_or(0, |a| a.rec.generation);
        let restarts = old.map(|a| a.restarts.clone()).unwrap_or_default();
        self.by_id.insert(
            id.clone(),
            App {
                rec: AppRecord {
                    id,
                    spec,
                    source,
                    generation,
                    status: AppStatus::Running,
                    reason: None,
                    node: None,
                    root: None,
                    node_name: None,
                },
                hold_until: None,
                stopping: false,
                retry: None,
                restarts,
            },
        );
    }

    /// `TreeRestart`: a failed or stopped app runs again — it waits for a
    /// node and gets a new generation; its reason is cleared, its restart
    /// counts are kept. `Err(Some(status))` if it is running or pending,
    /// `Err(None)` if unknown.
    pub(crate) fn restart(&mut self, id: &str) -> Result<(), Option<AppStatus>> {
        let a = self.by_id.get_mut(id).ok_or(None)?;
        if wants_root(a.rec.status) || a.stopping {
            return Err(Some(a.rec.status));
        }
        a.rec.status = AppStatus::Running;
        a.rec.reason = None;
        a.rec.node = None;
        a.rec.root = None;
        a.hold_until = None;
        a.retry = None;
        Ok(())
    }

    /// `TreeRemove`: forgets a failed or stopped app. `Err(Some(status))`
    /// if it is running or pending, `Err(None)` if unknown.
    pub(crate) fn remove(&mut self, id: &str) -> Result<(), Option<AppStatus>> {
        let a = self.by_id.get(id).ok_or(None)?;
        if wants_root(a.rec.status) || a.stopping {
            return Err(Some(a.rec.status));
        }
        self.by_id.remove(id);
        Ok(())
    }

    /// Counts a `ChildRestarted` event of app `id`: child `child` of the
    /// supervisor at `supervisor` (its id path). False if the app is
    /// unknown.
    pub(crate) fn child_restarted(&mut self, id: &str, supervisor: &str, child: &str) -> bool {
        let Some(a) = self.by_id.get_mut(id) else {
            return false;
        };
        *a.restarts
            .entry(view::child_path(supervisor, child))
            .or_insert(0) += 1;
        true
    }

    /// The restart counts of every app that has some, by app id (for the
    /// state file).
    pub(crate) fn restart_counts(&self) -> BTreeMap<String, RestartCounts> {
        self.by_id
            .iter()
            .filter(|(_, a)| !a.restarts.is_empty())
            .map(|(id, a)| (id.clone(), a.restarts.clone()))
            .collect()
    }

    /// Puts back the restart counts read from the state file; counts of
    /// apps that are not known are dropped.
    pub(crate) fn restore_restart_counts(&mut self, counts: BTreeMap<String, RestartCounts>) {
        for (id, c) in counts {
            if let Some(a) = self.by_id.get_mut(&id) {
                a.restarts = c;
            }
        }
    }

    /// Running or pending apps with no node, not held, not stopping, and
    /// (pending ones) whose retry is due: they need a placement.
    pub(crate) fn waiting(&self, now: Instant) -> Vec<String> {
        self.by_id
            .values()
            .filter(|a| {
                wants_root(a.rec.status)
                    && a.rec.node.is_none()
                    && !a.stopping
                    && a.hold_until.is_none_or(|t| t <= now)
                    && a.retry.is_none_or(|r| r.at <= now)
            })
            .map(|a| a.rec.id.clone())
            .collect()
    }

    /// The earliest retry of a pending app that is not due at `now`.
    pub(crate) fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.by_id
            .values()
            .filter(|a| wants_root(a.rec.status) && a.rec.node.is_none() && !a.stopping)
            .filter_map(|a| a.retry.map(|r| r.at))
            .filter(|&t| t > now)
            .min()
    }

    /// A node joined or became ready: every pending app waiting for its
    /// retry tries at `now` instead. Returns whether any did.
    pub(crate) fn retry_now(&mut self, now: Instant) -> bool {
        let mut any = false;
        for a in self.by_id.values_mut() {
            if let Some(r) = a.retry.as_mut()
                && a.rec.node.is_none()
                && r.at > now
            {
                r.at = now;
                any = true;
            }
        }
        any
    }

    /// No live node can take the root of `id` now: the app is pending with
    /// `reason` and tries again after its backoff (or when a node joins).
    /// Returns whether it changed.
    pub(crate) fn no_node(&mut self, id: &str, reason: &str, now: Instant) -> bool {
        let Some(a) = self.by_id.get_mut(id) else {
            return false;
        };
        if !wants_root(a.rec.status) || a.rec.node.is_some() {
            return false;
        }
        let changed = a.rec.status != AppStatus::Pending || a.rec.reason.as_deref() != Some(reason);
        a.rec.status = AppStatus::Pending;
        a.rec.reason = Some(reason.to_owned());
        a.retry = Some(Retry::after(a.retry, now));
        changed
    }

    /// Ends the holds that are over at `now`: an app still held was not
    /// adopted by its node in time, so its old assignment is void and it
    /// waits for a node. Returns whether any app changed.
    pub(crate) fn expire_holds(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for a in self.by_id.values_mut() {
            if a.hold_until.is_some_and(|t| t <= now) {
                a.hold_until = None;
                a.rec.node = None;
                a.rec.root = None;
                changed = true;
            }
        }
        changed
    }

    /// Node `name` joined as incarnation `id`: an app held for an older
    /// incarnation of that name (after a master restart) waits for it no
    /// longer — that incarnation is gone (its name is live again under a
    /// new id, as the workers also judge it) and will never adopt the
    /// root. Returns whether any app changed.
    pub(crate) fn release_holds_of(&mut self, name: &str, id: NodeId) -> bool {
        let mut changed = false;
        for a in self.by_id.values_mut() {
            let older =
                a.rec.node.is_some_and(|n| n != id) && a.rec.node_name.as_deref() == Some(name);
            if a.hold_until.is_some() && older {
                a.hold_until = None;
                a.rec.node = None;
                a.rec.root = None;
                changed = true;
            }
        }
        changed
    }

    /// The earliest hold that has not ended at `now`, if any.
    pub(crate) fn next_hold(&self, now: Instant) -> Option<Instant> {
        self.by_id
            .values()
            .filter_map(|a| a.hold_until)
            .filter(|&t| t > now)
            .min()
    }

    /// Assigns the root of `id` to `node` with the next generation. A
    /// pending app stays pending, with its reason, until the root runs.
    pub(crate) fn assign(
        &mut self,
        id: &str,
        node: NodeId,
        node_name: Option<&str>,
    ) -> Option<Assignment> {
        let a = self.by_id.get_mut(id)?;
        a.rec.generation += 1;
        a.rec.node = Some(node);
        a.rec.node_name = node_name.map(str::to_owned);
        a.rec.root = None;
        if a.rec.status != AppStatus::Pending {
            a.rec.reason = None;
        }
        a.hold_until = None;
        Some(Assignment {
            app: id.to_owned(),
            generation: a.rec.generation,
            node,
            spec: a.rec.spec.clone(),
        })
    }

    /// The app's current assignment is still (`generation`, `node`) and it is
    /// running or pending: answers about it still apply.
    fn current(&mut self, id: &str, generation: u64, node: NodeId) -> Option<&mut App> {
        self.by_id.get_mut(id).filter(|a| {
            a.rec.generation == generation && a.rec.node == Some(node) && wants_root(a.rec.status)
        })
    }

    /// The node answered `Spawned(root)`. False if the assignment is stale.
    pub(crate) fn started(&mut self, id: &str, generation: u64, node: NodeId, root: Pid) -> bool {
        match self.current(id, generation, node) {
            Some(a) => {
                a.rec.root = Some(root);
                a.rec.status = AppStatus::Running;
                a.rec.reason = None;
                a.retry = None;
                true
            }
            None => false,
        }
    }

    /// The root could not be started for a reason that may pass (see
    /// [`transient`]): the app is pending with `reason` and tries again
    /// after its backoff, from `now`. False if the assignment is stale.
    pub(crate) fn start_deferred(
        &mut self,
        id: &str,
        generation: u64,
        node: NodeId,
        reason: String,
        now: Instant,
    ) -> bool {
        match self.current(id, generation, node) {
            Some(a) => {
                a.rec.node = None;
                a.rec.root = None;
                if a.stopping {
                    // A TreeStop meanwhile: nothing runs, so it is done.
                    a.stopping = false;
                    a.rec.status = AppStatus::Stopped;
                    a.rec.reason = None;
                    a.retry = None;
                } else {
                    a.rec.status = AppStatus::Pending;
                    a.rec.reason = Some(reason);
                    a.retry = Some(Retry::after(a.retry, now));
                }
                true
            }
            None => false,
        }
    }

    /// The root could not be started because the node refused it for good
    /// (the spec is wrong for it): the app fails with `reason`. False if
    /// the assignment is stale.
    pub(crate) fn start_failed(
        &mut self,
        id: &str,
        generation: u64,
        node: NodeId,
        reason: String,
    ) -> bool {
        match self.current(id, generation, node) {
            Some(a) => {
                a.rec.status = AppStatus::Failed;
                a.rec.reason = Some(reason);
                a.rec.node = None;
                a.rec.root = None;
                a.retry = None;
                true
            }
            None => false,
        }
    }

    /// The assignment is void without the app failing (the connection to
    /// the node was replaced before it answered): the app waits for a node
    /// again. False if the assignment is stale or a root was adopted.
    pub(crate) fn unassign(&mut self, id: &str, generation: u64, node: NodeId) -> bool {
        match self.current(id, generation, node) {
            Some(a) if a.rec.root.is_none() => {
                a.rec.node = None;
                true
            }
            _ => false,
        }
    }

    /// The root of `id` exited by itself on `node` with `reason` (its
    /// words): it gave up, so the app is failed with the reason and left
    /// stopped — unless its node is leaving (a graceful stop takes the
    /// root down; it is started elsewhere), or a `TreeStop` is in
    /// progress. Returns whether the app changed. An exit `normal` is
    /// [`root_finished`](Self::root_finished).
    pub(crate) fn root_exited(
        &mut self,
        id: &str,
        generation: u64,
        node: NodeId,
        reason: String,
        node_leaving: bool,
    ) -> bool {
        self.root_ended(
            id,
            generation,
            node,
            node_leaving,
            AppStatus::Failed,
            reason,
        )
    }

    /// The root of `id` exited `normal` on `node`: the tree finished its
    /// work, so the app is stopped (not failed) — unless its node is
    /// leaving or a `TreeStop` is in progress. Returns whether the app
    /// changed.
    pub(crate) fn root_finished(
        &mut self,
        id: &str,
        generation: u64,
        node: NodeId,
        node_leaving: bool,
    ) -> bool {
        let why = "its root exited normally".to_owned();
        self.root_ended(id, generation, node, node_leaving, AppStatus::Stopped, why)
    }

    /// [`root_exited`](Self::root_exited) and
    /// [`root_finished`](Self::root_finished): the app ends `status`.
    fn root_ended(
        &mut self,
        id: &str,
        generation: u64,
        node: NodeId,
        node_leaving: bool,
        status: AppStatus,
        reason: String,
    ) -> bool {
        let Some(a) = self.current(id, generation, node) else {
            return false;
        };
        if a.stopping {
            return false;
        }
        a.rec.node = None;
        a.rec.root = None;
        a.retry = None;
        if !node_leaving {
            a.rec.status = status;
            a.rec.reason = Some(reason);
        }
        true
    }

    /// `node` is down: every running app whose root was there waits for a
    /// node again (a stopping one is simply stopped). Returns the apps that
    /// changed.
    pub(crate) fn node_down(&mut self, node: NodeId) -> Vec<String> {
        let mut changed = Vec::new();
        for a in self.by_id.values_mut() {
            if a.rec.node == Some(node) && wants_root(a.rec.status) {
                a.rec.node = None;
                a.rec.root = None;
                if a.stopping {
                    a.stopping = false;
                    a.rec.status = AppStatus::Stopped;
                }
                changed.push(a.rec.id.clone());
            }
        }
        changed
    }

    /// A node that joins lists the roots it runs. Each is adopted when the
    /// master has no running root for its app (or it is the root the master
    /// assigned), else listed to stop. `is_live(m)` says whether node `m`
    /// is a live member other than the joining one.
    pub(crate) fn adopt(
        &mut self,
        node: NodeId,
        node_name: &str,
        running: &[RunningApp],
        is_live: impl Fn(NodeId) -> bool,
    ) -> Adoption {
        let mut out = Adoption::default();
        for r in running {
            let Some(a) = self.by_id.get_mut(&r.app) else {
                out.unknown.push(r.app.clone());
                continue;
            };
            let rec = &mut a.rec;
            let runs_elsewhere = rec.node.is_some_and(|m| m != node && is_live(m));
            // Same generation: the very root the master assigned (or one it
            // never heard the pid of). Newer: the master's state is older
            // than the node's. Older: stale, a newer root was started.
            let current = r.generation > rec.generation
                || (r.generation == rec.generation && rec.root.is_none_or(|p| p == r.root));
            let keep = wants_root(rec.status) && !a.stopping && !runs_elsewhere && current;
            if keep {
                rec.generation = r.generation;
                rec.node = Some(node);
                rec.node_name = Some(node_name.to_owned());
                rec.root = Some(r.root);
                rec.status = AppStatus::Running;
                rec.reason = None;
                a.hold_until = None;
                a.retry = None;
                out.adopted.push(r.app.clone());
            } else {
                out.stop.push(r.app.clone());
            }
        }
        out
    }

    /// A node that rejoins without having been declared down lists the
    /// roots it runs (`running`): every running or pending app whose root
    /// the master counted on it (a root pid known) and that is not listed
    /// lost its root while the node was cut off. Each waits for a node
    /// again (its next start is a new generation). Returns those apps.
    pub(crate) fn lost_roots(&mut self, node: NodeId, running: &[RunningApp]) -> Vec<String> {
        let mut lost = Vec::new();
        for a in self.by_id.values_mut() {
            let counted = a.rec.node == Some(node)
                && a.rec.root.is_some()
                && wants_root(a.rec.status)
                && !a.stopping;
            if counted && !running.iter().any(|r| r.app == a.rec.id) {
                a.rec.node = None;
                a.rec.root = None;
                a.hold_until = None;
                lost.push(a.rec.id.clone());
            }
        }
        lost
    }

    /// Starts a `TreeStop`: `Some(node)` if a root must be stopped there
    /// first (the app is marked stopping), `None` if nothing runs (the app
    /// is stopped at once). `Err(())` if the app is unknown.
    pub(crate) fn stop_begin(&mut self, id: &str) -> Result<Option<NodeId>, ()> {
        let a = self.by_id.get_mut(id).ok_or(())?;
        match (a.rec.status, a.rec.node) {
            (AppStatus::Running | AppStatus::Pending, Some(node)) => {
                a.stopping = true;
                Ok(Some(node))
            }
            _ => {
                a.rec.status = AppStatus::Stopped;
                a.rec.reason = None;
                a.rec.node = None;
                a.rec.root = None;
                a.hold_until = None;
                a.retry = None;
                Ok(None)
            }
        }
    }

    /// A `TreeStop` finished: the app is stopped.
    pub(crate) fn stop_done(&mut self, id: &str) {
        if let Some(a) = self.by_id.get_mut(id) {
            a.stopping = false;
            a.rec.status = AppStatus::Stopped;
            a.rec.reason = None;
            a.rec.node = None;
            a.rec.root = None;
            a.hold_until = None;
            a.retry = None;
        }
    }

    /// Every record, in id order (for the state file).
    pub(crate) fn records(&self) -> Vec<AppRecord> {
        self.by_id.values().map(|a| a.rec.clone()).collect()
    }

    /// The `tree ls` line of one app; `name_of` names nodes.
    pub(crate) fn summary(
        &self,
        id: &str,
        name_of: impl Fn(NodeId) -> Option<String>,
    ) -> Option<AppSummary> {
        self.by_id.get(id).map(|a| summarize(a, &name_of))
    }

    /// Every app's `tree ls` line, in id order.
    pub(crate) fn summaries(&self, name_of: impl Fn(NodeId) -> Option<String>) -> Vec<AppSummary> {
        self.by_id
            .values()
            .map(|a| summarize(a, &name_of))
            .collect()
    }
}

fn summarize(a: &App, name_of: &impl Fn(NodeId) -> Option<String>) -> AppSummary {
    AppSummary {
        id: a.rec.id.clone(),
        root: a.rec.root,
        node: a.rec.node.and_then(name_of),
        status: a.rec.status,
        reason: a.rec.reason.clone(),
    }
}

/// Every worker function a tree names, with its field path in tree-file
/// terms (`supervisor.children[0].function`), in file order.
pub(crate) fn functions(spec: &TreeSpec) -> Vec<(String, String)> {
    fn walk(sup: &SupervisorSpec, path: &str, out: &mut Vec<(String, String)>) {
        for (i, c) in sup.children.iter().enumerate() {
            let here = format!("{path}.children[{i}]");
            if let Some(f) = &c.function {
                out.push((format!("{here}.function"), f.clone()));
            }
            if let Some(nested) = &c.supervisor {
                walk(nested, &format!("{here}.supervisor"), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&spec.supervisor, "supervisor", &mut out);
    out
}

/// Whether an app in `status` should have a root: running, or pending (a
/// start is retried).
pub(crate) fn wants_root(status: AppStatus) -> bool {
    matches!(status, AppStatus::Running | AppStatus::Pending)
}

/// Whether a `StartApp` refused with `code` may succeed later, so that the
/// app is pending rather than failed: a node lost or hung during the start
/// (`Unavailable`), no node able to take a child now (`NoNode`), a node
/// refusing spawns for now (`Overloaded`). A wrong spec (`BadSpec`,
/// `UnknownFunction`, ...) fails the app for good.
pub(crate) fn transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unavailable | ErrorCode::NoNode | ErrorCode::Overloaded
    )
}
