//! Placement across nodes: load-aware spread, bursts between reports
//! (water-filling), consistent hashing on keys, label constraints.
//!
//! Workers here run with `--threads 1` so that the busy processes of a
//! test hold at most one core per worker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::{Value, json};

use crate::support::{assert_one_line, by_node};

/// Starts a master with `master_args` and `n` workers w1..wn with `extra`
/// (and `--threads 1 --capacity 2`), and waits until every one has sent a
/// load report.
fn pool(master_args: &[&str], n: usize, extra: impl Fn(usize) -> Vec<String>) -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.master_args = master_args.iter().map(|a| (*a).to_owned()).collect();
    c.start_master()?;
    for i in 1..=n {
        let mut args = vec!["--threads", "1", "--capacity", "2"];
        let more = extra(i);
        args.extend(more.iter().map(String::as_str));
        c.start_worker(&format!("w{i}"), &args)?;
    }
    c.wait_nodes(n)?;
    wait_until(
        "every worker's first report",
        Duration::from_secs(10),
        || {
            let nodes = c.nodes().ok()?;
            // Memory use is only known from a report.
            nodes
                .iter()
                .all(|n| n["mem"].as_f64().is_some_and(|m| m > 0.0))
                .then_some(())
        },
    )?;
    Ok(c)
}

/// Spawns `count` copies through the master's placement, in one burst
/// (`poolctl spawn --count`), and returns how many landed on each node.
fn burst(
    c: &Cluster,
    function: &str,
    args: Value,
    count: u32,
    more: &[&str],
) -> Result<BTreeMap<String, u64>> {
    let count_s = count.to_string();
    let args_s = args.to_string();
    let mut cmd = vec!["spawn", function, &args_s, "--count", &count_s];
    cmd.extend_from_slice(more);
    let started = Instant::now();
    let v = c.poolctl_json(&cmd)?;
    let took = started.elapsed();
    let counts = by_node(&v)?;
    let total: u64 = counts.values().sum();
    if total != u64::from(count) {
        bail!("{total} of {count} spawned: {v}");
    }
    eprintln!("burst of {count} {function} took {took:?}: {counts:?}");
    Ok(counts)
}

/// 30 busy processes spawned over 3 equal idle workers spread evenly:
/// 10 each, give or take one.
#[test]
fn busy_spawns_spread_evenly_over_equal_workers() -> Result<()> {
    let c = pool(&[], 3, |_| vec![])?;
    let counts = burst(&c, "builtin.busy", json!({"ms": 60_000}), 30, &[])?;
    assert_eq!(counts.len(), 3, "every worker gets some: {counts:?}");
    for (node, n) in &counts {
        assert!(
            (9..=11).contains(n),
            "30 over 3 equal workers should be about 10 each; {node} got {n}: {counts:?}"
        );
    }
    Ok(())
}

/// A burst of 32 spawns within one report interval over 8 idle workers
/// puts at most 6 on any node: the master counts its own placements on top
/// of the last reports instead of sending the burst to the node that
/// looked emptiest.
#[test]
fn burst_over_idle_workers_puts_at_most_six_on_a_node() -> Result<()> {
    // A long report interval, so that the burst falls within one.
    let c = pool(&["--report-interval", "1s"], 8, |_| vec![])?;
    let counts = burst(&c, "builtin.busy", json!({"ms": 60_000}), 32, &[])?;
    let max = counts.values().copied().max().unwrap_or(0);
    assert!(
        max <= 6,
        "at most 6 of 32 on one of 8 idle nodes: {counts:?}"
    );
    assert_eq!(counts.len(), 8, "every idle node gets some: {counts:?}");
    Ok(())
}

/// With seven busy workers and one idle one, a burst gives the idle worker
/// the largest share: placement follows the load the workers report, not a
/// rotation (OTP's `pool` would split the burst evenly).
#[test]
fn burst_gives_the_idle_worker_the_largest_share() -> Result<()> {
    // w1..w7 carry a label so that one spawn can load exactly them.
    let c = pool(&["--report-interval", "1s"], 8, |i| {
        if i <= 7 {
            vec!["--label".into(), "load=busy".into()]
        } else {
            vec![]
        }
    })?;
    // Eight runnable processes on each of w1..w7 (one thread each, so this
    // costs seven cores' worth of spinning at most, for a few seconds).
    let loaded = burst(
        &c,
        "builtin.busy",
        json!({"ms": 60_000}),
        56,
        &["--label", "load=busy"],
    )?;
    assert!(!loaded.contains_key("w8"), "{loaded:?}");
    // Wait until the reports show it: a run queue on w1..w7, none on w8.
    wait_until(
        "reports of the busy workers",
        Duration::from_secs(10),
        || {
            let nodes = c.nodes().ok()?;
            nodes
                .iter()
                .all(|n| {
                    let rq = n["run_queue"].as_u64().unwrap_or(0);
                    if n["name"] == "w8" { rq == 0 } else { rq >= 2 }
                })
                .then_some(())
        },
    )?;
    // Busy processes again: a report that arrives during the burst counts
    // them (they are runnable), so it cannot hide the burst's share.
    let counts = burst(&c, "builtin.busy", json!({"ms": 60_000}), 32, &[])?;
    let idle = counts.get("w8").copied().unwrap_or(0);
    for (node, n) in &counts {
        if node != "w8" {
            assert!(
                idle > *n,
                "the idle w8 should get more than busy {node}: {counts:?}"
            );
        }
    }
    Ok(())
}

