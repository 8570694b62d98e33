//! Distributed benchmarks of the pool, side by side with distributed
//! Erlang/OTP on loopback in the same run: PERF.md's two-node targets.
//!
//! | measurement | what is timed | PERF.md target |
//! |---|---|---|
//! | remote messages, small | one process on node A sends M integers to one on B, which decodes each and answers after the last: first send → answer | ≥ 3 M/s and ≥ 10× Erlang |
//! | remote messages, 1 KB | the same with a 1 KB byte string | ≥ 5× Erlang |
//! | remote ping-pong | K individually timed round trips A → B → A (p50, p99); before each run, `tcp_floor` (a blocking loopback round trip between two plain processes) | p50 ≤ 0.8× Erlang and ≤ 1.5× the floor |
//! | remote spawn | S spawns of an empty function on B from a process on A, each waiting for the pid (`Runtime::spawn_on`; Erlang `spawn/4`) | ≥ 1.3× Erlang, and a spawn ≤ 1.3× our ping-pong p50 |
//! | remote spawn, pipelined | S spawns in flight at once, each new process messaging back (`Ctx::spawn_request` answering only failures; Erlang `spawn_request` with `{reply, no}`) | ≥ 2× Erlang, max/min of the runs < 1.5 |
//! | pool spawn | P spawns of an empty function placed by the node on its copy of the load table (`Pool::spawn`, waiting for each pid; Erlang `pool:pspawn`), then 64 in flight from the one client | one at a time ≥ 1.5× Erlang; 64 in flight ≥ 10× |
//!
//! Ours: a real `pool-master` and two `bench_worker`s (this crate's worker:
//! the pool-worker library's `Node` with the `bench.*` functions), each its
//! own OS process, on 127.0.0.1; the measurements run inside processes of
//! worker A (the sender, caller, spawner), driven by this program through a
//! hidden node (the Pool API, as poolctl uses it), which only waits while
//! they run. Erlang: `benches/erlang/dist.erl` (node A starts node B with
//! `peer`) and `benches/erlang/dist_pool.erl` (OTP's `pool`: master plus
//! two slave nodes), embedded in this binary, compiled with `erlc` into a
//! temporary directory, distributed on 127.0.0.1 only through a private
//! epmd (its own port, bound to 127.0.0.1, started and stopped by PID).
//! Each part runs on our side, then on Erlang's, so both see the same
//! machine load; then one table prints ours, Erlang's, the ratio and the
//! target.
//!
//! Threads (the machine has 2 cores for everything): each of our workers
//! runs processes on `--threads` (default 2) tokio worker threads and its
//! connection I/O on 1 control thread (a reader task per connection;
//! senders write to the socket themselves, a writer task takes what would
//! block); the master has its own threads (busy only in the pool part). Each Erlang node runs 2 schedulers (`+S 2:2`), which also do its
//! distribution I/O.
//!
//! Fairness: Erlang preempts a sender that loops (reductions), and
//! suspends it while the distribution buffer is over
//! `dist_buf_busy_limit`; our scheduling is cooperative, so our sender
//! calls `ctx.yield_now().await` every `--yield-every` (256) sends, as
//! docs/semantics.md `diff.yield` asks of long loops. A diagnostic row
//! shows a sender that never yields.
//!
//! Build the daemons first, then run (about 3 minutes; `--quick` about 1):
//!
//! ```text
//! cargo build --release --bins
//! cargo run --release -p pool-benches --bin dist_bench
//! cargo run --release -p pool-benches --bin dist_bench -- --quick
//! cargo run --release -p pool-benches --bin dist_bench -- --no-erlang --parts msg,pp
//! cargo run --release -p pool-benches --bin dist_bench -- --perf /tmp/prof --parts msg
//! ```
//!
//! Flags: `--reps N` (default 5, quick 3), `--msgs N`, `--bin-msgs N`,
//! `--size BYTES`, `--pp N`, `--spawns N`, `--pool-spawns N` (sizes),
//! `--window N` (pipelined spawns in flight; default all), `--yield-every N`
//! (0: never), `--threads N` (process threads per worker), `--parts
//! msg,bin,pp,spawn,pool`, `--no-erlang`, `--erl-timeout SECS`, `--perf DIR`
//! (`perf record` each node process by PID during each of our parts, into
//! DIR/<part>-<node>.data), `--perf-freq HZ`, `--perf-fp` (frame-pointer
//! call graphs instead of DWARF), `--keep` (keep the temporary directory
//! with the nodes' logs).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pool_benches::Flags;
use pool_benches::figure::{
    Figure, fmt_figure, fmt_met, load_average, on_path, print_markdown_table,
};
use pool_proto::{NodeId, Pid};
use pool_worker::{Node, NodeConfig, NodeHandle, Pool, Spawn};
use serde_json::{Value, json};

const USAGE: &str = "dist_bench: remote messages, ping-pong, remote spawn and pool spawn between \
real pool nodes, side by side with distributed Erlang/OTP on loopback.

