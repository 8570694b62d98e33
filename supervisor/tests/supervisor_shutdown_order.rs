//! Shutdown (docs/semantics.md "Shutdown"), measured with paused time:
//! reverse start order, one child at a time, each with its own timeout; a
//! child that ignores `shutdown` is killed when its timeout ends;
//! `brutal_kill`; `infinity`; simple_one_for_one's all-at-once shutdown;
//! nested supervisors; a killed supervisor.

mod support;

use std::time::Duration;

use futures_util::FutureExt;
use pool_proto::{ExitReason, Shutdown, Strategy};
use supervisor::Ctx;
use supervisor::supervisor::{self as sup, Child, Spec, Started};
use support::*;

fn timeout(ms_: u64) -> Shutdown {
    Shutdown::Timeout(ms(ms_))
}

/// Starts `spec` linked to the calling (trapping) process, watches every
/// child in `ids`, sends the supervisor `shutdown` as its parent, and
/// returns each child's (id, reason, time after the signal) in the order of
/// `ids`, plus the supervisor's own. The order in which they ended is in
/// the children's log.
async fn shut_down(
    ctx: &mut Ctx,
    spec: Spec,
    ids: &[&str],
) -> (Vec<(String, ExitReason, Duration)>, (ExitReason, Duration)) {
    ctx.trap_exit(true);
    let rt = ctx.runtime().clone();
    let s = sup::start_link(ctx, spec).await.unwrap();
    let mut watches = Vec::new();
    for id in ids {
        let pid = running(&rt, s, id).await;
        watches.push((id.to_string(), watch(&rt, pid).await));
    }
    let sup_watch = watch(&rt, s).await;
    let t0 = tokio::time::Instant::now();
    ctx.exit(s, ExitReason::Shutdown);
    let mut ends = Vec::new();
    for (id, w) in watches {
        let (reason, at) = w.exit_within(secs(7200)).await;
        ends.push((id, reason, at - t0));
    }
    let (reason, at) = sup_watch.exit_within(secs(7200)).await;
    (ends, (reason, at - t0))
}

/// shutdown.reverse-order: stopping a supervisor stops its children one at
/// a time in reverse start order; `stop` then ends it `normal`.
#[tokio::test(start_paused = true)]
async fn children_stop_in_reverse_start_order() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(worker(&log, "B", Mode::Trap))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    log.take();
    sup::stop(&rt, s).await.unwrap();
    assert_eq!(log.take(), ["stopped C", "stopped B", "stopped A"]);
    assert_eq!(w.reason().await, ExitReason::Normal);
}

/// shutdown.probe: A(500 ms), B(300 ms, ignores shutdown), C(brutal_kill,
/// traps exits) and D(infinity), supervisor sent `shutdown` by its parent:
/// D ends `shutdown` at 0 ms, C `killed` at 0 ms, B `killed` at 300 ms, A
/// `shutdown` at 300 ms, then the supervisor exits `shutdown`.
#[tokio::test(start_paused = true)]
async fn probe_timings_of_each_shutdown_spec() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(worker(&log, "A", Mode::Trap).shutdown(timeout(500)))
        .child(worker(&log, "B", Mode::IgnoreShutdown).shutdown(timeout(300)))
        .child(worker(&log, "C", Mode::Trap).shutdown(Shutdown::BrutalKill))
        .child(worker(&log, "D", Mode::Trap).shutdown(Shutdown::Infinity));
    let (ends, sup_end) = with_ctx(&rt, |mut ctx| async move {
        shut_down(&mut ctx, spec, &["A", "B", "C", "D"]).await
    })
    .await;
    let ends: Vec<_> = ends
        .iter()
        .map(|(id, r, d)| (id.as_str(), r.clone(), *d))
        .collect();
    assert_eq!(
        ends,
        [
            ("A", ExitReason::Shutdown, ms(300)),
            ("B", ExitReason::Killed, ms(300)),
            ("C", ExitReason::Killed, ms(0)),
            ("D", ExitReason::Shutdown, ms(0)),
        ]
    );
    assert_eq!(
        log.take(),
        [
            "started A",
            "started B",
            "started C",
            "started D", //
            "stopped D",
            "stopped C",
            "ignored B",
            "stopped B",
            "stopped A",
        ]
    );
    assert_eq!(sup_end, (ExitReason::Shutdown, ms(300)));
}

