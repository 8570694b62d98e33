//! Links, monitors and exit signals between processes on different
//! nodes: an abnormal exit travels a link, a monitor gets the reason,
//! `exit` and `kill` reach processes elsewhere (`kill` untrappable).

mod support;

use pool_proto::ExitReason;
use pool_worker::{NodeHandle, Spawn};
use support::{Cluster, Got, Probe};

/// Spawns `function` with `args` on node `on`, from `from`.
async fn spawn_on(
    from: &NodeHandle,
    on: &str,
    function: &str,
    args: serde_json::Value,
) -> pool_proto::Pid {
    from.pool()
        .spawn(Spawn::new(function, args).on(on))
        .await
        .unwrap()
        .pid
}

/// A process that traps exits and is linked to a process on another node
/// receives that process's abnormal exit as an exit signal.
#[tokio::test(start_paused = true)]
async fn an_abnormal_exit_travels_a_link_between_nodes() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let crash = serde_json::json!({"after_ms": 100, "reason": "boom"});
    let doomed = spawn_on(&w[0], "w2", "builtin.crash", crash).await;
    let mut probe = Probe::spawn(w[0].runtime(), true, move |ctx| ctx.link(doomed).unwrap());
    let (from, reason) = probe.exit().await;
    assert_eq!(from, doomed);
    assert_eq!(reason.to_string(), "boom");
}

/// A link works both ways: when the local side dies abnormally, the
/// remote side (not trapping) dies with the same reason.
#[tokio::test(start_paused = true)]
async fn a_link_kills_the_remote_side_too() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let echo = spawn_on(&w[0], "w2", "builtin.echo", serde_json::json!({})).await;
    let mut watcher = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(echo);
    });
    let linked = Probe::spawn(w[0].runtime(), false, move |ctx| ctx.link(echo).unwrap());
    // Let the link reach w2 first.
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    w[0].pool()
        .exit(linked.pid, ExitReason::Error("bye".into()));
    let (pid, reason) = watcher.down().await;
    assert_eq!(pid, echo);
    assert_eq!(reason.to_string(), "bye");
}

/// A monitor of a process on another node gets its exit reason.
#[tokio::test(start_paused = true)]
async fn a_monitor_between_nodes_gets_the_reason() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let crash = serde_json::json!({"after_ms": 50, "reason": "shutdown"});
    let target = spawn_on(&w[0], "w2", "builtin.crash", crash).await;
    let mut probe = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(target);
    });
    assert_eq!(probe.down().await, (target, ExitReason::Shutdown));
}

/// Monitoring a process of another node that is already gone gives
/// `noproc` (answered by that node).
#[tokio::test(start_paused = true)]
async fn monitoring_a_dead_remote_process_gives_noproc() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let gone = w[0]
        .pool()
        .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 1})).on("w2"))
        .await
        .unwrap()
        .spawned;
    let target = gone.pid;
    let mut probe = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(target);
    });
    assert_eq!(probe.down().await, (target, ExitReason::NoProc));
}

/// An exit signal sent to a process on another node ends it with that
/// reason.
#[tokio::test(start_paused = true)]
async fn an_exit_signal_reaches_another_node() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let echo = spawn_on(&w[0], "w2", "builtin.echo", serde_json::json!({})).await;
    let mut probe = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(echo);
    });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    w[0].pool().exit(echo, ExitReason::Shutdown);
    assert_eq!(probe.down().await, (echo, ExitReason::Shutdown));
}

/// `kill` from another node cannot be trapped: a process that traps exits
/// still dies, `killed`.
#[tokio::test(start_paused = true)]
async fn kill_from_another_node_cannot_be_trapped() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let stubborn = spawn_on(&w[0], "w2", "test.stubborn", serde_json::json!({})).await;
    let mut probe = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.monitor(stubborn);
    });
    w[0].pool().exit(stubborn, ExitReason::Shutdown);
    assert!(
        probe
            .nothing_within(std::time::Duration::from_millis(200))
            .await
    );
    assert!(
        w[1].runtime().is_alive(stubborn),
        "a trapped shutdown killed it"
    );
    w[0].pool().exit(stubborn, ExitReason::Kill);
    assert_eq!(probe.down().await, (stubborn, ExitReason::Killed));
}

/// A process that traps exits receives an exit signal from another node's
/// process as a message naming the sender, and lives on.
#[tokio::test(start_paused = true)]
async fn a_trapped_exit_signal_from_another_node_is_a_message() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut trapper = Probe::spawn(w[1].runtime(), true, |_| {});
    let target = trapper.pid;
    let sender = Probe::spawn(w[0].runtime(), false, move |ctx| {
        ctx.exit(target, ExitReason::Error("hey".into()));
    });
    match trapper.next().await {
        Got::Exit { from, reason } => {
            assert_eq!(from, sender.pid);
            assert_eq!(reason.to_string(), "hey");
        }
        other => panic!("expected an exit signal, got {other:?}"),
    }
    assert!(w[1].runtime().is_alive(target));
}
