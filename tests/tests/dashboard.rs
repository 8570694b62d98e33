//! The master's HTTP side with the real binaries on loopback: the live
//! dashboard in a real headless Chromium (driven over WebDriver by
//! `chromedriver`), and the bearer token that guards the operations,
//! given to `pool-master` by file or environment.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them). Without them a test fails under CI (the `CI`
//! variable is set) and is skipped with a loud notice elsewhere, so that
//! `cargo test --workspace` stays green on a machine without a browser.
//!
//! `dashboard_screenshot` (ignored) makes `docs/dashboard.png`:
//! `cargo test -p pool-cluster-tests --test dashboard -- --ignored --nocapture`
//! (`DASHBOARD_SCREENSHOT=FILE` writes elsewhere).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::{Client, ClientBuilder};
use pool_cluster_tests::text::tail;
use pool_cluster_tests::{Cluster, Proc, free_port, wait_until};
use serde_json::{Value, json};

/// Bound on every wait for the page: debug binaries and a browser on a
/// loaded 2-core machine.
const PAGE_WAIT: Duration = Duration::from_secs(30);

/// The window the page is looked at in.
const WINDOW: (u32, u32) = (1440, 1000);

// ----- the browser ------------------------------------------------------------

/// A headless Chromium under `chromedriver`, with a WebDriver session.
///
/// `chromedriver` runs in a process group of its own, which the browser
/// it starts joins: dropping this kills that group (SIGKILL), so no browser
/// outlives a test, even one that panicked before [`close`](Self::close).
struct Browser {
    /// The WebDriver session; `None` once closed.
    client: Option<Client>,
    /// `chromedriver` (its process group is killed on drop).
    driver: Proc,
    /// The browser's profile, removed with the test.
    profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver", &self.driver.pid())
            .finish_non_exhaustive()
    }
}

/// What to run, found on `PATH` (or named by `CHROMEDRIVER` and
/// `CHROME_BIN`).
struct Installed {
    /// `chromedriver`.
    driver: PathBuf,
    /// `chromium` (or Chrome).
    browser: PathBuf,
}

