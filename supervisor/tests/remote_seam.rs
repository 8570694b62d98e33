//! The remote seam (docs/semantics.md "Across nodes"): two runtimes in one
//! test, joined by an in-memory `RemoteRouter` that encodes every frame with
//! `pool_proto::Codec<Msg>`. Messages, calls, links, monitors, exit
//! signals, remote spawns and supervisors with children on the other node
//! keep the semantics they have on one node; cutting the connection gives
//! `noconnection`, and a supervisor restarts a lost child elsewhere.

mod support;

use std::sync::Arc;

use pool_proto::{ErrorCode, ExitReason, Placement, Restart, SpawnRequest, Strategy};
use serde_json::json;
use supervisor::supervisor::{self as sup, Child, Spec};
use supervisor::{
    CallError, Ctx, Envelope, Error, Functions, Message, Pid, Runtime, SpawnAnswer, SpawnOpts,
    SpawnReplies, SpawnRequestOpts,
};
use support::cluster::{Cluster, TwoNodePlacer};
use support::*;

/// Functions registered on both nodes: `test.worker` (a [`body`] worker
/// named by its argument, writing to `log`), `test.echo` (answers calls
/// with the request), `test.exit` (ends at once with the reason given) and
/// `test.result` (ends normally with its argument as result).
fn functions(log: &Log) -> Functions {
    let mut fns = Functions::new();
    let l = log.clone();
    fns.register("test.worker", move |ctx, id: String| {
        body(ctx, l.clone(), id, Mode::Plain)
    });
    fns.register(
        "test.echo",
        |mut ctx, _args: serde_json::Value| async move {
            loop {
                match ctx.recv().await {
                    Envelope::Call(call) => {
                        let v: serde_json::Value =
                            call.msg.peek(|v: &serde_json::Value| v.clone()).unwrap();
                        ctx.reply(&call, &v);
                    }
                    Envelope::Message { msg, .. } => {
                        if let Ok(Cmd::Exit(r)) = msg.take::<Cmd>() {
                            return r;
                        }
                    }
                    _ => {}
                }
            }
        },
    );
    fns.register(
        "test.exit",
        |_ctx, reason: ExitReason| async move { reason },
    );
    fns.register(
        "test.result",
        |_ctx, v: u32| async move { Ok::<_, String>(v) },
    );
    fns
}

fn cluster(log: &Log) -> Cluster {
    Cluster::new(functions(log), functions(log))
}

/// Spawns `function(args)` on `c.b`, unlinked.
fn on_b(c: &Cluster, function: &str, args: serde_json::Value) -> Pid {
    c.b.spawn_function(function, args, SpawnOpts::new())
        .unwrap()
}

fn req(function: &str, args: serde_json::Value) -> SpawnRequest {
    SpawnRequest {
        function: function.to_owned(),
        args,
        link: None,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    }
}

/// A process on `rt` that forwards every message it receives to `to`.
fn forwarder(rt: &Runtime, to: Pid) -> Pid {
    rt.spawn(move |mut ctx| async move {
        loop {
            if let Some(msg) = ctx.recv().await.into_message() {
                ctx.send_message(to, msg);
            }
        }
        #[allow(unreachable_code)]
        ()
    })
}

/// remote.order: messages from one process to a process on another node
/// arrive in send order, and arrive encoded (decoded by the receiver).
#[tokio::test]
async fn messages_across_nodes_keep_their_order_and_are_decoded_there() {
    let log = Log::new();
    let c = cluster(&log);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let receiver = c.b.spawn(move |mut ctx| async move {
        for i in 0..500u32 {
            let Envelope::Message { msg, .. } = ctx.recv().await else {
                panic!("expected a message")
            };
            assert!(msg.is_remote(), "it crossed the seam encoded");
            assert_eq!(msg.take::<u32>().unwrap(), i);
        }
        let _ = tx.send(());
    });
    with_ctx(&c.a, move |ctx| async move {
        for i in 0..500u32 {
            ctx.send(receiver, i);
        }
    })
    .await;
    rx.await.unwrap();
    assert!(c.frames() >= 500);
}

