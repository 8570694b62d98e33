//! `chaos-client`: a user of the pool during the chaos test. It joins as a
//! hidden node (as `poolctl` does) and, in a loop, looks up each global name
//! in turn and calls the process holding it with a sequence number,
//! expecting it back (the named processes answer like `builtin.echo`).
//! Every outcome is counted; the counts go to a JSON file that the test
//! reads between rounds:
//!
//! ```text
//! {"ok": N, "failed": N, "last_error": "..." | null, "last_ok_unix_ms": N}
//! ```
//!
//! ```text
//! chaos-client --master ADDR --cookie-file FILE --out FILE --name NAME [--name NAME]...
//! ```
//!
//! Calls may fail while the pool is being hurt; the test asks that they
//! succeed again after each recovery. If the client's node cannot join (the
//! master is down or cut off when it starts) it tries again; once joined,
//! the node reconnects by itself. A client that stays disconnected for
//! 5 s is started afresh.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use pool_worker::{Node, NodeConfig, NodeHandle};
use serde_json::json;

/// How long one lookup-and-call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between two calls: a steady trickle, not a load test.
const PACE: Duration = Duration::from_millis(50);

/// A node disconnected this long is replaced by a fresh one.
const STALE: Duration = Duration::from_secs(5);

/// What the command line says.
#[derive(Debug)]
struct Args {
    /// The master's address.
    master: String,
    /// The pool's cookie file.
    cookie: PathBuf,
    /// Where the counts go.
    out: PathBuf,
    /// The global names to call, in turn.
    names: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let (mut master, mut cookie, mut out, mut names) = (None, None, None, Vec::new());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--master" => master = Some(value()?),
            "--cookie-file" => cookie = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--name" => names.push(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    if names.is_empty() {
        bail!("give at least one --name");
    }
    Ok(Args {
        master: master.context("--master is required")?,
        cookie: cookie.context("--cookie-file is required")?,
        out: out.context("--out is required")?,
        names,
    })
}

/// The counts written to `--out`.
#[derive(Debug, Default)]
struct Counts {
    /// Calls answered with the request.
    ok: u64,
    /// Lookups or calls that failed (or answered something else).
    failed: u64,
    /// The last failure, in words.
    last_error: Option<String>,
    /// When the last call succeeded (Unix ms).
    last_ok_unix_ms: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes the counts whole (a temporary file renamed over the old one), so
/// that a reader never sees half a document.
fn write_counts(out: &Path, c: &Counts) -> Result<()> {
    let tmp = out.with_extension("tmp");
    let doc = json!({
        "ok": c.ok,
        "failed": c.failed,
        "last_error": c.last_error,
        "last_ok_unix_ms": c.last_ok_unix_ms,
    });
    std::fs::write(&tmp, doc.to_string())?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// A hidden node joined to the pool.
async fn join(args: &Args, attempt: u64) -> Result<NodeHandle> {
    let cookie = pool_proto::cookie::read_cookie_file(&args.cookie)?;
    let name = format!("chaos-client-{}-{attempt}", std::process::id());
    let mut config = NodeConfig::hidden(name, args.master.clone(), cookie);
    config.request_timeout = CALL_TIMEOUT;
    config.handshake_timeout = CALL_TIMEOUT;
    Ok(Node::builder(config).start().await?)
}

/// One lookup of `name` and one call with `seq`.
async fn call_once(node: &NodeHandle, name: &str, seq: u64) -> Result<()> {
    let pool = node.pool();
    let pid = pool
        .whereis(name)
        .await
        .with_context(|| format!("whereis {name}"))?
        .with_context(|| format!("no process holds the name {name}"))?;
    let reply = pool
        .call(pid, json!({ "seq": seq }), CALL_TIMEOUT)
        .await
        .with_context(|| format!("call to {name} ({pid})"))?;
    let value = reply.to_json().context("the reply is not JSON")?;
    if value != json!({ "seq": seq }) {
        bail!("{name} ({pid}) answered {value} to seq {seq}");
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let mut counts = Counts::default();
    let mut node: Option<NodeHandle> = None;
    let mut disconnected_since: Option<Instant> = None;
    let mut attempt = 0u64;
    let mut seq = 0u64;
    write_counts(&args.out, &counts)?;
    loop {
        for name in &args.names {
            if node.is_none() {
                attempt += 1;
                let joined = tokio::time::timeout(CALL_TIMEOUT * 2, join(&args, attempt))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the master did not answer in time")));
                match joined {
                    Ok(n) => node = Some(n),
                    Err(e) => {
                        counts.failed += 1;
                        counts.last_error = Some(format!("joining: {e:#}"));
                    }
                }
            }
            if let Some(n) = &node {
                seq += 1;
                let outcome = tokio::time::timeout(CALL_TIMEOUT * 2, call_once(n, name, seq))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("{name}: no answer in time")));
                match outcome {
                    Ok(()) => {
                        counts.ok += 1;
                        counts.last_ok_unix_ms = unix_ms();
                    }
                    Err(e) => {
                        counts.failed += 1;
                        counts.last_error = Some(format!("{e:#}"));
                    }
                }
                if n.is_connected() {
                    disconnected_since = None;
                } else if disconnected_since
                    .get_or_insert_with(Instant::now)
                    .elapsed()
                    > STALE
                {
                    if let Some(old) = node.take() {
                        old.abort();
                    }
                    disconnected_since = None;
                }
            }
            write_counts(&args.out, &counts)?;
            tokio::time::sleep(PACE).await;
        }
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chaos-client: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos-client: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-client: {e:#}");
            ExitCode::from(1)
        }
    }
}
