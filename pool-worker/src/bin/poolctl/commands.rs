//! One function per `poolctl` command, each using the Pool API of a hidden
//! node.

use std::collections::BTreeMap;
use std::time::Duration;

use pool_proto::{
    ExitReason, LabelReq, NodeId, Pid, PlaceQuery, ProcStatus, TraceHex, TraceId, TreeView,
};
use pool_worker::{Client, NodeHandle, Pool, Run, Spawn, Spawned};
use serde_json::{Value, json};

use crate::output::{self, Table, age, status};
use crate::{Cli, Command, ModuleCommand, TreeCommand, trace_id};

/// How a command failed: exit 2 for a usage error, 1 for a failed
/// operation.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments.
    Usage(String),
    /// The operation failed.
    Failed(String),
}

impl From<pool_worker::Error> for Failure {
    fn from(e: pool_worker::Error) -> Self {
        Failure::Failed(e.to_string())
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn failed(msg: impl Into<String>) -> Failure {
    Failure::Failed(msg.into())
}

fn parse_pid(s: &str) -> Result<Pid, Failure> {
    s.parse()
        .map_err(|e: pool_proto::ParseIdError| usage(e.to_string()))
}

fn parse_json(s: Option<&str>) -> Result<Value, Failure> {
    match s {
        None => Ok(json!({})),
        Some(s) => serde_json::from_str(s).map_err(|e| usage(format!("invalid JSON {s:?}: {e}"))),
    }
}

fn parse_labels(items: &[String]) -> Result<Vec<LabelReq>, Failure> {
    items
        .iter()
        .map(|l| LabelReq::parse(l).map_err(|e| usage(e.to_string())))
        .collect()
}

/// Joins as a hidden node named `poolctl-HOST-PID-RANDOM`, from the
/// flags (each of which also reads its `POOL_*` variable).
async fn connect(cli: &Cli) -> Result<NodeHandle, Failure> {
    let mut client = Client::new()
        .name_prefix("poolctl")
        .master(cli.master.clone())
        .tls_files(pool_proto::tls::TlsFiles {
            cert: cli.tls_cert.clone(),
            key: cli.tls_key.clone(),
            ca: cli.tls_ca.clone(),
        })
        .max_frame(cli.max_frame)
        .connect_timeout(cli.connect_timeout);
    if let Some(file) = &cli.cookie_file {
        client = client.cookie_file(file);
    }
    client.connect().await.map_err(Failure::from)
}

/// Runs the command of `cli`.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    // Arguments are checked before connecting: a usage error is one
    // whatever the state of the pool.
    check_args(&cli.command)?;
    let node = connect(&cli).await?;
    let pool = node.pool();
    let result = dispatch(&cli, &pool).await;
    node.shutdown().await;
    result
}

/// Every argument that can be checked without the pool.
fn check_args(command: &Command) -> Result<(), Failure> {
    match command {
        Command::Place { labels, .. } => parse_labels(labels).map(drop),
        Command::Spawn {
            args,
            labels,
            count,
            ..
        } => {
            parse_json(args.as_deref())?;
            parse_labels(labels)?;
            if *count == 0 {
                return Err(usage("--count must be at least 1"));
            }
            Ok(())
        }
        Command::Send { pid, message, .. } => {
            parse_pid(pid)?;
            parse_json(Some(message)).map(drop)
        }
        Command::Call { pid, request, .. } => {
            parse_pid(pid)?;
            parse_json(Some(request)).map(drop)
        }
        Command::Kill { pid, .. } => parse_pid(pid).map(drop),
        Command::Tree(TreeCommand::Start { file }) if !file.exists() => {
            Err(usage(format!("no such tree file: {}", file.display())))
        }
        Command::Module(ModuleCommand::Push { file }) if !file.is_file() => {
            Err(usage(format!("no such module file: {}", file.display())))
        }
        _ => Ok(()),
    }
}

async fn dispatch(cli: &Cli, pool: &Pool) -> Result<(), Failure> {
    match &cli.command {
        Command::Nodes => nodes(cli, pool).await,
        Command::Place {
            count,
            key,
            labels,
            function,
        } => place(cli, pool, *count, key.clone(), labels, function.clone()).await,
        Command::Spawn {
            function,
            args,
            on,
            key,
            labels,
            wait,
            timeout,
            count,
            trace,
            fuel,
            memory,
            grant_dirs,
        } => {
            let mut spec = Spawn::new(function.clone(), parse_json(args.as_deref())?);
            spec.trace = announce_trace(*trace);
            if fuel.is_some() || memory.is_some() || !grant_dirs.is_empty() {
                spec = spec.sandbox(pool_proto::Sandbox {
                    fuel: *fuel,
                    memory: *memory,
                    dirs: grant_dirs.clone(),
                    env: Vec::new(),
                });
            }
            if let Some(n) = on {
                spec = spec.on(n.clone());
            }
            if let Some(k) = key {
                spec = spec.keyed(k.clone());
            }
            spec.labels = parse_labels(labels)?;
            if *count == 0 {
                return Err(usage("--count must be at least 1"));
            }
            let wait = wait.then_some(*timeout);
            if *count == 1 {
                spawn_one(cli, pool, spec, wait).await
            } else {
                spawn_many(cli, pool, spec, wait, *count).await
            }
        }
        Command::Ps { node } => ps(cli, pool, node.as_deref()).await,
        Command::Send {
            pid,
            message,
            trace,
        } => {
            let pid = parse_pid(pid)?;
            let msg = parse_json(Some(message))?;
            pool.send_traced(pid, msg, announce_trace(*trace)).await;
            if cli.json {
                output::json(&json!({"ok": true}));
            }
            Ok(())
        }
        Command::Call {
            pid,
            request,
            timeout,
            trace,
        } => {
            let pid = parse_pid(pid)?;
            let req = parse_json(Some(request))?;
            let reply = pool
                .call_traced(pid, req, *timeout, announce_trace(*trace))
                .await
                .map_err(|e| failed(format!("call to {pid} failed: {e}")))?;
            let value = reply
                .to_json()
                .map_err(|e| failed(format!("the reply is not JSON: {e}")))?;
            if cli.json {
                output::json(&value);
            } else {
                output::line(serde_json::to_string(&value).unwrap_or_default());
            }
            Ok(())
        }
        Command::Kill { pid, reason } => {
            let pid = parse_pid(pid)?;
            let reason: ExitReason = reason.parse().unwrap_or_else(|e| match e {});
            pool.exit(pid, reason);
            let pending = kill_pending(pool, pid).await;
            if cli.json {
                output::json(&json!({"ok": true, "pending": pending}));
            } else if pending {
                output::line("pending: the process has not reached an await point");
            }
            Ok(())
        }
        Command::Names => {
            let names = pool.names().await?;
            if cli.json {
                output::json(&names);
            } else {
                let mut t = Table::new(&["name", "pid", "node"]);
                for (n, p) in &names {
                    t.row(vec![n.clone(), p.to_string(), node_name(pool, p.node())]);
                }
                t.print();
            }
            Ok(())
        }
        Command::Tree(t) => tree(cli, pool, t).await,
        Command::Module(m) => module(cli, pool, m).await,
    }
}

/// Bytes a frame holds besides a pushed module's own: the request's
/// envelope, the file name's length aside (generous; the real figure is
/// under a hundred).
const PUSH_OVERHEAD: usize = 256;

/// `poolctl module push FILE` and `poolctl module ls`.
async fn module(cli: &Cli, pool: &Pool, command: &ModuleCommand) -> Result<(), Failure> {
    match command {
        ModuleCommand::Push { file } => {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| usage(format!("{} has no usable file name", file.display())))?;
            pool_proto::module::check_file_name(name).map_err(usage)?;
            let bytes = std::fs::read(file)
                .map_err(|e| failed(format!("cannot read {}: {e}", file.display())))?;
            let limit = cli.max_frame.saturating_sub(PUSH_OVERHEAD + name.len());
            if bytes.len() > limit {
                return Err(failed(format!(
                    "{} is {} bytes, over the {} bytes a module may have with the frame limit of {} (--max-frame / POOL_MAX_FRAME, the same on every node): make the module smaller (cargo build --release, wasm-opt -Oz) or raise the limit on the whole pool",
                    file.display(),
                    bytes.len(),
                    limit,
                    cli.max_frame
                )));
            }
            pool_proto::module::check_header(&bytes)
                .map_err(|why| failed(format!("{}: {why}", file.display())))?;
            let m = pool
                .push_module(name, bytes)
                .await
                .map_err(|e| failed(format!("push of {} refused: {e}", file.display())))?;
            if cli.json {
                output::json(&json!({"hash": m.hash, "file": m.file, "size": m.size}));
            } else {
                output::line(m.hash);
            }
            Ok(())
        }
        ModuleCommand::Ls => {
            let modules = pool.modules().await?;
            if cli.json {
                output::json(&modules);
                return Ok(());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let mut t = Table::new(&["hash", "file", "size", "pushed"]);
            for m in &modules {
                t.row(vec![
                    format!("{}…", m.hash.short()),
                    m.file.clone(),
                    pool_proto::format_size(m.size),
                    format!("{} ago", age(now.saturating_sub(m.pushed_at))),
                ]);
            }
            t.print();
            Ok(())
        }
    }
}

/// How long `poolctl kill` waits for the process to end before it asks
/// whether the kill is pending.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// After an exit signal to `pid`: true if the process has not ended within
/// [`KILL_GRACE`] and its node lists it as `exiting` — the signal decided
/// its death, but it is computing and has not reached an await point
/// (scheduling is cooperative: it dies at its next one). A process that
/// trapped the signal, or ignored it, is not pending.
async fn kill_pending(pool: &Pool, pid: Pid) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.runtime().spawn(move |mut ctx| async move {
        // Sent after the signal, on the same ordered way to the node.
        let mref = ctx.monitor(pid);
        let ended = ctx.wait_down(mref, Some(KILL_GRACE)).await.is_some();
        let _ = tx.send(ended);
    });
    if rx.await.unwrap_or(true) {
        return false;
    }
    let Some(node) = pool.node_name_of(pid.node()) else {
        return false;
    };
    pool.processes(Some(&node)).await.is_ok_and(|procs| {
        procs
            .iter()
            .any(|p| p.pid == pid && p.status == ProcStatus::Exiting)
    })
}

