//! Cluster tests of placement by function and of workers that peers cannot
//! reach, with the real `pool-master`, `pool-worker` and `poolctl` binaries
//! and `wc-worker` (this crate's worker with its own `wc.count`) on
//! loopback.
//!
//! - Spawns (Pool API, `poolctl spawn`), pinned spawns and tree children
//!   go only to workers that register their function; without one, the
//!   spawn fails naming the function and the tree child waits pending.
//! - A worker whose advertised address refuses connections shows in
//!   `poolctl nodes` as unreachable from the node that tried, and spawns
//!   there fail naming the address and the cause.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use pool_cluster_tests::text::{tail, write_tree};
use pool_cluster_tests::{Cluster, tree_entries, wait_unreachable_from, wait_until};
use pool_proto::{AppStatus, ChildStatus};
use pool_worker::{Node, NodeConfig, NodeHandle, Spawn};
use serde_json::{Value, json};

/// How long a node join, a node-down or a pending retry may take here.
const WAIT: Duration = Duration::from_secs(30);

/// A cluster with `--node-timeout 1s`, stock workers w1 and w2 and the
/// custom `wc-worker` w3 (with `w3_args`), all joined.
fn cluster(w3_args: &[&str]) -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), "1s".into()];
    c.start_master()?;
    c.start_worker("w1", &["--label", "zone=a"])?;
    c.start_worker("w2", &["--label", "zone=b"])?;
    start_wc(&mut c, w3_args)?;
    c.wait_nodes(3)?;
    Ok(c)
}

/// Starts the custom worker as w3.
fn start_wc(c: &mut Cluster, extra: &[&str]) -> Result<()> {
    let mut cmd = c.command("wc-worker");
    cmd.args(["--master", &c.master_addr, "--name", "w3"])
        .args(["--listen", "127.0.0.1:0", "--report-interval", "200ms"])
        .args(extra);
    c.add_worker("w3", cmd)
}

/// A Pool API user: a node of this test process joined to the master, a
/// hidden one (as `poolctl`) or, with `listen`, a worker that reports its
/// load like any other.
fn node(rt: &tokio::runtime::Runtime, c: &Cluster, name: &str, worker: bool) -> Result<NodeHandle> {
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let master = c.master_addr.clone();
    rt.block_on(async {
        let started = if worker {
            let mut config = NodeConfig::worker(name, master, cookie);
            config.report_interval = Some(Duration::from_millis(200));
            Node::builder(config)
                .listener(std::net::TcpListener::bind("127.0.0.1:0")?)
                .start()
                .await
        } else {
            Node::builder(NodeConfig::hidden(name, master, cookie))
                .start()
                .await
        };
        started.map_err(|e| anyhow!("{name} cannot join: {e}"))
    })
}

/// A `wc.count` child that stays up, placed least-loaded.
fn wc_child(id: &str) -> String {
    format!(
        "{{ id = \"{id}\", function = \"wc.count\", args = {{ serve = true }}, placement = \"least-loaded\" }}"
    )
}

/// The status and node of each entry of tree `app`, root excluded, after
/// `tree show`.
fn children(c: &Cluster, app: &str) -> Result<Vec<(String, ChildStatus, Option<String>)>> {
    let view = c.tree_show(app)?;
    Ok(tree_entries(&view)
        .into_iter()
        .filter(|(path, _)| path != app)
        .map(|(path, v)| (path, v.status, v.node))
        .collect())
}

