//! Helpers shared by the cluster test modules: pids, the `test.watch`
//! recorder of `test-worker`, counts by node, one-line errors.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::{Value, json};

/// True if `s` is a pid in its text form `<node.serial>` (and parses back).
pub(crate) fn is_pid(s: &str) -> bool {
    s.starts_with('<') && s.ends_with('>') && s.parse::<pool_proto::Pid>().is_ok()
}

/// Starts a `test.watch` recorder with `args` on `node` (a test-worker)
/// and returns its pid.
pub(crate) fn recorder(c: &Cluster, node: &str, args: Value) -> Result<String> {
    let (pid, on) = c.spawn(&["test.watch", &args.to_string(), "--on", node])?;
    if on != node {
        bail!("the recorder was spawned on {on}, not {node}");
    }
    Ok(pid)
}

/// `poolctl --json spawn ARGS --wait`: the printed `{pid, node, reason,
/// result}`, whatever the exit reason (poolctl exits 1 on an abnormal one).
pub(crate) fn spawn_wait(c: &Cluster, args: &[&str]) -> Result<Value> {
    let out = c.poolctl_raw(&[&["--json", "spawn"], args, &["--wait"]].concat())?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "poolctl spawn {} --wait: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The events recorder `pid` has seen so far.
pub(crate) fn events(c: &Cluster, pid: &str) -> Result<Vec<Value>> {
    let v = c.call(pid, &json!("events"))?;
    v["events"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("recorder {pid} answered {v}"))
}

/// Waits until recorder `pid` has an event for which `pred` holds, and
/// returns it; the error lists what it saw.
pub(crate) fn wait_event(
    c: &Cluster,
    pid: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let mut seen = Vec::new();
    let got = wait_until(what, timeout, || {
        let ev = events(c, pid).ok()?;
        let found = ev.iter().find(|e| pred(e)).cloned();
        seen = ev;
        found
    });
    got.map_err(|e| anyhow!("{e}; recorder {pid} saw {seen:?}"))
}

/// True if `e` is an event of `kind` (`exit`, `down`, `msg`) with `reason`.
pub(crate) fn is_event(e: &Value, kind: &str, reason: &str) -> bool {
    e["kind"] == kind && e["reason"] == reason
}

/// The `by_node` counts of `poolctl --json spawn ... --count N`, after
/// checking that no spawn failed.
pub(crate) fn by_node(v: &Value) -> Result<BTreeMap<String, u64>> {
    let errors = v["errors"].as_object().context("no errors object")?;
    if !errors.is_empty() {
        bail!("some spawns failed: {v}");
    }
    v["by_node"]
        .as_object()
        .with_context(|| format!("no by_node object in {v}"))?
        .iter()
        .map(|(k, n)| {
            n.as_u64()
                .map(|n| (k.clone(), n))
                .with_context(|| format!("count {n} of {k}"))
        })
        .collect()
}

/// Asserts that `stderr` is one non-empty line from poolctl.
pub(crate) fn assert_one_line(stderr: &str, what: &str) {
    assert!(
        !stderr.is_empty() && !stderr.contains('\n'),
        "{what}: the error should be one line on stderr, got:\n{stderr}"
    );
    assert!(
        stderr.starts_with("poolctl: "),
        "{what}: the error should start with `poolctl: `, got: {stderr}"
    );
}

/// The last line of a process log (where a binary prints its fatal error).
pub(crate) fn last_line(log: &str) -> &str {
    log.lines().last().unwrap_or("")
}
