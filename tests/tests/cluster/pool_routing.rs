//! Location transparency (OTP.md 2 and 3.1): send, call, links, monitors
//! and exit signals between processes on different nodes, observed with
//! the `test.watch` recorder of `test-worker`.
//!
//! The pool: w1 is a stock `pool-worker` (the targets), w2 a `test-worker`
//! (the recorders, linkers and callers).

use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::{Value, json};

use crate::support::{events, is_event, recorder, spawn_wait, wait_event};

/// How long a signal between two nodes on loopback may take to show.
const SIGNAL: Duration = Duration::from_secs(10);

fn pool() -> Result<Cluster> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_test_worker("w2", &[])?;
    c.wait_nodes(2)?;
    Ok(c)
}

/// A pid that has exited, on `node`.
fn dead_pid(c: &Cluster, node: &str) -> Result<String> {
    let v = c.poolctl_json(&[
        "spawn",
        "builtin.sleep",
        r#"{"ms":0}"#,
        "--on",
        node,
        "--wait",
    ])?;
    assert_eq!(v["reason"], "normal", "{v}");
    Ok(v["pid"].as_str().unwrap_or("").to_owned())
}

/// `test.call` from w2 (spawned and awaited): its result.
fn call_from_w2(c: &Cluster, pid: &str, req: Value) -> Result<Value> {
    let args = json!({"pid": pid, "req": req, "timeout_ms": 3000}).to_string();
    let v = c.poolctl_json(&["spawn", "test.call", &args, "--on", "w2", "--wait"])?;
    Ok(v["result"].clone())
}

/// A process on w2 calls one on w1 and gets its reply; 100 messages sent
/// from w2 to an echo on w1 come back in order; a call to a dead pid on w1
/// fails with `noproc` (from w2 and from poolctl), and a send to it
/// succeeds silently.
#[test]
fn send_and_call_between_nodes() -> Result<()> {
    let c = pool()?;
    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;

    let r = call_from_w2(&c, &echo, json!({"x": 1}))?;
    assert_eq!(r, json!({"reply": {"x": 1}}));

    let rec = recorder(&c, "w2", json!({"send_to": echo, "send_count": 100}))?;
    let got = wait_until("100 echoed messages", SIGNAL, || {
        let ev = events(&c, &rec).ok()?;
        let msgs: Vec<Value> = ev
            .iter()
            .filter(|e| e["kind"] == "msg" && e["from"] == echo.as_str())
            .map(|e| e["value"].clone())
            .collect();
        (msgs.len() >= 100).then_some(msgs)
    })?;
    let expected: Vec<Value> = (0..100).map(|i| json!(i)).collect();
    assert_eq!(got, expected, "order is kept between two processes");

    let dead = dead_pid(&c, "w1")?;
    assert_eq!(
        call_from_w2(&c, &dead, json!(1))?,
        json!({"error": "noproc"})
    );
    let (code, err) = c.poolctl_fail(&["call", &dead, "1"])?;
    assert_eq!(code, 1);
    assert!(err.contains("noproc"), "{err}");
    let out = c.poolctl_raw(&["send", &dead, "1"])?;
    assert!(
        out.status.success(),
        "a send to a dead pid never fails: {out:?}"
    );
    Ok(())
}

