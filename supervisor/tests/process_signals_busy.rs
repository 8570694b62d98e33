//! Exit signals to a busy process (docs/semantics.md `signal.*`): a
//! pending exit signal, or kill, takes effect at the process's next await
//! point, before it is handed any further message, so a process working
//! through a full mailbox is stopped at once, and a sender's signal keeps
//! its place among that sender's messages.
//!
//! The bug these tests pin down needs a process that is running (polled
//! on one worker thread) while the signal is sent from another, so they
//! run on a multi-threaded runtime. They assert counts and order, never
//! durations: a busy process is made busy with work (a spin of a fixed
//! length per message, or a spin until the test releases it), and nothing
//! sleeps to synchronise.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use supervisor::supervisor::{self as sup, Child, Spec};
use supervisor::{
    Ctx, Envelope, ExitOutcome, ExitReason, Pid, Restart, Runtime, Shutdown, Strategy,
};
use support::*;

/// Messages queued for the busy child, as in the repro.
const QUEUED: usize = 1_500;

/// Burns CPU for `d`: the work one message costs (not a wait for anything).
fn work(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Computes (without awaiting) until `release` is set. Bounded by
/// [`DEADLINE`] so that a failed assertion that never releases it cannot
/// leave a thread spinning for ever and hang the test's runtime.
fn compute_until(release: &AtomicBool) {
    let start = Instant::now();
    while !release.load(Ordering::SeqCst) && start.elapsed() < DEADLINE {
        std::hint::spin_loop();
    }
}

/// A process that handles its messages slowly (1 ms of work each),
/// counting them in `handled`. It ignores an `Exit` message (a shutdown
/// request it traps), noting in `saw_exit` that it reached one.
async fn drain_slowly(mut ctx: Ctx, handled: Arc<AtomicUsize>, saw_exit: Arc<AtomicBool>) {
    loop {
        match ctx.recv().await {
            Envelope::Exit { .. } => saw_exit.store(true, Ordering::SeqCst),
            _ => {
                work(ms(1));
                handled.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// A supervisor with one temporary worker `busy` running [`drain_slowly`]
/// with `shutdown`, trapping exits if `trap`; returns the supervisor and
/// the child.
async fn supervised_busy_child(
    rt: &Runtime,
    shutdown: Shutdown,
    trap: bool,
    handled: &Arc<AtomicUsize>,
    saw_exit: &Arc<AtomicBool>,
) -> (Pid, Pid) {
    let (h, s) = (handled.clone(), saw_exit.clone());
    let child = Child::worker("busy", move |ctx: Ctx| {
        ctx.trap_exit(trap);
        drain_slowly(ctx, h.clone(), s.clone())
    })
    .restart(Restart::Temporary)
    .shutdown(shutdown);
    let sup = sup::start(rt, Spec::new("app", Strategy::OneForOne).child(child))
        .await
        .unwrap();
    let pid = running(rt, sup, "busy").await;
    (sup, pid)
}

/// signal.busy-kill: the repro. A `brutal_kill` child busy on
/// 1,500 queued messages (1 ms of work each) is stopped by
/// `terminate_child` before it handles the rest of its queue: it finishes
/// only the message it was on when the kill came, where before it handled
/// all 1,500 and the kill landed only on an empty mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brutal_kill_stops_a_child_busy_on_a_full_mailbox() {
    let rt = node();
    let handled = Arc::new(AtomicUsize::new(0));
    let saw_exit = Arc::new(AtomicBool::new(false));
    let (sup, child) =
        supervised_busy_child(&rt, Shutdown::BrutalKill, false, &handled, &saw_exit).await;
    let end = watch(&rt, child).await;
    for i in 0..QUEUED {
        rt.send(child, i);
    }
    let before_kill = handled.load(Ordering::SeqCst);
    sup::terminate_child(&rt, sup, "busy").await.unwrap();
    // `terminate_child` returns once the child's `Down` came: the count is
    // final.
    let after = handled.load(Ordering::SeqCst);
    assert_eq!(end.reason().await, ExitReason::Killed);
    assert!(
        after < QUEUED,
        "the kill stopped it before its queue was empty ({after} of {QUEUED} handled)"
    );
    assert!(
        after - before_kill < 100,
        "it handled {} messages after terminate_child was asked",
        after - before_kill
    );
    assert!(rt.is_alive(sup));
}

/// signal.busy-shutdown: a shutdown timeout holds under a full mailbox. A
/// child that traps exits, has a 50 ms shutdown and ignores the shutdown
/// request while it drains 1,500 queued messages is killed when the
/// timeout is up, and dies before it handles the rest of its queue: it
/// never even reaches the `shutdown` request queued behind its messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_timeout_holds_for_a_child_draining_a_full_mailbox() {
    let rt = node();
    let handled = Arc::new(AtomicUsize::new(0));
    let saw_exit = Arc::new(AtomicBool::new(false));
    let (sup, child) =
        supervised_busy_child(&rt, Shutdown::Timeout(ms(50)), true, &handled, &saw_exit).await;
    let end = watch(&rt, child).await;
    for i in 0..QUEUED {
        rt.send(child, i);
    }
    sup::terminate_child(&rt, sup, "busy").await.unwrap();
    let after = handled.load(Ordering::SeqCst);
    assert_eq!(end.reason().await, ExitReason::Killed);
    assert!(
        !saw_exit.load(Ordering::SeqCst),
        "killed before it reached the shutdown request behind its {QUEUED} messages"
    );
    assert!(after < QUEUED, "{after} of {QUEUED} handled");
}

/// What a busy target saw, for the ordering tests.
#[derive(Debug, PartialEq)]
enum Seen {
    Exit(ExitReason),
    Msg(u32),
}

/// Spawns a process that, once told "start", computes (spins) until
/// `release` is set, then records every envelope it receives into `seen`.
fn spawn_busy(
    rt: &Runtime,
    trap: bool,
    spinning: &Arc<AtomicBool>,
    release: &Arc<AtomicBool>,
    seen: &Arc<std::sync::Mutex<Vec<Seen>>>,
) -> Pid {
    let (spinning, release, seen) = (spinning.clone(), release.clone(), seen.clone());
    rt.spawn(move |mut ctx| async move {
        ctx.trap_exit(trap);
        ctx.recv().await;
        spinning.store(true, Ordering::SeqCst);
        compute_until(&release);
        record(ctx, seen).await
    })
}

/// Records every envelope `ctx` receives into `seen`, for ever.
async fn record(mut ctx: Ctx, seen: Arc<std::sync::Mutex<Vec<Seen>>>) {
    loop {
        let got = match ctx.recv().await {
            Envelope::Exit { reason, .. } => Seen::Exit(reason),
            env => Seen::Msg(env.take().unwrap()),
        };
        seen.lock().unwrap().push(got);
    }
}

/// signal.order: `exit(P, reason)` followed by three messages from the same
/// sender, while P is busy: P handles none of the three (the signal kills
/// it first, as OTP orders a sender's signals and messages). Meanwhile the
/// signal answers `Pending` (P is running its code) and P is listed as
/// `exiting`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_signal_kills_before_the_senders_later_messages() {
    let rt = node();
    let (spinning, release) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let seen = Arc::default();
    let p = spawn_busy(&rt, false, &spinning, &release, &seen);
    let rt2 = rt.clone();
    let release2 = Arc::clone(&release);
    with_ctx(&rt, move |mut ctx| async move {
        let mref = ctx.monitor(p);
        ctx.send(p, 0u32);
        wait_until("it computes", DEADLINE, || spinning.load(Ordering::SeqCst)).await;
        let stop = ExitReason::Error("stop".into());
        assert_eq!(
            rt2.exit_from(ctx.pid(), p, stop.clone()),
            ExitOutcome::Pending,
            "it is running its code: it dies at its next await point"
        );
        for i in 1..=3u32 {
            ctx.send(p, i);
        }
        let listed = rt2.processes().into_iter().find(|s| s.pid == p).unwrap();
        assert_eq!(listed.status, pool_proto::ProcStatus::Exiting);
        release2.store(true, Ordering::SeqCst);
        assert_eq!(down_reason(&mut ctx, mref).await, stop);
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), vec![], "none of the 3 was handled");
}

/// signal.order-trapped: the same with P trapping exits: the signal arrives
/// as an `Exit` message in its place, before the sender's three later
/// messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_exit_signal_arrives_before_the_senders_later_messages() {
    let rt = node();
    let (spinning, release) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let seen = Arc::default();
    let p = spawn_busy(&rt, true, &spinning, &release, &seen);
    let rt2 = rt.clone();
    let release2 = Arc::clone(&release);
    with_ctx(&rt, move |ctx| async move {
        ctx.send(p, 0u32);
        wait_until("it computes", DEADLINE, || spinning.load(Ordering::SeqCst)).await;
        let stop = ExitReason::Error("stop".into());
        assert_eq!(rt2.exit_from(ctx.pid(), p, stop), ExitOutcome::Trapped);
        for i in 1..=3u32 {
            ctx.send(p, i);
        }
        release2.store(true, Ordering::SeqCst);
    })
    .await;
    wait_until("it handled all four", DEADLINE, || {
        seen.lock().unwrap().len() == 4
    })
    .await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Seen::Exit(ExitReason::Error("stop".into())),
            Seen::Msg(1),
            Seen::Msg(2),
            Seen::Msg(3)
        ]
    );
    assert!(rt.is_alive(p));
}

