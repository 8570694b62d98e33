//! Stopping a node: the graceful stop (leave, roots in order, hosted
//! children with `shutdown`, queues flushed and read, then everything
//! ends) within its timeout, and the abrupt one.

mod support;

use std::time::Duration;

use pool_proto::{
    AppEventKind, DownReason, ErrorCode, ExitReason, Request, Response, SpawnRequest,
};
use pool_worker::Spawn;
use supervisor::supervisor as sup;
use support::{Cluster, Probe, Seen, wait_until};

/// Where in the master's log the first entry matching `f` is.
fn position(seen: &[Seen], f: impl Fn(&Seen) -> bool) -> usize {
    seen.iter()
        .position(f)
        .unwrap_or_else(|| panic!("not seen: {seen:#?}"))
}

/// A graceful stop tells the master it leaves, stops the application
/// roots (their exit is reported before the node goes), stops root
/// supervisors started in code, and ends with no process left; the
/// master then sees the node go as `left`.
#[tokio::test(start_paused = true)]
async fn a_graceful_stop_leaves_then_stops_everything_in_order() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    support::start_app(
        &c.master,
        "w1",
        "shop",
        1,
        support::one_child_app("shop", "builtin.echo"),
    )
    .await;
    let own = sup::start_tree(w1.runtime(), support::one_child_app("own", "builtin.echo"))
        .await
        .unwrap();
    let rt = w1.runtime().clone();
    assert!(rt.is_alive(own));
    w1.shutdown().await;
    assert_eq!(rt.process_count(), 0);
    wait_until("the master sees w1 go", || !c.master.is_live("w1")).await;
    let seen = c.master.seen();
    let leave = position(&seen, |s| matches!(s, Seen::Leave { .. }));
    let root = position(
        &seen,
        |s| matches!(s, Seen::AppEvent { event, .. } if matches!(event.kind, AppEventKind::RootExited(_))),
    );
    let gone = position(&seen, |s| {
        matches!(
            s,
            Seen::Down {
                reason: DownReason::Left,
                ..
            }
        )
    });
    assert!(leave < root && root < gone, "{seen:#?}");
}

/// Children this node hosts for a supervisor elsewhere are stopped with
/// `shutdown`, and that exit reaches their linked process before the
/// master can say the node is gone (not `noconnection`).
#[tokio::test(start_paused = true)]
async fn hosted_children_stop_with_shutdown_before_the_node_goes() {
    let c = Cluster::new();
    let mut w = c.workers(&["w1", "w2"]).await;
    let mut owner = Probe::spawn(w[1].runtime(), true, |_| {});
    let child = w[1]
        .pool()
        .spawn(
            Spawn::new("builtin.echo", serde_json::json!({}))
                .on("w1")
                .link(owner.pid),
        )
        .await
        .unwrap()
        .pid;
    w.remove(0).shutdown().await;
    assert_eq!(owner.exit().await, (child, ExitReason::Shutdown));
}

/// While a node stops it refuses spawns ("spawn elsewhere"), so a
/// supervisor restarting a child places it on another node.
#[tokio::test(start_paused = true)]
async fn a_stopping_node_refuses_spawns() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    // A root whose child takes its 2 s shutdown timeout to stop holds the
    // stop open.
    let slow = support::tree(
        "[supervisor]\nid = \"slow\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"test.stubborn\"\nplacement = \"local\"\nshutdown = \"2s\"\n",
    );
    support::start_app(&c.master, "w1", "slow", 1, slow).await;
    let stopping = tokio::spawn(w1.shutdown());
    wait_until("w1 leaves", || {
        c.master
            .seen()
            .iter()
            .any(|s| matches!(s, Seen::Leave { .. }))
    })
    .await;
    let spawn = Request::Spawn(SpawnRequest {
        function: "builtin.echo".into(),
        args: serde_json::json!({}),
        link: None,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    });
    match c.master.request("w1", spawn).await {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Overloaded);
            assert!(e.message.contains("spawn elsewhere"), "{e}");
        }
        other => panic!("a stopping node spawned: {other:?}"),
    }
    stopping.await.unwrap();
}

/// The graceful part is bounded by the stop timeout: a root that would
/// take forever to stop is killed once it runs out.
#[tokio::test(start_paused = true)]
async fn a_stop_is_bounded_by_the_stop_timeout() {
    let c = Cluster::new();
    let mut config = c.config("w1");
    config.stop_timeout = Duration::from_secs(1);
    let w1 = c.builder_with(config).start().await.unwrap();
    let forever = support::tree(
        "[supervisor]\nid = \"forever\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"test.stubborn\"\nplacement = \"local\"\nshutdown = \"infinity\"\n",
    );
    support::start_app(&c.master, "w1", "forever", 1, forever).await;
    let rt = w1.runtime().clone();
    let t = tokio::time::Instant::now();
    w1.shutdown().await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(rt.process_count(), 0);
}

/// Dropping a node stops it at once: no leave; the master sees its
/// connection close, and its processes are gone.
#[tokio::test(start_paused = true)]
async fn dropping_a_node_stops_it_at_once() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let s = w1
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap();
    let rt = w1.runtime().clone();
    drop(w1);
    wait_until("the master declares w1 down", || !c.master.is_live("w1")).await;
    wait_until("its processes are gone", || !rt.is_alive(s.pid)).await;
    let seen = c.master.seen();
    assert!(!seen.iter().any(|s| matches!(s, Seen::Leave { .. })));
    assert!(seen.iter().any(|s| matches!(
        s,
        Seen::Down {
            reason: DownReason::ConnectionClosed,
            ..
        }
    )));
}

/// Once a node stopped (gracefully or not), its Pool API fails requests
/// to the master at once, instead of waiting for a link that never comes.
#[tokio::test(start_paused = true)]
async fn a_stopped_nodes_pool_fails_at_once() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let w2 = c.worker("w2").await;
    let (p1, p2) = (w1.pool(), w2.pool());
    w1.shutdown().await;
    drop(w2);
    for pool in [p1, p2] {
        let t = tokio::time::Instant::now();
        let e = pool.whereis("anything").await.unwrap_err();
        assert!(matches!(e, pool_worker::Error::ShuttingDown), "{e}");
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
