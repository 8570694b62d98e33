//! The Pool API's spawns: placed by the master, on a named node, by key,
//! with labels; `run` with its exit reason and result; errors that name
//! the node they come from.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use pool_proto::{ErrorCode, ExitReason};
use pool_worker::{Error, Run, Spawn, Target};
use support::{Cluster, Probe};

/// A placed spawn goes where the master's placement says: here, round
/// robin over the live workers, so three spawns land on three nodes, and
/// each runs there.
#[tokio::test(start_paused = true)]
async fn a_placed_spawn_goes_where_the_master_says() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    let pool = w[0].pool();
    let mut nodes = BTreeSet::new();
    for _ in 0..3 {
        let s = pool
            .spawn(Spawn::new("builtin.echo", serde_json::json!({})))
            .await
            .unwrap();
        let host = w.iter().find(|n| n.id() == s.pid.node()).unwrap();
        assert_eq!(host.pool().node_name(), s.node);
        assert!(host.runtime().is_alive(s.pid));
        nodes.insert(s.node);
    }
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["w1", "w2", "w3"]);
}

/// `spawn_on` runs the process on the named node (this one too).
#[tokio::test(start_paused = true)]
async fn spawn_on_runs_on_the_named_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let pool = w[0].pool();
    let there = pool
        .spawn_on("w2", "builtin.echo", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!((there.node.as_str(), there.pid.node()), ("w2", w[1].id()));
    let here = pool
        .spawn_on("w1", "builtin.echo", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!((here.node.as_str(), here.pid.node()), ("w1", w[0].id()));
    let local = pool
        .spawn(Spawn {
            target: Target::Local,
            ..Spawn::new("builtin.echo", serde_json::json!({}))
        })
        .await
        .unwrap();
    assert_eq!(local.pid.node(), w[0].id());
}

/// A spawn on a node that is not live fails with an error naming it and
/// listing the other live workers this node knows.
#[tokio::test(start_paused = true)]
async fn a_spawn_on_an_unknown_node_names_the_live_ones() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    let e = w[0]
        .pool()
        .spawn_on("w9", "builtin.echo", serde_json::json!({}))
        .await
        .unwrap_err();
    match &e {
        Error::UnknownNode { name, live } => {
            assert_eq!(name, "w9");
            assert_eq!(live, "w2, w3");
        }
        other => panic!("expected UnknownNode, got {other}"),
    }
    assert!(e.to_string().contains("poolctl nodes"), "{e}");
}

/// The same key goes to the same node while the membership stays.
#[tokio::test(start_paused = true)]
async fn a_key_goes_to_the_same_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    let pool = w[0].pool();
    for key in ["cart-1", "cart-2", "user-77"] {
        let first = pool
            .spawn_keyed(key, "builtin.echo", serde_json::json!({}))
            .await
            .unwrap();
        for _ in 0..3 {
            let again = pool
                .spawn_keyed(key, "builtin.echo", serde_json::json!({}))
                .await
                .unwrap();
            assert_eq!(again.node, first.node, "key {key}");
        }
    }
}

/// Label constraints pick a node that has the labels.
#[tokio::test(start_paused = true)]
async fn labels_pick_a_matching_node() {
    let c = Cluster::new();
    let mut config = c.config("w2");
    config.labels.insert("zone".into(), "b".into());
    let _w1 = c.worker("w1").await;
    let _w2 = c.builder_with(config).start().await.unwrap();
    let w3 = c.worker("w3").await;
    let pool = w3.pool();
    for _ in 0..3 {
        let s = pool
            .spawn(Spawn::new("builtin.echo", serde_json::json!({})).label("zone=b"))
            .await
            .unwrap();
        assert_eq!(s.node, "w2");
    }
    let e = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).label("zone=z"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoNode), "{e}");
}

/// A refusal from the node asked to spawn names that node: an unknown
/// function on w2 says "node w2: ...".
#[tokio::test(start_paused = true)]
async fn a_remote_refusal_names_the_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let e = w[0]
        .pool()
        .spawn_on("w2", "no.such.function", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownFunction), "{e}");
    assert!(e.to_string().starts_with("node w2: "), "{e}");
}

/// `run` waits for the process: its normal exit with its result value,
/// after the time it took.
#[tokio::test(start_paused = true)]
async fn run_returns_the_reason_and_the_result() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let t = tokio::time::Instant::now();
    let Run {
        spawned,
        reason,
        result,
        ..
    } = w[0]
        .pool()
        .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 250})).on("w2"))
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert_eq!(spawned.node, "w2");
    assert!(reason.is_normal(), "{reason}");
    assert_eq!(result.unwrap().take::<u64>().unwrap(), 250);
}

/// `run` of a process that crashes returns its reason and no result.
#[tokio::test(start_paused = true)]
async fn run_of_a_crash_returns_its_reason() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let crash = serde_json::json!({"after_ms": 10, "reason": "out of cheese"});
    let Run { reason, result, .. } = w[0]
        .pool()
        .run_spec(Spawn::new("builtin.crash", crash).on("w2"))
        .await
        .unwrap();
    assert_eq!(reason, ExitReason::Error("out of cheese".into()));
    assert!(result.is_none());
}

/// A spawn linked to a local process: when the remote process crashes,
/// the local one (trapping exits) hears it.
#[tokio::test(start_paused = true)]
async fn a_spawn_can_link_the_new_process_to_a_local_one() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut probe = Probe::spawn(w[0].runtime(), true, |_| {});
    let crash = serde_json::json!({"after_ms": 50, "reason": "boom"});
    let s = w[0]
        .pool()
        .spawn(Spawn::new("builtin.crash", crash).on("w2").link(probe.pid))
        .await
        .unwrap();
    let (from, reason) = probe.exit().await;
    assert_eq!(from, s.pid);
    assert_eq!(reason.to_string(), "boom");
}

/// Link and monitor must come from the same local process.
#[tokio::test(start_paused = true)]
async fn link_and_monitor_from_two_processes_is_refused() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let a = Probe::spawn(w1.runtime(), false, |_| {});
    let b = Probe::spawn(w1.runtime(), false, |_| {});
    let e = w1
        .pool()
        .spawn(
            Spawn::new("builtin.echo", serde_json::json!({}))
                .link(a.pid)
                .monitor(b.pid),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}
