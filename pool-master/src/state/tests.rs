//! Unit tests of the pool state's transitions: what a join, a `Ready`, a
//! `Leave`, a node going down, a root's start and exit decide, and the
//! effects each returns, asserted exactly. Plain `#[test]`s: no runtime, no
//! socket, time passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_place::load_table::LoadTable;
use pool_proto::{
    AppEvent, AppEventKind, AppStatus, ChildSpecData, DownReason, ErrorCode, ExitReason, Fence,
    Join, LoadReport, MemberChange, NodeId, NodeInfo, NodeKind, Pid, PlacementStrategy, RunningApp,
    Strategy, SupervisorSpec, TreeSpec, Welcome,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::apps::{AppRecord, Apps, Assignment};
use crate::clock::Now;
use crate::membership::{Conn, DownList, SessionId};
use crate::metrics::Metrics;

/// The request id every test `Join` carries.
const REQ: u64 = 1;
/// The wall clock at the fixture's origin, ms since the epoch.
const WALL0: u64 = 1_700_000_000_000;
/// The node timeout of the fixture.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);

fn n(v: u64) -> NodeId {
    NodeId::from_u64(v)
}

fn s(v: u64) -> SessionId {
    SessionId(v)
}

/// Worker `v`, named `w{v}`.
fn worker(v: u64) -> NodeInfo {
    named(v, &format!("w{v}"))
}

/// Worker `v` under another name.
fn named(v: u64, name: &str) -> NodeInfo {
    NodeInfo {
        id: n(v),
        name: name.to_owned(),
        addr: format!("127.0.0.1:{}", 7000 + v),
        kind: NodeKind::Worker,
        capacity: 1,
        labels: Default::default(),
    }
}

/// The connection `session` of node `info`.
fn conn(info: &NodeInfo, session: SessionId) -> Conn {
    Conn {
        session,
        node: info.id,
        name: info.name.clone(),
    }
}

/// A `Join` of `info` registering `functions`, holding nothing.
fn join_of(info: NodeInfo, functions: &[&str]) -> Join {
    Join {
        info,
        functions: functions.iter().map(|f| (*f).to_owned()).collect(),
        names: Vec::new(),
        apps: Vec::new(),
        rejoin: false,
        wasm: false,
    }
}

/// A tree whose one worker child runs `function`.
fn tree(id: &str, function: &str) -> TreeSpec {
    let mut sup = SupervisorSpec::new(id, Strategy::OneForOne);
    sup.children.push(ChildSpecData::worker(
        "w",
        function,
        serde_json::Value::Null,
    ));
    TreeSpec { supervisor: sup }
}

/// The `Welcome` answer on `to` to `joiner` (the shell lists the other
/// live members beside it).
fn welcome(to: SessionId, joiner: NodeInfo, fence: Option<Fence>) -> Effect {
    Effect::Welcome {
        to,
        id: REQ,
        welcome: Welcome {
            members: vec![joiner],
            report_interval_ms: 500,
            node_timeout_ms: 3000,
            fence,
            members_next: 0,
        },
    }
}

/// The change "`info` is live", for every welcomed connection.
fn node_up(info: NodeInfo) -> Effect {
    Effect::Membership(MemberChange::Up(info))
}

/// The change "`node` is gone", for every welcomed connection.
fn node_down(node: u64, reason: DownReason) -> Effect {
    Effect::Membership(MemberChange::Down {
        node: n(node),
        reason,
    })
}

fn start(app: &str, generation: u64, function: &str, on: &NodeInfo, to: SessionId) -> Effect {
    Effect::Request(NodeRequest::StartRoot(order(
        app, generation, function, on, to,
    )))
}

fn order(app: &str, generation: u64, function: &str, on: &NodeInfo, to: SessionId) -> StartOrder {
    StartOrder {
        assignment: Assignment {
            app: app.to_owned(),
            generation,
            node: on.id,
            spec: tree(app, function),
        },
        to,
        name: on.name.clone(),
    }
}

/// A pool state under test and the origin of its clock.
struct Fixture {
    state: PoolState,
    t0: Instant,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with_apps(|_| Apps::default())
    }

    /// A master restarted with the apps `apps(t0)` builds.
    fn with_apps(apps: impl FnOnce(Instant) -> Apps) -> Self {
        let t0 = Instant::now();
        let settings = PoolSettings {
            placement: PlacementStrategy::LeastLoaded,
            node_timeout: NODE_TIMEOUT,
            report_interval: Duration::from_millis(500),
            down_retention: Duration::from_secs(3600),
        };
        let state = PoolState::new(
            settings,
            LoadTable::default(),
            apps(t0),
            DownList::default(),
            Arc::new(Metrics::new()),
            StdRng::seed_from_u64(7),
        );
        Fixture { state, t0 }
    }

    /// Both clocks, `ms` after the origin.
    fn at(&self, ms: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(ms),
            ms: WALL0 + ms,
        }
    }

    /// Worker `v` joins on session `v` at time 0, registering
    /// `builtin.echo`; its effects, normalised.
    fn join(&mut self, v: u64) -> (Joined, Vec<Effect>) {
        self.join_with(s(v), join_of(worker(v), &["builtin.echo"]))
    }

    /// `join` joins on `session` at time 0.
    fn join_with(&mut self, session: SessionId, join: Join) -> (Joined, Vec<Effect>) {
        let c = conn(&join.info, session);
        let now = self.at(0);
        let (joined, effects) = self.state.join(&c, REQ, join, now);
        (joined, effects)
    }

    /// Node `v` reports run queue `rq`, at `ms`.
    fn report(&mut self, v: u64, rq: u32, ms: u64) {
        let report = LoadReport {
            seq: ms + 1,
            run_queue: rq,
            ..LoadReport::default()
        };
        let at = self.at(ms).at;
        assert!(self.state.report(n(v), report, at));
    }

    /// Starts tree `app` (running `function`) and has its node answer
    /// `Spawned(root)`; returns the order.
    fn run_tree(&mut self, app: &str, function: &str, root: Pid) -> StartOrder {
        let order = self
            .state
            .tree_start(tree(app, function), None, None)
            .unwrap();
        let now = self.at(0);
        let (started, effects) = self
            .state
            .start_answered(&order, StartAnswer::Spawned(root), now);
        assert_eq!((started, effects), (Started::Root, Vec::new()));
        order
    }

    fn live(&self, v: u64) -> bool {
        self.state.members.get(n(v)).is_some_and(|m| m.live)
    }
}

