//! Load test (issue "Security and hostile input"): many concurrent clients
//! spawning and calling through the pool against a few workers, with no
//! error and no process lost; reports the peak memory of every node.
//!
//! A master and 3 workers (the real release binaries, stock `builtin.*`
//! functions, on loopback). 200 clients, each a hidden node of its own in
//! this process (the Pool API, as `poolctl` uses it: its own connection to
//! the master and to every worker), run for 60 s, each in a loop:
//!
//! 1. spawn a `builtin.echo`, placed by the master (least-loaded), owned by
//!    `load/<client>`;
//! 2. call it, then two more of its live echoes, each with a request of its
//!    own, and check that the reply is that request;
//! 3. keep its last [`KEEP`] echoes; stop the oldest beyond that
//!    (`exit(pid, kill)`).
//!
//! Any spawn or call that fails or answers wrongly is an error. At the end
//! the pool's process list must hold exactly the echoes the clients kept
//! (none lost, none left over from the stopped ones), each of them must
//! still answer, and the same 3 workers must be live. The peak resident
//! memory of each node (`VmHWM` of `/proc/PID/status`) is printed with the
//! figures; the exit status is 1 if anything failed.
//!
//! ```text
//! cargo build --release -p pool-master -p pool-worker --bins
//! cargo run --release -p pool-cluster-tests --bin load_test [-- CLIENTS SECONDS WORKERS]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pool_cluster_tests::{Cluster, cargo_bin};
use pool_proto::{ExitReason, Pid};
use pool_worker::{Node, NodeConfig, NodeHandle, Pool, Spawn};
use serde_json::{Value, json};

/// Echoes each client keeps running; older ones are stopped.
const KEEP: usize = 4;

/// Calls per spawn: the new echo, then older ones of the same client.
const CALLS_PER_SPAWN: usize = 3;

/// How long one call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the end state may take to settle (stopped echoes gone).
const SETTLE: Duration = Duration::from_secs(20);

/// What one client did.
#[derive(Debug, Default)]
struct ClientStats {
    /// Spawns that succeeded, by node name.
    spawned: BTreeMap<String, u64>,
    /// Calls answered with their own request.
    calls: u64,
    /// Call round trips.
    latencies: Vec<Duration>,
    /// What went wrong (each is a failure of the test).
    errors: Vec<String>,
    /// Echoes still running at the end.
    kept: Vec<Pid>,
    /// Echoes it stopped.
    stopped: u64,
}

