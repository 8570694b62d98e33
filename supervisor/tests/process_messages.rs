//! Messages between processes (docs/semantics.md "Messages"): order per
//! sender, silent sends to dead pids, selective receive, receive timeouts,
//! and how values travel (moved locally, decoded when they come from
//! another node).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use pool_proto::{Dest, ExitReason, Msg, MsgKind, NodeId, Payload, Pid, SendMsg};
use serde::{Deserialize, Serialize, Serializer};
use supervisor::{Envelope, Message};
use support::*;
use tokio::sync::oneshot;

/// Takes the next plain message as `T`.
async fn next<T: serde::de::DeserializeOwned + 'static>(ctx: &mut supervisor::Ctx) -> T {
    match ctx.recv_timeout(DEADLINE).await {
        Some(env) => env.take::<T>().expect("a message of the expected type"),
        None => panic!("no message before the deadline"),
    }
}

/// msg.order-per-sender: 1000 messages from one sender arrive in send order.
#[tokio::test]
async fn messages_from_one_sender_arrive_in_send_order() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        ctx.spawn(move |c| async move {
            for i in 0..1000u32 {
                c.send(me, i);
            }
        });
        for i in 0..1000u32 {
            assert_eq!(next::<u32>(&mut ctx).await, i);
        }
    })
    .await;
}

/// msg.order-per-sender: with two senders interleaving, each sender's
/// messages still arrive in its own send order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_senders_messages_keep_their_order_among_other_senders() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        for sender in 0..2u32 {
            ctx.spawn(move |c| async move {
                for i in 0..500u32 {
                    c.send(me, (sender, i));
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        let mut last = [None::<u32>; 2];
        for _ in 0..1000 {
            let (sender, i): (u32, u32) = next(&mut ctx).await;
            let prev = last[sender as usize].replace(i);
            assert_eq!(prev.map_or(0, |p| p + 1), i, "sender {sender} out of order");
        }
    })
    .await;
}

/// msg.before-exit: a process's messages reach a linked, trapping receiver
/// before the exit signal of its end.
#[tokio::test]
async fn messages_arrive_before_the_senders_exit_signal() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let child = ctx.spawn_link(move |c| async move {
            for i in 0..10u32 {
                c.send(me, i);
            }
            ExitReason::Error("done".into())
        });
        for i in 0..10u32 {
            assert_eq!(next::<u32>(&mut ctx).await, i);
        }
        match ctx.recv_timeout(DEADLINE).await {
            Some(Envelope::Exit { from, reason }) => {
                assert_eq!(from, child);
                assert_eq!(reason, ExitReason::Error("done".into()));
            }
            other => panic!("expected the exit signal last, got {other:?}"),
        }
    })
    .await;
}

/// msg.send-to-dead: sending to a dead pid, or to a pid of a node this
/// runtime does not know, succeeds silently: no error, no panic, nothing
/// comes back.
#[tokio::test]
async fn send_to_dead_pid_is_dropped_silently() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, |mut ctx| async move {
        let dead = ctx.spawn(|_c| async {});
        assert_eq!(await_exit(&mut ctx, dead).await, ExitReason::Normal);
        ctx.send(dead, "hello");
        rt2.send(dead, "hello");
        let elsewhere = Pid::new(NodeId::random(), 7);
        ctx.send(elsewhere, "hello");
        rt2.send(elsewhere, "hello");
        assert!(!rt2.is_alive(dead));
        assert!(ctx.try_recv().is_none(), "nothing came back");
    })
    .await;
}

/// msg.selective-receive: `recv_match` takes the oldest matching envelope
/// and leaves the others queued in their original order, also when nothing
/// matches before its timeout.
#[tokio::test(start_paused = true)]
async fn selective_receive_leaves_the_rest_in_order() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        for i in 1..=5u32 {
            ctx.send(me, i);
        }
        let is = |want: u32| {
            move |e: &Envelope| {
                matches!(e, Envelope::Message { msg, .. } if msg.peek(|n: &u32| *n == want) == Some(true))
            }
        };
        let four = ctx.recv_match(is(4), None).await.unwrap();
        assert_eq!(four.take::<u32>().unwrap(), 4);
        // Nothing matches 9: the timeout passes and nothing is consumed.
        assert!(ctx.recv_match(is(9), Some(ms(50))).await.is_none());
        assert!(ctx.try_recv_match(is(9)).is_none());
        let two = ctx.try_recv_match(is(2)).unwrap();
        assert_eq!(two.take::<u32>().unwrap(), 2);
        for want in [1, 3, 5] {
            assert_eq!(next::<u32>(&mut ctx).await, want);
        }
    })
    .await;
}

/// msg.recv-timeout: a receive with a timeout returns nothing after exactly
/// the timeout when no message comes, and the message when one comes first.
#[tokio::test(start_paused = true)]
async fn recv_timeout_returns_none_after_the_timeout() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let t0 = tokio::time::Instant::now();
        assert!(ctx.recv_timeout(ms(250)).await.is_none());
        assert_eq!(t0.elapsed(), ms(250));

        let me = ctx.pid();
        ctx.spawn(move |c| async move {
            tokio::time::sleep(ms(100)).await;
            c.send(me, "late but in time");
        });
        let t1 = tokio::time::Instant::now();
        let got = ctx.recv_timeout(ms(250)).await.expect("the message");
        assert_eq!(t1.elapsed(), ms(100));
        assert_eq!(got.take::<String>().unwrap(), "late but in time");
        assert!(ctx.try_recv().is_none());
    })
    .await;
}