// ----- joining -------------------------------------------------------------

/// A fresh worker is welcomed (the shell lists every live node beside it),
/// without a fence, counted live at once, and announced: a change every
/// welcomed connection is sent, recorded for the first one too (the list
/// later joiners get is made of these changes).
#[test]
fn fresh_worker_is_welcomed_then_announced() {
    let mut f = Fixture::new();
    let (joined, effects) = f.join(1);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(
        effects,
        vec![welcome(s(1), worker(1), None), node_up(worker(1))]
    );

    let (joined, effects) = f.join(2);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(
        effects,
        vec![welcome(s(2), worker(2), None), node_up(worker(2))]
    );
    assert!(f.live(2));
    assert!(f.state.detector.contains(n(2)));
    assert_eq!(f.state.table.len(), 2);
}

/// A master, a `Join` that names another node than the handshake did, and
/// an empty name are refused with a reason, and leave no member behind.
#[test]
fn join_refuses_masters_impostors_and_empty_names() {
    let mut f = Fixture::new();
    let mut master = worker(1);
    master.kind = NodeKind::Master;
    let (joined, effects) = f.join_with(s(1), join_of(master, &[]));
    assert!(matches!(joined, Joined::Refused(e) if e.code == ErrorCode::Refused));
    assert!(effects.is_empty());

    let c = conn(&worker(2), s(2));
    let (joined, effects) = f.state.join(&c, REQ, join_of(worker(3), &[]), f.at(0));
    match joined {
        Joined::Refused(e) => {
            assert_eq!(e.code, ErrorCode::Refused);
            assert!(
                e.message.contains("handshake authenticated w2"),
                "{}",
                e.message
            );
        }
        other => panic!("an impostor was welcomed: {other:?}"),
    }
    assert!(effects.is_empty());

    let (joined, _) = f.join_with(s(4), join_of(named(4, " "), &[]));
    assert!(matches!(joined, Joined::Refused(e) if e.code == ErrorCode::BadRequest));
    for v in 1..=4 {
        assert!(f.state.members.get(n(v)).is_none());
    }
}

/// Names are unique among live nodes: another incarnation cannot join
/// under a live node's name, and the live node keeps it.
#[test]
fn duplicate_live_name_is_refused() {
    let mut f = Fixture::new();
    f.join(1);
    let (joined, effects) = f.join_with(s(9), join_of(named(9, "w1"), &[]));
    assert!(matches!(joined, Joined::Refused(e) if e.code == ErrorCode::DuplicateName));
    assert!(effects.is_empty());
    let holder = f.state.members.by_name("w1").unwrap();
    assert_eq!((holder.info.id, holder.session), (n(1), s(1)));
    assert!(f.state.members.get(n(9)).is_none());
}

/// The same incarnation joining again replaces its old session: it is
/// welcomed at once (it was live), its old connection is closed, nobody
/// is told anything (its details did not change), and the old session's
/// close then declares nothing.
#[test]
fn reconnect_replaces_the_old_session() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    let (joined, effects) = f.join_with(s(101), join_of(worker(1), &["builtin.echo"]));
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(
        effects,
        vec![welcome(s(101), worker(1), None), Effect::Close(s(1))]
    );
    assert_eq!(f.state.members.get(n(1)).unwrap().session, s(101));

    let effects = f.state.session_closed(&conn(&worker(1), s(1)), f.at(10));
    assert!(effects.is_empty());
    assert!(f.live(1));
}

/// A live node that reconnects with new details (a new address) is
/// announced again, so that the others dial the new address.
#[test]
fn reconnect_with_a_new_address_is_announced() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    let mut moved = worker(1);
    moved.addr = "127.0.0.1:9999".into();
    let (_, effects) = f.join_with(s(101), join_of(moved.clone(), &["builtin.echo"]));
    assert_eq!(
        effects,
        vec![
            welcome(s(101), moved.clone(), None),
            Effect::Close(s(1)),
            node_up(moved),
        ]
    );
    assert_eq!(f.state.table.info(n(1)).unwrap().addr, "127.0.0.1:9999");
}

