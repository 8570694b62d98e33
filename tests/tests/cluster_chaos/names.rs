//! Issue point 3: names follow their process, whoever registered them. A
//! name that a client (a hidden node, here in the test process, with the
//! pool-worker library) registers for a process on another node is
//! released when that process dies, and is there again after a master
//! restart even though the client that registered it has left.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use pool_cluster_tests::views::metric;
use pool_cluster_tests::{Cluster, http_get, wait_until};
use pool_proto::Pid;
use pool_worker::{Node, NodeConfig, NodeHandle};

use super::common::{SETTLE, start_cluster};

/// A runtime for the client node of the test process.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

/// A hidden node (as `poolctl` is) joined to the cluster's master.
fn client(rt: &tokio::runtime::Runtime, c: &Cluster, name: &str) -> Result<NodeHandle> {
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    Ok(rt
        .block_on(Node::builder(NodeConfig::hidden(name, c.master_addr.clone(), cookie)).start())?)
}

/// A `builtin.echo` spawned on `node` with poolctl; its pid.
fn echo_on(c: &Cluster, node: &str) -> Result<Pid> {
    let v = c
        .ctl()
        .json(&["spawn", "builtin.echo", "{}", "--on", node])?;
    v["pid"]
        .as_str()
        .context("spawn printed no pid")?
        .parse()
        .map_err(|e| anyhow!("spawn printed a bad pid: {e}"))
}

/// The holder of `name` in `poolctl names`, if any.
fn holder(c: &Cluster, name: &str) -> Result<Option<Pid>> {
    Ok(c.ctl().names()?.get(name).copied())
}

/// A client registers `remote` for a `builtin.echo` on w1 (a pid of
/// another node) and the name shows in `poolctl names`; when the process
/// is killed, the name is released within 10 s (no longer listed, and a
/// lookup finds nothing).
#[test]
fn a_name_registered_for_a_remote_process_is_released_when_it_dies() -> Result<()> {
    let c = start_cluster(&[("w1", &[])])?;
    let rt = runtime()?;
    let node = client(&rt, &c, "namer")?;
    let pid = echo_on(&c, "w1")?;
    let pool = node.pool();
    ensure!(
        rt.block_on(pool.register_global("remote", pid))?,
        "the name was refused"
    );
    ensure!(
        holder(&c, "remote")? == Some(pid),
        "poolctl names: {:?}",
        c.ctl().names()?
    );

    c.ctl().json(&["kill", &pid.to_string()])?;
    wait_until(
        "the name of the dead process to be released",
        Duration::from_secs(10),
        || {
            (holder(&c, "remote").ok()?.is_none()
                && rt.block_on(pool.whereis("remote")).ok()?.is_none())
            .then_some(())
        },
    )
    .map_err(|e| anyhow!("{e}; names: {:?}", c.ctl().names()))?;
    rt.block_on(node.shutdown());
    Ok(())
}

/// A client registers `remote` for a `builtin.echo` on w1 and leaves; the
/// name stays (it belongs to the process, not to the client). The master
/// is killed and started again on the same address and state directory:
/// once w1 has rejoined, `remote` names the same pid again, within 15 s.
#[test]
fn a_name_registered_for_a_remote_process_is_back_after_a_master_restart() -> Result<()> {
    let mut c = start_cluster(&[("w1", &[])])?;
    let rt = runtime()?;
    let node = client(&rt, &c, "namer")?;
    let pid = echo_on(&c, "w1")?;
    ensure!(
        rt.block_on(node.pool().register_global("remote", pid))?,
        "the name was refused"
    );
    rt.block_on(node.shutdown());
    // The master has seen the client leave once no hidden node is up.
    wait_until("the client to be gone", SETTLE, || {
        let (_, text) = http_get(&c.http_addr, "/metrics").ok()?;
        (metric(&text, "pool_nodes_up", r#"kind="hidden""#)? == 0.0).then_some(())
    })?;
    ensure!(
        holder(&c, "remote")? == Some(pid),
        "the name went with the client that registered it: {:?}",
        c.ctl().names()?
    );

    if let Some(m) = c.master.as_mut() {
        m.kill9();
    }
    c.start_master()?;
    c.wait_nodes(1)?;
    wait_until(
        "the name to be back after the master restart",
        Duration::from_secs(15),
        || (holder(&c, "remote").ok()? == Some(pid)).then_some(()),
    )
    .map_err(|e| anyhow!("{e}; names: {:?}", c.ctl().names()))?;
    Ok(())
}
