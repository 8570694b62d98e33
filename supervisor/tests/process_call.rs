//! `call` (docs/semantics.md "Call"): the reply, the timeout, a callee that
//! dies mid-call, a callee that is not alive, and what a call leaves behind.

mod support;

use pool_proto::ExitReason;
use supervisor::{CallError, Envelope};
use support::*;

/// call.reply: a call returns the callee's reply.
#[tokio::test]
async fn call_returns_the_reply() {
    let rt = node();
    let echo = rt.spawn(|mut ctx| async move {
        while let Envelope::Call(call) = ctx.recv().await {
            let n: u32 = call.msg.take().unwrap();
            ctx.reply_to(call.from, call.mref, &(n * 2));
        }
    });
    let from_outside: u32 = rt
        .call(echo, 21u32, DEADLINE)
        .await
        .unwrap()
        .take()
        .unwrap();
    assert_eq!(from_outside, 42);
    with_ctx(&rt, move |mut ctx| async move {
        let n: u32 = ctx
            .call(echo, 5u32, DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(n, 10);
    })
    .await;
}

/// call.timeout: a call with no reply fails with `Timeout` after exactly its
/// timeout; a reply that comes later is dropped and never received.
#[tokio::test(start_paused = true)]
async fn call_times_out_and_a_late_reply_is_dropped() {
    let rt = node();
    let slow = rt.spawn(|mut ctx| async move {
        if let Envelope::Call(call) = ctx.recv().await {
            tokio::time::sleep(ms(200)).await;
            ctx.reply(&call, "too late");
            ctx.send(call.from, "after the reply");
        }
    });
    with_ctx(&rt, move |mut ctx| async move {
        let t0 = tokio::time::Instant::now();
        let got = ctx.call(slow, "hi", ms(100)).await;
        assert_eq!(got.unwrap_err(), CallError::Timeout(ms(100)));
        assert_eq!(t0.elapsed(), ms(100));
        // The next thing received, even by a receive that takes anything,
        // is the message sent after the reply.
        let next = ctx.recv_match(|_| true, Some(DEADLINE)).await.unwrap();
        assert_eq!(next.take::<String>().unwrap(), "after the reply");
        assert!(ctx.try_recv_match(|_| true).is_none());
    })
    .await;
}

/// call.callee-dies: a callee that dies before replying makes the call fail
/// at once with the callee's exit reason.
#[tokio::test(start_paused = true)]
async fn callee_dying_mid_call_fails_the_call_with_its_reason() {
    let rt = node();
    let dies = rt.spawn(|mut ctx| async move {
        ctx.recv().await;
        ExitReason::Error("died mid-call".into())
    });
    let killed = rt.spawn(|mut ctx| async move {
        loop {
            ctx.recv().await;
        }
        #[allow(unreachable_code)]
        ()
    });
    with_ctx(&rt, move |mut ctx| async move {
        let t0 = tokio::time::Instant::now();
        let got = ctx.call(dies, "hi", secs(60)).await;
        assert_eq!(
            got.unwrap_err(),
            CallError::Exit(ExitReason::Error("died mid-call".into()))
        );
        assert_eq!(t0.elapsed(), ms(0), "did not wait for the timeout");

        ctx.spawn(move |c| async move {
            // Kill the callee while the call waits.
            c.kill(killed);
        });
        let got = ctx.call(killed, "hi", secs(60)).await;
        assert_eq!(got.unwrap_err(), CallError::Exit(ExitReason::Killed));
    })
    .await;
}

/// call.noproc: a call to a pid that is not alive fails at once with
/// `noproc`.
#[tokio::test(start_paused = true)]
async fn call_to_a_dead_pid_fails_with_noproc() {
    let rt = node();
    let dead = rt.spawn(|_ctx| async {});
    wait_until("it ended", DEADLINE, || !rt.is_alive(dead)).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        rt.call(dead, "hi", secs(60)).await.unwrap_err(),
        CallError::Exit(ExitReason::NoProc)
    );
    assert_eq!(t0.elapsed(), ms(0));
}

/// call.clean: a call leaves nothing behind: no monitor (the callee's later
/// death sends no `Down`), and messages that arrived during the call stay
/// queued in order.
#[tokio::test]
async fn a_call_leaves_no_monitor_and_keeps_other_messages() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let callee = ctx.spawn(move |mut c| async move {
            if let Envelope::Call(call) = c.recv().await {
                for i in 0..3u32 {
                    c.send(me, i);
                }
                c.reply(&call, "reply");
            }
            c.recv().await;
            ExitReason::Error("later".into())
        });
        let r: String = ctx
            .call(callee, "hi", DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(r, "reply");
        // Let it die; a witness monitor's Down comes after any other.
        let witness = ctx.monitor(callee);
        ctx.send(callee, "die");
        down_reason(&mut ctx, witness).await;
        let left: Vec<u32> = std::iter::from_fn(|| ctx.try_recv())
            .map(|e| match e {
                Envelope::Message { msg, .. } => msg.take().unwrap(),
                other => panic!("left behind: {other:?}"),
            })
            .collect();
        assert_eq!(left, [0, 1, 2]);
    })
    .await;
}
