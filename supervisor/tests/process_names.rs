//! Local names (docs/semantics.md "Local names"): register, look up, send by
//! name, refusals, and release on exit.

mod support;

use pool_proto::ExitReason;
use supervisor::{Error, SpawnOpts};
use support::*;

/// A process that forwards every message it receives to `to`.
fn forwarder(rt: &supervisor::Runtime, to: supervisor::Pid) -> supervisor::Pid {
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

/// name.register: a registered name resolves to its process, and a message
/// sent to the name reaches it.
#[tokio::test]
async fn a_registered_name_resolves_and_receives() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |mut ctx| async move {
        let p = forwarder(&rt2, ctx.pid());
        rt2.register("fwd", p).unwrap();
        assert_eq!(rt2.whereis("fwd"), Some(p));
        assert_eq!(rt2.registered(), vec![("fwd".to_owned(), p)]);
        ctx.send_named("fwd", 1u32).unwrap();
        rt2.send_named("fwd", 2u32).unwrap();
        rt2.send_to_name_on(rt2.node(), "fwd", None, supervisor::Message::new(3u32))
            .unwrap();
        for want in 1..=3u32 {
            let got: u32 = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
            assert_eq!(got, want);
        }
    })
    .await;
}

/// name.unregistered-send: sending to a name nobody holds is an error (OTP
/// `badarg`), unlike sending to a dead pid.
#[tokio::test]
async fn sending_to_an_unregistered_name_is_an_error() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |ctx| async move {
        assert!(matches!(
            ctx.send_named("nobody", 1u32),
            Err(Error::NotRegistered { name }) if name == "nobody"
        ));
        assert!(matches!(
            rt2.send_named("nobody", 1u32),
            Err(Error::NotRegistered { .. })
        ));
        assert!(matches!(
            rt2.send_to_name_on(rt2.node(), "nobody", None, supervisor::Message::new(1u32)),
            Err(Error::NotRegistered { .. })
        ));
    })
    .await;
}

/// name.unique: a name has one holder and a process has at most one name;
/// a dead pid cannot take a name.
#[tokio::test]
async fn names_are_unique_and_a_process_has_at_most_one() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |mut ctx| async move {
        let a = forwarder(&rt2, ctx.pid());
        let b = forwarder(&rt2, ctx.pid());
        rt2.register("a", a).unwrap();
        match rt2.register("a", b) {
            Err(Error::NameTaken { name, holder }) => assert_eq!((name.as_str(), holder), ("a", a)),
            other => panic!("expected NameTaken, got {other:?}"),
        }
        match rt2.register("other", a) {
            Err(Error::AlreadyNamed { pid, name }) => assert_eq!((pid, name.as_str()), (a, "a")),
            other => panic!("expected AlreadyNamed, got {other:?}"),
        }
        let dead = ctx.spawn(|_c| async {});
        await_exit(&mut ctx, dead).await;
        assert!(matches!(rt2.register("d", dead), Err(Error::NoProc { pid }) if pid == dead));
        assert_eq!(rt2.whereis("d"), None);
    })
    .await;
}

/// name.released: a process's name is released when it exits, and can be
/// taken again.
#[tokio::test]
async fn a_name_is_released_when_its_process_exits() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |mut ctx| async move {
        let p = ctx.spawn_opts(SpawnOpts::new().name("svc"), |mut c| async move {
            c.recv().await;
            ExitReason::Error("bye".into())
        });
        assert_eq!(rt2.whereis("svc"), Some(p));
        ctx.send(p, ());
        await_exit(&mut ctx, p).await;
        assert_eq!(rt2.whereis("svc"), None);
        let q = forwarder(&rt2, ctx.pid());
        rt2.register("svc", q).unwrap();
        assert_eq!(rt2.whereis("svc"), Some(q));
    })
    .await;
}

/// name.unregister: `unregister` removes the name (the process lives on and
/// may take a name again); unregistering an unknown name is an error.
#[tokio::test]
async fn unregister_removes_the_name() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |ctx| async move {
        let p = forwarder(&rt2, ctx.pid());
        rt2.register("x", p).unwrap();
        rt2.unregister("x").unwrap();
        assert_eq!(rt2.whereis("x"), None);
        assert!(rt2.is_alive(p));
        rt2.register("y", p).unwrap();
        assert!(matches!(
            rt2.unregister("x"),
            Err(Error::NotRegistered { .. })
        ));
    })
    .await;
}

/// name.self-register: a process can register itself from inside
/// (`Ctx::register`).
#[tokio::test]
async fn a_process_registers_itself() {
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, move |ctx| async move {
        ctx.register("me").unwrap();
        assert_eq!(rt2.whereis("me"), Some(ctx.pid()));
    })
    .await;
}
