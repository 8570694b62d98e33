//! [`PoolState`]: the master's whole state, kept under one lock, and the
//! transitions that keep its parts consistent — a join touches the
//! membership, the load table, the failure detector, the names, the apps
//! and the down list at once, and every other node must see the change in
//! the same order.
//!
//! Nothing here awaits, reads a clock or touches a connection (STYLE.md
//! point 15). Like raft-rs's `Ready`, a transition takes the time as an
//! argument and returns, beside its answer, the [`Effect`]s the master must
//! carry out, in order: frames to queue on connections, connections to
//! close, requests to send to nodes. The async shell applies them
//! (`shared.rs`): frames and closes while it still holds the lock, so every
//! node sees changes in the order they were decided; requests that wait for
//! an answer (`StartApp`, `StopApp`) as tasks once the lock is released.
//! Connections are named by their [`SessionId`]; the state never holds one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_place::load_table::LoadTable;
use pool_place::placement::PlaceError;
use pool_proto::{
    AppEvent, AppEventKind, AppSummary, DownReason, ErrorCode, Fence, Join, LoadReport,
    LoadTableCopy, MemberChange, NodeId, NodeKind, NodeStatus, Pid, PlaceQuery, Placed,
    PlacedNotice, PlacementStrategy, RemoteError, ReqId, TreeSpec, TreeView, Welcome,
};
use rand::rngs::StdRng;
use tracing::{debug, info, warn};

use crate::activity::Activity;
use crate::apps::schedule::RootChoice;
use crate::apps::{Apps, Assignment};
use crate::clock::Now;
use crate::failure::{FailureDetector, Verdict};
use crate::load_watch::LoadWatch;
use crate::membership::{Conn, DownList, Member, Membership, SessionId};
use crate::metrics::{Metrics, SpawnFailure};
use crate::names::{GlobalNames, Reclaim};
use crate::persist::Snapshot;

#[cfg(test)]
mod tests;

/// Settings the transitions need.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    /// Default placement strategy.
    pub(crate) placement: PlacementStrategy,
    /// Node timeout, told to nodes in `Welcome`.
    pub(crate) node_timeout: Duration,
    /// Report interval, told to nodes in `Welcome`.
    pub(crate) report_interval: Duration,
    /// How long declared-down ids are kept.
    pub(crate) down_retention: Duration,
}

/// Something the master must do because of a transition. A transition
/// returns its effects in the order they must happen.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// Answer `Join` request `id` on the connection `to` with `welcome`,
    /// whose `members` holds the joiner alone: the shell lists every live
    /// member beside it and numbers it (from the member log, whose entries
    /// are encoded once), and from then on keeps that connection up to
    /// date with the changes.
    Welcome {
        /// The connection.
        to: SessionId,
        /// The `Join` request answered.
        id: ReqId,
        /// The answer, the other members left to the shell.
        welcome: Welcome,
    },
    /// A membership change (a node live, a live node gone): recorded once,
    /// in the order decided, and sent to every connection that got its
    /// `Welcome` (the node it is about too, which ignores it) as part of a
    /// delta.
    Membership(MemberChange),
    /// Close the connection once it is no node's current session (replaced
    /// by a newer one, or its node declared down): its end declares nothing.
    Close(SessionId),
    /// A request that waits for the node's answer.
    Request(NodeRequest),
}

/// A request to a node that waits for its answer: run as a task after the
/// lock is released (`node_requests.rs`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NodeRequest {
    /// `StartApp`; the answer goes to [`PoolState::start_answered`].
    StartRoot(StartOrder),
    /// `StopApp`, answer ignored: a root that must not run (it was started
    /// too late, or beside a newer one).
    StopApp {
        /// The root's node's connection.
        to: SessionId,
        /// The app.
        app: String,
    },
    /// `WatchName`: `pid`, on the node of the connection `to`, holds
    /// `name`, registered by another node; its node watches it and
    /// releases the name when it dies. An error answer, or the connection
    /// gone, unregisters the name ([`PoolState::watch_failed`]).
    WatchName {
        /// The connection of the pid's node.
        to: SessionId,
        /// The name.
        name: String,
        /// Its holder.
        pid: Pid,
    },
}