/// remote.local-only: a local-only value sent to another node is dropped
/// (it cannot be encoded); sends to a dead remote pid are silent.
#[tokio::test]
async fn undeliverable_sends_across_nodes_are_dropped_silently() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let fwd = forwarder(&b, ctx.pid());
        let (tx, _rx) = tokio::sync::oneshot::channel::<()>();
        ctx.send_message(fwd, Message::local(tx));
        let dead = b.spawn(|_c| async {});
        wait_until("it ended", DEADLINE, || !b.is_alive(dead)).await;
        ctx.send(dead, "nobody");
        ctx.send(fwd, "second");
        let got: String = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        assert_eq!(got, "second", "the local-only value never arrived");
    })
    .await;
}

/// remote.call: a call to another node gets the reply; a callee that dies
/// mid-call fails it with its reason; a dead remote pid gives `noproc`.
#[tokio::test]
async fn calls_across_nodes() {
    let log = Log::new();
    let c = cluster(&log);
    let echo = on_b(&c, "test.echo", json!(null));
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let got: serde_json::Value = ctx
            .call(echo, json!({"x": 1}), DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(got, json!({"x": 1}));
        let mid = b.spawn(|mut c: Ctx| async move {
            c.recv().await;
            ExitReason::Error("died mid-call".into())
        });
        assert_eq!(
            ctx.call(mid, "hi", DEADLINE).await.unwrap_err(),
            CallError::Exit(ExitReason::Error("died mid-call".into()))
        );
        assert_eq!(
            ctx.call(mid, "hi", DEADLINE).await.unwrap_err(),
            CallError::Exit(ExitReason::NoProc)
        );
    })
    .await;
}

/// remote.links: a link across nodes carries exit signals both ways: a
/// remote process's error kills a local non-trapping neighbour with that
/// reason, and reaches a trapping one as an `Exit` message; `exit(P, kill)`
/// across kills it `killed`, which its links see as `killed`; `exit(P,
/// normal)` across is ignored by a non-trapping process.
#[tokio::test]
async fn exit_signals_across_nodes_follow_the_table() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        // Local plain process linked to a remote one that crashes.
        let remote = on_b_echo(&b);
        let local = ctx.spawn(move |c: Ctx| async move {
            c.link(remote).unwrap();
            c.send(me, "linked");
            std::future::pending::<()>().await;
        });
        let _: String = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        let local_down = ctx.monitor(local);
        ctx.send(remote, Cmd::Exit(boom()));
        assert_eq!(down_reason(&mut ctx, local_down).await, boom());

        // The trapping driver linked to a remote process.
        let remote = on_b_echo(&b);
        ctx.link(remote).unwrap();
        ctx.send(remote, Cmd::Exit(ExitReason::Error("remote".into())));
        assert_eq!(
            next_exit(&mut ctx).await,
            (remote, ExitReason::Error("remote".into()))
        );

        // exit(remote, normal): ignored; exit(remote, kill): killed, and the
        // driver's link sees `killed`.
        let remote = on_b_echo(&b);
        ctx.link(remote).unwrap();
        let mref = ctx.monitor(remote);
        ctx.exit(remote, ExitReason::Normal);
        let alive: serde_json::Value = ctx
            .call(remote, json!("ping"), DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(alive, json!("ping"));
        ctx.kill(remote);
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::Killed);
        assert_eq!(next_exit(&mut ctx).await, (remote, ExitReason::Killed));

        // A remote process linked to the driver dies with the driver's
        // helper: the local end's error reaches it across.
        let remote = on_b_echo(&b);
        let remote_down = ctx.monitor(remote);
        let helper = ctx.spawn(move |c: Ctx| async move {
            c.link(remote).unwrap();
            ExitReason::Error("local end".into())
        });
        let _ = helper;
        assert_eq!(
            down_reason(&mut ctx, remote_down).await,
            ExitReason::Error("local end".into())
        );
    })
    .await;
}

