//! `bench_worker`: a pool worker (the pool-worker library's `Node`, exactly
//! as a user's worker is built, with the stock built-ins) plus the
//! benchmark functions `dist_bench` drives. `dist_bench` starts two of
//! these (each its own OS process, as Erlang's nodes are) and a real
//! `pool-master`; it is not meant to be started by hand, but can be:
//!
//! ```text
//! bench_worker --master ADDR --name NAME [--listen ADDR] [--threads N]
//!              (cookie: POOL_COOKIE_FILE, POOL_COOKIE or ~/.spawnpool/cookie)
//! ```
//!
//! | function | args | what it does; its result |
//! |---|---|---|
//! | `bench.noop` | none | ends at once (the body of every spawn benchmark) |
//! | `bench.reply` | `{to}` | sends `0u64` to `to` and ends (pipelined spawns) |
//! | `bench.sink` | `{n, size}` | receives `n` messages, decoding each (`u64` if `size` is 0, else a byte string); then sends the elapsed ns from the first to the last to the sender of the last; result `{ns, bytes}` |
//! | `bench.source` | `{to, n, size, yield_every}` | sends `n` messages to `to` (`42u64` if `size` is 0, else a `size`-byte string shared by every send, as an Erlang binary is), calling `Ctx::yield_now` every `yield_every` sends (0: never); waits for the sink's answer; result `{total_ns, send_ns, sink_ns}` (total: first send to the answer) |
//! | `bench.pong` | none | answers every `1u64` with `2u64` to its sender; ends on anything else |
//! | `bench.rtt` | `{to, k, warmup}` | `warmup` round trips to the ponger `to`, then `k` timed ones; result `{p50_us, p99_us, min_us, mean_us}` |
//! | `bench.spawner` | `{node, n, window}` | `Runtime::spawn_on(node, bench.noop)` `n` times, waiting for each pid (`window` 1); with `window` > 1, `Ctx::spawn_request` answering only failures (Erlang's pipelined `spawn_request(..., [{reply, no}])`), up to `window` in flight, each process (`bench.reply`) messaging back, until all `n` have; result `{ns}` |
//! | `bench.pool_spawner` | `{n, window}` | `Pool::spawn(Spawn::new("bench.noop", null))` `n` times (placed on the node's copy of the load table), up to `window` (default 1) in flight; result `{ns, nodes: {name: count}}` |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use pool_benches::Flags;
use pool_proto::{NodeId, Pid, SpawnRequest};
use pool_worker::{Node, NodeConfig, Pool, Spawn};
use serde::Deserialize;
use serde_json::{Value, json};
use supervisor::{Ctx, Envelope, Functions, SpawnAnswer, SpawnReplies, SpawnRequestOpts};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "bench_worker: a pool worker with the benchmark functions of dist_bench.

usage: bench_worker --master ADDR --name NAME [--listen ADDR] [--threads N] [--peer-queue BYTES]";

/// The node's Pool API, for `bench.pool_spawner`.
static POOL: OnceLock<Pool> = OnceLock::new();

const PING: u64 = 1;
const PONG: u64 = 2;

#[derive(Debug, Deserialize)]
struct ReplyArgs {
    to: Pid,
}

#[derive(Debug, Deserialize)]
struct SinkArgs {
    n: u64,
    #[serde(default)]
    size: usize,
}

#[derive(Debug, Deserialize)]
struct SourceArgs {
    to: Pid,
    n: u64,
    #[serde(default)]
    size: usize,
    #[serde(default)]
    yield_every: u64,
}

#[derive(Debug, Deserialize)]
struct RttArgs {
    to: Pid,
    k: usize,
    #[serde(default)]
    warmup: usize,
}

#[derive(Debug, Deserialize)]
struct SpawnerArgs {
    node: NodeId,
    n: u64,
    #[serde(default)]
    window: usize,
}

#[derive(Debug, Deserialize)]
struct PoolSpawnerArgs {
    n: u64,
    /// Spawns in flight at once (default 1: each waits for its pid).
    #[serde(default)]
    window: usize,
}

fn ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

