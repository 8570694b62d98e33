//! TLS between the nodes of a pool (docs/tls.md): the real `pool-master`,
//! `pool-worker`, `test-worker` and `poolctl` with `--tls-cert`, `--tls-key`
//! and `--tls-ca`, certificates made here with rcgen, on loopback.
//!
//! - A pool with TLS on works end to end: workers join, `poolctl` lists
//!   them, spawns and calls, and a process on one worker calls one on
//!   another (a worker-to-worker connection, TLS both ways).
//! - A worker whose certificate another CA signed is refused: the master
//!   logs that the certificate is not signed by its CA, the worker exits 1
//!   saying the master refused its certificate.
//! - A plaintext worker and a plaintext poolctl against a TLS master are
//!   refused with an error that says TLS is missing.
//! - The cookie is still checked inside TLS.
//!
//! Every child is killed when its test ends (`Proc` kills on drop, also on
//! a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use pool_cluster_tests::{Cluster, json_output, wait_unreachable_from, wait_until};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

/// How long a refused node may take to give up (TLS, one handshake, exit).
const REFUSAL: Duration = Duration::from_secs(20);

/// A certificate authority that signs node certificates.
struct Ca {
    /// Its certificate, PEM, written to `<dir>/<name>-ca.pem`.
    path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&path, cert.pem())?;
        Ok(Ca {
            path,
            issuer: Issuer::new(params, key),
            dir: dir.to_owned(),
            name: name.to_owned(),
        })
    }

    /// A node certificate for loopback (`127.0.0.1`, `localhost`) signed
    /// by this CA: the paths of its PEM and of its key's PEM.
    fn node(&self, node: &str) -> Result<(PathBuf, PathBuf)> {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params.distinguished_name.push(DnType::CommonName, node);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let cert_path = self.dir.join(format!("{}-{node}.pem", self.name));
        let key_path = self.dir.join(format!("{}-{node}.key", self.name));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        set_mode_600(&key_path)?;
        Ok((cert_path, key_path))
    }

    /// `--tls-cert C --tls-key K --tls-ca CA` for a node certificate of
    /// this CA, trusting `trust`.
    fn args(&self, node: &str, trust: &Ca) -> Result<Vec<String>> {
        let (cert, key) = self.node(node)?;
        Ok(tls_args(&cert, &key, &trust.path))
    }
}

