//! Helpers of the `cluster_apps` tests: start a cluster with a short node
//! timeout, write tree files, wait until a tree runs as its view says,
//! watch for duplicates, read exit times from worker logs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
pub(crate) use pool_cluster_tests::text::{strip_ansi, tail, tree_toml, write_tree};
use pool_cluster_tests::{
    Cluster, WorkerOpts, app_processes, duplicates, tree_entries, wait_until,
};
use pool_proto::{AppStatus, ChildStatus, TreeView};

/// How long a failover (detection, restart, placement) may take in these
/// tests. Debug binaries on a loaded 2-core machine: generous, but bounded.
pub(crate) const FAILOVER: Duration = Duration::from_secs(30);

/// The log filter that makes a worker log every process exit (with its pid
/// and reason), for checking shutdown order.
pub(crate) const EXIT_LOG: &str = "info,supervisor::runtime=debug";

/// Worker options with these extra arguments.
pub(crate) fn opts(args: &[&str]) -> WorkerOpts {
    WorkerOpts::args(args)
}

/// Worker options with these extra arguments and every process exit logged.
pub(crate) fn traced(args: &[&str]) -> WorkerOpts {
    let mut o = WorkerOpts::args(args);
    o.env.push(("RUST_LOG".into(), EXIT_LOG.into()));
    o
}

/// A cluster whose master runs with `--node-timeout 1s` (plus `extra`), not
/// started yet.
pub(crate) fn new_cluster(extra: &[&str]) -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), "1s".into()];
    c.master_args.extend(extra.iter().map(|s| (*s).to_owned()));
    Ok(c)
}

/// A master with `--node-timeout 1s` and these workers, all joined.
pub(crate) fn start_cluster(workers: &[(&str, WorkerOpts)]) -> Result<Cluster> {
    let mut c = new_cluster(&[])?;
    c.start_master()?;
    for (name, o) in workers {
        c.start_worker_with(name, o)?;
    }
    c.wait_nodes(workers.len())?;
    Ok(c)
}

// ----- tree files -------------------------------------------------------------

/// A `builtin.echo` child. `placement` is a TOML value (`"least-loaded"`,
/// `{ node = "w2" }`, ...) or empty for the supervisor's own node.
pub(crate) fn echo(id: &str, placement: &str) -> String {
    echo_restart(id, placement, "permanent")
}

/// A `builtin.echo` child with a restart type.
pub(crate) fn echo_restart(id: &str, placement: &str, restart: &str) -> String {
    let placed = if placement.is_empty() {
        String::new()
    } else {
        format!(", placement = {placement}")
    };
    format!("{{ id = \"{id}\", function = \"builtin.echo\", restart = \"{restart}\"{placed} }}")
}

/// A nested supervisor child (intensity 10 per 10 s).
pub(crate) fn nested(id: &str, placement: &str, strategy: &str, children: &[String]) -> String {
    let placed = if placement.is_empty() {
        String::new()
    } else {
        format!(", placement = {placement}")
    };
    format!(
        "{{ id = \"{id}\"{placed}, supervisor = {{ strategy = \"{strategy}\", intensity = 10, period = \"10s\", children = [ {} ] }} }}",
        children.join(", ")
    )
}

// ----- a tree as it runs ----------------------------------------------------

/// A tree that runs as its view says: every supervisor and child running,
/// and `poolctl ps` showing that very pid for it, once, and nothing else of
/// the app.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    /// `tree show`.
    pub(crate) view: TreeView,
    /// Path (`app`, `app/sup/child`) → (pid, node name).
    pub(crate) at: BTreeMap<String, (String, String)>,
}

impl Settled {
    /// The pid of the entry at `path`.
    pub(crate) fn pid(&self, path: &str) -> &str {
        self.at.get(path).map_or("", |(p, _)| p.as_str())
    }

    /// The node of the entry at `path`.
    pub(crate) fn node(&self, path: &str) -> &str {
        self.at.get(path).map_or("", |(_, n)| n.as_str())
    }