fn on_b_echo(b: &Runtime) -> Pid {
    b.spawn_function("test.echo", json!(null), SpawnOpts::new())
        .unwrap()
}

/// remote.link-dead: linking (while trapping) to a dead pid of the other
/// node gives `Exit { pid, noproc }`; without trapping, the link's answer
/// kills the caller with `noproc`.
#[tokio::test]
async fn linking_to_a_dead_remote_pid_gives_noproc() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let dead = b.spawn(|_c| async {});
        wait_until("it ended", DEADLINE, || !b.is_alive(dead)).await;
        ctx.trap_exit(true);
        ctx.link(dead).unwrap();
        assert_eq!(next_exit(&mut ctx).await, (dead, ExitReason::NoProc));
        let plain = ctx.spawn(move |c: Ctx| async move {
            let _ = c.link(dead);
            std::future::pending::<()>().await;
        });
        assert_eq!(await_exit(&mut ctx, plain).await, ExitReason::NoProc);
    })
    .await;
}

/// remote.monitors: a monitor across nodes gives one `Down` with the exit
/// reason (and the result value when asked for); a dead remote pid gives
/// `noproc`; after `demonitor` no `Down` comes.
#[tokio::test]
async fn monitors_across_nodes() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let p = on_b_echo(&b);
        let m1 = ctx.monitor(p);
        let m2 = ctx.monitor(p);
        let gone = ctx.monitor(p);
        ctx.demonitor(gone, false);
        ctx.send(p, Cmd::Exit(boom()));
        assert_eq!(down_reason(&mut ctx, m1).await, boom());
        assert_eq!(down_reason(&mut ctx, m2).await, boom());
        // A witness on a fresh process: its Down comes after anything the
        // demonitored one could still send.
        let q = on_b_echo(&b);
        let witness = ctx.monitor(q);
        ctx.send(q, Cmd::Exit(ExitReason::Normal));
        down_reason(&mut ctx, witness).await;
        assert!(ctx.try_recv().is_none(), "no Down for the demonitored ref");
        // p is dead now.
        let m3 = ctx.monitor(p);
        assert_eq!(down_reason(&mut ctx, m3).await, ExitReason::NoProc);
        // The result value crosses too.
        let me = ctx.pid();
        let rt = ctx.runtime().clone();
        let (r, mref) = rt
            .spawn_on(
                b.node(),
                me,
                req("test.result", json!(7)),
                false,
                Some(true),
            )
            .await
            .unwrap();
        let d = ctx.wait_down(mref.unwrap(), Some(DEADLINE)).await.unwrap();
        assert_eq!((d.pid, d.reason.clone()), (r, ExitReason::Normal));
        assert_eq!(d.result.unwrap().take::<u32>().unwrap(), 7);
    })
    .await;
}

/// remote.spawn-atomic: `spawn_on` another node links and monitors the new
/// process before it runs: even a process that ends at once is seen with
/// its own reason, never `noproc`.
#[tokio::test]
async fn spawn_on_another_node_is_atomic() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    with_ctx(&c.a, move |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let rt = ctx.runtime().clone();
        for i in 0..20u32 {
            let reason = ExitReason::Error(format!("at once {i}"));
            let (pid, mref) = rt
                .spawn_on(
                    b,
                    me,
                    req("test.exit", serde_json::to_value(&reason).unwrap()),
                    true,
                    Some(false),
                )
                .await
                .unwrap();
            assert_eq!(pid.node(), b);
            assert_eq!(down_reason(&mut ctx, mref.unwrap()).await, reason);
            assert_eq!(next_exit(&mut ctx).await, (pid, reason));
        }
    })
    .await;
}

