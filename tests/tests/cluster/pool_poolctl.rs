//! `poolctl`: the `--json` shape of every command (DESIGN.md "poolctl"),
//! exit status 0/1/2 and one-line errors, and what `kill` says of a
//! process that has not reached an await point.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::{Cluster, free_port, wait_until};
use serde_json::{Value, json};

use crate::support::{assert_one_line, events, is_event, is_pid, recorder, wait_event};

fn ps_has(ps: &Value, pid: &str) -> bool {
    ps.as_array()
        .is_some_and(|a| a.iter().any(|p| p["pid"] == pid))
}

/// Every command prints the JSON document DESIGN.md promises: `nodes` an
/// array of `{name, id, addr, cpu, mem, procs, score, labels}`; `place`
/// `{nodes: [name]}`; `spawn` `{pid, node}` (and the pid alone on one line
/// without `--json`); `spawn --wait` also `{reason, result}`; `ps` an array
/// of `{pid, node, function, status, age_ms}`; `call` the reply; `names`
/// `{name: pid}`; and `send` and `kill` do what they say.
#[test]
fn json_shape_of_every_command() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_test_worker("w2", &["--label", "role=test"])?;
    c.wait_nodes(2)?;

    // nodes
    let nodes = c.nodes()?;
    for n in &nodes {
        for key in [
            "name", "id", "addr", "cpu", "mem", "procs", "score", "labels",
        ] {
            assert!(n.get(key).is_some(), "nodes: no {key} in {n}");
        }
        let id = n["id"].as_str().unwrap_or("");
        assert!(
            id.len() >= 8 && id.chars().all(|ch| ch.is_ascii_hexdigit()),
            "nodes: id {id:?} is not hex"
        );
        n["addr"].as_str().unwrap_or("").parse::<SocketAddr>()?;
        for pct in ["cpu", "mem"] {
            let v = n[pct].as_f64().unwrap_or(-1.0);
            assert!(
                (0.0..=100.0).contains(&v),
                "nodes: {pct} {v} is not a percentage"
            );
        }
        assert!(n["procs"].is_u64() && n["score"].is_number(), "{n}");
        assert!(n["labels"].is_object(), "{n}");
    }
    let w2 = nodes.iter().find(|n| n["name"] == "w2").expect("w2 listed");
    assert_eq!(w2["labels"], json!({"role": "test"}));

    // place
    let placed = c.poolctl_json(&["place", "--count", "3"])?;
    let names = placed["nodes"].as_array().expect("place: {nodes: [...]}");
    assert_eq!(names.len(), 3, "{placed}");
    assert!(names.iter().all(|n| n == "w1" || n == "w2"), "{placed}");
    let placed = c.poolctl_json(&["place", "--count", "2", "--label", "role=test"])?;
    assert_eq!(placed, json!({"nodes": ["w2", "w2"]}));

    // spawn, with and without --json
    let v = c.poolctl_json(&["spawn", "builtin.echo", "--on", "w1"])?;
    let echo = v["pid"].as_str().unwrap_or("").to_owned();
    assert!(is_pid(&echo) && v["node"] == "w1", "spawn: {v}");
    let out = c.poolctl_raw(&["spawn", "builtin.counter", "--on", "w2"])?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    let counter = text.trim_end_matches('\n');
    assert!(
        is_pid(counter) && !counter.contains('\n'),
        "spawn prints the pid alone on one line, got {text:?}"
    );

    // spawn --wait
    let v = c.poolctl_json(&["spawn", "builtin.sleep", r#"{"ms":20}"#, "--wait"])?;
    assert!(is_pid(v["pid"].as_str().unwrap_or("")), "{v}");
    assert!(v["node"] == "w1" || v["node"] == "w2", "{v}");
    assert_eq!(v["reason"], "normal", "{v}");
    assert_eq!(v["result"], 20, "{v}");
    let out = c.poolctl_raw(&[
        "--json",
        "spawn",
        "builtin.crash",
        r#"{"reason":"boom"}"#,
        "--wait",
    ])?;
    assert_eq!(out.status.code(), Some(1), "an abnormal exit is a failure");
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["reason"], "boom", "{v}");
    assert_eq!(v["result"], Value::Null, "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_line(err.trim(), "spawn --wait of a crash");
    assert!(err.contains("boom"), "{err}");

    // ps
    let ps = c.poolctl_json(&["ps"])?;
    let entry = ps
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pid"] == echo.as_str()))
        .unwrap_or_else(|| panic!("ps does not list {echo}: {ps}"));
    assert_eq!(entry["node"], "w1");
    assert_eq!(entry["function"], "builtin.echo");
    assert!(
        entry["status"].is_string() && entry["age_ms"].is_u64(),
        "{entry}"
    );
    let ps2 = c.poolctl_json(&["ps", "--node", "w2"])?;
    assert!(
        ps_has(&ps2, counter),
        "ps --node w2 lists the counter: {ps2}"
    );
    assert!(
        ps2.as_array()
            .is_some_and(|a| a.iter().all(|p| p["node"] == "w2")),
        "ps --node w2 lists only w2: {ps2}"
    );

    // call
    assert_eq!(
        c.call(&echo, &json!({"a": [1, 2], "b": "x"}))?,
        json!({"a": [1, 2], "b": "x"})
    );
    assert_eq!(c.call(counter, &json!("inc"))?, json!(1));
    assert_eq!(c.call(counter, &json!("inc"))?, json!(2));
    assert_eq!(c.call(counter, &json!("get"))?, json!(2));

    // names
    assert_eq!(c.poolctl_json(&["names"])?, json!({}));
    let (named, _) = c.spawn(&["test.named", r#"{"name":"shape-svc"}"#, "--on", "w2"])?;
    wait_until("the global name", Duration::from_secs(10), || {
        let n = c.poolctl_json(&["names"]).ok()?;
        (n == json!({"shape-svc": named})).then_some(())
    })?;

    // send
    let rec = recorder(&c, "w2", json!({}))?;
    let sent = c.poolctl_json(&["send", &rec, r#"{"hello":"world"}"#])?;
    assert!(sent.is_object(), "send prints one JSON document: {sent}");
    wait_until("the message", Duration::from_secs(10), || {
        let ev = events(&c, &rec).ok()?;
        ev.iter()
            .any(|e| e["kind"] == "msg" && e["value"] == json!({"hello": "world"}))
            .then_some(())
    })?;

    // kill
    let killed = c.poolctl_json(&["kill", &echo])?;
    assert!(
        killed.is_object(),
        "kill prints one JSON document: {killed}"
    );
    wait_until(
        "the killed echo to leave ps",
        Duration::from_secs(10),
        || {
            let ps = c.poolctl_json(&["ps"]).ok()?;
            (!ps_has(&ps, &echo)).then_some(())
        },
    )?;
    let (code, err) = c.poolctl_fail(&["call", &echo, "1"])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("noproc"),
        "a call to a dead pid says noproc: {err}"
    );
    Ok(())
}

/// A usage error (unknown command, missing or conflicting arguments, a bad
/// pid, bad JSON, a bad label) exits 2; a failed operation (unknown
/// function or node, a dead pid, bad arguments for the function, no
/// master) exits 1; either way the error is one line on stderr.
#[test]
fn exit_status_and_one_line_errors() -> Result<()> {
    let c = Cluster::start(1)?;
    let (dead, _) = c.spawn(&["builtin.sleep", r#"{"ms":0}"#])?;
    wait_until("the sleeper to end", Duration::from_secs(10), || {
        let ps = c.poolctl_json(&["ps"]).ok()?;
        (!ps_has(&ps, &dead)).then_some(())
    })?;
    let missing = c.dir.path().join("missing.toml");
    let missing = missing.to_string_lossy();

    let usage: Vec<Vec<&str>> = vec![
        vec![], // no command (after the global flags)
        vec!["frobnicate"],
        vec!["spawn"],
        vec!["spawn", "builtin.echo", "--on", "w1", "--key", "k"],
        vec!["spawn", "builtin.echo", "--count", "0"],
        vec!["spawn", "builtin.echo", "{not json"],
        vec!["call", "not-a-pid", "1"],
        vec!["call", &dead, "{not json"],
        vec!["place", "--label", "no-equals-sign"],
        vec!["tree", "start", &missing],
    ];
    for args in &usage {
        let (code, err) = c.poolctl_fail(args)?;
        assert_eq!(code, 2, "poolctl {args:?} is a usage error: {err}");
        assert_one_line(&err, &format!("poolctl {args:?}"));
    }

    let failed: Vec<(Vec<&str>, &str)> = vec![
        (vec!["spawn", "builtin.nope"], "builtin.nope"),
        (vec!["spawn", "builtin.echo", "--on", "w9"], "w9"),
        (
            vec!["spawn", "builtin.sleep", r#"{"ms":"x"}"#],
            "builtin.sleep",
        ),
        (vec!["call", &dead, "1"], "noproc"),
        (vec!["spawn", "builtin.crash", "--wait"], "crash"),
    ];
    for (args, says) in &failed {
        let (code, err) = c.poolctl_fail(args)?;
        assert_eq!(code, 1, "poolctl {args:?} is a failed operation: {err}");
        assert_one_line(&err, &format!("poolctl {args:?}"));
        assert!(
            err.contains(says),
            "poolctl {args:?} should say {says}: {err}"
        );
    }

    // No master there: a failure that says where it looked and what to do.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let out = c
        .command("poolctl")
        .args(["--master", &nowhere, "nodes"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_one_line(err.trim(), "poolctl with no master");
    assert!(
        err.contains(&nowhere) && err.contains("pool-master"),
        "the error should name the address and the master: {err}"
    );

    // Success is 0, with and without --json.
    assert!(c.poolctl_raw(&["nodes"])?.status.success());
    assert!(c.poolctl_raw(&["--json", "names"])?.status.success());
    Ok(())
}

/// A function whose argument is `()` is spawned by `poolctl spawn` without
/// arguments (poolctl sends its default `{}`) and with `null`: the node
/// takes every spelling of "no arguments" (`{}` used to be refused with
/// "invalid type: map, expected unit").
#[test]
fn poolctl_spawns_a_unit_argument_function_without_args() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_test_worker("w1", &[])?;
    c.wait_nodes(1)?;
    for args in [
        &["spawn", "test.unit", "--wait"][..],
        &["spawn", "test.unit", "null", "--wait"][..],
    ] {
        let v = c.poolctl_json(args)?;
        assert_eq!(v["reason"], "normal", "{args:?}: {v}");
        assert_eq!(v["result"], "no arguments needed", "{args:?}: {v}");
    }
    Ok(())
}

/// `signal.outcome` and `diff.cooperative` (docs/semantics.md) through the
/// real binaries: killing a process that computes without awaiting
/// (`test.spin`, holding w2's only process thread) makes `poolctl kill`
/// print `pending: the process has not reached an await point` (and
/// `"pending": true` with `--json`), `poolctl ps` lists it as `exiting`
/// while it spins, and it ends by itself at the end of its loop, with a
/// monitor on another node told `killed`. The worker's control thread
/// answers throughout.
#[test]
fn kill_of_a_process_that_does_not_await_is_pending() -> Result<()> {
    /// How long the spinner computes: long enough for the commands below,
    /// and it ends by itself, so the test cannot hang on it.
    const SPIN: Duration = Duration::from_secs(4);
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_test_worker("w1", &[])?;
    c.start_test_worker("w2", &["--threads", "1"])?;
    c.wait_nodes(2)?;

    let start = std::time::Instant::now();
    let args = json!({ "ms": SPIN.as_millis() as u64 }).to_string();
    let (spinner, on) = c.spawn(&["test.spin", &args, "--on", "w2"])?;
    assert_eq!(on, "w2");
    // A monitor from w1; the recorder answering a call means it has sent
    // the monitor, which reaches w2 long before the spinner ends.
    let rec = recorder(&c, "w1", json!({ "pid": spinner, "monitor": true }))?;
    events(&c, &rec)?;

    let out = c.poolctl_raw(&["kill", &spinner])?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "poolctl kill failed: {out:?}");
    assert_eq!(
        said.trim_end(),
        "pending: the process has not reached an await point",
        "poolctl kill of a spinning process ({:?} after its spawn)",
        start.elapsed()
    );
    // Asked again, with --json: still pending (a second kill changes
    // nothing while it spins).
    let v = c.poolctl_json(&["kill", &spinner])?;
    assert_eq!(v, json!({"ok": true, "pending": true}), "kill --json");

    let ps = c.poolctl_json(&["ps"])?;
    let entry = ps
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pid"] == spinner.as_str()))
        .unwrap_or_else(|| panic!("ps does not list the spinner {spinner}: {ps}"));
    assert_eq!(
        entry["status"],
        "exiting",
        "ps of a killed spinner ({:?} after its spawn): {entry}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < SPIN,
        "the checks above took {:?}, longer than the spin: the machine is too slow for them",
        start.elapsed()
    );

    // It ends at the end of its loop, killed (nothing to await there).
    wait_until(
        "the spinner to leave ps",
        SPIN + Duration::from_secs(10),
        || {
            let ps = c.poolctl_json(&["ps"]).ok()?;
            (!ps_has(&ps, &spinner)).then_some(())
        },
    )?;
    wait_event(&c, &rec, "Down killed", Duration::from_secs(10), |e| {
        is_event(e, "down", "killed")
    })?;
    Ok(())
}

/// `poolctl ps --node w2` for a worker that does not answer (SIGSTOPped)
/// fails naming it, instead of printing an empty table; `poolctl place
/// --function F` keeps to the workers that register F, and says which
/// function no worker has.
#[test]
fn ps_of_a_silent_node_fails_and_place_knows_functions() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_test_worker("w2", &[])?;
    c.wait_nodes(2)?;

    let v = c.poolctl_json(&["place", "--function", "test.unit", "--count", "3"])?;
    assert_eq!(v["nodes"], json!(["w2", "w2", "w2"]), "{v}");
    let out = c.poolctl_raw(&["place", "--function", "no.such"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no.such"), "{err}");

    c.worker("w2").signal(libc::SIGSTOP);
    let out = c.poolctl_raw(&["ps", "--node", "w2"])?;
    c.worker("w2").signal(libc::SIGCONT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ps of a stopped node succeeded: {err}"
    );
    assert!(err.contains("node w2 did not list its processes"), "{err}");
    Ok(())
}
