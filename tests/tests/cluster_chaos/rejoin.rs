//! Issue point 7: while a worker has not yet rejoined a restarted master,
//! a call to one of its processes fails with `noconnection` (its node
//! cannot be reached now), not `noproc` (the process does not exist) —
//! and succeeds again once the worker is back.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use pool_cluster_tests::wait_until;
use serde_json::json;

use super::common::{SETTLE, names, start_cluster};

/// Three workers, a `builtin.echo` on w2. The master is killed, w2 is
/// SIGSTOPped, the master is started again (same address and state
/// directory) and w1 and w3 rejoin. Then `poolctl call` to the echo exits
/// 1 with one line that says `noconnection` (not `noproc`). After SIGCONT,
/// w2 rejoins and the same call is answered.
#[test]
fn a_call_to_a_worker_not_yet_rejoined_fails_with_noconnection() -> Result<()> {
    let mut c = start_cluster(&[("w1", &[]), ("w2", &[]), ("w3", &[])])?;
    let v = c
        .ctl()
        .json(&["spawn", "builtin.echo", "{}", "--on", "w2"])?;
    let pid = v["pid"]
        .as_str()
        .context("spawn printed no pid")?
        .to_owned();
    let request = json!({"hello": 1}).to_string();
    ensure!(
        c.ctl().json(&["call", &pid, &request])? == json!({"hello": 1}),
        "the echo does not answer"
    );

    if let Some(m) = c.master.as_mut() {
        m.kill9();
    }
    c.worker("w2").signal(libc::SIGSTOP);
    c.start_master()?;
    let ctl = c.ctl();
    wait_until("w1 and w3 to rejoin", SETTLE, || {
        (ctl.node_names().ok()? == names(&["w1", "w3"])).then_some(())
    })?;
    let (code, err) = ctl.fail(&["call", &pid, &request, "--timeout", "2s"])?;
    let verdict = (
        code == 1,
        err.lines().count() == 1,
        err.contains("noconnection"),
    );
    drop(ctl);
    c.worker("w2").signal(libc::SIGCONT);
    ensure!(
        verdict == (true, true, true),
        "poolctl call to a process of a worker that has not rejoined exited {code} with: {err}"
    );

    let ctl = c.ctl();
    wait_until("w2 to rejoin", SETTLE, || {
        (ctl.node_names().ok()? == names(&["w1", "w2", "w3"])).then_some(())
    })?;
    wait_until("the echo to answer again", Duration::from_secs(10), || {
        (ctl.json(&["call", &pid, &request]).ok()? == json!({"hello": 1})).then_some(())
    })?;
    Ok(())
}
