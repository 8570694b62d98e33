//! Children placed by the pool: started through placement on other workers
//! and linked across the wire; when their node dies the supervisor sees
//! `noconnection`, applies its strategy and intensity as for a local crash,
//! and places the replacement on a live node by the child's rule. A
//! supervisor whose node dies takes its remote children with it.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use pool_cluster_tests::{Cluster, app_processes};
use pool_proto::AppStatus;

use super::common::{
    FAILOVER, Settled, echo, look, nested, opts, start_cluster, start_tree_where, wait_app_status,
    wait_settled, watch_no_duplicates, write_tree,
};

/// The node the master would choose now for key `key`.
fn keyed_node(c: &Cluster, key: &str) -> Result<String> {
    let v = c.poolctl_json(&["place", "--key", key])?;
    v["nodes"][0]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("place --key {key} printed {v}"))
}

/// A key that the master hashes to `node` now.
fn key_for(c: &Cluster, node: &str) -> Result<String> {
    for i in 0..200 {
        let key = format!("user:{i}");
        if keyed_node(c, &key)? == node {
            return Ok(key);
        }
    }
    anyhow::bail!("no key of 200 hashes to {node}")
}

/// Fails unless no entry of the tree runs on `node`.
fn none_on(node: &str) -> impl FnMut(&Settled) -> Result<(), String> + '_ {
    move |s| {
        let on = s.on_node(node);
        if on.is_empty() && s.node(&s.view.id) != node {
            Ok(())
        } else {
            Err(format!("still on {node}: {on:?}"))
        }
    }
}