/// A rejoin drops the global names of the node that its `Join` no longer
/// lists (their holders died while it was cut off) and keeps the others,
/// without fencing it.
#[test]
fn rejoin_drops_names_it_no_longer_holds() {
    let mut f = Fixture::new();
    f.join(1);
    assert!(f.state.register_name("kept", Pid::new(n(1), 1)));
    assert!(f.state.register_name("gone", Pid::new(n(1), 2)));
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.names = vec![("kept".to_owned(), Pid::new(n(1), 1))];
    let (joined, _) = f.join_with(s(101), join);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(f.state.names.whereis("kept"), Some(Pid::new(n(1), 1)));
    assert_eq!(f.state.names.whereis("gone"), None);
}

// ----- going down, fencing, Ready -----------------------------------------

/// w1 runs tree `a` (root `<1.7>`) and holds the name `db`; w2 is loaded,
/// so w1 was chosen.
fn pool_with_a_root_on_w1() -> Fixture {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    f.report(1, 0, 100);
    f.report(2, 3, 100);
    let order = f.run_tree("a", "builtin.echo", Pid::new(n(1), 7));
    assert_eq!(order, self::order("a", 1, "builtin.echo", &worker(1), s(1)));
    assert!(f.state.register_name("db", Pid::new(n(1), 8)));
    f
}

/// A node declared down is announced to the others, its connection is
/// closed, its names are freed, its id is kept for fencing, and its
/// application roots are started on a live worker with the next
/// generation.
#[test]
fn declare_down_announces_closes_and_restarts_roots_elsewhere() {
    let mut f = pool_with_a_root_on_w1();
    let effects = f.state.declare_down(n(1), DownReason::Timeout, f.at(200));
    assert_eq!(
        effects,
        vec![
            node_down(1, DownReason::Timeout),
            Effect::Close(s(1)),
            start("a", 2, "builtin.echo", &worker(2), s(2)),
        ]
    );
    assert!(f.state.members.get(n(1)).is_none());
    assert_eq!(f.state.names.whereis("db"), None);
    assert!(f.state.downs.contains(n(1)));
    assert!(f.state.dirty);
    // Declaring it again finds nothing to do.
    assert!(
        f.state
            .declare_down(n(1), DownReason::Timeout, f.at(300))
            .is_empty()
    );
}

/// A node that comes back after being declared down is fenced: its
/// `Welcome` lists the roots it must stop (they run elsewhere now) and
/// the names it lost (taken meanwhile); it is not live, not placed on, and
/// nobody is told until its `Ready`.
#[test]
fn rejoin_after_down_is_fenced() {
    let mut f = pool_with_a_root_on_w1();
    let effects = f.state.declare_down(n(1), DownReason::Timeout, f.at(200));
    let Some(Effect::Request(NodeRequest::StartRoot(moved))) = effects.last().cloned() else {
        panic!("the root was not restarted: {effects:?}");
    };
    let (started, _) =
        f.state
            .start_answered(&moved, StartAnswer::Spawned(Pid::new(n(2), 3)), f.at(250));
    assert_eq!(started, Started::Root);
    assert!(f.state.register_name("db", Pid::new(n(2), 4)));

    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.names = vec![("db".to_owned(), Pid::new(n(1), 8))];
    join.apps = vec![RunningApp {
        app: "a".into(),
        generation: 1,
        root: Pid::new(n(1), 7),
    }];
    join.rejoin = true;
    let (joined, effects) = f.join_with(s(101), join);
    assert_eq!(joined, Joined::Welcomed { fenced: true });
    let fence = Fence {
        stop_apps: vec!["a".into()],
        lost_names: vec!["db".into()],
    };
    assert_eq!(effects, vec![welcome(s(101), worker(1), Some(fence))]);
    assert!(!f.live(1));
    assert!(f.state.table.info(n(1)).is_none());
    assert!(!f.state.detector.contains(n(1)));
    assert_eq!(f.state.names.whereis("db"), Some(Pid::new(n(2), 4)));
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!((a.node, a.generation), (Some(n(2)), 2));
}

/// `Ready` from the fenced node's session makes it live: announced to the
/// others, placed on, watched, and no longer remembered as down. A second
/// `Ready` changes nothing; one from a session that is not the node's is
/// refused.
#[test]
fn ready_after_fencing_makes_the_node_live() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    let _ = f.state.declare_down(n(1), DownReason::Timeout, f.at(100));
    let (joined, _) = f.join_with(s(101), join_of(worker(1), &["builtin.echo"]));
    assert_eq!(joined, Joined::Welcomed { fenced: true });

    let (res, effects) = f.state.ready(&conn(&worker(1), s(101)), f.at(200));
    assert_eq!(res, Ok(()));
    assert_eq!(effects, vec![node_up(worker(1))]);
    assert!(f.live(1));
    assert!(f.state.table.info(n(1)).is_some());
    assert!(f.state.detector.contains(n(1)));
    assert!(!f.state.downs.contains(n(1)));

    let (res, effects) = f.state.ready(&conn(&worker(1), s(101)), f.at(300));
    assert_eq!((res, effects), (Ok(()), Vec::new()));
    let (res, effects) = f.state.ready(&conn(&worker(1), s(1)), f.at(300));
    assert!(matches!(res, Err(e) if e.code == ErrorCode::Refused));
    assert!(effects.is_empty());
}