/// The trace id of `--trace[=ID]`, announced on stderr (the id is the
/// handle for `grep trace=<hex>` over the nodes' logs, and a random one is
/// known nowhere else).
fn announce_trace(opt: Option<Option<TraceId>>) -> Option<TraceId> {
    let trace = trace_id(opt);
    if let Some(id) = trace {
        eprintln!("trace={}", TraceHex(id));
    }
    trace
}

fn node_name(pool: &Pool, id: NodeId) -> String {
    pool.node_name_of(id).unwrap_or_else(|| id.to_string())
}

async fn nodes(cli: &Cli, pool: &Pool) -> Result<(), Failure> {
    let nodes = pool.nodes().await?;
    if cli.json {
        output::json(&nodes);
        return Ok(());
    }
    let mut t = Table::new(&[
        "name", "id", "addr", "cpu", "mem", "procs", "score", "labels",
    ]);
    for n in &nodes {
        let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.row(vec![
            n.name.clone(),
            n.id.to_string(),
            n.addr.clone(),
            format!("{:.0}%", n.cpu),
            format!("{:.0}%", n.mem),
            n.procs.to_string(),
            format!("{:.2}", n.score),
            labels.join(","),
        ]);
    }
    t.print();
    // A node its peers cannot connect to is up for the master but of no
    // use to the others: one line each, grouped by cause.
    for n in &nodes {
        let mut by_cause: Vec<(&str, Vec<&str>)> = Vec::new();
        for u in &n.unreachable_from {
            match by_cause.iter_mut().find(|(c, _)| *c == u.cause) {
                Some((_, from)) => from.push(&u.from),
                None => by_cause.push((&u.cause, vec![&u.from])),
            }
        }
        for (cause, from) in by_cause {
            println!("{} unreachable from {}: {cause}", n.name, from.join(", "));
        }
    }
    Ok(())
}

