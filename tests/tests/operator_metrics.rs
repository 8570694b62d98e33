//! What an operator alerts on, against the real binaries: `/metrics` keeps
//! a dead node's `pool_node_up` at 0, process exits are counted by reason
//! on the workers and shown by the master, and the HTTP API lists one
//! node's processes and keeps node-down events visible.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use pool_cluster_tests::{Cluster, http_get, wait_until};

/// The value of the series `series` (e.g. `pool_node_up{node="w2"}`)
/// in the master's `/metrics`.
fn metric(c: &Cluster, series: &str) -> Option<f64> {
    let (code, body) = http_get(&c.http_addr, "/metrics").ok()?;
    if code != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A crash on w1 moves its `error` exit counter; killing w2 turns its
/// `pool_node_up` to 0 and the series stays (the master remembers the dead
/// id); the node-down event is in the events feed, filtered by kind.
#[test]
fn dead_node_stays_at_zero_and_exits_are_counted() -> Result<()> {
    let mut c = Cluster::start(2)?;
    wait_until("both nodes up in /metrics", Duration::from_secs(15), || {
        (metric(&c, "pool_node_up{node=\"w1\"}")? == 1.0
            && metric(&c, "pool_node_up{node=\"w2\"}")? == 1.0)
            .then_some(())
    })?;
    let errors = "pool_process_exits_total{node=\"w1\",reason=\"error\"}";
    let before = wait_until("w1's exit counters", Duration::from_secs(15), || {
        metric(&c, errors)
    })?;
    c.spawn(&["builtin.crash", "{\"reason\": \"boom\"}", "--on", "w1"])?;
    wait_until("the crash to be counted", Duration::from_secs(15), || {
        (metric(&c, errors)? > before).then_some(())
    })?;
    c.worker("w2").kill9();
    wait_until("w2 down at 0", Duration::from_secs(20), || {
        (metric(&c, "pool_node_up{node=\"w2\"}")? == 0.0).then_some(())
    })?;
    // Still there a while later: several reports of w1 went by.
    let seen = wait_until("two more reports", Duration::from_secs(15), || {
        let now = metric(&c, "pool_reports_total")?;
        Some(now)
    })?;
    wait_until("reports to move on", Duration::from_secs(15), || {
        (metric(&c, "pool_reports_total")? >= seen + 2.0).then_some(())
    })?;
    ensure!(
        metric(&c, "pool_node_up{node=\"w2\"}") == Some(0.0),
        "the dead node's series stays at 0"
    );
    ensure!(
        metric(&c, "pool_node_run_queue{node=\"w2\"}").is_none(),
        "a dead node has no load series"
    );
    let (code, body) = http_get(&c.http_addr, "/api/events?kinds=node_down")?;
    ensure!(code == 200, "{code} {body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let events = v["events"].as_array().context("events")?;
    ensure!(
        events.iter().all(|e| e["kind"] == "node_down") && events.iter().any(|e| e["node"] == "w2"),
        "{body}"
    );
    let (code, _) = http_get(&c.http_addr, "/api/events?kinds=nope")?;
    ensure!(code == 400, "an unknown kind is refused: {code}");
    Ok(())
}

/// `GET /api/nodes/{node}/processes` lists the processes of that node (as
/// `poolctl ps --node` does), and says 404 for a node that is not live.
#[test]
fn node_processes_endpoint_lists_one_node() -> Result<()> {
    let c = Cluster::start(2)?;
    let (pid, node) = c.spawn(&["builtin.echo", "--on", "w2"])?;
    ensure!(node == "w2", "placed on w2 as asked: {pid} {node}");
    let list = wait_until("the echo in w2's list", Duration::from_secs(15), || {
        let (code, body) = http_get(&c.http_addr, "/api/nodes/w2/processes").ok()?;
        (code == 200).then_some(())?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let list = v.as_array()?.clone();
        list.iter()
            .any(|p| p["pid"] == pid.as_str())
            .then_some(list)
    })?;
    ensure!(
        list.iter().all(|p| p["node"] == "w2"),
        "only w2's processes: {list:?}"
    );
    let (code, body) = http_get(&c.http_addr, "/api/nodes/nobody/processes")?;
    ensure!(code == 404, "{code} {body}");
    ensure!(body.contains("not a live worker"), "{body}");
    Ok(())
}