/// A fencing node (not live) loses its name to a new incarnation that
/// joins under it: the old one is declared down `Replaced` (quietly: it
/// was never announced) and closed, the newcomer welcomed and announced.
#[test]
fn fencing_node_is_replaced_by_a_newcomer_of_its_name() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    let _ = f.state.declare_down(n(1), DownReason::Timeout, f.at(100));
    let (joined, _) = f.join_with(s(101), join_of(worker(1), &[]));
    assert_eq!(joined, Joined::Welcomed { fenced: true });

    let newcomer = named(11, "w1");
    let (joined, effects) = f.join_with(s(11), join_of(newcomer.clone(), &[]));
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(
        effects,
        vec![
            Effect::Close(s(101)),
            welcome(s(11), newcomer.clone(), None),
            node_up(newcomer),
        ]
    );
    assert!(f.state.members.get(n(1)).is_none());
    let downs = f.state.downs.records();
    assert_eq!(downs.len(), 1);
    assert_eq!(
        (downs[0].node, &downs[0].reason),
        (n(1), &DownReason::Replaced)
    );
}

/// After a master restart, a node that rejoins with the root the master
/// had assigned it is adopted: no fence, nothing started, the hold ends.
#[test]
fn running_root_is_adopted_after_a_master_restart() {
    let root = Pid::new(n(1), 7);
    let mut f = Fixture::with_apps(|t0| {
        Apps::restore(
            vec![AppRecord {
                id: "a".into(),
                spec: tree("a", "builtin.echo"),
                source: None,
                generation: 3,
                status: AppStatus::Running,
                reason: None,
                node: Some(n(1)),
                root: Some(root),
                node_name: None,
            }],
            t0 + Duration::from_secs(10),
        )
    });
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.apps = vec![RunningApp {
        app: "a".into(),
        generation: 3,
        root,
    }];
    let (joined, effects) = f.join_with(s(1), join);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(
        effects,
        vec![welcome(s(1), worker(1), None), node_up(worker(1))]
    );
    let a = f.state.apps.get("a").unwrap();
    assert_eq!(
        (a.rec.node, a.rec.root, a.hold_until),
        (Some(n(1)), Some(root), None)
    );
    assert!(f.state.dirty);
}

/// After a master restart, a root is held for its node during the grace
/// period; when it ends with the node still away, the root starts on a
/// live worker with the next generation.
#[test]
fn held_root_starts_elsewhere_when_the_grace_ends() {
    let mut f = Fixture::with_apps(|t0| {
        Apps::restore(
            vec![AppRecord {
                id: "a".into(),
                spec: tree("a", "builtin.echo"),
                source: None,
                generation: 3,
                status: AppStatus::Running,
                reason: None,
                node: Some(n(1)),
                root: Some(Pid::new(n(1), 7)),
                node_name: None,
            }],
            t0 + Duration::from_secs(10),
        )
    });
    let (_, effects) = f.join(2);
    assert_eq!(
        effects,
        vec![welcome(s(2), worker(2), None), node_up(worker(2))]
    );
    assert!(f.state.schedule(f.at(9_999)).is_empty());
    assert_eq!(
        f.state.schedule(f.at(10_000)),
        vec![start("a", 4, "builtin.echo", &worker(2), s(2))]
    );
}

/// After a master restart, a worker that joins under the name of the
/// incarnation a root is held for (the old one was killed and restarted)
/// ends the hold: the root starts at once, not when the grace period ends.
#[test]
fn a_newer_incarnation_of_the_name_ends_the_hold() {
    let mut f = Fixture::with_apps(|t0| {
        Apps::restore(
            vec![AppRecord {
                id: "a".into(),
                spec: tree("a", "builtin.echo"),
                source: None,
                generation: 3,
                status: AppStatus::Running,
                reason: None,
                node: Some(n(1)),
                root: Some(Pid::new(n(1), 7)),
                node_name: Some("w1".into()),
            }],
            t0 + Duration::from_secs(10),
        )
    });
    // Another worker joining changes nothing: still held.
    let (_, effects) = f.join(2);
    assert_eq!(
        effects,
        vec![welcome(s(2), worker(2), None), node_up(worker(2))]
    );
    // Incarnation 3 of w1 joins: the root starts now.
    let (_, effects) = f.join_with(s(3), join_of(named(3, "w1"), &["builtin.echo"]));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Request(NodeRequest::StartRoot(o)) if o.assignment.app == "a" && o.assignment.generation == 4)),
        "{effects:#?}"
    );
}

/// A node that rejoins with a root of an older generation than the one
/// running elsewhere is fenced with that app to stop.
#[test]
fn stale_root_is_fenced() {
    let mut f = Fixture::new();
    f.join(2);
    f.run_tree("a", "builtin.echo", Pid::new(n(2), 1));
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.apps = vec![RunningApp {
        app: "a".into(),
        generation: 0,
        root: Pid::new(n(1), 9),
    }];
    let (joined, effects) = f.join_with(s(1), join);
    assert_eq!(joined, Joined::Welcomed { fenced: true });
    let fence = Fence {
        stop_apps: vec!["a".into()],
        lost_names: Vec::new(),
    };
    assert_eq!(effects, vec![welcome(s(1), worker(1), Some(fence))]);
    assert_eq!(f.state.apps.get("a").unwrap().rec.node, Some(n(2)));
}