/// How to get the browser on Debian.
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// The browser and its driver, if installed. Under CI a missing one is an
/// error; elsewhere the test prints a notice and is skipped (`None`).
fn installed(test: &str) -> Option<Installed> {
    let driver = from_env_or_path("CHROMEDRIVER", &["chromedriver"]);
    let browser = from_env_or_path(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    match (driver, browser) {
        (Some(driver), Some(browser)) => Some(Installed { driver, browser }),
        (driver, browser) => {
            let missing: Vec<&str> = [
                driver.is_none().then_some("chromedriver"),
                browser.is_none().then_some("chromium"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let msg = format!(
                "{test}: {} not found on PATH: install them with `{INSTALL}` (or set CHROMEDRIVER and CHROME_BIN)",
                missing.join(" and ")
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}; CI must run the browser tests (.ci/run installs them)");
            }
            let bar = "!".repeat(78);
            eprintln!("\n{bar}\n!! SKIPPED {msg}\n{bar}\n");
            None
        }
    }
}

/// The file an environment variable names, else the first of `names` on
/// `PATH`.
fn from_env_or_path(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a headless
    /// session in a fresh profile.
    async fn start(tools: &Installed) -> Result<Browser> {
        let port = free_port();
        let mut cmd = Command::new(&tools.driver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Its own process group, which the browser joins: see Drop.
            .process_group(0);
        let driver = Proc::start("chromedriver", cmd)?;
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            client: None,
            driver,
            profile,
        };
        wait_until("chromedriver to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .map_err(|e| anyhow!("{e}; chromedriver log:\n{}", browser.driver.log()))?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tools.browser,
                "args": [
                    "--headless=new",
                    // Tests run as root in CI containers.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", browser.profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| {
                anyhow!(
                    "no WebDriver session ({e}): is chromium-driver the version of chromium? chromedriver log:\n{}",
                    browser.driver.log()
                )
            })?;
        browser.client = Some(client);
        Ok(browser)
    }

    /// The session.
    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Runs `script` in the page and returns what it returns.
    async fn eval(&self, script: &str) -> Result<Value> {
        self.client()
            .execute(script, vec![])
            .await
            .with_context(|| format!("running in the page: {script}"))
    }

    /// Waits (polling every 100 ms, at most `timeout`) until `check` finds
    /// what it wants in the page's [`SNAPSHOT`]; the error shows the last
    /// snapshot.
    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let snap = self.eval(SNAPSHOT).await?;
            if let Some(v) = check(&snap) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for the page to show {what}; it shows:\n{snap:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (the browser quits).
    async fn close(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.driver.pid();
        if pid != 0 {
            // SAFETY: kill(2) on the process group of the chromedriver this
            // test started (its pid is the group id): it and the browser.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        // `driver`'s own drop reaps it.
    }
}

/// What the page shows, as data: the node cards, every tree row, the
/// events, the number of polls, the connection state, the last error (of a
/// poll or of drawing), and the marker the test leaves on `window` (gone if
/// the page was reloaded).
const SNAPSHOT: &str = r#"
const all = (sel) => Array.from(document.querySelectorAll(sel));
return {
  polls: Number(document.body.dataset.polls || 0),
  conn: document.getElementById('conn').dataset.state,
  marker: window.__dashboardTestMarker || null,
  error: document.body.dataset.error || null,
  nodes: all('#nodes .node').map((c) => ({
    name: c.dataset.node,
    state: c.dataset.state,
    procs: c.querySelector('.stat .v.procs') ? c.querySelector('.stat .v.procs').textContent : null,
    chart_lines: c.querySelectorAll('svg.chart path.procs-line').length,
  })),
  rows: all('#trees .row').map((r) => ({
    tree: r.dataset.tree,
    child: r.dataset.child,
    node: r.dataset.node,
    restarts: Number(r.dataset.restarts),
    status: r.dataset.status,
  })),
  events: all('#events li[data-kind]').map((e) => ({
    kind: e.dataset.kind,
    text: e.querySelector('.text').textContent,
  })),
};
"#;

/// The page's row of `child` in `tree`.
fn row<'a>(snap: &'a Value, tree: &str, child: &str) -> Option<&'a Value> {
    snap["rows"]
        .as_array()?
        .iter()
        .find(|r| r["tree"] == tree && r["child"] == child)
}

/// The page's card of node `name` (a live one first).
fn card<'a>(snap: &'a Value, name: &str) -> Option<&'a Value> {
    let nodes = snap["nodes"].as_array()?;
    nodes
        .iter()
        .find(|n| n["name"] == name && n["state"] == "up")
        .or_else(|| nodes.iter().find(|n| n["name"] == name))
}

// ----- the pool -----------------------------------------------------------------

/// A tree file: a root supervisor `id` with one `builtin.echo` child per
/// id in `children`, each placed on the least-loaded node.
fn flat_tree(id: &str, children: &[&str]) -> String {
    let mut s = format!(
        "[supervisor]\nid = \"{id}\"\nstrategy = \"one_for_one\"\nintensity = 50\nperiod = \"10s\"\nchildren = [\n"
    );
    for c in children {
        s.push_str(&format!(
            "  {{ id = \"{c}\", function = \"builtin.echo\", placement = \"least-loaded\" }},\n"
        ));
    }
    s.push_str("]\n");
    s
}

/// Runs a blocking cluster step (the helpers start processes and wait)
/// without stalling the runtime that drives the WebDriver session.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits until tree `id` runs with every child running; its view.
fn wait_tree_running(c: &Cluster, id: &str, children: usize) -> Result<pool_proto::TreeView> {
    wait_until(
        &format!("tree {id} to run with its {children} children"),
        PAGE_WAIT,
        || {
            let v = c.tree_show(id).ok()?;
            let kids = v.children.as_ref()?;
            (kids.len() == children
                && kids
                    .iter()
                    .all(|k| k.status == pool_proto::ChildStatus::Running && k.node.is_some()))
            .then_some(v)
        },
    )
    .map_err(|e| anyhow!("{e}; master log:\n{}", c.master_log()))
}

