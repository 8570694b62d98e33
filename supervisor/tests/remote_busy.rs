//! Sender backpressure across the remote seam: a process whose send found
//! the queue towards a node busy (`note_busy`) waits at its next
//! `yield_now` until the router says that queue drained; other processes
//! are not held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{Msg, NodeId, Pid, SpawnRequest};
use supervisor::Runtime;
use supervisor::remote::{Reach, RemoteRouter, SpawnReply, note_busy};
use tokio::sync::Notify;

/// A router whose queue towards its one peer is busy until `open`.
struct BusyRouter {
    peer: NodeId,
    frames: AtomicUsize,
    busy: AtomicBool,
    gate: Arc<Notify>,
}

impl RemoteRouter for BusyRouter {
    fn send_frame(&self, node: NodeId, _frame: Msg) {
        if node == self.peer {
            self.frames.fetch_add(1, Ordering::SeqCst);
            if self.busy.load(Ordering::SeqCst) {
                note_busy(node);
            }
        }
    }

    fn reach(&self, _node: NodeId) -> Reach {
        Reach::Up
    }

    fn spawn(&self, _node: NodeId, _req: SpawnRequest, _reply: SpawnReply) {}

    fn drained(&self, node: NodeId) -> Option<BoxFuture<'static, ()>> {
        if node != self.peer || !self.busy.load(Ordering::SeqCst) {
            return None;
        }
        let gate = self.gate.clone();
        Some(async move { gate.notified().await }.boxed())
    }
}

#[tokio::test]
async fn a_sender_to_a_busy_node_waits_at_its_yield_until_drained() {
    let peer = NodeId::from_u64(2);
    let router = Arc::new(BusyRouter {
        peer,
        frames: AtomicUsize::new(0),
        busy: AtomicBool::new(true),
        gate: Arc::new(Notify::new()),
    });
    let rt = Runtime::new(NodeId::from_u64(1));
    rt.set_router(router.clone()).unwrap();
    let remote = Pid::new(peer, 7);

    let passed = Arc::new(AtomicBool::new(false));
    let p = passed.clone();
    let sender = rt.spawn(move |ctx| async move {
        for _ in 0..10 {
            ctx.send(remote, 42u64);
        }
        ctx.yield_now().await;
        p.store(true, Ordering::SeqCst);
    });
    // Another process that yields without sending anywhere is not held.
    let free = rt.spawn(|ctx| async move {
        for _ in 0..100 {
            ctx.yield_now().await;
        }
    });
    tokio::time::timeout(Duration::from_secs(5), rt.wait(free))
        .await
        .expect("a process that sent nothing to the busy node runs on");

    assert_eq!(router.frames.load(Ordering::SeqCst), 10);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        !passed.load(Ordering::SeqCst),
        "the sender went past its yield while the queue was busy"
    );

    router.busy.store(false, Ordering::SeqCst);
    router.gate.notify_waiters();
    tokio::time::timeout(Duration::from_secs(5), rt.wait(sender))
        .await
        .expect("the sender continues once the queue drained");
    assert!(passed.load(Ordering::SeqCst));
}