/// remote.spawn-errors: `spawn_on` with a function the other node does not
/// have is an error naming it; a node that is not reachable is `NoRoute`.
#[tokio::test]
async fn spawn_on_errors() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    let c2 = c.clone();
    with_ctx(&c.a, move |ctx| async move {
        let me = ctx.pid();
        let rt = ctx.runtime().clone();
        match rt
            .spawn_on(b, me, req("no.such", json!(null)), false, None)
            .await
        {
            Err(Error::Remote(e)) => assert_eq!(e.code, ErrorCode::UnknownFunction),
            other => panic!("expected an unknown function, got {other:?}"),
        }
        let unknown = supervisor::NodeId::random();
        assert!(matches!(
            rt.spawn_on(unknown, me, req("test.echo", json!(null)), false, None).await,
            Err(Error::NoRoute { node }) if node == unknown
        ));
        c2.cut();
        assert!(matches!(
            rt.spawn_on(b, me, req("test.echo", json!(null)), false, None)
                .await,
            Err(Error::NoRoute { .. })
        ));
    })
    .await;
}

/// Waits (at most [`DEADLINE`]) for the answer to spawn request `req`.
async fn answer(ctx: &mut Ctx, req: supervisor::Ref) -> Result<Pid, pool_proto::RemoteError> {
    let env = ctx
        .recv_match(
            |e| matches!(e, Envelope::Message { msg, .. } if msg.peek(|a: &SpawnAnswer| a.req == req).unwrap_or(false)),
            Some(DEADLINE),
        )
        .await
        .expect("the spawn request is answered");
    env.take::<SpawnAnswer>().unwrap().result
}

/// Every spawn answer queued in the mailbox now, in arrival order.
fn queued_answers(ctx: &mut Ctx) -> Vec<SpawnAnswer> {
    let mut out = Vec::new();
    while let Some(env) = ctx
        .try_recv_match(|e| matches!(e, Envelope::Message { msg, .. } if msg.is::<SpawnAnswer>()))
    {
        out.push(env.take::<SpawnAnswer>().unwrap());
    }
    out
}

/// remote.spawn-request: `spawn_request` returns at once; each answer
/// arrives as a `SpawnAnswer` message carrying the request's reference,
/// and the link and monitor (whose reference is the request's) are made
/// before the new process runs, as `spawn_on` makes them.
#[tokio::test]
async fn spawn_requests_are_answered_in_the_mailbox() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    with_ctx(&c.a, move |mut ctx| async move {
        ctx.trap_exit(true);
        // Many in flight at once, none awaited.
        let reqs: Vec<_> = (0..50u32)
            .map(|i| {
                let reason = ExitReason::Error(format!("at once {i}"));
                let opts = SpawnRequestOpts {
                    link: true,
                    monitor: Some(false),
                    reply: SpawnReplies::All,
                };
                let r = ctx.spawn_request(
                    b,
                    req("test.exit", serde_json::to_value(&reason).unwrap()),
                    opts,
                );
                (r, reason)
            })
            .collect();
        let mut refs: Vec<_> = reqs.iter().map(|(r, _)| *r).collect();
        refs.sort();
        refs.dedup();
        assert_eq!(
            refs.len(),
            reqs.len(),
            "every request has its own reference"
        );
        for (r, reason) in reqs {
            let pid = answer(&mut ctx, r).await.unwrap();
            assert_eq!(pid.node(), b);
            // The monitor's reference is the request's; neither the monitor
            // nor the link missed the process that ended at once.
            assert_eq!(down_reason(&mut ctx, r).await, reason);
            let exit = ctx
                .recv_match(
                    |e| matches!(e, Envelope::Exit { from, .. } if *from == pid),
                    Some(DEADLINE),
                )
                .await;
            match exit {
                Some(Envelope::Exit { reason: got, .. }) => assert_eq!(got, reason),
                other => panic!("expected the linked process's exit, got {other:?}"),
            }
        }
        // A request to this node itself is answered the same way.
        let own = ctx.runtime().node();
        let r = ctx.spawn_request(
            own,
            req("test.result", json!(3)),
            SpawnRequestOpts::default(),
        );
        assert_eq!(answer(&mut ctx, r).await.unwrap().node(), own);
    })
    .await;
}