/// `Leave` takes the node out of placement at once; its disconnect is then
/// a `Left` down, which is not remembered for fencing. A `Leave` from a
/// session that is not the node's current one changes nothing.
#[test]
fn leave_then_close_is_a_left_down() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    assert!(!f.state.leave(&conn(&worker(2), s(99))));
    assert!(f.state.leave(&conn(&worker(1), s(1))));
    assert!(f.state.table.info(n(1)).is_none());
    let effects = f.state.session_closed(&conn(&worker(1), s(1)), f.at(100));
    assert_eq!(
        effects,
        vec![node_down(1, DownReason::Left), Effect::Close(s(1))]
    );
    assert!(!f.state.downs.contains(n(1)));
    assert!(f.state.members.get(n(1)).is_none());
}

/// A worker silent for the node timeout is declared down by `tick`; one
/// that reported meanwhile is not.
#[test]
fn tick_declares_silent_workers_down() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    f.report(2, 0, 2_000);
    assert!(f.state.tick(f.at(2_999)).is_empty());
    let effects = f.state.tick(f.at(3_500));
    assert_eq!(
        effects,
        vec![node_down(1, DownReason::Timeout), Effect::Close(s(1))]
    );
    assert!(f.live(2));
    assert_eq!(
        f.state.detector.next_deadline(),
        Some(f.at(2_000).at + NODE_TIMEOUT)
    );
}

// ----- placing application roots -------------------------------------------

/// A root goes to the least-loaded live worker among those that register
/// every function of its tree, and counts as load there until the next
/// report.
#[test]
fn root_goes_to_the_least_loaded_worker_with_its_functions() {
    let mut f = Fixture::new();
    f.join_with(s(1), join_of(worker(1), &["builtin.echo"]));
    f.join_with(s(2), join_of(worker(2), &["builtin.echo", "db.shard"]));
    f.join_with(s(3), join_of(worker(3), &["builtin.echo", "db.shard"]));
    f.report(1, 0, 100);
    f.report(2, 4, 100);
    f.report(3, 2, 100);
    let pick = |f: &mut Fixture, app: &str, function: &str| {
        f.state
            .tree_start(tree(app, function), None, None)
            .unwrap()
            .assignment
            .node
    };
    assert_eq!(pick(&mut f, "a", "db.shard"), n(3)); // w1 lacks db.shard
    assert_eq!(pick(&mut f, "b", "builtin.echo"), n(1));
    assert_eq!(pick(&mut f, "c", "db.shard"), n(3)); // 2 + 1 placed < 4
    // 2 + 2 ties w2's 4: a tie goes to the next node after the last chosen.
    assert_eq!(pick(&mut f, "d", "db.shard"), n(2));
}

/// An app waiting for a node waits while no worker is live (a hidden node
/// does not count), and starts on the first worker that joins, right after
/// its `Welcome` and `NodeUp`.
#[test]
fn root_waits_for_a_worker() {
    let mut f = Fixture::with_apps(|_| {
        let mut apps = Apps::default();
        apps.submit(tree("a", "builtin.echo"), None);
        apps
    });
    assert!(f.state.schedule(f.at(0)).is_empty());
    let mut client = named(50, "poolctl");
    client.kind = NodeKind::Hidden;
    let (_, effects) = f.join_with(s(50), join_of(client.clone(), &[]));
    client.addr.clear();
    assert_eq!(
        effects,
        vec![
            welcome(s(50), client.clone(), None),
            node_up(client.clone())
        ]
    );
    assert!(f.state.schedule(f.at(0)).is_empty());

    let (_, effects) = f.join(1);
    assert_eq!(
        effects,
        vec![
            welcome(s(1), worker(1), None),
            node_up(worker(1)),
            start("a", 1, "builtin.echo", &worker(1), s(1)),
        ]
    );
}

/// A root whose functions no live worker registers still goes to a
/// worker (the least loaded), where its start fails with the reason.
#[test]
fn root_without_a_capable_worker_goes_to_any_worker() {
    let mut f = Fixture::with_apps(|_| {
        let mut apps = Apps::default();
        apps.submit(tree("a", "db.shard"), None);
        apps
    });
    let (_, effects) = f.join(1);
    assert_eq!(
        effects,
        vec![
            welcome(s(1), worker(1), None),
            node_up(worker(1)),
            start("a", 1, "db.shard", &worker(1), s(1)),
        ]
    );
}

/// `TreeStart` refuses a function no live worker registers (naming the
/// live workers), a tree whose id runs (naming its node), and — with no
/// worker at all — a tree it could not place.
#[test]
fn tree_start_checks_before_recording() {
    let mut f = Fixture::new();
    let empty = TreeSpec {
        supervisor: SupervisorSpec::new("empty", Strategy::OneForOne),
    };
    let e = f.state.tree_start(empty, None, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::NoNode);
    assert!(f.state.apps.get("empty").is_none());

    f.join(1);
    let e = f
        .state
        .tree_start(tree("a", "db.shard"), Some("a.toml".into()), None)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSpec);
    assert!(
        e.message.contains("a.toml")
            && e.message.contains("\"db.shard\"")
            && e.message.contains("live workers: w1"),
        "{}",
        e.message
    );
    assert!(f.state.apps.get("a").is_none());

    f.run_tree("b", "builtin.echo", Pid::new(n(1), 2));
    let e = f
        .state
        .tree_start(tree("b", "builtin.echo"), None, None)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyRunning);
    assert!(e.message.contains("already running on w1"), "{}", e.message);
}