async fn sink(mut ctx: Ctx, a: SinkArgs) -> Result<Value, String> {
    let mut t0 = None;
    let mut last_from = None;
    let mut bytes = 0usize;
    for _ in 0..a.n {
        match ctx.recv().await {
            Envelope::Message { from, msg } => {
                t0.get_or_insert_with(Instant::now);
                last_from = from;
                // Decode as the receiver of a real message would (Erlang
                // decodes a message from another node when the receiver
                // takes it, too).
                if a.size == 0 {
                    msg.take::<u64>().map_err(|e| e.to_string())?;
                } else {
                    bytes += msg
                        .take::<serde_bytes::ByteBuf>()
                        .map_err(|e| e.to_string())?
                        .len();
                }
            }
            other => return Err(format!("sink: unexpected {}", other.kind())),
        }
    }
    let elapsed = t0.map_or(0, ns);
    if let Some(from) = last_from {
        ctx.send(from, elapsed);
    }
    Ok(json!({"ns": elapsed, "bytes": bytes}))
}

async fn source(mut ctx: Ctx, a: SourceArgs) -> Result<Value, String> {
    let t0 = Instant::now();
    let every = if a.yield_every == 0 {
        u64::MAX
    } else {
        a.yield_every
    };
    if a.size == 0 {
        for i in 1..=a.n {
            ctx.send(a.to, 42u64);
            if i % every == 0 {
                ctx.yield_now().await;
            }
        }
    } else {
        // One buffer shared by every send, as an Erlang binary is shared by
        // `R ! Bin` (leaked: a few KB per benchmark run).
        let bin: &'static serde_bytes::Bytes =
            serde_bytes::Bytes::new(Box::leak(vec![b'x'; a.size].into_boxed_slice()));
        for i in 1..=a.n {
            ctx.send(a.to, bin);
            if i % every == 0 {
                ctx.yield_now().await;
            }
        }
    }
    let send_ns = ns(t0);
    let sink_ns: u64 = ctx
        .recv()
        .await
        .take()
        .map_err(|e| format!("source: the sink's answer: {e}"))?;
    Ok(json!({"total_ns": ns(t0), "send_ns": send_ns, "sink_ns": sink_ns}))
}

async fn pong(mut ctx: Ctx) {
    loop {
        let Envelope::Message {
            from: Some(from),
            msg,
        } = ctx.recv().await
        else {
            break;
        };
        if msg.take::<u64>().ok() != Some(PING) {
            break;
        }
        ctx.send(from, PONG);
    }
}

/// The element at percentile `p` of sorted samples: element `len * p / 100`
/// (1-based), the rule of dist.erl and local_bench.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).max(1) - 1]
}

async fn rtt(mut ctx: Ctx, a: RttArgs) -> Result<Value, String> {
    let trip = async |ctx: &mut Ctx| -> Result<(), String> {
        ctx.send(a.to, PING);
        match ctx.recv().await.take::<u64>() {
            Ok(PONG) => Ok(()),
            other => Err(format!("rtt: expected pong, got {other:?}")),
        }
    };
    for _ in 0..a.warmup {
        trip(&mut ctx).await?;
    }
    let mut us = Vec::with_capacity(a.k);
    for _ in 0..a.k {
        let t0 = Instant::now();
        trip(&mut ctx).await?;
        us.push(t0.elapsed().as_nanos() as f64 / 1000.0);
    }
    let mean = us.iter().sum::<f64>() / us.len().max(1) as f64;
    us.sort_by(f64::total_cmp);
    Ok(json!({
        "p50_us": percentile(&us, 50),
        "p99_us": percentile(&us, 99),
        "min_us": us[0],
        "mean_us": mean,
    }))
}

fn noop_request(function: &str, args: Value) -> SpawnRequest {
    SpawnRequest {
        function: function.to_owned(),
        args,
        link: None,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    }
}

