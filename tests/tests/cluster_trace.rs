//! Tracing across nodes: a request made with `poolctl --trace[=ID]` can be
//! followed with `grep trace=<hex>` through the logs of every node it
//! touches — the master's placement decision, the worker's spawn and the
//! messages that arrive there, and poolctl's own spawn, call and reply.
//!
//! The real binaries on loopback (the harness of `tests/src/lib.rs`); the
//! master logs at `info`, the workers at `info` with the runtime at
//! `debug` (traced messages are logged at debug where they arrive), and
//! poolctl at `info`.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use pool_cluster_tests::{Cluster, WorkerOpts, wait_until};
use serde_json::Value;

/// The log filter of the workers: traced messages arrive at debug.
const WORKER_LOG: &str = "info,supervisor::runtime=debug";

/// A master and two workers logging as the module doc says.
fn traced_cluster() -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    for name in ["w1", "w2"] {
        let opts = WorkerOpts {
            env: vec![("RUST_LOG".into(), WORKER_LOG.into())],
            ..WorkerOpts::default()
        };
        c.start_worker_with(name, &opts)?;
    }
    c.wait_nodes(2)?;
    Ok(c)
}

/// Runs `poolctl ARGS` with `RUST_LOG=info`; fails unless it succeeds.
fn poolctl(c: &Cluster, args: &[&str]) -> Result<Output> {
    let out = c
        .command("poolctl")
        .env("RUST_LOG", "info")
        .args(["--master", &c.master_addr])
        .args(args)
        .output()
        .context("running poolctl")?;
    if !out.status.success() {
        bail!(
            "poolctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The lines of `log` that carry the field `trace=<hex>`.
fn traced<'a>(log: &'a str, hex: &str) -> Vec<&'a str> {
    let field = format!("trace={hex}");
    log.lines().filter(|l| l.contains(&field)).collect()
}

/// Waits until `what`'s log (read by `log`) has a line with `trace=<hex>`
/// and every one of `words`; returns that line.
fn wait_traced(what: &str, hex: &str, words: &[&str], log: impl Fn() -> String) -> Result<String> {
    wait_until(
        &format!("{what} to log trace={hex} with {words:?}"),
        Duration::from_secs(10),
        || {
            traced(&log(), hex)
                .into_iter()
                .find(|l| words.iter().all(|w| l.contains(w)))
                .map(str::to_owned)
        },
    )
    .map_err(|e| anyhow!("{e}; its log:\n{}", log()))
}

/// The log of worker `name` so far.
fn worker_log(c: &Cluster, name: &str) -> String {
    c.workers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.log())
        .unwrap_or_default()
}

/// A traced spawn placed by the master is in three logs under one id: the
/// master's placement decision (trace, chosen node, strategy), the chosen
/// worker's spawn (with the new pid), and poolctl's spawn and result. The
/// id printed on poolctl's stderr is the one given, as 16 hex digits.
#[test]
fn traced_spawn_is_in_the_logs_of_master_worker_and_poolctl() -> Result<()> {
    let c = traced_cluster()?;
    let hex = "00000000c0ffee01";
    let out = poolctl(&c, &["--json", "spawn", "builtin.echo", "--trace=c0ffee01"])?;
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let pid = v["pid"].as_str().context("spawn printed a pid")?.to_owned();
    let node = v["node"]
        .as_str()
        .context("spawn printed a node")?
        .to_owned();
    let ctl = String::from_utf8_lossy(&out.stderr).into_owned();

    // poolctl: the id it announces, and its spawn with the answer.
    assert!(
        ctl.lines().any(|l| l == format!("trace={hex}")),
        "poolctl announces the trace id:\n{ctl}"
    );
    let spawned = traced(&ctl, hex);
    assert!(
        spawned
            .iter()
            .any(|l| l.contains("spawned") && l.contains(&pid) && l.contains(&node)),
        "poolctl logs the spawn's outcome with the trace:\n{ctl}"
    );

    // The master: the placement decision, the node it chose and why.
    wait_traced(
        "the master",
        hex,
        &["placed", &format!("nodes={node}"), "strategy="],
        || c.master_log(),
    )?;

    // The chosen worker: the spawn, with the pid poolctl got.
    wait_traced(
        &format!("worker {node}"),
        hex,
        &["spawning for another node", &pid],
        || worker_log(&c, &node),
    )?;
    let other = if node == "w1" { "w2" } else { "w1" };
    assert!(
        traced(&worker_log(&c, other), hex).is_empty(),
        "only the chosen worker saw the spawn"
    );
    Ok(())
}

