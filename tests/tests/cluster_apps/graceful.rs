//! Graceful node stop: SIGTERM to a worker. Its own supervisors stop their
//! children in order; children it hosts for supervisors elsewhere exit with
//! `shutdown`, and those supervisors restart them on other nodes per their
//! restart type.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use pool_cluster_tests::{app_processes, wait_until};
use pool_proto::{AppStatus, ChildStatus, TreeView};

use super::common::{
    FAILOVER, echo, echo_restart, exit_of, opts, start_cluster, start_tree_where, strip_ansi, tail,
    traced, wait_settled, write_tree,
};

/// The child `id` of a supervisor view.
fn child<'a>(v: &'a TreeView, id: &str) -> Option<&'a TreeView> {
    v.children.as_ref()?.iter().find(|c| c.id == id)
}

/// SIGTERM to w1, which runs the root of one app (with local children) and
/// hosts a permanent, a transient and a temporary child of another app's
/// root on w2 or w3. w1 exits by itself; its own root stops l3, l2, l1 in
/// that order, each with `shutdown`, before it exits, and the master
/// starts that app again on another node; the hosted children exit with
/// `shutdown`: the permanent one is restarted on w4 (the other node with
/// its label), the transient one is left stopped, the temporary one is
/// removed, and exactly one restart is counted.
#[test]
fn sigterm_stops_own_trees_in_order_and_hands_hosted_children_back() -> Result<()> {
    let mut c = start_cluster(&[
        ("w1", traced(&["--label", "host=yes"])),
        ("w2", opts(&[])),
        ("w3", opts(&[])),
    ])?;
    c.load_nodes(&["w2", "w3"], 6)?;
    let own = write_tree(
        &c,
        "own",
        "one_for_one",
        5,
        &[echo("l1", ""), echo("l2", ""), echo("l3", "")],
    )?;
    let own_before = start_tree_where(&c, &own, "own", |n| n == "w1")?;

    // The second root must go elsewhere: load w1 above w2 and w3.
    c.load_nodes(&["w1"], 8)?;
    let host = r#"{ label = "host=yes" }"#;
    let hosted = write_tree(
        &c,
        "hosted",
        "one_for_one",
        10,
        &[
            echo_restart("h_perm", host, "permanent"),
            echo_restart("h_trans", host, "transient"),
            echo_restart("h_temp", host, "temporary"),
        ],
    )?;
    let hosted_before = start_tree_where(&c, &hosted, "hosted", |n| n != "w1")?;
    for h in ["hosted/h_perm", "hosted/h_trans", "hosted/h_temp"] {
        assert_eq!(hosted_before.node(h), "w1", "{h}: {:?}", hosted_before.at);
    }
    // A second node with the label, for the permanent child to move to.
    c.start_worker_with("w4", &opts(&["--label", "host=yes"]))?;
    c.wait_node_set(&["w1", "w2", "w3", "w4"])?;

    assert!(
        c.worker("w1").terminate(Duration::from_secs(30)),
        "w1 did not stop within 30 s of SIGTERM"
    );

    // The hosted children, per restart type.
    let mut last = String::new();
    let view = wait_until("hosted to hand its children back", FAILOVER, || {
        let v = c.tree_show("hosted").ok()?;
        last = format!("{v:?}");
        let perm = child(&v, "h_perm")?;
        let trans = child(&v, "h_trans")?;
        (perm.status == ChildStatus::Running
            && perm.node.as_deref() == Some("w4")
            && trans.status == ChildStatus::Stopped
            && trans.pid.is_none()
            && child(&v, "h_temp").is_none())
        .then_some(v)
    })
    .map_err(|e| {
        let root_node = hosted_before.node("hosted");
        let root_log = c
            .workers
            .iter()
            .find(|(n, _)| n == root_node)
            .map(|(_, p)| strip_ansi(&p.log()))
            .unwrap_or_default();
        anyhow!(
            "{e}: {last}\n--- log of {root_node} (hosted's root):\n{}\n--- w1 log:\n{}",
            tail(&root_log, 30),
            tail(&strip_ansi(&c.workers[0].1.log()), 30)
        )
    })?;
    assert_eq!(
        view.pid.map(|p| p.to_string()).as_deref(),
        Some(hosted_before.pid("hosted")),
        "hosted's root was restarted"
    );
    assert_eq!(child(&view, "h_perm").context("h_perm")?.restarts, 1);
    assert_eq!(view.restarts, 1, "one restart in all: {view:?}");
    let procs = app_processes(&c.ps()?, "hosted");
    let owners: Vec<&String> = procs.keys().collect();
    assert_eq!(
        owners,
        ["hosted", "hosted/h_perm"],
        "processes of hosted: {procs:?}"
    );

    // w1's own tree: stopped in order, then started again elsewhere.
    let log = c.worker("w1").log();
    let mut times = Vec::new();
    for l in ["own/l3", "own/l2", "own/l1"] {
        let (t, reason) = exit_of(&log, own_before.pid(l))
            .with_context(|| format!("w1 did not log the exit of {l}"))?;
        assert_eq!(reason, "shutdown", "{l} stopped with {reason}");
        times.push((l, t));
    }
    let root_exit = strip_ansi(&log)
        .lines()
        .find(|l| l.contains("application root exited") && l.contains("app=own"))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .context("w1 logged the exit of own's root")?;
    times.push(("own", root_exit));
    for w in times.windows(2) {
        assert!(w[0].1 < w[1].1, "stop order: {times:?}");
    }
    for h in ["hosted/h_perm", "hosted/h_trans", "hosted/h_temp"] {
        let (_, reason) = exit_of(&log, hosted_before.pid(h))
            .with_context(|| format!("w1 did not log the exit of {h}"))?;
        assert_eq!(reason, "shutdown", "{h} exited with {reason}");
    }
    let own_after = wait_settled(&c, "own", FAILOVER, |s| {
        if s.node("own") == "w1" {
            Err("still on w1".into())
        } else {
            Ok(())
        }
    })?;
    assert_eq!(c.app("own")?.status, AppStatus::Running);
    assert_eq!(own_after.node("own/l1"), own_after.node("own"));
    Ok(())
}