async fn spawner(mut ctx: Ctx, a: SpawnerArgs) -> Result<Value, String> {
    let rt = ctx.runtime().clone();
    let me = ctx.pid();
    let t0 = Instant::now();
    if a.window <= 1 {
        for _ in 0..a.n {
            rt.spawn_on(
                a.node,
                me,
                noop_request("bench.noop", Value::Null),
                false,
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        }
    } else {
        // Pipelined, as Erlang's `spawn_request(..., [{reply, no}])`: up to
        // `window` spawns in flight (requested, not yet messaged back), none
        // awaited; each new process messages back, and the run ends when
        // all `n` have. Only a failed spawn is answered (it would otherwise
        // never message back, and the run would hang).
        let args = json!({"to": me});
        let opts = SpawnRequestOpts {
            reply: SpawnReplies::ErrorsOnly,
            ..SpawnRequestOpts::default()
        };
        let mut issued = 0u64;
        let mut replies = 0u64;
        while replies < a.n {
            while issued < a.n && issued - replies < a.window as u64 {
                ctx.spawn_request(a.node, noop_request("bench.reply", args.clone()), opts);
                issued += 1;
            }
            let mut next = Some(ctx.recv().await);
            while let Some(env) = next {
                if let Envelope::Message { msg, .. } = &env
                    && msg.is::<SpawnAnswer>()
                {
                    let answer = env.take::<SpawnAnswer>().map_err(|e| e.to_string())?;
                    return Err(format!("a pipelined spawn failed: {:?}", answer.result));
                }
                replies += 1;
                next = ctx.try_recv();
            }
        }
    }
    Ok(json!({"ns": ns(t0)}))
}

async fn pool_spawner(_ctx: Ctx, a: PoolSpawnerArgs) -> Result<Value, String> {
    let pool = POOL.get().ok_or("the node's Pool is not set")?;
    let mut nodes: BTreeMap<String, u64> = BTreeMap::new();
    let t0 = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let mut issued = 0u64;
    while issued < a.n || !inflight.is_empty() {
        while issued < a.n && inflight.len() < a.window.max(1) {
            inflight.push(pool.spawn(Spawn::new("bench.noop", Value::Null)));
            issued += 1;
        }
        if let Some(s) = inflight.next().await {
            let s = s.map_err(|e| e.to_string())?;
            *nodes.entry(s.node).or_default() += 1;
        }
    }
    Ok(json!({"ns": ns(t0), "nodes": nodes}))
}

fn functions() -> Functions {
    let mut f = Functions::new();
    f.register("bench.noop", |_ctx, _: Value| async {});
    f.register("bench.reply", |ctx: Ctx, a: ReplyArgs| async move {
        ctx.send(a.to, 0u64);
    });
    f.register("bench.sink", sink);
    f.register("bench.source", source);
    f.register("bench.pong", |ctx, _: Value| pong(ctx));
    f.register("bench.rtt", rtt);
    f.register("bench.spawner", spawner);
    f.register("bench.pool_spawner", pool_spawner);
    f
}

async fn run(flags: Flags) -> Result<(), String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cookie_file = std::env::var_os("POOL_COOKIE_FILE").map(PathBuf::from);
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    let cookie = pool_proto::cookie::resolve_cookie(
        cookie_file.as_deref(),
        env_cookie.as_deref(),
        home.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let name: String = flags.value("name", String::new());
    let master: String = flags.value("master", String::new());
    if name.is_empty() || master.is_empty() {
        return Err("--name and --master are required".into());
    }
    let listen: String = flags.value("listen", "127.0.0.1:0".to_owned());
    let mut config = NodeConfig::worker(name, master, cookie);
    config.process_threads = flags.value("threads", config.process_threads).max(1);
    // A remote sender that yields is held at the connection's busy limit;
    // the diagnostic sender that never yields queues its whole burst (about
    // 20 MiB for a million small messages), within the default --peer-queue.
    config.peer_queue = flags.value("peer-queue", config.peer_queue);
    let listener = std::net::TcpListener::bind(&listen).map_err(|e| format!("{listen}: {e}"))?;
    let node = Node::builder(config)
        .functions(functions())
        .listener(listener)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let _ = POOL.set(node.pool());
    eprintln!(
        "bench_worker {} running at {} as {} (pid {})",
        node.pool().node_name(),
        node.addr(),
        node.id(),
        std::process::id()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    node.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let flags = Flags::from_env(USAGE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_worker: {e}");
            ExitCode::FAILURE
        }
    }
}
