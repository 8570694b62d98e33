//! `test-worker`: the stock worker's built-ins plus test-only functions,
//! for the cluster tests that poolctl alone cannot reach (links, monitors
//! and exit signals between nodes, a non-yielding spinner, global names).
//!
//! It is built on the pool-worker library exactly as a user's worker would
//! be (DESIGN.md "Users register their own functions by building a worker
//! with the pool-worker library").
//!
//! ```text
//! test-worker --master ADDR --name NAME [--listen ADDR] [--threads N]
//!             [--capacity N] [--label K=V]... [--report-interval DUR]
//!             [--cookie-file FILE]        (else POOL_COOKIE_FILE, POOL_COOKIE, ~/.spawnpool/cookie)
//!             [--tls-cert FILE --tls-key FILE --tls-ca FILE]
//!             [--max-frame BYTES] [--peer-queue BYTES]   (as pool-worker's)
//! ```
//!
//! | function | args | behaviour |
//! |---|---|---|
//! | `test.watch` | `{pid?, link?, monitor?, trap?, sync?, send_to?, send_count?}` | traps exits if `trap`, links to and/or monitors `pid` (then, with `sync`, calls it once so both are in place there), sends `0..send_count` to `send_to`; records every message, exit signal and DOWN it receives; answers any call with `{"events": [...]}` |
//! | `test.call` | `{pid, req, timeout_ms?}` | calls `pid` from this node; ends normally with `{"reply": R}` or `{"error": "noproc"}` (the exit reason, or `timeout`) |
//! | `test.spin` | `{ms}` | computes for `ms` without ever yielding: its thread is held |
//! | `test.yield_busy` | `{ms}` | computes for `ms`, calling `Ctx::yield_now` every millisecond (as user code should) |
//! | `test.named` | `{name}` | registers `name` globally, then answers calls like `builtin.echo` |
//! | `test.unit` | none (`()`: `{}`, `null` or nothing) | a typed function (`UNIT`): ends normally with result `"no arguments needed"` |
//!
//! Every recorded event carries `at_ms`, the wall clock (Unix ms) when the
//! process took it from its mailbox, so a test can tell how quickly a
//! signal arrived.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use pool_proto::{ExitReason, Labels, Pid};
use pool_worker::{Node, NodeConfig, Pool};
use serde::Deserialize;
use serde_json::{Value, json};
use supervisor::{CallError, Ctx, Envelope, Function, Functions};

/// `test.unit`: a typed function whose argument is `()`, so that a cluster
/// test can spawn it with poolctl's default arguments.
const UNIT: Function<(), String> = Function::new("test.unit");

/// The node's Pool API, for functions that need the master (global names).
static POOL: OnceLock<Pool> = OnceLock::new();

/// `test.watch` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchArgs {
    /// The process to link to and/or monitor.
    #[serde(default)]
    pid: Option<Pid>,
    /// Link to `pid`.
    #[serde(default)]
    link: bool,
    /// Monitor `pid`.
    #[serde(default)]
    monitor: bool,
    /// Trap exits (before linking).
    #[serde(default)]
    trap: bool,
    /// Send `0..send_count` to this pid at start.
    #[serde(default)]
    send_to: Option<Pid>,
    /// How many messages to send to `send_to` (default 1).
    #[serde(default)]
    send_count: Option<u32>,
    /// After linking/monitoring, call `pid` once (an echo) and wait for the
    /// reply: the link and monitor travel on the same ordered stream as the
    /// call, so they are in place at the target when the recorder starts
    /// answering calls.
    #[serde(default)]
    sync: bool,
}

/// `test.call` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallArgs {
    /// The callee.
    pid: Pid,
    /// The request.
    #[serde(default)]
    req: Value,
    /// How long to wait (default 5000).
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `test.spin` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinArgs {
    /// Milliseconds to hold the thread.
    ms: u64,
}

/// `test.named` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedArgs {
    /// The global name.
    name: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The recorder: see the module docs.
async fn watch(mut ctx: Ctx, args: WatchArgs) -> ExitReason {
    let mut events: Vec<Value> = Vec::new();
    ctx.trap_exit(args.trap);
    if let Some(pid) = args.pid {
        if args.link
            && let Err(e) = ctx.link(pid)
        {
            // OTP: a non-trapping caller of link/1 on a dead process gets
            // `noproc` (and dies of it here).
            if !args.trap {
                return ExitReason::NoProc;
            }
            events.push(json!({"kind": "link_error", "error": e.to_string(), "at_ms": now_ms()}));
        }
        if args.monitor {
            ctx.monitor(pid);
        }
        if args.sync {
            let _ = ctx.call(pid, "sync", Duration::from_secs(5)).await;
        }
    }
    if let Some(to) = args.send_to {
        for i in 0..args.send_count.unwrap_or(1) {
            ctx.send(to, i);
        }
    }
    loop {
        match ctx.recv().await {
            Envelope::Call(call) => {
                ctx.reply(&call, &json!({ "events": events }));
            }
            Envelope::Message { from, msg } => {
                let value = msg.to_json().unwrap_or(Value::Null);
                events
                    .push(json!({"kind": "msg", "from": from, "value": value, "at_ms": now_ms()}));
            }
            Envelope::Exit { from, reason } => {
                events.push(json!({"kind": "exit", "from": from, "reason": reason.to_string(), "at_ms": now_ms()}));
            }
            Envelope::Down(d) => {
                events.push(json!({"kind": "down", "pid": d.pid, "reason": d.reason.to_string(), "at_ms": now_ms()}));
            }
            Envelope::Reply { .. } => {}
        }
    }
}

