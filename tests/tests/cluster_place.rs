//! Placement without the master on the path, against the real binaries:
//! a node places its pool spawns on its copy of the master's load table
//! and sends them straight to the chosen worker (the master's placement
//! queries do not grow, its accounting still counts them); two clients
//! bursting at once still spread evenly; a worker killed after the copy
//! was made is not chosen once the master says it is down, and a spawn
//! racing the kill is placed again by the master and succeeds elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use pool_cluster_tests::{Cluster, http_get, wait_until};
use pool_worker::{Node, NodeConfig, NodeHandle, Spawn};
use serde_json::json;

/// The series `series` of the master's `/metrics` (0 when absent).
fn metric(c: &Cluster, series: &str) -> Result<f64> {
    let (code, body) = http_get(&c.http_addr, "/metrics")?;
    ensure!(code == 200, "/metrics answered {code}");
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

const QUERIES: &str = "pool_placement_queries_total";
const SPAWNS: &str = "pool_spawns_total{strategy=\"least-loaded\"}";

/// A master and `n` workers of capacity 1, w1..wn, all joined.
fn cluster(n: usize) -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    for i in 1..=n {
        c.start_worker(&format!("w{i}"), &["--capacity", "1"])?;
    }
    c.wait_nodes(n)?;
    Ok(c)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A client node of the pool (hidden, in this process) named `name`.
async fn client(c: &Cluster, name: &str) -> Result<NodeHandle> {
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let config = NodeConfig::hidden(name, c.master_addr.clone(), cookie);
    Ok(Node::builder(config).start().await?)
}

/// A process that stays (for the rest of the test).
fn sleeper() -> Spawn {
    Spawn::new("builtin.sleep", json!({"ms": 120_000}))
}

/// Spawns `n` sleepers from `node` at once; the node of each.
async fn burst(node: &NodeHandle, n: usize) -> Result<Vec<String>> {
    let pool = node.pool();
    let spawns = (0..n).map(|_| pool.spawn(sleeper()));
    let mut nodes = Vec::new();
    for s in futures_util::future::join_all(spawns).await {
        nodes.push(s?.node);
    }
    Ok(nodes)
}

/// After its first spawn (which fetches the copy), a client's pool spawns
/// are one round trip: the master answers no placement query for them,
/// yet its accounting counts every one (the client's notices), and they
/// spread over the idle workers as the master would spread them.
#[test]
fn a_pool_spawn_does_not_ask_the_master() -> Result<()> {
    let c = cluster(3)?;
    let rt = runtime()?;
    rt.block_on(async {
        let node = client(&c, "placer").await?;
        let result = async {
            let pool = node.pool();
            pool.spawn(sleeper()).await?;
            let queries = metric(&c, QUERIES)?;
            let spawns = metric(&c, SPAWNS)?;
            let mut per_node = BTreeMap::<String, u32>::new();
            for _ in 0..12 {
                let s = pool.spawn(sleeper()).await?;
                *per_node.entry(s.node).or_default() += 1;
            }
            ensure!(
                metric(&c, QUERIES)? == queries,
                "the master was asked to place: {} queries after {queries}",
                metric(&c, QUERIES)?
            );
            wait_until(
                "the master to count the 12 placements",
                Duration::from_secs(10),
                || (metric(&c, SPAWNS).ok()? >= spawns + 12.0).then_some(()),
            )?;
            // 13 over 3 idle nodes of capacity 1: 4 or 5 on each.
            ensure!(per_node.len() == 3, "{per_node:?}");
            ensure!(
                per_node.values().all(|&n| (3..=5).contains(&n)),
                "{per_node:?}"
            );
            anyhow::Ok(())
        }
        .await;
        node.shutdown().await;
        result
    })
}

/// Two clients burst at the same moment onto 4 idle workers of capacity 1,
/// 8 spawns each: with the accounting on both copies (each spreads its
/// own burst evenly) and the master relaying each one's notices to the
/// other, no node gets more than the ideal (16 / 4) plus one — the bound
/// when a relay lands in the middle of a burst; with no relay in time the
/// sum is exactly the ideal.
#[test]
fn two_clients_bursting_at_once_spread_evenly() -> Result<()> {
    let c = cluster(4)?;
    let rt = runtime()?;
    rt.block_on(async {
        let a = client(&c, "burst-a").await?;
        let b = client(&c, "burst-b").await?;
        let result = async {
            let (x, y) = tokio::join!(burst(&a, 8), burst(&b, 8));
            let mut per_node = BTreeMap::<String, u32>::new();
            for n in x?.into_iter().chain(y?) {
                *per_node.entry(n).or_default() += 1;
            }
            let total: u32 = per_node.values().sum();
            ensure!(total == 16);
            let max = per_node.values().copied().max().unwrap_or(0);
            ensure!(per_node.len() == 4 && max <= 4 + 1, "{per_node:?}");
            eprintln!("two bursts of 8 over 4 nodes: {per_node:?}");
            anyhow::Ok(())
        }
        .await;
        a.shutdown().await;
        b.shutdown().await;
        result
    })
}

/// A worker killed (`kill -9`) after the client's copy was made: spawns
/// racing the kill (the copy still has the worker, the emptiest) succeed
/// on the others, placed again by the master; once the master has
/// declared it down, the copy never chooses it (no spawn needs the master
/// any more).
#[test]
fn a_killed_worker_is_not_chosen_and_a_racing_spawn_goes_elsewhere() -> Result<()> {
    let mut c = cluster(3)?;
    let rt = runtime()?;
    // w1 and w2 busy: the copy's next choices are w3.
    for on in ["w1", "w2"] {
        for _ in 0..4 {
            c.spawn(&["builtin.sleep", "{\"ms\": 120000}", "--on", on])?;
        }
    }
    // Their reports count the sleepers (placed by name, not by the master).
    wait_until(
        "w1 and w2 to report 4 processes",
        Duration::from_secs(15),
        || {
            let procs = |name| c.node(name).ok()??["procs"].as_u64();
            (procs("w1")? >= 4 && procs("w2")? >= 4).then_some(())
        },
    )?;
    let node = rt.block_on(client(&c, "racer"))?;
    let result = (|| {
        // The copy is made by the first spawn, which goes to w3.
        let first = rt.block_on(node.pool().spawn(sleeper()))?;
        ensure!(
            first.node == "w3",
            "the emptiest node first: {}",
            first.node
        );

        c.worker("w3").kill9();
        let racing = rt.block_on(burst(&node, 3))?;
        ensure!(
            racing.iter().all(|n| n != "w3"),
            "a spawn on the killed node failed over: {racing:?}"
        );

        c.wait_node_gone("w3", Duration::from_secs(20))?;
        let queries = metric(&c, QUERIES)?;
        let after = rt.block_on(burst(&node, 6))?;
        ensure!(after.iter().all(|n| n != "w3"), "{after:?}");
        ensure!(
            metric(&c, QUERIES)? == queries,
            "every spawn after the down was placed on the copy, none on w3"
        );
        anyhow::Ok(())
    })();
    rt.block_on(node.shutdown());
    result.context("w3 killed")
}
