//! The dynamic API of a supervisor that is not simple_one_for_one
//! (docs/semantics.md "Dynamic children"): every row of OTP.md §1.10. The
//! rows of §1.11 (simple_one_for_one) are in
//! `supervisor_simple_one_for_one.rs`, and the answers while a child is
//! restarting in `supervisor_start_failure.rs`.

mod support;

use std::time::Duration;

use pool_proto::{ExitReason, Restart, Shutdown, Strategy};
use supervisor::supervisor::{self as sup, Child, ChildCounts, ChildPid, Spec, SupError};
use supervisor::{CallError, Error, Functions, NodeId, Pid, Runtime};
use support::*;

fn nope() -> ExitReason {
    ExitReason::Error("nope".into())
}

async fn one(rt: &Runtime, log: &Log) -> Pid {
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(10)
        .child(plain(log, "A"));
    sup::start(rt, spec).await.unwrap()
}

/// api.start-child: `start_child` starts the child and returns its pid; it
/// is listed first by `which_children`.
#[tokio::test]
async fn start_child_returns_the_pid() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let b = sup::start_child(&rt, s, plain(&log, "B"))
        .await
        .unwrap()
        .unwrap();
    assert!(rt.is_alive(b));
    assert_eq!(
        children(&rt, s).await[0],
        (Some("B".to_owned()), ChildPid::Pid(b))
    );
}

/// api.start-child-ignore: a start returning `ignore` gives `Ok(None)`; the
/// spec is kept with pid `undefined`, except a temporary child's.
#[tokio::test]
async fn start_child_ignore_keeps_the_spec_unless_temporary() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let ignore = || script([], Attempt::Ignore);
    let got = sup::start_child(&rt, s, scripted(&log, "P", Mode::Plain, ignore())).await;
    assert_eq!(got.unwrap(), None);
    assert_eq!(state_of(&rt, s, "P").await, Some(ChildPid::Undefined));
    let t = scripted(&log, "T", Mode::Plain, ignore()).restart(Restart::Temporary);
    assert_eq!(sup::start_child(&rt, s, t).await.unwrap(), None);
    assert_eq!(state_of(&rt, s, "T").await, None);
}

/// api.already-started: `start_child` with the id of a running child gives
/// `already_started` with its pid.
#[tokio::test]
async fn start_child_of_a_running_id_is_already_started() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let a = running(&rt, s, "A").await;
    let got = sup::start_child(&rt, s, plain(&log, "A")).await;
    assert_eq!(sup_err(got), SupError::AlreadyStarted(a));
}

/// api.already-present: `start_child` with the id of a stopped child gives
/// `already_present`.
#[tokio::test]
async fn start_child_of_a_stopped_id_is_already_present() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    sup::terminate_child(&rt, s, "A").await.unwrap();
    let got = sup::start_child(&rt, s, plain(&log, "A")).await;
    assert_eq!(sup_err(got), SupError::AlreadyPresent);
}

/// api.invalid-spec: `start_child` refuses an invalid spec with the
/// validation error, and stores nothing.
#[tokio::test]
async fn start_child_refuses_an_invalid_spec() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let no_id = Child::function("", "f", serde_json::Value::Null);
    assert!(
        matches!(sup_err(sup::start_child(&rt, s, no_id).await), SupError::Invalid(e) if e.contains("no id"))
    );
    let significant = plain(&log, "S")
        .restart(Restart::Transient)
        .significant(true);
    let e = sup_err(sup::start_child(&rt, s, significant).await);
    assert!(
        matches!(&e, SupError::Invalid(t) if t.contains("bad combination")),
        "{e:?}"
    );
    assert_eq!(children(&rt, s).await.len(), 1);
}

/// api.start-child-failure: a start that fails gives the reason and stores
/// nothing: the same id can be started later.
#[tokio::test]
async fn a_failed_start_child_stores_nothing() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let x = || {
        scripted(
            &log,
            "X",
            Mode::Plain,
            script([Attempt::Fail(nope())], Attempt::Start),
        )
    };
    let got = sup::start_child(&rt, s, x()).await;
    assert_eq!(sup_err(got), SupError::StartFailed(nope()));
    assert_eq!(state_of(&rt, s, "X").await, None);
    // A fresh spec with the same id (its own script) starts.
    let fresh = scripted(&log, "X", Mode::Plain, script([], Attempt::Start));
    assert!(sup::start_child(&rt, s, fresh).await.unwrap().is_some());
    // A data child naming an unknown function fails to start too.
    let unknown = Child::function("U", "no.such.function", serde_json::Value::Null);
    let e = sup_err(sup::start_child(&rt, s, unknown).await);
    assert!(
        matches!(&e, SupError::StartFailed(ExitReason::Error(t)) if t.contains("no.such.function")),
        "{e:?}"
    );
    assert_eq!(state_of(&rt, s, "U").await, None);
}

