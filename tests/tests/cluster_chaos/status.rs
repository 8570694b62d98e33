//! Issue point 6: an app whose own children crash past its restart
//! intensity is `failed` — the same word, with the same reason in words,
//! in `tree ls`, `tree show` and the master's `/metrics` — and its restart
//! counts survive the failure. `tree restart ID` starts a failed app again;
//! `tree rm ID` forgets a stopped or failed one.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use pool_cluster_tests::views::metric;
use pool_cluster_tests::{Ctl, http_get, wait_until};
use serde_json::json;

use super::common::{SETTLE, echo, named, start_test_cluster, wait_running, worker, write_tree};

/// The words a failed app's reason starts with (DESIGN.md "Interfaces").
const INTENSITY: &str = "restart intensity exceeded";

/// Spawns a `test.named` process holding `name` on `node`; its pid once the
/// name is registered.
fn hold_name(ctl: &Ctl<'_>, name: &str, node: &str) -> Result<String> {
    let v = ctl.json(&[
        "spawn",
        "test.named",
        &json!({ "name": name }).to_string(),
        "--on",
        node,
    ])?;
    let pid = v["pid"]
        .as_str()
        .context("spawn printed no pid")?
        .to_owned();
    wait_until(&format!("{name} to be registered"), SETTLE, || {
        ctl.names()
            .ok()?
            .get(name)
            .is_some_and(|p| p.to_string() == pid)
            .then_some(())
    })?;
    Ok(pid)
}

/// Waits until `tree ls` says app `id` is `failed`; its line.
fn wait_failed(ctl: &Ctl<'_>, id: &str) -> Result<pool_cluster_tests::views::AppLine> {
    wait_until(&format!("{id} to be failed"), SETTLE, || {
        ctl.app(id).ok().filter(|a| a.status == "failed")
    })
    .map_err(|e| anyhow!("{e}; tree ls: {:?}", ctl.apps()))
}