/// Exit signals cross nodes as OTP says: when a process on w1 is killed
/// with reason `boom`, a trapping linked process on w2 receives `Exit boom`,
/// a monitor on w2 gets `Down boom`, and a non-trapping linked process on
/// w2 dies with `boom`; `kill` arrives as `killed`; a normal exit reaches a
/// trapping link as `normal` and leaves a non-trapping one alive.
#[test]
fn links_and_monitors_carry_exit_signals_between_nodes() -> Result<()> {
    let c = pool()?;
    let (e1, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    let trapper = recorder(
        &c,
        "w2",
        json!({"pid": e1, "link": true, "trap": true, "sync": true}),
    )?;
    let watcher = recorder(&c, "w2", json!({"pid": e1, "monitor": true, "sync": true}))?;
    let linked = recorder(&c, "w2", json!({"pid": e1, "link": true, "sync": true}))?;
    let linked_watcher = recorder(&c, "w2", json!({"pid": linked, "monitor": true}))?;
    // A recorder answers calls only once its link and monitor are in place.
    for r in [&trapper, &watcher, &linked, &linked_watcher] {
        assert_eq!(events(&c, r)?, Vec::<Value>::new(), "{r} saw nothing yet");
    }

    c.poolctl_json(&["kill", &e1, "--reason", "boom"])?;
    wait_event(
        &c,
        &trapper,
        "Exit boom at the trapping link",
        SIGNAL,
        |e| is_event(e, "exit", "boom") && e["from"] == e1.as_str(),
    )?;
    wait_event(&c, &watcher, "Down boom at the monitor", SIGNAL, |e| {
        is_event(e, "down", "boom") && e["pid"] == e1.as_str()
    })?;
    wait_event(
        &c,
        &linked_watcher,
        "the non-trapping link to die of boom",
        SIGNAL,
        |e| is_event(e, "down", "boom") && e["pid"] == linked.as_str(),
    )?;

    // `kill` is untrappable at its target and propagates as `killed`.
    let (e2, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    let trapper2 = recorder(
        &c,
        "w2",
        json!({"pid": e2, "link": true, "trap": true, "sync": true}),
    )?;
    events(&c, &trapper2)?;
    c.poolctl_json(&["kill", &e2])?;
    wait_event(&c, &trapper2, "Exit killed", SIGNAL, |e| {
        is_event(e, "exit", "killed")
    })?;

    // A normal exit: trapped as `normal`, ignored without trapping.
    let (sleeper, _) = c.spawn(&["builtin.sleep", r#"{"ms":1500}"#, "--on", "w1"])?;
    let trapper3 = recorder(
        &c,
        "w2",
        json!({"pid": sleeper, "link": true, "trap": true}),
    )?;
    let survivor = recorder(&c, "w2", json!({"pid": sleeper, "link": true}))?;
    wait_event(&c, &trapper3, "Exit normal", SIGNAL, |e| {
        is_event(e, "exit", "normal")
    })?;
    assert!(
        events(&c, &survivor).is_ok(),
        "a non-trapping process linked to one that exits normally lives on"
    );
    Ok(())
}

/// Links and monitors to a dead pid on another node get `noproc`: a
/// trapping linker receives `Exit noproc`, a monitor `Down noproc`, and a
/// non-trapping linker dies with `noproc`.
#[test]
fn link_and_monitor_to_a_dead_pid_on_another_node_give_noproc() -> Result<()> {
    let c = pool()?;
    let dead = dead_pid(&c, "w1")?;
    let rec = recorder(
        &c,
        "w2",
        json!({"pid": dead, "link": true, "monitor": true, "trap": true}),
    )?;
    wait_event(&c, &rec, "Exit noproc", SIGNAL, |e| {
        is_event(e, "exit", "noproc") && e["from"] == dead.as_str()
    })?;
    wait_event(&c, &rec, "Down noproc", SIGNAL, |e| {
        is_event(e, "down", "noproc") && e["pid"] == dead.as_str()
    })?;

    let args = json!({"pid": dead, "link": true}).to_string();
    let v = spawn_wait(&c, &["test.watch", &args, "--on", "w2"])?;
    assert_eq!(
        v["reason"], "noproc",
        "a non-trapping link to a dead pid dies: {v}"
    );
    Ok(())
}

/// A global name dies with its process (killed from poolctl) and with its
/// node (kill -9): `poolctl names` stops listing it, while a name on a
/// surviving node stays.
#[test]
fn global_names_die_with_their_process_and_their_node() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_test_worker("w1", &[])?;
    c.start_test_worker("w2", &[])?;
    c.wait_nodes(2)?;
    let (a, _) = c.spawn(&["test.named", r#"{"name":"a"}"#, "--on", "w1"])?;
    let (b, _) = c.spawn(&["test.named", r#"{"name":"b"}"#, "--on", "w2"])?;
    let (keep, _) = c.spawn(&["test.named", r#"{"name":"keep"}"#, "--on", "w1"])?;
    let names = |c: &Cluster, want: Value| {
        wait_until(&format!("names {want}"), SIGNAL, || {
            (c.poolctl_json(&["names"]).ok()? == want).then_some(())
        })
    };
    names(&c, json!({"a": a, "b": b, "keep": keep}))?;

    c.poolctl_json(&["kill", &a])?;
    names(&c, json!({"b": b, "keep": keep}))?;

    c.worker("w2").kill9();
    names(&c, json!({"keep": keep}))?;
    Ok(())
}
