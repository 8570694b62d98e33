//! Issue point 2: a paused master is not evidence against the workers.
//! After the master itself did not run for a while (SIGSTOP past the node
//! timeout), it gives every node a fresh grace period instead of
//! declaring them all down at once, fencing them and restarting
//! everything.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use pool_cluster_tests::wait_until;

use super::common::{
    SETTLE, echo, master_tail, names, start_cluster, strip_ansi, wait_running, worker_log,
    write_tree,
};

/// How long the master is stopped: 2.5 node timeouts.
const PAUSE: Duration = Duration::from_secs(5);

/// SIGSTOP the master for 5 s (node timeout 2 s) while three healthy
/// workers run a tree, then SIGCONT. Once the master has fresh reports
/// from every worker, and for 3 s more: the same incarnations are live,
/// the master logs no `node down`, no worker fences, and every supervisor
/// and child of the tree runs with the same pid on the same node as before
/// the pause (nothing was restarted).
#[test]
fn a_paused_master_declares_no_healthy_worker_down() -> Result<()> {
    let c = start_cluster(&[("w1", &[]), ("w2", &[]), ("w3", &[])])?;
    let live = names(&["w1", "w2", "w3"]);
    let ll = r#""least-loaded""#;
    let file = write_tree(
        &c,
        "steady",
        "one_for_one",
        10,
        &[
            echo("home", r#""local""#),
            echo("c1", ll),
            echo("c2", ll),
            echo("c3", ll),
            echo("c4", ll),
            echo("c5", ll),
            echo("c6", ll),
        ],
    )?;
    let ctl = c.ctl();
    ctl.json(&["tree", "start", file.to_str().context("utf-8 path")?])?;
    let before = wait_running(&ctl, "steady", &live, SETTLE, |_| Ok(()))?;
    let ids = ctl.node_ids()?;
    drop(ctl);
    let master_lines = strip_ansi(&c.master_log()).lines().count();

    let master = c.master.as_ref().context("the master runs")?;
    master.signal(libc::SIGSTOP);
    // The fault itself: the master does not run for this long.
    std::thread::sleep(PAUSE);
    master.signal(libc::SIGCONT);
    let resumed = Instant::now();

    let ctl = c.ctl();
    wait_until("fresh reports from every worker", SETTLE, || {
        let since = u64::try_from(resumed.elapsed().as_millis()).unwrap_or(u64::MAX);
        let nodes = ctl.nodes().ok()?;
        (nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n["report_age_ms"].as_u64().is_some_and(|a| a < since)))
        .then_some(())
    })?;
    let watch_end = Instant::now() + Duration::from_secs(3);
    let mut wrong = Vec::new();
    while Instant::now() < watch_end && wrong.is_empty() {
        let now = ctl.node_ids()?;
        if now != ids {
            wrong.push(format!("live workers changed: {ids:?} -> {now:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    match wait_running(&ctl, "steady", &live, SETTLE, |_| Ok(())) {
        Ok(after) if after != before => {
            let moved: Vec<String> = before
                .iter()
                .filter(|(path, at)| after.get(*path) != Some(*at))
                .map(|(path, (pid, node))| {
                    format!("{path}: {pid} on {node} -> {:?}", after.get(path))
                })
                .collect();
            wrong.push(format!("restarted by the pause: {moved:?}"));
        }
        Ok(_) => {}
        Err(e) => wrong.push(format!("after the pause: {e}")),
    }
    let downs: Vec<String> = strip_ansi(&c.master_log())
        .lines()
        .skip(master_lines)
        .filter(|l| l.contains("node down") && !l.contains("poolctl-"))
        .map(str::to_owned)
        .collect();
    if !downs.is_empty() {
        wrong.push(format!(
            "the master declared workers down:\n{}",
            downs.join("\n")
        ));
    }
    for w in &live {
        if worker_log(&c, w).contains("fencing") {
            wrong.push(format!("{w} fenced"));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{}\n--- master log (tail):\n{}",
        wrong.join("\n"),
        master_tail(&c, 20)
    );
    Ok(())
}
