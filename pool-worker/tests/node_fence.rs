//! Fencing: a node the master declared down while it was cut off must,
//! before it counts as live again, break its links and monitors towards
//! other nodes, stop the application roots that now run elsewhere and
//! forget the global names others hold now; only then does it send
//! `Ready`, and only then do the others hear it is up.

mod support;

use std::time::Duration;

use pool_proto::{AppEventKind, ExitReason};
use pool_worker::{Error, Spawn};
use support::{Cluster, Probe, Seen, wait_until};

/// Where in the master's log the first entry matching `f` is.
fn position(seen: &[Seen], f: impl Fn(&Seen) -> bool) -> usize {
    seen.iter()
        .position(f)
        .unwrap_or_else(|| panic!("not seen: {seen:#?}"))
}

/// A slow-stopping application: its child traps exits and ignores
/// `shutdown`, so stopping the root takes the child's 2 s shutdown
/// timeout.
fn slow_app(app: &str) -> pool_proto::TreeSpec {
    support::tree(&format!(
        "[supervisor]\nid = \"{app}\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"test.stubborn\"\nplacement = \"local\"\nshutdown = \"2s\"\n"
    ))
}

/// A node declared down while cut off fires `noconnection` on its links
/// towards other nodes when it rejoins (their supervisors already
/// restarted what it hosted), and only then sends Ready.
#[tokio::test(start_paused = true)]
async fn a_fenced_node_breaks_its_links_to_other_nodes_before_ready() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let remote = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    let mut probe = Probe::spawn(w[0].runtime(), true, move |ctx| {
        ctx.link(remote).unwrap();
    });
    c.master.declare_down("w1");
    let (from, reason) = probe.exit().await;
    assert_eq!((from, reason), (remote, ExitReason::NoConnection));
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    let (join, fenced) = c.master.joins_of("w1").pop().unwrap();
    assert!(join.rejoin && fenced);
    let seen = c.master.seen();
    let joined = position(
        &seen,
        |s| matches!(s, Seen::Joined { name, fenced: true, .. } if name == "w1"),
    );
    let ready = position(&seen, |s| matches!(s, Seen::Ready { name } if name == "w1"));
    assert!(joined < ready);
}

/// The roots the fence lists are stopped in order before Ready (their
/// exit reaches the master first); the node no longer runs them.
#[tokio::test(start_paused = true)]
async fn a_fence_stops_the_listed_roots_before_ready() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let spec = support::one_child_app("shop", "builtin.echo");
    let root = support::start_app(&c.master, "w1", "shop", 1, spec).await;
    c.master.plan_stop_apps("w1", &["shop"]);
    c.master.declare_down("w1");
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    assert!(!w1.runtime().is_alive(root));
    let seen = c.master.seen();
    let exited = position(&seen, |s| {
        matches!(s, Seen::AppEvent { event, .. }
            if event.app == "shop" && matches!(event.kind, AppEventKind::RootExited(_)))
    });
    let ready = position(&seen, |s| matches!(s, Seen::Ready { .. }));
    assert!(exited < ready, "{seen:#?}");
}

/// A global name the master gave to another process while the node was
/// cut off is forgotten by the fence: the node neither claims it at its
/// next join nor releases it when its old holder dies.
#[tokio::test(start_paused = true)]
async fn a_fence_forgets_the_names_lost_meanwhile() {
    let mut c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let holder = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap()
        .pid;
    assert!(pool.register_global("svc", holder).await.unwrap());
    c.master.declare_down("w1");
    let usurper = pool_proto::Pid::new(pool_proto::NodeId::random(), 9);
    c.master.set_name("svc", usurper);
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    let (join, fenced) = c.master.joins_of("w1").pop().unwrap();
    assert!(fenced);
    assert_eq!(join.names, vec![("svc".to_owned(), holder)]);
    pool.exit(holder, ExitReason::Kill);
    wait_until("the holder is gone", || !w1.runtime().is_alive(holder)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !c.master
            .seen()
            .iter()
            .any(|s| matches!(s, Seen::NameReleased { .. })),
        "the node released a name it no longer holds"
    );
    assert_eq!(c.master.names().get("svc"), Some(&usurper));
    c.master.restart().await;
    wait_until("w1 rejoins the new master", || c.master.is_live("w1")).await;
    let (join, _) = c.master.joins_of("w1").pop().unwrap();
    assert!(join.names.is_empty(), "{:?}", join.names);
}