/// A tree whose child cannot run (the global name it takes is held by
/// another process) crashes past its intensity (2 per 10 s). Then `tree
/// ls` and `tree show` both say `failed`, with the same reason, which says
/// "restart intensity exceeded"; the root's restart count and the child's
/// are the 2 restarts the supervisor made (not 0); `/metrics` counts the
/// app under `pool_apps{status="failed"}` and not as running.
#[test]
fn tree_show_tree_ls_and_metrics_agree_on_a_failed_app_and_keep_its_restart_counts() -> Result<()> {
    let c = start_test_cluster(&[("w1", &[])])?;
    let ctl = c.ctl();
    hold_name(&ctl, "taken", "w1")?;
    let file = write_tree(
        &c,
        "stuck",
        "one_for_one",
        2,
        &[echo("ok", ""), named("svc", "taken", "")],
    )?;
    ctl.json(&["tree", "start", file.to_str().context("utf-8 path")?])?;
    let line = wait_failed(&ctl, "stuck")?;

    let mut wrong = Vec::new();
    let ls_reason = line.reason.clone().unwrap_or_default();
    if !ls_reason.contains(INTENSITY) {
        wrong.push(format!(
            "tree ls reason {:?} does not say {INTENSITY:?}",
            line.reason
        ));
    }
    let view = ctl.show("stuck")?;
    if view.status != "failed" {
        wrong.push(format!(
            "tree show says {} where tree ls says failed",
            view.status
        ));
    }
    if view.reason.as_deref() != Some(ls_reason.as_str()) {
        wrong.push(format!(
            "tree show reason {:?}, tree ls reason {:?}",
            view.reason, line.reason
        ));
    }
    if view.restarts < 2 {
        wrong.push(format!(
            "the root's restarts read {} after 2 restarts",
            view.restarts
        ));
    }
    match view.at("stuck/svc") {
        Some(svc) if svc.restarts >= 2 => {}
        other => wrong.push(format!(
            "svc's restarts read {:?} after 2 restarts",
            other.map(|e| e.restarts)
        )),
    }
    let (code, text) = http_get(&c.http_addr, "/metrics")?;
    ensure!(code == 200, "GET /metrics answered {code}");
    let failed = metric(&text, "pool_apps", r#"status="failed""#);
    let running = metric(&text, "pool_apps", r#"status="running""#);
    // A status no app has may be printed as 0 or left out.
    if failed != Some(1.0) || running.unwrap_or(0.0) != 0.0 {
        wrong.push(format!(
            "/metrics pool_apps: failed {failed:?}, running {running:?} (want 1 and 0)"
        ));
    }
    ensure!(
        wrong.is_empty(),
        "{}\n(tree show: {view:?})",
        wrong.join("\n")
    );
    Ok(())
}

/// A failed app comes back with `poolctl tree restart ID` once its cause
/// is gone (the holder of the name it needs is killed): it runs whole
/// again. `poolctl tree rm ID` then forgets it once stopped, and forgets
/// another app right from `failed` (a child that always crashes): `tree
/// ls` no longer lists either and `tree show` fails with exit status 1.
#[test]
fn tree_restart_starts_a_failed_app_again_and_tree_rm_forgets_stopped_and_failed_apps() -> Result<()>
{
    let c = start_test_cluster(&[("w1", &[])])?;
    let ctl = c.ctl();
    let holder = hold_name(&ctl, "taken", "w1")?;
    let stuck = write_tree(
        &c,
        "stuck",
        "one_for_one",
        2,
        &[echo("ok", ""), named("svc", "taken", "")],
    )?;
    let doomed = write_tree(
        &c,
        "doomed",
        "one_for_one",
        1,
        &[worker(
            "boom",
            "builtin.crash",
            "{ after_ms = 10, reason = \"boom\" }",
            "",
        )],
    )?;
    for f in [&stuck, &doomed] {
        ctl.json(&["tree", "start", f.to_str().context("utf-8 path")?])?;
    }
    wait_failed(&ctl, "stuck")?;
    wait_failed(&ctl, "doomed")?;

    ctl.json(&["kill", &holder])?;
    wait_until("the name to be free", SETTLE, || {
        (!ctl.names().ok()?.contains_key("taken")).then_some(())
    })?;
    let out = ctl.raw(&["tree", "restart", "stuck"])?;
    ensure!(
        out.status.success(),
        "poolctl tree restart stuck exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let live = vec!["w1".to_owned()];
    let s = wait_running(&ctl, "stuck", &live, SETTLE, |_| Ok(()))?;
    let svc = s.get("stuck/svc").map(|(p, _)| *p);
    ensure!(
        ctl.names()?.get("taken").copied() == svc,
        "the restarted app's svc does not hold its name: {:?}",
        ctl.names()?
    );

    ctl.json(&["tree", "stop", "stuck"])?;
    wait_until("stuck to be stopped", SETTLE, || {
        ctl.app("stuck").ok().filter(|a| a.status == "stopped")
    })?;
    for id in ["stuck", "doomed"] {
        let out = ctl.raw(&["tree", "rm", id])?;
        ensure!(
            out.status.success(),
            "poolctl tree rm {id} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let left = ctl.apps()?;
    ensure!(left.is_empty(), "tree ls still lists {left:?}");
    let (code, err) = ctl.fail(&["tree", "show", "stuck"])?;
    ensure!(code == 1, "tree show of a removed app exited {code}: {err}");
    // The stopped and removed app left nothing running.
    wait_until("nothing of stuck to run", Duration::from_secs(10), || {
        let ps = ctl.ps().ok()?;
        ps.iter()
            .all(|p| {
                p.owner
                    .as_deref()
                    .is_none_or(|o| o != "stuck" && !o.starts_with("stuck/"))
            })
            .then_some(())
    })?;
    Ok(())
}
