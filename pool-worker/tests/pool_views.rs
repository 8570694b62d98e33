//! The views `poolctl` prints, through the Pool API of a hidden node
//! (exactly what `poolctl` does): nodes, processes, and the client's own
//! spawns and calls.

mod support;

use std::time::Duration;

use pool_proto::Request;
use pool_worker::Spawn;
use support::Cluster;

/// `nodes` lists the live workers (not the client).
#[tokio::test(start_paused = true)]
async fn nodes_lists_the_live_workers() {
    let c = Cluster::new();
    let _w = c.workers(&["w1", "w2"]).await;
    let ctl = c.hidden("ctl").await;
    let mut names: Vec<String> = ctl
        .pool()
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    names.sort();
    assert_eq!(names, ["w1", "w2"]);
}

/// `processes` gathers every worker's processes, each with its node; the
/// helpers of calls are left out.
#[tokio::test(start_paused = true)]
async fn processes_lists_every_workers_processes() {
    let c = Cluster::new();
    let _w = c.workers(&["w1", "w2"]).await;
    let ctl = c.hidden("ctl").await;
    let pool = ctl.pool();
    let echo = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap();
    let ps = pool.processes(None).await.unwrap();
    let row = ps.iter().find(|p| p.pid == echo.pid).expect("listed");
    assert_eq!(
        (row.node.as_str(), row.function.as_str()),
        ("w2", "builtin.echo")
    );
    assert!(
        ps.iter()
            .all(|p| p.function != "call" && p.function != "wait")
    );
    let only_w1 = pool.processes(Some("w1")).await.unwrap();
    assert!(only_w1.iter().all(|p| p.node == "w1"));
    assert!(!only_w1.iter().any(|p| p.pid == echo.pid));
}

/// A client spawns on workers and calls what it spawned; it is never
/// placed on itself.
#[tokio::test(start_paused = true)]
async fn a_client_spawns_and_calls_through_the_pool() {
    let c = Cluster::new();
    let _w = c.workers(&["w1", "w2"]).await;
    let ctl = c.hidden("ctl").await;
    let pool = ctl.pool();
    for _ in 0..4 {
        let s = pool
            .spawn(Spawn::new("builtin.counter", serde_json::json!({})))
            .await
            .unwrap();
        assert_ne!(s.pid.node(), ctl.id());
        let n = pool
            .call(s.pid, "inc", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(n.take::<i64>().unwrap(), 1);
    }
}

/// The master's view of one node: `LocalProcesses` answered by the node,
/// with the node's name on each row.
#[tokio::test(start_paused = true)]
async fn a_node_lists_its_own_processes_for_the_master() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let s = w1
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap();
    match c.master.request("w1", Request::LocalProcesses).await {
        pool_proto::Response::Processes(ps) => {
            let row = ps.iter().find(|p| p.pid == s.pid).expect("listed");
            assert_eq!(row.node, "w1");
        }
        other => panic!("expected processes, got {other:?}"),
    }
}