async fn place(
    cli: &Cli,
    pool: &Pool,
    count: u32,
    key: Option<String>,
    labels: &[String],
    function: Option<String>,
) -> Result<(), Failure> {
    let q = PlaceQuery {
        count,
        key,
        labels: parse_labels(labels)?,
        function,
        commit: false,
        ..PlaceQuery::default()
    };
    let placed = pool.place(q).await?;
    let names: Vec<String> = placed.iter().map(|p| p.name.clone()).collect();
    if cli.json {
        output::json(&json!({ "nodes": names }));
    } else {
        for n in names {
            output::line(n);
        }
    }
    Ok(())
}

fn result_json(result: Option<supervisor::Message>) -> Value {
    result.and_then(|m| m.to_json().ok()).unwrap_or(Value::Null)
}

/// How a spawn waited for (`--wait`) went.
enum Waited {
    /// The process ended: how, and its result.
    Ended(Spawned, ExitReason, Option<supervisor::Message>),
    /// `--timeout` expired first; the process goes on running.
    Running(Spawned),
}

/// Spawns and waits for the process to end, for at most `limit` if given
/// (a local process spawns it monitored, reports the pid at once, then its
/// exit).
async fn run_until(pool: &Pool, spec: Spawn, limit: Option<Duration>) -> Result<Waited, Failure> {
    let Some(limit) = limit else {
        let Run {
            spawned,
            reason,
            result,
            ..
        } = pool.run_spec(spec).await?;
        return Ok(Waited::Ended(spawned, reason, result));
    };
    let deadline = tokio::time::Instant::now() + limit;
    let (spawned_tx, spawned_rx) = tokio::sync::oneshot::channel();
    let (down_tx, down_rx) = tokio::sync::oneshot::channel();
    let p = pool.clone();
    pool.runtime().spawn(move |mut ctx| async move {
        let me = ctx.pid();
        match p.spawn(spec.monitor_with_result(me)).await {
            Err(e) => {
                let _ = spawned_tx.send(Err(e));
            }
            Ok(s) => {
                let mref = s.mref;
                let _ = spawned_tx.send(Ok(s));
                if let Some(mref) = mref {
                    let down = ctx.wait_down(mref, None).await;
                    let _ = down_tx.send(down);
                }
            }
        }
    });
    let expired = || {
        failed(format!(
            "the spawn was not answered within --timeout {}: the pool is busy or the master unreachable; try a longer --timeout",
            pool_proto::format_duration(limit)
        ))
    };
    let s = match tokio::time::timeout_at(deadline, spawned_rx).await {
        Err(_) => return Err(expired()),
        Ok(Err(_)) => return Err(Failure::from(pool_worker::Error::ShuttingDown)),
        Ok(Ok(spawned)) => spawned?,
    };
    match tokio::time::timeout_at(deadline, down_rx).await {
        Err(_) => Ok(Waited::Running(s)),
        Ok(Ok(Some(d))) => Ok(Waited::Ended(s, d.reason, d.result)),
        Ok(_) => Ok(Waited::Ended(s, ExitReason::Killed, None)),
    }
}

