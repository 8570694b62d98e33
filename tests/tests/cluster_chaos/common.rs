//! Helpers of the `cluster_chaos` tests: clusters with `--node-timeout 2s`
//! (on loopback, or in the network namespaces of a
//! [`Hub`](pool_cluster_tests::netns::Hub)), tree files, a look at a tree
//! as it runs (every entry once, where `tree show` says), and log reading.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
pub(crate) use pool_cluster_tests::text::{strip_ansi, tail, write_tree};
use pool_cluster_tests::{Cluster, Ctl, app_processes, duplicates, free_port, wait_until};
use pool_proto::Pid;

/// The master's node timeout in these tests (the setting).
pub(crate) const NODE_TIMEOUT: &str = "2s";

/// How long a tree may take to run again after a fault is over: debug
/// binaries on a loaded 2-core machine, so generous, but bounded.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);

/// The log filter that makes a worker log every process exit (with its pid
/// and reason).
pub(crate) const EXIT_LOG: &str = "info,supervisor::runtime=debug";

/// The workers' log filter: [`EXIT_LOG`], or `CHAOS_WORKER_LOG` (which
/// must keep `supervisor::runtime=debug`) to read a failed run.
fn log_filter() -> String {
    std::env::var("CHAOS_WORKER_LOG").unwrap_or_else(|_| EXIT_LOG.to_owned())
}

/// A cluster whose master will run with `--node-timeout 2s` (not started).
pub(crate) fn new_cluster() -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), NODE_TIMEOUT.into()];
    Ok(c)
}

/// A master with `--node-timeout 2s` on loopback and these stock workers
/// (name, extra flags), all joined.
pub(crate) fn start_cluster(workers: &[(&str, &[&str])]) -> Result<Cluster> {
    let mut c = new_cluster()?;
    c.start_master()?;
    for (name, args) in workers {
        c.start_worker(name, args)?;
    }
    c.wait_nodes(workers.len())?;
    Ok(c)
}

/// As [`start_cluster`], with `test-worker`s (the `test.*` functions, e.g.
/// `test.named`).
pub(crate) fn start_test_cluster(workers: &[(&str, &[&str])]) -> Result<Cluster> {
    let mut c = new_cluster()?;
    c.start_master()?;
    for (name, args) in workers {
        c.start_test_worker(name, args)?;
    }
    c.wait_nodes(workers.len())?;
    Ok(c)
}

/// Starts (or restarts, on the same address and state directory) the
/// master under `wrapper` (inside its namespace), and waits until
/// `poolctl` run there gets an answer.
pub(crate) fn start_master_in(c: &mut Cluster, wrapper: &[String]) -> Result<()> {
    let mut cmd = c.command_in(wrapper, "pool-master");
    cmd.args(["--listen", &c.master_addr, "--http", &c.http_addr])
        .arg("--state-dir")
        .arg(c.state_dir())
        .args(&c.master_args);
    c.master = Some(pool_cluster_tests::Proc::start("pool-master", cmd)?);
    let ctl = c.ctl_in(wrapper.to_vec());
    wait_until("the master to answer", Duration::from_secs(20), || {
        ctl.nodes().ok()
    })
    .map_err(|e| anyhow!("{e}; master log:\n{}", master_tail(c, 30)))?;
    Ok(())
}

/// Addresses for a master in a namespace whose address is `ip`.
pub(crate) fn master_addrs_on(c: &mut Cluster, ip: &str) {
    c.master_addr = format!("{ip}:{}", free_port());
    c.http_addr = format!("{ip}:{}", free_port());
}

/// Starts (or restarts: a new incarnation) worker `name` from binary `bin`
/// (`pool-worker` or `test-worker`) under `wrapper` (inside its network
/// namespace), listening on `ip`, reporting every 200 ms, with extra flags
/// and every process exit logged.
pub(crate) fn worker_in(
    c: &mut Cluster,
    wrapper: &[String],
    ip: &str,
    bin: &str,
    name: &str,
    extra: &[&str],
) -> Result<()> {
    let mut cmd = c.command_in(wrapper, bin);
    cmd.args(["--master", &c.master_addr, "--name", name])
        .args(["--listen", &format!("{ip}:0")])
        .args(["--report-interval", "200ms"])
        .args(extra)
        .env("RUST_LOG", log_filter());
    c.replace_worker(name, cmd)
}

