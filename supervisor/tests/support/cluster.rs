//! Two runtimes ("nodes") in one test, joined by an in-memory
//! [`RemoteRouter`]: every frame is encoded with `pool_proto::Codec<Msg>`
//! into bytes, carried over an ordered channel, decoded on the other side
//! and applied with `Runtime::handle_remote` (or `handle_spawn` /
//! `SpawnReply::complete` for spawns). Frames to one node keep their order.
//! [`Cluster::cut`] breaks the connection: frames in flight are lost, both
//! sides stop routing, and each side calls `node_down` for the other, so
//! links and monitors across fire `noconnection`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::codec::decode_exact;
use pool_proto::{Codec, Msg, NodeId, Placement, RemoteError, Request, Response, SpawnRequest};
use supervisor::remote::{Placer, Reach, RemoteRouter, SpawnReply};
use supervisor::{Functions, Runtime};
use tokio::sync::mpsc;

/// The state both directions share: whether the connection is up.
#[derive(Debug)]
struct Wire {
    up: AtomicBool,
}

/// One node's router: carries its frames to the peer.
pub(crate) struct MemRouter {
    /// This node.
    node: NodeId,
    /// The only other node.
    peer: NodeId,
    /// Encoded frames to the peer, in order; the peer's pump applies them.
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Shared with the peer's router: the connection is up.
    wire: Arc<Wire>,
    /// Spawn requests of this node waiting for the peer's answer, by
    /// request id. Dropped (answered "connection lost") by a cut.
    pending: Mutex<HashMap<u64, SpawnReply>>,
    /// Request ids.
    next_id: AtomicU64,
    /// Frames sent so far (to show that traffic did cross the seam).
    sent: AtomicUsize,
}

impl std::fmt::Debug for MemRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemRouter")
            .field("node", &self.node)
            .finish()
    }
}

impl MemRouter {
    /// Encodes `frame` as the codec does on a socket and queues it.
    fn push(&self, frame: &Msg) {
        if !self.wire.up.load(Ordering::SeqCst) {
            return;
        }
        let codec = Codec::<Msg>::new();
        let mut buf = Default::default();
        codec
            .encode_into(frame, &mut buf)
            .expect("every frame encodes");
        self.sent.fetch_add(1, Ordering::SeqCst);
        let bytes: &[u8] = &buf;
        let _ = self.tx.send(bytes.to_vec());
    }
}

impl RemoteRouter for MemRouter {
    fn send_frame(&self, node: NodeId, frame: Msg) {
        // A node this router does not know gets nothing.
        if node == self.peer {
            self.push(&frame);
        }
    }

    fn reach(&self, node: NodeId) -> Reach {
        if node != self.peer {
            Reach::Unknown
        } else if self.wire.up.load(Ordering::SeqCst) {
            Reach::Up
        } else {
            Reach::Down
        }
    }

    fn spawn(&self, node: NodeId, req: SpawnRequest, reply: SpawnReply) {
        if node != self.peer || !self.wire.up.load(Ordering::SeqCst) {
            // Dropping the reply answers "connection lost".
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.pending.lock().unwrap().insert(id, reply);
        self.push(&Msg::Request {
            id,
            body: Request::Spawn(req),
        });
    }
}

/// Decodes one frame as `Codec<Msg>` would: the 4-byte big-endian length,
/// then exactly that many bytes of MessagePack.
fn decode(bytes: &[u8]) -> Msg {
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len() - 4, "one whole frame");
    decode_exact(&bytes[4..]).expect("every frame decodes")
}