// ----- answers to StartApp, root exits ----------------------------------

/// A node that does not answer `StartApp` in time leaves the app pending
/// (issue 13: a hung node is transient, not a failure), with the reason,
/// retried after the first backoff; the node is asked to stop the root it
/// may still start.
#[test]
fn start_timeout_leaves_the_app_pending_and_stops_the_late_root() {
    let mut f = Fixture::new();
    f.join(1);
    let order = f
        .state
        .tree_start(tree("a", "builtin.echo"), None, None)
        .unwrap();
    let (started, effects) = f.state.start_answered(
        &order,
        StartAnswer::Timeout(Duration::from_secs(10)),
        f.at(10_000),
    );
    let Started::Pending(e) = started else {
        panic!("a timed-out start is not pending: {started:?}");
    };
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(e.message, "w1 did not start the root within 10s");
    assert_eq!(
        effects,
        vec![Effect::Request(NodeRequest::StopApp {
            to: s(1),
            app: "a".into()
        })]
    );
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!((a.status, a.node), (AppStatus::Pending, None));
    assert_eq!(
        a.reason.as_deref(),
        Some("w1 did not start the root within 10s")
    );
    assert!(f.state.rearm, "the app timer is woken for the retry");
    // Not before the backoff, then on the node again with generation 2.
    assert!(f.state.schedule(f.at(10_050)).is_empty());
    assert_eq!(
        f.state.schedule(f.at(10_100)),
        vec![start("a", 2, "builtin.echo", &worker(1), s(1))]
    );
}

/// A node's refusal fails the app with the node's reason; nothing is
/// stopped.
#[test]
fn start_refused_fails_the_app() {
    let mut f = Fixture::new();
    f.join(1);
    let order = f
        .state
        .tree_start(tree("a", "builtin.echo"), None, None)
        .unwrap();
    let answer = StartAnswer::Failed {
        code: ErrorCode::UnknownFunction,
        reason: "no builtin.echo here".into(),
    };
    let (started, effects) = f.state.start_answered(&order, answer, f.at(5));
    assert!(matches!(started, Started::Failed(e) if e.code == ErrorCode::UnknownFunction));
    assert!(effects.is_empty());
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!(a.reason.as_deref(), Some("no builtin.echo here"));
}

/// When the connection a `StartApp` went out on closes because a newer
/// session of the same node replaced it, the app is placed again (on the
/// new session), since no close will declare the node down.
#[test]
fn start_lost_to_a_replaced_session_is_placed_again() {
    let mut f = Fixture::new();
    f.join(1);
    let order = f
        .state
        .tree_start(tree("a", "builtin.echo"), None, None)
        .unwrap();
    f.join_with(s(101), join_of(worker(1), &["builtin.echo"]));
    let (started, effects) = f.state.start_answered(&order, StartAnswer::Closed, f.at(5));
    assert_eq!(started, Started::Moved);
    assert_eq!(
        effects,
        vec![start("a", 2, "builtin.echo", &worker(1), s(101))]
    );
}

/// A root that starts after its app was stopped meanwhile must not run:
/// its node is asked to stop it.
#[test]
fn root_started_too_late_is_stopped() {
    let mut f = Fixture::new();
    f.join(1);
    let order = f
        .state
        .tree_start(tree("a", "builtin.echo"), None, None)
        .unwrap();
    assert_eq!(f.state.apps.stop_begin("a"), Ok(Some(n(1))));
    f.state.apps.stop_done("a");
    let (started, effects) =
        f.state
            .start_answered(&order, StartAnswer::Spawned(Pid::new(n(1), 4)), f.at(5));
    assert_eq!(started, Started::Root);
    assert_eq!(
        effects,
        vec![Effect::Request(NodeRequest::StopApp {
            to: s(1),
            app: "a".into()
        })]
    );
}

/// A root that exits by itself fails its app; one that exits because its
/// node is leaving is started on another worker; an exit reported by a
/// node the root does not run on is not ours.
#[test]
fn root_exit_fails_the_app_unless_its_node_is_leaving() {
    let exited = |generation| AppEvent {
        app: "a".into(),
        generation,
        kind: AppEventKind::RootExited(ExitReason::Error("boom".into())),
    };
    let mut f = pool_with_a_root_on_w1();
    let (ours, effects) = f.state.app_event(n(2), exited(1), f.at(10));
    assert_eq!((ours, effects), (false, Vec::new()));
    assert!(f.state.leave(&conn(&worker(1), s(1))));
    let (ours, effects) = f.state.app_event(n(1), exited(1), f.at(20));
    assert!(ours);
    assert_eq!(
        effects,
        vec![start("a", 2, "builtin.echo", &worker(2), s(2))]
    );
    assert_eq!(
        f.state.apps.get("a").unwrap().rec.status,
        AppStatus::Running
    );

    let mut f = pool_with_a_root_on_w1();
    let (ours, effects) = f.state.app_event(n(1), exited(1), f.at(10));
    assert_eq!((ours, effects), (true, Vec::new()));
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!(a.status, AppStatus::Failed);
    assert!(a.reason.as_deref().is_some_and(|r| r.contains("boom")));
}