/// While the node fences, requests to the master fail at once instead of
/// waiting for a link that comes up only once the fence is done.
#[tokio::test(start_paused = true)]
async fn requests_fail_at_once_while_fencing() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    support::start_app(&c.master, "w1", "slow", 1, slow_app("slow")).await;
    c.master.plan_stop_apps("w1", &["slow"]);
    c.master.declare_down("w1");
    wait_until("the fenced rejoin is welcomed", || {
        c.master.joins_of("w1").iter().any(|(_, fenced)| *fenced)
    })
    .await;
    assert!(!c.master.is_live("w1"));
    let t = tokio::time::Instant::now();
    let e = w1.pool().whereis("anything").await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::ZERO);
    match e {
        Error::MasterUnreachable { why, .. } => assert!(why.contains("fencing"), "{why}"),
        other => panic!("expected a fencing error, got {other}"),
    }
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    assert_eq!(w1.pool().whereis("anything").await.unwrap(), None);
}

/// Other nodes hear the fenced node is down, and hear it is up again only
/// after its Ready: never while it still runs stale processes.
#[tokio::test(start_paused = true)]
async fn others_hear_of_a_fenced_node_only_after_ready() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let w1_id = w[0].id();
    support::start_app(&c.master, "w1", "slow", 1, slow_app("slow")).await;
    c.master.plan_stop_apps("w1", &["slow"]);
    c.master.declare_down("w1");
    wait_until("w2 hears w1 is down", || {
        w[1].pool().node_name_of(w1_id).is_none()
    })
    .await;
    wait_until("the fenced rejoin is welcomed", || {
        c.master.joins_of("w1").iter().any(|(_, fenced)| *fenced)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!c.master.is_live("w1"), "the fence ended too early");
    assert_eq!(w[1].pool().node_name_of(w1_id), None);
    wait_until("w2 hears w1 is up", || {
        w[1].pool().node_name_of(w1_id).is_some()
    })
    .await;
    assert!(c.master.is_live("w1"));
}

/// A fenced node talks to its peers again once it is live: its peer
/// connections were closed by the fence and open again on first use.
#[tokio::test(start_paused = true)]
async fn a_fenced_node_reaches_its_peers_again_after_ready() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut probe = Probe::spawn(w[1].runtime(), false, |_| {});
    w[0].pool().send(probe.pid, 1u32);
    assert_eq!(probe.message::<u32>().await, 1);
    c.master.drop_node("w1");
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    wait_until("w2 knows w1 again", || {
        w[1].pool().node_name_of(w[0].id()).is_some()
    })
    .await;
    w[0].pool().send(probe.pid, 2u32);
    assert_eq!(probe.message::<u32>().await, 2);
}

/// The master starts a root on a node as soon as it handles that node's
/// `Ready` (before its answer to `Ready` arrives): the root's children,
/// placed through the master, start, instead of failing because the node
/// still counts itself as fencing.
#[tokio::test(start_paused = true)]
async fn a_root_started_while_ready_is_answered_places_its_children() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let spec = support::tree(
        "[supervisor]\nid = \"shop\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"builtin.echo\"\nplacement = \"least-loaded\"\n",
    );
    let started = c.master.start_on_ready("w1", "shop", spec);
    c.master.declare_down("w1");
    let answer = tokio::time::timeout(support::WAIT, started)
        .await
        .expect("the start is answered in time")
        .expect("the node answers the start");
    assert!(
        matches!(answer, pool_proto::Response::Spawned(_)),
        "the start right after Ready failed: {answer:?}"
    );
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
}

/// A fence stops only the roots the master lists, and those whose start
/// ended after the Join (see `hosted_apps`'s unit tests): a root the Join
/// listed and the master did not list to stop was adopted, and keeps
/// running.
#[tokio::test(start_paused = true)]
async fn a_fence_leaves_the_roots_the_master_adopted() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let spec = support::one_child_app("shop", "builtin.echo");
    let root = support::start_app(&c.master, "w1", "shop", 1, spec).await;
    c.master.declare_down("w1");
    wait_until("w1 is live again", || c.master.is_live("w1")).await;
    let (join, fenced) = c.master.joins_of("w1").pop().unwrap();
    assert!(fenced);
    assert_eq!(join.apps.len(), 1, "{:?}", join.apps);
    assert!(w1.runtime().is_alive(root), "an adopted root was stopped");
}
