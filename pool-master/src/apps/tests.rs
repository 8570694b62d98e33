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
    let g1 = apps.assign("a", n(1)).unwrap();
    assert_eq!(g1.generation, 1);
    assert!(apps.waiting(now).is_empty());
    assert!(apps.started("a", 1, n(1), Pid::new(n(1), 5)));
    assert_eq!(apps.node_down(n(1)), vec!["a"]);
    assert_eq!(apps.assign("a", n(2)).unwrap().generation, 2);
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
    apps.assign("a", n(1));
    assert!(apps.root_exited("a", 1, n(1), "shutdown".into(), false));
    let a = apps.get("a").unwrap();
    assert_eq!(a.rec.status, AppStatus::Failed);
    assert_eq!(a.rec.reason.as_deref(), Some("shutdown"));

    apps.submit(tree("b"), None);
    apps.assign("b", n(1));
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
    };
    let mut apps = Apps::restore(vec![rec], now + Duration::from_secs(6));
    assert!(apps.waiting(now).is_empty(), "held during the grace period");
    assert!(!apps.expire_holds(now));
    let stale = RunningApp {
        app: "a".into(),
        generation: 2,
        root: Pid::new(n(1), 1),
    };
    let ad = apps.adopt(n(1), &[stale], |_| false);
    assert_eq!(ad.stop, vec!["a"]);
    let same = RunningApp {
        app: "a".into(),
        generation: 3,
        root: Pid::new(n(1), 9),
    };
    let ad = apps.adopt(n(1), &[same], |_| false);
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
    };
    let mut apps = Apps::restore(vec![rec], now + Duration::from_secs(6));
    assert!(apps.expire_holds(now + Duration::from_secs(6)));
    assert_eq!(apps.waiting(now + Duration::from_secs(6)), vec!["a"]);
    assert_eq!(apps.assign("a", n(2)).unwrap().generation, 4);
}

/// A root listed by a node while the app runs on another live node is
/// stopped; an unknown app is left alone.
#[test]
fn never_two_roots() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(2));
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
    let ad = apps.adopt(n(1), &listed, |m| m == n(2));
    assert_eq!(ad.stop, vec!["a"]);
    assert_eq!(ad.unknown, vec!["zz"]);
}

/// A stop in progress is not undone by the node's death or the root's exit.
#[test]
fn stopping_app_ends_stopped() {
    let mut apps = Apps::default();
    apps.submit(tree("a"), None);
    apps.assign("a", n(1));
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