/// api.terminate-child: `terminate_child` stops the child, keeps its spec
/// with pid `undefined`, and is `ok` again on a stopped child.
#[tokio::test]
async fn terminate_child_keeps_the_spec_and_is_idempotent() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let a = running(&rt, s, "A").await;
    sup::terminate_child(&rt, s, "A").await.unwrap();
    assert!(!rt.is_alive(a));
    assert_eq!(state_of(&rt, s, "A").await, Some(ChildPid::Undefined));
    sup::terminate_child(&rt, s, "A").await.unwrap();
    assert_eq!(state_of(&rt, s, "A").await, Some(ChildPid::Undefined));
}

/// api.terminate-temporary: `terminate_child` of a temporary child deletes
/// its spec: `restart_child` then gives `not_found`.
#[tokio::test]
async fn terminate_child_of_a_temporary_child_deletes_its_spec() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    sup::start_child(&rt, s, plain(&log, "T").restart(Restart::Temporary))
        .await
        .unwrap();
    sup::terminate_child(&rt, s, "T").await.unwrap();
    assert_eq!(state_of(&rt, s, "T").await, None);
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "T").await),
        SupError::NotFound
    );
}

/// api.terminate-not-found: `terminate_child` of an unknown id, or of a pid
/// (only simple_one_for_one takes pids), gives `not_found`.
#[tokio::test]
async fn terminate_child_of_an_unknown_id_or_a_pid_is_not_found() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let a = running(&rt, s, "A").await;
    assert_eq!(
        sup_err(sup::terminate_child(&rt, s, "nope").await),
        SupError::NotFound
    );
    assert_eq!(
        sup_err(sup::terminate_child(&rt, s, a).await),
        SupError::NotFound
    );
    assert!(rt.is_alive(a));
}

/// api.restart-child: `restart_child` starts a stopped child and returns
/// the new pid; it refuses a running child (`running`) and an unknown id
/// (`not_found`).
#[tokio::test]
async fn restart_child_starts_a_stopped_child() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "A").await),
        SupError::Running
    );
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "nope").await),
        SupError::NotFound
    );
    let a = running(&rt, s, "A").await;
    sup::terminate_child(&rt, s, "A").await.unwrap();
    let a2 = sup::restart_child(&rt, s, "A").await.unwrap().unwrap();
    assert_ne!(a2, a);
    assert_eq!(running(&rt, s, "A").await, a2);
}

/// api.restart-child-failure: a `restart_child` whose start fails gives the
/// reason and the child stays `undefined`; an `ignore` gives `Ok(None)`.
#[tokio::test]
async fn restart_child_failure_leaves_the_child_stopped() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let x = scripted(
        &log,
        "X",
        Mode::Plain,
        script(
            [Attempt::Start, Attempt::Fail(nope()), Attempt::Ignore],
            Attempt::Start,
        ),
    );
    sup::start_child(&rt, s, x).await.unwrap().unwrap();
    sup::terminate_child(&rt, s, "X").await.unwrap();
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "X").await),
        SupError::StartFailed(nope())
    );
    assert_eq!(state_of(&rt, s, "X").await, Some(ChildPid::Undefined));
    assert_eq!(sup::restart_child(&rt, s, "X").await.unwrap(), None);
    assert_eq!(state_of(&rt, s, "X").await, Some(ChildPid::Undefined));
    assert!(sup::restart_child(&rt, s, "X").await.unwrap().is_some());
}

/// api.delete-child: `delete_child` removes a stopped child's spec; it
/// refuses a running child (`running`) and an unknown id (`not_found`).
#[tokio::test]
async fn delete_child_removes_only_a_stopped_child() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    assert_eq!(
        sup_err(sup::delete_child(&rt, s, "A").await),
        SupError::Running
    );
    assert_eq!(
        sup_err(sup::delete_child(&rt, s, "nope").await),
        SupError::NotFound
    );
    sup::terminate_child(&rt, s, "A").await.unwrap();
    sup::delete_child(&rt, s, "A").await.unwrap();
    assert!(children(&rt, s).await.is_empty());
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "A").await),
        SupError::NotFound
    );
}