/// remote.spawn-request: `SpawnReplies` chooses which answers reach the
/// mailbox (OTP's `{reply, yes | no | error_only | success_only}`). A
/// `spawn_on` awaited afterwards is answered after them (one connection
/// keeps its order), so what is queued then is all that will come.
#[tokio::test]
async fn spawn_request_replies_are_chosen() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    with_ctx(&c.a, move |mut ctx| async move {
        let me = ctx.pid();
        let rt = ctx.runtime().clone();
        let mut sent = Vec::new();
        for reply in [
            SpawnReplies::All,
            SpawnReplies::None,
            SpawnReplies::ErrorsOnly,
            SpawnReplies::SuccessesOnly,
        ] {
            let opts = SpawnRequestOpts {
                reply,
                ..SpawnRequestOpts::default()
            };
            let good = ctx.spawn_request(b, req("test.result", json!(1)), opts);
            let bad = ctx.spawn_request(b, req("no.such", json!(null)), opts);
            sent.push((reply, good, bad));
        }
        rt.spawn_on(b, me, req("test.result", json!(2)), false, None)
            .await
            .unwrap();
        let got = queued_answers(&mut ctx);
        let mut want = Vec::new();
        for (reply, good, bad) in sent {
            if reply.wants(true) {
                want.push((good, true));
            }
            if reply.wants(false) {
                want.push((bad, false));
            }
        }
        let got_refs: Vec<_> = got.iter().map(|a| (a.req, a.result.is_ok())).collect();
        assert_eq!(got_refs, want);
        for a in got.iter().filter(|a| a.result.is_err()) {
            assert_eq!(
                a.result.as_ref().unwrap_err().code,
                ErrorCode::UnknownFunction
            );
        }
    })
    .await;
}

/// remote.spawn-request: a request to a node that is unknown, or whose
/// connection is gone, is answered at once with `UnknownNode`; one in
/// flight when the connection is cut is answered so too.
#[tokio::test]
async fn spawn_request_errors() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    let c2 = c.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let unknown = supervisor::NodeId::random();
        let r = ctx.spawn_request(
            unknown,
            req("test.echo", json!(null)),
            SpawnRequestOpts::default(),
        );
        assert_eq!(
            answer(&mut ctx, r).await.unwrap_err().code,
            ErrorCode::UnknownNode
        );
        // In flight at the cut: the in-memory connection holds frames until
        // they are pumped, and the cut drops them with the pending answers.
        let in_flight = ctx.spawn_request(
            b,
            req("test.echo", json!(null)),
            SpawnRequestOpts::default(),
        );
        c2.cut();
        match answer(&mut ctx, in_flight).await {
            Err(e) => assert_eq!(e.code, ErrorCode::UnknownNode),
            // The frame may have crossed before the cut.
            Ok(pid) => assert_eq!(pid.node(), b),
        }
        let after = ctx.spawn_request(
            b,
            req("test.echo", json!(null)),
            SpawnRequestOpts::default(),
        );
        assert_eq!(
            answer(&mut ctx, after).await.unwrap_err().code,
            ErrorCode::UnknownNode
        );
    })
    .await;
}

/// remote.spawn-request: answers pass a mailbox's limit (a process with a
/// limit of 2 gets 5 answers, all queued, and is not killed for it), and a
/// failed spawn that asked for a monitor makes none (no `Down` follows).
#[tokio::test]
async fn spawn_answers_pass_the_mailbox_limit_and_a_failed_spawn_monitors_nothing() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.node();
    let (tx, rx) = tokio::sync::oneshot::channel();
    c.a.spawn_opts(
        SpawnOpts::new().max_mailbox(2),
        move |mut ctx: Ctx| async move {
            let opts = SpawnRequestOpts {
                monitor: Some(false),
                ..SpawnRequestOpts::default()
            };
            let reqs: Vec<_> = (0..5)
                .map(|_| ctx.spawn_request(b, req("no.such", json!(null)), opts))
                .collect();
            // Answered after them (one connection keeps its order).
            let me = ctx.pid();
            let rt = ctx.runtime().clone();
            rt.spawn_on(b, me, req("test.result", json!(1)), false, None)
                .await
                .unwrap();
            let got: Vec<_> = queued_answers(&mut ctx).iter().map(|a| a.req).collect();
            let downs = ctx.try_recv_match(|e| matches!(e, Envelope::Down(_)));
            let _ = tx.send((reqs, got, downs.is_none()));
        },
    );
    let (reqs, got, no_downs) = tokio::time::timeout(DEADLINE, rx)
        .await
        .expect("the requester finishes")
        .expect("the requester was not killed by its mailbox limit");
    assert_eq!(got, reqs);
    assert!(no_downs, "a failed spawn made a monitor");
}