    /// The entries (root excluded) that run on `node`.
    pub(crate) fn on_node(&self, node: &str) -> Vec<String> {
        let root = &self.view.id;
        self.at
            .iter()
            .filter(|(path, (_, n))| n == node && *path != root)
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// The view of the entry at `path`.
    pub(crate) fn entry(&self, path: &str) -> Option<TreeView> {
        tree_entries(&self.view)
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
    }
}

/// One look at app `app`: `Ok(Settled)` if it runs as its view says,
/// `Err(what is off)` otherwise.
pub(crate) fn look(c: &Cluster, app: &str) -> Result<Settled, String> {
    let view = c.tree_show(app).map_err(|e| e.to_string())?;
    let mut at = BTreeMap::new();
    for (path, v) in tree_entries(&view) {
        match (&v.status, v.pid, &v.node) {
            (ChildStatus::Running, Some(pid), Some(node)) => {
                at.insert(path, (pid.to_string(), node.clone()));
            }
            _ => return Err(format!("{path} is {:?} (pid {:?})", v.status, v.pid)),
        }
    }
    let ps = c.ps().map_err(|e| e.to_string())?;
    let procs = app_processes(&ps, app);
    let dups = duplicates(&procs);
    if !dups.is_empty() {
        return Err(format!("running twice: {dups:?}"));
    }
    for (path, (pid, node)) in &at {
        match procs.get(path).and_then(|v| v.first()) {
            Some(p) if p.pid.to_string() == *pid && p.node == *node => {}
            other => {
                return Err(format!(
                    "tree show says {path} is {pid} on {node}; ps shows {:?}",
                    other.map(|p| (p.pid.to_string(), p.node.clone()))
                ));
            }
        }
    }
    let extra: Vec<&String> = procs.keys().filter(|k| !at.contains_key(*k)).collect();
    if !extra.is_empty() {
        return Err(format!("ps shows processes the tree does not: {extra:?}"));
    }
    Ok(Settled { view, at })
}

/// Waits until app `app` runs as its view says and `also` holds of it.
pub(crate) fn wait_settled(
    c: &Cluster,
    app: &str,
    timeout: Duration,
    mut also: impl FnMut(&Settled) -> Result<(), String>,
) -> Result<Settled> {
    let mut last = String::new();
    wait_until(&format!("tree {app} to run"), timeout, || {
        match look(c, app).and_then(|s| also(&s).map(|()| s)) {
            Ok(s) => Some(s),
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .map_err(|e| {
        anyhow!(
            "{e}: {last}\n--- master log (tail):\n{}",
            tail(&c.master_log(), 40)
        )
    })
}

/// Samples `poolctl ps` until `done` holds, then `after` more: fails at the
/// first sample where a supervisor or child of `app` runs twice, or where a
/// pid of `stale` shows (`ps` lists live workers only, so a stale pid shows
/// only if a worker came back without stopping it). Returns how many
/// samples were taken.
pub(crate) fn watch_no_duplicates(
    c: &Cluster,
    app: &str,
    stale: &[String],
    timeout: Duration,
    after: Duration,
    mut done: impl FnMut(&Cluster) -> bool,
) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    let mut done_at: Option<Instant> = None;
    let mut samples = 0;
    loop {
        // `ps` asks every live worker; a worker that is fencing is not live.
        if let Ok(ps) = c.ps() {
            samples += 1;
            let procs = app_processes(&ps, app);
            let dups = duplicates(&procs);
            if !dups.is_empty() {
                bail!(
                    "sample {samples}: a supervisor or child runs twice: {dups:?}\n--- master log (tail):\n{}",
                    tail(&c.master_log(), 40)
                );
            }
            let left: Vec<String> = ps
                .iter()
                .map(|p| p.pid.to_string())
                .filter(|p| stale.contains(p))
                .collect();
            if !left.is_empty() {
                bail!("sample {samples}: stale processes run on a live node: {left:?}");
            }
        }
        let now = Instant::now();
        match done_at {
            Some(t) if now >= t + after => return Ok(samples),
            Some(_) => {}
            None if done(c) => done_at = Some(Instant::now()),
            None if now >= deadline => bail!("timed out after {timeout:?} waiting for the heal"),
            None => {}
        }
    }
}

/// Waits until the app's `tree ls` line says `status`.
pub(crate) fn wait_app_status(c: &Cluster, app: &str, status: AppStatus) -> Result<()> {
    wait_until(&format!("tree {app} to be {status:?}"), FAILOVER, || {
        c.app(app).ok().filter(|a| a.status == status).map(drop)
    })
    .map_err(|e| anyhow!("{e}; tree ls: {:?}", c.tree_ls()))
}

/// When `pid` exited, from a worker log at [`EXIT_LOG`]: the line's RFC 3339
/// timestamp (UTC, fixed width, so the text sorts as time), and its reason.
pub(crate) fn exit_of(log: &str, pid: &str) -> Option<(String, String)> {
    let needle = format!("pid={pid}");
    strip_ansi(log)
        .lines()
        .find(|l| l.contains("process exited") && l.contains(&needle))
        .map(|l| {
            let time = l.split_whitespace().next().unwrap_or_default().to_owned();
            let reason = l
                .split("reason=")
                .nth(1)
                .unwrap_or_default()
                .trim()
                .to_owned();
            (time, reason)
        })
}

/// Starts the tree in `file` (app `app`) and waits until it runs, with its
/// root on a node that `root_ok` accepts. The master puts a root on the
/// least-loaded worker; tests steer it with [`Cluster::load_nodes`], but a
/// load report taken at a busy instant can still send it elsewhere: then
/// the tree is stopped and started again (at most 5 times).
///
/// [`Cluster::load_nodes`]: pool_cluster_tests::Cluster::load_nodes
pub(crate) fn start_tree_where(
    c: &Cluster,
    file: &std::path::Path,
    app: &str,
    root_ok: impl Fn(&str) -> bool,
) -> Result<Settled> {
    let mut tried = Vec::new();
    for _ in 0..5 {
        let started = c.tree_start(file)?;
        if !started
            .iter()
            .any(|a| a.id == app && a.status == AppStatus::Running)
        {
            bail!("tree start printed {started:?}");
        }
        let s = wait_settled(c, app, FAILOVER, |_| Ok(()))?;
        if root_ok(s.node(app)) {
            return Ok(s);
        }
        tried.push(s.node(app).to_owned());
        c.poolctl_json(&["tree", "stop", app])?;
        // Place again once every node has reported since the stop.
        let stopped = Instant::now();
        wait_until(
            "a load report from every node",
            Duration::from_secs(5),
            || {
                let since = u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX);
                let v = c.poolctl_json(&["nodes"]).ok()?;
                v.as_array()?
                    .iter()
                    .all(|n| n["report_age_ms"].as_u64().is_some_and(|a| a < since))
                    .then_some(())
            },
        )?;
    }
    bail!("the root of {app} kept landing on unwanted nodes: {tried:?}")
}