/// The error of a `--wait --timeout` that expired with `s` still running.
fn still_running(s: &Spawned, limit: Option<Duration>) -> String {
    format!(
        "{} on {} is still running after --timeout {}: it goes on running; `poolctl kill {}` stops it",
        s.pid,
        s.node,
        limit.map(pool_proto::format_duration).unwrap_or_default(),
        s.pid
    )
}

/// `wait`: `None` without `--wait`, else `Some(--timeout)`.
async fn spawn_one(
    cli: &Cli,
    pool: &Pool,
    spec: Spawn,
    wait: Option<Option<Duration>>,
) -> Result<(), Failure> {
    let Some(limit) = wait else {
        let s = pool.spawn(spec).await?;
        if cli.json {
            output::json(&json!({"pid": s.pid, "node": s.node}));
        } else {
            output::line(s.pid);
        }
        return Ok(());
    };
    let (s, reason, result) = match run_until(pool, spec, limit).await? {
        Waited::Ended(s, reason, result) => (s, reason, result),
        Waited::Running(s) => {
            if cli.json {
                output::json(&json!({"pid": s.pid, "node": s.node, "running": true}));
            } else {
                output::line(s.pid);
                output::line(format!("node: {}", s.node));
            }
            return Err(failed(still_running(&s, limit)));
        }
    };
    let result = result_json(result);
    if cli.json {
        output::json(&json!({"pid": s.pid, "node": s.node, "reason": reason, "result": result}));
    } else {
        output::line(s.pid);
        output::line(format!("node: {}", s.node));
        output::line(format!("exit: {}", reason));
        if !result.is_null() {
            output::line(format!("result: {result}"));
        }
    }
    if reason.is_normal() {
        Ok(())
    } else {
        Err(failed(format!("{} exited abnormally: {reason}", s.pid)))
    }
}

