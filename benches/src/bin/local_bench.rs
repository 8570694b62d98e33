//! Local (single-node) runtime benchmarks of the `supervisor` crate, side by
//! side with Erlang/OTP in the same run: PERF.md's local targets.
//!
//! | measurement | what is timed | PERF.md target |
//! |---|---|---|
//! | spawn + exit | spawn N processes that end at once, until all have exited | ≥ 2× Erlang |
//! | 1 → 1 messages | one process sends M small integers to another, which counts them | ≥ 2× Erlang |
//! | ping-pong | K individually timed round trips to an echo process (p50, p99) | p50 ≤ 1× Erlang |
//! | idle process | memory of K processes blocked in `recv` / `receive`, per process | ≤ 1,024 B |
//! | restart | a one_for_one supervisor's permanent child is killed R times: kill → replacement running (p50, p99) | reported |
//!
//! Each part runs here first, then in Erlang (`benches/erlang/local.erl`,
//! embedded in this binary, compiled with `erlc` into a temporary directory
//! and run with `erl -noshell +P 2000000 +S 2:2`), so that both sides see
//! the same machine load; then one table prints ours, Erlang's, the ratio
//! and the target. Ours runs on a tokio multi-thread runtime with 2 worker
//! threads, every measurement driven from inside a process (as Erlang's
//! are); Erlang runs with 2 schedulers. The global allocator is mimalloc,
//! as in the project's binaries (with glibc malloc, spawn throughput is
//! less than half).
//!
//! Run (about 3 minutes; `--quick` well under one):
//!
//! ```text
//! cargo run --release -p pool-benches --bin local_bench
//! cargo run --release -p pool-benches --bin local_bench -- --quick
//! cargo run --release -p pool-benches --bin local_bench -- --no-erlang --parts spawn,msg
//! cargo run --release -p pool-benches --bin local_bench -- --install-erlang
//! ```
//!
//! Flags: `--reps N` (default 5, quick 3), `--spawn N`, `--msgs N`, `--pp N`,
//! `--idle N`, `--restarts N` (the size of each measurement), `--parts
//! spawn,msg,pp,mem,restart`, `--no-erlang`, `--install-erlang` (runs
//! `apt-get install -y erlang` if `erl` is missing), `--erl-timeout SECS`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use pool_benches::Flags;
use pool_benches::figure::{
    Figure, fmt_figure, fmt_met, load_average, on_path, print_markdown_table,
};
use pool_proto::{NodeId, Pid, Strategy};
use supervisor::supervisor::{self as sup, Child, Spec};
use supervisor::{Ctx, Envelope, Message, Runtime};

const USAGE: &str = "local_bench: spawn, messages, ping-pong, idle memory and restart latency of \
the supervisor runtime, side by side with Erlang/OTP.

usage: local_bench [--quick] [--reps N] [--spawn N] [--msgs N] [--pp N] [--idle N]
                   [--restarts N] [--parts spawn,msg,pp,mem,restart]
                   [--no-erlang] [--install-erlang] [--erl-timeout SECS]";

/// The Erlang counterpart, embedded so the binary runs from anywhere.
const ERLANG_SOURCE: &str = include_str!("../../erlang/local.erl");

/// Worker threads of our runtime and schedulers of Erlang's: the machine
/// has 2 cores.
const THREADS: usize = 2;

// ----- the allocator ---------------------------------------------------------

/// mimalloc, counting live allocations while [`COUNTING`] is on (only
/// during the idle-memory measurement; otherwise one relaxed load per call).
struct CountingMimalloc;

#[global_allocator]
static GLOBAL: CountingMimalloc = CountingMimalloc;

