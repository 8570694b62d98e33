//! Restart intensity (docs/semantics.md "Restart intensity"), with paused
//! time: the edges of the window under the precise-time rule, the shared
//! counter, failed restart attempts, intensity 0, what giving up does, and
//! what is not counted.

mod support;

use pool_proto::{ExitReason, Strategy};
use supervisor::supervisor::{self as sup, Spec};
use support::*;

/// A one_for_one supervisor with workers A and B, intensity `n`, period `p`.
async fn ab(
    rt: &supervisor::Runtime,
    log: &Log,
    n: u32,
    p: std::time::Duration,
) -> supervisor::Pid {
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(n)
        .period(p)
        .child(plain(log, "A"))
        .child(plain(log, "B"));
    sup::start(rt, spec).await.unwrap()
}

/// The exit reason of a supervisor that gave up: `{shutdown, "restart
/// intensity exceeded: N restarts in T s, intensity I"}` (OTP: `shutdown`).
fn gave_up(n: usize, period_s: u64, intensity: u32) -> ExitReason {
    let restarts = if n == 1 { "restart" } else { "restarts" };
    ExitReason::ShutdownWith(format!(
        "restart intensity exceeded: {n} {restarts} in {period_s} s, intensity {intensity}"
    ))
}

/// Crashes child `id` of `s` at the current (virtual) time.
async fn crash_now(rt: &supervisor::Runtime, s: supervisor::Pid, id: &str) {
    let pid = running(rt, s, id).await;
    crash_child(rt, pid).await;
}

/// intensity.under-period: intensity 1, period 1 s: two restarts 999 ms
/// apart are more than 1 within the period, so the supervisor gives up at
/// the second crash and exits `{shutdown, "restart intensity exceeded: 2
/// restarts in 1 s, intensity 1"}`.
#[tokio::test(start_paused = true)]
async fn two_restarts_just_under_the_period_apart_give_up() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 1, secs(1)).await;
    let w = watch(&rt, s).await;
    crash_now(&rt, s, "A").await;
    tokio::time::sleep(ms(999)).await;
    let t = tokio::time::Instant::now();
    crash_now(&rt, s, "A").await;
    let (reason, at) = w.exit().await;
    assert_eq!(reason, gave_up(2, 1, 1));
    assert_eq!(at - t, ms(0), "gave up at once");
}

/// intensity.at-period: a previous restart exactly `period` old no longer
/// counts (precise-time rule: counted iff younger than the period).
#[tokio::test(start_paused = true)]
async fn a_restart_exactly_one_period_old_is_not_counted() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 1, secs(1)).await;
    crash_now(&rt, s, "A").await;
    tokio::time::sleep(secs(1)).await;
    crash_now(&rt, s, "A").await;
    running(&rt, s, "A").await;
    assert!(rt.is_alive(s));
}

/// intensity.beyond-period: restarts spaced by more than period + 1 s (OTP's
/// `multiple_restarts`: 2.1 s apart with intensity 1, period 1) are survived
/// indefinitely.
#[tokio::test(start_paused = true)]
async fn restarts_spaced_beyond_the_period_are_survived_indefinitely() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 1, secs(1)).await;
    for _ in 0..20 {
        crash_now(&rt, s, "A").await;
        tokio::time::sleep(ms(2100)).await;
    }
    assert!(rt.is_alive(s));
    assert_eq!(log.count("started A"), 21);
}

/// intensity.window-slides: old restarts leave the window one by one:
/// intensity 2, period 10 s, crashes at 0, 6 and 10 s are survived; one more
/// at 15 s makes three within 10 s.
#[tokio::test(start_paused = true)]
async fn the_window_slides() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 2, secs(10)).await;
    let w = watch(&rt, s).await;
    crash_now(&rt, s, "A").await;
    tokio::time::sleep(secs(6)).await;
    crash_now(&rt, s, "B").await;
    tokio::time::sleep(secs(4)).await;
    crash_now(&rt, s, "A").await;
    assert!(rt.is_alive(s), "the restart at 0 s left the window at 10 s");
    tokio::time::sleep(secs(5)).await;
    crash_now(&rt, s, "A").await;
    assert_eq!(w.reason().await, gave_up(3, 10, 2));
}

