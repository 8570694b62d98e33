//! Support for cluster tests: start the real `pool-master`, `pool-worker`
//! and `poolctl` binaries on loopback, each test in its own temporary
//! directory with its own cookie, every child killed when the test ends.
//!
//! - [`Cluster`]: a master plus workers, and `poolctl` against them.
//! - [`wait_until`]: a bounded wait for a condition (never a bare sleep).
//! - [`Proc`]: a child process killed (SIGKILL) when dropped.
//!
//! The binaries are found the way chitchat's `cargo_bin` does: an
//! environment variable (`POOL_MASTER_BIN`, `POOL_WORKER_BIN`,
//! `POOLCTL_BIN`) first, else the target directory beside the test
//! executable. `cargo test --workspace` builds them before any test runs.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// Path of one of our binaries.
pub fn cargo_bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test-binary> -> target/debug/<name>
    let exe = std::env::current_exe().expect("the test binary has a path");
    let mut dir = exe
        .parent()
        .expect("the test binary is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (or set {var})",
        path.display()
    );
    path
}

/// Waits until `cond` returns `Some`, checking every 20 ms, for at most
/// `timeout`; the error says what was awaited.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A child process, killed with SIGKILL when dropped. Its stderr is kept
/// (last lines) for failure messages.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub label: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(label: &str, mut cmd: Command) -> Result<Proc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting {label}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push(line);
                    if l.len() > 2000 {
                        l.drain(..1000);
                    }
                }
            });
        }
        Ok(Proc {
            label: label.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// Its OS pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (e.g. `libc::SIGSTOP`).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on a pid we started and have not reaped.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// `kill -9`, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for it to exit (up to `timeout`); returns whether
    /// it exited in time.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return true;
                }
            } else {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A master and its workers in one temporary directory.
#[derive(Debug)]
pub struct Cluster {
    /// The test's directory (cookie, state, trees).
    pub dir: tempfile::TempDir,
    /// The cookie file every node uses.
    pub cookie: PathBuf,
    /// The master's node address.
    pub master_addr: String,
    /// The master's HTTP address.
    pub http_addr: String,
    /// The master process.
    pub master: Option<Proc>,
    /// Worker processes by name.
    pub workers: Vec<(String, Proc)>,
    /// Extra arguments for every master start.
    pub master_args: Vec<String>,
}

impl Cluster {
    /// A cluster with no process started yet.
    pub fn new() -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let cookie = dir.path().join("cookie");
        std::fs::write(&cookie, format!("test-cookie-{}\n", std::process::id()))?;
        set_mode_600(&cookie)?;
        Ok(Cluster {
            master_addr: format!("127.0.0.1:{}", free_port()),
            http_addr: format!("127.0.0.1:{}", free_port()),
            cookie,
            dir,
            master: None,
            workers: Vec::new(),
            master_args: Vec::new(),
        })
    }

    /// A cluster with a master and `n` workers named w1..wn, all joined.
    pub fn start(n: usize) -> Result<Cluster> {
        let mut c = Cluster::new()?;
        c.start_master()?;
        for i in 1..=n {
            c.start_worker(&format!("w{i}"), &[])?;
        }
        c.wait_nodes(n)?;
        Ok(c)
    }

    /// The state directory of the master.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("master-state")
    }

    fn base_env(&self, cmd: &mut Command) {
        cmd.env_remove("POOL_COOKIE")
            .env("POOL_COOKIE_FILE", &self.cookie)
            .env("HOME", self.dir.path())
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
    }

    /// Starts (or restarts) the master with `master_args` and waits until
    /// its port answers.
    pub fn start_master(&mut self) -> Result<()> {
        let mut cmd = Command::new(cargo_bin("pool-master"));
        self.base_env(&mut cmd);
        cmd.args(["--listen", &self.master_addr, "--http", &self.http_addr])
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(&self.master_args);
        self.master = Some(Proc::spawn("pool-master", cmd)?);
        let addr = self.master_addr.clone();
        wait_until("the master to listen", Duration::from_secs(15), || {
            std::net::TcpStream::connect(&addr).ok().map(|_| ())
        })
        .map_err(|e| anyhow!("{e}; master log:\n{}", self.master_log()))
    }

    /// The master's log so far.
    pub fn master_log(&self) -> String {
        self.master.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// Starts a worker named `name` with extra arguments (it joins in the
    /// background; see [`wait_nodes`](Self::wait_nodes)).
    pub fn start_worker(&mut self, name: &str, extra: &[&str]) -> Result<()> {
        let mut cmd = Command::new(cargo_bin("pool-worker"));
        self.base_env(&mut cmd);
        cmd.args([
            "--master",
            &self.master_addr,
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--report-interval", "200ms"])
        .args(extra);
        let p = Proc::spawn(&format!("pool-worker {name}"), cmd)?;
        self.workers.push((name.to_owned(), p));
        Ok(())
    }

    /// The worker process named `name`.
    pub fn worker(&mut self, name: &str) -> &mut Proc {
        &mut self
            .workers
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no worker {name}"))
            .1
    }

    /// Runs `poolctl --json ARGS` and parses its output.
    pub fn poolctl_json(&self, args: &[&str]) -> Result<Value> {
        let out = self.poolctl_raw(&[&["--json"], args].concat())?;
        if !out.status.success() {
            bail!(
                "poolctl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "poolctl {} printed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs `poolctl ARGS` and returns its output, whatever its status.
    pub fn poolctl_raw(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(cargo_bin("poolctl"));
        self.base_env(&mut cmd);
        cmd.env("RUST_LOG", "error")
            .args(["--master", &self.master_addr])
            .args(args);
        cmd.output().context("running poolctl")
    }

    /// Live node names, from `poolctl nodes`.
    pub fn node_names(&self) -> Result<Vec<String>> {
        let v = self.poolctl_json(&["nodes"])?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until exactly `n` workers are live.
    pub fn wait_nodes(&self, n: usize) -> Result<Vec<String>> {
        wait_until(
            &format!("{n} live workers"),
            Duration::from_secs(20),
            || self.node_names().ok().filter(|v| v.len() == n),
        )
        .map_err(|e| anyhow!("{e}; master log:\n{}", self.master_log()))
    }

    /// Writes a file in the test directory and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }
}

fn set_mode_600(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}
