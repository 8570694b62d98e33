//! Pool applications: `poolctl tree start|ls|show|stop`, `pool-master
//! --tree`, trees kept in the state directory and adopted after a master
//! restart, and the refusals (an id that runs, a file with an error).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use pool_cluster_tests::{app_processes, tree_entries, wait_until};
use pool_proto::AppStatus;
use serde_json::Value;

use super::common::{
    FAILOVER, echo, exit_of, look, nested, new_cluster, opts, start_cluster, start_tree_where,
    traced, tree_toml, wait_app_status, wait_settled, watch_no_duplicates, write_tree,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Checks the JSON shape of one `tree show` entry (DESIGN.md, poolctl):
/// a supervisor has `{id, strategy, pid, node, restarts, status, children}`,
/// a worker child `{id, pid, node, restarts, status}` and no children.
fn check_view_shape(v: &Value, path: &str) -> Result<()> {
    let obj = v.as_object().context("a tree entry is an object")?;
    for key in ["id", "pid", "node", "restarts", "status"] {
        ensure!(obj.contains_key(key), "{path}: no `{key}` in {v}");
    }
    ensure!(
        v["restarts"].is_u64(),
        "{path}: restarts is not a count: {v}"
    );
    ensure!(
        ["running", "restarting", "stopped"].contains(&v["status"].as_str().unwrap_or("")),
        "{path}: status {}",
        v["status"]
    );
    match v.get("children") {
        Some(children) => {
            ensure!(
                obj.contains_key("strategy"),
                "{path}: a supervisor has a strategy"
            );
            for c in children.as_array().context("children is an array")? {
                check_view_shape(c, &format!("{path}/{}", c["id"].as_str().unwrap_or("?")))?;
            }
        }
        None => ensure!(
            !obj.contains_key("strategy"),
            "{path}: a worker child has no strategy"
        ),
    }
    Ok(())
}

/// `poolctl tree start|ls|show|stop` on a tree spread over three workers:
/// `ls` and `show` print the JSON shapes of DESIGN.md, with the pids, nodes,
/// restart counts and statuses that `poolctl ps` confirms; `stop` answers
/// once the whole tree has stopped — every child with `shutdown`, in
/// reverse start order, a nested supervisor's children before it, across
/// nodes — and the tree then shows as stopped with no pids.
#[test]
fn tree_commands_show_the_whole_tree_and_stop_it_in_order() -> Result<()> {
    let c = start_cluster(&[
        ("w1", traced(&[])),
        ("w2", traced(&[])),
        ("w3", traced(&[])),
    ])?;
    // The root goes to the least-loaded worker: make that w1.
    c.load_nodes(&["w2", "w3"], 3)?;
    let file = write_tree(
        &c,
        "shop",
        "one_for_one",
        5,
        &[
            echo("l1", ""),
            echo("l2", ""),
            echo("l3", ""),
            echo("r1", r#"{ node = "w2" }"#),
            nested(
                "sinks",
                r#"{ node = "w3" }"#,
                "rest_for_one",
                &[echo("s1", r#"{ node = "w2" }"#), echo("s2", "")],
            ),
        ],
    )?;
    let s = start_tree_where(&c, &file, "shop", |n| n == "w1")?;
    for (path, node) in [
        ("shop", "w1"),
        ("shop/l1", "w1"),
        ("shop/l2", "w1"),
        ("shop/l3", "w1"),
        ("shop/r1", "w2"),
        ("shop/sinks", "w3"),
        ("shop/sinks/s1", "w2"),
        ("shop/sinks/s2", "w3"),
    ] {
        assert_eq!(
            s.node(path),
            node,
            "{path} runs on the wrong node: {:?}",
            s.at
        );
    }

    // tree ls: [{id, root, node, status}]
    let ls = c.poolctl_json(&["tree", "ls"])?;
    let ls = ls.as_array().context("tree ls prints an array")?;
    assert_eq!(ls.len(), 1, "tree ls: {ls:?}");
    assert_eq!(ls[0]["id"], "shop");
    assert_eq!(ls[0]["root"], s.pid("shop"));
    assert_eq!(ls[0]["node"], "w1");
    assert_eq!(ls[0]["status"], "running");

    // tree show: the whole tree, every entry with its shape.
    let show = c.poolctl_json(&["tree", "show", "shop"])?;
    check_view_shape(&show, "shop")?;
    assert_eq!(show["strategy"], "one_for_one");
    let ids: Vec<&str> = show["children"]
        .as_array()
        .context("children")?
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        ids,
        ["l1", "l2", "l3", "r1", "sinks"],
        "children in start order"
    );
    assert_eq!(show["children"][4]["strategy"], "rest_for_one");
    for (path, v) in tree_entries(&s.view) {
        assert_eq!(v.restarts, 0, "{path} was restarted: {:?}", s.view);
    }

    // tree stop: answers once everything has stopped.
    let stopped = c.poolctl_json(&["tree", "stop", "shop"])?;
    assert_eq!(
        stopped[0]["status"], "stopped",
        "tree stop printed {stopped}"
    );
    let left = app_processes(&c.ps()?, "shop");
    assert!(
        left.is_empty(),
        "tree stop returned with processes left: {left:?}"
    );
    let app = c.app("shop")?;
    assert_eq!(app.status, AppStatus::Stopped);
    assert_eq!(app.root, None);
    let view = c.tree_show("shop")?;
    for (path, v) in tree_entries(&view) {
        assert_eq!(
            v.status,
            pool_proto::ChildStatus::Stopped,
            "{path}: {view:?}"
        );
        assert_eq!(v.pid, None, "{path} still has a pid: {view:?}");
    }

    // The order, from the exit lines the workers logged (each exit is
    // logged before its DOWN is sent, so the supervisor's next stop comes
    // after it).
    let order = [
        "shop/sinks/s2",
        "shop/sinks/s1",
        "shop/sinks",
        "shop/r1",
        "shop/l3",
        "shop/l2",
        "shop/l1",
    ];
    let exits = wait_until("every exit to be logged", Duration::from_secs(10), || {
        order
            .iter()
            .map(|path| {
                let log = worker_log(&c, s.node(path));
                exit_of(&log, s.pid(path)).map(|e| (*path, e))
            })
            .collect::<Option<Vec<_>>>()
    })
    .map_err(|e| {
        let found: Vec<_> = order
            .iter()
            .map(|path| (*path, exit_of(&worker_log(&c, s.node(path)), s.pid(path))))
            .collect();
        anyhow::anyhow!(
            "{e}: found {found:?}\n--- w1 log (tail):\n{}",
            super::common::tail(&super::common::strip_ansi(&worker_log(&c, "w1")), 30)
        )
    })?;
    for (path, (_, reason)) in &exits {
        assert_eq!(reason, "shutdown", "{path} stopped with {reason}");
    }
    // The root itself exits `normal` (not logged as above) once its
    // children are down; its node reports that.
    let root_exit = super::common::strip_ansi(&worker_log(&c, "w1"))
        .lines()
        .find(|l| l.contains("application root exited") && l.contains("app=shop"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .context("w1 logged the root's exit")?;
    let mut exits = exits;
    exits.push(("shop", (root_exit, "normal".into())));
    for pair in exits.windows(2) {
        let ((a, (ta, _)), (b, (tb, _))) = (&pair[0], &pair[1]);
        assert!(
            ta < tb,
            "{a} stopped at {ta}, not before {b} at {tb}: stop order {exits:?}"
        );
    }
    Ok(())
}

fn worker_log(c: &pool_cluster_tests::Cluster, name: &str) -> String {
    c.workers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.log())
        .unwrap_or_default()
}

/// `pool-master --tree FILE` starts the tree once workers join; trees handed
/// over with `poolctl tree start` and trees stopped are kept in the state
/// directory. After `kill -9` of the master and a restart on the same state
/// directory (same `--tree`), the master adopts the running roots — same
/// pids, every child untouched, nothing started twice, even after the
/// grace period for absent nodes — and a stopped tree stays stopped.
#[test]
fn master_restart_adopts_running_roots_and_starts_nothing_twice() -> Result<()> {
    let mut c = new_cluster(&[])?;
    let boot = write_tree(
        &c,
        "boot",
        "one_for_one",
        5,
        &[
            echo("a", r#""least-loaded""#),
            echo("b", r#""least-loaded""#),
            echo("c", r#""least-loaded""#),
            nested(
                "inner",
                r#""least-loaded""#,
                "one_for_all",
                &[echo("x", r#""least-loaded""#), echo("y", "")],
            ),
        ],
    )?;
    c.master_args
        .extend(["--tree".into(), boot.display().to_string()]);
    c.start_master()?;
    for w in ["w1", "w2", "w3"] {
        c.start_worker(w, &[])?;
    }
    c.wait_nodes(3)?;
    let boot_before = wait_settled(&c, "boot", FAILOVER, |_| Ok(()))?;

    let extra = write_tree(
        &c,
        "extra",
        "one_for_one",
        5,
        &[echo("e", r#""least-loaded""#)],
    )?;
    c.tree_start(&extra)?;
    let extra_before = wait_settled(&c, "extra", FAILOVER, |_| Ok(()))?;
    let gone = write_tree(&c, "gone", "one_for_one", 5, &[echo("g", "")])?;
    c.tree_start(&gone)?;
    wait_settled(&c, "gone", FAILOVER, |_| Ok(()))?;
    c.poolctl_json(&["tree", "stop", "gone"])?;

    c.master.as_mut().context("the master runs")?.kill9();
    c.start_master()?;
    let restarted = Instant::now();
    wait_until(
        "the restarted master to list the trees as before",
        FAILOVER,
        || {
            let ls = c.tree_ls().ok()?;
            let find = |id: &str| ls.iter().find(|a| a.id == id).cloned();
            let (b, e, g) = (find("boot")?, find("extra")?, find("gone")?);
            (b.status == AppStatus::Running
                && b.root.map(|p| p.to_string()).as_deref() == Some(boot_before.pid("boot"))
                && e.status == AppStatus::Running
                && e.root.map(|p| p.to_string()).as_deref() == Some(extra_before.pid("extra"))
                && g.status == AppStatus::Stopped)
                .then_some(())
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}; tree ls: {:?}", c.tree_ls()))?;

    // Past the grace period the master gives absent nodes (2 × node
    // timeout), nothing may have been started a second time.
    let samples = watch_no_duplicates(&c, "boot", &[], FAILOVER, Duration::ZERO, |_| {
        restarted.elapsed() > Duration::from_secs(4)
    })?;
    assert!(samples > 0);
    let boot_after = look(&c, "boot").map_err(anyhow::Error::msg)?;
    assert_eq!(boot_after.at, boot_before.at, "the boot tree changed");
    let extra_after = look(&c, "extra").map_err(anyhow::Error::msg)?;
    assert_eq!(extra_after.at, extra_before.at, "the extra tree changed");
    let ps = c.ps()?;
    assert!(
        app_processes(&ps, "gone").is_empty(),
        "a stopped tree was started again"
    );
    Ok(())
}

/// Starting a tree whose id is already running is refused (exit status 1,
/// an error that names the tree and says to stop it first) — with the same
/// file or another one — and the running tree is left exactly as it was.
#[test]
fn starting_a_running_tree_again_is_refused() -> Result<()> {
    let c = start_cluster(&[("w1", opts(&[])), ("w2", opts(&[]))])?;
    let file = write_tree(
        &c,
        "dup",
        "one_for_one",
        3,
        &[echo("a", r#""least-loaded""#), echo("b", "")],
    )?;
    c.tree_start(&file)?;
    let before = wait_settled(&c, "dup", FAILOVER, |_| Ok(()))?;
    let other = c.write_file(
        "dup-other.toml",
        &tree_toml("dup", "one_for_all", 1, &[echo("z", r#""least-loaded""#)]),
    )?;
    for f in [&file, &other] {
        let out = c.poolctl_raw(&["tree", "start", f.to_str().context("utf-8")?])?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: stderr {err}", f.display());
        assert!(
            err.contains("dup") && err.contains("already running"),
            "the refusal does not say why: {err}"
        );
    }
    let after = look(&c, "dup").map_err(anyhow::Error::msg)?;
    assert_eq!(after.at, before.at, "the running tree changed");
    assert_eq!(c.tree_ls()?.len(), 1);
    Ok(())
}

/// A tree file with an error is refused with the file, the line and the
/// field, and nothing of it starts: a bad strategy (found by `poolctl`), a
/// function no worker registers (found by the master, which has the text),
/// and a bad `--tree` file at master boot (the master exits with the error).
#[test]
fn bad_tree_files_are_refused_with_file_line_and_field() -> Result<()> {
    let c = start_cluster(&[("w1", opts(&[])), ("w2", opts(&[]))])?;
    let cases = [
        ("bad_strategy.toml", ":5:", "supervisor.strategy"),
        (
            "unknown_function.toml",
            ":14:",
            "supervisor.children[1].function",
        ),
    ];
    for (name, line, field) in cases {
        let path = fixture(name);
        let out = c.poolctl_raw(&["tree", "start", path.to_str().context("utf-8")?])?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: stderr {err}");
        let want = format!("{}{line}", path.display());
        assert!(err.contains(&want), "{name}: no `{want}` in: {err}");
        assert!(err.contains(field), "{name}: no `{field}` in: {err}");
    }
    assert!(
        c.tree_ls()?.is_empty(),
        "a refused tree is listed: {:?}",
        c.tree_ls()
    );
    let ps = c.ps()?;
    assert!(ps.is_empty(), "something started: {ps:?}");

    // At boot: the master refuses to start, with the same message.
    let path = fixture("bad_strategy.toml");
    let mut cmd = c.master_command();
    cmd.args(["--listen", "127.0.0.1:0", "--http", "off", "--state-dir"])
        .arg(c.dir.path().join("boot-state"))
        .arg("--tree")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let exited = wait_until(
        "the master to refuse its tree",
        Duration::from_secs(15),
        || child.try_wait().ok().flatten(),
    );
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        bail!("pool-master kept running with a bad --tree file");
    }
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pool-master exited 0: {err}");
    let want = format!("{}:5:", path.display());
    assert!(
        err.contains(&want) && err.contains("supervisor.strategy"),
        "pool-master's error does not name the file, line and field: {err}"
    );
    Ok(())
}

/// A root that gives up (restart intensity exceeded by a crashing child) is
/// not the death of its node: the app is marked `failed` with the reason,
/// its children are gone, and the master does not start it again.
#[test]
fn root_that_gives_up_leaves_the_app_failed() -> Result<()> {
    let c = start_cluster(&[("w1", opts(&[])), ("w2", opts(&[]))])?;
    let crasher = r#"{ id = "crasher", function = "builtin.crash", args = { after_ms = 300, reason = "boom" }, placement = "least-loaded" }"#;
    let file = write_tree(
        &c,
        "flaky",
        "one_for_one",
        0,
        &[echo("steady", r#""least-loaded""#), crasher.to_owned()],
    )?;
    c.tree_start(&file)?;
    wait_app_status(&c, "flaky", AppStatus::Failed)?;
    let app = c.app("flaky")?;
    assert!(
        app.reason.as_deref().is_some_and(|r| !r.is_empty()),
        "a failed app says why: {app:?}"
    );
    // It stays failed and stopped (bounded observation, 2 s).
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let left = app_processes(&c.ps()?, "flaky");
        assert!(left.is_empty(), "a failed app still runs: {left:?}");
        assert_eq!(
            c.app("flaky")?.status,
            AppStatus::Failed,
            "the app was restarted"
        );
    }
    Ok(())
}