/// remote.cut: cutting the connection fires `noconnection` on every link
/// and monitor across, on both sides; a call waiting across fails with
/// `noconnection`; afterwards a monitor or (trapping) link to a pid of the
/// lost node gives `noconnection` at once, and a send is silently dropped.
#[tokio::test]
async fn a_cut_gives_noconnection_on_both_sides() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    let c2 = c.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let linked = on_b_echo(&b);
        ctx.link(linked).unwrap();
        let watched = on_b_echo(&b);
        let mref = ctx.monitor(watched);
        // A process on b, not trapping, linked to the driver.
        let remote_end = b.spawn(move |c: Ctx| async move {
            c.link(me).unwrap();
            std::future::pending::<()>().await;
        });
        let remote_end_watch = watch(&b, remote_end).await;
        // A call that will never be answered: the callee only says it got it.
        let silent = b.spawn(move |mut c: Ctx| async move {
            c.recv().await;
            c.send(me, "got the call");
            std::future::pending::<()>().await;
        });
        let rt = ctx.runtime().clone();
        let caller = tokio::spawn(async move { rt.call(silent, "hi", DEADLINE).await });
        let got = ctx
            .recv_match(|e| matches!(e, Envelope::Message { .. }), Some(DEADLINE))
            .await
            .unwrap();
        assert_eq!(got.take::<String>().unwrap(), "got the call");
        // Make sure the links and monitors are in place on the far side: a
        // call's reply comes after the frames sent before it.
        let _: serde_json::Value = ctx
            .call(linked, json!(1), DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();

        c2.cut();

        // The driver is linked to two processes of b: both links break.
        let mut exits = vec![next_exit(&mut ctx).await, next_exit(&mut ctx).await];
        exits.sort_by_key(|(p, _)| *p);
        let mut want = vec![
            (linked, ExitReason::NoConnection),
            (remote_end, ExitReason::NoConnection),
        ];
        want.sort_by_key(|(p, _)| *p);
        assert_eq!(exits, want);
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::NoConnection);
        assert_eq!(remote_end_watch.reason().await, ExitReason::NoConnection);
        assert_eq!(
            caller.await.unwrap().unwrap_err(),
            CallError::Exit(ExitReason::NoConnection)
        );

        let m = ctx.monitor(linked);
        assert_eq!(down_reason(&mut ctx, m).await, ExitReason::NoConnection);
        ctx.link(watched).unwrap();
        assert_eq!(
            next_exit(&mut ctx).await,
            (watched, ExitReason::NoConnection)
        );
        ctx.send(linked, "into the void");
        assert!(ctx.try_recv().is_none());
    })
    .await;
}

/// A supervisor on `c.a` whose children are `test.worker`s placed by a
/// [`TwoNodePlacer`] (on `b` unless `b` was lost).
fn placed(c: &Cluster) {
    c.a.set_placer(Arc::new(TwoNodePlacer {
        local: c.a.node(),
        remote: c.b.node(),
    }))
    .unwrap();
}

fn remote_worker(id: &str) -> Child {
    Child::function(id, "test.worker", json!(id)).placement(Placement::LeastLoaded)
}

