//! Start failures (docs/semantics.md "Start-up" and "Start failure during a
//! restart"): a child failing at init stops the others in reverse order and
//! fails the supervisor's start; a child failing to restart leaves the
//! supervisor `restarting` it, retrying at once, each retry counted, with
//! the API answering between attempts.

mod support;

use std::sync::Arc;

use pool_proto::{ExitReason, Restart, Strategy};
use supervisor::supervisor::{self as sup, Child, ChildCounts, ChildPid, Spec, SupError};
use supervisor::{Error, Pid, Runtime};
use support::*;
use tokio::sync::Notify;

fn nope() -> ExitReason {
    ExitReason::Error("nope".into())
}

/// init.failure: A and B start, C's start fails with `nope`: B then A are
/// stopped (reverse start order), D is never started, the start returns
/// `failed_to_start_child` naming C and the reason, and the supervisor
/// exits with `{shutdown, failed_to_start_child ...}`, which a trapping
/// linked caller receives.
#[tokio::test]
async fn init_failure_stops_started_children_in_reverse_and_fails_the_start() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(scripted(
            &log,
            "C",
            Mode::Plain,
            script([], Attempt::Fail(nope())),
        ))
        .child(plain(&log, "D"));
    with_ctx(&rt, move |mut ctx| async move {
        ctx.trap_exit(true);
        let err = sup::start_link(&ctx, spec).await.unwrap_err();
        let Error::Start(text) = &err else {
            panic!("expected a start error, got {err:?}")
        };
        assert_eq!(text, "failed_to_start_child C: nope");
        let (_, reason) = next_exit(&mut ctx).await;
        assert_eq!(
            reason,
            ExitReason::ShutdownWith("failed_to_start_child C: nope".into())
        );
    })
    .await;
    assert_eq!(
        log.take(),
        [
            "started A",
            "started B",
            "start-failed C",
            "stopped B",
            "stopped A"
        ]
    );
    wait_until("every process is gone", DEADLINE, || {
        rt.process_count() == 0
    })
    .await;
}

/// init.failure: a start function that panics is a start failure whose
/// reason is the panic.
#[tokio::test]
async fn a_panicking_start_function_fails_the_start() {
    quiet_panics();
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(scripted(&log, "P", Mode::Plain, script([], Attempt::Panic)));
    let err = sup::start(&rt, spec).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "supervisor failed to start: failed_to_start_child P: panic: {DELIBERATE}: start of P"
        )
    );
    assert_eq!(log.take(), ["started A", "start-failed P", "stopped A"]);
}

/// init.nested-failure: a nested supervisor whose own init fails is a start
/// failure of its parent.
#[tokio::test]
async fn a_nested_supervisor_failing_its_init_fails_the_parent() {
    let rt = node();
    let log = Log::new();
    let inner = Spec::new("inner", Strategy::OneForOne).child(scripted(
        &log,
        "X",
        Mode::Plain,
        script([], Attempt::Fail(nope())),
    ));
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(Child::supervisor("inner", inner));
    let err = sup::start(&rt, spec).await.unwrap_err().to_string();
    assert!(err.contains("failed_to_start_child inner"), "{err}");
    assert!(err.contains("failed_to_start_child X: nope"), "{err}");
    assert_eq!(log.take(), ["started A", "start-failed X", "stopped A"]);
}

/// init.ignore: a start returning `ignore` leaves a permanent or transient
/// child's spec with pid `undefined` and drops a temporary child's spec; the
/// supervisor starts.
#[tokio::test]
async fn ignore_at_init_keeps_or_drops_the_spec() {
    let rt = node();
    let log = Log::new();
    let ignore = || script([], Attempt::Ignore);
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(scripted(&log, "P", Mode::Plain, ignore()))
        .child(scripted(&log, "R", Mode::Plain, ignore()).restart(Restart::Transient))
        .child(scripted(&log, "T", Mode::Plain, ignore()).restart(Restart::Temporary));
    let s = sup::start(&rt, spec).await.unwrap();
    assert_eq!(
        children(&rt, s).await,
        [
            (Some("R".to_owned()), ChildPid::Undefined),
            (Some("P".to_owned()), ChildPid::Undefined),
        ]
    );
}

/// A supervisor that restarts X, whose attempt after the first start
/// blocks on `gate` and then fails; everything after that starts X again.
async fn restarting(rt: &Runtime, log: &Log, strategy: Strategy) -> (Pid, Pid, Arc<Notify>) {
    let gate = Arc::new(Notify::new());
    let x = scripted(
        log,
        "X",
        Mode::Plain,
        script(
            [Attempt::Start, Attempt::Block(gate.clone(), nope())],
            Attempt::Start,
        ),
    );
    let spec = Spec::new("s", strategy).intensity(10).child(x);
    let s = sup::start(rt, spec).await.unwrap();
    let pid = if strategy == Strategy::SimpleOneForOne {
        sup::start_dynamic_child(rt, s, serde_json::Value::Null)
            .await
            .unwrap()
            .unwrap()
    } else {
        running(rt, s, "X").await
    };
    (s, pid, gate)
}

