//! [`Pool`]: the master's whole state, kept under one lock, and the
//! transitions that keep its parts consistent — a join touches the
//! membership, the load table, the failure detector, the names, the apps
//! and the down list at once, and every other node must see the change in
//! the same order.
//!
//! Nothing here awaits. Pushes to nodes are queued on their connections
//! while the lock is held (so every node sees changes in the order they
//! happened); work that needs an answer from a node (`StartApp`) is returned
//! as [`StartOrder`]s for the caller to run after releasing the lock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_proto::SUPERVISOR_FUNCTION;
use pool_proto::tree::{parse_tree_str, validate_tree};
use pool_proto::{
    AppSummary, DownReason, ErrorCode, Fence, Join, LoadReport, Msg, NodeId, NodeInfo, NodeKind,
    NodeStatus, Pid, PlaceQuery, Placed, PlacementStrategy, RemoteError, ReqId, Response, TreeSpec,
    TreeView, Welcome,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{debug, info, warn};

use crate::activity::Activity;
use crate::apps::{self, Apps, Assignment};
use crate::failure::FailureDetector;
use crate::load_table::LoadTable;
use crate::membership::{DownList, Member, Membership, now_ms};
use crate::metrics::Metrics;
use crate::names::{GlobalNames, Reclaim};
use crate::persist::Snapshot;
use crate::placement::PlaceError;
use crate::server::peer::{Peer, encode};

/// Settings the transitions need.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    /// Default placement strategy.
    pub(crate) placement: PlacementStrategy,
    /// Node timeout, told to nodes in `Welcome`.
    pub(crate) node_timeout: Duration,
    /// Report interval, told to nodes in `Welcome`.
    pub(crate) report_interval: Duration,
    /// Frame limit, for encoding pushes.
    pub(crate) max_frame_len: usize,
    /// How long declared-down ids are kept.
    pub(crate) down_retention: Duration,
}

/// A root to start: send `StartApp` to `peer`.
#[derive(Debug)]
pub(crate) struct StartOrder {
    /// What to start where.
    pub(crate) assignment: Assignment,
    /// The connection of the chosen node.
    pub(crate) peer: Arc<Peer>,
}

/// What became of a `Join`.
#[derive(Debug)]
pub(crate) enum Joined {
    /// Refused: send this error, then close.
    Refused(RemoteError),
    /// Welcomed (the `Welcome` is already queued on the connection).
    Welcomed {
        /// A previous session of the same node, to close without a down.
        replaced: Option<Arc<Peer>>,
        /// A fencing node of the same name that this one replaced
        /// (declared down `Replaced`), to close.
        kicked: Option<Arc<Peer>>,
        /// Roots to start now that a worker is live.
        starts: Vec<StartOrder>,
    },
}

/// What a node going down leaves to do.
#[derive(Debug)]
pub(crate) struct Gone {
    /// Its connection (to close, if it is still open).
    pub(crate) peer: Arc<Peer>,
    /// Roots to start elsewhere.
    pub(crate) starts: Vec<StartOrder>,
}

/// The master's state.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Settings.
    pub(crate) settings: PoolSettings,
    /// Live nodes' load.
    pub(crate) table: LoadTable,
    /// Report deadlines of live workers.
    pub(crate) detector: FailureDetector,
    /// Joined nodes and their connections.
    pub(crate) members: Membership,
    /// Global names.
    pub(crate) names: GlobalNames,
    /// Pool applications.
    pub(crate) apps: Apps,
    /// Ids declared down recently.
    pub(crate) downs: DownList,
    /// Load history, recent events and recently-down nodes, for the
    /// dashboard.
    pub(crate) activity: Activity,
    /// Metrics updated by the transitions.
    metrics: Arc<Metrics>,
    /// Randomness for two-choices and random placement.
    rng: StdRng,
    /// Something persisted changed since the last save request.
    pub(crate) dirty: bool,
}

