//! The command lines' errors and outputs, against a real pool: a
//! `--master` pointed at the HTTP port, a wrong cookie, `spawn --wait
//! --timeout`, `spawn --count` without `--json`, and fatal errors in one
//! line from every binary.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::Cluster;

/// stderr of an output, trimmed.
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// poolctl pointed at the master's HTTP port says so (the address and
/// which port --master takes) in one line, exit 1, instead of a frame of
/// 1213486160 bytes.
#[test]
fn poolctl_at_the_http_port_says_it_answered_in_http() -> Result<()> {
    let c = Cluster::start(0)?;
    let out = c
        .command("poolctl")
        .args(["--master", &c.http_addr, "nodes"])
        .output()?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("{} answered in HTTP", c.http_addr)),
        "{err}"
    );
    assert!(err.contains("node port"), "{err}");
    assert!(!err.contains("1213486160"), "{err}");
    Ok(())
}

/// A wrong cookie is said as "the cookies differ", naming where this
/// node's cookie came from: by poolctl, by a worker, and in the master's
/// log (the other side of the same handshakes).
#[test]
fn a_wrong_cookie_says_the_cookies_differ_on_both_sides() -> Result<()> {
    let mut c = Cluster::start(0)?;
    let other = c.write_file("other-cookie", "not-the-pool-cookie\n")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600))?;
    }
    let out = c
        .command("poolctl")
        .args(["--master", &c.master_addr, "--cookie-file"])
        .arg(&other)
        .arg("nodes")
        .output()?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("the cookies differ"), "{err}");
    assert!(err.contains(&other.display().to_string()), "{err}");

    let mut cmd = c.command("pool-worker");
    cmd.args([
        "--master",
        &c.master_addr,
        "--name",
        "intruder",
        "--cookie-file",
    ])
    .arg(&other);
    c.add_worker("intruder", cmd)?;
    let status = c.worker("intruder").wait_exit(Duration::from_secs(20));
    let log = c.worker("intruder").log();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "log:\n{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pool-worker: ") && last.contains("the cookies differ"),
        "{last}"
    );
    assert!(
        c.master_log().contains("cookies differ"),
        "the master says it too"
    );
    Ok(())
}

/// `spawn --wait --timeout` gives up when the process has not ended in
/// time: exit 1 with one line naming the pid, which goes on running.
#[test]
fn spawn_wait_timeout_expires_with_a_clear_message() -> Result<()> {
    let c = Cluster::start(1)?;
    let out = c.poolctl_raw(&[
        "spawn",
        "builtin.sleep",
        r#"{"ms": 60000}"#,
        "--wait",
        "--timeout",
        "500ms",
    ])?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("still running after --timeout 500ms"), "{err}");
    let pid = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(err.contains(&pid), "{err} names {pid}");
    let running = c.ps()?.iter().any(|p| p.pid.to_string() == pid);
    assert!(running, "{pid} goes on running");

    // A process that ends in time is waited for as before, its result
    // shown.
    let out = c.poolctl_raw(&[
        "spawn",
        "builtin.sleep",
        r#"{"ms": 10}"#,
        "--wait",
        "--timeout",
        "20s",
    ])?;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exit: normal"), "{stdout}");
    assert!(stdout.contains("result: 10"), "{stdout}");
    Ok(())
}

/// `spawn --count N` prints the N pids without `--json`.
#[test]
fn spawn_count_prints_the_pids() -> Result<()> {
    let c = Cluster::start(1)?;
    let out = c.poolctl_raw(&["spawn", "builtin.sleep", r#"{"ms": 60000}"#, "--count", "3"])?;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with('<') && w.parse::<pool_proto::Pid>().is_ok())
        .map(str::to_owned)
        .collect();
    assert_eq!(pids.len(), 3, "three pids in:\n{text}");
    let live: Vec<String> = c.ps()?.iter().map(|p| p.pid.to_string()).collect();
    assert!(
        pids.iter().all(|p| live.contains(p)),
        "{pids:?} in {live:?}"
    );
    Ok(())
}

/// Every binary reports a fatal error in one line, prefixed with its
/// name, without anyhow's `Caused by:` block: here, a listen address that
/// is taken.
#[test]
fn fatal_errors_are_one_line() -> Result<()> {
    let c = Cluster::new()?;
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();

    let out = c
        .master_command()
        .args(["--listen", &addr, "--http", "off"])
        .output()?;
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default().to_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("Caused by"), "{err}");
    assert!(
        last.starts_with("pool-master: ") && last.contains(&addr),
        "{err}"
    );

    // A usage error too: one line, exit 2.
    let out = c
        .master_command()
        .args(["--node-timeout", "soon"])
        .output()?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("pool-master: ") && err.contains("--node-timeout"),
        "{err}"
    );

    let out = c
        .command("pool-worker")
        .args(["--master", &c.master_addr, "--name", "w", "--listen", &addr])
        .output()?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pool-worker: ") && last.contains(&addr),
        "{err}"
    );
    assert!(!err.contains("Caused by"), "{err}");

    let out = c
        .command("poolctl")
        .args(["--master", &addr, "--connect-timeout", "2s", "nodes"])
        .output()?;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("poolctl: "), "{err}");
    Ok(())
}