/// Whether allocations are being counted.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes asked for (`Layout::size`) since the counters were reset.
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
/// Live bytes mimalloc really handed out (its size classes round up).
static LIVE_USABLE: AtomicI64 = AtomicI64::new(0);
/// Largest request size counted exactly in [`LIVE_BY_SIZE`].
const MAX_SIZE_COUNTED: usize = 4096;
/// Live allocations by requested size; the last slot holds every larger one.
static LIVE_BY_SIZE: [AtomicI64; MAX_SIZE_COUNTED + 1] =
    [const { AtomicI64::new(0) }; MAX_SIZE_COUNTED + 1];

unsafe extern "C" {
    /// mimalloc's usable size of a block (in every build of the library).
    fn mi_usable_size(p: *const c_void) -> usize;
}

fn note(size: usize, usable: usize, sign: i64) {
    LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    LIVE_USABLE.fetch_add(sign * usable as i64, Ordering::Relaxed);
    LIVE_BY_SIZE[size.min(MAX_SIZE_COUNTED)].fetch_add(sign, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for CountingMimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc(layout) };
        if COUNTING.load(Ordering::Relaxed) && !p.is_null() {
            note(layout.size(), unsafe { mi_usable_size(p.cast()) }, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if COUNTING.load(Ordering::Relaxed) && !p.is_null() {
            note(layout.size(), unsafe { mi_usable_size(p.cast()) }, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            note(layout.size(), unsafe { mi_usable_size(ptr.cast()) }, -1);
        }
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let counting = COUNTING.load(Ordering::Relaxed);
        let old_usable = if counting {
            unsafe { mi_usable_size(ptr.cast()) }
        } else {
            0
        };
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if counting && !p.is_null() {
            note(layout.size(), old_usable, -1);
            note(new_size, unsafe { mi_usable_size(p.cast()) }, 1);
        }
        p
    }
}

/// Zeroes the live-allocation counters and starts counting.
fn start_counting() {
    LIVE_BYTES.store(0, Ordering::Relaxed);
    LIVE_USABLE.store(0, Ordering::Relaxed);
    for c in &LIVE_BY_SIZE {
        c.store(0, Ordering::Relaxed);
    }
    COUNTING.store(true, Ordering::SeqCst);
}

fn stop_counting() {
    COUNTING.store(false, Ordering::SeqCst);
}

/// The resident set size of this process, from `/proc/self/statm`.
fn rss_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map_or(0, |pages| pages * 4096)
}

// ----- figures ----------------------------------------------------------------

/// The element at percentile `p` of sorted samples, with local.erl's index
/// rule: element `len * p / 100` (1-based), so p50 of an even count is the
/// lower middle.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).max(1) - 1]
}

// ----- configuration ------------------------------------------------------------

/// One group of measurements; each runs as a unit on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Spawn,
    Msg,
    PingPong,
    Mem,
    Restart,
}

impl Part {
    fn erlang_name(self) -> &'static str {
        match self {
            Part::Spawn => "spawn",
            Part::Msg => "msg",
            Part::PingPong => "pp",
            Part::Mem => "mem",
            Part::Restart => "restart",
        }
    }

    fn parse(s: &str) -> Option<Part> {
        Some(match s {
            "spawn" => Part::Spawn,
            "msg" => Part::Msg,
            "pp" | "pingpong" => Part::PingPong,
            "mem" => Part::Mem,
            "restart" => Part::Restart,
            _ => return None,
        })
    }
}

/// The size of every measurement, the same on both sides.
#[derive(Debug, Clone)]
struct Config {
    reps: usize,
    spawn: usize,
    msgs: usize,
    pp: usize,
    idle: usize,
    restarts: usize,
    parts: Vec<Part>,
}

