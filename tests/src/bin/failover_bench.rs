//! Failover benchmark: the time from `kill -9` of a worker to all of its
//! pool-placed children running elsewhere.
//!
//! A master and 4 workers (the real release binaries, on loopback); a tree
//! of 100 permanent `builtin.echo` children placed `least-loaded` under one
//! root. 20 times: `kill -9` the worker (not the root's) that runs the most
//! children; measure until every one of the 100 children runs, exactly
//! once, none on the dead node; then start a replacement worker and wait
//! until it is live before the next kill (so its start-up is not inside the
//! measured window), and spread the children evenly again (stop the
//! surplus ones of the fullest workers; their supervisor restarts them on
//! the least-loaded node, the replacement), so every kill takes about a
//! quarter of the tree. Target: p99 under 500 ms.
//!
//! The observer is in this process: a hidden node (the Pool API, as
//! `poolctl` uses it) that calls `pool.processes(None)` back to back — the
//! master asks every live worker for its processes and merges the answers.
//! A kill is timed from just before `kill(2)` to the end of the first poll
//! that shows the whole tree running; the resolution is one poll (its
//! duration is printed).
//!
//! ```text
//! cargo build --release -p pool-master -p pool-worker --bins
//! cargo run --release -p pool-cluster-tests --bin failover_bench [-- KILLS CHILDREN WORKERS]
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pool_cluster_tests::{Cluster, cargo_bin, wait_until};
use pool_proto::{ExitReason, Pid, ProcessInfo};
use pool_worker::{Node, NodeConfig, Pool};

/// The app id of the benchmark tree.
const APP: &str = "bench";

/// How long one failover may take before the run is declared broken.
const GIVE_UP: Duration = Duration::from_secs(30);

/// The children of the app that run now, by child path, from one poll.
fn children(ps: &[ProcessInfo]) -> BTreeMap<String, Vec<&ProcessInfo>> {
    let prefix = format!("{APP}/");
    let mut out: BTreeMap<String, Vec<&ProcessInfo>> = BTreeMap::new();
    for p in ps {
        if let Some(owner) = &p.owner
            && owner.starts_with(&prefix)
        {
            out.entry(owner.clone()).or_default().push(p);
        }
    }
    out
}

/// Whether one poll shows all `n` children running, each exactly once, none
/// on `dead`.
fn whole(ps: &[ProcessInfo], n: usize, dead: &[String]) -> bool {
    let c = children(ps);
    c.len() == n
        && c.values()
            .all(|v| v.len() == 1 && !dead.iter().any(|d| *d == v[0].node))
}

/// Polls until the tree is whole; returns (time since `t0` at the end of
/// the satisfying poll, polls taken, their durations).
async fn until_whole(
    pool: &Pool,
    n: usize,
    dead: &[String],
    t0: Instant,
) -> Result<(Duration, usize, Vec<Duration>)> {
    let mut polls = Vec::new();
    loop {
        let start = Instant::now();
        let ps = pool.processes(None).await;
        let end = Instant::now();
        polls.push(end - start);
        if let Ok(ps) = ps
            && whole(&ps, n, dead)
        {
            return Ok((end - t0, polls.len(), polls));
        }
        if t0.elapsed() > GIVE_UP {
            bail!("the tree was not whole {GIVE_UP:?} after the kill");
        }
    }
}