// ----- issue 13: a paused master, a minority, pending apps, rejoins, names --

/// The master itself did not run for 5 s (past the 3 s node timeout): its
/// next check gives every worker a fresh grace period and declares nobody
/// down; a worker that stays silent is declared down a whole timeout
/// later, judged on time the master ran.
#[test]
fn a_paused_master_declares_nobody_down() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    assert!(f.state.tick(f.at(500)).is_empty());
    assert!(
        f.state.tick(f.at(5_500)).is_empty(),
        "declared after a pause"
    );
    assert!(f.live(1) && f.live(2));
    let mut t = 5_500;
    while t < 8_500 {
        t += 500;
        f.report(2, 0, t);
        if t < 8_500 {
            assert!(f.state.tick(f.at(t)).is_empty());
        }
    }
    assert_eq!(
        f.state.tick(f.at(8_500)),
        vec![node_down(1, DownReason::Timeout), Effect::Close(s(1))]
    );
}

/// Hearing one of three workers, the master is the one cut off: no
/// timeout downs while the minority lasts (a closed connection still
/// counts); once it hears a majority, the silent one is declared down.
#[test]
fn a_master_in_the_minority_declares_nobody_down_by_timeout() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    f.join(3);
    let mut t = 0;
    while t < 4_000 {
        t += 500;
        f.report(1, 0, t);
        assert!(f.state.tick(f.at(t)).is_empty(), "a down at {t} ms");
    }
    assert!(f.live(2) && f.live(3));
    assert!(f.state.minority.clear(), "the minority was noted");
    // Node 2 closes its connection: that counts.
    let effects = f.state.session_closed(&conn(&worker(2), s(2)), f.at(4_100));
    assert!(effects.contains(&Effect::Close(s(2))));
    // Now 1 of 2 heard: half, no minority: node 3 is down.
    f.report(1, 0, 4_500);
    let effects = f.state.tick(f.at(4_500));
    assert_eq!(
        effects,
        vec![node_down(3, DownReason::Timeout), Effect::Close(s(3))]
    );
}

/// The minority warning is logged when it begins, then at most every 10 s
/// with the number left out.
#[test]
fn the_minority_warning_is_rate_limited() {
    let t0 = Instant::now();
    let mut log = MinorityLog::default();
    assert_eq!(log.note(t0), Some(0));
    assert_eq!(log.note(t0 + Duration::from_secs(1)), None);
    assert_eq!(log.note(t0 + Duration::from_secs(2)), None);
    assert_eq!(log.note(t0 + Duration::from_secs(10)), Some(2));
    assert!(log.clear());
    assert!(!log.clear());
}

/// A start answered `Unavailable` (a node lost during the start) leaves
/// the app pending with the reason, not failed; a node that becomes live
/// makes it try at once, and its `Spawned` makes it running.
#[test]
fn an_unavailable_start_is_pending_and_retried_when_a_node_joins() {
    let mut f = Fixture::new();
    f.join(1);
    let order = f
        .state
        .tree_start(tree("a", "builtin.echo"), None, None)
        .unwrap();
    let answer = StartAnswer::Failed {
        code: ErrorCode::Unavailable,
        reason: "the root could not start on w1: no live node has label zone=c".into(),
    };
    let (started, effects) = f.state.start_answered(&order, answer, f.at(5));
    assert!(matches!(started, Started::Pending(ref e) if e.code == ErrorCode::Unavailable));
    assert!(effects.is_empty());
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!(a.status, AppStatus::Pending);
    assert!(a.reason.as_deref().is_some_and(|r| r.contains("zone=c")));
    assert_eq!(f.state.app_summaries()[0].status, AppStatus::Pending);
    let (_, effects) = f.join(2);
    let starts: Vec<&Effect> = effects
        .iter()
        .filter(|e| matches!(e, Effect::Request(NodeRequest::StartRoot(_))))
        .collect();
    assert_eq!(starts.len(), 1, "the pending app starts when a node joins");
    let Effect::Request(NodeRequest::StartRoot(order)) = starts[0].clone() else {
        unreachable!()
    };
    assert_eq!(order.assignment.generation, 2);
    let (started, _) = f.state.start_answered(
        &order,
        StartAnswer::Spawned(Pid::new(order.assignment.node, 9)),
        f.at(10),
    );
    assert_eq!(started, Started::Root);
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!((a.status, a.reason.clone()), (AppStatus::Running, None));
}

/// When the only worker goes down, the app waits pending with a reason
/// saying no worker is live, instead of silently "running" nowhere.
#[test]
fn an_app_with_no_live_worker_is_pending() {
    let mut f = pool_with_a_root_on_w1();
    f.state
        .declare_down(n(2), DownReason::ConnectionClosed, f.at(5));
    f.state
        .declare_down(n(1), DownReason::ConnectionClosed, f.at(6));
    let a = &f.state.apps.get("a").unwrap().rec;
    assert_eq!(a.status, AppStatus::Pending);
    assert!(
        a.reason
            .as_deref()
            .is_some_and(|r| r.contains("no live worker"))
    );
}

