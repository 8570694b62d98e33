//! Support for cluster tests: start the real `pool-master`, `pool-worker`
//! and `poolctl` binaries on loopback, each test in its own temporary
//! directory with its own cookie, every child killed when the test ends.
//!
//! - [`Cluster`]: a master plus workers, and `poolctl` against them.
//! - [`wait_until`]: a bounded wait for a condition (never a bare sleep).
//! - [`Proc`]: a child process killed (SIGKILL) when dropped.
//! - [`Ctl`]: `poolctl` run under a wrapper (inside a network namespace of
//!   [`netns`]), its JSON read loosely through [`views`].
//!
//! The binaries are found the way chitchat's `cargo_bin` does: an
//! environment variable (`POOL_MASTER_BIN`, `POOL_WORKER_BIN`,
//! `POOLCTL_BIN`, `TEST_WORKER_BIN`) first, else the target directory
//! beside the test executable. `cargo test --workspace` builds them before
//! any test runs; `test-worker` (this crate's binary: the built-ins plus
//! test-only functions, see `src/bin/test-worker.rs`) is built by
//! `cargo test -p pool-cluster-tests` itself.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

pub mod guests;
pub mod netns;
pub mod text;
pub mod views;

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

/// Waits until node `name`, in the `poolctl nodes --json` list that
/// `nodes` reads, shows as unreachable from node `from`; its entry
/// (`{from, cause, since_ms}`).
pub fn wait_unreachable_from(
    name: &str,
    from: &str,
    timeout: Duration,
    mut nodes: impl FnMut() -> Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("{name} to show unreachable from {from}"),
        timeout,
        || {
            let list = nodes()?;
            let node = list.as_array()?.iter().find(|n| n["name"] == name)?.clone();
            last = node.clone();
            node["unreachable_from"]
                .as_array()?
                .iter()
                .find(|u| u["from"] == from)
                .cloned()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}: {name} is {last}"))
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
    /// The thread copying its stderr into `log`; it ends when the pipe
    /// closes, i.e. when the process has exited.
    reader: Option<std::thread::JoinHandle<()>>,
    /// How it exited, once reaped by [`terminate`](Proc::terminate) or
    /// [`wait_exit`](Proc::wait_exit).
    status: Option<ExitStatus>,
}