impl Config {
    fn from_flags(flags: &Flags) -> Config {
        let quick = flags.has("quick");
        let pick = |name: &str, full: usize, quick_n: usize| {
            flags.value(name, if quick { quick_n } else { full }).max(1)
        };
        let parts_arg: String = flags.value("parts", "spawn,msg,pp,mem,restart".to_owned());
        let parts = parts_arg
            .split(',')
            .map(|p| {
                Part::parse(p.trim()).unwrap_or_else(|| {
                    eprintln!("unknown part {p:?}; see --help");
                    std::process::exit(2)
                })
            })
            .collect();
        Config {
            reps: pick("reps", 5, 3),
            spawn: pick("spawn", 1_000_000, 200_000),
            msgs: pick("msgs", 10_000_000, 2_000_000),
            pp: pick("pp", 200_000, 50_000),
            idle: pick("idle", 100_000, 20_000),
            restarts: pick("restarts", 1000, 300),
            parts,
        }
    }

    /// local.erl's arguments for one part.
    fn erlang_args(&self, part: Part) -> Vec<String> {
        vec![
            format!("reps={}", self.reps),
            format!("spawn={}", self.spawn),
            format!("msgs={}", self.msgs),
            format!("pp={}", self.pp),
            format!("idle={}", self.idle),
            format!("restarts={}", self.restarts),
            format!("parts={}", part.erlang_name()),
        ]
    }
}

// ----- our side -------------------------------------------------------------------

/// Runs `f` as a process of `rt` and waits for its result from the main
/// thread (which only parks: the work happens on the 2 worker threads).
fn in_process<T, F, Fut>(tokio_rt: &tokio::runtime::Runtime, rt: &Runtime, f: F) -> T
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(move |ctx| async move {
        let _ = tx.send(f(ctx).await);
    });
    tokio_rt
        .block_on(rx)
        .expect("the benchmark process died before answering")
}

/// Waits (yielding) until at most `base` processes are alive: Erlang's
/// `wait_procs`.
async fn wait_procs(rt: &Runtime, base: usize) {
    while rt.process_count() > base {
        tokio::task::yield_now().await;
    }
}

/// Spawns `n` processes that end at once; spawns per second until all have
/// exited.
async fn spawn_exit(ctx: Ctx, n: usize, yield_every: usize) -> f64 {
    let rt = ctx.runtime().clone();
    let base = rt.process_count();
    let t0 = Instant::now();
    for i in 0..n {
        rt.spawn(|_ctx| async {});
        // Erlang's scheduler preempts the spawner by reductions, letting
        // the new processes run and exit as it goes; the cooperative
        // equivalent is an explicit yield point (docs/semantics.md
        // `diff.yield`). Without it a million tasks pile up first.
        if yield_every > 0 && i % yield_every == yield_every - 1 {
            ctx.yield_now().await;
        }
    }
    wait_procs(&rt, base).await;
    n as f64 / t0.elapsed().as_secs_f64()
}

/// How often the spawner of [`spawn_exit`] yields (spawns).
const SPAWN_YIELD: usize = 64;

/// How often the sender of [`one_way`] yields (sends).
const SEND_YIELD: usize = 256;

/// How the sender of [`one_way`] sends.
#[derive(Debug, Clone, Copy)]
enum SendApi {
    /// `Ctx::send(pid, 42u64)`: the everyday API.
    Send,
    /// `Ctx::send_message(pid, Message::new(42u64))`, which caches the
    /// receiver's record instead of looking it up in the table each time.
    SendMessage,
    /// `Ctx::send`, yielding with `Ctx::yield_now` every [`SEND_YIELD`]
    /// sends (what Erlang's reduction budget does to its sender): the
    /// receiver drains as the sender goes, so the mailbox stays short. The
    /// measurement compared with Erlang.
    SendYielding,
}

