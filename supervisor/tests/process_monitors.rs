//! Monitors (docs/semantics.md "Monitors"): one-way, one `Down` per
//! monitor, `noproc` for a pid that is not alive, `demonitor` with and
//! without flush, and monitors that carry the result value.

mod support;

use pool_proto::{ExitReason, NodeId, Pid};
use supervisor::Envelope;
use support::*;

/// mon.noproc: monitoring a pid that already ended gives a `Down` with
/// reason `noproc` at once.
#[tokio::test]
async fn monitor_of_a_dead_pid_gives_noproc_at_once() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let dead = ctx.spawn(|_c| async { ExitReason::Error("gone".into()) });
        await_exit(&mut ctx, dead).await;
        let mref = ctx.monitor(dead);
        let d = ctx.try_recv().expect("the Down is already queued");
        let Envelope::Down(d) = d else {
            panic!("expected a Down, got {d:?}")
        };
        assert_eq!((d.mref, d.pid, d.reason), (mref, dead, ExitReason::NoProc));
    })
    .await;
}

/// mon.noproc: a pid that never existed, or a pid of a node this runtime
/// does not know (an old incarnation), also gives `noproc`.
#[tokio::test]
async fn monitor_of_a_pid_that_never_existed_gives_noproc() {
    let rt = node();
    let local = rt.node();
    with_ctx(&rt, move |mut ctx| async move {
        for pid in [Pid::new(local, 1_000_000), Pid::new(NodeId::random(), 5)] {
            let mref = ctx.monitor(pid);
            assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::NoProc);
        }
    })
    .await;
}

/// mon.reason: the `Down` carries the monitored process's exit reason.
#[tokio::test]
async fn down_carries_the_exit_reason() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let normal = ctx.spawn(|mut c| async move {
            c.recv().await;
        });
        let failing = ctx.spawn(|mut c| async move {
            c.recv().await;
            ExitReason::Error("bad".into())
        });
        let killed = ctx.spawn(|mut c| async move {
            c.recv().await;
        });
        let refs = [normal, failing, killed].map(|p| ctx.monitor(p));
        ctx.send(normal, ());
        ctx.send(failing, ());
        ctx.kill(killed);
        assert_eq!(down_reason(&mut ctx, refs[0]).await, ExitReason::Normal);
        assert_eq!(
            down_reason(&mut ctx, refs[1]).await,
            ExitReason::Error("bad".into())
        );
        assert_eq!(down_reason(&mut ctx, refs[2]).await, ExitReason::Killed);
    })
    .await;
}

/// mon.independent: two monitors on one process are independent: two
/// `Down`s arrive, one per reference.
#[tokio::test]
async fn two_monitors_give_two_downs() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let p = ctx.spawn(|mut c| async move {
            c.recv().await;
        });
        let a = ctx.monitor(p);
        let b = ctx.monitor(p);
        assert_ne!(a, b);
        ctx.send(p, ());
        assert_eq!(down_reason(&mut ctx, a).await, ExitReason::Normal);
        assert_eq!(down_reason(&mut ctx, b).await, ExitReason::Normal);
        assert!(ctx.try_recv().is_none(), "exactly two");
    })
    .await;
}

/// mon.one-way: a monitor is one-way: the watcher's death does not touch
/// the watched process, and the watched process hears nothing.
#[tokio::test]
async fn monitors_are_one_way() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let watched = ctx.spawn(move |mut c| async move {
            let got = c.recv().await;
            c.send(me, got.kind().to_owned());
        });
        let watcher = ctx.spawn(move |c| async move {
            c.monitor(watched);
            ExitReason::Error("watcher dies".into())
        });
        await_exit(&mut ctx, watcher).await;
        ctx.send(watched, "still here?");
        let kind: String = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        assert_eq!(
            kind, "a message",
            "the first thing it received is our message"
        );
    })
    .await;
}

/// mon.demonitor: after `demonitor` no `Down` arrives for that monitor.
#[tokio::test]
async fn demonitor_before_the_exit_means_no_down() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let p = ctx.spawn(|mut c| async move {
            c.recv().await;
        });
        let gone = ctx.monitor(p);
        let kept = ctx.monitor(p);
        ctx.demonitor(gone, false);
        ctx.send(p, ());
        assert_eq!(down_reason(&mut ctx, kept).await, ExitReason::Normal);
        assert!(
            ctx.try_recv_match(|e| matches!(e, Envelope::Down(d) if d.mref == gone))
                .is_none()
        );
    })
    .await;
}

/// mon.demonitor-flush: `demonitor` with flush also removes a `Down`
/// already queued; without flush the queued `Down` stays.
#[tokio::test]
async fn demonitor_flush_removes_a_queued_down() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let p = ctx.spawn(|mut c| async move {
            c.recv().await;
        });
        let flushed = ctx.monitor(p);
        let unflushed = ctx.monitor(p);
        let witness = ctx.monitor(p);
        ctx.send(p, ());
        // The Down of `witness` is queued after the other two.
        assert_eq!(down_reason(&mut ctx, witness).await, ExitReason::Normal);
        ctx.demonitor(flushed, true);
        ctx.demonitor(unflushed, false);
        let left: Vec<_> = std::iter::from_fn(|| ctx.try_recv())
            .map(|e| match e {
                Envelope::Down(d) => d.mref,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(left, [unflushed]);
    })
    .await;
}

/// mon.result: `monitor_with_result` delivers the result value of a process
/// that ends normally with one; a plain monitor and an abnormal end carry
/// none.
#[tokio::test]
async fn monitor_with_result_carries_the_result() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let ok = ctx.spawn(|mut c| async move {
            c.recv().await;
            Ok::<_, String>(41u32 + 1)
        });
        let failing = ctx.spawn(|mut c| async move {
            c.recv().await;
            Err::<u32, _>("no result".to_owned())
        });
        let with = ctx.monitor_with_result(ok);
        let plain = ctx.monitor(ok);
        let with_failing = ctx.monitor_with_result(failing);
        ctx.send(ok, ());
        ctx.send(failing, ());
        let d = ctx.wait_down(with, Some(DEADLINE)).await.unwrap();
        assert_eq!(d.reason, ExitReason::Normal);
        assert_eq!(d.result.unwrap().take::<u32>().unwrap(), 42);
        let d = ctx.wait_down(plain, Some(DEADLINE)).await.unwrap();
        assert!(d.result.is_none());
        let d = ctx.wait_down(with_failing, Some(DEADLINE)).await.unwrap();
        assert_eq!(d.reason, ExitReason::Error("no result".into()));
        assert!(d.result.is_none());
    })
    .await;
}

/// mon.run-wait: `Runtime::run` returns a process's reason and result;
/// `Runtime::wait` on a dead pid gives `noproc`.
#[tokio::test]
async fn run_and_wait_report_reason_and_result() {
    let rt = node();
    let (reason, result) = rt.run(|_c| async { Ok::<_, String>("done") }).await;
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(result.unwrap().take::<String>().unwrap(), "done");
    let dead = rt.spawn(|_c| async {});
    wait_until("it ended", DEADLINE, || !rt.is_alive(dead)).await;
    assert_eq!(rt.wait(dead).await.0, ExitReason::NoProc);
}