/// A root that gives up fails its app with the reason in words;
/// `ChildRestarted` events are counted per child path and kept with the
/// app; `tree restart` runs it again (new generation, reason cleared,
/// counts kept) and `tree rm` of a running app is refused with a way out.
#[test]
fn a_given_up_root_fails_its_app_and_tree_restart_runs_it_again() {
    let mut f = pool_with_a_root_on_w1();
    let restarted = AppEvent {
        app: "a".into(),
        generation: 1,
        kind: AppEventKind::ChildRestarted {
            supervisor: "a".into(),
            child: "w".into(),
            pid: None,
            reason: ExitReason::Error("boom".into()),
        },
    };
    for _ in 0..2 {
        assert!(f.state.app_event(n(1), restarted.clone(), f.at(5)).0);
    }
    let gave_up = AppEvent {
        app: "a".into(),
        generation: 1,
        kind: AppEventKind::RootExited(ExitReason::ShutdownWith(
            "restart intensity exceeded: 2 restarts in 10 s, intensity 2".into(),
        )),
    };
    f.state.app_event(n(1), gave_up, f.at(6));
    let a = f.state.apps.get("a").unwrap();
    assert_eq!(a.rec.status, AppStatus::Failed);
    assert_eq!(
        a.rec.reason.as_deref(),
        Some("shutdown: restart intensity exceeded: 2 restarts in 10 s, intensity 2")
    );
    assert_eq!(a.restarts.get("a/w"), Some(&2));
    assert_eq!(f.state.snapshot().restarts["a"]["a/w"], 2);

    let effects = f.state.tree_restart("a", f.at(7)).unwrap();
    assert_eq!(effects.len(), 1);
    let a = f.state.apps.get("a").unwrap();
    assert_eq!((a.rec.status, a.rec.generation), (AppStatus::Running, 2));
    assert_eq!(a.rec.reason, None);
    assert_eq!(a.restarts.get("a/w"), Some(&2));
    let e = f.state.tree_restart("a", f.at(8)).unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyRunning);
    let e = f.state.tree_remove("a").unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyRunning);
    assert!(e.message.contains("poolctl tree stop a"), "{}", e.message);
    assert_eq!(
        f.state.tree_remove("zz").unwrap_err().code,
        ErrorCode::NotFound
    );
}

/// A worker that rejoins without having been declared down, without the
/// root the master counted on it: the app starts again (generation 2); a
/// root it lists of an older generation is stopped with StopApp, not
/// fenced.
#[test]
fn an_unfenced_rejoin_without_its_root_restarts_the_app_and_stops_stale_roots() {
    let mut f = pool_with_a_root_on_w1();
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.rejoin = true;
    let (joined, effects) = f.join_with(s(101), join);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert!(
        effects.iter().any(|e| matches!(e,
            Effect::Request(NodeRequest::StartRoot(o)) if o.assignment.app == "a" && o.assignment.generation == 2)),
        "{effects:?}"
    );

    let mut f2 = pool_with_a_root_on_w1();
    // Generation 2 on w1 itself, while w1 still lists generation 1.
    f2.state.apps.node_down(n(1));
    f2.state.apps.assign("a", n(1), None);
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.rejoin = true;
    join.apps = vec![RunningApp {
        app: "a".into(),
        generation: 1,
        root: Pid::new(n(1), 3),
    }];
    let (joined, effects) = f2.join_with(s(101), join);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert!(effects.contains(&Effect::Request(NodeRequest::StopApp {
        to: s(101),
        app: "a".into()
    })));
}

/// A name registered by one node for a process of another live worker is
/// watched by that worker (WatchName to its connection); a name for the
/// registering node's own process, or a refused one, is not. A watch that
/// fails releases the name.
#[test]
fn a_name_for_another_workers_process_is_watched_there() {
    let mut f = Fixture::new();
    f.join(1);
    f.join(2);
    let pid = Pid::new(n(2), 7);
    let (ok, effects) = f.state.register_name_from(n(1), "remote", pid);
    assert!(ok);
    assert_eq!(
        effects,
        vec![Effect::Request(NodeRequest::WatchName {
            to: s(2),
            name: "remote".into(),
            pid
        })]
    );
    let (ok, effects) = f.state.register_name_from(n(2), "own", Pid::new(n(2), 8));
    assert!(ok && effects.is_empty());
    let (ok, effects) = f
        .state
        .register_name_from(n(1), "remote", Pid::new(n(2), 9));
    assert!(!ok && effects.is_empty());
    assert!(f.state.watch_failed("remote", pid, "refused"));
    assert_eq!(f.state.names.whereis("remote"), None);
    assert!(!f.state.watch_failed("remote", pid, "again"));
}

/// After a master restart a worker lists the names it watches for its
/// processes, whoever registered them: they are registered again.
#[test]
fn a_rejoining_worker_brings_back_names_of_its_processes() {
    let mut f = Fixture::new();
    let mut join = join_of(worker(1), &["builtin.echo"]);
    join.rejoin = true;
    join.names = vec![("remote".into(), Pid::new(n(1), 4))];
    let (joined, _) = f.join_with(s(1), join);
    assert_eq!(joined, Joined::Welcomed { fenced: false });
    assert_eq!(f.state.names.whereis("remote"), Some(Pid::new(n(1), 4)));
}
