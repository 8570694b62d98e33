//! What README and `deploy/` promise an operator, checked against the real
//! binaries and files: the "Running a pool by hand" commands run as printed,
//! and every example tree's label constraints can be met by the workers of
//! `deploy/docker-compose.yml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use pool_cluster_tests::{Proc, cargo_bin, free_port, wait_until};
use pool_proto::{AppStatus, ChildSpecData, LabelReq, Placement, SupervisorSpec};

/// The workspace root (README, examples/, deploy/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The lines of the first `sh` code block under the heading `heading`.
fn readme_block(heading: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(root().join("README.md"))?;
    let start = text
        .find(&format!("\n{heading}\n"))
        .ok_or_else(|| anyhow!("README has no heading {heading:?}"))?;
    let rest = &text[start..];
    let open = rest
        .find("```sh\n")
        .context("no ```sh block under the heading")?
        + 6;
    let close = rest[open..]
        .find("```")
        .context("the block is not closed")?;
    Ok(rest[open..open + close]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A shell line without its trailing `# comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (i == 0 || line[..i].ends_with(' ')) => {
                return line[..i].trim_end();
            }
            _ => {}
        }
    }
    line.trim_end()
}

/// The first pid (`<node.serial>`) in `text`.
fn first_pid(text: &str) -> Option<String> {
    let start = text.find('<')?;
    let end = start + text[start..].find('>')?;
    let pid = &text[start..=end];
    pid.parse::<pool_proto::Pid>().ok().map(|_| pid.to_owned())
}

/// The environment every README command gets: none of the developer's
/// `POOL_*` settings, a cookie of its own, a home in the test's directory
/// (the default cookie and state live there), and the ports of this test
/// through the variables the binaries read (the printed commands name
/// none: they rely on the defaults).
struct Env {
    dir: tempfile::TempDir,
    cookie: PathBuf,
    master: String,
    http: String,
    bin_dir: PathBuf,
}

impl Env {
    fn new() -> Result<Env> {
        let dir = tempfile::tempdir()?;
        let cookie = dir.path().join("cookie");
        std::fs::write(&cookie, format!("readme-cookie-{}\n", std::process::id()))?;
        std::fs::set_permissions(&cookie, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let bin_dir = cargo_bin("pool-master")
            .parent()
            .context("the binary has a directory")?
            .to_path_buf();
        Ok(Env {
            dir,
            cookie,
            master: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            bin_dir,
        })
    }

    /// `line` run by `sh` in the workspace root, `target/release/` made
    /// the test's binary directory.
    fn command(&self, line: &str) -> Command {
        let bin = format!("{}/", self.bin_dir.display());
        let line = line.replace("target/release/", &bin);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec {line}"))
            .current_dir(root());
        for (k, _) in std::env::vars() {
            if k.starts_with("POOL_") && !k.ends_with("_BIN") {
                cmd.env_remove(k);
            }
        }
        cmd.env("POOL_COOKIE_FILE", &self.cookie)
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info");
        if line.contains("pool-master") {
            cmd.env("POOL_LISTEN", &self.master)
                .env("POOL_HTTP", &self.http);
        } else {
            cmd.env("POOL_MASTER", &self.master);
        }
        cmd
    }

    /// Runs a foreground line; its output, or why it failed.
    fn run(&self, line: &str) -> Result<Output> {
        let out = self
            .command(line)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {line}"))?;
        ensure!(
            out.status.success(),
            "`{line}` exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    /// The live workers' names (`poolctl --json nodes`).
    fn nodes(&self) -> Option<Vec<String>> {
        let out = self
            .command("target/release/poolctl --json nodes")
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(
            v.as_array()?
                .iter()
                .filter_map(|n| n["name"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}

/// README's "Running a pool by hand" runs as printed: every command exits
/// 0 (the master and workers keep running), the `call` gets an answer from
/// the pid the spawn printed, and `tree show demo` shows the demo tree
/// running, its `zone=b` child included.
#[test]
fn readme_by_hand_runs_as_printed() -> Result<()> {
    let lines = readme_block("## Running a pool by hand")?;
    ensure!(lines.len() >= 8, "the block is too short: {lines:?}");
    let env = Env::new()?;
    let mut daemons: Vec<Proc> = Vec::new();
    let mut last_pid: Option<String> = None;
    let mut ran = 0;
    for raw in &lines {
        let line = strip_comment(raw);
        // This test is the build: the binaries are the ones under test.
        if line.starts_with("cargo build") {
            continue;
        }
        if line.contains("pool-master") || line.contains("pool-worker") {
            let label = line.rsplit('/').next().unwrap_or(line).to_owned();
            let mut p = Proc::start(&label, env.command(line))?;
            if line.contains("pool-master") {
                let addr = env.master.clone();
                wait_until("the master to listen", Duration::from_secs(15), || {
                    std::net::TcpStream::connect(&addr).ok().map(|_| ())
                })
                .map_err(|e| anyhow!("{e}; log:\n{}", p.log()))?;
            } else {
                let name = line
                    .split_whitespace()
                    .skip_while(|w| *w != "--name")
                    .nth(1)
                    .context("a worker line names its worker")?
                    .to_owned();
                wait_until(&format!("{name} to join"), Duration::from_secs(15), || {
                    env.nodes()?.contains(&name).then_some(())
                })
                .map_err(|e| anyhow!("{e}; log:\n{}", p.log()))?;
            }
            ensure!(p.is_running(), "`{line}` exited:\n{}", p.log());
            daemons.push(p);
            ran += 1;
            continue;
        }
        let line = if line.contains("'<pid printed above>'") {
            let pid = last_pid
                .clone()
                .context("the call line comes after a spawn that printed a pid")?;
            line.replace("'<pid printed above>'", &format!("'{pid}'"))
        } else {
            line.to_owned()
        };
        let out = env.run(&line)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // A single spawn prints its pid (a `--count` spawn a summary).
        if line.contains(" spawn ")
            && let Some(pid) = first_pid(&stdout)
        {
            last_pid = Some(pid);
        }
        if line.contains(" call ") {
            ensure!(
                stdout.contains("hello"),
                "the echo did not answer: {stdout}"
            );
        }
        ran += 1;
    }
    ensure!(
        daemons.len() == 3,
        "a master and two workers: {}",
        daemons.len()
    );
    ensure!(ran == lines.len() - 1, "every line but the build ran");
    // The tree runs, every child on a node, the counter on zone=b (w2).
    let view = wait_until("the demo tree to run", Duration::from_secs(20), || {
        let out = env.run("target/release/poolctl --json tree ls").ok()?;
        let apps: Vec<pool_proto::AppSummary> = serde_json::from_slice(&out.stdout).ok()?;
        apps.iter()
            .any(|a| a.id == "demo" && a.status == AppStatus::Running)
            .then_some(())?;
        let out = env
            .run("target/release/poolctl --json tree show demo")
            .ok()?;
        let view: pool_proto::TreeView = serde_json::from_slice(&out.stdout).ok()?;
        let children = view.children.as_ref()?;
        children.iter().all(|c| c.pid.is_some()).then_some(view)
    })?;
    let counter = view
        .children
        .iter()
        .flatten()
        .find(|c| c.id == "counter")
        .context("the demo tree has a counter")?;
    ensure!(
        counter.node.as_deref() == Some("w2"),
        "the zone=b child runs on w2: {counter:?}"
    );
    for d in &mut daemons {
        ensure!(d.is_running(), "{} stopped:\n{}", d.label, d.log());
    }
    Ok(())
}

/// The label constraints of a supervisor's children, nested ones included.
fn label_constraints(sup: &SupervisorSpec, out: &mut Vec<(String, String)>) {
    for c in &sup.children {
        let ChildSpecData {
            id,
            placement,
            supervisor,
            ..
        } = c;
        if let Some(Placement::Label(l)) = placement {
            out.push((format!("{}/{id}", sup.id), l.clone()));
        }
        if let Some(s) = supervisor {
            label_constraints(s, out);
        }
    }
}

/// The labels of each worker of `deploy/docker-compose.yml`, read from its
/// `POOL_NAME` and `POOL_LABELS` environment lines (the file keeps one
/// service's environment together, each on its own line).
fn compose_workers() -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let text = std::fs::read_to_string(root().join("deploy/docker-compose.yml"))?;
    let mut workers = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("POOL_NAME:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("POOL_LABELS:") {
            let n = name.take().context("POOL_LABELS before its POOL_NAME")?;
            let labels = LabelReq::parse_list(v.trim())?
                .into_iter()
                .map(|l| (l.key, l.value))
                .collect();
            workers.insert(n, labels);
        }
    }
    Ok(workers)
}

/// Every label constraint of every example tree (`examples/trees/*.toml`)
/// is met by at least one worker of `deploy/docker-compose.yml`, so that
/// each tree starts in the compose pool as it does by hand.
#[test]
fn example_trees_fit_the_compose_workers() -> Result<()> {
    let workers = compose_workers()?;
    ensure!(workers.len() >= 2, "compose workers: {workers:?}");
    let mut checked = 0;
    let mut trees = 0;
    for entry in std::fs::read_dir(root().join("examples/trees"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        trees += 1;
        let spec = pool_proto::tree::parse_tree_file(&path, |_| true)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let mut constraints = Vec::new();
        label_constraints(&spec.supervisor, &mut constraints);
        for (child, constraint) in constraints {
            let reqs = LabelReq::parse_list(&constraint)?;
            let fits = workers.values().any(|labels| {
                reqs.iter()
                    .all(|r| labels.get(&r.key).is_some_and(|v| *v == r.value))
            });
            if !fits {
                bail!(
                    "{} child {child} needs {constraint}, which no compose worker has: {workers:?}",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    ensure!(trees >= 4, "the example trees were found: {trees}");
    ensure!(
        checked >= 1,
        "demo.toml pins a zone: at least one constraint"
    );
    Ok(())
}

/// README's "Shipping code" block runs as printed against a master and a
/// stock worker: the push prints a sha-256, the word count's result is 3,
/// and the spin with a fuel budget fails, saying it ran out of fuel.
#[test]
fn readme_wasm_block_runs_as_printed() -> Result<()> {
    let lines = readme_block("## Shipping code: WebAssembly processes")?;
    ensure!(lines.len() == 3, "push, count, spin: {lines:?}");
    // The block pushes the module the demo builds.
    let module = pool_cluster_tests::guests::guest_module("demo");
    ensure!(
        module == root().join("target/guests/demo.wasm"),
        "the README's path is where the module is built: {}",
        module.display()
    );
    let env = Env::new()?;
    let master = Proc::start("pool-master", env.command("target/release/pool-master"))?;
    let addr = env.master.clone();
    wait_until("the master to listen", Duration::from_secs(15), || {
        std::net::TcpStream::connect(&addr).ok().map(|_| ())
    })
    .map_err(|e| anyhow!("{e}; log:\n{}", master.log()))?;
    let worker = Proc::start(
        "pool-worker",
        env.command("target/release/pool-worker --name w1"),
    )?;
    wait_until("w1 to join", Duration::from_secs(15), || {
        env.nodes()?.contains(&"w1".to_owned()).then_some(())
    })
    .map_err(|e| anyhow!("{e}; log:\n{}", worker.log()))?;

    let line = |i: usize| format!("target/release/{}", strip_comment(&lines[i]));
    let out = env.run(&line(0))?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ensure!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "the push printed a sha-256: {hash}"
    );
    let out = env.run(&format!("{} --timeout 60s", line(1)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(stdout.contains("result: 3"), "the word count: {stdout}");
    let out = env.command(&line(2)).stdin(Stdio::null()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1) && stderr.contains("out of fuel"),
        "the spin ends out of fuel: {stderr}"
    );
    Ok(())
}