/// One sender (this process) → one receiver, `m` messages of `42u64`; the
/// receiver counts them and acks. Messages per second, spawn included (as
/// Erlang's).
async fn one_way(mut ctx: Ctx, m: usize, api: SendApi) -> f64 {
    let me = ctx.pid();
    let t0 = Instant::now();
    let receiver = ctx.spawn(move |mut c: Ctx| async move {
        for _ in 0..m {
            c.recv().await;
        }
        c.send(me, 0u64);
    });
    match api {
        SendApi::Send => {
            for _ in 0..m {
                ctx.send(receiver, 42u64);
            }
        }
        SendApi::SendMessage => {
            for _ in 0..m {
                ctx.send_message(receiver, Message::new(42u64));
            }
        }
        SendApi::SendYielding => {
            for i in 0..m {
                ctx.send(receiver, 42u64);
                if i % SEND_YIELD == SEND_YIELD - 1 {
                    ctx.yield_now().await;
                }
            }
        }
    }
    ctx.recv().await;
    m as f64 / t0.elapsed().as_secs_f64()
}

const PING: u64 = 1;
const PONG: u64 = 2;
const STOP: u64 = 0;

/// An echo process: answers `PING` with `PONG` until `STOP`.
async fn ponger(mut ctx: Ctx) {
    loop {
        let Envelope::Message {
            from: Some(from),
            msg,
        } = ctx.recv().await
        else {
            break;
        };
        if msg.downcast::<u64>().ok() != Some(PING) {
            break;
        }
        ctx.send(from, PONG);
    }
}

/// 1000 warm-up round trips, then `k` timed ones: (p50, p99) in µs.
async fn pingpong(mut ctx: Ctx, k: usize) -> (f64, f64) {
    let p = ctx.spawn(ponger);
    for _ in 0..1000 {
        ctx.send(p, PING);
        ctx.recv().await;
    }
    let mut trips = Vec::with_capacity(k);
    for _ in 0..k {
        let t0 = Instant::now();
        ctx.send(p, PING);
        ctx.recv().await;
        trips.push(t0.elapsed().as_nanos() as f64 / 1000.0);
    }
    ctx.send(p, STOP);
    trips.sort_by(f64::total_cmp);
    (percentile(&trips, 50), percentile(&trips, 99))
}

/// A process blocked in `recv` until any message arrives.
async fn idle(mut ctx: Ctx) {
    ctx.recv().await;
}

/// One run of the idle-memory measurement, per process.
#[derive(Debug, Clone, Default)]
struct IdleRun {
    /// Live heap bytes asked for.
    requested: f64,
    /// Live heap bytes mimalloc handed out.
    usable: f64,
    /// Resident set growth.
    rss: f64,
    /// Live allocations.
    allocs: f64,
    /// Live allocations by requested size (bytes, per process), largest
    /// share first.
    by_size: Vec<(usize, f64)>,
}

