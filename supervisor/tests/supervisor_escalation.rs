//! Escalation (docs/semantics.md "Escalation"): a supervisor that gives up
//! exits `{shutdown, "restart intensity exceeded: ..."}` (OTP: `shutdown`),
//! and its parent treats that by the nested supervisor's
//! restart type; through two levels of supervisors up to the root.

mod support;

use pool_proto::{ExitReason, Restart, Strategy};
use supervisor::supervisor::{self as sup, Child, ChildPid, Spec};
use supervisor::{Pid, Runtime};
use support::*;

/// A supervisor `id` with intensity `n` (period 5 s) over workers.
fn mid(log: &Log, n: u32, workers: &[&str]) -> Spec {
    let mut spec = Spec::new("mid", Strategy::OneForOne).intensity(n);
    for w in workers {
        spec = spec.child(plain(log, w));
    }
    spec
}

/// The exit reason of a supervisor that gave up with `n` restarts in its
/// 5 s window, over `intensity`.
fn gave_up(n: usize, intensity: u32) -> ExitReason {
    let restarts = if n == 1 { "restart" } else { "restarts" };
    ExitReason::ShutdownWith(format!(
        "restart intensity exceeded: {n} {restarts} in 5 s, intensity {intensity}"
    ))
}

/// Crashes worker `id` of supervisor `s` `times` times in a row.
async fn crash_times(rt: &Runtime, s: Pid, id: &str, times: usize) {
    for _ in 0..times {
        let w = running(rt, s, id).await;
        crash_child(rt, w).await;
    }
}

/// escalate.permanent: a permanent nested supervisor that gave up is
/// restarted fresh from its init specs: its workers start again and a child
/// added to it dynamically is gone. It counts one restart in the parent.
#[tokio::test(start_paused = true)]
async fn a_permanent_nested_supervisor_is_restarted_fresh() {
    let rt = node();
    let log = Log::new();
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(1)
        .child(Child::supervisor("mid", mid(&log, 1, &["W1", "W2"])));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    sup::start_child(&rt, m, plain(&log, "DYN")).await.unwrap();
    let m_exit = watch(&rt, m).await;
    log.take();
    crash_times(&rt, m, "W1", 2).await;
    assert_eq!(m_exit.reason().await, gave_up(2, 1), "mid gave up");
    let m2 = running(&rt, r, "mid").await;
    assert_ne!(m2, m);
    assert_eq!(
        log.take(),
        [
            "started W1", // mid's one allowed restart
            "stopped DYN",
            "stopped W2", // mid gives up: reverse order
            "started W1",
            "started W2", // the fresh mid
        ]
    );
    let ids: Vec<_> = children(&rt, m2)
        .await
        .into_iter()
        .map(|(id, _)| id.unwrap())
        .collect();
    assert_eq!(ids, ["W2", "W1"], "the dynamic child is gone");
    assert!(rt.is_alive(r));
}

/// escalate.transient: a transient nested supervisor that gave up is not
/// restarted (`shutdown` is a clean exit for a transient child); its spec
/// stays with pid `undefined`.
#[tokio::test(start_paused = true)]
async fn a_transient_nested_supervisor_that_gave_up_is_not_restarted() {
    let rt = node();
    let log = Log::new();
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(0)
        .child(Child::supervisor("mid", mid(&log, 0, &["W"])).restart(Restart::Transient))
        .child(plain(&log, "R"));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    crash_times(&rt, m, "W", 1).await;
    assert_eq!(state_of(&rt, r, "mid").await, Some(ChildPid::Undefined));
    assert!(rt.is_alive(r), "not counted: intensity 0 survived");
    running(&rt, r, "R").await;
}

/// escalate.temporary: a temporary nested supervisor that gave up is
/// removed.
#[tokio::test(start_paused = true)]
async fn a_temporary_nested_supervisor_that_gave_up_is_removed() {
    let rt = node();
    let log = Log::new();
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(0)
        .child(Child::supervisor("mid", mid(&log, 0, &["W"])).restart(Restart::Temporary));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    crash_times(&rt, m, "W", 1).await;
    assert_eq!(state_of(&rt, r, "mid").await, None);
    assert!(rt.is_alive(r));
}

/// escalate.two-levels: root → mid → leaf → worker. The worker's crash
/// makes leaf give up (intensity 0), which makes mid give up (intensity 0);
/// the root restarts mid fresh, which starts a fresh leaf and worker.
#[tokio::test(start_paused = true)]
async fn escalation_through_two_levels_restarts_the_subtree_fresh() {
    let rt = node();
    let log = Log::new();
    let leaf = Spec::new("leaf", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "W"));
    let middle = Spec::new("mid", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "M"))
        .child(Child::supervisor("leaf", leaf));
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(1)
        .child(Child::supervisor("mid", middle));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    let l = running(&rt, m, "leaf").await;
    let (m_exit, l_exit) = (watch(&rt, m).await, watch(&rt, l).await);
    log.take();
    crash_times(&rt, l, "W", 1).await;
    assert_eq!(l_exit.reason().await, gave_up(1, 0));
    assert_eq!(m_exit.reason().await, gave_up(1, 0));
    let m2 = running(&rt, r, "mid").await;
    let l2 = running(&rt, m2, "leaf").await;
    running(&rt, l2, "W").await;
    assert_eq!(log.take(), ["stopped M", "started M", "started W"]);
    assert!(rt.is_alive(r));
}

/// escalate.root: when the root gives up too, the whole tree is gone and the
/// root's own exit reason is the give-up reason, `{shutdown, _}`.
#[tokio::test(start_paused = true)]
async fn when_the_root_gives_up_the_whole_tree_is_gone() {
    let rt = node();
    let log = Log::new();
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "R"))
        .child(Child::supervisor("mid", mid(&log, 0, &["W1", "W2"])));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    let r_exit = watch(&rt, r).await;
    log.take();
    crash_times(&rt, m, "W1", 1).await;
    assert_eq!(r_exit.reason().await, gave_up(1, 0));
    assert_eq!(log.take(), ["stopped W2", "stopped R"]);
    wait_until("every process is gone", DEADLINE, || {
        rt.process_count() == 0
    })
    .await;
}

/// escalate.counts: each escalation counts one restart in the parent: a
/// root with intensity 1 survives one nested give-up and gives up at the
/// second within its period.
#[tokio::test(start_paused = true)]
async fn each_escalation_counts_one_restart_in_the_parent() {
    let rt = node();
    let log = Log::new();
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(1)
        .child(Child::supervisor("mid", mid(&log, 0, &["W"])));
    let r = sup::start(&rt, root).await.unwrap();
    let r_exit = watch(&rt, r).await;
    crash_times(&rt, running(&rt, r, "mid").await, "W", 1).await;
    assert!(rt.is_alive(r));
    crash_times(&rt, running(&rt, r, "mid").await, "W", 1).await;
    assert_eq!(r_exit.reason().await, gave_up(2, 1));
}
