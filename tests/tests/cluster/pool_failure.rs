//! Failure detection (DESIGN.md "Failure detection", "A busy node is not a
//! dead node"): a killed worker is down at once, a stopped one within the
//! node timeout, a saturated one never.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::json;

use crate::support::{events, is_event, recorder, spawn_wait, wait_event};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A master with `master_args`, w1 a stock worker, w2 a test-worker, and
/// `more` stock workers w3...
fn pool(master_args: &[&str], w1: &[&str], w2: &[&str], more: usize) -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.master_args = master_args.iter().map(|a| (*a).to_owned()).collect();
    c.start_master()?;
    c.start_worker("w1", w1)?;
    c.start_test_worker("w2", w2)?;
    for i in 0..more {
        c.start_worker(&format!("w{}", i + 3), &[])?;
    }
    c.wait_nodes(2 + more)?;
    Ok(c)
}

/// kill -9 of a worker: with a node timeout of 10 s, the master drops it
/// from `poolctl nodes` and a trapping link and a monitor on another worker
/// get `noconnection` within 3 s (the closed connections tell, not the
/// timeout). Afterwards its pids behave as on a lost node: a new monitor
/// gets `noconnection`, a call fails with `noconnection`, a send succeeds
/// silently; the other workers stay.
#[test]
fn kill9_of_a_worker_is_seen_down_at_once() -> Result<()> {
    let mut c = pool(&["--node-timeout", "10s"], &[], &[], 1)?;
    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    let rec = recorder(
        &c,
        "w2",
        json!({"pid": echo, "link": true, "monitor": true, "trap": true, "sync": true}),
    )?;
    events(&c, &rec)?;

    let killed_at = now_ms();
    c.worker("w1").kill9();
    let took = c.wait_node_gone("w1", Duration::from_secs(8))?;
    eprintln!("a killed worker was declared down after {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "the master should see a killed worker at once, not after the 10 s timeout: {took:?}"
    );
    for kind in ["exit", "down"] {
        let e = wait_event(
            &c,
            &rec,
            &format!("{kind} noconnection"),
            Duration::from_secs(8),
            |e| is_event(e, kind, "noconnection"),
        )?;
        let after = e["at_ms"]
            .as_u64()
            .unwrap_or(u64::MAX)
            .saturating_sub(killed_at);
        assert!(
            after < 3000,
            "the other worker should see {kind} noconnection at once, took {after} ms"
        );
    }

    let rec2 = recorder(&c, "w2", json!({"pid": echo, "monitor": true}))?;
    wait_event(
        &c,
        &rec2,
        "Down noconnection for a pid of a lost node",
        Duration::from_secs(8),
        |e| is_event(e, "down", "noconnection"),
    )?;
    let args = json!({"pid": echo, "req": 1, "timeout_ms": 3000}).to_string();
    let v = spawn_wait(&c, &["test.call", &args, "--on", "w2"])?;
    assert_eq!(v["result"], json!({"error": "noconnection"}), "{v}");
    let out = c.poolctl_raw(&["send", &echo, "1"])?;
    assert!(
        out.status.success(),
        "a send to a lost node's pid never fails: {out:?}"
    );
    let (code, _) = c.poolctl_fail(&["call", &echo, "1"])?;
    assert_eq!(code, 1);

    let mut names = c.node_names()?;
    names.sort();
    assert_eq!(names, vec!["w2", "w3"]);
    Ok(())
}

/// SIGSTOP of a worker (alive but silent): with a node timeout of 1 s the
/// master declares it down within the timeout (plus one report interval of
/// slack), and a monitor on another worker gets `noconnection`. After
/// SIGCONT it is fenced and rejoins.
#[test]
fn sigstop_of_a_worker_is_down_within_the_node_timeout() -> Result<()> {
    let mut c = pool(&["--node-timeout", "1s"], &[], &[], 0)?;
    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    let rec = recorder(
        &c,
        "w2",
        json!({"pid": echo, "monitor": true, "sync": true}),
    )?;
    events(&c, &rec)?;

    c.worker("w1").signal(libc::SIGSTOP);
    let took = c.wait_node_gone("w1", Duration::from_secs(8))?;
    eprintln!("a stopped worker was declared down after {took:?}");
    assert!(
        took <= Duration::from_millis(2500),
        "a silent worker should be down within the 1 s node timeout, took {took:?}"
    );
    wait_event(&c, &rec, "Down noconnection", Duration::from_secs(8), |e| {
        is_event(e, "down", "noconnection")
    })?;

    c.worker("w1").signal(libc::SIGCONT);
    wait_until(
        "w1 to rejoin after SIGCONT",
        Duration::from_secs(20),
        || c.node("w1").ok().flatten(),
    )
    .map_err(|e| anyhow::anyhow!("{e}; w1 log:\n{}", c.worker("w1").log()))?;
    Ok(())
}