/// The await point a [`stops_at`] process reaches after its kill.
#[derive(Debug, Clone, Copy)]
enum Point {
    Recv,
    RecvTimeout,
    RecvMatch,
    Call,
    YieldNow,
}

/// Spawns a process that computes until `release`, then reaches `point`
/// with a message already queued for it (and, for `Call`, a callee that
/// answers at once), and records in `passed` whether it got past it.
fn stops_at(
    rt: &Runtime,
    point: Point,
    spinning: &Arc<AtomicBool>,
    release: &Arc<AtomicBool>,
    passed: &Arc<AtomicBool>,
) -> Pid {
    let echo = rt.spawn(|mut ctx| async move {
        while let Envelope::Call(call) = ctx.recv().await {
            ctx.reply(&call, "pong");
        }
    });
    let (spinning, release, passed) = (spinning.clone(), release.clone(), passed.clone());
    rt.spawn(move |mut ctx| async move {
        ctx.recv().await;
        spinning.store(true, Ordering::SeqCst);
        compute_until(&release);
        match point {
            Point::Recv => {
                ctx.recv().await;
            }
            Point::RecvTimeout => {
                ctx.recv_timeout(Duration::ZERO).await;
            }
            Point::RecvMatch => {
                ctx.recv_match(|_| true, Some(Duration::ZERO)).await;
            }
            Point::Call => {
                let _ = ctx.call(echo, "ping", DEADLINE).await;
            }
            Point::YieldNow => ctx.yield_now().await,
        }
        passed.store(true, Ordering::SeqCst);
    })
}