/// Each placement rule puts its child where it says (a named node, a label,
/// a hashed key, the least-loaded node), on a worker other than the
/// supervisor's, linked to it. When `kill -9` takes one of those workers,
/// exactly the children it ran are restarted (one_for_one: the others keep
/// their pids), each once, on a live node chosen by its own rule: a label
/// child on the other node with that label, a keyed child where the key now
/// hashes; nothing lands on the dead node.
#[test]
fn placed_children_follow_their_rule_and_move_off_a_dead_node() -> Result<()> {
    let mut c = start_cluster(&[
        ("w1", opts(&["--label", "zone=a"])),
        ("w2", opts(&["--label", "zone=b"])),
        ("w3", opts(&["--label", "zone=b"])),
        ("w4", opts(&["--label", "zone=c"])),
    ])?;
    c.load_nodes(&["w2", "w3", "w4"], 3)?;
    let (k2, k3) = (key_for(&c, "w2")?, key_for(&c, "w3")?);
    let file = write_tree(
        &c,
        "placed",
        "one_for_one",
        10,
        &[
            echo("named", r#"{ node = "w4" }"#),
            echo("lab1", r#"{ label = "zone=b" }"#),
            echo("lab2", r#"{ label = "zone=b" }"#),
            echo("k2", &format!(r#"{{ key = "{k2}" }}"#)),
            echo("k3", &format!(r#"{{ key = "{k3}" }}"#)),
            echo("ll1", r#""least-loaded""#),
            echo("ll2", r#""least-loaded""#),
            echo("ll3", r#""least-loaded""#),
        ],
    )?;
    let before = start_tree_where(&c, &file, "placed", |n| n == "w1")?;
    assert_eq!(before.node("placed/named"), "w4");
    assert_eq!(before.node("placed/k2"), "w2");
    assert_eq!(before.node("placed/k3"), "w3");
    for lab in ["placed/lab1", "placed/lab2"] {
        assert!(
            ["w2", "w3"].contains(&before.node(lab)),
            "{lab} is not on a zone=b node: {:?}",
            before.at
        );
    }

    // The victim: the zone=b node that runs lab1 (so a label child and a
    // keyed child move).
    let victim = before.node("placed/lab1").to_owned();
    let other_b = if victim == "w2" { "w3" } else { "w2" };
    let moved: BTreeSet<String> = before.on_node(&victim).into_iter().collect();
    c.worker(&victim).kill9();
    let after = wait_settled(&c, "placed", FAILOVER, none_on(&victim))?;

    let live = ["w1", "w2", "w3", "w4"].map(str::to_owned);
    for (path, (pid, node)) in &after.at {
        assert!(
            live.contains(node) && *node != victim,
            "{path} runs on {node}"
        );
        let view = after.entry(path).context("an entry")?;
        if path == "placed" {
            assert_eq!(pid, before.pid(path), "the root was restarted");
            assert_eq!(
                view.restarts as usize,
                moved.len(),
                "the root's restart count"
            );
        } else if moved.contains(path) {
            assert_ne!(pid, before.pid(path), "{path} was not restarted");
            assert_eq!(view.restarts, 1, "{path} restarts: {:?}", after.view);
        } else {
            assert_eq!(
                pid,
                before.pid(path),
                "{path} was restarted though its node lives"
            );
            assert_eq!(view.restarts, 0, "{path} restarts: {:?}", after.view);
        }
    }
    for lab in ["placed/lab1", "placed/lab2"] {
        assert_eq!(
            after.node(lab),
            other_b,
            "{lab} left zone=b: {:?}",
            after.at
        );
    }
    let (moved_key, key) = if victim == "w2" {
        ("placed/k2", &k2)
    } else {
        ("placed/k3", &k3)
    };
    assert_eq!(
        after.node(moved_key),
        keyed_node(&c, key)?,
        "{moved_key} is not where its key hashes now"
    );
    assert_eq!(after.node("placed/named"), "w4");
    Ok(())
}

/// `noconnection` is an exit like any other for the supervisor: under
/// one_for_all, the death of one child's node restarts the whole group (the
/// siblings on live nodes get new pids; one restart is counted); and with
/// intensity 0 it takes the supervisor down — the app is `failed`, its
/// children are gone, and the master does not start it again (only the
/// death of the root's own node does that).
#[test]
fn noconnection_applies_strategy_and_intensity() -> Result<()> {
    let mut c = start_cluster(&[
        ("w1", opts(&[])),
        ("w2", opts(&["--label", "role=x"])),
        ("w3", opts(&["--label", "role=x"])),
    ])?;
    c.load_nodes(&["w2", "w3"], 6)?;
    let group = write_tree(
        &c,
        "group",
        "one_for_all",
        5,
        &[
            echo("a", r#"{ label = "role=x" }"#),
            echo("b", ""),
            echo("c", ""),
        ],
    )?;
    let before = start_tree_where(&c, &group, "group", |n| n == "w1")?;
    let victim = before.node("group/a").to_owned();
    let other = if victim == "w2" { "w3" } else { "w2" };

    let strict = write_tree(
        &c,
        "strict",
        "one_for_one",
        0,
        &[
            echo("s", &format!(r#"{{ node = "{victim}" }}"#)),
            echo("t", ""),
        ],
    )?;
    start_tree_where(&c, &strict, "strict", |n| n != victim)?;

    c.worker(&victim).kill9();

    let after = wait_settled(&c, "group", FAILOVER, none_on(&victim))?;
    assert_eq!(after.pid("group"), before.pid("group"));
    for child in ["group/a", "group/b", "group/c"] {
        assert_ne!(
            after.pid(child),
            before.pid(child),
            "{child} kept its pid under one_for_all"
        );
    }
    assert_eq!(after.node("group/a"), other);
    assert_eq!(
        after.view.restarts, 1,
        "one group restart: {:?}",
        after.view
    );

    wait_app_status(&c, "strict", AppStatus::Failed)?;
    let left = app_processes(&c.ps()?, "strict");
    assert!(left.is_empty(), "the failed tree left processes: {left:?}");
    assert_eq!(c.app("strict")?.status, AppStatus::Failed);
    Ok(())
}

/// A supervisor whose node dies takes its subtree's links with it: its
/// children on other nodes get the exit signal (they do not trap exits) and
/// stop, so none is left orphaned beside the replacements that the parent's
/// restart of the supervisor (on another node) starts. At no sample does a
/// child run twice, and none of the old children is left.
#[test]
fn supervisor_node_death_takes_its_remote_children_with_it() -> Result<()> {
    let mut c = start_cluster(&[
        ("w1", opts(&[])),
        ("w2", opts(&["--label", "role=mid"])),
        ("w3", opts(&["--label", "role=mid"])),
        ("w4", opts(&["--label", "role=leaf"])),
    ])?;
    c.load_nodes(&["w2", "w3", "w4"], 3)?;
    let leaf = r#"{ label = "role=leaf" }"#;
    let file = write_tree(
        &c,
        "deep",
        "one_for_one",
        5,
        &[
            echo("top", ""),
            nested(
                "mid",
                r#"{ label = "role=mid" }"#,
                "one_for_one",
                &[
                    echo("leaf1", leaf),
                    echo("leaf2", leaf),
                    echo("leaf3", leaf),
                    echo("near", ""),
                ],
            ),
        ],
    )?;
    let before = start_tree_where(&c, &file, "deep", |n| n == "w1")?;
    for l in ["deep/mid/leaf1", "deep/mid/leaf2", "deep/mid/leaf3"] {
        assert_eq!(before.node(l), "w4", "{l}: {:?}", before.at);
    }
    let victim = before.node("deep/mid").to_owned();
    let old: Vec<String> = before
        .at
        .iter()
        .filter(|(p, _)| p.starts_with("deep/mid"))
        .map(|(_, (pid, _))| pid.clone())
        .collect();

    c.worker(&victim).kill9();
    watch_no_duplicates(&c, "deep", &[], FAILOVER, std::time::Duration::ZERO, |c| {
        look(c, "deep").is_ok_and(|s| s.node("deep/mid") != victim && s.on_node(&victim).is_empty())
    })?;
    let after = look(&c, "deep").map_err(anyhow::Error::msg)?;
    let ps = c.ps()?;
    let left: Vec<&String> = old
        .iter()
        .filter(|o| ps.iter().any(|p| p.pid.to_string() == **o))
        .collect();
    assert!(
        left.is_empty(),
        "children of the dead supervisor still run: {left:?}"
    );
    assert_eq!(after.pid("deep"), before.pid("deep"));
    assert_eq!(after.pid("deep/top"), before.pid("deep/top"));
    assert_ne!(after.node("deep/mid"), victim);
    for l in ["deep/mid/leaf1", "deep/mid/leaf2", "deep/mid/leaf3"] {
        assert_eq!(after.node(l), "w4", "{l}: {:?}", after.at);
        assert_ne!(after.pid(l), before.pid(l));
    }
    assert_eq!(
        after.view.restarts, 1,
        "the root restarted mid once: {:?}",
        after.view
    );
    Ok(())
}

/// When the node of an application's root dies, the master starts the root
/// again on another node; the root's children elsewhere, linked to the dead
/// root, stop, and the new root starts them again: every child runs once,
/// none of the old ones is left.
#[test]
fn root_node_death_restarts_the_app_on_another_node() -> Result<()> {
    let mut c = start_cluster(&[("w1", opts(&[])), ("w2", opts(&[])), ("w3", opts(&[]))])?;
    c.load_nodes(&["w2", "w3"], 3)?;
    let ll = r#""least-loaded""#;
    let file = write_tree(
        &c,
        "phoenix",
        "one_for_one",
        5,
        &[
            echo("home", ""),
            echo("c1", ll),
            echo("c2", ll),
            echo("c3", ll),
            echo("c4", ll),
        ],
    )?;
    let before = start_tree_where(&c, &file, "phoenix", |n| n == "w1")?;
    let old: Vec<String> = before.at.values().map(|(p, _)| p.clone()).collect();

    c.worker("w1").kill9();
    watch_no_duplicates(
        &c,
        "phoenix",
        &[],
        FAILOVER,
        std::time::Duration::ZERO,
        |c| look(c, "phoenix").is_ok_and(|s| s.node("phoenix") != "w1"),
    )?;
    let after = look(&c, "phoenix").map_err(anyhow::Error::msg)?;
    let app = c.app("phoenix")?;
    assert_eq!(app.status, AppStatus::Running);
    assert_ne!(app.node.as_deref(), Some("w1"));
    assert_eq!(
        app.root.map(|p| p.to_string()).as_deref(),
        Some(after.pid("phoenix"))
    );
    let ps = c.ps()?;
    let left: Vec<&String> = old
        .iter()
        .filter(|o| ps.iter().any(|p| p.pid.to_string() == **o))
        .collect();
    assert!(
        left.is_empty(),
        "processes of the old root's tree still run: {left:?}"
    );
    assert_eq!(after.node("phoenix/home"), after.node("phoenix"));
    Ok(())
}
