//! When another node is lost — declared down by the master, cut off from
//! this one, or gone — links and monitors towards it fire `noconnection`,
//! calls waiting on it fail, and spawns on it fail or are placed again.

mod support;

use std::time::Duration;

use pool_proto::ExitReason;
use pool_worker::{Error, Spawn};
use supervisor::CallError;
use support::{Cluster, Got, Probe, addr_of, wait_until};

/// The master declaring a node down fires `noconnection` on every link and
/// monitor towards it.
#[tokio::test(start_paused = true)]
async fn a_node_declared_down_fires_noconnection_on_links_and_monitors() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let a = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    let b = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    let mut probe = Probe::spawn(w[0].runtime(), true, move |ctx| {
        ctx.link(a).unwrap();
        ctx.monitor(b);
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.master.declare_down("w2");
    let mut got = vec![probe.next().await, probe.next().await];
    got.sort_by_key(|g| matches!(g, Got::Down { .. }));
    assert!(
        matches!(&got[0], Got::Exit { from, reason: ExitReason::NoConnection } if *from == a),
        "{got:?}"
    );
    assert!(
        matches!(&got[1], Got::Down { pid, reason: ExitReason::NoConnection } if *pid == b),
        "{got:?}"
    );
}

/// A call waiting on a process of a node that goes down fails with
/// `noconnection` at once, not after its timeout.
#[tokio::test(start_paused = true)]
async fn a_pending_call_fails_when_the_callee_node_goes_down() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let sleeper = pool
        .spawn(Spawn::new("builtin.sleep", serde_json::json!({"ms": 600_000})).on("w2"))
        .await
        .unwrap()
        .pid;
    let call = tokio::spawn(async move { pool.call(sleeper, "hi", Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = tokio::time::Instant::now();
    c.master.declare_down("w2");
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(e, CallError::Exit(ExitReason::NoConnection)),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// A connection between two nodes that is cut (a partition the master
/// does not see) fires `noconnection` on both sides' links.
#[tokio::test(start_paused = true)]
async fn a_cut_peer_connection_fires_noconnection_on_both_sides() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut far = Probe::spawn(w[1].runtime(), true, |_| {});
    let far_pid = far.pid;
    let mut near = Probe::spawn(w[0].runtime(), true, move |ctx| ctx.link(far_pid).unwrap());
    // The link is applied on w2 before the cut.
    w[0].pool().send(far_pid, 0u8);
    assert!(matches!(far.next().await, Got::Msg { .. }));
    c.net.partition(&addr_of("w1"), &addr_of("w2"));
    assert_eq!(near.exit().await, (far_pid, ExitReason::NoConnection));
    assert_eq!(far.exit().await, (near.pid, ExitReason::NoConnection));
}

/// A node that vanishes (its handle dropped: no leave, no goodbye) is
/// declared down by the master, and the others fire `noconnection`.
#[tokio::test(start_paused = true)]
async fn a_vanished_node_is_noconnection_for_the_others() {
    let c = Cluster::new();
    let mut w = c.workers(&["w1", "w2"]).await;
    let echo = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    let mut probe = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(echo);
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let w2 = w.pop().unwrap();
    w2.abort();
    assert_eq!(probe.down().await, (echo, ExitReason::NoConnection));
    wait_until("the master declares w2 down", || !c.master.is_live("w2")).await;
}

/// Linking to a process of a node already declared down fires
/// `noconnection` at once.
#[tokio::test(start_paused = true)]
async fn linking_to_a_process_of_a_dead_node_fires_at_once() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let echo = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    c.master.declare_down("w2");
    wait_until("w1 hears w2 is down", || {
        w[0].pool().node_name_of(w[1].id()).is_none()
    })
    .await;
    let mut probe = Probe::spawn(w[0].runtime(), true, move |ctx| ctx.link(echo).unwrap());
    assert_eq!(probe.exit().await, (echo, ExitReason::NoConnection));
}

/// A spawn on a named node this node cannot reach fails with an error
/// that names the node (no retry elsewhere: the caller named the node).
#[tokio::test(start_paused = true)]
async fn a_spawn_on_an_unreachable_named_node_fails() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    c.net.partition(&addr_of("w1"), &addr_of("w2"));
    let e = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap_err();
    match &e {
        Error::Remote(r) => assert!(r.message.starts_with("node w2: "), "{e}"),
        other => panic!("expected a remote error naming w2, got {other}"),
    }
}

/// A placed spawn whose node turns out unreachable is placed once more,
/// away from that node, and succeeds elsewhere.
#[tokio::test(start_paused = true)]
async fn a_placed_spawn_is_placed_again_away_from_an_unreachable_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    c.net.partition(&addr_of("w1"), &addr_of("w2"));
    let pool = w[0].pool();
    for _ in 0..6 {
        let s = pool
            .spawn(Spawn::new("builtin.echo", serde_json::json!({})))
            .await
            .expect("placed again elsewhere");
        assert_ne!(s.node, "w2");
    }
}

/// A process of a worker that has not (yet) rejoined a restarted master is
/// out of reach, not gone: a client that joined the new master, and so has
/// never heard of that worker, gets `noconnection` for a call to it, not
/// `noproc`.
#[tokio::test(start_paused = true)]
async fn a_call_to_a_node_never_heard_of_fails_with_noconnection() {
    let mut c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let echo = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    // w2 cannot reach the master; the master restarts without memory and
    // only w1 rejoins.
    c.net.partition(&addr_of("w2"), support::MASTER_ADDR);
    c.master.restart().await;
    wait_until("w1 rejoined", || c.master.is_live("w1")).await;
    let client = c.hidden("ctl").await;
    let e = client
        .pool()
        .call(echo, "hi", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::Exit(ExitReason::NoConnection)),
        "{e}"
    );
    assert!(w[1].runtime().is_alive(echo));
}