/// `k` processes blocked in `recv`: memory per process while they wait
/// (Erlang's: spawn, sleep 200 ms, measure, stop them all).
async fn idle_memory(ctx: Ctx, k: usize) -> IdleRun {
    let rt = ctx.runtime().clone();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = rt.process_count();
    // Allocated before counting: the bench's list of pids is not the
    // processes' memory.
    let mut pids: Vec<Pid> = Vec::with_capacity(k);
    let rss0 = rss_bytes();
    start_counting();
    for _ in 0..k {
        pids.push(rt.spawn(idle));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requested = LIVE_BYTES.load(Ordering::Relaxed);
    let usable = LIVE_USABLE.load(Ordering::Relaxed);
    let rss1 = rss_bytes();
    let mut by_size: Vec<(usize, f64)> = LIVE_BY_SIZE
        .iter()
        .enumerate()
        .map(|(size, c)| (size, c.load(Ordering::Relaxed) as f64 / k as f64))
        .filter(|(_, per)| per.abs() >= 0.05)
        .collect();
    stop_counting();
    let allocs = by_size.iter().map(|(_, per)| per).sum();
    by_size.sort_by(|a, b| (b.0 as f64 * b.1).total_cmp(&(a.0 as f64 * a.1)));
    for p in pids {
        ctx.send(p, STOP);
    }
    wait_procs(&rt, base).await;
    IdleRun {
        requested: requested as f64 / k as f64,
        usable: usable as f64 / k as f64,
        rss: (rss1 - rss0) as f64 / k as f64,
        allocs,
        by_size,
    }
}

/// A one_for_one supervisor with one permanent child that reports
/// `(pid, start time)` when it starts; kills it `r` times (after 10 warm-up
/// kills) and takes kill → replacement running: (p50, p99) in µs.
async fn restart_latency(ctx: Ctx, r: usize) -> (f64, f64) {
    let rt = ctx.runtime().clone();
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel::<(Pid, Instant)>();
    let worker = Child::worker("worker", move |mut c: Ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((c.pid(), Instant::now()));
            c.recv().await;
        }
    });
    let spec = Spec::new("restart-bench", Strategy::OneForOne)
        .intensity(1_000_000)
        .period(Duration::from_secs(1))
        .child(worker);
    let root = sup::start(&rt, spec)
        .await
        .expect("the benchmark supervisor starts");
    let (mut child, _) = started.recv().await.expect("the first child reports");
    let mut latencies = Vec::with_capacity(r);
    for i in 0..r + 10 {
        let t0 = Instant::now();
        rt.kill(child);
        let (next, t1) = started.recv().await.expect("the supervisor restarts it");
        if i >= 10 {
            latencies.push(t1.duration_since(t0).as_nanos() as f64 / 1000.0);
        }
        child = next;
    }
    sup::stop(&rt, root)
        .await
        .expect("the benchmark supervisor stops");
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 50), percentile(&latencies, 99))
}

/// Our side of one part: its figures, each with `cfg.reps` runs.
fn run_ours(tokio_rt: &tokio::runtime::Runtime, cfg: &Config, part: Part) -> Vec<Figure> {
    let reps = cfg.reps;
    let rt = Runtime::builder(NodeId::random())
        .handle(tokio_rt.handle().clone())
        .build();
    match part {
        Part::Spawn => {
            let n = cfg.spawn;
            let runs = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |ctx| spawn_exit(ctx, n, SPAWN_YIELD)))
                .collect();
            let no_yield = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |ctx| spawn_exit(ctx, n, 0)))
                .collect();
            vec![
                Figure::new("spawn_exit", "spawns/s", n, runs),
                Figure::new("spawn_exit_no_yield", "spawns/s", n, no_yield),
            ]
        }
        Part::Msg => {
            let m = cfg.msgs;
            let send = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| one_way(c, m, SendApi::Send)))
                .collect();
            let cached = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| one_way(c, m, SendApi::SendMessage)))
                .collect();
            let yielding = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| one_way(c, m, SendApi::SendYielding)))
                .collect();
            vec![
                Figure::new("one_way_int", "msgs/s", m, send),
                Figure::new("one_way_int_send_message", "msgs/s", m, cached),
                Figure::new("one_way_int_yielding", "msgs/s", m, yielding),
            ]
        }
        Part::PingPong => {
            let k = cfg.pp;
            let res: Vec<(f64, f64)> = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| pingpong(c, k)))
                .collect();
            vec![
                Figure::new(
                    "pingpong_rtt_p50",
                    "us",
                    k,
                    res.iter().map(|r| r.0).collect(),
                ),
                Figure::new(
                    "pingpong_rtt_p99",
                    "us",
                    k,
                    res.iter().map(|r| r.1).collect(),
                ),
            ]
        }
        Part::Mem => {
            let k = cfg.idle;
            let res: Vec<IdleRun> = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| idle_memory(c, k)))
                .collect();
            print_idle_breakdown(&res);
            let col = |f: fn(&IdleRun) -> f64| res.iter().map(f).collect::<Vec<_>>();
            vec![
                Figure::new("idle_mem_usable", "bytes/process", k, col(|r| r.usable)),
                Figure::new(
                    "idle_mem_requested",
                    "bytes/process",
                    k,
                    col(|r| r.requested),
                ),
                Figure::new("idle_mem_rss", "bytes/process", k, col(|r| r.rss)),
                Figure::new("idle_allocs", "allocations/process", k, col(|r| r.allocs)),
            ]
        }
        Part::Restart => {
            let r = cfg.restarts;
            let res: Vec<(f64, f64)> = (0..reps)
                .map(|_| in_process(tokio_rt, &rt, move |c| restart_latency(c, r)))
                .collect();
            vec![
                Figure::new("restart_p50", "us", r, res.iter().map(|r| r.0).collect()),
                Figure::new("restart_p99", "us", r, res.iter().map(|r| r.1).collect()),
            ]
        }
    }
}