/// api.count-children: `count_children` counts specs, live children,
/// supervisors and workers; a stopped child still counts as a spec and as
/// its type, but not as active.
#[tokio::test]
async fn count_children_counts_specs_and_live_children() {
    let rt = node();
    let log = Log::new();
    let inner = Spec::new("inner", Strategy::OneForOne).child(plain(&log, "I"));
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(Child::supervisor("inner", inner));
    let s = sup::start(&rt, spec).await.unwrap();
    sup::terminate_child(&rt, s, "B").await.unwrap();
    assert_eq!(
        sup::count_children(&rt, s).await.unwrap(),
        ChildCounts {
            specs: 3,
            active: 2,
            supervisors: 1,
            workers: 2
        }
    );
    let infos = sup::which_children(&rt, s).await.unwrap();
    assert_eq!(
        infos.iter().map(|c| c.supervisor).collect::<Vec<_>>(),
        [true, false, false]
    );
}

/// api.get-childspec: `get_childspec` by id gives the full spec with every
/// default filled in (a worker's shutdown 5 s, a supervisor's infinity); an
/// unknown child gives `not_found`, and so does a child's pid, as in OTP 25
/// (only simple_one_for_one children are named by pid: `api.get-childspec-by-pid`).
#[tokio::test]
async fn get_childspec_fills_in_the_defaults() {
    let rt = node();
    let log = Log::new();
    let inner = Spec::new("inner", Strategy::OneForOne).child(plain(&log, "I"));
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(Child::supervisor("inner", inner));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = sup::get_childspec(&rt, s, "A").await.unwrap();
    assert_eq!(a.id, "A");
    assert_eq!(a.restart, Restart::Permanent);
    assert_eq!(a.shutdown, Some(Shutdown::Timeout(Duration::from_secs(5))));
    let by_pid = sup::get_childspec(&rt, s, running(&rt, s, "A").await).await;
    assert_eq!(sup_err(by_pid), SupError::NotFound);
    let i = sup::get_childspec(&rt, s, "inner").await.unwrap();
    assert_eq!(i.shutdown, Some(Shutdown::Infinity));
    assert_eq!(
        sup_err(sup::get_childspec(&rt, s, "nope").await),
        SupError::NotFound
    );
}

/// api.temporary-again: after a temporary child exits, `start_child` with
/// the same spec succeeds again (its spec was not kept).
#[tokio::test]
async fn a_temporary_child_can_be_started_again_after_it_exits() {
    let rt = node();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let t = sup::start_child(&rt, s, plain(&log, "T").restart(Restart::Temporary))
        .await
        .unwrap()
        .unwrap();
    end_child(&rt, t, Why::Exit(ExitReason::Normal)).await;
    let again = sup::start_child(&rt, s, plain(&log, "T").restart(Restart::Temporary)).await;
    assert!(again.unwrap().is_some());
}

/// api.noproc: any call to a supervisor that does not exist fails with the
/// call's `noproc`.
#[tokio::test]
async fn a_call_to_a_supervisor_that_does_not_exist_is_noproc() {
    let rt = node();
    let gone = Pid::new(rt.node(), 999_999);
    let elsewhere = Pid::new(NodeId::random(), 1);
    for s in [gone, elsewhere] {
        match sup::which_children(&rt, s).await {
            Err(Error::Call(CallError::Exit(ExitReason::NoProc))) => {}
            other => panic!("expected noproc, got {other:?}"),
        }
        assert!(matches!(
            sup::terminate_child(&rt, s, "A").await,
            Err(Error::Call(CallError::Exit(ExitReason::NoProc)))
        ));
    }
}

/// api.function-child: a child given as data (a registered function) can be
/// added with `start_child`, and is restarted like any other.
#[tokio::test]
async fn a_registered_function_child_can_be_added() {
    let mut fns = Functions::new();
    fns.register(
        "test.idle",
        |mut ctx, _args: serde_json::Value| async move {
            loop {
                ctx.recv().await;
            }
            #[allow(unreachable_code)]
            ()
        },
    );
    let rt = Runtime::builder(NodeId::random()).functions(fns).build();
    let log = Log::new();
    let s = one(&rt, &log).await;
    let f = sup::start_child(
        &rt,
        s,
        Child::function("F", "test.idle", serde_json::json!({})),
    )
    .await
    .unwrap()
    .unwrap();
    rt.kill(f);
    wait_for("F is restarted", DEADLINE, || async {
        pid_of(&rt, s, "F").await.is_some_and(|p| p != f)
    })
    .await;
}