/// Spreads the children evenly again (a replacement worker starts empty):
/// stops the surplus children of the fullest workers, which their
/// supervisor restarts on the least-loaded node, until no worker runs more
/// than its share (+2). Best effort, not timed: returns the children per
/// worker.
async fn rebalance(
    pool: &Pool,
    n: usize,
    workers: usize,
    dead: &[String],
) -> Result<BTreeMap<String, usize>> {
    let share = n.div_ceil(workers) + 2;
    let mut spread = BTreeMap::new();
    for _ in 0..50 {
        let ps = pool.processes(None).await?;
        let mut by_node: BTreeMap<String, Vec<Pid>> = BTreeMap::new();
        for v in children(&ps).values() {
            by_node.entry(v[0].node.clone()).or_default().push(v[0].pid);
        }
        spread = by_node.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        let surplus: Vec<Pid> = by_node
            .values()
            .flat_map(|pids| pids.iter().skip(share).copied())
            .collect();
        if surplus.is_empty() {
            break;
        }
        for pid in &surplus {
            pool.exit(*pid, ExitReason::Error("rebalance".into()));
        }
        let t0 = Instant::now();
        loop {
            let ps = pool.processes(None).await?;
            let gone = !ps.iter().any(|p| surplus.contains(&p.pid));
            if gone && whole(&ps, n, dead) {
                break;
            }
            if t0.elapsed() > GIVE_UP {
                bail!("the tree was not whole {GIVE_UP:?} after a rebalance");
            }
        }
    }
    Ok(spread)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .context("arguments: KILLS CHILDREN WORKERS (numbers)")
        })
        .collect::<Result<_>>()?;
    let kills = args.first().copied().unwrap_or(20);
    let n = args.get(1).copied().unwrap_or(100);
    let workers = args.get(2).copied().unwrap_or(4);
    if workers < 2 {
        bail!("at least 2 workers (one keeps the root)");
    }
    for bin in ["pool-master", "pool-worker"] {
        let p = cargo_bin(bin);
        eprintln!("using {}", p.display());
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "note: a debug build of the benchmark uses the debug binaries; run with --release"
        );
    }

    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), "1s".into()];
    c.start_master()?;
    let mut live: Vec<String> = (1..=workers).map(|i| format!("w{i}")).collect();
    for w in &live {
        c.start_worker(w, &[])?;
    }
    c.wait_nodes(workers)?;

    let mut text = format!(
        "[supervisor]\nid = \"{APP}\"\nstrategy = \"one_for_one\"\nintensity = 100000\nperiod = \"10s\"\nchildren = [\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "  {{ id = \"c{i:03}\", function = \"builtin.echo\", placement = \"least-loaded\" }},\n"
        ));
    }
    text.push_str("]\n");
    let file = c.write_file("bench.toml", &text)?;
    c.tree_start(&file)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cookie = pool_proto::cookie::resolve_cookie(Some(&c.cookie), None, None)?;
    let observer = rt.block_on(
        Node::builder(NodeConfig::hidden(
            "bench-observer",
            c.master_addr.clone(),
            cookie,
        ))
        .start(),
    )?;
    let pool = observer.pool();

    let root_node = wait_until("the tree to run", GIVE_UP, || {
        let app = c.app(APP).ok()?;
        let node = app.node?;
        let ps = rt.block_on(pool.processes(None)).ok()?;
        whole(&ps, n, &[]).then_some(node)
    })?;
    eprintln!("tree {APP}: {n} children over {workers} workers, root on {root_node}");
    let spread = rt.block_on(rebalance(&pool, n, workers, &[]))?;
    eprintln!("children per worker: {spread:?}");

    let mut dead: Vec<String> = Vec::new();
    let mut times = Vec::new();
    let mut all_polls = Vec::new();
    for k in 1..=kills {
        let ps = rt.block_on(pool.processes(None))?;
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for v in children(&ps).values() {
            *per_node.entry(v[0].node.clone()).or_default() += 1;
        }
        let victim = live
            .iter()
            .filter(|w| **w != root_node)
            .max_by_key(|w| per_node.get(*w).copied().unwrap_or(0))
            .context("a worker to kill")?
            .clone();
        let moved = per_node.get(&victim).copied().unwrap_or(0);

        let t0 = Instant::now();
        c.worker(&victim).kill9();
        dead.push(victim.clone());
        let (took, polls, durations) = rt.block_on(until_whole(&pool, n, &dead, t0))?;
        eprintln!(
            "kill {k:2}: {victim:>4} ran {moved:3} children; all {n} running elsewhere after {} ({polls} polls)",
            ms(took)
        );
        times.push(took);
        all_polls.extend(durations);

        live.retain(|w| *w != victim);
        let replacement = format!("r{k}");
        c.start_worker(&replacement, &[])?;
        live.push(replacement);
        c.wait_nodes(workers)?;
        let spread = rt.block_on(rebalance(&pool, n, workers, &dead))?;
        eprintln!("         children per worker now: {spread:?}");
    }

    times.sort();
    all_polls.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!("failover: kill -9 of a worker -> all its pool-placed children running elsewhere");
    println!(
        "  {kills} kills, {n} children over {workers} workers (least-loaded, rebalanced after each kill), \
         replacement worker after each kill"
    );
    println!(
        "  p50 {}  p99 {}  min {}  max {}  mean {}",
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 99.0)),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(mean)
    );
    println!(
        "  target p99 < 500 ms: {}",
        if percentile(&times, 99.0) < Duration::from_millis(500) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  observed by an in-process hidden node polling pool.processes(None) back to back; \
         resolution one poll: p50 {}, max {} ({} polls)",
        ms(percentile(&all_polls, 50.0)),
        ms(all_polls[all_polls.len() - 1]),
        all_polls.len()
    );
    rt.block_on(observer.shutdown());
    Ok(())
}