/// A worker whose processes saturate its only process thread is busy, not
/// down: with a node timeout of 1 s, a stock worker running 8 CPU-burning
/// `builtin.busy` processes and a test-worker whose thread is held by a
/// process that never yields stay listed for 4 s, their reports keep
/// coming (report age under the timeout, run queue shown), and a process
/// on the busy stock worker still answers a call.
#[test]
fn a_saturated_worker_is_not_declared_down_and_keeps_reporting() -> Result<()> {
    let c = pool(
        &["--node-timeout", "1s"],
        &["--threads", "1"],
        &["--threads", "1"],
        0,
    )?;
    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    c.poolctl_json(&[
        "spawn",
        "builtin.busy",
        r#"{"ms":60000}"#,
        "--on",
        "w1",
        "--count",
        "8",
    ])?;
    c.spawn(&["test.spin", r#"{"ms":60000}"#, "--on", "w2"])?;

    let start = Instant::now();
    let mut max_age = 0;
    let mut run_queues: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    while start.elapsed() < Duration::from_secs(4) {
        let nodes = c.nodes()?;
        for (i, name) in ["w1", "w2"].into_iter().enumerate() {
            let n = nodes.iter().find(|n| n["name"] == name).unwrap_or_else(|| {
                panic!(
                    "{name} was declared down while busy: {nodes:?}\nmaster log:\n{}",
                    c.master_log()
                )
            });
            max_age = max_age.max(n["report_age_ms"].as_u64().unwrap_or(u64::MAX));
            run_queues[i].push(n["run_queue"].as_u64().unwrap_or(0));
        }
    }
    assert!(
        run_queues[0].len() >= 4,
        "only {} samples in 4 s",
        run_queues[0].len()
    );
    assert!(
        max_age < 1000,
        "reports should keep coming while saturated; the oldest was {max_age} ms"
    );
    // Once the busy processes show, every report counts all eight (the
    // spinner on w2 holds the only thread, so it shows as one).
    assert!(
        once_shown_stays_at_least(&run_queues[0], 7),
        "w1's reports should count its 8 busy processes: {:?}",
        run_queues[0]
    );
    assert!(
        once_shown_stays_at_least(&run_queues[1], 1),
        "w2's reports should show its spinner: {:?}",
        run_queues[1]
    );
    assert_eq!(c.call(&echo, &json!("still here"))?, json!("still here"));
    Ok(())
}

/// True if the samples reach `min` and never fall below it afterwards.
fn once_shown_stays_at_least(samples: &[u64], min: u64) -> bool {
    match samples.iter().position(|&n| n >= min) {
        Some(first) => samples[first..].iter().all(|&n| n >= min),
        None => false,
    }
}

/// The run queue of a load report counts every runnable process, also one
/// that computes and yields with `Ctx::yield_now` (which, unlike tokio's
/// `yield_now`, keeps it runnable): a test-worker with one process thread
/// running 8 such CPU-bound processes reports (about) 8, report after report.
#[test]
fn reports_count_processes_that_yield_with_ctx_yield_now() -> Result<()> {
    let c = pool(&[], &[], &["--threads", "1"], 0)?;
    c.poolctl_json(&[
        "spawn",
        "test.yield_busy",
        r#"{"ms":60000}"#,
        "--on",
        "w2",
        "--count",
        "8",
    ])?;
    let start = Instant::now();
    let mut run_queue = Vec::new();
    while start.elapsed() < Duration::from_secs(3) {
        let n = c.node("w2")?.expect("w2 is live");
        run_queue.push(n["run_queue"].as_u64().unwrap_or(0));
    }
    assert!(
        once_shown_stays_at_least(&run_queue, 7),
        "w2's reports should count its 8 busy processes: {run_queue:?}"
    );
    Ok(())
}