usage: dist_bench [--quick] [--reps N] [--msgs N] [--bin-msgs N] [--size BYTES] [--pp N]
                  [--spawns N] [--pool-spawns N] [--window N] [--yield-every N]
                  [--threads N] [--parts msg,bin,pp,spawn,pool] [--no-erlang]
                  [--erl-timeout SECS] [--perf DIR] [--perf-freq HZ] [--perf-fp] [--keep]

Build the daemons first: cargo build --release --bins";

/// The Erlang counterparts, embedded so the binary runs from anywhere.
const ERLANG_DIST: &str = include_str!("../../erlang/dist.erl");
const ERLANG_POOL: &str = include_str!("../../erlang/dist_pool.erl");

/// Schedulers of every Erlang node (the machine has 2 cores).
const ERL_SCHEDULERS: usize = 2;

/// Node names of our two workers.
const A: &str = "a";
const B: &str = "b";

// ----- figures ----------------------------------------------------------------

// ----- configuration ------------------------------------------------------------

/// One group of measurements; each runs as a unit on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Msg,
    Bin,
    PingPong,
    Spawn,
    Pool,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Msg => "msg",
            Part::Bin => "bin",
            Part::PingPong => "pp",
            Part::Spawn => "spawn",
            Part::Pool => "pool",
        }
    }

    fn parse(s: &str) -> Option<Part> {
        Some(match s {
            "msg" => Part::Msg,
            "bin" => Part::Bin,
            "pp" | "pingpong" => Part::PingPong,
            "spawn" => Part::Spawn,
            "pool" => Part::Pool,
            _ => return None,
        })
    }
}

/// The size of every measurement, the same on both sides.
#[derive(Debug, Clone)]
struct Config {
    reps: usize,
    msgs: usize,
    bin_msgs: usize,
    size: usize,
    pp: usize,
    spawns: usize,
    pool_spawns: usize,
    window: usize,
    yield_every: u64,
    threads: usize,
    parts: Vec<Part>,
}

impl Config {
    fn from_flags(flags: &Flags) -> Config {
        let quick = flags.has("quick");
        let pick = |name: &str, full: usize, quick_n: usize| {
            flags.value(name, if quick { quick_n } else { full }).max(1)
        };
        let parts_arg: String = flags.value("parts", "msg,bin,pp,spawn,pool".to_owned());
        let parts = parts_arg
            .split(',')
            .map(|p| {
                Part::parse(p.trim()).unwrap_or_else(|| {
                    eprintln!("unknown part {p:?}; see --help");
                    std::process::exit(2)
                })
            })
            .collect();
        let spawns = pick("spawns", 50_000, 10_000);
        Config {
            reps: pick("reps", 5, 3),
            msgs: pick("msgs", 1_000_000, 200_000),
            bin_msgs: pick("bin-msgs", 300_000, 60_000),
            size: pick("size", 1024, 1024),
            pp: pick("pp", 20_000, 5_000),
            spawns,
            pool_spawns: pick("pool-spawns", 10_000, 3_000),
            window: pick("window", spawns, spawns),
            yield_every: flags.value("yield-every", 256u64),
            threads: pick("threads", 2, 2),
            parts,
        }
    }

    /// dist.erl's / dist_pool.erl's arguments.
    fn erlang_args(&self, part: Part) -> Vec<String> {
        let mut args = vec![
            format!("reps={}", self.reps),
            format!("sched={ERL_SCHEDULERS}"),
        ];
        if part == Part::Pool {
            args.push(format!("pool_spawns={}", self.pool_spawns));
        } else {
            args.extend([
                format!("msgs={}", self.msgs),
                format!("bin_msgs={}", self.bin_msgs),
                format!("size={}", self.size),
                format!("pp={}", self.pp),
                format!("spawns={}", self.spawns),
                format!("parts={}", part.name()),
            ]);
        }
        args
    }
}

// ----- child processes ------------------------------------------------------------

/// A child process we started, stopped by its PID when dropped (SIGTERM,
/// then SIGKILL after `grace`).
#[derive(Debug)]
struct Daemon {
    label: String,
    child: Child,
    grace: Duration,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we started and have not
        // reaped (so the pid cannot have been reused).
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("# {} did not stop: SIGKILL", self.label);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released for a child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral loopback port")
}

fn wait_listening(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One of our binaries: `$VAR` if set, else beside this executable.
fn our_bin(name: &str, var: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.parent().map(|d| d.join(name)).unwrap_or_default();
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built: run `cargo build --release --bins` (or set {var})",
            path.display()
        ))
    }
}

/// Settings of the developer's shell that must not reach our daemons.
const POOL_SETTINGS: &[&str] = &[
    "POOL_MASTER",
    "POOL_NAME",
    "POOL_LISTEN",
    "POOL_ADVERTISE",
    "POOL_CAPACITY",
    "POOL_LABELS",
    "POOL_REPORT_INTERVAL",
    "POOL_THREADS",
    "POOL_CONFIG",
    "POOL_HTTP",
    "POOL_STATE_DIR",
    "POOL_PLACEMENT",
    "POOL_NODE_TIMEOUT",
    "POOL_TREE",
    "POOL_LOG_JSON",
    "POOL_COOKIE",
    "POOL_COOKIE_FILE",
];