/// Applies the frames arriving at `rt`, in order, while the wire is up.
async fn pump(rt: Runtime, router: Arc<MemRouter>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(bytes) = rx.recv().await {
        if !router.wire.up.load(Ordering::SeqCst) {
            // In flight when the connection broke: lost.
            continue;
        }
        match decode(&bytes) {
            Msg::Request {
                id,
                body: Request::Spawn(req),
            } => match rt.handle_spawn(req) {
                Ok((pid, gate)) => {
                    // The answer is queued before the new process may send
                    // anything: open the gate only after.
                    router.push(&Msg::Response {
                        id,
                        body: Response::Spawned(pid),
                    });
                    drop(gate);
                }
                Err(e) => router.push(&Msg::Response {
                    id,
                    body: Response::Error(e),
                }),
            },
            Msg::Response { id, body } => {
                let reply = router.pending.lock().unwrap().remove(&id);
                if let Some(reply) = reply {
                    match body {
                        Response::Spawned(pid) => reply.complete(Ok(pid)),
                        Response::Error(e) => reply.complete(Err(e)),
                        other => panic!("unexpected answer to a spawn: {other:?}"),
                    }
                }
            }
            frame => {
                if let Err(other) = rt.handle_remote(frame) {
                    panic!("a frame the runtime does not take: {other:?}");
                }
            }
        }
    }
}

/// Two nodes, `a` and `b`, joined in memory.
#[derive(Clone, Debug)]
pub(crate) struct Cluster {
    pub(crate) a: Runtime,
    pub(crate) b: Runtime,
    ra: Arc<MemRouter>,
    rb: Arc<MemRouter>,
    wire: Arc<Wire>,
}

impl Cluster {
    /// Two nodes with these functions registered, and the supervisor
    /// function, as every node of a pool has it (nested supervisors are
    /// placed across).
    pub(crate) fn new(mut fa: Functions, mut fb: Functions) -> Self {
        supervisor::register_supervisor_function(&mut fa);
        supervisor::register_supervisor_function(&mut fb);
        Self::bare(fa, fb)
    }

    /// Two nodes with exactly these functions registered (no supervisor
    /// function unless it is among them).
    pub(crate) fn bare(fa: Functions, fb: Functions) -> Self {
        let a = Runtime::builder(NodeId::random()).functions(fa).build();
        let b = Runtime::builder(NodeId::random()).functions(fb).build();
        let wire = Arc::new(Wire {
            up: AtomicBool::new(true),
        });
        let (to_b, from_a) = mpsc::unbounded_channel();
        let (to_a, from_b) = mpsc::unbounded_channel();
        let router = |node, peer, tx| {
            Arc::new(MemRouter {
                node,
                peer,
                tx,
                wire: wire.clone(),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                sent: AtomicUsize::new(0),
            })
        };
        let ra = router(a.node(), b.node(), to_b);
        let rb = router(b.node(), a.node(), to_a);
        a.set_router(ra.clone()).unwrap();
        b.set_router(rb.clone()).unwrap();
        tokio::spawn(pump(a.clone(), ra.clone(), from_b));
        tokio::spawn(pump(b.clone(), rb.clone(), from_a));
        Cluster { a, b, ra, rb, wire }
    }

    /// Breaks the connection: frames in flight are lost, pending spawns
    /// fail, and each node declares the other down (`noconnection`).
    pub(crate) fn cut(&self) {
        self.wire.up.store(false, Ordering::SeqCst);
        let dropped_a: Vec<_> = self.ra.pending.lock().unwrap().drain().collect();
        let dropped_b: Vec<_> = self.rb.pending.lock().unwrap().drain().collect();
        drop((dropped_a, dropped_b));
        self.a.node_down(self.b.node());
        self.b.node_down(self.a.node());
    }

    /// Node `a`'s router, as a runtime takes it.
    pub(crate) fn router_of_a(&self) -> Arc<dyn RemoteRouter> {
        self.ra.clone()
    }

    /// Frames sent so far, both directions.
    pub(crate) fn frames(&self) -> usize {
        self.ra.sent.load(Ordering::SeqCst) + self.rb.sent.load(Ordering::SeqCst)
    }
}

/// A placer for node `local` that places every child on `remote` unless
/// `remote` is excluded (the child was just lost with it), then on `local`.
#[derive(Debug)]
pub(crate) struct TwoNodePlacer {
    pub(crate) local: NodeId,
    pub(crate) remote: NodeId,
}

impl Placer for TwoNodePlacer {
    fn place(
        &self,
        _placement: &Placement,
        exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let node = if exclude.contains(&self.remote) {
            self.local
        } else {
            self.remote
        };
        async move { Ok(node) }.boxed()
    }
}