/// remote.supervisor: a supervisor runs a placed child on the other node,
/// linked across; the child's crash there is restarted (one_for_all
/// order kept across nodes), and stopping the supervisor stops local and
/// remote children in reverse start order.
#[tokio::test]
async fn a_supervisor_with_children_on_the_other_node() {
    let log = Log::new();
    let c = cluster(&log);
    placed(&c);
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(5)
        .child(plain(&log, "L1"))
        .child(remote_worker("R"))
        .child(plain(&log, "L2"));
    let s = sup::start(&c.a, spec).await.unwrap();
    let r = running(&c.a, s, "R").await;
    assert_eq!(r.node(), c.b.node(), "placed on the other node");
    wait_until("all started", DEADLINE, || log.len() == 3).await;
    log.take();
    crash_child(&c.a, r).await;
    let r2 = running(&c.a, s, "R").await;
    assert_ne!(r2, r);
    assert_eq!(r2.node(), c.b.node());
    wait_until("all restarted", DEADLINE, || log.len() == 5).await;
    assert_eq!(
        log.take(),
        [
            "stopped L2",
            "stopped L1",
            "started L1",
            "started R",
            "started L2"
        ]
    );
    sup::stop(&c.a, s).await.unwrap();
    assert_eq!(log.take(), ["stopped L2", "stopped R", "stopped L1"]);
}

/// remote.restart-elsewhere: when the connection to the child's node is cut
/// the supervisor sees `noconnection`, an abnormal exit: permanent and
/// transient children are restarted, on a node that is not the lost one.
#[tokio::test]
async fn a_cut_restarts_lost_children_elsewhere() {
    let log = Log::new();
    let c = cluster(&log);
    placed(&c);
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(5)
        .child(remote_worker("P"))
        .child(remote_worker("T").restart(Restart::Transient));
    let s = sup::start(&c.a, spec).await.unwrap();
    let p = running(&c.a, s, "P").await;
    let t = running(&c.a, s, "T").await;
    assert_eq!((p.node(), t.node()), (c.b.node(), c.b.node()));
    c.cut();
    wait_for("both restarted", DEADLINE, || async {
        let p2 = pid_of(&c.a, s, "P").await;
        let t2 = pid_of(&c.a, s, "T").await;
        p2.is_some_and(|p| p.node() == c.a.node()) && t2.is_some_and(|t| t.node() == c.a.node())
    })
    .await;
    // The children on b lost their supervisor's link: they died too.
    wait_until("b is empty", DEADLINE, || c.b.process_count() == 0).await;
}

/// remote.nested: a nested supervisor placed on the other node runs its
/// own children there; when it gives up, its parent (across the seam)
/// restarts it fresh, and a cut takes the whole remote subtree down.
#[tokio::test]
async fn a_nested_supervisor_on_the_other_node() {
    let log = Log::new();
    let c = cluster(&log);
    placed(&c);
    let inner = Spec::new("inner", Strategy::OneForOne)
        .intensity(0)
        .child(Child::function("W1", "test.worker", json!("W1")))
        .child(Child::function("W2", "test.worker", json!("W2")));
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(5)
        .child(Child::supervisor("inner", inner).placement(Placement::LeastLoaded));
    let r = sup::start(&c.a, root).await.unwrap();
    let i = running(&c.a, r, "inner").await;
    assert_eq!(i.node(), c.b.node());
    let w1 = running(&c.a, i, "W1").await;
    assert_eq!(w1.node(), c.b.node(), "its children run beside it");
    wait_until("both ran", DEADLINE, || log.len() == 2).await;
    log.take();
    crash_child(&c.a, w1).await;
    wait_for("inner restarted fresh", DEADLINE, || async {
        pid_of(&c.a, r, "inner").await.is_some_and(|p| p != i)
    })
    .await;
    wait_until("its workers ran", DEADLINE, || log.len() == 3).await;
    assert_eq!(log.take(), ["stopped W2", "started W1", "started W2"]);
    c.cut();
    wait_until("the remote subtree is gone", DEADLINE, || {
        c.b.process_count() == 0
    })
    .await;
}

