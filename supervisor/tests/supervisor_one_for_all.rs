//! one_for_all supervisors (docs/semantics.md "Strategies"): the probe
//! ordering, what a group restart brings back, temporary bystanders, and
//! exits that restart nothing.

mod support;

use pool_proto::{ExitReason, Restart, Strategy};
use supervisor::supervisor::{self as sup, Spec};
use support::*;

/// strategy.one-for-all: with A, B, C started in that order and B crashing,
/// the others stop in reverse start order and all start again in start
/// order: `stopped C, stopped A, started A, started B, started C`. It is
/// one restart: with intensity 1 the supervisor survives it.
#[tokio::test]
async fn probe_order_and_one_restart() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(1)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    let before = [
        running(&rt, s, "A").await,
        running(&rt, s, "B").await,
        running(&rt, s, "C").await,
    ];
    log.take();
    crash_child(&rt, before[1]).await;
    let after = [
        running(&rt, s, "A").await,
        running(&rt, s, "B").await,
        running(&rt, s, "C").await,
    ];
    assert_eq!(
        log.take(),
        [
            "stopped C",
            "stopped A",
            "started A",
            "started B",
            "started C"
        ]
    );
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old, new);
        assert!(!rt.is_alive(*old));
    }
    assert!(rt.is_alive(s), "one group restart is one restart");
}

/// strategy.group-restarts-stopped: a group restart also starts the
/// non-temporary children that were stopped (here by `terminate_child`):
/// B stopped, A crashes, events `stopped C, started A, started B, started C`.
#[tokio::test]
async fn group_restart_brings_back_children_stopped_by_terminate_child() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(5)
        .child(plain(&log, "A"))
        .child(plain(&log, "B").restart(Restart::Transient))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    sup::terminate_child(&rt, s, "B").await.unwrap();
    assert_eq!(state_of(&rt, s, "B").await, Some(sup::ChildPid::Undefined));
    let a = running(&rt, s, "A").await;
    log.take();
    crash_child(&rt, a).await;
    running(&rt, s, "B").await;
    assert_eq!(
        log.take(),
        ["stopped C", "started A", "started B", "started C"]
    );
}

/// strategy.group-restarts-stopped: a child whose start returned `ignore`
/// is started again by a group restart.
#[tokio::test]
async fn group_restart_starts_a_child_that_ignored_its_start() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(5)
        .child(plain(&log, "A"))
        .child(scripted(
            &log,
            "B",
            Mode::Plain,
            script([Attempt::Ignore], Attempt::Start),
        ));
    let s = sup::start(&rt, spec).await.unwrap();
    assert_eq!(state_of(&rt, s, "B").await, Some(sup::ChildPid::Undefined));
    let a = running(&rt, s, "A").await;
    log.take();
    crash_child(&rt, a).await;
    running(&rt, s, "B").await;
    assert_eq!(log.take(), ["started A", "started B"]);
}

/// strategy.temporary-bystander: a temporary child stopped as a bystander
/// of a group restart is not restarted; its spec is removed and the
/// supervisor carries on.
#[tokio::test]
async fn temporary_bystander_is_dropped_not_restarted() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(5)
        .child(plain(&log, "A"))
        .child(plain(&log, "T").restart(Restart::Temporary))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    log.take();
    crash_child(&rt, a).await;
    assert_eq!(state_of(&rt, s, "T").await, None, "spec removed");
    assert_eq!(
        log.take(),
        ["stopped C", "stopped T", "started A", "started C"]
    );
    assert!(rt.is_alive(s));
}

/// strategy.no-restart-no-group: a temporary child's exit, or a transient
/// child's normal exit, restarts no sibling and is not counted: with
/// intensity 0 the supervisor survives both.
#[tokio::test]
async fn exits_that_need_no_restart_touch_no_sibling() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(0)
        .child(plain(&log, "A"))
        .child(plain(&log, "T").restart(Restart::Temporary))
        .child(plain(&log, "R").restart(Restart::Transient));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    log.take();
    let t = running(&rt, s, "T").await;
    end_child(&rt, t, Why::Exit(boom())).await;
    let r = running(&rt, s, "R").await;
    end_child(&rt, r, Why::Exit(ExitReason::Normal)).await;
    assert_eq!(running(&rt, s, "A").await, a);
    assert_eq!(state_of(&rt, s, "T").await, None);
    assert_eq!(state_of(&rt, s, "R").await, Some(sup::ChildPid::Undefined));
    assert!(log.take().is_empty(), "nothing stopped or started");
    assert!(rt.is_alive(s));
}

/// strategy.one-exit-per-group: when two children of a one_for_all
/// supervisor die together, the second exit is taken up by the group
/// restart of the first (the supervisor finds it while stopping that
/// child): one restart in all, so intensity 1 is enough.
#[tokio::test]
async fn two_children_dying_together_are_one_restart() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(1)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    let b = running(&rt, s, "B").await;
    let mut events = rt.events();
    log.take();
    with_ctx(&rt, move |mut ctx| async move {
        let (ma, mb) = (ctx.monitor(a), ctx.monitor(b));
        ctx.kill(a);
        ctx.kill(b);
        down_reason(&mut ctx, ma).await;
        down_reason(&mut ctx, mb).await;
    })
    .await;
    running(&rt, s, "C").await;
    assert!(rt.is_alive(s), "one restart, within intensity 1");
    let mut restarted = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let supervisor::RuntimeEvent::ChildRestarted { child, .. } = e {
            restarted.push(child);
        }
    }
    assert_eq!(restarted, ["A", "B", "C"], "each child started once");
    assert_eq!(
        log.take(),
        [
            "stopped A",
            "stopped B",
            "stopped C",
            "started A",
            "started B",
            "started C"
        ]
    );
}
