//! Placement-quality simulation: both experiments of PERF.md "Placement
//! quality", driven through pool-master's real `LoadTable` and
//! `LoadTable::place` with simulated nodes and a simulated clock.
//!
//! (a) Burst: 8 nodes of capacity 1 reporting every 1 s, all idle at the
//!     last report; 32 long busy tasks placed within 250 ms, all between two
//!     reports. Expected max new tasks on one node, averaged over `--trials`
//!     trials (p99 beside it). Run twice: with exactly equal idle reports
//!     (every score ties, so the tie-break decides) and with idle reports
//!     carrying sampling noise (busy_threads uniform in [0, 0.05)), as real
//!     idle nodes report. Uneven variant: one idle node, seven running 4
//!     tasks each, a burst of 32.
//! (b) Steady state: Mitzenmacher's periodic-update model. 8 FIFO servers
//!     (one task at a time, capacity 1), Poisson arrivals at 70 % load,
//!     exponential task durations of mean τ = 200 ms, load reports every
//!     1 s (T = 5). Mean completion (sojourn) time / τ over `--steady-tau` τ
//!     after a 100 τ warm-up, ± the standard error of 10 batch means. Run with
//!     all nodes reporting at the same instants (the model) and with each
//!     node on its own report phase (as real workers are).
//!
//! "Stale" rows use a table with placement accounting off; "+ acct" rows
//! count each placement on its node until that node's next report, which is
//! what the master does.
//!
//! Run (well under a minute in release):
//!
//! ```text
//! cargo run --release -p pool-benches --bin placement_sim
//! cargo run --release -p pool-benches --bin placement_sim -- --seed 7 --trials 20000 --check
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pool_benches::Flags;
use pool_master::placement::DEFAULT_STRATEGY;
use pool_master::{LoadTable, LoadTableConfig};
use pool_proto::{LoadReport, NodeId, NodeInfo, NodeKind, PlaceQuery, PlacementStrategy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USAGE: &str = "\
placement_sim: placement quality of pool-master's strategies (PERF.md)

usage: placement_sim [--seed N] [--trials N] [--steady-tau N] [--report-ms N]
                     [--run-queue-only] [--check]
  --seed N        RNG seed (default 1); runs are reproducible
  --trials N      burst trials per strategy (default 10000)
  --steady-tau N  simulated steady-state length in task durations (default 10000, min 2000)
  --report-ms N    steady-state report interval (default 1000, PERF.md's T = 5;
                  the worker's default --report-interval is 500)
  --run-queue-only  steady-state reports carry the queue length only (busy_threads 0),
                  exactly Mitzenmacher's board; by default they also carry busy_threads
  --check         exit with status 1 if the default strategy misses a target";

/// Nodes in both experiments.
const NODES: usize = 8;
/// Tasks in a burst.
const BURST: usize = 32;
/// Even share of a burst: 32 / 8.
const IDEAL: f64 = 4.0;
/// Tasks each busy node runs in the uneven burst.
const UNEVEN_LOAD: u32 = 4;
/// Burst length, seconds (only the order of placements matters to the
/// table, since no report falls inside the burst).
const BURST_SPAN: f64 = 0.25;
/// Load-report interval of the burst experiment, seconds.
const REPORT_EVERY: f64 = 1.0;
/// The worker's default `--report-interval`, seconds (DESIGN.md).
const WORKER_REPORT_EVERY: f64 = 0.5;
/// Mean task duration, seconds.
const TAU: f64 = 0.2;
/// Offered load per server in the steady state.
const RHO: f64 = 0.7;
/// Steady-state warm-up excluded from the statistics, in τ.
const WARMUP_TAU: f64 = 100.0;
/// Batches for the batch-means standard error.
const BATCHES: usize = 10;

/// One row of the tables: a strategy, with or without accounting.
#[derive(Clone, Copy, Debug)]
struct Variant {
    /// Row label.
    name: &'static str,
    /// The strategy asked of `place`.
    strategy: PlacementStrategy,
    /// Placement accounting in the table.
    accounting: bool,
    /// Whether the master can run this (it always counts placements).
    selectable: bool,
    /// PERF.md's burst figure.
    perf_burst: &'static str,
    /// PERF.md's uneven-burst figure (tasks the idle node gets).
    perf_uneven: &'static str,
    /// PERF.md's steady-state figure.
    perf_steady: &'static str,
}

const VARIANTS: [Variant; 6] = [
    Variant {
        name: "random",
        strategy: PlacementStrategy::Random,
        accounting: true,
        selectable: true,
        perf_burst: "7.06 (p99 11)",
        perf_uneven: "about 4",
        perf_steady: "3.33",
    },
    Variant {
        name: "stale least-loaded",
        strategy: PlacementStrategy::LeastLoaded,
        accounting: false,
        selectable: false,
        perf_burst: "32",
        perf_uneven: "all 32",
        perf_steady: "4.79",
    },
    Variant {
        name: "stale two-choices",
        strategy: PlacementStrategy::TwoChoices,
        accounting: false,
        selectable: false,
        perf_burst: "7.06",
        perf_uneven: "-",
        perf_steady: "2.58",
    },
    Variant {
        name: "least-loaded + acct",
        strategy: PlacementStrategy::LeastLoaded,
        accounting: true,
        selectable: true,
        perf_burst: "4.00",
        perf_uneven: "about 8",
        perf_steady: "1.78",
    },
    Variant {
        name: "two-choices + acct",
        strategy: PlacementStrategy::TwoChoices,
        accounting: true,
        selectable: true,
        perf_burst: "5.14",
        perf_uneven: "-",
        perf_steady: "2.08",
    },
    Variant {
        name: "round-robin (OTP rotation)",
        strategy: PlacementStrategy::RoundRobin,
        accounting: true,
        selectable: true,
        perf_burst: "4, blind to load",
        perf_uneven: "about 4",
        perf_steady: "-",
    },
];

/// A simulated pool: the real load table plus the map from node ids to the
/// simulation's node numbers.
struct SimPool {
    /// pool-master's table, as the master would hold it.
    table: LoadTable,
    /// Node ids, by node number (random, so id order, which the table's
    /// tie-breaks and rotation follow, is unrelated to node numbers).
    ids: Vec<NodeId>,
    /// Simulated time 0.
    epoch: Instant,
    /// Report sequence number.
    seq: u64,
    /// The query every placement asks: one node, committed.
    query: PlaceQuery,
}

impl SimPool {
    fn new(v: &Variant, rng: &mut StdRng) -> Self {
        let epoch = Instant::now();
        let mut table = LoadTable::new(LoadTableConfig {
            mem_refuse_above: None,
            accounting: v.accounting,
        });
        let mut ids: Vec<NodeId> = Vec::with_capacity(NODES);
        while ids.len() < NODES {
            let id = NodeId::from_u64(rng.random::<u64>() | 1);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for (i, &id) in ids.iter().enumerate() {
            table.add_node(
                NodeInfo {
                    id,
                    name: format!("w{i}"),
                    addr: String::new(),
                    kind: NodeKind::Worker,
                    capacity: 1,
                    labels: Default::default(),
                },
                epoch,
            );
        }
        SimPool {
            table,
            ids,
            epoch,
            seq: 0,
            query: PlaceQuery {
                count: 1,
                strategy: Some(v.strategy),
                commit: true,
                ..Default::default()
            },
        }
    }

    /// Node `node` reports at simulated time `at` (seconds).
    fn report(&mut self, node: usize, run_queue: u32, busy_threads: f64, at: f64) {
        self.seq += 1;
        let report = LoadReport {
            seq: self.seq,
            run_queue,
            busy_threads: busy_threads as f32,
            processes: u64::from(run_queue),
            capacity: 1,
            ..Default::default()
        };
        let now = self.epoch + Duration::from_secs_f64(at);
        self.table.on_report(self.ids[node], report, now);
    }

    /// One placement through `LoadTable::place`; the chosen node's number.
    fn place(&mut self, rng: &mut StdRng) -> usize {
        let chosen = self
            .table
            .place(&self.query, DEFAULT_STRATEGY, rng)
            .expect("every simulated node is eligible")[0];
        self.ids
            .iter()
            .position(|&id| id == chosen)
            .expect("placement chose a simulated node")
    }
}

/// Mean of a sample.
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

/// 99th percentile (nearest rank).
fn p99(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64) * 0.99).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Per-variant RNG: the same seed gives the same stream to a variant
/// whatever runs before it.
fn rng_for(seed: u64, experiment: u64, variant: usize) -> StdRng {
    StdRng::seed_from_u64(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (experiment << 32) ^ variant as u64,
    )
}

/// One burst trial: every node reports `run_queue[i]` (plus noise on idle
/// nodes if asked), then 32 placements. Returns the new tasks per node.
fn burst_trial(v: &Variant, rng: &mut StdRng, run_queue: &[u32], noise: bool) -> [u32; NODES] {
    let mut pool = SimPool::new(v, rng);
    for (i, &rq) in run_queue.iter().enumerate() {
        // A node running long busy tasks on one core keeps it busy.
        let busy = if rq > 0 { 1.0 } else { 0.0 };
        let jitter = if noise {
            rng.random::<f64>() * 0.05
        } else {
            0.0
        };
        pool.report(i, rq, busy + jitter, 0.0);
    }
    // The burst falls between two reports, so only the order matters; the
    // arrival times are drawn for realism (within 250 ms).
    let start = rng.random::<f64>() * (REPORT_EVERY - BURST_SPAN);
    let mut new = [0u32; NODES];
    for _ in 0..BURST {
        let _at = start + rng.random::<f64>() * BURST_SPAN;
        new[pool.place(rng)] += 1;
    }
    new
}

/// Burst results of one variant.
#[derive(Clone, Copy, Debug)]
struct BurstResult {
    /// Expected max new tasks on one node, exact ties.
    max_mean: f64,
    /// Its p99.
    max_p99: f64,
    /// The worst trial.
    max_worst: f64,
    /// Same with noisy idle reports.
    noisy_mean: f64,
    /// Its p99.
    noisy_p99: f64,
    /// Uneven burst: mean tasks the idle node gets.
    idle_gets: f64,
    /// Uneven burst: the fewest the idle node got in any trial.
    idle_min: f64,
    /// Uneven burst: mean of the max total tasks on one node.
    max_total_mean: f64,
    /// Uneven burst: the worst max total.
    max_total_worst: f64,
}

fn run_burst(v: &Variant, index: usize, seed: u64, trials: usize) -> BurstResult {
    let idle = [0u32; NODES];
    let mut exact = Vec::with_capacity(trials);
    let mut noisy = Vec::with_capacity(trials);
    let mut rng = rng_for(seed, 1, index);
    for _ in 0..trials {
        let new = burst_trial(v, &mut rng, &idle, false);
        exact.push(f64::from(*new.iter().max().unwrap_or(&0)));
        let new = burst_trial(v, &mut rng, &idle, true);
        noisy.push(f64::from(*new.iter().max().unwrap_or(&0)));
    }
    let mut idle_gets = Vec::with_capacity(trials);
    let mut max_total = Vec::with_capacity(trials);
    let mut rng = rng_for(seed, 2, index);
    for _ in 0..trials {
        // Node 0 is idle; its id (and so its place in id order) is random.
        let mut rq = [UNEVEN_LOAD; NODES];
        rq[0] = 0;
        let new = burst_trial(v, &mut rng, &rq, false);
        idle_gets.push(f64::from(new[0]));
        let totals = (0..NODES).map(|i| rq[i] + new[i]);
        max_total.push(f64::from(totals.max().unwrap_or(0)));
    }
    BurstResult {
        max_mean: mean(&exact),
        max_p99: p99(&exact),
        max_worst: exact.iter().copied().fold(0.0, f64::max),
        noisy_mean: mean(&noisy),
        noisy_p99: p99(&noisy),
        idle_gets: mean(&idle_gets),
        idle_min: idle_gets.iter().copied().fold(f64::INFINITY, f64::min),
        max_total_mean: mean(&max_total),
        max_total_worst: max_total.iter().copied().fold(0.0, f64::max),
    }
}

/// One FIFO server of the steady-state model.
#[derive(Default)]
struct Server {
    /// When the last queued task ends.
    free_at: f64,
    /// (start, end) of tasks that may still overlap the current report
    /// interval, in FIFO order.
    tasks: VecDeque<(f64, f64)>,
    /// Time of this server's previous report.
    last_report: f64,
}

impl Server {
    /// Tasks in the system at `t` (running or waiting) and the fraction of
    /// `[last_report, t]` the server was busy; forgets finished tasks.
    fn sample(&mut self, t: f64) -> (u32, f64) {
        let from = self.last_report;
        let busy: f64 = self
            .tasks
            .iter()
            .map(|&(s, e)| (e.min(t) - s.max(from)).max(0.0))
            .sum();
        while self.tasks.front().is_some_and(|&(_, e)| e <= t) {
            self.tasks.pop_front();
        }
        self.last_report = t;
        let in_system = self.tasks.iter().filter(|&&(_, e)| e > t).count();
        let span = (t - from).max(1e-9);
        (in_system as u32, (busy / span).min(1.0))
    }
}

/// Steady-state result: mean sojourn / τ and its standard error.
#[derive(Clone, Copy, Debug)]
struct Steady {
    mean: f64,
    stderr: f64,
}

/// Exponential sample with this mean.
fn exp(rng: &mut StdRng, mean: f64) -> f64 {
    // 1 - u is in (0, 1], so ln is finite.
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// Settings of one steady-state run.
#[derive(Clone, Copy, Debug)]
struct SteadyParams {
    /// Simulated length after the warm-up, in τ.
    length_tau: f64,
    /// Load-report interval, seconds.
    report_every: f64,
    /// Reports carry the queue length only (busy_threads 0).
    run_queue_only: bool,
}

fn run_steady(v: &Variant, index: usize, seed: u64, p: SteadyParams, staggered: bool) -> Steady {
    let SteadyParams {
        length_tau,
        report_every,
        run_queue_only,
    } = p;
    let mut rng = rng_for(seed, if staggered { 4 } else { 3 }, index);
    let mut pool = SimPool::new(v, &mut rng);
    let mut servers: Vec<Server> = (0..NODES).map(|_| Server::default()).collect();
    // Every node's next report: all at the same instants (Mitzenmacher's
    // bulletin board) or each on its own phase.
    let mut next_report: Vec<f64> = (0..NODES)
        .map(|_| {
            if staggered {
                rng.random::<f64>() * report_every
            } else {
                report_every
            }
        })
        .collect();
    let rate = RHO * NODES as f64 / TAU;
    let warmup = WARMUP_TAU * TAU;
    let end = warmup + length_tau * TAU;
    let batch_len = (end - warmup) / BATCHES as f64;
    let mut sums = [0.0f64; BATCHES];
    let mut counts = [0u64; BATCHES];

    let mut arrival = exp(&mut rng, 1.0 / rate);
    while arrival <= end {
        // Reports due before this arrival come first.
        let (node, due) = next_report
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("nodes");
        if due <= arrival {
            let (run_queue, busy) = servers[node].sample(due);
            let busy = if run_queue_only { 0.0 } else { busy };
            pool.report(node, run_queue, busy, due);
            next_report[node] += report_every;
            continue;
        }
        let s = &mut servers[pool.place(&mut rng)];
        let start = s.free_at.max(arrival);
        let done = start + exp(&mut rng, TAU);
        s.free_at = done;
        s.tasks.push_back((start, done));
        if arrival >= warmup {
            let b = (((arrival - warmup) / batch_len) as usize).min(BATCHES - 1);
            sums[b] += done - arrival;
            counts[b] += 1;
        }
        arrival += exp(&mut rng, 1.0 / rate);
    }
    let total: f64 = sums.iter().sum();
    let n: u64 = counts.iter().sum();
    let batch_means: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s / c.max(1) as f64 / TAU)
        .collect();
    let m = mean(&batch_means);
    let var = batch_means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (BATCHES - 1) as f64;
    Steady {
        mean: total / n.max(1) as f64 / TAU,
        stderr: (var / BATCHES as f64).sqrt(),
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

fn main() {
    let flags = Flags::from_env(USAGE);
    let seed: u64 = flags.value("seed", 1);
    let trials: usize = flags.value("trials", 10_000usize).max(100);
    let length_tau: f64 = flags.value("steady-tau", 10_000.0f64).max(2000.0);
    let params = SteadyParams {
        length_tau,
        report_every: flags.value("report-ms", 1000.0f64).max(1.0) / 1000.0,
        run_queue_only: flags.has("run-queue-only"),
    };
    let clock = Instant::now();

    println!("Placement quality: pool-master's LoadTable::place on a simulated pool (PERF.md)");
    println!(
        "seed {seed}, {trials} burst trials per row, steady state {length_tau:.0} tau \
         (+{WARMUP_TAU:.0} tau warm-up), {NODES} nodes of capacity 1\n"
    );

    let bursts: Vec<BurstResult> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| run_burst(v, i, seed, trials))
        .collect();
    // Three steady-state columns: PERF.md's model (all nodes report at the
    // same instants), the same with each node on its own report phase, and
    // own phases at the worker's default 500 ms report interval.
    let worker_default = SteadyParams {
        report_every: WORKER_REPORT_EVERY,
        ..params
    };
    let steady: Vec<[Steady; 3]> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            [
                run_steady(v, i, seed, params, false),
                run_steady(v, i, seed, params, true),
                run_steady(v, i, seed, worker_default, true),
            ]
        })
        .collect();

    println!(
        "(a) Burst: all idle at the last report, 32 long busy tasks within 250 ms, no report inside"
    );
    println!("    expected max new tasks on one node (ideal 4); p99 over trials in brackets");
    println!(
        "{:<28} {:>18} {:>18} {:>18}",
        "strategy", "ours: equal idle", "ours: noisy idle", "PERF.md"
    );
    for (v, b) in VARIANTS.iter().zip(&bursts) {
        println!(
            "{:<28} {:>18} {:>18} {:>18}",
            v.name,
            format!("{:.2} (p99 {:.0})", b.max_mean, b.max_p99),
            format!("{:.2} (p99 {:.0})", b.noisy_mean, b.noisy_p99),
            v.perf_burst
        );
    }
    println!(
        "    equal idle: every score ties, so the tie-break (fewer processes, then rotation) decides;"
    );
    println!(
        "    noisy idle: idle nodes report busy_threads uniform in [0, 0.05), as real ones do.\n"
    );

    println!("(a') Uneven burst: one idle node, seven running 4 tasks each, burst of 32");
    println!(
        "{:<28} {:>16} {:>16} {:>22} {:>10}",
        "strategy", "idle node gets", "PERF.md", "max total per node", "worst"
    );
    for (v, b) in VARIANTS.iter().zip(&bursts) {
        println!(
            "{:<28} {:>16} {:>16} {:>22} {:>10}",
            v.name,
            format!("{:.2} (min {:.0})", b.idle_gets, b.idle_min),
            v.perf_uneven,
            format!("{:.2}", b.max_total_mean),
            format!("{:.0}", b.max_total_worst)
        );
    }
    println!();

    println!(
        "(b) Steady state: FIFO single servers (one task at a time), Poisson arrivals at 70 % load,"
    );
    println!(
        "    exponential durations, tau = 200 ms, reports every {:.0} ms (T = {}); reports carry {}",
        params.report_every * 1000.0,
        params.report_every / TAU,
        if params.run_queue_only {
            "the queue length only"
        } else {
            "run_queue and busy_threads"
        }
    );
    println!("    mean completion time / tau, +- standard error of {BATCHES} batch means");
    let own_default = format!("own phases, {:.0} ms", WORKER_REPORT_EVERY * 1000.0);
    println!(
        "{:<28} {:>18} {:>18} {:>20} {:>8}",
        "strategy", "ours: synchronised", "ours: own phases", own_default, "PERF.md"
    );
    let cell = |s: &Steady| format!("{:.2} +- {:.2}", s.mean, s.stderr);
    for (v, [sync, own, own_default]) in VARIANTS.iter().zip(&steady) {
        println!(
            "{:<28} {:>18} {:>18} {:>20} {:>8}",
            v.name,
            cell(sync),
            cell(own),
            cell(own_default),
            v.perf_steady
        );
    }
    println!(
        "    synchronised: every node reports at the same instants (Mitzenmacher's bulletin board);"
    );
    println!("    own phases: each node reports on its own random phase, as real workers do;");
    println!(
        "    the last column reports every {:.0} ms, the worker's default --report-interval.\n",
        WORKER_REPORT_EVERY * 1000.0
    );

    // The master always counts placements, so it can run the selectable
    // rows. Best = meets the burst targets and has the lowest steady-state
    // time.
    let meets =
        |b: &BurstResult| b.max_worst <= IDEAL && b.idle_min >= 6.0 && b.max_total_worst <= 9.0;
    let best = VARIANTS
        .iter()
        .zip(bursts.iter().zip(&steady))
        .filter(|(v, (b, _))| v.selectable && meets(b))
        .min_by(|a, b| (a.1).1[0].mean.total_cmp(&(b.1).1[0].mean))
        .map(|(v, _)| v);
    let default_row = VARIANTS
        .iter()
        .position(|v| v.selectable && v.strategy == DEFAULT_STRATEGY)
        .expect("the default strategy has a row");
    let (b, s) = (&bursts[default_row], &steady[default_row][0]);
    let targets = [
        (
            "burst max = ideal (4), every trial",
            format!("{:.2} (worst {:.0})", b.max_mean, b.max_worst),
            b.max_worst <= IDEAL,
        ),
        (
            "uneven: idle node >= 6 of 32, every trial",
            format!("{:.2} (min {:.0})", b.idle_gets, b.idle_min),
            b.idle_min >= 6.0,
        ),
        (
            "uneven: no node more than 9 in total",
            format!("worst {:.0}", b.max_total_worst),
            b.max_total_worst <= 9.0,
        ),
        (
            "steady state <= 2.0 tau (synchronised)",
            format!("{:.2}", s.mean),
            s.mean <= 2.0,
        ),
    ];
    println!(
        "Targets, for the master's default strategy ({}, with accounting):",
        DEFAULT_STRATEGY
    );
    let mut all_met = true;
    for (what, got, ok) in &targets {
        println!("  {what:<44} {got:>20}  met: {}", yes(*ok));
        all_met &= ok;
    }
    match best {
        Some(v) => println!(
            "Best measured (meets the burst targets, lowest steady state): {}; default: {}{}",
            v.name,
            DEFAULT_STRATEGY,
            if v.strategy == DEFAULT_STRATEGY {
                " (same)"
            } else {
                " (DIFFERENT: change placement::DEFAULT_STRATEGY)"
            }
        ),
        None => println!("No selectable strategy meets the burst targets."),
    }
    println!("ran in {:.1} s", clock.elapsed().as_secs_f64());
    let best_is_default = best.is_some_and(|v| v.strategy == DEFAULT_STRATEGY);
    if flags.has("check") && !(all_met && best_is_default) {
        std::process::exit(1);
    }
}