/// shutdown.per-child-timeout: the timeout runs per child, one child after
/// the other: two children ignoring shutdown with 200 ms and 300 ms are
/// killed at 300 ms (the later one first) and at 500 ms.
#[tokio::test(start_paused = true)]
async fn each_child_gets_its_own_timeout() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(worker(&log, "X", Mode::IgnoreShutdown).shutdown(timeout(200)))
        .child(worker(&log, "Y", Mode::IgnoreShutdown).shutdown(timeout(300)));
    let (ends, sup_end) = with_ctx(&rt, |mut ctx| async move {
        shut_down(&mut ctx, spec, &["X", "Y"]).await
    })
    .await;
    let ends: Vec<_> = ends
        .iter()
        .map(|(id, r, d)| (id.as_str(), r.clone(), *d))
        .collect();
    assert_eq!(
        ends,
        [
            ("X", ExitReason::Killed, ms(500)),
            ("Y", ExitReason::Killed, ms(300)),
        ]
    );
    assert_eq!(sup_end, (ExitReason::Shutdown, ms(500)));
}

/// shutdown.timeout-clean: a child that takes less than its timeout to stop
/// ends with its own reason when it is done, and is not killed.
#[tokio::test(start_paused = true)]
async fn a_child_stopping_within_its_timeout_is_not_killed() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(worker(&log, "S", Mode::SlowStop(ms(120))).shutdown(timeout(500)));
    let (ends, _) = with_ctx(&rt, |mut ctx| async move {
        shut_down(&mut ctx, spec, &["S"]).await
    })
    .await;
    assert_eq!(ends, [("S".to_owned(), ExitReason::Shutdown, ms(120))]);
}

/// shutdown.infinity: with `infinity` (allowed for workers) the supervisor
/// waits as long as the child takes and never kills it.
#[tokio::test(start_paused = true)]
async fn infinity_waits_as_long_as_the_child_takes() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(worker(&log, "S", Mode::SlowStop(secs(3600))).shutdown(Shutdown::Infinity));
    let (ends, sup_end) = with_ctx(&rt, |mut ctx| async move {
        shut_down(&mut ctx, spec, &["S"]).await
    })
    .await;
    assert_eq!(ends, [("S".to_owned(), ExitReason::Shutdown, secs(3600))]);
    assert_eq!(sup_end, (ExitReason::Shutdown, secs(3600)));
}

/// shutdown.default: a worker's default shutdown is a 5 s timeout: a worker
/// ignoring shutdown is killed 5 s after the signal.
#[tokio::test(start_paused = true)]
async fn a_workers_default_shutdown_is_five_seconds() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne).child(worker(&log, "W", Mode::IgnoreShutdown));
    let (ends, _) = with_ctx(&rt, |mut ctx| async move {
        shut_down(&mut ctx, spec, &["W"]).await
    })
    .await;
    assert_eq!(ends, [("W".to_owned(), ExitReason::Killed, secs(5))]);
}

/// shutdown.simple-one-for-one: a simple_one_for_one supervisor signals all
/// its children at once and one timer kills the stragglers: 5 children,
/// 500 ms, 2 ignoring shutdown: 3 end `shutdown` at 0 ms, 2 `killed` at
/// 500 ms.
#[tokio::test(start_paused = true)]
async fn simple_one_for_one_signals_all_at_once_with_one_timer() {
    let rt = node();
    let log = Log::new();
    let l = log.clone();
    let template = Child::worker_with_args("w", move |ctx, (name, ignore): (String, bool)| {
        let mode = if ignore {
            Mode::IgnoreShutdown
        } else {
            Mode::Trap
        };
        body(ctx, l.clone(), name, mode)
    })
    .shutdown(timeout(500));
    let spec = Spec::new("s", Strategy::SimpleOneForOne).child(template);
    let rt2 = rt.clone();
    let ends = with_ctx(&rt, move |ctx| async move {
        ctx.trap_exit(true);
        let s = sup::start_link(&ctx, spec).await.unwrap();
        let mut watches = Vec::new();
        for (i, ignore) in [false, true, false, true, false].into_iter().enumerate() {
            let args = serde_json::json!([format!("c{i}"), ignore]);
            let pid = sup::start_dynamic_child(&rt2, s, args)
                .await
                .unwrap()
                .unwrap();
            watches.push(watch(&rt2, pid).await);
        }
        let t0 = tokio::time::Instant::now();
        ctx.exit(s, ExitReason::Shutdown);
        let mut ends = Vec::new();
        for w in watches {
            let (r, at) = w.exit().await;
            ends.push((r, at - t0));
        }
        ends
    })
    .await;
    let shutdown = (ExitReason::Shutdown, ms(0));
    let killed = (ExitReason::Killed, ms(500));
    assert_eq!(
        ends,
        [
            shutdown.clone(),
            killed.clone(),
            shutdown.clone(),
            killed,
            shutdown
        ]
    );
}

