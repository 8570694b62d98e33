//! Joining and leaving: membership as `poolctl nodes` shows it, a duplicate
//! name refused, a graceful stop on SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::{Cluster, wait_until};

use crate::support::last_line;

/// Two workers join and are listed with distinct ids and their loopback
/// peer addresses; SIGTERM stops one gracefully (exit status 0) and it
/// leaves the pool: `poolctl nodes` no longer lists it, the other stays,
/// and a new worker may then take the freed name (with a new id).
#[test]
fn join_and_graceful_leave_on_sigterm() -> Result<()> {
    let mut c = Cluster::start(2)?;
    let nodes = c.nodes()?;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    for n in &nodes {
        let addr: SocketAddr = n["addr"].as_str().unwrap_or("").parse()?;
        assert!(addr.ip().is_loopback(), "{n}");
    }
    assert_ne!(nodes[0]["id"], nodes[1]["id"], "{nodes:?}");
    let old_w2 = c.node("w2")?.expect("w2 is live")["id"].clone();

    // A process on w2 goes down with it.
    let (pid, _) = c.spawn(&["builtin.echo", "--on", "w2"])?;

    assert!(
        c.worker("w2").terminate(Duration::from_secs(20)),
        "w2 did not stop within 20 s of SIGTERM; its log:\n{}",
        c.worker("w2").log()
    );
    let status = c.worker("w2").wait_exit(Duration::ZERO);
    assert!(
        status.is_some_and(|s| s.success()),
        "a graceful stop exits 0, got {status:?}; log:\n{}",
        c.worker("w2").log()
    );
    // It told the master it leaves before closing: gone at once.
    c.wait_node_gone("w2", Duration::from_secs(2))?;
    assert_eq!(c.node_names()?, vec!["w1".to_owned()]);
    let ps = c.poolctl_json(&["ps"])?;
    assert!(
        !ps.as_array()
            .is_some_and(|a| a.iter().any(|p| p["pid"] == pid.as_str())),
        "{pid} was on w2 and must be gone: {ps}"
    );

    // The name is free again; the new node is a new incarnation.
    c.start_worker("w2", &[])?;
    let new_w2 = wait_until("w2 to rejoin", Duration::from_secs(20), || {
        c.node("w2").ok().flatten()
    })?;
    assert_ne!(new_w2["id"], old_w2, "a restarted worker has a new id");
    Ok(())
}

/// A second worker asking for the name of a live node is refused: it exits
/// with status 1, and its last stderr line names the taken name and says
/// what to do (`--name`), once; the first node keeps its id and stays
/// listed.
#[test]
fn duplicate_name_is_refused_with_a_clear_error() -> Result<()> {
    let mut c = Cluster::start(1)?;
    let id = c.node("w1")?.expect("w1 is live")["id"].clone();

    let mut cmd = c.command("pool-worker");
    cmd.args(["--master", &c.master_addr, "--name", "w1"]);
    c.add_worker("w1-duplicate", cmd)?;
    let status = c.worker("w1-duplicate").wait_exit(Duration::from_secs(20));
    let log = c.worker("w1-duplicate").log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "the duplicate should exit 1; log:\n{log}"
    );
    let line = last_line(&log);
    assert!(
        line.contains("w1") && line.contains("--name") && line.contains("exists"),
        "the error should name the taken name and say to pick another --name: {line}"
    );
    assert_eq!(
        line.matches("pick another").count(),
        1,
        "the reason should be said once: {line}"
    );

    let nodes = c.nodes()?;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["id"], id, "the first w1 must keep its place");
    Ok(())
}