/// Spawns of `wc.count` through the Pool API (placed, keyed, `run`) and
/// `poolctl spawn wc.count --wait` land on the one worker that registers
/// it, never on the stock ones, even though those are less loaded; a spawn
/// pinned to a stock worker fails before any spawn frame, naming the
/// function; labels still filter on top. A tree whose children use
/// `wc.count` starts with every child on that worker. With that worker
/// killed, a spawn of `wc.count` fails with an error naming it and the
/// tree's children wait pending (the app is not failed) until the worker is
/// back, then run on it again.
#[test]
fn spawns_and_tree_children_go_only_where_the_function_is() -> Result<()> {
    let mut c = cluster(&["--label", "zone=a"])?;
    let rt = tokio::runtime::Runtime::new()?;
    let client = node(&rt, &c, "fn-client", false)?;
    let pool = client.pool();

    rt.block_on(async {
        for i in 0..20 {
            let s = pool
                .spawn(Spawn::new("wc.count", json!({"text": "one two"})))
                .await?;
            ensure!(s.node == "w3", "spawn {i} of wc.count went to {}", s.node);
        }
        for key in ["user:1", "user:2", "user:3"] {
            let s = pool
                .spawn_keyed(key, "wc.count", json!({"text": "x"}))
                .await?;
            ensure!(s.node == "w3", "keyed {key} went to {}", s.node);
        }
        let run = pool
            .run_spec(Spawn::new("wc.count", json!({"text": "a b c"})))
            .await?;
        let (s, reason) = (&run.spawned, &run.reason);
        ensure!(s.node == "w3" && reason.is_normal(), "{} {reason}", s.node);
        let words = run.result.context("no result")?.take::<Value>()?;
        ensure!(words == json!({"words": 3}), "{words}");

        let e = pool
            .spawn(Spawn::new("wc.count", json!({})).on("w1"))
            .await
            .expect_err("w1 has no wc.count");
        let text = e.to_string();
        ensure!(
            text.contains("w1") && text.contains("\"wc.count\"") && text.contains("w3"),
            "{text}"
        );

        // Labels on top: w3 is zone=a, w1 (zone=a) lacks the function.
        let s = pool
            .spawn(Spawn::new("wc.count", json!({})).label("zone=a"))
            .await?;
        ensure!(s.node == "w3", "zone=a went to {}", s.node);
        let e = pool
            .spawn(Spawn::new("wc.count", json!({})).label("zone=b"))
            .await
            .expect_err("no zone=b node has wc.count");
        let text = e.to_string();
        ensure!(
            text.contains("\"wc.count\"") && text.contains("zone=b"),
            "{text}"
        );
        anyhow::Ok(())
    })?;

    let v = c.poolctl_json(&["spawn", "wc.count", r#"{"text": "a b"}"#, "--wait"])?;
    ensure!(v["node"] == "w3", "poolctl spawn --wait printed {v}");

    let file = write_tree(
        &c,
        "wc",
        "one_for_one",
        10,
        &[wc_child("c1"), wc_child("c2"), wc_child("c3")],
    )?;
    c.tree_start(&file)?;
    let mut last = String::new();
    wait_until("tree wc to run on w3", WAIT, || {
        let kids = children(&c, "wc").ok()?;
        last = format!("{kids:?}");
        (kids.len() == 3
            && kids
                .iter()
                .all(|(_, s, n)| *s == ChildStatus::Running && n.as_deref() == Some("w3")))
        .then_some(())
    })
    .map_err(|e| anyhow!("{e}: {last}\n{}", tail(&c.master_log(), 30)))?;

    c.worker("w3").kill9();
    c.wait_node_gone("w3", WAIT)?;
    let e = rt
        .block_on(pool.spawn(Spawn::new("wc.count", json!({}))))
        .expect_err("no live node has wc.count");
    let text = e.to_string();
    ensure!(
        text.contains("\"wc.count\"") && text.contains("w1") && text.contains("w2"),
        "{text}"
    );

    // The root comes back on a stock worker; its children wait for a node
    // with the function instead of failing.
    wait_until("the wc children to be pending", WAIT, || {
        let kids = children(&c, "wc").ok()?;
        last = format!("{kids:?}");
        (kids.len() == 3 && kids.iter().all(|(_, s, _)| *s == ChildStatus::Pending)).then_some(())
    })
    .map_err(|e| anyhow!("{e}: {last}\n{}", tail(&c.master_log(), 30)))?;
    let app = c.app("wc")?;
    ensure!(app.status != AppStatus::Failed, "{app:?}");

    start_wc(&mut c, &["--label", "zone=a"])?;
    wait_until("the wc children to run on w3 again", WAIT, || {
        let kids = children(&c, "wc").ok()?;
        last = format!("{kids:?}");
        (kids.len() == 3
            && kids
                .iter()
                .all(|(_, s, n)| *s == ChildStatus::Running && n.as_deref() == Some("w3")))
        .then_some(())
    })
    .map_err(|e| anyhow!("{e}: {last}\n{}", tail(&c.master_log(), 30)))?;
    rt.block_on(client.shutdown());
    Ok(())
}

/// A worker that advertises an address nobody can connect to
/// (`--advertise 127.0.0.1:1`) is up for the master, but once another
/// worker has tried it, `poolctl nodes --json` shows it unreachable from
/// that worker, with the address and the cause; a spawn there from that
/// worker, and `poolctl spawn --on` it, fail naming the address and
/// "refused" instead of "connection lost".
#[test]
fn a_worker_peers_cannot_reach_is_shown_with_the_cause() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_worker("w2", &["--advertise", "127.0.0.1:1"])?;
    c.wait_nodes(2)?;
    let rt = tokio::runtime::Runtime::new()?;
    let tester = node(&rt, &c, "tester", true)?;
    c.wait_nodes(3)?;

    let e = rt
        .block_on(
            tester
                .pool()
                .spawn(Spawn::new("builtin.echo", json!({})).on("w2")),
        )
        .expect_err("w2 cannot be reached");
    let text = e.to_string();
    ensure!(
        text.contains("127.0.0.1:1") && text.contains("refused") && !text.contains("lost"),
        "{text}"
    );

    let entry = wait_unreachable_from("w2", "tester", WAIT, || c.poolctl_json(&["nodes"]).ok())?;
    let cause = entry["cause"].as_str().unwrap_or_default();
    ensure!(
        cause.contains("127.0.0.1:1") && cause.contains("refused"),
        "{entry}"
    );
    // The reachable ones carry no such field.
    let nodes = c.poolctl_json(&["nodes"])?;
    for n in nodes.as_array().context("nodes is an array")? {
        if n["name"] != "w2" && n.get("unreachable_from").is_some() {
            bail!("{} shows as unreachable: {n}", n["name"]);
        }
    }
    let table = c.poolctl_raw(&["nodes"])?;
    let table = String::from_utf8_lossy(&table.stdout);
    ensure!(
        table.contains("w2 unreachable from tester: cannot connect to 127.0.0.1:1"),
        "{table}"
    );

    let (_, err) = c.poolctl_fail(&["spawn", "builtin.echo", "{}", "--on", "w2"])?;
    ensure!(
        err.contains("127.0.0.1:1") && err.contains("refused"),
        "{err}"
    );
    rt.block_on(tester.shutdown());
    Ok(())
}