/// The dashboard shows the pool as it is and follows it live: three
/// workers and a running tree appear with where each child runs; after a
/// worker is killed with `kill -9`, the page — never reloaded, still
/// polling at least once a second — shows that node down, the children
/// that ran there restarted on live nodes with their restart counts, and
/// the events that say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_killed_worker_down_and_its_children_restarted_live() -> Result<()> {
    let Some(tools) =
        installed("dashboard_shows_a_killed_worker_down_and_its_children_restarted_live")
    else {
        return Ok(());
    };
    let children = ["c1", "c2", "c3", "c4", "c5", "c6"];
    let mut c = blocking(|| -> Result<Cluster> {
        // The default node timeout: `kill -9` closes the worker's
        // connection, which the master sees at once; a short timeout would
        // only risk a busy worker declared down.
        let c = Cluster::start(3)?;
        let file = c.write_file("app.toml", &flat_tree("app", &children))?;
        c.tree_start(&file)?;
        Ok(c)
    })?;
    let view = blocking(|| wait_tree_running(&c, "app", children.len()))?;

    let mut browser = Browser::start(&tools).await?;
    let result = killed_worker_scenario(&mut c, &browser, &view).await;
    browser.close().await;
    result.map_err(|e| {
        anyhow!(
            "{e:#}\nmaster log (last lines):\n{}",
            tail(&c.master_log(), 40)
        )
    })
}

