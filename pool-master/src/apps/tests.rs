//! Unit tests of the app records and their decisions.

use std::time::{Duration, Instant};

use pool_proto::{
    AppStatus, ChildSpecData, NodeId, Pid, RunningApp, Strategy, SupervisorSpec, TreeSpec,
};

use super::*;

fn tree(id: &str) -> TreeSpec {
    let mut sup = SupervisorSpec::new(id, Strategy::OneForOne);
    sup.children.push(ChildSpecData::worker(
        "w",
        "builtin.echo",
        serde_json::Value::Null,
    ));
    TreeSpec { supervisor: sup }
}

fn n(v: u64) -> NodeId {
    NodeId::from_u64(v)
}

/// A submitted app waits for a node; assigning it bumps the generation, and
/// a node death makes it wait again for generation + 1.
#[test]
fn generations_increase_with_every_placement() {
    let now = Instant::now();
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    assert_eq!(apps.waiting(now), vec!["a"]);
    let g1 = apps.assign("a", n(1), None).unwrap();
    assert_eq!(g1.generation, 1);
    assert!(apps.waiting(now).is_empty());
    assert!(apps.started("a", 1, n(1), Pid::new(n(1), 5)));
    assert_eq!(apps.node_down(n(1)), vec!["a"]);
    assert_eq!(apps.assign("a", n(2), None).unwrap().generation, 2);
    assert!(
        !apps.started("a", 1, n(1), Pid::new(n(1), 6)),
        "stale answer"
    );
}

/// A root that exits by itself fails the app with the reason; the same exit
/// from a leaving node makes it wait for another node instead.
#[test]
fn root_exit_fails_unless_the_node_is_leaving() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1), None);
    assert!(apps.root_exited("a", 1, n(1), "shutdown".into(), false));
    let a = apps.get("a").unwrap();
    assert_eq!(a.rec.status, AppStatus::Failed);
    assert_eq!(a.rec.reason.as_deref(), Some("shutdown"));

    apps.submit(tree("b"), None);
    apps.assign("b", n(1), None);
    assert!(apps.root_exited("b", 1, n(1), "shutdown".into(), true));
    assert_eq!(apps.get("b").unwrap().rec.status, AppStatus::Running);
    assert_eq!(apps.waiting(Instant::now()), vec!["b"]);
}

/// After a restart a running app is held; its node rejoining with the same
/// generation is adopted, a stale generation is stopped.
#[test]
fn adoption_after_restart() {
    let now = Instant::now();
    let rec = AppRecord {
        id: "a".into(),
        spec: tree("a"),
        source: None,
        generation: 3,
        status: AppStatus::Running,
        reason: None,
        node: Some(n(1)),
        root: Some(Pid::new(n(1), 9)),
        node_name: None,
    };
    let mut apps = Apps::restore(vec![rec], now + Duration::from_secs(6));
    assert!(apps.waiting(now).is_empty(), "held during the grace period");
    assert!(!apps.expire_holds(now));
    let stale = RunningApp {
        app: "a".into(),
        generation: 2,
        root: Pid::new(n(1), 1),
    };
    let ad = apps.adopt(n(1), "w1", &[stale], |_| false);
    assert_eq!(ad.stop, vec!["a"]);
    let same = RunningApp {
        app: "a".into(),
        generation: 3,
        root: Pid::new(n(1), 9),
    };
    let ad = apps.adopt(n(1), "w1", &[same], |_| false);
    assert_eq!(ad.adopted, vec!["a"]);
    assert!(
        !apps.expire_holds(now + Duration::from_secs(7)),
        "adopted: no hold left"
    );
    assert!(apps.waiting(now + Duration::from_secs(7)).is_empty());
}

/// A held app that no node adopted in time waits for a node once its hold
/// is over.
#[test]
fn unadopted_app_is_placed_after_the_grace() {
    let now = Instant::now();
    let rec = AppRecord {
        id: "a".into(),
        spec: tree("a"),
        source: None,
        generation: 3,
        status: AppStatus::Running,
        reason: None,
        node: Some(n(1)),
        root: Some(Pid::new(n(1), 9)),
        node_name: None,
    };
    let mut apps = Apps::restore(vec![rec], now + Duration::from_secs(6));
    assert!(apps.expire_holds(now + Duration::from_secs(6)));
    assert_eq!(apps.waiting(now + Duration::from_secs(6)), vec!["a"]);
    assert_eq!(apps.assign("a", n(2), None).unwrap().generation, 4);
}

/// A root listed by a node while the app runs on another live node is
/// stopped; an unknown app is left alone.
#[test]
fn never_two_roots() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(2), None);
    apps.started("a", 1, n(2), Pid::new(n(2), 1));
    let listed = [
        RunningApp {
            app: "a".into(),
            generation: 1,
            root: Pid::new(n(1), 1),
        },
        RunningApp {
            app: "zz".into(),
            generation: 1,
            root: Pid::new(n(1), 2),
        },
    ];
    let ad = apps.adopt(n(1), "w1", &listed, |m| m == n(2));
    assert_eq!(ad.stop, vec!["a"]);
    assert_eq!(ad.unknown, vec!["zz"]);
}