/// One client: spawn, call, stop the oldest, until `until`.
async fn client(pool: Pool, id: usize, until: Instant) -> ClientStats {
    let mut st = ClientStats::default();
    let owner = format!("load/{id}");
    let mut seq = 0u64;
    while Instant::now() < until {
        let spec = Spawn::new("builtin.echo", json!({})).owner(owner.clone());
        let s = match pool.spawn(spec).await {
            Ok(s) => s,
            Err(e) => {
                st.errors.push(format!("client {id}: spawn: {e}"));
                continue;
            }
        };
        *st.spawned.entry(s.node.clone()).or_default() += 1;
        st.kept.push(s.pid);
        // The new echo first, then older ones, newest first.
        for &to in st.kept.iter().rev().take(CALLS_PER_SPAWN) {
            seq += 1;
            let req = json!({"client": id, "seq": seq});
            let t = Instant::now();
            match pool.call(to, req.clone(), CALL_TIMEOUT).await {
                Ok(m) => match m.take::<Value>() {
                    Ok(v) if v == req => {
                        st.calls += 1;
                        st.latencies.push(t.elapsed());
                    }
                    Ok(v) => st
                        .errors
                        .push(format!("client {id}: {to} answered {v} to {req}")),
                    Err(e) => st
                        .errors
                        .push(format!("client {id}: {to}: undecodable reply: {e}")),
                },
                Err(e) => st.errors.push(format!("client {id}: call {to}: {e}")),
            }
        }
        while st.kept.len() > KEEP {
            let old = st.kept.remove(0);
            pool.exit(old, ExitReason::Kill);
            st.stopped += 1;
        }
    }
    st
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .context("arguments: CLIENTS SECONDS WORKERS (numbers)")
        })
        .collect::<Result<_>>()?;
    let clients = args.first().copied().unwrap_or(200) as usize;
    let secs = args.get(1).copied().unwrap_or(60);
    let workers = args.get(2).copied().unwrap_or(3) as usize;
    for bin in ["pool-master", "pool-worker"] {
        eprintln!("using {}", cargo_bin(bin).display());
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "note: a debug build of the load test uses the debug binaries; run with --release"
        );
    }

    // The pool: a master and `workers` stock workers.
    let mut c = Cluster::new()?;
    c.start_master()?;
    let names: Vec<String> = (1..=workers).map(|i| format!("w{i}")).collect();
    for w in &names {
        c.start_worker(w, &[])?;
    }
    c.wait_nodes(workers)?;
    let mut pids: Vec<(String, u32)> = vec![(
        "master".to_owned(),
        c.master.as_ref().context("a master")?.pid(),
    )];
    pids.extend(c.workers.iter().map(|(n, p)| (n.clone(), p.pid())));

    // RSS sampler: the largest VmRSS seen of each node, every 250 ms (the
    // kernel's VmHWM is the figure reported; this cross-checks it).
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pids) = (stop.clone(), pids.clone());
        std::thread::spawn(move || {
            let mut max = vec![0u64; pids.len()];
            while !stop.load(Ordering::Relaxed) {
                for (i, (_, pid)) in pids.iter().enumerate() {
                    if let Some((_, rss)) = memory_kib(*pid) {
                        max[i] = max[i].max(rss);
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            max
        })
    };

    // The clients: hidden nodes in this process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cookie = pool_proto::cookie::resolve_cookie(Some(&c.cookie), None, None)?;
    let t_join = Instant::now();
    let nodes: Vec<NodeHandle> = rt.block_on(async {
        let mut starts = tokio::task::JoinSet::new();
        for i in 0..clients {
            let config =
                NodeConfig::hidden(format!("load-{i}"), c.master_addr.clone(), cookie.clone());
            starts.spawn(Node::builder(config).start());
        }
        let mut nodes = Vec::new();
        while let Some(started) = starts.join_next().await {
            nodes.push(started.context("a client node's start panicked")??);
        }
        anyhow::Ok(nodes)
    })?;
    eprintln!(
        "{clients} clients joined in {:?}; running for {secs} s",
        t_join.elapsed()
    );
    let before: BTreeSet<String> = rt
        .block_on(nodes[0].pool().nodes())?
        .into_iter()
        .map(|n| format!("{} {}", n.name, n.id))
        .collect();

    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(secs);
    let stats: Vec<ClientStats> = rt.block_on(async {
        let tasks: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| tokio::spawn(client(n.pool(), i, until)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| ClientStats {
                errors: vec![format!("a client task failed: {e}")],
                ..ClientStats::default()
            }));
        }
        out
    });
    let ran = t0.elapsed();

    // Totals.
    let mut spawned: BTreeMap<String, u64> = BTreeMap::new();
    let (mut calls, mut stopped) = (0u64, 0u64);
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut kept: BTreeSet<Pid> = BTreeSet::new();
    for s in stats {
        for (n, k) in s.spawned {
            *spawned.entry(n).or_default() += k;
        }
        calls += s.calls;
        stopped += s.stopped;
        latencies.extend(s.latencies);
        errors.extend(s.errors);
        kept.extend(s.kept);
    }
    latencies.sort();
    let total_spawned: u64 = spawned.values().sum();

    // The end state: exactly the kept echoes run (bounded wait for the
    // stopped ones to be gone), each answers, the same workers are live.
    let pool = nodes[0].pool();
    let deadline = Instant::now() + SETTLE;
    let (lost, leaked) = loop {
        let ps = rt.block_on(pool.processes(None))?;
        let present: BTreeSet<Pid> = ps
            .iter()
            .filter(|p| p.owner.as_deref().is_some_and(|o| o.starts_with("load/")))
            .map(|p| p.pid)
            .collect();
        let lost: Vec<Pid> = kept.difference(&present).copied().collect();
        let leaked: Vec<Pid> = present.difference(&kept).copied().collect();
        if (lost.is_empty() && leaked.is_empty()) || Instant::now() >= deadline {
            break (lost, leaked);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let unanswered: Vec<String> = rt.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for &pid in &kept {
            let pool = pool.clone();
            calls.spawn(async move {
                let question = json!("still there?");
                match pool.call(pid, question.clone(), CALL_TIMEOUT).await {
                    Ok(m) => match m.take::<Value>() {
                        Ok(v) if v == question => None,
                        other => Some(format!("{pid}: answered {other:?}")),
                    },
                    Err(e) => Some(format!("{pid}: {e}")),
                }
            });
        }
        let mut out = Vec::new();
        while let Some(r) = calls.join_next().await {
            out.extend(r.unwrap_or_else(|e| Some(format!("a final call panicked: {e}"))));
        }
        out
    });
    let after: BTreeSet<String> = rt
        .block_on(pool.nodes())?
        .into_iter()
        .map(|n| format!("{} {}", n.name, n.id))
        .collect();

    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.join().unwrap_or_default();
    let memory: Vec<Option<(u64, u64)>> = pids.iter().map(|(_, p)| memory_kib(*p)).collect();
    let me = memory_kib(std::process::id());

    // The report.
    let per_node: Vec<String> = spawned.iter().map(|(n, k)| format!("{n} {k}")).collect();
    println!(
        "load test: {clients} clients (hidden nodes, Pool API), {secs} s, {workers} workers, {} binaries on loopback",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  spawns     {total_spawned} ({:.0}/s) - per node: {}",
        total_spawned as f64 / ran.as_secs_f64(),
        per_node.join(", ")
    );
    println!(
        "  calls      {calls} ({:.0}/s) - round trip p50 {}  p99 {}  max {}",
        calls as f64 / ran.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!("  errors     {}", errors.len());
    println!(
        "  processes  kept {} (each answers: {}), stopped {stopped}; at the end lost {}, left over {}",
        kept.len(),
        if unanswered.is_empty() { "yes" } else { "NO" },
        lost.len(),
        leaked.len()
    );
    println!(
        "  nodes      {} live before, {} after, same: {}",
        before.len(),
        after.len(),
        if before == after { "yes" } else { "NO" }
    );
    println!();
    println!(
        "  {:<10} {:>8} {:>16} {:>16} {:>16}",
        "node", "pid", "peak RSS (VmHWM)", "RSS at end", "max RSS sampled"
    );
    for (i, (name, pid)) in pids.iter().enumerate() {
        let (hwm, rss) =
            memory[i].map_or(("gone".into(), "gone".into()), |(h, r)| (mib(h), mib(r)));
        println!(
            "  {name:<10} {pid:>8} {hwm:>16} {rss:>16} {:>16}",
            mib(sampled.get(i).copied().unwrap_or(0))
        );
    }
    if let Some((h, r)) = me {
        println!(
            "  {:<10} {:>8} {:>16} {:>16} {:>16}",
            "(clients)",
            std::process::id(),
            mib(h),
            mib(r),
            "-"
        );
    }

    for e in errors.iter().take(10) {
        eprintln!("error: {e}");
    }
    for u in unanswered.iter().take(10) {
        eprintln!("not answering: {u}");
    }
    if !lost.is_empty() {
        eprintln!("lost: {lost:?}");
    }
    if !leaked.is_empty() {
        eprintln!("left over: {leaked:?}");
    }

    rt.block_on(async {
        let mut stops = tokio::task::JoinSet::new();
        for n in nodes {
            stops.spawn(n.shutdown());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), stops.join_all()).await;
    });

    let failed = !errors.is_empty()
        || !unanswered.is_empty()
        || !lost.is_empty()
        || !leaked.is_empty()
        || before != after
        || memory.iter().any(Option::is_none);
    if failed {
        bail!("the load test failed (see above)");
    }
    println!("  result     pass: no error, no process lost");
    Ok(())
}