async fn killed_worker_scenario(
    c: &mut Cluster,
    browser: &Browser,
    view: &pool_proto::TreeView,
) -> Result<()> {
    let page = format!("http://{}/", c.http_addr);
    browser.client().goto(&page).await?;

    // Where each child runs, by the master's API.
    let root_node = view.node.clone().context("the root runs on a node")?;
    let placed: Vec<(String, String)> = view
        .children
        .iter()
        .flatten()
        .map(|k| (k.id.clone(), k.node.clone().unwrap_or_default()))
        .collect();

    // 1. The three nodes and the tree, each child on its node.
    browser
        .wait_for(
            "three live nodes and the tree as the API has it",
            PAGE_WAIT,
            |s| {
                let up = ["w1", "w2", "w3"]
                    .iter()
                    .all(|n| card(s, n).is_some_and(|c| c["state"] == "up"));
                let tree = row(s, "app", "app").is_some_and(|r| r["node"] == root_node.as_str())
                    && placed.iter().all(|(child, node)| {
                        row(s, "app", child)
                            .is_some_and(|r| r["node"] == node.as_str() && r["status"] == "running")
                    });
                (up && tree).then_some(())
            },
        )
        .await?;
    // Each node gets its load chart once the master has sampled it.
    browser
        .wait_for("a load chart on every node", PAGE_WAIT, |s| {
            ["w1", "w2", "w3"]
                .iter()
                .all(|n| card(s, n).is_some_and(|c| c["chart_lines"].as_u64() >= Some(1)))
                .then_some(())
        })
        .await?;

    // 2. It redraws by itself, at least once a second.
    browser
        .eval("window.__dashboardTestMarker = 'set before the kill'; return null;")
        .await?;
    let polls = |s: &Value| s["polls"].as_u64().unwrap_or(0);
    let p0 = polls(&browser.eval(SNAPSHOT).await?);
    let started = Instant::now();
    browser
        .wait_for("three more polls", Duration::from_secs(6), |s| {
            (polls(s) >= p0 + 3).then_some(())
        })
        .await?;
    let took = started.elapsed();
    ensure!(
        took < Duration::from_millis(4500),
        "three polls took {took:?}: the page must redraw at least once a second"
    );

    // 3. kill -9 a worker that runs children but not the root.
    let victim = ["w1", "w2", "w3"]
        .into_iter()
        .filter(|w| *w != root_node)
        .max_by_key(|w| placed.iter().filter(|(_, n)| n == w).count())
        .context("a worker without the root")?;
    let moved: Vec<String> = placed
        .iter()
        .filter(|(_, n)| n == victim)
        .map(|(child, _)| child.clone())
        .collect();
    ensure!(
        !moved.is_empty(),
        "no child runs on a worker other than the root's ({root_node}): {placed:?}"
    );
    let pid = c.worker(victim).pid();
    c.worker(victim).kill9();

    // 4. Without a reload: the node down, its children restarted elsewhere.
    let snap = browser
        .wait_for(
            &format!("{victim} down and {moved:?} restarted on live nodes"),
            PAGE_WAIT,
            |s| {
                let down = card(s, victim).is_some_and(|c| c["state"] == "down");
                let restarted = moved.iter().all(|child| {
                    row(s, "app", child).is_some_and(|r| {
                        r["status"] == "running"
                            && r["node"] != victim
                            && r["node"] != ""
                            && r["restarts"].as_u64() >= Some(1)
                    })
                });
                (down && restarted).then(|| s.clone())
            },
        )
        .await
        .with_context(|| format!("after `kill -9 {pid}` ({victim})"))?;
    ensure!(
        snap["marker"] == "set before the kill",
        "the page was reloaded (the marker is gone): {snap:#}"
    );
    ensure!(
        snap["conn"] == "live" && snap["error"].is_null(),
        "the page lost the master or failed to draw: {snap:#}"
    );
    // The others stay up, and the children elsewhere were left alone.
    for n in ["w1", "w2", "w3"].iter().filter(|n| **n != victim) {
        ensure!(
            card(&snap, n).is_some_and(|c| c["state"] == "up"),
            "{n} should still be up: {snap:#}"
        );
    }
    for (child, node) in placed.iter().filter(|(_, n)| n != victim) {
        let r = row(&snap, "app", child).context("every child has a row")?;
        ensure!(
            r["node"] == node.as_str() && r["restarts"] == 0,
            "{child} on {node} was not on {victim} and should not have moved: {r}"
        );
    }
    // The events say what happened.
    let events = browser
        .wait_for("the node-down and restart events", PAGE_WAIT, |s| {
            let ev = s["events"].as_array()?;
            let text = |kind: &str| -> Vec<String> {
                ev.iter()
                    .filter(|e| e["kind"] == kind)
                    .filter_map(|e| e["text"].as_str().map(str::to_owned))
                    .collect()
            };
            let down = text("node_down")
                .iter()
                .any(|t| t.starts_with(&format!("{victim} is down")));
            let restarts = text("child_restarted");
            let all_moved = moved.iter().all(|child| {
                restarts
                    .iter()
                    .any(|t| t.starts_with(&format!("app/{child} restarted on ")))
            });
            let up = text("node_up").len() >= 3;
            (down && all_moved && up).then(|| ev.clone())
        })
        .await?;
    ensure!(!events.is_empty());

    // The page and the API agree on where each child runs now.
    let now = blocking(|| c.tree_show("app"))?;
    let snap = browser.eval(SNAPSHOT).await?;
    for k in now.children.iter().flatten() {
        let node = k.node.as_deref().unwrap_or_default();
        ensure!(
            node != victim,
            "{} still on {victim} by the API: {now:?}",
            k.id
        );
        browser
            .wait_for(&format!("{} on {node}", k.id), PAGE_WAIT, |s| {
                row(s, "app", &k.id)
                    .is_some_and(|r| r["node"] == node)
                    .then_some(())
            })
            .await
            .with_context(|| format!("the page showed {snap:#}"))?;
    }
    Ok(())
}

// ----- the token ------------------------------------------------------------------

/// One HTTP/1.1 request to `addr`: (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer from {addr}: {text}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head}"))?;
    // Small answers; a chunked one is one chunk here: keep the JSON.
    let body = match (body.find('{'), body.find('[')) {
        (Some(a), Some(b)) => &body[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &body[a..],
        (None, None) => body,
    };
    let body = body.trim_end().trim_end_matches('0').trim_end();
    Ok((status, body.to_owned()))
}