/// A stop in progress is not undone by the node's death or the root's exit.
#[test]
fn stopping_app_ends_stopped() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1), None);
    assert_eq!(apps.stop_begin("a"), Ok(Some(n(1))));
    assert!(!apps.root_exited("a", 1, n(1), "shutdown".into(), false));
    apps.node_down(n(1));
    assert_eq!(apps.get("a").unwrap().rec.status, AppStatus::Stopped);
    assert!(apps.waiting(Instant::now()).is_empty());
    assert_eq!(apps.stop_begin("nope"), Err(()));
}

/// Function paths are given in tree-file terms, nested supervisors included.
#[test]
fn function_paths() {
    let mut t = tree("a");
    let mut inner = SupervisorSpec::new("", Strategy::OneForAll);
    inner.children.push(ChildSpecData::worker(
        "x",
        "custom.f",
        serde_json::Value::Null,
    ));
    t.supervisor
        .children
        .push(ChildSpecData::supervisor("s", inner));
    assert_eq!(
        functions(&t),
        vec![
            (
                "supervisor.children[0].function".to_owned(),
                "builtin.echo".to_owned()
            ),
            (
                "supervisor.children[1].supervisor.children[0].function".to_owned(),
                "custom.f".to_owned()
            ),
        ]
    );
    let v = stopped_view(&t);
    assert_eq!(v.children.as_ref().unwrap().len(), 2);
}

// ----- pending apps, restart counts, tree restart and rm -----------------

/// A start that failed for a reason that may pass leaves the app pending
/// with the reason; it is not placed before its backoff (100 ms, then
/// 200 ms, ... capped at 2 s), or at once when a node joins
/// (`retry_now`); a start that succeeds makes it running again and clears
/// the reason and the backoff.
#[test]
fn a_deferred_start_is_pending_and_retried_with_capped_backoff() {
    let t0 = Instant::now();
    let ms = |v: u64| t0 + Duration::from_millis(v);
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1), None);
    assert!(apps.start_deferred("a", 1, n(1), "w1 hung".into(), t0));
    let a = apps.get("a").unwrap();
    assert_eq!(a.rec.status, AppStatus::Pending);
    assert_eq!(a.rec.reason.as_deref(), Some("w1 hung"));
    assert!(apps.waiting(ms(99)).is_empty());
    assert_eq!(apps.next_retry(t0), Some(ms(100)));
    assert_eq!(apps.waiting(ms(100)), vec!["a"]);
    // Still pending (with its reason) while the retry is in flight.
    apps.assign("a", n(2), None);
    assert_eq!(apps.get("a").unwrap().rec.status, AppStatus::Pending);
    assert!(apps.start_deferred("a", 2, n(2), "again".into(), ms(100)));
    assert_eq!(apps.next_retry(ms(100)), Some(ms(300)));
    // A node joins: it tries now.
    assert!(apps.retry_now(ms(150)));
    assert_eq!(apps.waiting(ms(150)), vec!["a"]);
    apps.assign("a", n(3), None);
    assert!(apps.started("a", 3, n(3), Pid::new(n(3), 1)));
    let a = apps.get("a").unwrap();
    assert_eq!(
        (a.rec.status, a.rec.reason.clone()),
        (AppStatus::Running, None)
    );
    assert_eq!(a.retry, None);

    let delays: Vec<u64> = (1..=8)
        .map(|f| retry::delay(f).as_millis() as u64)
        .collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    assert_eq!(retry::delay(u32::MAX), retry::CAP);
}

/// No live worker: every app waiting is pending with the reason, and a
/// stale deferral (another generation) changes nothing.
#[test]
fn no_node_makes_waiting_apps_pending() {
    let t0 = Instant::now();
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    assert!(apps.no_node("a", "nobody", t0));
    assert_eq!(apps.get("a").unwrap().rec.status, AppStatus::Pending);
    assert!(apps.waiting(t0).is_empty());
    apps.assign("a", n(1), None);
    assert!(!apps.start_deferred("a", 7, n(1), "stale".into(), t0));
}

/// Only the spec being wrong fails a start for good; losing or waiting
/// for a node does not.
#[test]
fn transient_codes_are_the_ones_that_may_pass() {
    use pool_proto::ErrorCode::*;
    for code in [Unavailable, NoNode, Overloaded] {
        assert!(transient(code), "{code:?}");
    }
    for code in [BadSpec, UnknownFunction, BadArgs, Refused, Internal] {
        assert!(!transient(code), "{code:?}");
    }
}

/// A root that exits `normal` leaves its app stopped, not failed.
#[test]
fn a_root_that_exits_normally_stops_its_app() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1), None);
    assert!(apps.root_finished("a", 1, n(1), false));
    let a = apps.get("a").unwrap();
    assert_eq!(a.rec.status, AppStatus::Stopped);
    assert_eq!(a.rec.node, None);
}