/// A call from this node: the reply, or why there is none.
async fn call(mut ctx: Ctx, args: CallArgs) -> Result<Value, ExitReason> {
    let timeout = Duration::from_millis(args.timeout_ms.unwrap_or(5000));
    Ok(match ctx.call(args.pid, args.req, timeout).await {
        Ok(reply) => json!({ "reply": reply.to_json().unwrap_or(Value::Null) }),
        Err(CallError::Exit(reason)) => json!({ "error": reason.to_string() }),
        Err(CallError::Timeout(_)) => json!({ "error": "timeout" }),
    })
}

/// Holds its thread for `ms` without an await point.
async fn spin(args: SpinArgs) -> Result<u64, ExitReason> {
    let end = Instant::now() + Duration::from_millis(args.ms);
    let mut x = 0u64;
    while Instant::now() < end {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
    Ok(args.ms)
}

/// Burns CPU for `ms`, yielding with `Ctx::yield_now` every millisecond:
/// a CPU-bound process written as the runtime's docs say.
async fn yield_busy(ctx: supervisor::Ctx, args: SpinArgs) -> Result<u64, ExitReason> {
    let end = Instant::now() + Duration::from_millis(args.ms);
    let mut x = 0u64;
    while Instant::now() < end {
        let slice = Instant::now() + Duration::from_millis(1);
        while Instant::now() < slice {
            for i in 0..1000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        ctx.yield_now().await;
    }
    std::hint::black_box(x);
    Ok(args.ms)
}

/// Registers a global name, then echoes calls.
async fn named(mut ctx: Ctx, args: NamedArgs) -> Result<(), ExitReason> {
    let pool = POOL
        .get()
        .ok_or_else(|| ExitReason::Error("the node is not started".into()))?;
    let ok = pool
        .register_global(&args.name, ctx.pid())
        .await
        .map_err(|e| ExitReason::Error(e.to_string()))?;
    if !ok {
        return Err(ExitReason::Error(format!(
            "the global name {} is taken",
            args.name
        )));
    }
    loop {
        if let Envelope::Call(call) = ctx.recv().await {
            let req = call.msg.take::<Value>().unwrap_or(Value::Null);
            ctx.reply_to(call.from, call.mref, &req);
        }
    }
}

fn functions() -> Functions {
    let mut f = Functions::new();
    f.register("test.watch", watch);
    f.register("test.call", call);
    f.register("test.spin", |_ctx, args: SpinArgs| spin(args));
    f.register("test.yield_busy", |ctx, args: SpinArgs| {
        yield_busy(ctx, args)
    });
    f.register("test.named", named);
    f.add(&UNIT, |_ctx, ()| async move {
        Ok("no arguments needed".to_owned())
    });
    f
}

/// The flags the harness passes.
#[derive(Debug, Default)]
struct Args {
    master: Option<String>,
    name: Option<String>,
    listen: Option<String>,
    threads: Option<usize>,
    capacity: Option<u32>,
    labels: Vec<String>,
    report_interval: Option<String>,
    cookie_file: Option<PathBuf>,
    tls: pool_proto::tls::TlsFiles,
    max_frame: Option<u64>,
    peer_queue: Option<u64>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--master" => a.master = Some(value()?),
            "--name" => a.name = Some(value()?),
            "--listen" => a.listen = Some(value()?),
            "--threads" => a.threads = Some(value()?.parse().context("--threads")?),
            "--capacity" => a.capacity = Some(value()?.parse().context("--capacity")?),
            "--label" => a.labels.push(value()?),
            "--report-interval" => a.report_interval = Some(value()?),
            "--cookie-file" => a.cookie_file = Some(value()?.into()),
            "--tls-cert" => a.tls.cert = Some(value()?.into()),
            "--tls-key" => a.tls.key = Some(value()?.into()),
            "--tls-ca" => a.tls.ca = Some(value()?.into()),
            "--max-frame" => a.max_frame = Some(pool_proto::parse_size(&value()?)?),
            "--peer-queue" => a.peer_queue = Some(pool_proto::parse_size(&value()?)?),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cookie_file = args
        .cookie_file
        .or_else(|| std::env::var_os("POOL_COOKIE_FILE").map(PathBuf::from));
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    let cookie = pool_proto::cookie::resolve_cookie(
        cookie_file.as_deref(),
        env_cookie.as_deref(),
        home.as_deref(),
    )?;
    let name = args.name.context("--name is required")?;
    let master = args.master.context("--master is required")?;
    let mut config = NodeConfig::worker(name, master, cookie);
    if let Some(t) = args.threads {
        config.process_threads = t;
    }
    if let Some(c) = args.capacity {
        config.capacity = c;
    }
    if let Some(r) = &args.report_interval {
        config.report_interval = Some(pool_proto::parse_duration(r)?);
    }
    let mut labels = Labels::new();
    for l in &args.labels {
        let l = pool_proto::LabelReq::parse(l)?;
        labels.insert(l.key, l.value);
    }
    config.labels = labels;
    config.tls = args.tls.load()?;
    if let Some(n) = args.max_frame {
        config.max_frame_len = usize::try_from(n)?;
    }
    if let Some(n) = args.peer_queue {
        config.peer_queue = usize::try_from(n)?;
    }
    let listen = args.listen.unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = std::net::TcpListener::bind(&listen)
        .with_context(|| format!("binding the peer listener on {listen}"))?;
    let node = Node::builder(config)
        .functions(functions())
        .listener(listener)
        .start()
        .await?;
    let _ = POOL.set(node.pool());
    eprintln!("test-worker running at {} as {}", node.addr(), node.id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    node.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("test-worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("test-worker: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