/// Queues a request to `s` and waits until it sits in the supervisor's
/// mailbox, so that requests queue in the order they were issued.
async fn queue<T: Send + 'static>(
    rt: &Runtime,
    s: Pid,
    req: impl std::future::Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let before = mailbox(rt, s);
    let h = tokio::spawn(req);
    wait_until("the request is queued", DEADLINE, || {
        mailbox(rt, s) > before
    })
    .await;
    h
}

fn mailbox(rt: &Runtime, s: Pid) -> usize {
    rt.processes()
        .into_iter()
        .find(|p| p.pid == s)
        .map_or(0, |p| p.mailbox)
}

/// restart.failure-api: while a failed restart waits for its retry, the
/// supervisor answers requests queued before the retry: `which_children`
/// shows `restarting`, `count_children` does not count it active,
/// `start_child` of its id is `already_present`, `restart_child` and
/// `delete_child` are `restarting`, and `terminate_child` is `ok` and leaves
/// it `undefined` (the pending retry then does nothing).
#[tokio::test]
async fn the_api_while_a_child_is_restarting() {
    let rt = node();
    let log = Log::new();
    let (s, x, gate) = restarting(&rt, &log, Strategy::OneForOne).await;
    let before_crash = log.len();
    // The restart attempt blocks in the start function.
    rt.send(x, Cmd::Exit(boom()));
    wait_until("the restart attempt runs", DEADLINE, || {
        log.events().iter().any(|e| e == "start-blocked X")
    })
    .await;
    let r = rt.clone();
    let which = queue(&rt, s, async move { sup::which_children(&r, s).await }).await;
    let r = rt.clone();
    let count = queue(&rt, s, async move { sup::count_children(&r, s).await }).await;
    let (r, l) = (rt.clone(), log.clone());
    let start = queue(&rt, s, async move {
        sup::start_child(&r, s, plain(&l, "X")).await
    })
    .await;
    let r = rt.clone();
    let restart = queue(&rt, s, async move { sup::restart_child(&r, s, "X").await }).await;
    let r = rt.clone();
    let delete = queue(&rt, s, async move { sup::delete_child(&r, s, "X").await }).await;
    let r = rt.clone();
    let terminate = queue(
        &rt,
        s,
        async move { sup::terminate_child(&r, s, "X").await },
    )
    .await;
    let r = rt.clone();
    let which_after = queue(&rt, s, async move { sup::which_children(&r, s).await }).await;
    gate.notify_one();

    let infos = which.await.unwrap().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].pid, ChildPid::Restarting);
    assert_eq!(
        count.await.unwrap().unwrap(),
        ChildCounts {
            specs: 1,
            active: 0,
            supervisors: 0,
            workers: 1
        }
    );
    assert_eq!(sup_err(start.await.unwrap()), SupError::AlreadyPresent);
    assert_eq!(sup_err(restart.await.unwrap()), SupError::Restarting);
    assert_eq!(sup_err(delete.await.unwrap()), SupError::Restarting);
    terminate.await.unwrap().unwrap();
    assert_eq!(
        which_after.await.unwrap().unwrap()[0].pid,
        ChildPid::Undefined
    );
    // The retry found the child stopped and did nothing.
    assert_eq!(state_of(&rt, s, "X").await, Some(ChildPid::Undefined));
    assert_eq!(
        log.events()[before_crash..],
        ["start-blocked X", "start-failed X"]
    );
}

/// restart.failure-sofo: under simple_one_for_one a dynamic child whose
/// restart failed is not counted active while its retry is pending; the
/// retry then starts it with the same arguments.
#[tokio::test]
async fn a_restarting_dynamic_child_is_not_active() {
    let rt = node();
    let log = Log::new();
    let (s, x, gate) = restarting(&rt, &log, Strategy::SimpleOneForOne).await;
    rt.send(x, Cmd::Exit(boom()));
    wait_until("the restart attempt runs", DEADLINE, || {
        log.events().iter().any(|e| e == "start-blocked X")
    })
    .await;
    let r = rt.clone();
    let count = queue(&rt, s, async move { sup::count_children(&r, s).await }).await;
    gate.notify_one();
    assert_eq!(
        count.await.unwrap().unwrap(),
        ChildCounts {
            specs: 1,
            active: 0,
            supervisors: 0,
            workers: 1
        }
    );
    wait_for("the retry started it", DEADLINE, || async {
        sup::count_children(&rt, s).await.unwrap().active == 1
    })
    .await;
}