// ----- tree files -------------------------------------------------------------

/// `, placement = P` for a TOML placement value (`"least-loaded"`,
/// `"local"`, `{ label = "zone=b" }`), or nothing.
fn placed(placement: &str) -> String {
    if placement.is_empty() {
        String::new()
    } else {
        format!(", placement = {placement}")
    }
}

/// A permanent `builtin.echo` child.
pub(crate) fn echo(id: &str, placement: &str) -> String {
    format!(
        "{{ id = \"{id}\", function = \"builtin.echo\", restart = \"permanent\"{} }}",
        placed(placement)
    )
}

/// A permanent `test.named` child holding the global name `name`.
pub(crate) fn named(id: &str, name: &str, placement: &str) -> String {
    format!(
        "{{ id = \"{id}\", function = \"test.named\", args = {{ name = \"{name}\" }}, restart = \"permanent\"{} }}",
        placed(placement)
    )
}

/// A permanent child running `function` with `args` (a TOML inline table).
pub(crate) fn worker(id: &str, function: &str, args: &str, placement: &str) -> String {
    format!(
        "{{ id = \"{id}\", function = \"{function}\", args = {args}, restart = \"permanent\"{} }}",
        placed(placement)
    )
}

/// A nested supervisor child (intensity 1000 per 10 s: the chaos rounds
/// restart many children at once, and that is not what they test).
pub(crate) fn sup(id: &str, placement: &str, strategy: &str, children: &[String]) -> String {
    format!(
        "{{ id = \"{id}\"{}, supervisor = {{ strategy = \"{strategy}\", intensity = 1000, period = \"10s\", children = [ {} ] }} }}",
        placed(placement),
        children.join(", ")
    )
}

// ----- a tree as it runs ----------------------------------------------------

/// Where each entry of an app runs: path (`app`, `app/sup/child`) → (pid,
/// node).
pub(crate) type Placed = BTreeMap<String, (Pid, String)>;

/// One look at app `app`: `Ok` if `tree ls` says `running`, every entry of
/// `tree show` is `running` on a node of `live`, and `poolctl ps` shows
/// exactly that pid for it, once, on that node, and nothing else of the
/// app; `Err(what is off)` otherwise.
pub(crate) fn look(ctl: &Ctl<'_>, app: &str, live: &[String]) -> Result<Placed, String> {
    let line = ctl.app(app).map_err(|e| e.to_string())?;
    if line.status != "running" {
        return Err(format!(
            "tree ls says {app} is {} ({:?})",
            line.status, line.reason
        ));
    }
    let view = ctl.show(app).map_err(|e| e.to_string())?;
    if view.status != "running" {
        return Err(format!(
            "tree show says {app} is {} ({:?})",
            view.status, view.reason
        ));
    }
    let mut at = Placed::new();
    for (path, e) in view.walk() {
        match (e.status.as_str(), e.pid, &e.node) {
            // The root's status is the app's, checked above.
            ("running", Some(pid), Some(node)) => {
                if !live.contains(node) {
                    return Err(format!("{path} is on {node}, not a live node"));
                }
                at.insert(path, (pid, node.clone()));
            }
            _ => {
                return Err(format!(
                    "{path} is {} (pid {:?}, reason {:?})",
                    e.status, e.pid, e.reason
                ));
            }
        }
    }
    let ps = ctl.ps().map_err(|e| e.to_string())?;
    let procs = app_processes(&ps, app);
    let dups = duplicates(&procs);
    if !dups.is_empty() {
        return Err(format!("running twice: {dups:?}"));
    }
    for (path, (pid, node)) in &at {
        match procs.get(path).and_then(|v| v.first()) {
            Some(p) if p.pid == *pid && p.node == *node => {}
            other => {
                return Err(format!(
                    "tree show says {path} is {pid} on {node}; ps shows {:?}",
                    other.map(|p| (p.pid, p.node.clone()))
                ));
            }
        }
    }
    let extra: Vec<&String> = procs.keys().filter(|k| !at.contains_key(*k)).collect();
    if !extra.is_empty() {
        return Err(format!("ps shows processes the tree does not: {extra:?}"));
    }
    Ok(at)
}