/// A root to start: send `StartApp` on the connection `to`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StartOrder {
    /// What to start where.
    pub(crate) assignment: Assignment,
    /// The chosen node's connection.
    pub(crate) to: SessionId,
    /// The chosen node's name, for logs and messages.
    pub(crate) name: String,
}

/// What became of a `Join`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Joined {
    /// Refused: answer this error, then close.
    Refused(RemoteError),
    /// Welcomed (the `Welcome` is the first effect).
    Welcomed {
        /// The `Welcome` carries a fence: the node counts as live only
        /// after its `Ready`.
        fenced: bool,
    },
}

/// What a node answered to `StartApp`, as the shell received it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StartAnswer {
    /// The root runs with this pid.
    Spawned(Pid),
    /// The node refused, or answered something else: the app is pending
    /// (a code that may pass, [`crate::apps::transient`]) or fails, with
    /// this code and reason.
    Failed {
        /// What kind of failure.
        code: ErrorCode,
        /// Why, for people.
        reason: String,
    },
    /// No answer within this timeout (the node may still start it).
    Timeout(Duration),
    /// The connection closed before the answer.
    Closed,
}

/// What became of a `StartApp`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Started {
    /// The root runs.
    Root,
    /// The node went away before answering; the root is (or will be)
    /// started elsewhere.
    Moved,
    /// The start failed for a reason that may pass (the node was lost or
    /// hung, no node could take a child now): the app is pending and
    /// tries again; the error says why.
    Pending(RemoteError),
    /// The app failed: the node refused the spec.
    Failed(RemoteError),
}

/// The master's state.
#[derive(Debug)]
pub(crate) struct PoolState {
    /// Settings.
    pub(crate) settings: PoolSettings,
    /// Live nodes' load.
    pub(crate) table: LoadTable,
    /// The nodes that hold a copy of `table`, and its rows changed since
    /// their last update.
    pub(crate) loads: LoadWatch,
    /// Report deadlines of live workers.
    pub(crate) detector: FailureDetector,
    /// Joined nodes and their sessions.
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
    /// The rate limit of the warning that the master is in the minority.
    pub(crate) minority: MinorityLog,
    /// Metrics updated by the transitions.
    metrics: Arc<Metrics>,
    /// Randomness for two-choices and random placement.
    rng: StdRng,
    /// Something persisted changed since the last save request.
    pub(crate) dirty: bool,
    /// An app's retry time changed: the shell wakes the app timer (which
    /// sleeps until the next hold or retry) and clears this.
    pub(crate) rearm: bool,
}

impl PoolState {
    /// A pool with the saved apps and down list, nothing connected.
    pub(crate) fn new(
        settings: PoolSettings,
        table: LoadTable,
        apps: Apps,
        downs: DownList,
        metrics: Arc<Metrics>,
        rng: StdRng,
    ) -> Self {
        PoolState {
            detector: FailureDetector::new(settings.node_timeout)
                .with_report_interval(settings.report_interval),
            settings,
            table,
            loads: LoadWatch::default(),
            members: Membership::default(),
            names: GlobalNames::default(),
            apps,
            downs,
            activity: Activity::default(),
            minority: MinorityLog::default(),
            metrics,
            rng,
            dirty: false,
            rearm: false,
        }
    }