/// A traced call carries its id in the request frame: the callee's worker
/// logs it where it arrives (debug), and poolctl logs the call and the
/// reply (info). A traced send with a random id (`--trace` alone) prints
/// that id, and the message arrives with it.
#[test]
fn traced_call_and_send_carry_the_id_to_the_callee_node() -> Result<()> {
    let c = traced_cluster()?;
    let (pid, node) = c.spawn(&["builtin.echo", "{}", "--on", "w2"])?;
    assert_eq!(node, "w2");

    let hex = "0123456789abcdef";
    let out = poolctl(
        &c,
        &[
            "--json",
            "call",
            &pid,
            "\"hello\"",
            &format!("--trace={hex}"),
        ],
    )?;
    let reply: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reply, "hello", "the echo's reply");
    let ctl = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = traced(&ctl, hex);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("calling") && l.contains(&pid)),
        "poolctl logs the call:\n{ctl}"
    );
    assert!(
        lines.iter().any(|l| l.contains("reply received")),
        "poolctl logs the reply:\n{ctl}"
    );
    wait_traced(
        "worker w2",
        hex,
        &["traced message from another node", &pid, "Call"],
        || worker_log(&c, "w2"),
    )?;

    // `--trace` alone: a random id, announced on stderr.
    let out = poolctl(&c, &["send", &pid, "\"ping\"", "--trace"])?;
    let ctl = String::from_utf8_lossy(&out.stderr).into_owned();
    let random = ctl
        .lines()
        .find_map(|l| l.strip_prefix("trace="))
        .with_context(|| format!("poolctl announces the random id:\n{ctl}"))?
        .to_owned();
    assert!(
        random.len() == 16 && random.chars().all(|ch| ch.is_ascii_hexdigit()),
        "16 hex digits: {random}"
    );
    assert!(
        traced(&ctl, &random).iter().any(|l| l.contains("sending")),
        "poolctl logs the send:\n{ctl}"
    );
    wait_traced(
        "worker w2",
        &random,
        &["traced message from another node", "Plain"],
        || worker_log(&c, "w2"),
    )?;
    assert!(
        traced(&worker_log(&c, "w1"), &random).is_empty(),
        "w1 never saw the message"
    );
    Ok(())
}

/// With `--log-json` (poolctl) and `POOL_LOG_JSON=1` (a worker), the same
/// trace is a `"trace": "<hex>"` field of JSON log lines.
#[test]
fn json_logs_carry_the_trace_as_a_field() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    let opts = WorkerOpts {
        env: vec![("POOL_LOG_JSON".into(), "1".into())],
        ..WorkerOpts::default()
    };
    c.start_worker_with("w1", &opts)?;
    c.wait_nodes(1)?;
    let hex = "00000000000000aa";
    let out = poolctl(&c, &["--log-json", "spawn", "builtin.echo", "--trace=aa"])?;
    let ctl = String::from_utf8_lossy(&out.stderr).into_owned();
    let has_trace = |line: &str| {
        serde_json::from_str::<Value>(line)
            .ok()
            .is_some_and(|v| v["fields"]["trace"] == hex)
    };
    assert!(
        ctl.lines().any(|l| has_trace(l) && l.contains("spawned")),
        "poolctl's JSON log has the trace field:\n{ctl}"
    );
    wait_until(
        "w1's JSON log to have the trace",
        Duration::from_secs(10),
        || {
            worker_log(&c, "w1")
                .lines()
                .any(|l| has_trace(l) && l.contains("spawning for another node"))
                .then_some(())
        },
    )
    .map_err(|e| anyhow!("{e}; w1's log:\n{}", worker_log(&c, "w1")))?;
    Ok(())
}