/// Restart counts are kept per child path across a failure, a
/// `TreeRestart`, a resubmission and a master restart (through the state
/// file's map); `TreeRestart` and `TreeRemove` refuse running and pending
/// apps, and unknown ones.
#[test]
fn restart_counts_survive_and_restart_and_remove_refuse_live_apps() {
    let t0 = Instant::now();
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1), None);
    assert!(apps.child_restarted("a", "a", "w"));
    assert!(apps.child_restarted("a", "a", "w"));
    assert!(!apps.child_restarted("nope", "nope", "w"));
    assert_eq!(apps.restart("a"), Err(Some(AppStatus::Running)));
    assert_eq!(apps.remove("a"), Err(Some(AppStatus::Running)));
    assert!(apps.root_exited(
        "a",
        1,
        n(1),
        "shutdown: restart intensity exceeded".into(),
        false
    ));
    assert_eq!(apps.restart("zz"), Err(None));
    assert_eq!(apps.remove("zz"), Err(None));
    assert_eq!(apps.restart("a"), Ok(()));
    let a = apps.get("a").unwrap();
    assert_eq!(
        (a.rec.status, a.rec.reason.clone()),
        (AppStatus::Running, None)
    );
    assert_eq!(a.restarts.get("a/w"), Some(&2));
    assert_eq!(apps.waiting(t0), vec!["a"]);
    assert_eq!(apps.assign("a", n(2), None).unwrap().generation, 2);

    let saved = apps.restart_counts();
    let mut restored = Apps::restore(apps.records(), t0);
    restored.restore_restart_counts(saved);
    assert_eq!(restored.get("a").unwrap().restarts.get("a/w"), Some(&2));

    assert_eq!(apps.stop_begin("a"), Ok(Some(n(2))));
    apps.stop_done("a");
    assert_eq!(apps.remove("a"), Ok(()));
    assert!(apps.get("a").is_none());
}

/// A node that rejoins without its root: the app waits for a node again
/// (a root never confirmed is left to its start's answer).
#[test]
fn lost_roots_are_the_confirmed_ones_the_node_no_longer_lists() {
    let mut apps = Apps::default();
    for id in ["a", "b", "c"] {
        apps.submit(tree(id), None);
        apps.assign(id, n(1), None);
    }
    assert!(apps.started("a", 1, n(1), Pid::new(n(1), 1)));
    assert!(apps.started("b", 1, n(1), Pid::new(n(1), 2)));
    let listed = [RunningApp {
        app: "b".into(),
        generation: 1,
        root: Pid::new(n(1), 2),
    }];
    assert_eq!(apps.lost_roots(n(1), &listed), vec!["a"]);
    assert_eq!(apps.get("a").unwrap().rec.node, None);
    assert_eq!(apps.get("c").unwrap().rec.node, Some(n(1)));
}

/// `tree show` of an app that does not run: the spec's view with the
/// app's status and reason at the top; counts laid over it, a
/// supervisor's being the sum over its direct children, and never below
/// what the supervisor itself says; in a live view a supervisor keeps its
/// own count while its children still get the kept ones.
#[test]
fn the_view_of_a_failed_app_has_its_status_reason_and_counts() {
    let mut sup = SupervisorSpec::new("app", Strategy::OneForOne);
    let mut inner = SupervisorSpec::new("inner", Strategy::OneForOne);
    inner.children.push(ChildSpecData::worker(
        "leaf",
        "builtin.echo",
        serde_json::Value::Null,
    ));
    sup.children.push(ChildSpecData::worker(
        "w",
        "builtin.echo",
        serde_json::Value::Null,
    ));
    sup.children.push(ChildSpecData::supervisor("inner", inner));
    let spec = TreeSpec { supervisor: sup };
    let mut view = stopped_view(&spec);
    view::set_top(
        &mut view,
        AppStatus::Failed,
        Some("shutdown: restart intensity exceeded"),
    );
    let counts: RestartCounts = [
        ("app/w".to_owned(), 2),
        ("app/inner".to_owned(), 1),
        ("app/inner/leaf".to_owned(), 3),
    ]
    .into_iter()
    .collect();
    view.children.as_mut().unwrap()[0].restarts = 5; // the supervisor says more
    let mut live = view.clone();
    view::overlay_restarts(&mut view, &counts, false);
    assert_eq!(view.status, pool_proto::ChildStatus::Failed);
    assert_eq!(
        view.reason.as_deref(),
        Some("shutdown: restart intensity exceeded")
    );
    let kids = view.children.as_ref().unwrap();
    assert_eq!(kids[0].restarts, 5);
    assert_eq!(kids[1].restarts, 3, "inner made 3 restarts");
    assert_eq!(kids[1].children.as_ref().unwrap()[0].restarts, 3);
    assert_eq!(
        view.restarts, 3,
        "the root restarted w twice and inner once"
    );
    // In a live view a supervisor keeps its own count (a one_for_all group
    // restart is one restart of the supervisor, one event per child).
    live.restarts = 1;
    view::overlay_restarts(&mut live, &counts, true);
    let kids = live.children.as_ref().unwrap();
    assert_eq!(live.restarts, 1);
    assert_eq!(kids[0].restarts, 5);
    assert_eq!(kids[1].restarts, 0);
    assert_eq!(kids[1].children.as_ref().unwrap()[0].restarts, 3);
}