    /// What the state directory keeps.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 0,
            apps: self.apps.records(),
            restarts: self.apps.restart_counts(),
            down_nodes: self.downs.records(),
        }
    }

    fn update_gauges(&self) {
        let (w, h) = self.members.count_live();
        self.metrics.workers_up.set(w as f64);
        self.metrics.hidden_up.set(h as f64);
    }

    // ----- joining ---------------------------------------------------------

    /// A node's `Join` (request `req`) on connection `conn`.
    pub(crate) fn join(
        &mut self,
        conn: &Conn,
        req: ReqId,
        join: Join,
        now: Now,
    ) -> (Joined, Vec<Effect>) {
        let Join {
            mut info,
            functions,
            names,
            apps: running,
            rejoin,
            wasm,
        } = join;
        let refuse = |code, msg: String| (Joined::Refused(RemoteError::new(code, msg)), Vec::new());
        // 1. The joiner is who the handshake authenticated, and not a master.
        if info.kind == NodeKind::Master {
            return refuse(
                ErrorCode::Refused,
                "a master cannot join another master: point pool-worker --master at this address instead".into(),
            );
        }
        if info.id != conn.node || info.name != conn.name {
            return refuse(
                ErrorCode::Refused,
                format!(
                    "the Join says {} ({}) but the handshake authenticated {} ({}): send the same identity in both",
                    info.name, info.id, conn.name, conn.node
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
        let mut effects = Vec::new();
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
            effects.extend(self.declare_down(other, DownReason::Replaced, now));
        }
        // 3. The same id reconnecting replaces its old session.
        let previous = self
            .members
            .get(id)
            .map(|m| (m.session, m.live, m.info.clone()));
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
        // A name the node lists is one of its own processes' — whoever
        // registered it: a worker watching a name another node registered
        // for one of its processes (`WatchName`) lists it too, so that it
        // comes back after a master restart.
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
        let mut adoption = self.apps.adopt(id, &info.name, &running, |m| {
            m != id && members.get(m).is_some_and(|x| x.live)
        });
        // A node that comes back without having been declared down is not
        // fenced for a stale root: that root is stopped (StopApp), and a
        // root the master counted on it that it no longer runs (it died,
        // or the node stopped its work while cut off) starts again, there
        // or elsewhere, with a new generation.
        let unfenced_rejoin = rejoin && !was_down;
        let mut stale_roots = Vec::new();
        let mut lost_roots = Vec::new();
        if unfenced_rejoin {
            stale_roots = std::mem::take(&mut adoption.stop);
            lost_roots = self.apps.lost_roots(id, &running);
            if !lost_roots.is_empty() {
                self.dirty = true;
                warn!(node = %info.name, apps = ?lost_roots,
                    "the node came back without application roots it ran: starting them again");
            }
        }
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
        // 5. Welcome: the joiner; the shell adds every live node (whose
        //    entries it keeps encoded: a join costs no O(n) encoding).
        let welcome = Welcome {
            members: vec![info.clone()],
            report_interval_ms: ms(self.settings.report_interval),
            node_timeout_ms: ms(self.settings.node_timeout),
            fence,
            members_next: 0,
        };
        effects.push(Effect::Welcome {
            to: conn.session,
            id: req,
            welcome,
        });
        self.members.insert(Member {
            info: info.clone(),
            functions: functions.into_iter().collect(),
            wasm,
            session: conn.session,
            live: was_live,
            leaving: false,
        });
        // The previous session of the same node closes without a down.
        if let Some((old, ..)) = &previous
            && *old != conn.session
        {
            effects.push(Effect::Close(*old));
        }
        for app in stale_roots {
            effects.push(Effect::Request(NodeRequest::StopApp {
                to: conn.session,
                app,
            }));
        }
        // 6. Announce it, or wait for Ready.
        if live && !was_live {
            effects.extend(self.make_live(id, now));
        } else {
            if was_live && previous.as_ref().is_some_and(|p| p.2 != info) {
                // Reconnected with new details (address, labels): tell
                // everyone.
                self.table_add(id, now.at);
                effects.push(Effect::Membership(MemberChange::Up(info.clone())));
            }
            if !lost_roots.is_empty() {
                effects.extend(self.schedule(now));
            }
        }
        info!(node = %info.name, id = %id, kind = ?info.kind, addr = %info.addr, live,
            fenced = !live, rejoin = previous.is_some(), "node joined");
        (Joined::Welcomed { fenced: !live }, effects)
    }

    /// `Ready` after fencing, on connection `conn`.
    pub(crate) fn ready(
        &mut self,
        conn: &Conn,
        now: Now,
    ) -> (Result<(), RemoteError>, Vec<Effect>) {
        match self.members.get(conn.node) {
            Some(m) if m.session == conn.session => {
                if m.live {
                    (Ok(()), Vec::new())
                } else {
                    info!(node = %m.info.name, "node finished fencing");
                    (Ok(()), self.make_live(conn.node, now))
                }
            }
            _ => (
                Err(RemoteError::new(
                    ErrorCode::Refused,
                    "Ready before Join: send Join first",
                )),
                Vec::new(),
            ),
        }
    }

    /// Puts member `id` in the load table (or updates its row): its info
    /// and the functions it registers, which placement filters on.
    fn table_add(&mut self, id: NodeId, at: Instant) {
        if let Some(m) = self.members.get(id) {
            self.table.add_node(m.info.clone(), at);
            self.table.set_functions(id, m.functions.iter().cloned());
            self.table.set_wasm(id, m.wasm);
            self.loads.node_changed(id);
        }
    }

    /// Counts node `id` as live: placed on, watched, announced.
    fn make_live(&mut self, id: NodeId, now: Now) -> Vec<Effect> {
        let Some(m) = self.members.get_mut(id) else {
            return Vec::new();
        };
        m.live = true;
        let info = m.info.clone();
        self.table_add(id, now.at);
        if info.kind == NodeKind::Worker {
            self.detector.register(id, now.at);
        }
        if self.downs.remove(id) {
            self.dirty = true;
        }
        if info.kind == NodeKind::Worker {
            self.activity.node_up(&info, now.ms);
        }
        let mut effects = vec![Effect::Membership(MemberChange::Up(info.clone()))];
        self.update_gauges();
        // A node that joins may be the one a pending app waits for: every
        // pending app tries now rather than at the end of its backoff. A
        // worker that takes the name of an incarnation that apps are held
        // for (after a master restart) ends their hold: that one is gone.
        self.apps.retry_now(now.at);
        if info.kind == NodeKind::Worker && self.apps.release_holds_of(&info.name, id) {
            self.dirty = true;
        }
        effects.extend(self.schedule(now));
        effects
    }

    /// `Leave` on connection `conn`: nothing more is placed on the node.
    /// False if `conn` is not its node's current session.
    pub(crate) fn leave(&mut self, conn: &Conn) -> bool {
        match self.members.get_mut(conn.node) {
            Some(m) if m.session == conn.session => {
                m.leaving = true;
                self.table.remove_node(conn.node);
                self.loads.gone(conn.node);
                info!(node = %conn.name, "node is leaving");
                true
            }
            _ => false,
        }
    }

    // ----- going down ------------------------------------------------------

    /// The connection `conn` closed. If it was its node's current session,
    /// the node is down (`Left` after a `Leave`).
    pub(crate) fn session_closed(&mut self, conn: &Conn, now: Now) -> Vec<Effect> {
        let Some(m) = self.members.get(conn.node) else {
            return Vec::new();
        };
        if m.session != conn.session {
            return Vec::new(); // replaced by a newer session of the same node
        }
        let reason = if m.leaving {
            DownReason::Left
        } else {
            DownReason::ConnectionClosed
        };
        self.declare_down(conn.node, reason, now)
    }

    /// Declares `node` down: forgets it everywhere, removes its names,
    /// re-places its app roots, remembers its id for fencing and tells every
    /// other node (if it was live). Nothing if it is no member.
    pub(crate) fn declare_down(
        &mut self,
        node: NodeId,
        reason: DownReason,
        now: Now,
    ) -> Vec<Effect> {
        let Some(m) = self.members.remove(node) else {
            return Vec::new();
        };
        // Its last status line, for the dashboard's card of a down node.
        let last = m
            .live
            .then(|| self.table.status(now.at).into_iter().find(|s| s.id == node))
            .flatten();
        self.table.remove_node(node);
        self.loads.gone(node);
        self.detector.forget(node);
        let names = self.names.remove_node(node);
        let apps = self.apps.node_down(node);
        // Only a worker that may come back (cut off, not stopped) needs to
        // be fenced; clients such as poolctl and workers that left are not
        // remembered.
        let worker = m.info.kind == NodeKind::Worker;
        if worker && reason != DownReason::Left {
            self.downs.insert(node, reason.clone(), now.ms);
            self.metrics.node_dead(node, &m.info.name);
            self.dirty = true;
        }
        let mut effects = Vec::new();
        if m.live {
            effects.push(Effect::Membership(MemberChange::Down {
                node,
                reason: reason.clone(),
            }));
        }
        // A client (poolctl) hanging up is no node going down.
        if worker {
            self.metrics.node_down(&reason);
        }
        match last {
            Some(last) if worker => self.activity.node_down(last, &reason, &apps, now.ms),
            _ => self.activity.forget(node),
        }
        self.update_gauges();
        if worker {
            info!(node = %m.info.name, id = %node, %reason, names = names.len(), apps = ?apps, "node down");
        } else {
            debug!(node = %m.info.name, id = %node, %reason, "client left");
        }
        effects.push(Effect::Close(m.session));
        effects.extend(self.schedule(now));
        effects
    }

    /// The failure watch's check: declares down every worker silent for
    /// the node timeout — unless the master itself did not run (every
    /// node gets a fresh grace period) or it hears fewer than half of its
    /// workers (it is the one cut off); see [`FailureDetector::check`].
    pub(crate) fn tick(&mut self, now: Now) -> Vec<Effect> {
        let down = match self.detector.check(now.at) {
            Verdict::Judged(down) => {
                if self.minority.clear() {
                    info!(
                        "the master hears a majority of its workers again: silent ones are judged as usual"
                    );
                }
                down
            }
            Verdict::Paused { gap } => {
                warn!(
                    ?gap,
                    nodes = self.detector.len(),
                    "the master did not run for longer than half the node timeout (stopped or stalled): every node gets a fresh grace period instead of a verdict on reports the master could not read"
                );
                Vec::new()
            }
            Verdict::Minority {
                heard,
                live,
                silent,
            } => {
                if let Some(left_out) = self.minority.note(now.at) {
                    warn!(
                        heard,
                        live,
                        silent,
                        left_out,
                        "the master hears fewer than half of its live workers: it is the one cut off, so it declares none of them down by timeout (closed connections still count)"
                    );
                }
                Vec::new()
            }
        };
        let mut effects = Vec::new();
        for d in down {
            effects.extend(self.declare_down(d.node, d.reason, now));
        }
        effects
    }

    /// A load report from `node`; false if the node is not live.
    pub(crate) fn report(&mut self, node: NodeId, report: LoadReport, now: Instant) -> bool {
        if !self.detector.on_report(node, now) {
            return false;
        }
        let taken = self.table.on_report(node, report, now);
        if taken {
            self.loads.load_changed(node);
        }
        taken
    }

    /// Connection `session` watches the load table (`WatchLoads`): its copy.
    pub(crate) fn watch_loads(&mut self, session: SessionId) -> LoadTableCopy {
        self.loads
            .watch(session, &self.table, self.settings.placement)
    }

    /// Connection `session` closed: it watches no more.
    pub(crate) fn unwatch_loads(&mut self, session: SessionId) {
        self.loads.unwatch(session);
    }

    /// Placements a node made on its copy of the table (`PlacedNotice` on
    /// connection `session`): counted as the master's own are, so that its
    /// accounting and the other copies include them. Nodes no longer in
    /// the table are skipped. Returns how many were counted.
    pub(crate) fn placed_notice(&mut self, session: SessionId, notice: &PlacedNotice) -> u64 {
        let mut counted = 0;
        for &(id, n) in &notice.placed {
            if self.table.record_placements(id, n) {
                self.loads.load_changed(id);
                counted += u64::from(n);
            }
        }
        self.loads.noticed(session, notice.seq);
        if counted > 0 {
            // Told placements are the default strategy's or keyed; they
            // count under the default strategy.
            let label = Some(self.settings.placement);
            self.metrics.placed(label, counted);
            self.metrics.spawned(label, counted);
        }
        counted
    }

    /// Forgets down ids past their retention at wall-clock `now_ms`.
    pub(crate) fn prune_downs(&mut self, now_ms: u64) {
        if self.downs.prune(self.settings.down_retention, now_ms) {
            self.dirty = true;
        }
        self.metrics.forget_dead(|id| self.downs.contains(id));
    }

    // ----- placement and listings ------------------------------------------

    /// Answers a placement query at wall-clock `now_ms`.
    pub(crate) fn place(
        &mut self,
        query: &PlaceQuery,
        now_ms: u64,
    ) -> Result<Vec<Placed>, PlaceError> {
        let ids = self
            .table
            .place(query, self.settings.placement, &mut self.rng)
            .inspect_err(|_| {
                if query.commit {
                    self.metrics.spawn_failed(SpawnFailure::NoNode);
                }
            })?;
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
        if query.commit {
            for &id in &ids {
                self.loads.load_changed(id);
            }
        }
        for id in ids {
            match out.last() {
                Some(last) if last.id == id => out.push(last.clone()),
                _ => out.extend(self.table.placed(id)),
            }
        }
        if query.commit {
            let strategy = label.map_or("keyed", PlacementStrategy::as_str);
            self.activity
                .placed(strategy, out.iter().map(|p| p.name.as_str()), now_ms);
        }
        Ok(out)
    }

    /// Takes the dashboard's once-a-second sample of every live worker.
    pub(crate) fn sample_activity(&mut self, now: Now) {
        let table = &self.table;
        let status: Vec<NodeStatus> = table
            .status(now.at)
            .into_iter()
            .filter(|s| table.info(s.id).is_some_and(|i| i.kind == NodeKind::Worker))
            .collect();
        let nodes = status.iter().map(|s| (s, table.last_report(s.id)));
        self.activity.sample(nodes, now.ms);
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

    // ----- names -----------------------------------------------------------

    /// `RegisterName`: false if taken, if the pid has a name, or if its
    /// node is not a member.
    pub(crate) fn register_name(&mut self, name: &str, pid: Pid) -> bool {
        self.members.get(pid.node()).is_some() && self.names.register(name, pid)
    }

    /// `RegisterName` from node `from`: [`register_name`](Self::register_name),
    /// and when the pid is a process of another live worker, a `WatchName`
    /// to that worker, so that the name follows its process: released
    /// when it dies (the registering node may not even be linked to it),
    /// listed by its node after a master restart.
    pub(crate) fn register_name_from(
        &mut self,
        from: NodeId,
        name: &str,
        pid: Pid,
    ) -> (bool, Vec<Effect>) {
        if !self.register_name(name, pid) {
            return (false, Vec::new());
        }
        let holder = pid.node();
        let watch = match self.members.get(holder) {
            Some(m) if holder != from && m.live && m.info.kind == NodeKind::Worker => {
                Some(Effect::Request(NodeRequest::WatchName {
                    to: m.session,
                    name: name.to_owned(),
                    pid,
                }))
            }
            _ => None,
        };
        (true, watch.into_iter().collect())
    }

    /// The pid's node refused to watch `name` (or its connection is gone):
    /// the name no longer follows its process, so it is released if `pid`
    /// still holds it. Returns whether it was.
    pub(crate) fn watch_failed(&mut self, name: &str, pid: Pid, why: &str) -> bool {
        let released = self.names.release(name, pid);
        if released {
            warn!(%name, %pid, why, "released a global name its process's node could not watch");
        }
        released
    }

    // ----- applications ----------------------------------------------------

    /// Turns root assignments into start requests on the chosen nodes'
    /// sessions, counting each as a spawn placed least-loaded.
    fn orders(&mut self, assignments: Vec<Assignment>) -> Vec<StartOrder> {
        let mut orders = Vec::with_capacity(assignments.len());
        for assignment in assignments {
            self.dirty = true;
            self.metrics
                .spawned(Some(PlacementStrategy::LeastLoaded), 1);
            let Some(m) = self.members.get(assignment.node) else {
                continue; // only members are in the load table
            };
            orders.push(StartOrder {
                to: m.session,
                name: m.info.name.clone(),
                assignment,
            });
        }
        orders
    }

    /// Places every app waiting for a node, where a node is available:
    /// one `StartRoot` request per app placed.
    pub(crate) fn schedule(&mut self, now: Now) -> Vec<Effect> {
        if self.apps.expire_holds(now.at) {
            self.dirty = true;
        }
        let choice = RootChoice {
            members: &self.members,
            table: &mut self.table,
            rng: &mut self.rng,
        };
        let (assignments, pending) = self.apps.schedule(now.at, choice);
        if pending {
            self.dirty = true;
            self.rearm = true;
        }
        self.orders(assignments)
            .into_iter()
            .map(|o| Effect::Request(NodeRequest::StartRoot(o)))
            .collect()
    }

    /// `TreeStart`: checks the tree, refuses a running id, records the app
    /// and chooses its root's node. With `text`, the tree file's text, the
    /// check goes through the tree-file parser, so an error names the file,
    /// the line and the field.
    pub(crate) fn tree_start(
        &mut self,
        spec: TreeSpec,
        source: Option<String>,
        text: Option<&str>,
    ) -> Result<StartOrder, RemoteError> {
        let choice = RootChoice {
            members: &self.members,
            table: &mut self.table,
            rng: &mut self.rng,
        };
        let assignment = self.apps.tree_start(spec, source, text, choice)?;
        self.orders(vec![assignment])
            .pop()
            .ok_or_else(|| RemoteError::new(ErrorCode::Internal, "the chosen node vanished"))
    }

    /// `TreeRestart`: a failed or stopped app runs again (a new
    /// generation, its reason cleared, its restart counts kept); the
    /// effects start its root where a node is available (it is pending
    /// otherwise). Refused for a running or pending app
    /// (`AlreadyRunning`) and an unknown one (`NotFound`).
    pub(crate) fn tree_restart(&mut self, id: &str, now: Now) -> Result<Vec<Effect>, RemoteError> {
        match self.apps.restart(id) {
            Ok(()) => {}
            Err(None) => return Err(unknown_tree(id)),
            Err(Some(status)) => {
                return Err(RemoteError::new(
                    ErrorCode::AlreadyRunning,
                    format!(
                        "tree {id} is {}: only a failed or stopped tree is restarted (stop it first with `poolctl tree stop {id}`)",
                        status.as_str()
                    ),
                ));
            }
        }
        self.dirty = true;
        info!(app = %id, "application restarted on request");
        Ok(self.schedule(now))
    }

    /// `TreeRemove`: forgets a failed or stopped app (the state directory
    /// forgets it with the next save). Refused for a running or pending
    /// app (`AlreadyRunning`) and an unknown one (`NotFound`).
    pub(crate) fn tree_remove(&mut self, id: &str) -> Result<(), RemoteError> {
        match self.apps.remove(id) {
            Ok(()) => {
                self.dirty = true;
                info!(app = %id, "application removed on request");
                Ok(())
            }
            Err(None) => Err(unknown_tree(id)),
            Err(Some(status)) => Err(RemoteError::new(
                ErrorCode::AlreadyRunning,
                format!(
                    "tree {id} is {}: stop it first with `poolctl tree stop {id}`, then remove it",
                    status.as_str()
                ),
            )),
        }
    }

    /// The node of `order` answered its `StartApp` (or did not): the app
    /// runs there, fails, or waits for a node again. A root that must not
    /// run is stopped.
    pub(crate) fn start_answered(
        &mut self,
        order: &StartOrder,
        answer: StartAnswer,
        now: Now,
    ) -> (Started, Vec<Effect>) {
        let a = &order.assignment;
        let stop = || {
            Effect::Request(NodeRequest::StopApp {
                to: order.to,
                app: a.app.clone(),
            })
        };
        let (code, reason, effects) = match answer {
            StartAnswer::Spawned(root) => {
                let mut effects = Vec::new();
                if self.apps.started(&a.app, a.generation, a.node, root) {
                    self.dirty = true;
                    info!(app = %a.app, generation = a.generation, %root, node = %order.name, "application root running");
                    self.activity
                        .app_started(&a.app, a.generation, &order.name, now.ms);
                } else {
                    // The app moved on meanwhile (stopped, or restarted
                    // elsewhere): this root must not run beside the other.
                    let elsewhere = self.apps.get(&a.app).is_none_or(|app| {
                        app.rec.status != pool_proto::AppStatus::Running
                            || app.rec.node != Some(a.node)
                    });
                    if elsewhere {
                        effects.push(stop());
                    }
                }
                return (Started::Root, effects);
            }
            StartAnswer::Failed { code, reason } => (code, reason, Vec::new()),
            StartAnswer::Timeout(timeout) => (
                ErrorCode::Unavailable,
                format!("{} did not start the root within {timeout:?}", order.name),
                // It may still start it late: ask it to stop.
                vec![stop()],
            ),
            StartAnswer::Closed => {
                // If this was still the node's session, its close declares
                // the node down and that re-places the root. Only when a
                // new session of the same node replaced this one is the
                // assignment void with the node still live: place again.
                let replaced = self
                    .members
                    .get(a.node)
                    .is_some_and(|m| m.session != order.to);
                let mut effects = Vec::new();
                if replaced && self.apps.unassign(&a.app, a.generation, a.node) {
                    self.dirty = true;
                    effects = self.schedule(now);
                }
                return (Started::Moved, effects);
            }
        };
        if crate::apps::transient(code) {
            // Transient is not failed: the app is pending and tries again
            // (issue 13 point 1); its restart intensity is untouched.
            warn!(app = %a.app, node = %order.name, %reason, "application root could not start now; pending, retried with backoff");
            if self
                .apps
                .start_deferred(&a.app, a.generation, a.node, reason.clone(), now.at)
            {
                self.dirty = true;
                self.rearm = true;
                self.activity.app_pending(&a.app, &reason, now.ms);
            }
            return (Started::Pending(RemoteError::new(code, reason)), effects);
        }
        warn!(app = %a.app, node = %order.name, %reason, "application failed to start");
        if self
            .apps
            .start_failed(&a.app, a.generation, a.node, reason.clone())
        {
            self.dirty = true;
            self.activity.app_failed(&a.app, &reason, now.ms);
        }
        (Started::Failed(RemoteError::new(code, reason)), effects)
    }

    /// An `AppEvent` from `node`: a child restart is counted and shown; a
    /// root's exit fails its app (or, on a leaving node, places it again).
    /// False if the event is about a root that does not run on `node`.
    pub(crate) fn app_event(
        &mut self,
        node: NodeId,
        event: AppEvent,
        now: Now,
    ) -> (bool, Vec<Effect>) {
        match event.kind {
            AppEventKind::ChildRestarted {
                supervisor,
                child,
                pid,
                reason,
            } => {
                self.metrics.restart(&event.app);
                if self.apps.child_restarted(&event.app, &supervisor, &child) {
                    self.dirty = true;
                }
                let at = pid.and_then(|p| self.name_of(p.node()));
                self.activity.child_restarted(
                    &event.app,
                    &supervisor,
                    &child,
                    at.as_deref(),
                    &reason.to_string(),
                    now.ms,
                );
                (true, Vec::new())
            }
            AppEventKind::RootExited(reason) => {
                let ours = self
                    .apps
                    .get(&event.app)
                    .is_some_and(|a| a.rec.node == Some(node));
                let leaving = self.members.get(node).is_some_and(|m| m.leaving);
                // Only a root that gave up fails its app, with its reason
                // in words; one that exited `normal` finished its work.
                let changed = if reason.is_normal() {
                    self.apps
                        .root_finished(&event.app, event.generation, node, leaving)
                } else {
                    self.apps.root_exited(
                        &event.app,
                        event.generation,
                        node,
                        reason.to_string(),
                        leaving,
                    )
                };
                if changed {
                    self.dirty = true;
                    info!(app = %event.app, %reason, leaving, "application root exited");
                    if !leaving {
                        self.activity.app_failed(
                            &event.app,
                            &format!("its root exited: {reason}"),
                            now.ms,
                        );
                    }
                }
                // A root that stopped with its leaving node goes elsewhere.
                let effects = if leaving {
                    self.schedule(now)
                } else {
                    Vec::new()
                };
                (ours, effects)
            }
        }
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

/// The error for an unknown app.
pub(crate) fn unknown_tree(id: &str) -> RemoteError {
    RemoteError::new(
        ErrorCode::NotFound,
        format!("no tree {id}: `poolctl tree ls` lists the trees the master keeps"),
    )
}

/// How often the warning of a master in the minority is repeated while
/// the minority lasts.
const MINORITY_WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate limit of the minority warning: logged when the minority begins,
/// then at most once per [`MINORITY_WARN_EVERY`] with the number of checks
/// left out, so a long partition does not flood the log.
#[derive(Clone, Debug, Default)]
pub(crate) struct MinorityLog {
    /// When the warning was last logged, while the minority lasts.
    last: Option<Instant>,
    /// Checks in the minority since, not logged.
    left_out: u64,
}

impl MinorityLog {
    /// One more check in the minority at `now`: `Some(left_out)` if it is
    /// to be logged.
    pub(crate) fn note(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < MINORITY_WARN_EVERY => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }

    /// The minority is over; true if it was on.
    pub(crate) fn clear(&mut self) -> bool {
        self.left_out = 0;
        self.last.take().is_some()
    }
}

/// Whole milliseconds, saturating.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