/// Starts a `pool-master` with its HTTP side on `http_addr`, `args` and
/// `env`, and waits until the HTTP port answers.
fn start_master(c: &Cluster, http_addr: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Proc> {
    let mut cmd = c.master_command();
    cmd.args([
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--http",
        http_addr,
    ])
    .arg("--state-dir")
    .arg(c.dir.path().join(format!("state-{}", free_port())))
    .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc::start("pool-master", cmd)?;
    wait_until("the master's HTTP port", Duration::from_secs(15), || {
        TcpStream::connect(http_addr).ok()
    })
    .map_err(|e| {
        let _ = p.wait_exit(Duration::from_secs(1));
        anyhow!("{e}; master log:\n{}", p.log())
    })?;
    Ok(p)
}

/// Writes a token file with `mode`.
fn token_file(dir: &Path, name: &str, token: &str, mode: u32) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join(name);
    std::fs::write(&p, format!("{token}\n"))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    Ok(p)
}

/// The real `pool-master`: reading over HTTP is open to anyone; changing
/// the pool needs the bearer token. Given by `--http-token-file`, a missing
/// or wrong token is 401 and the right one spawns on a worker; given by
/// `POOL_HTTP_TOKEN`, the same; with no token configured every operation is
/// 403 whatever is presented; and a token file other users could read is
/// refused at startup, saying how to fix it.
#[test]
fn http_operations_need_the_token_given_by_file_or_environment() -> Result<()> {
    const TOKEN: &str = "dashboard-test-token-0123456789abcdef";
    let spawn = r#"{"function": "builtin.echo"}"#;

    // --http-token-file: the pool's master, with a worker.
    let mut c = Cluster::new()?;
    let file = token_file(c.dir.path(), "http-token", TOKEN, 0o600)?;
    c.master_args = vec!["--http-token-file".into(), file.display().to_string()];
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.wait_nodes(1)?;
    let h = c.http_addr.clone();
    let (status, body) = http(&h, "GET", "/api/nodes", None, "")?;
    ensure!(
        status == 200 && body.contains("\"w1\""),
        "GET /api/nodes: {status} {body}"
    );
    let (status, body) = http(&h, "POST", "/api/spawn", None, spawn)?;
    ensure!(status == 401, "no token: {status} {body}");
    let (status, body) = http(&h, "POST", "/api/spawn", Some("not-the-token"), spawn)?;
    ensure!(status == 401, "a wrong token: {status} {body}");
    let (status, body) = http(&h, "POST", "/api/spawn", Some(TOKEN), spawn)?;
    ensure!(status == 200, "the token: {status} {body}");
    let v: Value = serde_json::from_str(&body).with_context(|| format!("spawn answered {body}"))?;
    ensure!(v["node"] == "w1", "spawned on w1: {v}");
    let pid = v["pid"].as_str().context("a pid")?.to_owned();
    ensure!(
        c.ps()?.iter().any(|p| p.pid.to_string() == pid),
        "{pid} runs (poolctl ps)"
    );
    let log = c.master_log();
    ensure!(!log.contains(TOKEN), "the token is never logged:\n{log}");

    // POOL_HTTP_TOKEN: the same check, before any handler runs.
    let addr = format!("127.0.0.1:{}", free_port());
    let _env_master = start_master(&c, &addr, &[], &[("POOL_HTTP_TOKEN", TOKEN)])?;
    let kill = r#"{"pid": "<00000000000000ab.3>"}"#;
    let (status, body) = http(&addr, "POST", "/api/kill", None, kill)?;
    ensure!(status == 401, "POOL_HTTP_TOKEN, no token: {status} {body}");
    let (status, body) = http(&addr, "POST", "/api/kill", Some(TOKEN), kill)?;
    ensure!(
        status == 404,
        "POOL_HTTP_TOKEN, the token gets to the handler (no such pid): {status} {body}"
    );

    // No token configured: read-only, whatever a client presents.
    let addr = format!("127.0.0.1:{}", free_port());
    let _plain = start_master(&c, &addr, &[], &[])?;
    let (status, _) = http(&addr, "GET", "/api/trees", None, "")?;
    ensure!(status == 200, "reading stays open: {status}");
    for (method, path, body) in [
        ("POST", "/api/spawn", spawn),
        ("POST", "/api/kill", kill),
        ("DELETE", "/api/trees/app", ""),
    ] {
        let (status, text) = http(&addr, method, path, Some(TOKEN), body)?;
        ensure!(
            status == 403 && text.contains("--http-token-file"),
            "{method} {path} without a configured token: {status} {text}"
        );
    }

    // A token file others can read: the master does not start.
    let open = token_file(c.dir.path(), "open-token", TOKEN, 0o644)?;
    let mut cmd = c.master_command();
    cmd.args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(c.dir.path().join("state-open"))
        .arg("--http-token-file")
        .arg(&open);
    let mut p = Proc::start("pool-master (open token file)", cmd)?;
    let status = p
        .wait_exit(Duration::from_secs(15))
        .context("the master should refuse an open token file and exit")?;
    ensure!(!status.success(), "exit status {status}");
    let log = p.log();
    ensure!(
        log.contains("chmod 600"),
        "the error says how to fix it:\n{log}"
    );
    Ok(())
}