/// Our pool: the master and the two workers, in a temporary directory
/// (cookie, master state, logs).
#[derive(Debug)]
struct OurPool {
    dir: PathBuf,
    keep: bool,
    master_addr: String,
    // Dropped in this order: workers first, then the master.
    workers: Vec<(String, Daemon)>,
    master: Option<Daemon>,
}

impl Drop for OurPool {
    fn drop(&mut self) {
        self.workers.clear();
        self.master = None;
        if self.keep {
            println!("# kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl OurPool {
    fn cookie(&self) -> PathBuf {
        self.dir.join("cookie")
    }

    fn command(&self, bin: &Path, log: &str) -> Result<Command, String> {
        let mut cmd = Command::new(bin);
        for v in POOL_SETTINGS {
            cmd.env_remove(v);
        }
        let log = File::create(self.dir.join(log)).map_err(|e| e.to_string())?;
        cmd.env("POOL_COOKIE_FILE", self.cookie())
            .env("HOME", &self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        Ok(cmd)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn start(threads: usize, keep: bool) -> Result<OurPool, String> {
        let master_bin = our_bin("pool-master", "POOL_MASTER_BIN")?;
        let worker_bin = our_bin("bench_worker", "BENCH_WORKER_BIN")?;
        let dir = std::env::temp_dir().join(format!("spawnpool-dist-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut pool = OurPool {
            dir,
            keep,
            master_addr: format!("127.0.0.1:{}", free_port()),
            workers: Vec::new(),
            master: None,
        };
        let cookie = pool.cookie();
        std::fs::write(
            &cookie,
            format!(
                "dist-bench-{}-{}\n",
                std::process::id(),
                rand::random::<u64>()
            ),
        )
        .map_err(|e| e.to_string())?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        let mut cmd = pool.command(&master_bin, "master.log")?;
        cmd.args(["--listen", &pool.master_addr, "--http", "off"])
            .arg("--state-dir")
            .arg(pool.dir.join("master-state"));
        let child = cmd.spawn().map_err(|e| format!("pool-master: {e}"))?;
        pool.master = Some(Daemon {
            label: "pool-master".into(),
            child,
            grace: Duration::from_secs(5),
        });
        if !wait_listening(&pool.master_addr, Duration::from_secs(15)) {
            return Err(format!(
                "pool-master does not listen on {}; its log:\n{}",
                pool.master_addr,
                pool.log("master.log")
            ));
        }
        for name in [A, B] {
            let mut cmd = pool.command(&worker_bin, &format!("{name}.log"))?;
            cmd.args(["--master", &pool.master_addr, "--name", name])
                .args(["--threads", &threads.to_string()]);
            let child = cmd.spawn().map_err(|e| format!("bench_worker: {e}"))?;
            pool.workers.push((
                name.to_owned(),
                Daemon {
                    label: format!("bench_worker {name}"),
                    child,
                    grace: Duration::from_secs(10),
                },
            ));
        }
        Ok(pool)
    }

    /// (label, OS pid) of every daemon.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = self
            .workers
            .iter()
            .map(|(n, d)| (n.clone(), d.pid()))
            .collect();
        if let Some(m) = &self.master {
            v.push(("master".into(), m.pid()));
        }
        v
    }
}

// ----- CPU time per thread --------------------------------------------------------

/// CPU time (user + system, seconds) of every thread of process `pid`, by
/// thread id, with the thread's name.
/// CPU seconds by thread id: (thread name, seconds).
type ThreadCpu = BTreeMap<u32, (String, f64)>;

fn thread_cpu(pid: u32) -> ThreadCpu {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the name: state is field 3, utime 14, stime 15 (1-based).
        let t = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (t(14), t(15)) {
            out.insert(tid, (name, (u + s) / tick));
        }
    }
    out
}

/// Per-thread CPU of our daemons between two points.
struct CpuWatch {
    start: Instant,
    before: Vec<(String, u32, ThreadCpu)>,
}

impl CpuWatch {
    fn start(pool: &OurPool) -> CpuWatch {
        CpuWatch {
            start: Instant::now(),
            before: pool
                .pids()
                .into_iter()
                .map(|(l, p)| (l, p, thread_cpu(p)))
                .collect(),
        }
    }

    /// One line: per node, every thread that used at least 10 ms.
    fn report(&self) -> String {
        let wall = self.start.elapsed().as_secs_f64();
        let mut parts = Vec::new();
        for (label, pid, before) in &self.before {
            let after = thread_cpu(*pid);
            let mut threads: Vec<(String, f64)> = after
                .iter()
                .map(|(tid, (name, t))| {
                    let t0 = before.get(tid).map_or(0.0, |b| b.1);
                    (name.clone(), t - t0)
                })
                .filter(|(_, d)| *d >= 0.01)
                .collect();
            threads.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
            let total: f64 = threads.iter().map(|t| t.1).sum();
            let list: Vec<String> = threads
                .iter()
                .map(|(n, d)| format!("{n} {:.0}%", 100.0 * d / wall))
                .collect();
            parts.push(format!(
                "{label} {:.0}% [{}]",
                100.0 * total / wall,
                list.join(", ")
            ));
        }
        format!(
            "cpu over {wall:.1} s wall (100% = one core): {}",
            parts.join("; ")
        )
    }
}

// ----- perf -----------------------------------------------------------------------

/// `perf record` of every node process during one part.
struct Perf {
    recorders: Vec<Daemon>,
}

impl Perf {
    fn start(dir: &Path, part: Part, pool: &OurPool, freq: u32, fp: bool) -> Perf {
        let _ = std::fs::create_dir_all(dir);
        let mut recorders = Vec::new();
        for (label, pid) in pool.pids() {
            if label == "master" && part != Part::Pool {
                continue;
            }
            let out = dir.join(format!("{}-{label}.data", part.name()));
            let mut cmd = Command::new("perf");
            cmd.arg("record").args(["-F", &freq.to_string()]);
            if fp {
                cmd.arg("-g");
            } else {
                cmd.args(["--call-graph", "dwarf,16384"]);
            }
            cmd.args(["-p", &pid.to_string(), "-o"])
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            match cmd.spawn() {
                Ok(child) => {
                    println!(
                        "  perf: recording {label} (pid {pid}) into {}",
                        out.display()
                    );
                    recorders.push(Daemon {
                        label: format!("perf record {label}"),
                        child,
                        grace: Duration::from_secs(60),
                    });
                }
                Err(e) => println!("  perf: cannot start perf record: {e}"),
            }
        }
        // Let perf attach before the measurement starts.
        std::thread::sleep(Duration::from_millis(500));
        Perf { recorders }
    }

    fn stop(mut self) {
        for r in &self.recorders {
            r.signal(libc::SIGINT);
        }
        for r in &mut self.recorders {
            let _ = r.child.wait();
        }
    }
}

// ----- our side -------------------------------------------------------------------

/// The driver: a hidden node of our pool.
struct Driver {
    node: NodeHandle,
    pool: Pool,
    b_id: NodeId,
}

/// How long one run of a bench function may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

impl Driver {
    async fn connect(our: &OurPool) -> Result<Driver, String> {
        let cookie = pool_proto::cookie::resolve_cookie(Some(&our.cookie()), None, None)
            .map_err(|e| e.to_string())?;
        let config = NodeConfig::hidden(
            format!("dist-bench-{}", std::process::id()),
            our.master_addr.clone(),
            cookie,
        );
        let node = Node::builder(config)
            .start()
            .await
            .map_err(|e| format!("the driver cannot join: {e}"))?;
        let pool = node.pool();
        let deadline = Instant::now() + Duration::from_secs(30);
        let b_id = loop {
            if let Ok(nodes) = pool.nodes().await {
                let id = |n: &str| nodes.iter().find(|s| s.name == n).map(|s| s.id);
                if let (Some(_), Some(b)) = (id(A), id(B)) {
                    break b;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the workers did not join within 30 s; logs:\n{}\n{}\n{}",
                    our.log("a.log"),
                    our.log("b.log"),
                    our.log("master.log")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Driver { node, pool, b_id })
    }

    /// Runs `function` on node `on` and returns its result value.
    async fn run(&self, on: &str, function: &str, args: Value) -> Result<Value, String> {
        let spec = Spawn::new(function, args).on(on);
        // `take` refuses an abnormal exit, naming the function, the node
        // and the reason.
        tokio::time::timeout(RUN_TIMEOUT, self.pool.run_spec(spec))
            .await
            .map_err(|_| format!("{function} on {on} took longer than {RUN_TIMEOUT:?}"))?
            .and_then(|run| run.take::<Value>())
            .map_err(|e| format!("{function} on {on}: {e}"))
    }

    /// Spawns `function` on node `on`; its pid.
    async fn spawn(&self, on: &str, function: &str, args: Value) -> Result<Pid, String> {
        self.pool
            .spawn(Spawn::new(function, args).on(on))
            .await
            .map(|s| s.pid)
            .map_err(|e| format!("spawning {function} on {on}: {e}"))
    }

    /// One run of the one-way test: (first send → answer rate, the
    /// receiver's first → last rate), msgs/s.
    async fn one_way(&self, n: usize, size: usize, yield_every: u64) -> Result<(f64, f64), String> {
        let sink = self
            .spawn(B, "bench.sink", json!({"n": n, "size": size}))
            .await?;
        let r = self
            .run(
                A,
                "bench.source",
                json!({"to": sink, "n": n, "size": size, "yield_every": yield_every}),
            )
            .await?;
        let rate = |key: &str| n as f64 / (r[key].as_f64().unwrap_or(f64::NAN) / 1e9);
        Ok((rate("total_ns"), rate("sink_ns")))
    }

    /// One run of the ping-pong test: (p50, p99) in µs.
    async fn pingpong(&self, k: usize) -> Result<(f64, f64), String> {
        let ponger = self.spawn(B, "bench.pong", Value::Null).await?;
        let r = self
            .run(
                A,
                "bench.rtt",
                json!({"to": ponger, "k": k, "warmup": 1000}),
            )
            .await;
        self.pool.send(ponger, 0u64);
        let r = r?;
        Ok((
            r["p50_us"].as_f64().unwrap_or(f64::NAN),
            r["p99_us"].as_f64().unwrap_or(f64::NAN),
        ))
    }

    /// One run of remote spawns from A to B: spawns/s.
    async fn remote_spawn(&self, n: usize, window: usize) -> Result<f64, String> {
        let r = self
            .run(
                A,
                "bench.spawner",
                json!({"node": self.b_id, "n": n, "window": window}),
            )
            .await?;
        Ok(n as f64 / (r["ns"].as_f64().unwrap_or(f64::NAN) / 1e9))
    }

    /// One run of pool spawns from A: (spawns/s, where they went).
    async fn pool_spawn(&self, n: usize, window: usize) -> Result<(f64, Value), String> {
        let r = self
            .run(A, "bench.pool_spawner", json!({"n": n, "window": window}))
            .await?;
        Ok((
            n as f64 / (r["ns"].as_f64().unwrap_or(f64::NAN) / 1e9),
            r["nodes"].clone(),
        ))
    }
}

/// Our side of one part: its figures, each with `cfg.reps` runs.
async fn run_ours(d: &Driver, cfg: &Config, part: Part) -> Result<Vec<Figure>, String> {
    let reps = cfg.reps;
    Ok(match part {
        Part::Msg => {
            let (mut total, mut sink, mut noyield) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                let (t, s) = d.one_way(cfg.msgs, 0, cfg.yield_every).await?;
                total.push(t);
                sink.push(s);
            }
            for _ in 0..reps {
                noyield.push(d.one_way(cfg.msgs, 0, 0).await?.0);
            }
            vec![
                Figure::new("one_way_int", "msgs/s", cfg.msgs, total),
                Figure::new("one_way_int_sink", "msgs/s", cfg.msgs, sink),
                Figure::new("one_way_int_noyield", "msgs/s", cfg.msgs, noyield),
            ]
        }
        Part::Bin => {
            let (mut total, mut sink) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let (t, s) = d.one_way(cfg.bin_msgs, cfg.size, cfg.yield_every).await?;
                total.push(t);
                sink.push(s);
            }
            vec![
                Figure::new("one_way_1k", "msgs/s", cfg.bin_msgs, total),
                Figure::new("one_way_1k_sink", "msgs/s", cfg.bin_msgs, sink),
            ]
        }
        Part::PingPong => {
            let (mut p50, mut p99, mut floor) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                floor.push(tcp_floor(cfg.pp)?);
                let (a, b) = d.pingpong(cfg.pp).await?;
                p50.push(a);
                p99.push(b);
            }
            vec![
                Figure::new("pingpong_rtt_p50", "us", cfg.pp, p50),
                Figure::new("pingpong_rtt_p99", "us", cfg.pp, p99),
                Figure::new("tcp_floor_p50", "us", cfg.pp, floor),
            ]
        }
        Part::Spawn => {
            let (mut seq, mut pipe) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                seq.push(d.remote_spawn(cfg.spawns, 1).await?);
            }
            for _ in 0..reps {
                pipe.push(d.remote_spawn(cfg.spawns, cfg.window).await?);
            }
            vec![
                Figure::new("remote_spawn", "spawns/s", cfg.spawns, seq),
                Figure::new("remote_spawn_pipelined", "spawns/s", cfg.spawns, pipe),
            ]
        }
        Part::Pool => {
            let (mut runs, mut wide) = (Vec::new(), Vec::new());
            let mut last = Value::Null;
            for _ in 0..reps {
                let (r, nodes) = d.pool_spawn(cfg.pool_spawns, 1).await?;
                runs.push(r);
                last = nodes;
            }
            println!("  ours: pool spawn placements (last run): {last}");
            for _ in 0..reps {
                let (r, nodes) = d.pool_spawn(cfg.pool_spawns, POOL_WINDOW).await?;
                wide.push(r);
                last = nodes;
            }
            println!("  ours: {POOL_WINDOW} in flight, placements (last run): {last}");
            vec![
                Figure::new("pool_spawn", "spawns/s", cfg.pool_spawns, runs),
                Figure::new("pool_spawn_64", "spawns/s", cfg.pool_spawns, wide),
            ]
        }
    })
}

/// One run of the `tcp_floor` binary (beside this one): the p50 of
/// `trips` blocking loopback round trips between two plain processes, µs.
/// Run just before each ping-pong run, so both see the same machine.
fn tcp_floor(trips: usize) -> Result<f64, String> {
    let bin = our_bin("tcp_floor", "TCP_FLOOR_BIN")?;
    let out = Command::new(&bin)
        .args(["--trips", &trips.to_string(), "--reps", "1"])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "... p50 median 6.5 us (min ...": the number after "p50 median".
    text.split("p50 median ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("tcp_floor printed no p50: {text}"))
}

/// Connections and code paths warm, so the first measured run does not pay
/// for connecting (Erlang's nodes are connected before it measures too).
async fn warm_up(d: &Driver) -> Result<(), String> {
    d.one_way(1000, 0, 256).await?;
    d.one_way(100, 1024, 256).await?;
    d.pingpong(100).await?;
    d.remote_spawn(100, 1).await?;
    d.pool_spawn(20, 1).await?;
    Ok(())
}

// ----- Erlang's side ------------------------------------------------------------------

/// The Erlang counterparts, compiled, and a private epmd.
#[derive(Debug)]
struct Erlang {
    /// Temporary directory holding the sources and beams; removed on drop.
    dir: PathBuf,
    /// Seconds one `erl` run may take before it is killed.
    timeout: Duration,
    cookie: String,
    epmd_port: u16,
    epmd: Option<Daemon>,
}

impl Drop for Erlang {
    fn drop(&mut self) {
        self.epmd = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Erlang {
    fn prepare(timeout: Duration) -> Result<Erlang, String> {
        for p in ["erl", "erlc", "epmd"] {
            if !on_path(p) {
                return Err(format!(
                    "{p} not found: install Erlang/OTP with `apt-get install -y erlang` \
                     (Debian bookworm: OTP 25)"
                ));
            }
        }
        let dir = std::env::temp_dir().join(format!("spawnpool-dist-erl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut erlang = Erlang {
            dir,
            timeout,
            cookie: format!("distbench{}x{}", std::process::id(), rand::random::<u32>()),
            epmd_port: free_port(),
            epmd: None,
        };
        for (name, src) in [("dist.erl", ERLANG_DIST), ("dist_pool.erl", ERLANG_POOL)] {
            let path = erlang.dir.join(name);
            std::fs::write(&path, src).map_err(|e| format!("{}: {e}", path.display()))?;
            let out = Command::new("erlc")
                .arg("-o")
                .arg(&erlang.dir)
                .arg(&path)
                .output()
                .map_err(|e| format!("erlc: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "erlc {name} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        // pool:start/2 reads the hosts to start slaves on from here.
        std::fs::write(erlang.dir.join(".hosts.erlang"), "'127.0.0.1'.\n")
            .map_err(|e| e.to_string())?;
        // A private epmd on its own port, bound to loopback.
        let child = Command::new("epmd")
            .args([
                "-port",
                &erlang.epmd_port.to_string(),
                "-address",
                "127.0.0.1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("epmd: {e}"))?;
        erlang.epmd = Some(Daemon {
            label: "epmd".into(),
            child,
            grace: Duration::from_secs(2),
        });
        if !wait_listening(
            &format!("127.0.0.1:{}", erlang.epmd_port),
            Duration::from_secs(5),
        ) {
            return Err("epmd did not start".into());
        }
        Ok(erlang)
    }

    fn dist_args(&self) -> Vec<String> {
        vec![
            "-setcookie".into(),
            self.cookie.clone(),
            "-kernel".into(),
            "inet_dist_use_interface".into(),
            "{127,0,0,1}".into(),
            "-pa".into(),
            self.dir.to_string_lossy().into_owned(),
        ]
    }

    /// Runs one part in a fresh `erl` node, forwarding its lines; its
    /// figures.
    fn run(&self, cfg: &Config, part: Part) -> Result<Vec<Figure>, String> {
        let me = std::process::id();
        let (name, module) = match part {
            Part::Pool => (format!("dist_pool_m_{me}@127.0.0.1"), "dist_pool"),
            _ => (format!("dist_a_{me}@127.0.0.1"), "dist"),
        };
        let slave_args = format!(
            "-setcookie {} -kernel inet_dist_use_interface '{{127,0,0,1}}' -pa {}",
            self.cookie,
            self.dir.display()
        );
        let child = Command::new("erl")
            .args(["-noshell", "-name", &name, "+S"])
            .arg(format!("{ERL_SCHEDULERS}:{ERL_SCHEDULERS}"))
            .args(self.dist_args())
            .args(["-run", module, "main"])
            .args(cfg.erlang_args(part))
            .current_dir(&self.dir)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("DIST_POOL_SLAVE_ARGS", slave_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("erl: {e}"))?;
        let mut erl = Daemon {
            label: format!("erl {name}"),
            child,
            grace: Duration::from_secs(2),
        };
        let stdout = erl.child.stdout.take().expect("piped stdout");
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
        let mut others: Vec<(String, u32)> = Vec::new();
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(f) = Figure::parse_erlang(&line) {
                        println!("  {}", f.result_line("erlang"));
                        figures.push(f);
                    } else if let Some(info) = line.strip_prefix("INFO ") {
                        if let Some(rest) = info.strip_prefix("os_pid ") {
                            let mut w = rest.split_whitespace();
                            if let (Some(node), Some(pid)) =
                                (w.next(), w.next().and_then(|p| p.parse().ok()))
                            {
                                others.push((node.to_owned(), pid));
                            }
                        }
                        println!("  erlang: {info}");
                    } else if !line.trim().is_empty() {
                        println!("  erlang| {line}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
            }
        }
        if timed_out {
            let _ = erl.child.kill();
        }
        let status = erl.child.wait().map_err(|e| format!("erl: {e}"))?;
        let _ = reader.join();
        reap_nodes(&others);
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

/// The other Erlang nodes of a run (B, the pool's slaves) end with the node
/// that started them; any still running 3 s later is killed by its PID
/// (checked to be that node first).
fn reap_nodes(nodes: &[(String, u32)]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    for (node, pid) in nodes {
        let alive = || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(node.as_str()))
                .unwrap_or(false)
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive() {
            println!("  erlang: node {node} (pid {pid}) outlived its run: SIGKILL");
            // SAFETY: kill(2) on a pid whose command line names our node.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
    }
}

// ----- the table ------------------------------------------------------------------------

/// How a row's figures compare.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// A rate: ours / Erlang's must be at least this.
    RateAtLeast(f64),
    /// A rate: ours / Erlang's at least the first, ours at least the second
    /// (per second).
    RateAtLeastAnd(f64, f64),
    /// A time: ours / Erlang's at most the first, and ours / our figure
    /// `of` (µs, same run) at most the second.
    TimeAtMostAnd(f64, &'static str, f64),
    /// A rate as the time of one operation (1/rate): at most `x` times our
    /// figure `of` (µs, same run), and ours / Erlang's at least the first.
    RateAtLeastAndPerOpAtMost(f64, &'static str, f64),
    /// A rate: ours / Erlang's at least this, and the max/min of our runs
    /// below the second.
    RateAtLeastSteady(f64, f64),
    /// Reported, no target.
    Report,
}

struct Row {
    label: String,
    ours: &'static str,
    erlang: &'static str,
    goal: Goal,
}

/// Pool spawns in flight at once from one client in the second pool row.
const POOL_WINDOW: usize = 64;

fn count(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{} k", n / 1000)
    } else {
        n.to_string()
    }
}

fn print_table(cfg: &Config, ours: &[Figure], erlang: &[Figure]) {
    let find = |set: &[Figure], id: &str| set.iter().find(|f| f.id == id).cloned();
    let rows = [
        Row {
            label: format!(
                "remote messages A → B, {} ints (yield every {})",
                count(cfg.msgs),
                cfg.yield_every
            ),
            ours: "one_way_int",
            erlang: "one_way_int",
            goal: Goal::RateAtLeastAnd(10.0, 3e6),
        },
        Row {
            label: "  same, receiver's first → last message".into(),
            ours: "one_way_int_sink",
            erlang: "one_way_int",
            goal: Goal::Report,
        },
        Row {
            label: "  same, sender never yields".into(),
            ours: "one_way_int_noyield",
            erlang: "one_way_int",
            goal: Goal::Report,
        },
        Row {
            label: format!(
                "remote messages A → B, {} × {} B binaries",
                count(cfg.bin_msgs),
                cfg.size
            ),
            ours: "one_way_1k",
            erlang: "one_way_1k",
            goal: Goal::RateAtLeast(5.0),
        },
        Row {
            label: "  same, receiver's first → last message".into(),
            ours: "one_way_1k_sink",
            erlang: "one_way_1k",
            goal: Goal::Report,
        },
        Row {
            label: format!("remote ping-pong round trip p50 ({} trips)", count(cfg.pp)),
            ours: "pingpong_rtt_p50",
            erlang: "pingpong_rtt_p50",
            goal: Goal::TimeAtMostAnd(0.8, "tcp_floor_p50", 1.5),
        },
        Row {
            label: "remote ping-pong round trip p99".into(),
            ours: "pingpong_rtt_p99",
            erlang: "pingpong_rtt_p99",
            goal: Goal::Report,
        },
        Row {
            label: format!("remote spawn, waiting for each pid ({})", count(cfg.spawns)),
            ours: "remote_spawn",
            erlang: "remote_spawn",
            goal: Goal::RateAtLeastAndPerOpAtMost(1.3, "pingpong_rtt_p50", 1.3),
        },
        Row {
            label: format!(
                "remote spawn, pipelined ({}, {} in flight)",
                count(cfg.spawns),
                count(cfg.window)
            ),
            ours: "remote_spawn_pipelined",
            erlang: "remote_spawn_pipelined",
            goal: Goal::RateAtLeastSteady(2.0, 1.5),
        },
        Row {
            label: format!(
                "pool spawn through placement ({}) vs pool:pspawn",
                count(cfg.pool_spawns)
            ),
            ours: "pool_spawn",
            erlang: "pool_pspawn",
            goal: Goal::RateAtLeast(1.5),
        },
        Row {
            label: format!(
                "pool spawn, {POOL_WINDOW} in flight from one client ({}) vs pool:pspawn",
                count(cfg.pool_spawns)
            ),
            ours: "pool_spawn_64",
            erlang: "pool_pspawn",
            goal: Goal::RateAtLeast(10.0),
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
            Goal::RateAtLeastAnd(x, abs) => (
                format!("≥ {:.0} M/s and ≥ {x}× Erlang", abs / 1e6),
                Some(o.median() >= abs && ratio.is_none_or(|r| r >= x)),
            ),
            Goal::TimeAtMostAnd(x, of, y) => {
                let floor = find(ours, of).map(|f| o.median() / f.median());
                (
                    format!(
                        "≤ {x}× Erlang, ≤ {y}× {of} ({})",
                        floor.map_or("—".into(), |r| format!("{r:.2}×"))
                    ),
                    Some(ratio.is_none_or(|r| r <= x) && floor.is_some_and(|r| r <= y)),
                )
            }
            Goal::RateAtLeastAndPerOpAtMost(x, of, y) => {
                // One operation's time, µs, against our figure `of`.
                let per_op = find(ours, of).map(|f| 1e6 / o.median() / f.median());
                (
                    format!(
                        "≥ {x}× Erlang, one ≤ {y}× {of} ({})",
                        per_op.map_or("—".into(), |r| format!("{r:.2}×"))
                    ),
                    Some(ratio.is_none_or(|r| r >= x) && per_op.is_some_and(|r| r <= y)),
                )
            }
            Goal::RateAtLeastSteady(x, y) => {
                let spread = o.max() / o.min();
                (
                    format!("≥ {x}× Erlang, max/min < {y} ({spread:.2})"),
                    Some(ratio.is_none_or(|r| r >= x) && spread < y),
                )
            }
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
        "ratio = ours / Erlang (for rates higher is better, for times lower is better); \
         diagnostic rows (target —) compare with the Erlang figure of the row above"
    );
    if let Some(f) = find(ours, "one_way_1k") {
        let e = find(erlang, "one_way_1k");
        println!(
            "1 KB one way in bytes: ours {:.0} MB/s, Erlang {}",
            f.median() * cfg.size as f64 / 1e6,
            e.map_or("—".into(), |e| format!(
                "{:.0} MB/s",
                e.median() * cfg.size as f64 / 1e6
            ))
        );
    }
}

async fn real_main(flags: Flags) -> Result<(), String> {
    let cfg = Config::from_flags(&flags);
    let timeout = Duration::from_secs(flags.value("erl-timeout", 1800u64));
    let perf_dir: Option<PathBuf> = flags
        .has("perf")
        .then(|| PathBuf::from(flags.value("perf", String::new())));
    let perf_freq: u32 = flags.value("perf-freq", 499u32);
    println!("# Spawnpool distributed benchmark, side by side with distributed Erlang/OTP");
    println!(
        "# ours: pool-master + 2 bench_worker processes (a, b) on 127.0.0.1; each worker runs \
         processes on {} tokio threads + 1 control thread for its connection I/O; \
         measurements run in processes on a (sender / caller / spawner), driven through a \
         hidden node that only waits; global allocator mimalloc",
        cfg.threads
    );
    println!(
        "# ours: the sender calls ctx.yield_now().await every {} sends (Erlang preempts its \
         sender by reductions; docs/semantics.md diff.yield); a diagnostic row shows a sender \
         that never yields",
        cfg.yield_every
    );
    println!(
        "# erlang: 2 nodes (dist.erl: A + peer B) or 3 (dist_pool.erl: master + 2 slaves), \
         each its own OS process with +S {ERL_SCHEDULERS}:{ERL_SCHEDULERS}, long names on \
         127.0.0.1, inet_dist_use_interface {{127,0,0,1}}, a private epmd on 127.0.0.1"
    );
    println!(
        "# machine: {} cores shared by every node of both sides; load average (1/5/15 min) at \
         start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "# sizes: reps {}, msgs {}, 1 KB msgs {} ({} B), ping-pong {}, spawns {} (window {}), \
         pool spawns {}",
        cfg.reps, cfg.msgs, cfg.bin_msgs, cfg.size, cfg.pp, cfg.spawns, cfg.window, cfg.pool_spawns
    );
    let erlang = if flags.has("no-erlang") {
        println!("# erlang: skipped (--no-erlang)");
        None
    } else {
        match Erlang::prepare(timeout) {
            Ok(e) => {
                println!("# erlang: private epmd on 127.0.0.1:{}", e.epmd_port);
                Some(e)
            }
            Err(why) => {
                println!("# erlang: {why}; printing our figures alone");
                None
            }
        }
    };

    let our = OurPool::start(cfg.threads, flags.has("keep"))?;
    let driver = Driver::connect(&our).await?;
    println!(
        "# ours: OS pids {}",
        our.pids()
            .iter()
            .map(|(l, p)| format!("{l}={p}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    warm_up(&driver).await?;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for &part in &cfg.parts {
        println!("## {} (load average {})", part.name(), load_average());
        let perf = perf_dir
            .as_deref()
            .map(|dir| Perf::start(dir, part, &our, perf_freq, flags.has("perf-fp")));
        let cpu = CpuWatch::start(&our);
        let figures = run_ours(&driver, &cfg, part).await;
        let cpu_line = cpu.report();
        if let Some(p) = perf {
            p.stop();
        }
        for f in figures? {
            println!("  {}", f.result_line("ours"));
            ours.push(f);
        }
        println!("  ours: {cpu_line}");
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
    driver.node.abort();
    drop(our);
    drop(erlang);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let flags = Flags::from_env(USAGE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(real_main(flags)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dist_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