/// The size of the future an `FnOnce(Ctx) -> Fut` process body makes.
fn body_future_size<F, Fut>(_: &F) -> usize
where
    F: FnOnce(Ctx) -> Fut,
{
    std::mem::size_of::<Fut>()
}

/// Where an idle process's bytes go: live allocations by size (last run),
/// and the in-memory size of the pieces we can name from outside the crate.
fn print_idle_breakdown(runs: &[IdleRun]) {
    let Some(last) = runs.last() else { return };
    let parts: Vec<String> = last
        .by_size
        .iter()
        .map(|(size, per)| {
            if *size == MAX_SIZE_COUNTED {
                format!("{per:.2} × >{MAX_SIZE_COUNTED} B")
            } else {
                format!("{per:.2} × {size} B")
            }
        })
        .collect();
    println!(
        "  idle process, live allocations per process (last run, requested sizes): {}",
        parts.join(", ")
    );
    println!(
        "  sizes: idle body future {} B (holds its Ctx {} B), Envelope {} B, Message {} B; \
         tokio's task cell adds its header and the ProcessTask wrapper",
        body_future_size(&idle),
        std::mem::size_of::<Ctx>(),
        std::mem::size_of::<Envelope>(),
        std::mem::size_of::<Message>(),
    );
}

// ----- Erlang's side ------------------------------------------------------------------

/// The Erlang counterpart, compiled and ready to run.
#[derive(Debug)]
struct Erlang {
    /// Temporary directory holding local.erl and local.beam; removed on drop.
    dir: PathBuf,
    /// Seconds one `erl` run may take before it is killed.
    timeout: Duration,
}

