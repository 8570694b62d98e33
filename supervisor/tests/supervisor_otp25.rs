//! The last OTP 25 gaps of the supervisor API (issue 14, points 2, 3, 5;
//! docs/semantics.md `sofo.old-pid`, `api.get-childspec-by-pid`,
//! `sup.named`), each checked against what OTP 25 does.

mod support;

use std::sync::Arc;

use pool_proto::{ExitReason, Strategy};
use supervisor::supervisor::{self as sup, Spec, SupError};
use supervisor::{Pid, Runtime};
use support::*;
use tokio::sync::Notify;

/// Queues a request to `s` and waits until it sits in the supervisor's
/// mailbox, so that requests queue in the order they were issued.
async fn queue<T: Send + 'static>(
    rt: &Runtime,
    s: Pid,
    req: impl std::future::Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let mailbox = |rt: &Runtime| {
        rt.processes()
            .into_iter()
            .find(|p| p.pid == s)
            .map_or(0, |p| p.mailbox)
    };
    let before = mailbox(rt);
    let h = tokio::spawn(req);
    wait_until("the request is queued", DEADLINE, || mailbox(rt) > before).await;
    h
}

/// sofo.old-pid (issue 14 point 2): a simple_one_for_one child whose
/// restart failed and waits for its retry (OTP's `{restarting, OldPid}`)
/// answers to its old pid, as in OTP 25: `get_childspec(OldPid)` returns
/// the template, and `terminate_child(OldPid)` removes the child so that
/// the queued retry does nothing (the script's next attempt would have
/// started it).
#[tokio::test]
async fn a_restarting_dynamic_child_answers_to_its_old_pid() {
    let rt = node();
    let log = Log::new();
    let gate = Arc::new(Notify::new());
    let x = scripted(
        &log,
        "X",
        Mode::Plain,
        script(
            [Attempt::Start, Attempt::Block(gate.clone(), boom())],
            Attempt::Start,
        ),
    );
    let spec = Spec::new("s", Strategy::SimpleOneForOne)
        .intensity(10)
        .child(x);
    let s = sup::start(&rt, spec).await.unwrap();
    let old = sup::start_dynamic_child(&rt, s, serde_json::Value::Null)
        .await
        .unwrap()
        .unwrap();
    rt.send(old, Cmd::Exit(boom()));
    wait_until("the restart attempt runs", DEADLINE, || {
        log.events().iter().any(|e| e == "start-blocked X")
    })
    .await;
    let r = rt.clone();
    let spec = queue(&rt, s, async move { sup::get_childspec(&r, s, old).await }).await;
    let r = rt.clone();
    let stop = queue(
        &rt,
        s,
        async move { sup::terminate_child(&r, s, old).await },
    )
    .await;
    gate.notify_one();
    assert_eq!(spec.await.unwrap().unwrap().id, "X");
    stop.await.unwrap().unwrap();
    assert!(children(&rt, s).await.is_empty());
    // The retry queued by the failed attempt ran (after our calls) and
    // found nothing to do: X started once, at `start_dynamic_child`.
    assert!(children(&rt, s).await.is_empty());
    assert_eq!(log.count("started X"), 1);
    assert_eq!(log.count("start-failed X"), 1);
}

/// api.get-childspec-by-pid (issue 14 point 3): on a supervisor other than
/// simple_one_for_one, `get_childspec` takes an id only; a child's pid
/// gives `not_found`, as OTP 25 returns `{error, not_found}`.
#[tokio::test]
async fn get_childspec_by_pid_is_not_found_unless_simple_one_for_one() {
    let rt = node();
    let log = Log::new();
    for strategy in [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ] {
        let s = sup::start(&rt, Spec::new("s", strategy).child(plain(&log, "A")))
            .await
            .unwrap();
        let a = running(&rt, s, "A").await;
        assert_eq!(sup::get_childspec(&rt, s, "A").await.unwrap().id, "A");
        assert_eq!(
            sup_err(sup::get_childspec(&rt, s, a).await),
            SupError::NotFound,
            "{strategy:?}"
        );
        sup::stop(&rt, s).await.unwrap();
    }
}

/// sup.named (issue 14 point 5): a supervisor started under a local name
/// (OTP `{local, Name}`) is found by it; a second start under the same name
/// starts nothing and answers `AlreadyStarted(pid)` with the holder, as OTP
/// 25's `{error, {already_started, Pid}}`; once the first stops, the name
/// is free again.
#[tokio::test]
async fn a_second_start_under_the_same_name_is_already_started() {
    let rt = node();
    let log = Log::new();
    let spec = || Spec::new("jobs", Strategy::OneForOne).child(plain(&log, "A"));
    let first = sup::start_named(&rt, "jobs", spec()).await.unwrap();
    assert_eq!(rt.whereis("jobs"), Some(first));
    assert_eq!(log.take(), ["started A"]);
    let again = sup::start_named(&rt, "jobs", spec()).await;
    assert_eq!(sup_err(again), SupError::AlreadyStarted(first));
    assert!(log.take().is_empty(), "the second start started no child");
    sup::stop(&rt, first).await.unwrap();
    wait_until("the name is released", DEADLINE, || {
        rt.whereis("jobs").is_none()
    })
    .await;
    let second = sup::start_named(&rt, "jobs", spec()).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(rt.whereis("jobs"), Some(second));
}

/// sup.named (linked): `start_link_named` links the caller as `start_link`
/// does; a name held by any process (not only a supervisor) makes the
/// start answer `AlreadyStarted` with that holder, and the refused
/// supervisor exits `normal` (OTP's proc_lib does `exit(normal)` after
/// `init_ack({error, {already_started, Pid}})`), which kills no linked
/// caller.
#[tokio::test]
async fn start_link_named_refuses_a_name_held_by_any_process() {
    let rt = node();
    let log = Log::new();
    let holder = rt.spawn(|mut ctx| async move {
        ctx.recv().await;
    });
    rt.register("busy", holder).unwrap();
    let l = log.clone();
    with_ctx(&rt, move |mut ctx| async move {
        ctx.trap_exit(true);
        let spec = Spec::new("s", Strategy::OneForOne).child(plain(&l, "A"));
        let r = sup::start_link_named(&ctx, "busy", spec).await;
        assert_eq!(sup_err(r), SupError::AlreadyStarted(holder));
        // As OTP's proc_lib: the refused process exits `normal`.
        let (_, reason) = next_exit(&mut ctx).await;
        assert_eq!(reason, ExitReason::Normal);
        let spec = Spec::new("s", Strategy::OneForOne).child(plain(&l, "A"));
        let s = sup::start_link_named(&ctx, "free", spec).await.unwrap();
        assert_eq!(ctx.runtime().whereis("free"), Some(s));
        // Linked: its exit reaches us.
        ctx.exit(s, ExitReason::Shutdown);
        let (from, reason) = next_exit(&mut ctx).await;
        assert_eq!((from, reason), (s, ExitReason::Shutdown));
    })
    .await;
    assert_eq!(log.take(), ["started A", "stopped A"]);
}