impl Proc {
    fn spawn(label: &str, mut cmd: Command) -> Result<Proc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting {label}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut reader = None;
        // The last 1,000 to 2,000 lines are kept; `TEST_LOG_LINES` keeps
        // more (to read a failed run at a debug log level).
        let keep: usize = std::env::var("TEST_LOG_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            reader = Some(std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push(line);
                    if l.len() > 2 * keep {
                        l.drain(..keep);
                    }
                }
            }));
        }
        Ok(Proc {
            label: label.to_owned(),
            child: Some(child),
            log,
            reader,
            status: None,
        })
    }

    /// Starts `cmd` as a kill-on-drop child (stdin and stdout closed,
    /// stderr kept for [`log`](Self::log)).
    pub fn start(label: &str, cmd: Command) -> Result<Proc> {
        Proc::spawn(label, cmd)
    }

    /// Reaps the child if it has exited; true if it has.
    fn reap(&mut self) -> bool {
        match self.child.as_mut() {
            None => true,
            Some(c) => match c.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    self.child = None;
                    self.drain_log();
                    true
                }
                _ => false,
            },
        }
    }

    /// After the exit: lets the stderr reader take the last lines (the
    /// fatal error is usually the very last one), for at most 2 s in case
    /// a grandchild still holds the pipe.
    fn drain_log(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        if let Some(r) = self.reader.take() {
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
    }

    /// Waits (up to `timeout`) for it to exit by itself; its exit status,
    /// or `None` if it still runs (or was killed by [`kill9`](Self::kill9)).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.reap() {
                return self.status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
            if self.reap() {
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

/// Environment variables of the binaries, cleared in every child so that
/// each test sets exactly what it means to.
const POOL_SETTINGS: &[&str] = &[
    "POOL_MASTER",
    "POOL_NAME",
    "POOL_LISTEN",
    "POOL_ADVERTISE",
    "POOL_CAPACITY",
    "POOL_LABELS",
    "POOL_REPORT_INTERVAL",
    "POOL_THREADS",
    "POOL_CONFIG",
    "POOL_HTTP",
    "POOL_STATE_DIR",
    "POOL_PLACEMENT",
    "POOL_NODE_TIMEOUT",
    "POOL_TREE",
    "POOL_LOG_JSON",
    "POOL_HTTP_TOKEN",
    "POOL_HTTP_TOKEN_FILE",
    "POOL_TLS_CERT",
    "POOL_TLS_KEY",
    "POOL_TLS_CA",
    "POOL_HANDSHAKE_TIMEOUT",
    "POOL_MAX_CONNECTIONS",
    "POOL_MAX_FRAME",
    "POOL_PEER_QUEUE",
    "POOL_MAX_MAILBOX",
];

/// How many times a first master start is retried on fresh ports.
const PORT_RETRIES: u32 = 3;

/// What the master logs when a port it was given is taken.
const IN_USE: &str = "Address already in use";

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
        // Settings of the developer's shell must not leak into a test.
        for var in POOL_SETTINGS {
            cmd.env_remove(var);
        }
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
    ///
    /// A port from [`free_port`] is free when chosen, but another process
    /// may bind it before the master does: on a first start (nothing has
    /// been told the addresses yet) a master that reports its address in
    /// use is started again on fresh ports, at most [`PORT_RETRIES`] times.
    pub fn start_master(&mut self) -> Result<()> {
        let first = self.master.is_none() && self.workers.is_empty();
        let mut retries = 0;
        loop {
            match self.start_master_once() {
                Err(e) if first && retries < PORT_RETRIES && e.to_string().contains(IN_USE) => {
                    retries += 1;
                    self.master = None;
                    self.master_addr = format!("127.0.0.1:{}", free_port());
                    self.http_addr = format!("127.0.0.1:{}", free_port());
                }
                r => return r,
            }
        }
    }

    fn start_master_once(&mut self) -> Result<()> {
        let mut cmd = Command::new(cargo_bin("pool-master"));
        self.base_env(&mut cmd);
        cmd.args(["--listen", &self.master_addr, "--http", &self.http_addr])
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(&self.master_args);
        let master = Proc::spawn("pool-master", cmd)?;
        let addr = self.master_addr.clone();
        let res = wait_until("the master to listen", Duration::from_secs(15), || {
            if master.log().contains(IN_USE) {
                return Some(Err(()));
            }
            std::net::TcpStream::connect(&addr).ok().map(|_| Ok(()))
        });
        self.master = Some(master);
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(anyhow!(
                "the master could not bind its port; master log:\n{}",
                self.master_log()
            )),
            Err(e) => Err(anyhow!("{e}; master log:\n{}", self.master_log())),
        }
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
        json_output(args, &out)
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

    /// A cluster whose master runs with `master_args`, and `n` workers
    /// named w1..wn, all joined.
    pub fn start_with(master_args: &[&str], n: usize) -> Result<Cluster> {
        let mut c = Cluster::new()?;
        c.master_args = master_args.iter().map(|a| (*a).to_owned()).collect();
        c.start_master()?;
        for i in 1..=n {
            c.start_worker(&format!("w{i}"), &[])?;
        }
        c.wait_nodes(n)?;
        Ok(c)
    }

    /// A command for one of our binaries (`bin` as [`cargo_bin`] finds it)
    /// with this cluster's environment: its cookie, `HOME` in the test
    /// directory, the developer's `POOL_*` settings cleared. No flags.
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(cargo_bin(bin));
        self.base_env(&mut cmd);
        cmd
    }

    /// Starts `cmd` as the worker process known as `name` (kill-on-drop,
    /// found by [`worker`](Self::worker)); it joins in the background.
    pub fn add_worker(&mut self, name: &str, cmd: Command) -> Result<()> {
        let p = Proc::spawn(&format!("worker {name}"), cmd)?;
        self.workers.push((name.to_owned(), p));
        Ok(())
    }

    /// Starts a `test-worker` (the built-ins plus the `test.*` functions)
    /// named `name`, with the same defaults as
    /// [`start_worker`](Self::start_worker) and extra arguments.
    pub fn start_test_worker(&mut self, name: &str, extra: &[&str]) -> Result<()> {
        let mut cmd = self.command("test-worker");
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
        self.add_worker(name, cmd)
    }

    /// Runs `poolctl ARGS`, expecting it to fail; returns its exit code
    /// and its stderr (trimmed).
    pub fn poolctl_fail(&self, args: &[&str]) -> Result<(i32, String)> {
        let out = self.poolctl_raw(args)?;
        if out.status.success() {
            bail!(
                "poolctl {} succeeded; it printed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }

    /// `poolctl --json nodes`: one object per live node.
    pub fn nodes(&self) -> Result<Vec<Value>> {
        let v = self.poolctl_json(&["nodes"])?;
        v.as_array()
            .cloned()
            .ok_or_else(|| anyhow!("poolctl nodes printed {v}, not an array"))
    }

    /// The `poolctl nodes` entry of the live node `name`, if it is live.
    pub fn node(&self, name: &str) -> Result<Option<Value>> {
        Ok(self.nodes()?.into_iter().find(|n| n["name"] == name))
    }

    /// Waits until `poolctl nodes` no longer lists `name`; returns how long
    /// that took.
    pub fn wait_node_gone(&self, name: &str, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        wait_until(&format!("{name} to be gone"), timeout, || {
            self.node(name).ok().and_then(|n| n.is_none().then_some(()))
        })
        .map_err(|e| anyhow!("{e}; master log:\n{}", self.master_log()))?;
        Ok(start.elapsed())
    }

    /// `poolctl --json spawn ARGS`: the new pid and its node's name.
    pub fn spawn(&self, args: &[&str]) -> Result<(String, String)> {
        let v = self.poolctl_json(&[&["spawn"], args].concat())?;
        match (v["pid"].as_str(), v["node"].as_str()) {
            (Some(p), Some(n)) => Ok((p.to_owned(), n.to_owned())),
            _ => bail!("poolctl spawn printed {v}, not {{pid, node}}"),
        }
    }

    /// `poolctl --json call PID REQUEST`: the reply.
    pub fn call(&self, pid: &str, request: &Value) -> Result<Value> {
        self.poolctl_json(&["call", pid, &request.to_string()])
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

// ----- pool applications, placement and failover (cluster_apps, failover_bench)

/// How to start a worker beyond its name (see [`Cluster::start_worker_with`]).
#[derive(Debug, Clone, Default)]
pub struct WorkerOpts {
    /// `--listen` (default `127.0.0.1:0`).
    pub listen: Option<String>,
    /// A command the worker runs under, e.g. `["ip", "netns", "exec", "ns1"]`.
    pub wrapper: Vec<String>,
    /// Extra environment, e.g. `("RUST_LOG", "info,supervisor::runtime=debug")`.
    pub env: Vec<(String, String)>,
    /// Extra arguments (`--label K=V`, ...).
    pub args: Vec<String>,
}

impl WorkerOpts {
    /// Options with these extra arguments.
    pub fn args(args: &[&str]) -> WorkerOpts {
        WorkerOpts {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            ..WorkerOpts::default()
        }
    }
}

impl Cluster {
    /// A `pool-master` command with this cluster's cookie, home and log
    /// level, and no arguments (for a master the test starts and watches
    /// itself, e.g. one that must refuse to start).
    pub fn master_command(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("pool-master"));
        self.base_env(&mut cmd);
        cmd
    }

    /// Starts a worker named `name` as `opts` say (it joins in the
    /// background; see [`wait_nodes`](Self::wait_nodes)).
    pub fn start_worker_with(&mut self, name: &str, opts: &WorkerOpts) -> Result<()> {
        let bin = cargo_bin("pool-worker");
        let mut cmd = match opts.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        self.base_env(&mut cmd);
        cmd.args(["--master", &self.master_addr, "--name", name])
            .args(["--listen", opts.listen.as_deref().unwrap_or("127.0.0.1:0")])
            .args(["--report-interval", "200ms"])
            .args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let p = Proc::spawn(&format!("pool-worker {name}"), cmd)?;
        self.workers.push((name.to_owned(), p));
        Ok(())
    }

    /// Every process of the pool (`poolctl ps`).
    pub fn ps(&self) -> Result<Vec<pool_proto::ProcessInfo>> {
        Ok(serde_json::from_value(self.poolctl_json(&["ps"])?)?)
    }

    /// `poolctl tree start FILE`.
    pub fn tree_start(&self, file: &Path) -> Result<Vec<pool_proto::AppSummary>> {
        let file = file.to_str().context("a UTF-8 path")?;
        Ok(serde_json::from_value(
            self.poolctl_json(&["tree", "start", file])?,
        )?)
    }

    /// `poolctl tree ls`.
    pub fn tree_ls(&self) -> Result<Vec<pool_proto::AppSummary>> {
        Ok(serde_json::from_value(self.poolctl_json(&["tree", "ls"])?)?)
    }

    /// The `tree ls` line of app `id`.
    pub fn app(&self, id: &str) -> Result<pool_proto::AppSummary> {
        self.tree_ls()?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| anyhow!("tree ls does not list {id}"))
    }

    /// `poolctl tree show ID`.
    pub fn tree_show(&self, id: &str) -> Result<pool_proto::TreeView> {
        Ok(serde_json::from_value(
            self.poolctl_json(&["tree", "show", id])?,
        )?)
    }

    /// Waits until the live workers are exactly `names` (in any order).
    pub fn wait_node_set(&self, names: &[&str]) -> Result<()> {
        let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        wait_until(
            &format!("live workers {want:?}"),
            Duration::from_secs(20),
            || {
                let mut got = self.node_names().ok()?;
                got.sort();
                (got == want).then_some(())
            },
        )
        .map_err(|e| anyhow!("{e}; master log:\n{}", self.master_log()))
    }

    /// Makes the master's least-loaded choice avoid the named workers for
    /// the next placement: starts `n` idle `builtin.echo` processes on each
    /// and waits until their reports count them (between idle nodes the
    /// tie-break is processes per capacity). Returns the fillers' pids.
    pub fn load_nodes(&self, nodes: &[&str], n: usize) -> Result<Vec<String>> {
        let procs = |v: &Value, name: &str| {
            v.as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name))
                .and_then(|x| x["procs"].as_u64())
        };
        let before = self.poolctl_json(&["nodes"])?;
        let mut want = Vec::new();
        let mut pids = Vec::new();
        for node in nodes {
            let base = procs(&before, node).with_context(|| format!("{node} is not live"))?;
            want.push((*node, base + n as u64));
            for _ in 0..n {
                let v = self.poolctl_json(&["spawn", "builtin.echo", "{}", "--on", node])?;
                pids.push(v["pid"].as_str().unwrap_or_default().to_owned());
            }
        }
        wait_until(
            &format!("reports of {n} more processes on {nodes:?}"),
            Duration::from_secs(10),
            || {
                let v = self.poolctl_json(&["nodes"]).ok()?;
                want.iter()
                    .all(|(name, at_least)| procs(&v, name).is_some_and(|p| p >= *at_least))
                    .then_some(())
            },
        )?;
        Ok(pids)
    }
}

/// The processes of app `app` by owner (`app`, `app/sup`, `app/sup/child`),
/// leaving out the worker's `app.watch` helper: one entry per supervisor
/// and child, each with every process that runs for it (one, when all is
/// well).
pub fn app_processes(
    ps: &[pool_proto::ProcessInfo],
    app: &str,
) -> std::collections::BTreeMap<String, Vec<pool_proto::ProcessInfo>> {
    let prefix = format!("{app}/");
    let mut out: std::collections::BTreeMap<String, Vec<pool_proto::ProcessInfo>> =
        std::collections::BTreeMap::new();
    for p in ps {
        let Some(owner) = &p.owner else { continue };
        if p.function == "app.watch" || (owner != app && !owner.starts_with(&prefix)) {
            continue;
        }
        out.entry(owner.clone()).or_default().push(p.clone());
    }
    out
}

/// Owners that more than one process runs for, with their pids and nodes
/// (empty when every supervisor and child runs at most once).
pub fn duplicates(
    by_owner: &std::collections::BTreeMap<String, Vec<pool_proto::ProcessInfo>>,
) -> Vec<String> {
    by_owner
        .iter()
        .filter(|(_, ps)| ps.len() > 1)
        .map(|(o, ps)| {
            let at: Vec<String> = ps
                .iter()
                .map(|p| format!("{} on {}", p.pid, p.node))
                .collect();
            format!("{o}: {}", at.join(", "))
        })
        .collect()
}

/// Every entry of a tree view with its path (`app`, `app/sup`,
/// `app/sup/child`), parents before their children, in start order.
pub fn tree_entries(view: &pool_proto::TreeView) -> Vec<(String, pool_proto::TreeView)> {
    fn walk(v: &pool_proto::TreeView, path: String, out: &mut Vec<(String, pool_proto::TreeView)>) {
        out.push((path.clone(), v.clone()));
        for c in v.children.iter().flatten() {
            walk(c, format!("{path}/{}", c.id), out);
        }
    }
    let mut out = Vec::new();
    walk(view, view.id.clone(), &mut out);
    out
}

// ----- poolctl under a wrapper, loose views (cluster_chaos) -------------------

impl Cluster {
    /// A command for one of our binaries (as [`command`](Self::command))
    /// run under `wrapper` (e.g. `ip netns exec NS`; empty: directly).
    pub fn command_in(&self, wrapper: &[String], bin: &str) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(cargo_bin(bin));
                c
            }
            None => Command::new(cargo_bin(bin)),
        };
        self.base_env(&mut cmd);
        cmd
    }

    /// Starts `cmd` as the worker known as `name`, in place of an earlier
    /// process of that name (killed if it still runs): a new incarnation
    /// with the same name.
    pub fn replace_worker(&mut self, name: &str, cmd: Command) -> Result<()> {
        self.workers.retain(|(n, _)| n != name);
        self.add_worker(name, cmd)
    }

    /// `poolctl` against this cluster's master, run directly.
    pub fn ctl(&self) -> Ctl<'_> {
        Ctl {
            cluster: self,
            wrapper: Vec::new(),
        }
    }

    /// `poolctl` against this cluster's master, run under `wrapper` (e.g.
    /// inside the master's network namespace).
    pub fn ctl_in(&self, wrapper: Vec<String>) -> Ctl<'_> {
        Ctl {
            cluster: self,
            wrapper,
        }
    }
}