/// Waits until [`look`] passes for `app` (and `also` of what it saw).
pub(crate) fn wait_running(
    ctl: &Ctl<'_>,
    app: &str,
    live: &[String],
    timeout: Duration,
    mut also: impl FnMut(&Placed) -> Result<(), String>,
) -> Result<Placed> {
    let mut last = String::new();
    wait_until(&format!("tree {app} to run"), timeout, || {
        match look(ctl, app, live).and_then(|s| also(&s).map(|()| s)) {
            Ok(s) => Some(s),
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .map_err(|e| anyhow!("{e}: {last}"))
}

/// Makes the master's least-loaded choice avoid `nodes` for the next
/// placement: `n` idle `builtin.echo` processes on each, then waits until
/// their reports count them.
pub(crate) fn load_nodes(ctl: &Ctl<'_>, nodes: &[&str], n: usize) -> Result<()> {
    let procs = |v: &[serde_json::Value], name: &str| {
        v.iter()
            .find(|x| x["name"] == name)
            .and_then(|x| x["procs"].as_u64())
    };
    let before = ctl.nodes()?;
    let mut want = Vec::new();
    for node in nodes {
        let base = procs(&before, node).with_context(|| format!("{node} is not live"))?;
        want.push((*node, base + n as u64));
        for _ in 0..n {
            ctl.json(&["spawn", "builtin.echo", "{}", "--on", node])?;
        }
    }
    wait_until(
        &format!("reports of {n} more processes on {nodes:?}"),
        Duration::from_secs(10),
        || {
            let v = ctl.nodes().ok()?;
            want.iter()
                .all(|(name, at_least)| procs(&v, name).is_some_and(|p| p >= *at_least))
                .then_some(())
        },
    )
}

/// Starts the tree in `file` (app `app`) and waits until it runs on `live`
/// with its root on a node `root_ok` accepts; the master places roots by
/// load, so a root that lands elsewhere is stopped and the tree started
/// again (at most 5 times, each after every node has reported since).
pub(crate) fn start_tree_on(
    ctl: &Ctl<'_>,
    file: &Path,
    app: &str,
    live: &[String],
    root_ok: impl Fn(&str) -> bool,
) -> Result<Placed> {
    let file = file.to_str().context("a UTF-8 path")?;
    let mut tried = Vec::new();
    for _ in 0..5 {
        ctl.json(&["tree", "start", file])?;
        let s = wait_running(ctl, app, live, SETTLE, |_| Ok(()))?;
        let root = s.get(app).map(|(_, n)| n.clone()).unwrap_or_default();
        if root_ok(&root) {
            return Ok(s);
        }
        tried.push(root);
        ctl.json(&["tree", "stop", app])?;
        let stopped = Instant::now();
        wait_until(
            "a load report from every node",
            Duration::from_secs(5),
            || {
                let since = u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX);
                ctl.nodes()
                    .ok()?
                    .iter()
                    .all(|n| n["report_age_ms"].as_u64().is_some_and(|a| a < since))
                    .then_some(())
            },
        )?;
    }
    bail!("the root of {app} kept landing on unwanted nodes: {tried:?}")
}

/// The names as `Vec<String>`.
pub(crate) fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ----- logs -------------------------------------------------------------------

/// The last `n` lines of the master's log, leaving out the comings and
/// goings of `poolctl` clients.
pub(crate) fn master_tail(c: &Cluster, n: usize) -> String {
    let log = strip_ansi(&c.master_log());
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("poolctl-")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The log so far of the worker process `name` (colours stripped).
pub(crate) fn worker_log(c: &Cluster, name: &str) -> String {
    strip_ansi(
        &c.workers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.log())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The WARN lines of a log (colours stripped).
pub(crate) fn warn_lines(log: &str) -> Vec<String> {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains(" WARN "))
        .map(str::to_owned)
        .collect()
}

/// Whether a worker log at [`EXIT_LOG`] has the exit of `pid`.
pub(crate) fn has_exited(log: &str, pid: &Pid) -> bool {
    let needle = format!("pid={pid}");
    log.lines()
        .any(|l| l.contains("process exited") && l.contains(&needle))
}