impl Drop for Erlang {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Erlang {
    /// Finds `erl` and `erlc` (installing them with apt-get if `install`),
    /// and compiles local.erl into a temporary directory.
    fn prepare(install: bool, timeout: Duration) -> Result<Erlang, String> {
        if !(on_path("erl") && on_path("erlc")) && install {
            println!("# erl not found: running apt-get install -y erlang");
            let ok = |args: &[&str]| {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !ok(&["install", "-y", "erlang"]) {
                ok(&["update"]);
                ok(&["install", "-y", "erlang"]);
            }
        }
        if !(on_path("erl") && on_path("erlc")) {
            return Err(
                "erl/erlc not found: install Erlang/OTP with `apt-get install -y erlang` \
                 (Debian bookworm: OTP 25), or rerun with --install-erlang"
                    .into(),
            );
        }
        let dir =
            std::env::temp_dir().join(format!("spawnpool-local-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let erlang = Erlang { dir, timeout };
        let src = erlang.dir.join("local.erl");
        std::fs::write(&src, ERLANG_SOURCE).map_err(|e| format!("{}: {e}", src.display()))?;
        let out = Command::new("erlc")
            .arg("-o")
            .arg(&erlang.dir)
            .arg(&src)
            .output()
            .map_err(|e| format!("erlc: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "erlc failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(erlang)
    }

    /// Runs one part in a fresh `erl`, forwarding its lines; its figures.
    fn run(&self, cfg: &Config, part: Part) -> Result<Vec<Figure>, String> {
        let mut child = Command::new("erl")
            .args(["-noshell", "+P", "2000000", "+S"])
            .arg(format!("{THREADS}:{THREADS}"))
            .arg("-pa")
            .arg(&self.dir)
            .args(["-run", "local", "main"])
            .args(cfg.erlang_args(part))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("erl: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + self.timeout;
        let mut figures = Vec::new();
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(f) = Figure::parse_erlang(&line) {
                        println!("  {}", f.result_line("erlang"));
                        figures.push(f);
                    } else if let Some(info) = line.strip_prefix("INFO ") {
                        println!("  erlang: {info}");
                    } else if !line.trim().is_empty() {
                        println!("  erlang| {line}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Ours: killed by its own pid.
                    let _ = child.kill();
                    timed_out = true;
                    break;
                }
            }
        }
        let status = child.wait().map_err(|e| format!("erl: {e}"))?;
        let _ = reader.join();
        if timed_out {
            return Err(format!(
                "erl took longer than {:?} and was killed",
                self.timeout
            ));
        }
        if !status.success() {
            return Err(format!("erl exited with {status}"));
        }
        Ok(figures)
    }
}

// ----- the table ------------------------------------------------------------------------

/// How a row's figures compare.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// A rate: ours / Erlang's must be at least this.
    RateAtLeast(f64),
    /// A time: ours / Erlang's must be at most this.
    TimeAtMost(f64),
    /// Ours must be at most this many bytes.
    BytesAtMost(f64),
    /// Reported, no target.
    Report,
}

struct Row {
    label: String,
    ours: &'static str,
    erlang: &'static str,
    goal: Goal,
}

fn print_table(cfg: &Config, ours: &[Figure], erlang: &[Figure]) {
    let find = |set: &[Figure], id: &str| set.iter().find(|f| f.id == id).cloned();
    let m = |n: usize| {
        if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
            format!("{} M", n / 1_000_000)
        } else if n >= 1000 && n.is_multiple_of(1000) {
            format!("{} k", n / 1000)
        } else {
            n.to_string()
        }
    };
    let rows = [
        Row {
            label: format!(
                "spawn + exit, {} processes (yield every {SPAWN_YIELD})",
                m(cfg.spawn)
            ),
            ours: "spawn_exit",
            erlang: "spawn_exit",
            goal: Goal::RateAtLeast(2.0),
        },
        Row {
            label: "  same, spawner never yields".into(),
            ours: "spawn_exit_no_yield",
            erlang: "spawn_exit",
            goal: Goal::Report,
        },
        Row {
            label: format!(
                "1 → 1 messages, {} ints (Ctx::send, yield every {SEND_YIELD})",
                m(cfg.msgs)
            ),
            ours: "one_way_int_yielding",
            erlang: "one_way_int",
            goal: Goal::RateAtLeast(2.0),
        },
        Row {
            label: "  same, sender never yields".into(),
            ours: "one_way_int",
            erlang: "one_way_int",
            goal: Goal::Report,
        },
        Row {
            label: "  same, never yields, Ctx::send_message".into(),
            ours: "one_way_int_send_message",
            erlang: "one_way_int",
            goal: Goal::Report,
        },
        Row {
            label: format!("ping-pong round trip p50 ({} trips)", m(cfg.pp)),
            ours: "pingpong_rtt_p50",
            erlang: "pingpong_rtt_p50",
            goal: Goal::TimeAtMost(1.0),
        },
        Row {
            label: "ping-pong round trip p99".into(),
            ours: "pingpong_rtt_p99",
            erlang: "pingpong_rtt_p99",
            goal: Goal::Report,
        },
        Row {
            label: format!("idle process memory ({} procs)", m(cfg.idle)),
            ours: "idle_mem_usable",
            erlang: "idle_mem_total",
            goal: Goal::BytesAtMost(1024.0),
        },
        Row {
            label: "  same, bytes asked of malloc".into(),
            ours: "idle_mem_requested",
            erlang: "idle_mem_procs",
            goal: Goal::Report,
        },
        Row {
            label: "  same, RSS growth (0 once mimalloc reuses pages)".into(),
            ours: "idle_mem_rss",
            erlang: "",
            goal: Goal::Report,
        },
        Row {
            label: format!("restart latency p50 ({} kills)", m(cfg.restarts)),
            ours: "restart_p50",
            erlang: "restart_p50",
            goal: Goal::Report,
        },
        Row {
            label: "restart latency p99".into(),
            ours: "restart_p99",
            erlang: "restart_p99",
            goal: Goal::Report,
        },
    ];
    let header = [
        "measurement",
        "ours median (min–max)",
        "Erlang median (min–max)",
        "ratio",
        "target",
        "met?",
    ];
    let mut lines = vec![header.map(String::from).to_vec()];
    for row in rows {
        let Some(o) = find(ours, row.ours) else {
            continue;
        };
        let e = find(erlang, row.erlang);
        let ratio = e.as_ref().map(|e| o.median() / e.median());
        let (target, met) = match row.goal {
            Goal::RateAtLeast(x) => (format!("≥ {x}× Erlang"), ratio.map(|r| r >= x)),
            Goal::TimeAtMost(x) => (format!("≤ {x}× Erlang"), ratio.map(|r| r <= x)),
            Goal::BytesAtMost(b) => (format!("≤ {b:.0} B"), Some(o.median() <= b)),
            Goal::Report => ("—".into(), None),
        };
        let ratio_text = ratio.map_or("—".into(), |r| format!("{r:.2}×"));
        lines.push(vec![
            row.label,
            fmt_figure(&o),
            e.as_ref().map_or("—".into(), fmt_figure),
            ratio_text,
            target,
            fmt_met(met),
        ]);
    }
    print_markdown_table(&lines);
    println!(
        "ratio = ours / Erlang (for rates higher is better, for times and bytes lower is better)"
    );
}

fn main() {
    let flags = Flags::from_env(USAGE);
    let cfg = Config::from_flags(&flags);
    let timeout = Duration::from_secs(flags.value("erl-timeout", 1800u64));
    println!("# Spawnpool local runtime benchmark, side by side with Erlang/OTP");
    println!(
        "# ours: supervisor crate on a tokio multi-thread runtime, {THREADS} worker threads \
         (the main thread only waits); global allocator: mimalloc (as the project's binaries; \
         it more than doubles spawn throughput versus glibc malloc)"
    );
    println!(
        "# erlang: erl -noshell +P 2000000 +S {THREADS}:{THREADS} ({THREADS} schedulers), \
         benches/erlang/local.erl"
    );
    println!(
        "# machine: {} cores; load average (1/5/15 min) at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "# sizes: reps {}, spawn {}, msgs {}, ping-pong {}, idle {}, restarts {}",
        cfg.reps, cfg.spawn, cfg.msgs, cfg.pp, cfg.idle, cfg.restarts
    );
    let erlang = if flags.has("no-erlang") {
        println!("# erlang: skipped (--no-erlang)");
        None
    } else {
        match Erlang::prepare(flags.has("install-erlang"), timeout) {
            Ok(e) => Some(e),
            Err(why) => {
                println!("# erlang: {why}; printing our figures alone");
                None
            }
        }
    };

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for &part in &cfg.parts {
        println!("## {}", part.erlang_name());
        for f in run_ours(&tokio_rt, &cfg, part) {
            println!("  {}", f.result_line("ours"));
            ours.push(f);
        }
        if let Some(e) = &erlang {
            match e.run(&cfg, part) {
                Ok(figures) => theirs.extend(figures),
                Err(why) => println!("  erlang: {why}"),
            }
        }
    }
    println!("# load average at end: {}", load_average());
    println!();
    print_table(&cfg, &ours, &theirs);
    drop(erlang);
}