// ----- the screenshot -----------------------------------------------------------

/// Where the screenshot goes: `DASHBOARD_SCREENSHOT`, else the repository's
/// `docs/dashboard.png`.
fn screenshot_path() -> PathBuf {
    std::env::var_os("DASHBOARD_SCREENSHOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png"),
        PathBuf::from,
    )
}

/// Makes `docs/dashboard.png`: four workers (`test-worker`: the built-ins
/// plus `test.call`), a tree of two levels spread over them, two minutes of
/// changing load (sleepers, CPU burners, calls from node to node), then one
/// worker killed, so that every part of the page has something to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes docs/dashboard.png; takes about two minutes"]
async fn dashboard_screenshot() -> Result<()> {
    let Some(tools) = installed("dashboard_screenshot") else {
        return Ok(());
    };
    let mut c = blocking(|| -> Result<Cluster> {
        let mut c = Cluster::new()?;
        c.start_master()?;
        for (name, zone) in [("w1", "a"), ("w2", "a"), ("w3", "b"), ("w4", "b")] {
            c.start_test_worker(name, &["--label", &format!("zone={zone}")])?;
        }
        c.wait_nodes(4)?;
        let file = c.write_file("shop.toml", SHOP)?;
        c.tree_start(&file)?;
        Ok(c)
    })?;
    blocking(|| wait_tree_running(&c, "shop", 4))?;
    let mut browser = Browser::start(&tools).await?;
    let result = screenshot_scenario(&mut c, &browser).await;
    browser.close().await;
    result
}

/// The pids of the screenshot tree's counters (`cart`, `ledger`).
fn counter_pids(c: &Cluster) -> Result<Vec<String>> {
    let view = c.tree_show("shop")?;
    Ok(pool_cluster_tests::tree_entries(&view)
        .into_iter()
        .filter(|(path, _)| path.ends_with("/cart") || path.ends_with("/ledger"))
        .filter_map(|(_, v)| v.pid)
        .map(|p| p.to_string())
        .collect())
}

/// The tree of the screenshot.
const SHOP: &str = r#"[supervisor]
id = "shop"
strategy = "one_for_one"
intensity = 20
period = "10s"
children = [
  { id = "cart", function = "builtin.counter", placement = "least-loaded" },
  { id = "checkout", function = "builtin.echo", placement = "least-loaded" },
  { id = "search", function = "builtin.echo", placement = { label = "zone=b" } },
  { id = "payments", placement = "least-loaded", supervisor = { strategy = "rest_for_one", intensity = 10, period = "10s", children = [
      { id = "ledger", function = "builtin.counter", placement = "least-loaded" },
      { id = "gateway", function = "builtin.echo", placement = "least-loaded" } ] } },
]
"#;

