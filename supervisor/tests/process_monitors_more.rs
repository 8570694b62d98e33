//! Monitors by registered name and node monitors (docs/semantics.md
//! `mon.by-name`, `remote.nodedown`): OTP's `monitor(process, Name)` and
//! `monitor_node(Node, true)`.

mod support;

use pool_proto::NodeId;
use supervisor::{Ctx, Envelope, ExitReason, Functions, NodeDown};
use support::cluster::Cluster;
use support::*;

/// Takes the `NodeDown` notices already queued for `ctx`.
fn queued_nodedowns(ctx: &mut Ctx) -> Vec<NodeId> {
    let mut out = Vec::new();
    while let Some(env) = ctx.try_recv_match(
        |e| matches!(e, Envelope::Message { from: None, msg } if msg.is::<NodeDown>()),
    ) {
        out.push(env.take::<NodeDown>().unwrap().node);
    }
    out
}

/// mon.by-name: a monitor set by a registered local name watches the
/// process holding the name now; its `Down` carries that pid, the exit
/// reason and the name (OTP's `{Name, Node}` object). It stays on that
/// process: a later holder of the name is not watched.
#[tokio::test]
async fn a_monitor_by_name_watches_the_holder_and_names_it() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let holder = ctx.spawn(|mut c: Ctx| async move {
            c.recv().await;
            ExitReason::Error("bye".into())
        });
        ctx.runtime().register("db", holder).unwrap();
        let mref = ctx.monitor_name("db");
        ctx.send(holder, "go");
        let d = ctx.wait_down(mref, Some(DEADLINE)).await.unwrap();
        assert_eq!(d.pid, holder);
        assert_eq!(d.reason, ExitReason::Error("bye".into()));
        assert_eq!(d.name.as_deref(), Some("db"));

        // A plain monitor names nothing.
        let other = ctx.spawn(|mut c: Ctx| async move {
            c.recv().await;
        });
        let plain = ctx.monitor(other);
        ctx.send(other, "go");
        assert_eq!(
            ctx.wait_down(plain, Some(DEADLINE)).await.unwrap().name,
            None
        );
    })
    .await;
}

/// mon.by-name-noproc: a monitor by a name nobody holds gives `Down` with
/// `noproc` at once, already queued when the call returns, naming the name;
/// so does a name whose holder is already gone.
#[tokio::test]
async fn a_monitor_by_an_unregistered_name_is_noproc_at_once() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let mref = ctx.monitor_name("nobody");
        let d = match ctx.try_recv_match(|e| matches!(e, Envelope::Down(_))) {
            Some(Envelope::Down(d)) => d,
            other => panic!("expected a Down already queued, got {other:?}"),
        };
        assert_eq!(d.mref, mref);
        assert_eq!(d.reason, ExitReason::NoProc);
        assert_eq!(d.name.as_deref(), Some("nobody"));
        assert_eq!(d.pid, ctx.runtime().system_pid(), "no process was watched");
    })
    .await;
}

/// mon.by-name-demonitor: `demonitor` of a monitor set by name removes it:
/// the holder's end sends no `Down`.
#[tokio::test]
async fn a_monitor_by_name_can_be_removed() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let holder = ctx.spawn(|mut c: Ctx| async move {
            c.recv().await;
        });
        ctx.runtime().register("svc", holder).unwrap();
        let by_name = ctx.monitor_name("svc");
        let by_pid = ctx.monitor(holder);
        ctx.demonitor(by_name, false);
        ctx.send(holder, "go");
        let d = ctx.wait_down(by_pid, Some(DEADLINE)).await.unwrap();
        assert_eq!(d.name, None);
        assert!(
            ctx.try_recv_match(|e| matches!(e, Envelope::Down(_)))
                .is_none(),
            "the removed monitor sent nothing"
        );
    })
    .await;
}

/// remote.nodedown: `monitor_node` over the in-memory seam. Each call is
/// one `NodeDown` message when the other node goes down (two calls, two
/// notices; `demonitor_node` takes one back); after the loss, a monitor on
/// the lost node, or on a node never seen, gives its notice at once. The
/// node's own id is never down.
#[tokio::test]
async fn monitor_node_delivers_nodedown_when_the_node_goes_down() {
    let c = Cluster::new(Functions::new(), Functions::new());
    let (b, c2) = (c.b.node(), c.clone());
    with_ctx(&c.a, move |mut ctx| async move {
        ctx.monitor_node(b);
        ctx.monitor_node(b);
        ctx.monitor_node(b);
        ctx.demonitor_node(b);
        ctx.monitor_node(ctx.runtime().node());
        // A pid on b is monitored too: the notices do not replace the Down.
        let on_b = c2.b.spawn(|mut c: Ctx| async move {
            c.recv().await;
        });
        let mref = ctx.monitor(on_b);
        assert_eq!(queued_nodedowns(&mut ctx), vec![], "b is up");

        c2.cut();
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::NoConnection);
        let got = ctx
            .recv_match(
                |e| matches!(e, Envelope::Message { msg, .. } if msg.is::<NodeDown>()),
                Some(DEADLINE),
            )
            .await
            .unwrap();
        let mut notices = vec![got.take::<NodeDown>().unwrap().node];
        notices.extend(queued_nodedowns(&mut ctx));
        assert_eq!(notices, vec![b, b], "one per monitor left");

        // b is down now, and a node never seen is not up: at once.
        ctx.monitor_node(b);
        let stranger = NodeId::random();
        ctx.monitor_node(stranger);
        assert_eq!(queued_nodedowns(&mut ctx), vec![b, stranger]);
    })
    .await;
}