/// Spawns `count` copies, a few at a time, with a progress bar on a
/// terminal; ends with the pids, where they ran and (with --wait) how
/// they exited. `wait`: `None` without `--wait`, else `Some(--timeout)`.
async fn spawn_many(
    cli: &Cli,
    pool: &Pool,
    spec: Spawn,
    wait: Option<Option<Duration>>,
    count: u32,
) -> Result<(), Failure> {
    use futures_util::StreamExt;
    let bar = indicatif::ProgressBar::new(count as u64);
    if cli.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} [{bar:30}] {per_sec} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(if wait.is_some() {
        "spawned and finished"
    } else {
        "spawned"
    });
    let results: Vec<Result<Value, String>> = futures_util::stream::iter(0..count)
        .map(|_| {
            let spec = spec.clone();
            let bar = bar.clone();
            async move {
                let r = match wait {
                    Some(limit) => match run_until(pool, spec, limit).await {
                        Ok(Waited::Ended(s, reason, result)) => Ok(
                            json!({"pid": s.pid, "node": s.node, "reason": reason, "result": result_json(result)}),
                        ),
                        Ok(Waited::Running(s)) => Err(still_running(&s, limit)),
                        Err(Failure::Failed(e) | Failure::Usage(e)) => Err(e),
                    },
                    None => pool
                        .spawn(spec)
                        .await
                        .map(|s| json!({"pid": s.pid, "node": s.node}))
                        .map_err(|e| e.to_string()),
                };
                bar.inc(1);
                r
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    bar.finish_and_clear();

    let mut by_node: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut ok = Vec::new();
    for r in results {
        match r {
            Ok(v) => {
                *by_node
                    .entry(v["node"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
                if let Some(reason) = v.get("reason").and_then(Value::as_str) {
                    *by_reason.entry(reason.to_owned()).or_default() += 1;
                }
                ok.push(v);
            }
            Err(e) => *errors.entry(e).or_default() += 1,
        }
    }
    if cli.json {
        output::json(
            &json!({"spawned": ok, "by_node": by_node, "by_reason": by_reason, "errors": errors}),
        );
    } else {
        let mut t = if wait.is_some() {
            Table::new(&["pid", "node", "exit"])
        } else {
            Table::new(&["pid", "node"])
        };
        for v in &ok {
            let mut row = vec![
                v["pid"].as_str().unwrap_or("?").to_owned(),
                v["node"].as_str().unwrap_or("?").to_owned(),
            ];
            if let Some(reason) = v.get("reason").and_then(Value::as_str) {
                row.push(reason.to_owned());
            }
            t.row(row);
        }
        t.print();
        output::line(format!("{} of {count} spawned", ok.len()));
        let mut t = Table::new(&["node", "processes"]);
        for (n, c) in &by_node {
            t.row(vec![n.clone(), c.to_string()]);
        }
        t.print();
        if wait.is_some() {
            let mut t = Table::new(&["exit", "processes"]);
            for (r, c) in &by_reason {
                t.row(vec![r.clone(), c.to_string()]);
            }
            t.print();
        }
        for (e, c) in &errors {
            eprintln!("{c} failed: {e}");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "{} of {count} spawns failed",
            count as usize - ok.len()
        )))
    }
}

async fn ps(cli: &Cli, pool: &Pool, node: Option<&str>) -> Result<(), Failure> {
    let procs = pool.processes(node).await?;
    if cli.json {
        output::json(&procs);
        return Ok(());
    }
    let mut t = Table::new(&["pid", "node", "function", "age", "status", "owner"]);
    for p in &procs {
        t.row(vec![
            p.pid.to_string(),
            p.node.clone(),
            p.function.clone(),
            age(p.age_ms),
            status(&p.status.to_string()),
            p.owner.clone().unwrap_or_default(),
        ]);
    }
    t.print();
    Ok(())
}

async fn tree(cli: &Cli, pool: &Pool, cmd: &TreeCommand) -> Result<(), Failure> {
    match cmd {
        TreeCommand::Start { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| failed(format!("cannot read {}: {e}", file.display())))?;
            let source = file.display().to_string();
            // Syntax and shape errors are found here, with the line; the
            // master checks the functions against the live workers.
            let spec = pool_proto::tree::parse_tree_str(&source, &text, |_| true)
                .map_err(|e| failed(e.to_string()))?;
            let apps = pool.tree_start(spec, Some(source), Some(text)).await?;
            print_apps(cli, &apps);
            Ok(())
        }
        TreeCommand::Ls => {
            let apps = pool.tree_list().await?;
            print_apps(cli, &apps);
            Ok(())
        }
        TreeCommand::Show { id } => {
            let view = pool.tree_show(id).await?;
            if cli.json {
                output::json(&view);
            } else {
                print_tree(&view, "", true, true);
            }
            Ok(())
        }
        TreeCommand::Stop { id } => {
            let apps = pool.tree_stop(id).await?;
            print_apps(cli, &apps);
            Ok(())
        }
        TreeCommand::Restart { id } => {
            let apps = pool.tree_restart(id).await?;
            print_apps(cli, &apps);
            Ok(())
        }
        TreeCommand::Rm { id } => {
            let apps = pool.tree_remove(id).await?;
            print_apps(cli, &apps);
            Ok(())
        }
    }
}

fn print_apps(cli: &Cli, apps: &[pool_proto::AppSummary]) {
    if cli.json {
        output::json(apps);
        return;
    }
    let mut t = Table::new(&["id", "root", "node", "status", "reason"]);
    for a in apps {
        t.row(vec![
            a.id.clone(),
            a.root.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            a.node.clone().unwrap_or_else(|| "-".into()),
            status(a.status.as_str()),
            a.reason.clone().unwrap_or_default(),
        ]);
    }
    t.print();
}

/// Prints a tree with box-drawing branches.
fn print_tree(v: &TreeView, prefix: &str, last: bool, root: bool) {
    let branch = if root {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let what = match v.strategy {
        Some(s) => format!("{} ({s})", v.id),
        None => v.id.clone(),
    };
    let pid = v.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let node = v.node.clone().unwrap_or_else(|| "-".into());
    output::line(format!(
        "{prefix}{branch}{what}  {pid} on {node}  {}  restarts {}",
        status(&format!("{:?}", v.status).to_lowercase()),
        v.restarts
    ));
    if let Some(children) = &v.children {
        let child_prefix = if root {
            String::new()
        } else {
            format!("{prefix}{}", if last { "   " } else { "│  " })
        };
        for (i, c) in children.iter().enumerate() {
            print_tree(c, &child_prefix, i + 1 == children.len(), false);
        }
    }
}