async fn screenshot_scenario(c: &mut Cluster, browser: &Browser) -> Result<()> {
    browser
        .client()
        .goto(&format!("http://{}/", c.http_addr))
        .await?;
    // Long-lived processes, unevenly spread.
    blocking(|| -> Result<()> {
        for (node, n) in [("w1", 30), ("w2", 18), ("w3", 42), ("w4", 12)] {
            let count = n.to_string();
            c.poolctl_json(&[
                "spawn",
                "builtin.sleep",
                r#"{"ms": 900000}"#,
                "--on",
                node,
                "--count",
                &count,
            ])?;
        }
        Ok(())
    })?;
    // Waves of work for about two minutes: CPU burners here and there,
    // short sleepers placed by the master, calls to the tree's counters
    // from processes on other nodes (messages between nodes).
    let counters = blocking(|| counter_pids(c))?;
    let start = Instant::now();
    let mut wave = 0u32;
    while start.elapsed() < Duration::from_secs(110) {
        wave += 1;
        blocking(|| -> Result<()> {
            let node = ["w1", "w3", "w2", "w3", "w4", "w1"][wave as usize % 6];
            let burn = format!(r#"{{"ms": {}}}"#, 3000 + (wave % 4) * 1500);
            c.poolctl_json(&["spawn", "builtin.busy", &burn, "--on", node])?;
            let short = format!(r#"{{"ms": {}}}"#, 8000 + (wave % 5) * 2000);
            let count = (4 + (wave % 7) * 3).to_string();
            c.poolctl_json(&["spawn", "builtin.sleep", &short, "--count", &count])?;
            for (i, pid) in counters.iter().enumerate() {
                let from = ["w1", "w2", "w3", "w4"][(wave as usize + i) % 4];
                let call = json!({"pid": pid, "req": "inc"}).to_string();
                let count = (6 + (wave % 5) * 4).to_string();
                c.poolctl_json(&["spawn", "test.call", &call, "--on", from, "--count", &count])?;
            }
            Ok(())
        })?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // One worker goes down: its card greys out, its children restart.
    c.worker("w4").kill9();
    browser
        .wait_for("w4 down", PAGE_WAIT, |s| {
            card(s, "w4")
                .is_some_and(|n| n["state"] == "down")
                .then_some(())
        })
        .await?;
    browser
        .wait_for("the restarts of w4's children", PAGE_WAIT, |s| {
            s["events"]
                .as_array()?
                .iter()
                .any(|e| e["kind"] == "child_restarted")
                .then_some(())
        })
        .await?;
    // A last burst of calls from node to node, for the message rates.
    blocking(|| -> Result<()> {
        for pid in counter_pids(c)? {
            let call = json!({"pid": pid, "req": "inc"}).to_string();
            for from in ["w1", "w2", "w3"] {
                c.poolctl_json(&["spawn", "test.call", &call, "--on", from, "--count", "15"])?;
            }
        }
        Ok(())
    })?;
    // The whole page in one picture: make the window as tall as the main
    // column and the footer (the events list scrolls within the window's
    // height, so it is left out), allowing for the window's frame.
    for _ in 0..3 {
        let v = browser
            .eval(
                "const main = document.querySelector('.col-main').getBoundingClientRect().bottom + window.scrollY;
                 const foot = document.querySelector('.foot').getBoundingClientRect().height;
                 return [window.innerHeight, Math.ceil(main + foot + 60)];",
            )
            .await?;
        let (inner, want) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
        let want = want.clamp(u64::from(WINDOW.1) - 200, 2400);
        if want.abs_diff(inner) < 8 {
            break;
        }
        let (_, _, _, outer) = browser.client().get_window_rect().await?;
        let height = u32::try_from((outer + want).saturating_sub(inner))?;
        browser.client().set_window_size(WINDOW.0, height).await?;
    }
    let polls = browser.eval(SNAPSHOT).await?["polls"].as_u64().unwrap_or(0);
    browser
        .wait_for("a redraw at the new size", PAGE_WAIT, |s| {
            (s["polls"].as_u64() > Some(polls)).then_some(())
        })
        .await?;
    let png = browser.client().screenshot().await?;
    let path = screenshot_path();
    std::fs::write(&path, &png).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "dashboard screenshot: {} ({} bytes)",
        path.display(),
        png.len()
    );
    Ok(())
}