static ENCODED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts how often it is serialised.
#[derive(Deserialize)]
struct Counted {
    data: Vec<u8>,
}

impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ENCODED.fetch_add(1, Ordering::SeqCst);
        s.serialize_bytes(&self.data)
    }
}

/// msg.local-move: a message to a process of the same node is moved, not
/// encoded: the receiver gets the very same heap buffer and the value's
/// `Serialize` never runs.
#[tokio::test]
async fn local_send_moves_the_value_without_encoding() {
    let rt = node();
    let (tx, rx) = oneshot::channel();
    let receiver = rt.spawn(move |mut ctx| async move {
        let env = ctx.recv().await;
        let Envelope::Message { msg, .. } = env else {
            panic!("expected a message")
        };
        assert!(!msg.is_remote());
        assert!(msg.is::<Counted>());
        let v: Counted = msg.take().unwrap();
        let _ = tx.send(v.data.as_ptr() as usize);
    });
    let value = Counted {
        data: vec![7; 4096],
    };
    let sent_at = value.data.as_ptr() as usize;
    rt.send(receiver, value);
    assert_eq!(rx.await.unwrap(), sent_at, "the buffer was moved");
    assert_eq!(ENCODED.load(Ordering::SeqCst), 0, "nothing was encoded");
}

/// msg.local-only: a value that cannot be serialised at all (here a channel
/// sender) can still be sent between processes of one node.
#[tokio::test]
async fn local_only_values_move_between_local_processes() {
    let rt = node();
    let (tx, rx) = oneshot::channel::<&'static str>();
    let receiver = rt.spawn(|mut ctx| async move {
        let msg = ctx.recv().await.into_message().unwrap();
        let tx = msg.downcast::<oneshot::Sender<&'static str>>().unwrap();
        let _ = tx.send("through the mailbox");
    });
    with_ctx(&rt, move |ctx| async move {
        ctx.send_message(receiver, Message::local(tx));
    })
    .await;
    assert_eq!(rx.await.unwrap(), "through the mailbox");
}

/// msg.remote-decode: a message that arrived from another node is decoded
/// when the receiver asks for a type; a type that does not fit gives an
/// error naming the expected type, and the message is handed back intact.
#[tokio::test]
async fn remote_message_decodes_on_take_and_says_why_not() {
    let rt = node();
    let (tx, rx) = oneshot::channel();
    let receiver = rt.spawn(move |mut ctx| async move {
        let msg = ctx.recv().await.into_message().unwrap();
        assert!(msg.is_remote());
        let (msg, err) = match msg.try_take::<u64>() {
            Ok(v) => panic!("decoded as u64: {v}"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.contains("u64"), "the error names the type: {text}");
        let v: (String, u32) = msg.take().unwrap();
        let _ = tx.send(v);
    });
    let from = Pid::new(NodeId::random(), 3);
    rt.handle_remote(Msg::Send(SendMsg {
        to: Dest::Pid(receiver),
        from: Some(from),
        kind: MsgKind::Plain,
        payload: Payload::encode(&("hello", 5u32)).unwrap(),
        trace: None,
    }))
    .unwrap();
    assert_eq!(rx.await.unwrap(), ("hello".to_owned(), 5));
}

/// msg.recv-msg: `recv_msg::<T>` hands back anything that is not a `T`
/// untouched, so nothing is lost.
#[tokio::test]
async fn recv_msg_hands_back_what_does_not_fit() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        ctx.send(me, "text");
        ctx.send(me, 42u32);
        let back = ctx.recv_msg::<u32>().await.unwrap_err();
        assert_eq!(back.take::<String>().unwrap(), "text");
        assert_eq!(ctx.recv_msg::<u32>().await.unwrap(), 42);
    })
    .await;
}

/// `msg.mailbox-limit`: a process with a mailbox limit that lets messages
/// pile up dies with a `mailbox overflow` reason once one more than the
/// limit arrives; below the limit nothing happens; signals (a monitor's
/// DOWN) do not count.
#[tokio::test]
async fn mailbox_limit_kills_a_process_that_falls_behind() {
    use supervisor::SpawnOpts;
    let rt = supervisor::Runtime::new(pool_proto::NodeId::random());
    // It never reads its mailbox; a watcher monitors it from the start.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = rt.spawn(move |mut ctx| async move {
        let target: pool_proto::Pid = ctx.recv().await.take().unwrap();
        let mref = ctx.monitor(target);
        let _ = ready_tx.send(());
        if let Some(d) = ctx.wait_down(mref, None).await {
            let _ = tx.send(d.reason);
        }
    });
    let slow = rt.spawn_opts(SpawnOpts::new().max_mailbox(10), |_ctx| async {
        std::future::pending::<()>().await;
    });
    rt.send(watcher, slow);
    ready_rx.await.unwrap();
    for i in 0..10u32 {
        rt.send(slow, i);
    }
    assert!(rt.is_alive(slow), "ten messages fit a limit of ten");
    rt.send(slow, 10u32);
    let reason = tokio::time::timeout(std::time::Duration::from_secs(5), rx)
        .await
        .expect("the process dies")
        .unwrap();
    assert!(
        reason.to_string().contains("mailbox overflow"),
        "unexpected reason {reason}"
    );

    // Without a limit (the runtime's default), the same is harmless.
    let free = rt.spawn(|_ctx| async {
        std::future::pending::<()>().await;
    });
    for i in 0..1000u32 {
        rt.send(free, i);
    }
    assert!(rt.is_alive(free));
}
