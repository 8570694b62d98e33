//! Messages and calls between nodes: a send reaches a process on another
//! node in order, a call gets its reply or the callee's fate, across two
//! and three nodes.

mod support;

use std::time::Duration;

use pool_proto::ExitReason;
use pool_worker::{Run, Spawn};
use supervisor::CallError;
use support::{Cluster, Got, Probe};

/// A message sent from one node reaches a process on another, with its
/// sender.
#[tokio::test(start_paused = true)]
async fn a_message_reaches_a_process_on_another_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut probe = Probe::spawn(w[1].runtime(), false, |_| {});
    let to = probe.pid;
    let sender = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.send(to, "hello".to_owned());
    });
    match probe.next().await {
        Got::Msg { from, msg } => {
            assert_eq!(from, Some(sender.pid));
            assert_eq!(msg.take::<String>().unwrap(), "hello");
        }
        other => panic!("expected the message, got {other:?}"),
    }
}

/// Messages from one process to a process on another node arrive in the
/// order they were sent.
#[tokio::test(start_paused = true)]
async fn messages_between_two_processes_keep_their_order() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut probe = Probe::spawn(w[1].runtime(), false, |_| {});
    let to = probe.pid;
    w[0].runtime().spawn(move |ctx| async move {
        for i in 0..500u32 {
            ctx.send(to, i);
        }
    });
    for i in 0..500u32 {
        match probe.next().await {
            Got::Msg { from, msg } => {
                assert_eq!(from.map(|p| p.node()), Some(w[0].id()));
                assert_eq!(msg.take::<u32>().unwrap(), i);
            }
            other => panic!("expected message {i}, got {other:?}"),
        }
    }
}

/// A call to a process on another node gets its reply.
#[tokio::test(start_paused = true)]
async fn a_call_across_nodes_gets_its_reply() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let echo = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap();
    assert_eq!(echo.node, "w2");
    let reply = pool
        .call(
            echo.pid,
            serde_json::json!({"n": 7}),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.take::<serde_json::Value>().unwrap(),
        serde_json::json!({"n": 7})
    );
    let counter = pool
        .spawn(Spawn::new("builtin.counter", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    for n in 1..=3i64 {
        let got = pool
            .call(counter, "inc", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.take::<i64>().unwrap(), n);
    }
}

/// A call to a process of another node that is not alive fails with the
/// callee's fate, `noproc`, not with a timeout.
#[tokio::test(start_paused = true)]
async fn a_call_to_a_dead_remote_process_fails_with_noproc() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let Run {
        spawned: gone,
        reason,
        ..
    } = pool
        .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 1})).on("w2"))
        .await
        .unwrap();
    assert!(reason.is_normal());
    let t = tokio::time::Instant::now();
    let e = pool
        .call(gone.pid, "hi", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Exit(ExitReason::NoProc)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// A call that gets no reply times out after its timeout.
#[tokio::test(start_paused = true)]
async fn a_call_without_a_reply_times_out() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let sleeper = pool
        .spawn(Spawn::new("builtin.sleep", serde_json::json!({"ms": 60_000})).on("w2"))
        .await
        .unwrap();
    let t = tokio::time::Instant::now();
    let e = pool
        .call(sleeper.pid, "hi", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout(_)), "{e}");
    assert_eq!(t.elapsed(), Duration::from_millis(300));
}

/// With three nodes, each pair gets its own connection: messages from two
/// nodes to a third both arrive, each sender's in order.
#[tokio::test(start_paused = true)]
async fn three_nodes_route_independently() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    let mut probe = Probe::spawn(w[2].runtime(), false, |_| {});
    for i in 0..20u32 {
        w[0].pool().send(probe.pid, (1u32, i));
        w[1].pool().send(probe.pid, (2u32, i));
    }
    let mut next = [0u32; 3];
    for _ in 0..40 {
        let (from, i) = probe.message::<(u32, u32)>().await;
        assert_eq!(i, next[from as usize], "node {from} out of order");
        next[from as usize] += 1;
    }
    assert_eq!(next, [0, 20, 20]);
}

/// A message to a process of a node that is not a member is dropped
/// without harm: the sender's node goes on routing to the others.
#[tokio::test(start_paused = true)]
async fn a_message_to_an_unknown_node_is_dropped() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let nowhere = pool_proto::Pid::new(pool_proto::NodeId::random(), 1);
    w[0].pool().send(nowhere, 1u32);
    let mut probe = Probe::spawn(w[1].runtime(), false, |_| {});
    w[0].pool().send(probe.pid, 2u32);
    assert_eq!(probe.message::<u32>().await, 2);
}