/// signal.await-points: a kill that comes while a process computes takes
/// effect at whichever of the runtime's await points it reaches next —
/// `recv`, `recv_timeout` (even one whose time is already up),
/// `recv_match`, `call` (whose callee answers at once), `yield_now` —
/// although a message is already queued for it there: nothing after that
/// await runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_kill_takes_effect_at_every_await_point() {
    let rt = node();
    for point in [
        Point::Recv,
        Point::RecvTimeout,
        Point::RecvMatch,
        Point::Call,
        Point::YieldNow,
    ] {
        let (spinning, release, passed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let p = stops_at(&rt, point, &spinning, &release, &passed);
        let end = watch(&rt, p).await;
        rt.send(p, "start");
        wait_until("it computes", DEADLINE, || spinning.load(Ordering::SeqCst)).await;
        assert_eq!(rt.kill(p), ExitOutcome::Pending, "{point:?}");
        rt.send(p, "queued after the kill");
        release.store(true, Ordering::SeqCst);
        assert_eq!(end.reason().await, ExitReason::Killed, "{point:?}");
        assert!(!passed.load(Ordering::SeqCst), "it got past {point:?}");
    }
}

/// signal.outcome: what `Runtime::exit` answers for a local target that is
/// waiting at an await point: `Exiting` for a signal that kills it,
/// `Trapped` when it traps exits, `Ignored` for `normal` without trapping,
/// `NoProc` once it is gone.
#[tokio::test]
async fn an_exit_signal_says_what_it_did() {
    let rt = node();
    let waiting = |trap: bool| {
        rt.spawn(move |mut ctx: Ctx| async move {
            ctx.trap_exit(trap);
            // Waits for ever: it gets no call.
            while !matches!(ctx.recv().await, Envelope::Call(_)) {}
        })
    };
    let (plain, trapping) = (waiting(false), waiting(true));
    tokio::task::yield_now().await;
    assert_eq!(rt.exit(plain, ExitReason::Normal), ExitOutcome::Ignored);
    assert_eq!(
        rt.exit(trapping, ExitReason::Shutdown),
        ExitOutcome::Trapped
    );
    let end = watch(&rt, plain).await;
    assert_eq!(rt.exit(plain, ExitReason::Shutdown), ExitOutcome::Exiting);
    assert_eq!(end.reason().await, ExitReason::Shutdown);
    assert_eq!(rt.kill(plain), ExitOutcome::NoProc);
    assert!(rt.is_alive(trapping));
}