/// diff.remote-nested-start: a nested supervisor started on another node
/// whose own start fails is seen by its parent as a child that started and
/// then exited (not as a start failure): here the parent's start succeeds
/// and the parent then gives up.
#[tokio::test]
async fn a_remote_nested_supervisor_start_failure_is_an_early_exit() {
    let log = Log::new();
    let c = cluster(&log);
    placed(&c);
    let inner = Spec::new("inner", Strategy::OneForOne).child(Child::function(
        "W",
        "no.such.function",
        json!(null),
    ));
    let root = Spec::new("root", Strategy::OneForOne)
        .intensity(0)
        .child(Child::supervisor("inner", inner).placement(Placement::LeastLoaded));
    let mut events = c.a.events();
    let r = sup::start(&c.a, root).await.expect("the root starts");
    loop {
        match tokio::time::timeout(DEADLINE, events.recv()).await {
            Ok(Ok(supervisor::RuntimeEvent::SupervisorGaveUp { supervisor, .. }))
                if supervisor == r =>
            {
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("the root did not give up: {other:?}"),
        }
    }
    wait_until("the root is gone", DEADLINE, || !c.a.is_alive(r)).await;
}

/// remote.named-send: a message to a name registered on the other node
/// (`{Name, Node} ! Msg`) reaches its process; a name nobody holds there
/// is dropped silently (only a local unregistered name is an error).
#[tokio::test]
async fn sends_to_a_name_on_the_other_node() {
    let log = Log::new();
    let c = cluster(&log);
    let b = c.b.clone();
    with_ctx(&c.a, move |mut ctx| async move {
        let fwd = forwarder(&b, ctx.pid());
        b.register("fwd", fwd).unwrap();
        let rt = ctx.runtime().clone();
        rt.send_to_name_on(b.node(), "nobody", Some(ctx.pid()), Message::new(0u32))
            .unwrap();
        rt.send_to_name_on(b.node(), "fwd", Some(ctx.pid()), Message::new(1u32))
            .unwrap();
        let got: u32 = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        assert_eq!(got, 1);
    })
    .await;
}

/// remote.nested-function: a nested supervisor is placed on another
/// node by spawning the supervisor function there, so a node that did not
/// register it (`register_supervisor_function`) refuses it, and the start
/// fails naming the missing function. The same tree starts when the
/// function is registered (see `a_nested_supervisor_on_the_other_node`).
#[tokio::test]
async fn a_nested_supervisor_needs_the_supervisor_function_on_its_node() {
    let log = Log::new();
    let c = Cluster::bare(functions(&log), functions(&log));
    placed(&c);
    let inner = Spec::new("inner", Strategy::OneForOne).child(Child::function(
        "W",
        "test.worker",
        json!("W"),
    ));
    let root = Spec::new("root", Strategy::OneForOne)
        .child(Child::supervisor("inner", inner).placement(Placement::LeastLoaded));
    let err = sup::start(&c.a, root).await.unwrap_err();
    let Error::Start(text) = &err else {
        panic!("expected a start error, got {err:?}")
    };
    assert!(
        text.starts_with("failed_to_start_child inner:")
            && text.contains("no function \"supervisor\" is registered"),
        "{text}"
    );
    assert_eq!(c.b.process_count(), 0, "nothing runs on the other node");
    assert!(log.take().is_empty());
}

/// remote.install-once: a runtime takes one router and one placer, when
/// its node starts; a second of either is refused, with an error that says
/// which.
#[tokio::test]
async fn a_second_router_or_placer_is_refused() {
    let log = Log::new();
    let c = cluster(&log);
    placed(&c);
    let again = Arc::new(TwoNodePlacer {
        local: c.a.node(),
        remote: c.b.node(),
    });
    let err = c.a.set_placer(again).unwrap_err();
    assert!(matches!(err, Error::PlacerAlreadySet), "{err:?}");
    assert!(err.to_string().starts_with("a placer is already installed"));
    let other = Cluster::new(functions(&log), functions(&log));
    let err = c.a.set_router(other.router_of_a()).unwrap_err();
    assert!(matches!(err, Error::RouterAlreadySet), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("a remote router is already installed")
    );
}