impl Pool {
    /// A pool with the saved apps and down list, nothing connected.
    pub(crate) fn new(
        settings: PoolSettings,
        table: LoadTable,
        apps: Apps,
        downs: DownList,
        metrics: Arc<Metrics>,
    ) -> Self {
        Pool {
            detector: FailureDetector::new(settings.node_timeout),
            settings,
            table,
            members: Membership::default(),
            names: GlobalNames::default(),
            apps,
            downs,
            activity: Activity::default(),
            metrics,
            rng: StdRng::from_os_rng(),
            dirty: false,
        }
    }

    /// What the state directory keeps.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 0,
            apps: self.apps.records(),
            down_nodes: self.downs.records(),
        }
    }

    fn encode(&self, msg: &Msg) -> Option<bytes::Bytes> {
        encode(msg, self.settings.max_frame_len)
    }

    fn update_gauges(&self) {
        let (w, h) = self.members.count_live();
        self.metrics.workers_up.set(w as f64);
        self.metrics.hidden_up.set(h as f64);
    }

    // ----- joining ---------------------------------------------------------

    /// A node's `Join` (request `req_id`) on connection `peer`.
    pub(crate) fn join(
        &mut self,
        peer: &Arc<Peer>,
        req_id: ReqId,
        join: Join,
        now: Instant,
    ) -> Joined {
        let Join {
            mut info,
            functions,
            names,
            apps: running,
            rejoin: _,
        } = join;
        let refuse = |code, msg: String| Joined::Refused(RemoteError::new(code, msg));
        // 1. The joiner is who the handshake authenticated, and not a master.
        if info.kind == NodeKind::Master {
            return refuse(
                ErrorCode::Refused,
                "a master cannot join another master: point pool-worker --master at this address instead".into(),
            );
        }
        if info.id != peer.node || info.name != peer.name {
            return refuse(
                ErrorCode::Refused,
                format!(
                    "the Join says {} ({}) but the handshake authenticated {} ({}): send the same identity in both",
                    info.name, info.id, peer.name, peer.node
                ),
            );
        }
        if info.name.trim().is_empty() {
            return refuse(
                ErrorCode::BadRequest,
                "empty node name: give the node a --name".into(),
            );
        }
        if info.kind == NodeKind::Hidden {
            info.addr.clear();
        }
        let id = info.id;
        // 2. Names are unique among live nodes; a fencing node of the same
        //    name (not live) is replaced by the newcomer.
        let mut kicked = None;
        let mut starts = Vec::new();
        if let Some(other) = self.members.by_name(&info.name)
            && other.info.id != id
        {
            if other.live {
                return refuse(
                    ErrorCode::DuplicateName,
                    format!(
                        "a live node named {} ({}) exists: pick another --name or stop the other node",
                        info.name, other.info.id
                    ),
                );
            }
            let other = other.info.id;
            if let Some(gone) = self.declare_down(other, DownReason::Replaced, now) {
                kicked = Some(gone.peer);
                starts.extend(gone.starts);
            }
        }
        // 3. The same id reconnecting replaces its old session.
        let previous = self
            .members
            .get(id)
            .map(|m| (m.peer.clone(), m.live, m.info.clone()));
        let was_live = previous.as_ref().is_some_and(|p| p.1);
        // 4. Fencing: declared down earlier, or names lost, or stale roots.
        let was_down = !was_live && self.downs.contains(id);
        // The Join lists every global name the node's processes hold: any
        // other name of this node is stale (its holder died while the link
        // was down, and the release could not be sent).
        let claimed: std::collections::HashSet<&str> =
            names.iter().map(|(n, _)| n.as_str()).collect();
        let stale: Vec<String> = self
            .names
            .all()
            .into_iter()
            .filter(|(n, p)| p.node() == id && !claimed.contains(n.as_str()))
            .map(|(n, _)| n)
            .collect();
        for n in &stale {
            self.names.unregister(n);
        }
        let mut lost_names = Vec::new();
        for (name, pid) in &names {
            let outcome = if pid.node() == id {
                self.names.reclaim(name, *pid)
            } else {
                Reclaim::Lost
            };
            if outcome == Reclaim::Lost {
                lost_names.push(name.clone());
            }
        }
        let members = &self.members;
        let adoption = self.apps.adopt(id, &running, |m| {
            m != id && members.get(m).is_some_and(|x| x.live)
        });
        if !adoption.adopted.is_empty() {
            info!(node = %info.name, apps = ?adoption.adopted, "adopted running application roots");
            self.dirty = true;
        }
        if !adoption.unknown.is_empty() {
            warn!(node = %info.name, apps = ?adoption.unknown,
                "the node runs application roots this master does not know (its state directory was lost?); leaving them alone");
        }
        let fence =
            (was_down || !adoption.stop.is_empty() || !lost_names.is_empty()).then(|| Fence {
                stop_apps: adoption.stop.clone(),
                lost_names,
            });
        let live = was_live || fence.is_none();
        // 5. Welcome: every live node, the joiner included.
        let mut list: Vec<NodeInfo> = self
            .members
            .live()
            .filter(|m| m.info.id != id)
            .map(|m| m.info.clone())
            .collect();
        list.push(info.clone());
        let welcome = Welcome {
            members: list,
            report_interval_ms: ms(self.settings.report_interval),
            node_timeout_ms: ms(self.settings.node_timeout),
            fence,
        };
        peer.respond(req_id, Response::Welcome(welcome));
        self.members.insert(Member {
            info: info.clone(),
            functions: functions.into_iter().collect(),
            peer: peer.clone(),
            live: was_live,
            leaving: false,
        });
        // 6. Announce it, or wait for Ready.
        if live && !was_live {
            starts.extend(self.make_live(id, now));
        } else if was_live && previous.as_ref().is_some_and(|p| p.2 != info) {
            // Reconnected with new details (address, labels): tell everyone.
            self.table.add_node(info.clone(), now);
            if let Some(frame) = self.encode(&Msg::NodeUp(info.clone())) {
                self.members.broadcast(&frame, Some(id), true);
            }
        }
        info!(node = %info.name, id = %id, kind = ?info.kind, addr = %info.addr, live,
            fenced = !live, rejoin = previous.is_some(), "node joined");
        Joined::Welcomed {
            replaced: previous.map(|p| p.0),
            kicked,
            starts,
        }
    }

    /// `Ready` after fencing on connection `peer`.
    pub(crate) fn ready(
        &mut self,
        peer: &Peer,
        now: Instant,
    ) -> Result<Vec<StartOrder>, RemoteError> {
        match self.members.get(peer.node) {
            Some(m) if m.peer.session == peer.session => {
                if m.live {
                    Ok(Vec::new())
                } else {
                    info!(node = %m.info.name, "node finished fencing");
                    Ok(self.make_live(peer.node, now))
                }
            }
            _ => Err(RemoteError::new(
                ErrorCode::Refused,
                "Ready before Join: send Join first",
            )),
        }
    }

    /// Counts node `id` as live: placed on, watched, announced.
    fn make_live(&mut self, id: NodeId, now: Instant) -> Vec<StartOrder> {
        let Some(m) = self.members.get_mut(id) else {
            return Vec::new();
        };
        m.live = true;
        let info = m.info.clone();
        self.table.add_node(info.clone(), now);
        if info.kind == NodeKind::Worker {
            self.detector.register(id, now);
        }
        if self.downs.remove(id) {
            self.dirty = true;
        }
        if info.kind == NodeKind::Worker {
            self.activity.node_up(&info, now_ms());
        }
        if let Some(frame) = self.encode(&Msg::NodeUp(info)) {
            self.members.broadcast(&frame, Some(id), true);
        }
        self.update_gauges();
        self.schedule(now)
    }

    /// `Leave`: nothing more is placed on the node.
    pub(crate) fn leave(&mut self, peer: &Peer) {
        if let Some(m) = self.members.get_mut(peer.node)
            && m.peer.session == peer.session
        {
            m.leaving = true;
            self.table.remove_node(peer.node);
            info!(node = %peer.name, "node is leaving");
        }
    }

    // ----- going down ------------------------------------------------------

    /// The connection `peer` closed. If it was its node's current session,
    /// the node is down (`Left` after a `Leave`).
    pub(crate) fn session_closed(&mut self, peer: &Peer, now: Instant) -> Option<Gone> {
        let m = self.members.get(peer.node)?;
        if m.peer.session != peer.session {
            return None; // replaced by a newer session of the same node
        }
        let reason = if m.leaving {
            DownReason::Left
        } else {
            DownReason::ConnectionClosed
        };
        self.declare_down(peer.node, reason, now)
    }

    /// Declares `node` down: forgets it everywhere, removes its names,
    /// re-places its app roots, remembers its id for fencing and tells every
    /// other node (if it was live).
    pub(crate) fn declare_down(
        &mut self,
        node: NodeId,
        reason: DownReason,
        now: Instant,
    ) -> Option<Gone> {
        let m = self.members.remove(node)?;
        // Its last status line, for the dashboard's card of a down node.
        let last = m
            .live
            .then(|| self.table.status(now).into_iter().find(|s| s.id == node))
            .flatten();
        self.table.remove_node(node);
        self.detector.forget(node);
        let names = self.names.remove_node(node);
        let apps = self.apps.node_down(node);
        // Only a worker that may come back (cut off, not stopped) needs to
        // be fenced; clients such as poolctl and workers that left are not
        // remembered.
        let worker = m.info.kind == NodeKind::Worker;
        if worker && reason != DownReason::Left {
            self.downs.insert(node, reason.clone());
            self.dirty = true;
        }
        if m.live
            && let Some(frame) = self.encode(&Msg::NodeDown {
                node,
                reason: reason.clone(),
            })
        {
            self.members.broadcast(&frame, None, false);
        }
        // A client (poolctl) hanging up is no node going down.
        if worker {
            self.metrics.node_down(&reason);
        }
        match last {
            Some(last) if worker => self.activity.node_down(last, &reason, &apps, now_ms()),
            _ => self.activity.forget(node),
        }
        self.update_gauges();
        if worker {
            info!(node = %m.info.name, id = %node, %reason, names = names.len(), apps = ?apps, "node down");
        } else {
            debug!(node = %m.info.name, id = %node, %reason, "client left");
        }
        let starts = self.schedule(now);
        Some(Gone {
            peer: m.peer,
            starts,
        })
    }

    /// Declares down every worker silent for the node timeout.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Gone> {
        self.detector
            .tick(now)
            .into_iter()
            .filter_map(|d| self.declare_down(d.node, d.reason, now))
            .collect()
    }

    /// A load report from `node`; false if the node is not live.
    pub(crate) fn report(&mut self, node: NodeId, report: LoadReport, now: Instant) -> bool {
        if !self.detector.on_report(node, now) {
            return false;
        }
        self.table.on_report(node, report, now)
    }

    /// Forgets down ids past their retention.
    pub(crate) fn prune_downs(&mut self) {
        if self.downs.prune(self.settings.down_retention) {
            self.dirty = true;
        }
    }

    // ----- placement and listings ------------------------------------------

    /// Answers a placement query.
    pub(crate) fn place(&mut self, query: &PlaceQuery) -> Result<Vec<Placed>, PlaceError> {
        let ids = self
            .table
            .place(query, self.settings.placement, &mut self.rng)?;
        let label = match query.key {
            Some(_) => None,
            None => Some(query.strategy.unwrap_or(self.settings.placement)),
        };
        self.metrics.placement_queries.increment(1);
        self.metrics.placed(label, ids.len() as u64);
        if query.commit {
            self.metrics.spawned(label, ids.len() as u64);
        }
        // Consecutive placements mostly repeat a node: reuse its answer.
        let mut out: Vec<Placed> = Vec::with_capacity(ids.len());
        for id in ids {
            match out.last() {
                Some(last) if last.id == id => out.push(last.clone()),
                _ => out.extend(self.table.placed(id)),
            }
        }
        if query.commit {
            let strategy = label.map_or("keyed", PlacementStrategy::as_str);
            self.activity
                .placed(strategy, out.iter().map(|p| p.name.as_str()), now_ms());
        }
        Ok(out)
    }

    /// Takes the dashboard's once-a-second sample of every live worker.
    pub(crate) fn sample_activity(&mut self, now: Instant) {
        let table = &self.table;
        let status: Vec<NodeStatus> = table
            .status(now)
            .into_iter()
            .filter(|s| table.info(s.id).is_some_and(|i| i.kind == NodeKind::Worker))
            .collect();
        let nodes = status.iter().map(|s| (s, table.last_report(s.id)));
        self.activity.sample(nodes, now_ms());
    }

    /// The live workers' status lines, by name.
    pub(crate) fn list_nodes(&self, now: Instant) -> Vec<NodeStatus> {
        let mut v: Vec<NodeStatus> = self
            .table
            .status(now)
            .into_iter()
            .filter(|s| {
                self.table
                    .info(s.id)
                    .is_some_and(|i| i.kind != NodeKind::Hidden)
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The name of node `id`, if it is a member.
    pub(crate) fn name_of(&self, id: NodeId) -> Option<String> {
        self.members.name_of(id).map(str::to_owned)
    }

    /// Live worker names, for error messages.
    pub(crate) fn live_worker_names(&self) -> String {
        let mut v: Vec<&str> = self
            .members
            .live_workers()
            .map(|m| m.info.name.as_str())
            .collect();
        v.sort_unstable();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    }

    // ----- names -----------------------------------------------------------

    /// `RegisterName`: false if taken, if the pid has a name, or if its
    /// node is not a member.
    pub(crate) fn register_name(&mut self, name: &str, pid: Pid) -> bool {
        self.members.get(pid.node()).is_some() && self.names.register(name, pid)
    }

    // ----- applications ----------------------------------------------------

    /// Chooses the node for an app's root: the least-loaded live worker,
    /// preferring those that register every function of the tree.
    fn choose_root_node(&mut self, spec: &TreeSpec) -> Option<NodeId> {
        let needed: HashSet<String> = apps::functions(spec)
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| f != SUPERVISOR_FUNCTION)
            .collect();
        let lacking: Vec<NodeId> = self
            .members
            .live_workers()
            .filter(|m| !needed.iter().all(|f| m.functions.contains(f)))
            .map(|m| m.info.id)
            .collect();
        let mut query = PlaceQuery {
            count: 1,
            strategy: Some(PlacementStrategy::LeastLoaded),
            exclude: lacking,
            commit: true,
            ..PlaceQuery::default()
        };
        let first = self
            .table
            .place(&query, PlacementStrategy::LeastLoaded, &mut self.rng);
        let ids = match first {
            Ok(ids) => ids,
            Err(_) => {
                query.exclude.clear();
                self.table
                    .place(&query, PlacementStrategy::LeastLoaded, &mut self.rng)
                    .ok()?
            }
        };
        let id = ids.first().copied();
        if id.is_some() {
            self.metrics
                .spawned(Some(PlacementStrategy::LeastLoaded), 1);
        }
        id
    }

    /// Places every app waiting for a node, where a node is available.
    pub(crate) fn schedule(&mut self, now: Instant) -> Vec<StartOrder> {
        if self.apps.expire_holds(now) {
            self.dirty = true;
        }
        let mut orders = Vec::new();
        for id in self.apps.waiting(now) {
            let Some(spec) = self.apps.get(&id).map(|a| a.rec.spec.clone()) else {
                continue;
            };
            let Some(node) = self.choose_root_node(&spec) else {
                break; // no worker at all: every app waits
            };
            let Some(peer) = self.members.get(node).map(|m| m.peer.clone()) else {
                continue;
            };
            if let Some(assignment) = self.apps.assign(&id, node) {
                self.dirty = true;
                orders.push(StartOrder { assignment, peer });
            }
        }
        orders
    }

    /// Checks a submitted tree: the spec rules, then every function against
    /// the live workers. With `text`, through the tree-file parser, so the
    /// error names the file, the line and the field.
    pub(crate) fn check_tree(
        &self,
        spec: &TreeSpec,
        source: Option<&str>,
        text: Option<&str>,
    ) -> Result<(), RemoteError> {
        let file = source.unwrap_or("<tree>");
        let known = |f: &str| f == SUPERVISOR_FUNCTION || self.members.function_known(f);
        let bad = |msg: String| Err(RemoteError::new(ErrorCode::BadSpec, msg));
        if let Some(text) = text {
            return match parse_tree_str(file, text, known) {
                Ok(parsed) if parsed.supervisor.id != spec.supervisor.id => bad(format!(
                    "{file}: the tree's text has root id {:?} but the spec sent has {:?}: send the spec parsed from this text",
                    parsed.supervisor.id, spec.supervisor.id
                )),
                Ok(_) => Ok(()),
                Err(e) => bad(format!("{e} (live workers: {})", self.live_worker_names())),
            };
        }
        if let Err(e) = validate_tree(spec) {
            return bad(format!("{file}: supervisor.{}: {e}", e.field()));
        }
        for (field, f) in apps::functions(spec) {
            if !known(&f) {
                return bad(format!(
                    "{file}: {field}: unknown function {f:?}: no live worker registers it (live workers: {}); check the spelling or start a worker that has it",
                    self.live_worker_names()
                ));
            }
        }
        Ok(())
    }

    /// `TreeStart`: checks the tree, refuses a running id, records the app
    /// and chooses its root's node.
    pub(crate) fn tree_start(
        &mut self,
        spec: TreeSpec,
        source: Option<String>,
        text: Option<&str>,
    ) -> Result<StartOrder, RemoteError> {
        self.check_tree(&spec, source.as_deref(), text)?;
        let id = spec.supervisor.id.clone();
        if self.apps.is_running(&id) {
            let at = self
                .apps
                .get(&id)
                .and_then(|a| a.rec.node)
                .and_then(|n| self.name_of(n))
                .map(|n| format!(" on {n}"))
                .unwrap_or_default();
            return Err(RemoteError::new(
                ErrorCode::AlreadyRunning,
                format!(
                    "tree {id} is already running{at}: stop it first with `poolctl tree stop {id}`"
                ),
            ));
        }
        let Some(node) = self.choose_root_node(&spec) else {
            return Err(RemoteError::new(
                ErrorCode::NoNode,
                "no live worker to run the tree's root: start a worker with pool-worker --master ADDR",
            ));
        };
        let Some(peer) = self.members.get(node).map(|m| m.peer.clone()) else {
            return Err(RemoteError::new(
                ErrorCode::Internal,
                "the chosen node vanished",
            ));
        };
        self.apps.submit(spec, source);
        let assignment = self
            .apps
            .assign(&id, node)
            .expect("the app was just submitted");
        self.dirty = true;
        Ok(StartOrder { assignment, peer })
    }

    /// The `tree ls` lines.
    pub(crate) fn app_summaries(&self) -> Vec<AppSummary> {
        self.apps.summaries(|n| self.name_of(n))
    }

    /// Replaces node ids (hex, as workers write them in a tree view) by
    /// node names, recursively; an id that is no member is left as it is.
    pub(crate) fn name_nodes(&self, view: &mut TreeView) {
        if let Some(node) = &view.node
            && let Ok(id) = node.parse::<NodeId>()
            && let Some(name) = self.members.name_of(id)
        {
            view.node = Some(name.to_owned());
        }
        for child in view.children.iter_mut().flatten() {
            self.name_nodes(child);
        }
    }
}

/// Whole milliseconds, saturating.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