/// restart.retry-succeeds: a restart that fails is retried at once and the
/// child runs again as soon as an attempt succeeds (within the intensity).
#[tokio::test(start_paused = true)]
async fn a_failed_restart_is_retried_until_it_succeeds() {
    let rt = node();
    let log = Log::new();
    let x = scripted(
        &log,
        "X",
        Mode::Plain,
        script(
            [Attempt::Start, Attempt::Fail(nope()), Attempt::Fail(nope())],
            Attempt::Start,
        ),
    );
    let spec = Spec::new("s", Strategy::OneForOne).intensity(3).child(x);
    let s = sup::start(&rt, spec).await.unwrap();
    log.take();
    crash_child(&rt, running(&rt, s, "X").await).await;
    running(&rt, s, "X").await;
    assert_eq!(
        log.take(),
        ["start-failed X", "start-failed X", "started X"]
    );
    assert!(rt.is_alive(s));
}

/// restart.failure-one-for-all: under one_for_all a retry stops the
/// siblings restarted in the failed round again and starts the whole group
/// from the top; each retry counts. Probe: intensity 2, C crashes, B always
/// fails: stop B, stop A, start A, B fails; stop A, start A, B fails; limit
/// reached; stop A; exit `shutdown` (ours: `{shutdown, "restart intensity
/// exceeded: ..."}`).
#[tokio::test(start_paused = true)]
async fn one_for_all_retries_from_the_top_and_counts_each_retry() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(2)
        .child(plain(&log, "A"))
        .child(scripted(
            &log,
            "B",
            Mode::Plain,
            script([Attempt::Start], Attempt::Fail(nope())),
        ))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    log.take();
    crash_child(&rt, running(&rt, s, "C").await).await;
    assert_eq!(
        w.reason().await,
        ExitReason::ShutdownWith(
            "restart intensity exceeded: 3 restarts in 5 s, intensity 2".into()
        )
    );
    assert_eq!(
        log.take(),
        [
            "stopped B",
            "stopped A",
            "started A",
            "start-failed B", //
            "stopped A",
            "started A",
            "start-failed B", //
            "stopped A",
        ]
    );
}

/// restart.failure-rest-for-one: under rest_for_one a retry restarts from
/// the child that failed to start onward; siblings restarted before it in
/// the same round are not restarted again.
#[tokio::test(start_paused = true)]
async fn rest_for_one_retries_from_the_failed_child_onward() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::RestForOne)
        .intensity(5)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(scripted(
            &log,
            "C",
            Mode::Plain,
            script([Attempt::Start, Attempt::Fail(nope())], Attempt::Start),
        ))
        .child(plain(&log, "D"));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    log.take();
    crash_child(&rt, running(&rt, s, "B").await).await;
    running(&rt, s, "D").await;
    assert_eq!(
        log.take(),
        [
            "stopped D",
            "stopped C",
            "started B",
            "start-failed C",
            "started C",
            "started D"
        ]
    );
    assert_eq!(running(&rt, s, "A").await, a);
}

/// init.traps-first: the supervisor traps exits from its first instant: a
/// child that crashes while the others are still being started does not
/// take the supervisor down; its exit is handled once init is done (here
/// restarted).
#[tokio::test]
async fn a_child_crashing_during_init_is_handled_after_init() {
    let rt = node();
    let log = Log::new();
    let crashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(1)
        .child(Child::worker("early", move |mut ctx| {
            // Only its first run crashes, at once.
            let first = !crashed.swap(true, std::sync::atomic::Ordering::SeqCst);
            async move {
                if first {
                    return ExitReason::Error("at once".into());
                }
                ctx.recv().await;
                ExitReason::Normal
            }
        }))
        .child(plain(&log, "B"));
    let mut events = rt.events();
    let s = sup::start(&rt, spec).await.unwrap();
    match tokio::time::timeout(DEADLINE, events.recv()).await {
        Ok(Ok(supervisor::RuntimeEvent::ChildRestarted { child, reason, .. })) => {
            assert_eq!(
                (child.as_str(), reason),
                ("early", ExitReason::Error("at once".into()))
            );
        }
        other => panic!("expected a restart, got {other:?}"),
    }
    assert!(rt.is_alive(s), "the supervisor lives on");
    running(&rt, s, "B").await;
}

/// spec.validation: invalid flags and child specs are refused at start,
/// before anything runs: a zero period, a duplicate child id, a child
/// without an id, a simple_one_for_one supervisor without exactly one
/// child spec.
#[tokio::test]
async fn invalid_flags_and_specs_are_refused_at_start() {
    let rt = node();
    let log = Log::new();
    let zero_period = Spec::new("s", Strategy::OneForOne)
        .period(std::time::Duration::ZERO)
        .child(plain(&log, "A"));
    let duplicate = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(plain(&log, "A"));
    let no_id = Spec::new("s", Strategy::OneForOne).child(plain(&log, ""));
    let sofo = Spec::new("s", Strategy::SimpleOneForOne)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"));
    for (spec, want) in [
        (zero_period, "invalid period"),
        (duplicate, "duplicate child id"),
        (no_id, "has no id"),
        (sofo, "exactly one child spec"),
    ] {
        let e = sup::start(&rt, spec).await.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    assert!(log.take().is_empty(), "nothing started");
    wait_until("nothing runs", DEADLINE, || rt.process_count() == 0).await;
}