/// Where the master would place `key`, for each key (queried in parallel).
fn key_map(c: &Cluster, keys: &[String]) -> Result<BTreeMap<String, String>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(4)
            .map(|chunk| {
                s.spawn(move || -> Result<Vec<(String, String)>> {
                    chunk
                        .iter()
                        .map(|k| {
                            let v = c.poolctl_json(&["place", "--key", k])?;
                            match v["nodes"].as_array().map(Vec::as_slice) {
                                Some([n]) => Ok((k.clone(), n.as_str().unwrap_or("").to_owned())),
                                _ => bail!("place --key {k} printed {v}"),
                            }
                        })
                        .collect()
                })
            })
            .collect();
        let mut map = BTreeMap::new();
        for h in handles {
            match h.join() {
                Ok(r) => map.extend(r?),
                Err(_) => bail!("a place thread panicked"),
            }
        }
        Ok(map)
    })
}

/// Keyed spawns stick to one node (every spawn with one key lands where
/// `place --key` says); when a node leaves only its keys move (every key
/// of a surviving node stays where it was), and when a node joins keys
/// move only to it.
#[test]
fn keyed_spawns_stick_and_only_the_leavers_keys_move_or_the_joiners() -> Result<()> {
    let mut c = Cluster::start(4)?;
    let keys: Vec<String> = (0..16).map(|i| format!("user:{i}")).collect();
    let before = key_map(&c, &keys)?;

    // Stickiness: six spawns with one key, all on its node.
    let v = c.poolctl_json(&[
        "spawn",
        "builtin.sleep",
        r#"{"ms":60000}"#,
        "--key",
        "user:0",
        "--count",
        "6",
    ])?;
    let counts = by_node(&v)?;
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![(before["user:0"].clone(), 6)],
        "all spawns with key user:0 go where place --key says"
    );
    let (_, node) = c.spawn(&["builtin.echo", "--key", "user:1"])?;
    assert_eq!(node, before["user:1"]);

    // The node holding the most keys leaves.
    let mut held: BTreeMap<&str, usize> = BTreeMap::new();
    for n in before.values() {
        *held.entry(n).or_default() += 1;
    }
    let leaver = held
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(name, _)| (*name).to_owned())
        .expect("keys are placed");
    assert!(
        c.worker(&leaver).terminate(Duration::from_secs(20)),
        "{leaver} did not stop"
    );
    c.wait_node_gone(&leaver, Duration::from_secs(5))?;

    let after = key_map(&c, &keys)?;
    let mut moved = 0;
    for k in &keys {
        if before[k] == leaver {
            assert_ne!(after[k], leaver, "{k} must move off the node that left");
            moved += 1;
        } else {
            assert_eq!(
                after[k], before[k],
                "{k} was on {} which still lives: it must not move",
                before[k]
            );
        }
    }
    assert!(moved > 0, "the leaver held keys");

    // A node joins: keys move only to it (and some do).
    c.start_worker("w5", &[])?;
    c.wait_nodes(4)?;
    let joined = key_map(&c, &keys)?;
    let mut to_new = 0;
    for k in &keys {
        if joined[k] == "w5" {
            to_new += 1;
        } else {
            assert_eq!(joined[k], after[k], "{k} may only move to the new node");
        }
    }
    assert!(
        to_new > 0 && to_new < keys.len(),
        "about a quarter of the keys move to the new node, not {to_new} of {}",
        keys.len()
    );
    Ok(())
}

/// Labels restrict placement: spawns with `--label zone=a` land only on
/// zone=a nodes, two labels only on the node that has both, `--on` a node
/// without the label is refused; a spawn no node can take fails (exit 1)
/// with one line that names the missing label and the live nodes.
#[test]
fn labels_restrict_placement_and_say_why_when_nothing_fits() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &["--label", "zone=a"])?;
    c.start_worker("w2", &["--label", "zone=b"])?;
    c.start_worker("w3", &["--label", "zone=a", "--label", "gpu=yes"])?;
    c.wait_nodes(3)?;
    let labels: BTreeMap<String, Value> = c
        .nodes()?
        .into_iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("").to_owned(),
                n["labels"].clone(),
            )
        })
        .collect();
    assert_eq!(labels["w3"], json!({"zone": "a", "gpu": "yes"}));

    let counts = burst(
        &c,
        "builtin.sleep",
        json!({"ms": 60_000}),
        8,
        &["--label", "zone=a"],
    )?;
    assert!(
        counts.keys().all(|n| n == "w1" || n == "w3"),
        "zone=a spawns only on w1 and w3: {counts:?}"
    );
    let placed = c.poolctl_json(&[
        "place", "--count", "3", "--label", "zone=a", "--label", "gpu=yes",
    ])?;
    assert_eq!(placed, json!({"nodes": ["w3", "w3", "w3"]}));

    let (code, err) = c.poolctl_fail(&["spawn", "builtin.echo", "--label", "zone=c"])?;
    assert_eq!(code, 1, "{err}");
    assert_one_line(&err, "spawn with a label no node has");
    assert!(
        err.contains("zone=c") && err.contains("w1") && err.contains("w2"),
        "the error should name the label and the live nodes: {err}"
    );
    let (code, err) = c.poolctl_fail(&[
        "spawn",
        "builtin.echo",
        "--label",
        "zone=b",
        "--label",
        "gpu=yes",
    ])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("zone=b") && err.contains("gpu=yes"),
        "the error should name the labels no node has together: {err}"
    );
    let (code, err) =
        c.poolctl_fail(&["spawn", "builtin.echo", "--on", "w2", "--label", "zone=a"])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("w2") && err.contains("zone=a"),
        "the error should say w2 lacks zone=a: {err}"
    );
    Ok(())
}