/// `poolctl --master <the cluster's master>` run under a wrapper, with the
/// cluster's cookie and environment; the tree views read loosely
/// ([`views`]).
#[derive(Debug, Clone)]
pub struct Ctl<'a> {
    /// The cluster (its master address, cookie, environment).
    cluster: &'a Cluster,
    /// The command prefix (`ip netns exec NS`), or empty.
    wrapper: Vec<String>,
}

impl Ctl<'_> {
    /// Runs `poolctl ARGS`; its output, whatever its status.
    pub fn raw(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = self.cluster.command_in(&self.wrapper, "poolctl");
        cmd.env("RUST_LOG", "error")
            .args(["--master", &self.cluster.master_addr])
            .args(args);
        cmd.output().context("running poolctl")
    }

    /// Runs `poolctl --json ARGS` and parses its output.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.raw(&[&["--json"], args].concat())?;
        json_output(args, &out)
    }

    /// Runs `poolctl ARGS`, expecting it to fail: its exit code and its
    /// stderr (trimmed).
    pub fn fail(&self, args: &[&str]) -> Result<(i32, String)> {
        let out = self.raw(args)?;
        if out.status.success() {
            bail!(
                "poolctl {} succeeded; it printed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }

    /// `poolctl nodes`: one object per live node.
    pub fn nodes(&self) -> Result<Vec<Value>> {
        let v = self.json(&["nodes"])?;
        v.as_array()
            .cloned()
            .ok_or_else(|| anyhow!("poolctl nodes printed {v}, not an array"))
    }

    /// Live node names, sorted.
    pub fn node_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .nodes()?
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Live node names with their incarnations (`name` → `id`).
    pub fn node_ids(&self) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(self
            .nodes()?
            .iter()
            .filter_map(|n| Some((n["name"].as_str()?.to_owned(), n["id"].as_str()?.to_owned())))
            .collect())
    }

    /// Every process of the pool (`poolctl ps`).
    pub fn ps(&self) -> Result<Vec<pool_proto::ProcessInfo>> {
        Ok(serde_json::from_value(self.json(&["ps"])?)?)
    }

    /// The global names (`poolctl names`).
    pub fn names(&self) -> Result<std::collections::BTreeMap<String, pool_proto::Pid>> {
        Ok(serde_json::from_value(self.json(&["names"])?)?)
    }

    /// `poolctl tree ls`.
    pub fn apps(&self) -> Result<Vec<views::AppLine>> {
        Ok(serde_json::from_value(self.json(&["tree", "ls"])?)?)
    }

    /// The `tree ls` line of app `id`.
    pub fn app(&self, id: &str) -> Result<views::AppLine> {
        self.apps()?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| anyhow!("tree ls does not list {id}"))
    }

    /// `poolctl tree show ID`.
    pub fn show(&self, id: &str) -> Result<views::Entry> {
        Ok(serde_json::from_value(self.json(&["tree", "show", id])?)?)
    }
}

/// `GET path` from an HTTP server on `addr` (the master's HTTP port):
/// the status code and the body.
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // HTTP/1.0: the server closes after the answer and sends no chunks.
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path}: no end of headers in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("GET {path}: no status in {head:?}"))?;
    Ok((code, body.to_owned()))
}

/// The JSON that `poolctl --json ARGS` printed, or an error with its
/// exit status and stderr (or the text that did not parse).
pub fn json_output(args: &[&str], out: &Output) -> Result<Value> {
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