/// shutdown.nested: a nested supervisor (default shutdown `infinity`) stops
/// all its own children, in reverse order, before its parent goes on to the
/// next child.
#[tokio::test(start_paused = true)]
async fn a_nested_supervisor_stops_its_children_before_the_parent_goes_on() {
    let rt = node();
    let log = Log::new();
    let inner = Spec::new("inner", Strategy::OneForOne)
        .child(plain(&log, "B1"))
        .child(worker(&log, "B2", Mode::SlowStop(ms(50))));
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(Child::supervisor("inner", inner))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    log.take();
    sup::stop(&rt, s).await.unwrap();
    assert_eq!(
        log.take(),
        ["stopped C", "stopped B2", "stopped B1", "stopped A"]
    );
}

/// shutdown.killed-supervisor: a supervisor killed with `exit(Sup, kill)`
/// runs no shutdown protocol: its children get the exit signal `killed`
/// through their links at once; a trapping child sees `Exit { Sup, killed }`.
#[tokio::test(start_paused = true)]
async fn a_killed_supervisor_runs_no_shutdown_protocol() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "P").shutdown(timeout(1000)))
        .child(worker(&log, "T", Mode::Trap).shutdown(timeout(1000)));
    let s = sup::start(&rt, spec).await.unwrap();
    let p = watch(&rt, running(&rt, s, "P").await).await;
    let t = watch(&rt, running(&rt, s, "T").await).await;
    let t0 = tokio::time::Instant::now();
    rt.kill(s);
    let (pr, pat) = p.exit().await;
    let (tr, tat) = t.exit().await;
    assert_eq!((pr, pat - t0), (ExitReason::Killed, ms(0)));
    // T ends with the reason of the Exit message it received.
    assert_eq!((tr, tat - t0), (ExitReason::Killed, ms(0)));
}

/// shutdown.monitor: the supervisor waits on a monitor, not on the link:
/// a child that unlinked itself from its supervisor is still stopped, and
/// stopping does not hang.
#[tokio::test(start_paused = true)]
async fn a_child_that_unlinked_itself_is_still_stopped() {
    let rt = node();
    let log = Log::new();
    let l = log.clone();
    let child = Child::custom("U", move |ctx: &Ctx, _args| {
        let l = l.clone();
        async move {
            let sup_pid = ctx.pid();
            let pid = ctx.spawn_link(move |c: Ctx| {
                c.unlink(sup_pid);
                body(c, l, "U".into(), Mode::Plain)
            });
            Ok(Started::Pid(pid))
        }
        .boxed()
    });
    let spec = Spec::new("s", Strategy::OneForOne).child(child);
    let s = sup::start(&rt, spec).await.unwrap();
    let u = running(&rt, s, "U").await;
    sup::stop(&rt, s).await.unwrap();
    assert!(!rt.is_alive(u));
    assert_eq!(log.count("stopped U"), 1);
}

/// shutdown.parent-only: an exit signal from a process that is neither the
/// supervisor's parent nor one of its children is ignored (the supervisor
/// traps exits; only its parent's exit stops it).
#[tokio::test(start_paused = true)]
async fn an_exit_signal_from_a_stranger_is_ignored() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne).child(plain(&log, "A"));
    let s = sup::start(&rt, spec).await.unwrap();
    with_ctx(
        &rt,
        move |ctx| async move { ctx.exit(s, ExitReason::Shutdown) },
    )
    .await;
    running(&rt, s, "A").await;
    assert!(rt.is_alive(s));
}

/// shutdown.node: the node itself (the system pid, as when a node shuts
/// down) can stop a root supervisor with `shutdown`, children first.
#[tokio::test(start_paused = true)]
async fn the_node_can_stop_a_root_supervisor() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    log.take();
    rt.exit(s, ExitReason::Shutdown);
    assert_eq!(w.reason().await, ExitReason::Shutdown);
    assert_eq!(log.take(), ["stopped B", "stopped A"]);
}