fn tls_args(cert: &Path, key: &Path, ca: &Path) -> Vec<String> {
    [("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)]
        .into_iter()
        .flat_map(|(flag, p)| [flag.to_owned(), p.display().to_string()])
        .collect()
}

fn set_mode_600(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A command for `bin` with the cluster's environment and no TLS setting
/// inherited from the developer's shell.
fn command(c: &Cluster, bin: &str) -> Command {
    let mut cmd = c.command(bin);
    for var in ["POOL_TLS_CERT", "POOL_TLS_KEY", "POOL_TLS_CA"] {
        cmd.env_remove(var);
    }
    cmd
}

/// `poolctl --master M TLS... ARGS`, whatever its status.
fn ctl(c: &Cluster, tls: &[String], args: &[&str]) -> Result<Output> {
    command(c, "poolctl")
        .env("RUST_LOG", "error")
        .args(["--master", &c.master_addr])
        .args(tls)
        .args(args)
        .output()
        .context("running poolctl")
}

/// `poolctl --json TLS... ARGS`, parsed; an error if it failed.
fn ctl_json(c: &Cluster, tls: &[String], args: &[&str]) -> Result<Value> {
    json_output(args, &ctl(c, tls, &[&["--json"], args].concat())?)
}

/// Starts `bin` (pool-worker or test-worker) named `name` with `extra`.
fn start_worker(c: &mut Cluster, bin: &str, name: &str, extra: &[String]) -> Result<()> {
    let mut cmd = command(c, bin);
    cmd.args(["--master", &c.master_addr, "--name", name])
        .args(["--listen", "127.0.0.1:0", "--report-interval", "200ms"])
        .args(extra);
    c.add_worker(name, cmd)
}

/// Waits until the live workers are exactly `names`, asking with `tls`.
fn wait_nodes(c: &Cluster, tls: &[String], names: &[&str]) -> Result<()> {
    let mut want: Vec<&str> = names.to_vec();
    want.sort_unstable();
    wait_until(
        &format!("live workers {want:?}"),
        Duration::from_secs(20),
        || {
            let v = ctl_json(c, tls, &["nodes"]).ok()?;
            let mut got: Vec<String> = v
                .as_array()?
                .iter()
                .filter_map(|n| n["name"].as_str().map(str::to_owned))
                .collect();
            got.sort_unstable();
            (got == want).then_some(())
        },
    )
    .map_err(|e| anyhow!("{e}; master log:\n{}", c.master_log()))
}

/// A TLS pool: the pool's CA, a master with TLS, and poolctl's TLS flags.
struct TlsPool {
    c: Cluster,
    ca: Ca,
    ctl: Vec<String>,
}

impl TlsPool {
    /// A master with TLS and the workers `(bin, name)`, all joined.
    fn start(workers: &[(&str, &str)]) -> Result<TlsPool> {
        let with: Vec<(&str, &str, &[&str])> =
            workers.iter().map(|(b, n)| (*b, *n, &[][..])).collect();
        TlsPool::start_with(&with)
    }

    /// As [`TlsPool::start`], each worker `(bin, name, extra)` also given
    /// the flags `extra`.
    fn start_with(workers: &[(&str, &str, &[&str])]) -> Result<TlsPool> {
        let mut c = Cluster::new()?;
        let ca = Ca::new(c.dir.path(), "pool")?;
        c.master_args = ca.args("master", &ca)?;
        c.start_master()?;
        for (bin, name, extra) in workers {
            let mut args = ca.args(name, &ca)?;
            args.extend(extra.iter().map(|a| a.to_string()));
            start_worker(&mut c, bin, name, &args)?;
        }
        let ctl = ca.args("poolctl", &ca)?;
        let names: Vec<&str> = workers.iter().map(|(_, n, _)| *n).collect();
        wait_nodes(&c, &ctl, &names)?;
        Ok(TlsPool { c, ca, ctl })
    }
}

/// Lines of `log` where a TLS handshake failed, leaving out connections
/// closed before they said anything (the harness's readiness probe).
fn tls_failures(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("TLS handshake failed") && !l.contains("tls handshake eof"))
        .collect()
}

/// Waits for the worker `name` to exit by itself; its exit code and log.
fn refused_worker(c: &mut Cluster, name: &str) -> (Option<i32>, String) {
    let status = c.worker(name).wait_exit(REFUSAL);
    let log = c.worker(name).log();
    (status.and_then(|s| s.code()), log)
}

/// Waits until the master's log has a line with every one of `parts`.
fn wait_master_log(c: &Cluster, what: &str, parts: &[&str]) -> Result<String> {
    wait_until(what, Duration::from_secs(10), || {
        c.master_log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
    })
    .map_err(|e| anyhow!("{e}; master log:\n{}", c.master_log()))
}

/// With TLS on every node and on poolctl, the pool works end to end:
/// workers join, poolctl spawns on a named worker and calls the process,
/// and a process on w2 calls one on w1 over a worker-to-worker TLS
/// connection (w2 checks that w1's certificate names the address it
/// dialled, w1 that w2's is signed by the CA). No handshake fails.
#[test]
fn a_tls_pool_works_end_to_end() -> Result<()> {
    let p = TlsPool::start(&[("pool-worker", "w1"), ("test-worker", "w2")])?;
    let c = &p.c;

    let v = ctl_json(c, &p.ctl, &["spawn", "builtin.echo", "{}", "--on", "w1"])?;
    assert_eq!(v["node"], "w1", "{v}");
    let echo = v["pid"].as_str().context("a pid")?.to_owned();

    let reply = ctl_json(c, &p.ctl, &["call", &echo, r#"{"over":"tls"}"#])?;
    assert_eq!(reply, json!({"over": "tls"}));

    // w2 -> w1: a cross-node call between two workers.
    let args = json!({"pid": echo, "req": {"x": 1}, "timeout_ms": 5000}).to_string();
    let v = ctl_json(
        c,
        &p.ctl,
        &["spawn", "test.call", &args, "--on", "w2", "--wait"],
    )?;
    assert_eq!(v["result"], json!({"reply": {"x": 1}}), "{v}");

    let log = c.master_log();
    assert!(log.contains("TLS on"), "the master says TLS is on:\n{log}");
    assert_eq!(
        tls_failures(&log),
        Vec::<&str>::new(),
        "no TLS handshake failed"
    );
    assert!(
        !log.contains("bad frame"),
        "poolctl's exits end their connections cleanly:\n{log}"
    );
    Ok(())
}

/// Frames from another worker reach a node whose only process thread
/// computes without awaiting, through TLS: the node reads them on its
/// control thread while its process runtime stalls (`stalls.rs`), so a
/// monitor that w1 set up on w2's spinner is in place when `poolctl kill`
/// ends it, and w1 is told `killed` (read after the spinner, it would be
/// `noproc`).
#[test]
fn a_tls_node_whose_process_thread_spins_still_reads_its_peers() -> Result<()> {
    /// How long the spinner computes (it ends by itself).
    const SPIN: Duration = Duration::from_secs(4);
    let p = TlsPool::start_with(&[
        ("test-worker", "w1", &[]),
        ("test-worker", "w2", &["--threads", "1"]),
    ])?;
    let c = &p.c;
    let start = std::time::Instant::now();
    let args = json!({ "ms": SPIN.as_millis() as u64 }).to_string();
    let v = ctl_json(c, &p.ctl, &["spawn", "test.spin", &args, "--on", "w2"])?;
    let spinner = v["pid"].as_str().context("the spinner's pid")?.to_owned();
    let args = json!({ "pid": spinner, "monitor": true }).to_string();
    let v = ctl_json(c, &p.ctl, &["spawn", "test.watch", &args, "--on", "w1"])?;
    let rec = v["pid"].as_str().context("the recorder's pid")?.to_owned();
    // The recorder answering means it has sent its monitor to w2.
    ctl_json(c, &p.ctl, &["call", &rec, r#""events""#])?;

    let out = ctl(c, &p.ctl, &["kill", &spinner])?;
    assert!(out.status.success(), "poolctl kill failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "pending: the process has not reached an await point",
        "poolctl kill of the spinner ({:?} after its spawn)",
        start.elapsed()
    );
    assert!(
        start.elapsed() < SPIN,
        "the steps above took {:?}, longer than the spin: the machine is too slow for this test",
        start.elapsed()
    );
    let mut seen = Value::Null;
    wait_until("w1 told the spinner was killed", SPIN + REFUSAL, || {
        seen = ctl_json(c, &p.ctl, &["call", &rec, r#""events""#]).ok()?;
        let events = seen["events"].as_array()?;
        events
            .iter()
            .any(|e| e["kind"] == "down" && e["reason"] == "killed")
            .then_some(())
    })
    .map_err(|e| anyhow!("{e}; the recorder saw {seen}"))?;
    Ok(())
}

/// A worker whose certificate is signed by another CA (though it trusts the
/// pool's CA) is refused: the master logs that the certificate is not
/// signed by its CA; the worker exits 1 saying the master refused its
/// certificate. A worker of another pool altogether (trusting only its own
/// CA) refuses the master's certificate itself, and says so. The pool goes
/// on with its worker.
#[test]
fn a_worker_with_a_certificate_from_another_ca_is_refused() -> Result<()> {
    let mut p = TlsPool::start(&[("pool-worker", "w1")])?;
    let rogue = Ca::new(p.c.dir.path(), "rogue")?;

    let args = rogue.args("intruder", &p.ca)?;
    start_worker(&mut p.c, "pool-worker", "intruder", &args)?;
    let (code, log) = refused_worker(&mut p.c, "intruder");
    assert_eq!(code, Some(1), "the intruder exits 1; log:\n{log}");
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.contains("refused our certificate") && last.contains("--tls-ca"),
        "the intruder's last line says its certificate was refused: {last}"
    );
    let line = wait_master_log(
        &p.c,
        "the master's reason",
        &["handshake failed", "UnknownIssuer", "not signed by the CA"],
    )?;
    assert!(
        line.contains("127.0.0.1"),
        "the line names the peer: {line}"
    );

    // A node of another pool: it refuses the master's certificate.
    let args = rogue.args("stranger", &rogue)?;
    start_worker(&mut p.c, "pool-worker", "stranger", &args)?;
    let (code, log) = refused_worker(&mut p.c, "stranger");
    assert_eq!(code, Some(1), "log:\n{log}");
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.contains("not signed by the CA of --tls-ca"),
        "the stranger says the master's certificate is not signed by its CA: {last}"
    );

    wait_nodes(&p.c, &p.ctl, &["w1"])?;
    Ok(())
}

/// A plaintext worker against a TLS master is refused and exits 1 with an
/// error that says the master speaks TLS and how to turn it on; the master
/// logs that the peer does not speak TLS. A plaintext poolctl fails the
/// same way, in one line, exit 1.
#[test]
fn a_plaintext_worker_is_refused_by_a_tls_master() -> Result<()> {
    let mut p = TlsPool::start(&[("pool-worker", "w1")])?;

    start_worker(&mut p.c, "pool-worker", "plain", &[])?;
    let (code, log) = refused_worker(&mut p.c, "plain");
    assert_eq!(code, Some(1), "log:\n{log}");
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.contains("speaks TLS") && last.contains("--tls-cert"),
        "the plaintext worker says what is missing: {last}"
    );
    wait_master_log(
        &p.c,
        "the master's reason",
        &["handshake failed", "does not speak TLS"],
    )?;

    let out = ctl(&p.c, &[], &["nodes"])?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("speaks TLS") && err.contains("--tls-cert"),
        "{err}"
    );

    wait_nodes(&p.c, &p.ctl, &["w1"])?;
    Ok(())
}

/// TLS does not replace the cookie: a worker with a good certificate and
/// another cookie passes TLS and is refused by the cookie challenge inside
/// it, exiting 1 with an error that names the cookie.
#[test]
fn the_cookie_is_still_checked_inside_tls() -> Result<()> {
    let mut p = TlsPool::start(&[("pool-worker", "w1")])?;
    let other = p.c.write_file("other-cookie", "not-the-pool-cookie\n")?;
    set_mode_600(&other)?;

    let mut args = p.ca.args("intruder", &p.ca)?;
    args.push("--cookie-file".into());
    args.push(other.display().to_string());
    start_worker(&mut p.c, "pool-worker", "intruder", &args)?;
    let (code, log) = refused_worker(&mut p.c, "intruder");
    assert_eq!(code, Some(1), "log:\n{log}");
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.contains("cookie"),
        "the error names the cookie: {last}"
    );
    let log = p.c.master_log();
    assert_eq!(
        tls_failures(&log),
        Vec::<&str>::new(),
        "TLS itself succeeded"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("handshake failed") && l.contains("cookie")),
        "the master logs the cookie failure:\n{log}"
    );

    // poolctl likewise.
    let out = command(&p.c, "poolctl")
        .args(["--master", &p.c.master_addr])
        .args(&p.ctl)
        .arg("--cookie-file")
        .arg(&other)
        .arg("nodes")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cookie"), "{err}");

    wait_nodes(&p.c, &p.ctl, &["w1"])?;
    Ok(())
}

/// A worker whose certificate does not name the address it advertises
/// (it listens on 127.0.0.2; its certificate names 127.0.0.1 and
/// localhost) is up for the master, but its peers cannot connect: once w1
/// tries, `poolctl nodes` shows w2 unreachable from w1 with the
/// certificate error naming the address, and a spawn there from poolctl
/// fails naming the address and the certificate (docs/tls.md).
#[test]
fn a_certificate_that_does_not_name_the_address_shows_the_node_unreachable() -> Result<()> {
    let p = TlsPool::start(&[("test-worker", "w1")])?;
    let mut c = p.c;
    let mut cmd = command(&c, "pool-worker");
    cmd.args(["--master", &c.master_addr, "--name", "w2"])
        .args(["--listen", "127.0.0.2:0", "--report-interval", "200ms"])
        .args(p.ca.args("w2", &p.ca)?);
    c.add_worker("w2", cmd)?;
    wait_nodes(&c, &p.ctl, &["w1", "w2"])?;
    let nodes = ctl_json(&c, &p.ctl, &["nodes"])?;
    let w2 = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == "w2"))
        .context("w2 is listed")?;
    let w2_id = w2["id"].as_str().context("w2 has an id")?.to_owned();

    // From poolctl: the spawn fails naming the address and the cause.
    let out = ctl(&c, &p.ctl, &["spawn", "builtin.echo", "{}", "--on", "w2"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the spawn on w2 worked: {err}");
    assert!(
        err.contains("127.0.0.2") && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    // From w1: a call to a process of w2 makes w1 dial it.
    let args = json!({"pid": format!("<{w2_id}.1>"), "req": {}, "timeout_ms": 2000}).to_string();
    let _ = ctl(
        &c,
        &p.ctl,
        &["spawn", "test.call", &args, "--on", "w1", "--wait"],
    )?;
    let entry = wait_unreachable_from("w2", "w1", Duration::from_secs(20), || {
        ctl_json(&c, &p.ctl, &["nodes"]).ok()
    })?;
    let cause = entry["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("127.0.0.2") && cause.to_lowercase().contains("certificate"),
        "{entry}"
    );
    Ok(())
}