/// intensity.shared: the counter is per supervisor, shared by all its
/// children: with intensity 1, A crashing then B crashing takes it down.
#[tokio::test(start_paused = true)]
async fn the_counter_is_shared_by_all_children() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 1, secs(5)).await;
    let w = watch(&rt, s).await;
    crash_now(&rt, s, "A").await;
    tokio::time::sleep(secs(2)).await;
    crash_now(&rt, s, "B").await;
    assert_eq!(w.reason().await, gave_up(2, 5, 1));
}

/// intensity.zero: with intensity 0 the first crash that needs a restart
/// takes the supervisor down.
#[tokio::test(start_paused = true)]
async fn intensity_zero_gives_up_on_the_first_crash() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 0, secs(5)).await;
    let w = watch(&rt, s).await;
    log.take();
    crash_now(&rt, s, "A").await;
    assert_eq!(w.reason().await, gave_up(1, 5, 0));
    assert_eq!(log.take(), ["stopped B"], "A was not restarted");
}

/// intensity.give-up: giving up does not restart the crashed child, stops
/// the remaining children in reverse start order and exits `{shutdown, _}`
/// with the reason in words.
#[tokio::test(start_paused = true)]
async fn giving_up_stops_the_others_in_reverse_order_and_exits_shutdown() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(plain(&log, "C"))
        .child(plain(&log, "D"));
    let s = sup::start(&rt, spec).await.unwrap();
    let others = [
        running(&rt, s, "A").await,
        running(&rt, s, "C").await,
        running(&rt, s, "D").await,
    ];
    let w = watch(&rt, s).await;
    log.take();
    crash_now(&rt, s, "B").await;
    assert_eq!(w.reason().await, gave_up(1, 5, 0));
    assert_eq!(log.take(), ["stopped D", "stopped C", "stopped A"]);
    for p in others {
        assert!(!rt.is_alive(p));
    }
}

/// intensity.failed-attempts: every failed restart attempt counts: with
/// intensity 3, one crash and three failed start attempts take the
/// supervisor down, at once (no backoff).
#[tokio::test(start_paused = true)]
async fn failed_restart_attempts_count() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(3)
        .period(secs(5))
        .child(scripted(
            &log,
            "X",
            Mode::Plain,
            script(
                [Attempt::Start],
                Attempt::Fail(ExitReason::Error("nope".into())),
            ),
        ));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    let t0 = tokio::time::Instant::now();
    crash_now(&rt, s, "X").await;
    let (reason, at) = w.exit().await;
    assert_eq!(reason, gave_up(4, 5, 3));
    assert_eq!(at - t0, ms(0));
    assert_eq!(log.count("start-failed X"), 3);
}

/// intensity.api-not-counted: `terminate_child` and `restart_child` asked
/// for through the API are not counted: with intensity 0, five cycles leave
/// the supervisor alive.
#[tokio::test(start_paused = true)]
async fn api_terminate_and_restart_are_not_counted() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 0, secs(5)).await;
    for _ in 0..5 {
        sup::terminate_child(&rt, s, "A").await.unwrap();
        sup::restart_child(&rt, s, "A").await.unwrap().unwrap();
    }
    assert!(rt.is_alive(s));
    assert_eq!(log.count("started A"), 6);
}

/// intensity.events: each restart is reported as a `ChildRestarted` event
/// (with the old and new pid and the reason), and giving up as a
/// `SupervisorGaveUp` event.
#[tokio::test(start_paused = true)]
async fn restarts_and_giving_up_are_reported_as_events() {
    let rt = node();
    let log = Log::new();
    let s = ab(&rt, &log, 1, secs(5)).await;
    let mut events = rt.events();
    let a = running(&rt, s, "A").await;
    crash_child(&rt, a).await;
    let a2 = running(&rt, s, "A").await;
    match events.try_recv() {
        Ok(supervisor::RuntimeEvent::ChildRestarted {
            supervisor,
            child,
            old,
            new,
            reason,
            ..
        }) => {
            assert_eq!(
                (supervisor, child.as_str(), old, new),
                (s, "A", Some(a), Some(a2))
            );
            assert_eq!(reason, boom());
        }
        other => panic!("expected ChildRestarted, got {other:?}"),
    }
    let w = watch(&rt, s).await;
    crash_now(&rt, s, "A").await;
    w.reason().await;
    match events.try_recv() {
        Ok(supervisor::RuntimeEvent::SupervisorGaveUp { supervisor, path }) => {
            assert_eq!((supervisor, path.as_str()), (s, "s"));
        }
        other => panic!("expected SupervisorGaveUp, got {other:?}"),
    }
}
