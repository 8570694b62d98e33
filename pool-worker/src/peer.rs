//! Connections to other nodes, opened on first use.
//!
//! One writer per direction (docs/protocol.md): frames for a worker go on
//! the connection this node opened to it; frames for a hidden node go on the
//! connection it opened to us. Every connection is read. When any connection
//! with a peer closes, both are closed and the runtime fires `noconnection`
//! on every link and monitor towards that peer; the next frame reconnects.
//!
//! Every connection runs TLS first when the node has `--tls-*` set (see
//! `pool_proto::tls`), then the cookie handshake, both within the handshake
//! timeout; connections are dialled through the node's transport
//! (`pool_proto::transport`: TCP, or memory in tests). A peer that stops
//! reading is dropped once its queue holds `--peer-queue` bytes (see
//! `conn`); frames for it are then dropped for [`OVERFLOW_BACKOFF`] instead
//! of reconnecting at once to a peer that is still stalled.
//!
//! - **Owns** [`Peers`]: the table of connections, our requests to peers
//!   (spawns, pings) waiting for answers, the overflow back-off, and the
//!   rate limit of the warnings about bad frames.
//! - **Calls** `conn` (the connections), `members` (read: who may be
//!   dialled, who was declared down), `peer_guard` (what a peer may not
//!   send), `local` (tree views) and the process runtime (frames from
//!   peers are applied to it; a lost peer fires `noconnection` through it).
//! - **Start-up**: made by `node.rs` before the router that the runtime
//!   calls; connections are opened on first use and accepted by the node's
//!   listener. **Shutdown**: `node.rs` flushes and syncs the queues
//!   ([`Peers::flush`], [`Peers::sync`]); then the node token closes every
//!   connection (each one's token is a child of it), and their tasks end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_proto::handshake::{self, HandshakeConfig};
use pool_proto::listener::Accepted;
use pool_proto::tls::{self, Stream};
use pool_proto::transport::{BoxIo, Transport};
use pool_proto::{
    ErrorCode, Identity, Msg, NodeId, NodeKind, RemoteError, ReqId, Request, Response,
};
use supervisor::Runtime;
use supervisor::remote::SpawnReply;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::conn::{self, CloseReason, ConnTx, Traffic};
use crate::master_link::MasterHandle;
use crate::members::{self, SharedMembers};
use crate::peer_guard::{self, Noted};
use crate::reach::{self, DialFailures};
use crate::stalls::Stalls;
use crate::tasks::Tasks;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long frames for a worker that connected to this node before its
/// NodeUp arrived wait for that NodeUp (it is on its way from the master:
/// the peer joined a moment ago) before they are dropped.
const UNKNOWN_PEER_WAIT: Duration = Duration::from_secs(3);

/// After a peer's queue overflowed, frames for it are dropped (not queued
/// for a new connection) for this long: the peer most likely still does
/// not read, and reconnecting at once would only fill another queue.
pub(crate) const OVERFLOW_BACKOFF: Duration = Duration::from_secs(1);

/// One peer's connections.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Where frames for it go (possibly still connecting).
    out: Option<ConnTx>,
    /// Identifies this incarnation of the entry, so a late close of an old
    /// connection does not tear down a new one.
    generation: u64,
    /// Connections it opened to us.
    inbound: Vec<ConnTx>,
}

/// A request to a peer waiting for its response.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A spawn: the runtime's reply slot, completed on the reader task.
    Spawn(SpawnReply, NodeId),
    /// A ping: answered once the peer has read (and applied) every frame
    /// this node sent before it on the same connection.
    Ping(tokio::sync::oneshot::Sender<()>, NodeId),
    /// `MasterSeen`, asked when this node's lease ran out: the answer's
    /// `heard_ms_ago` goes to the lease task.
    MasterSeen(mpsc::UnboundedSender<Option<u64>>, NodeId),
}

impl Pending {
    /// The node the request went to.
    fn node(&self) -> NodeId {
        match self {
            Pending::Spawn(_, n) | Pending::Ping(_, n) | Pending::MasterSeen(_, n) => *n,
        }
    }
}

/// What [`Peers`] is made of (all given by `node.rs`).
pub(crate) struct PeerParts {
    /// Who we are in handshakes (`identity.node` is this incarnation).
    pub(crate) identity: Identity,
    /// The node's settings.
    pub(crate) config: Arc<NodeConfig>,
    /// The process runtime.
    pub(crate) rt: Runtime,
    /// The membership (read).
    pub(crate) members: SharedMembers,
    /// Where connection tasks run.
    pub(crate) tasks: Tasks,
    /// Where a connection from another worker is read, when the node runs
    /// its processes on a runtime of their own: the process runtime (see
    /// [`Peers::accept`]). `None`: on `tasks`.
    pub(crate) read_on: Option<ReadOn>,
    /// How to dial peers.
    pub(crate) transport: Arc<dyn Transport>,
    /// Traffic counters of every peer connection.
    pub(crate) traffic: Arc<Traffic>,
    /// Set when a graceful stop begins.
    pub(crate) stopping: Arc<AtomicBool>,
    /// The master link (read: how long ago the master acknowledged us,
    /// for peers asking `MasterSeen`).
    pub(crate) master: MasterHandle,
    /// Peers this node could not connect to (shared with the master link,
    /// which reports them).
    pub(crate) dial_failures: Arc<DialFailures>,
}

/// The peer part: every connection with another node (see the module
/// docs).
pub(crate) struct Peers {
    /// This incarnation (a peer may not claim it).
    id: NodeId,
    /// Who we are in handshakes.
    identity: Identity,
    /// The node's settings (queue bound, frame limit, TLS, cookie,
    /// handshake timeout, kind).
    config: Arc<NodeConfig>,
    /// The process runtime: peers' frames are applied to it, and a lost
    /// peer fires `noconnection` through it.
    rt: Runtime,
    /// The membership (read): who may be dialled, who was declared down.
    members: SharedMembers,
    /// Where the connect and connection tasks run (tracked); every
    /// connection's token is a child of its token.
    tasks: Tasks,
    /// Where connections from other workers run: the process runtime of a
    /// node that has one (same tracker and token as `tasks`).
    read_on: Option<ReadOn>,
    /// How to dial peers.
    transport: Arc<dyn Transport>,
    /// Frames and bytes of every peer connection, for the load report.
    traffic: Arc<Traffic>,
    /// Set when a graceful stop begins: spawns from peers are refused.
    stopping: Arc<AtomicBool>,
    /// The master link: answers `MasterSeen` from its lease.
    master: MasterHandle,
    /// The last failed dial of each peer not reached since: written when a
    /// dial fails or succeeds, read for the errors of requests that waited
    /// on it (and by the master link for the load report). No task.
    dial_failures: Arc<DialFailures>,
    /// The connections, per peer. Closed on `peer_lost`.
    map: Mutex<HashMap<NodeId, Peer>>,
    /// Our requests to peers waiting for an answer; failed ("connection
    /// lost") when their peer is lost.
    pending: Mutex<HashMap<ReqId, Pending>>,
    /// Peers whose queue overflowed, until when frames for them are
    /// dropped (see [`OVERFLOW_BACKOFF`]). Taken after `map`, never before.
    backoff: Mutex<HashMap<NodeId, Instant>>,
    /// Rate limit of the warnings about frames peers may not send.
    noted: Noted,
    /// Source of connection generations (see `Peer::generation`).
    generations: AtomicU64,
    /// Ids of our requests to peers.
    next_req: AtomicU64,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("id", &self.id)
            .field("peers", &lock(&self.map).len())
            .finish_non_exhaustive()
    }
}

/// Where the connections other workers open to a node are read.
#[derive(Debug, Clone)]
pub(crate) struct ReadOn {
    /// The process runtime (same tracker and token as the node's tasks).
    pub(crate) tasks: Tasks,
    /// Where they are watched from while that runtime stalls.
    pub(crate) stalls: Arc<Stalls>,
}

/// `conn` with its stream registered with the reactor of `rt` instead
/// (`Stream::rebind`), the bytes it buffered kept.
fn move_to(
    conn: handshake::Connection<Stream<BoxIo>>,
    rt: &tokio::runtime::Handle,
) -> std::io::Result<handshake::Connection<Stream<BoxIo>>> {
    let mut parts = conn.into_parts();
    // A stand-in while the stream is moved: it is never read.
    let idle: BoxIo = Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
    let io = std::mem::replace(&mut parts.io, Stream::Plain(idle));
    parts.io = io.rebind(rt)?;
    Ok(tokio_util::codec::Framed::from_parts(parts))
}

/// Answers a request whose connection is gone: a spawn with `dial` (why
/// the last dial of its node failed) when there is one, else "connection
/// lost". Both are transient (`UnknownNode`): a placed spawn is tried on
/// another node, a child waits pending. The Pool API puts the node's name
/// in front.
fn answer_lost(p: Pending, dial: Option<&str>) {
    match (p, dial) {
        (Pending::Spawn(reply, _), Some(cause)) => {
            reply.complete(Err(RemoteError::new(ErrorCode::UnknownNode, cause)));
        }
        // Dropping a SpawnReply answers "connection lost".
        (other, _) => drop(other),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peers {
    /// The peer part of a node made of `parts`; no connection yet.
    pub(crate) fn new(parts: PeerParts) -> Self {
        let PeerParts {
            identity,
            config,
            rt,
            members,
            tasks,
            read_on,
            transport,
            traffic,
            stopping,
            master,
            dial_failures,
        } = parts;
        Peers {
            id: identity.node,
            identity,
            config,
            rt,
            members,
            tasks,
            read_on,
            transport,
            traffic,
            stopping,
            master,
            dial_failures,
            map: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
            noted: Noted::default(),
            generations: AtomicU64::new(0),
            next_req: AtomicU64::new(1),
        }
    }

    fn next_req(&self) -> ReqId {
        self.next_req.fetch_add(1, Ordering::Relaxed)
    }

    fn handshake_config(&self) -> HandshakeConfig {
        HandshakeConfig {
            timeout: self.config.handshake_timeout,
            max_frame_len: self.config.max_frame_len,
        }
    }

    /// Queues `frame` for `node`, opening a connection if there is none.
    /// Frames for a node that is not a live member are dropped (the runtime
    /// already answered `noconnection`/`noproc` for links and monitors).
    pub(crate) fn send_frame(self: &Arc<Self>, node: NodeId, frame: Msg) {
        self.queue_frame(node, frame);
    }

    /// [`send_frame`](Self::send_frame), saying whether the frame was
    /// queued: a request whose frame was dropped will never be answered.
    fn queue_frame(self: &Arc<Self>, node: NodeId, frame: Msg) -> bool {
        let mut map = lock(&self.map);
        // Send under the lock: cheaper than cloning the sender per frame,
        // and the queue push never blocks.
        let frame = match map.get(&node).and_then(|p| p.out.as_ref()) {
            Some(tx) => match tx.try_send(frame) {
                Ok(()) => {
                    if tx.is_busy() {
                        supervisor::remote::note_busy(node);
                    }
                    return true;
                }
                // The peer does not read: back off now, before its close is
                // handled, so that the frames behind this one do not open
                // (and fill) one new connection after another.
                Err(frame) if tx.overflowed() => {
                    lock(&self.backoff).insert(node, Instant::now() + OVERFLOW_BACKOFF);
                    frame
                }
                // Closed under us: reconnect below.
                Err(frame) => frame,
            },
            None => frame,
        };
        match self.open(&mut map, node) {
            Some(tx) => tx.try_send(frame).is_ok(),
            None => {
                tracing::debug!(%node, "frame dropped: no route to node");
                false
            }
        }
    }

    /// A wait for the busy queue towards `node` to drain (see
    /// [`supervisor::remote::note_busy`]); `None` when it is not busy.
    pub(crate) fn drained(
        &self,
        node: NodeId,
    ) -> Option<futures_util::future::BoxFuture<'static, ()>> {
        let tx = lock(&self.map).get(&node)?.out.clone()?;
        tx.is_busy()
            .then(|| Box::pin(async move { tx.drained().await }) as _)
    }

    /// Starts connecting to `node`; frames queue meanwhile.
    fn open(self: &Arc<Self>, map: &mut HashMap<NodeId, Peer>, node: NodeId) -> Option<ConnTx> {
        let known = members::read(&self.members).get(node).cloned();
        let info = match known {
            Some(info) if info.kind != NodeKind::Worker || info.addr.is_empty() => {
                // A hidden node is reached only through the connection it
                // opened.
                return None;
            }
            Some(info) => Some(info),
            // A node that connected to us (it passed the handshake) before
            // its NodeUp reached us: it joined a moment ago. What we send
            // it — the answer to its spawn, say — waits for the NodeUp,
            // briefly, instead of being dropped unanswered.
            None if map
                .get(&node)
                .is_some_and(|p| p.inbound.iter().any(|c| !c.is_closed())) =>
            {
                None
            }
            None => return None,
        };
        {
            let mut backoff = lock(&self.backoff);
            match backoff.get(&node) {
                Some(until) if Instant::now() < *until => return None,
                Some(_) => {
                    backoff.remove(&node);
                }
                None => {}
            }
        }
        let (tx, crx) = ConnTx::pending(
            self.config.peer_queue,
            self.config.max_frame_len,
            self.tasks.token(),
        );
        let generation = self.next_generation();
        let entry = map.entry(node).or_insert(Peer {
            out: None,
            generation,
            inbound: Vec::new(),
        });
        entry.out = Some(tx.clone());
        entry.generation = generation;
        let peers = self.clone();
        self.tasks.spawn(async move {
            // A queue that overflows while we connect (the peer accepts
            // but never answers) ends the attempt at once, and its frames
            // with it. So does the node's stop (the queue's token is a
            // child of the node's).
            // The address dialled (none if the NodeUp never came), and
            // the outcome.
            let dial = async {
                let info = match info {
                    Some(info) => info,
                    None => match peers.await_worker(node).await {
                        Some(info) => info,
                        None => return (None, Err(crate::Error::Unreachable { node })),
                    },
                };
                let r = peers.connect(node, &info.addr).await;
                (Some(info.addr), r)
            };
            let connected = tokio::select! {
                r = dial => r,
                _ = crx.closed() => {
                    let why = crx.close_reason();
                    drop(crx);
                    peers.peer_lost(node, Some(generation), &why);
                    return;
                }
            };
            let (addr, connected) = connected;
            match connected {
                Ok(conn) => {
                    peers.dial_failures.clear(node);
                    let (p1, p2) = (peers.clone(), peers.clone());
                    conn::run(
                        &peers.tasks,
                        conn,
                        crx,
                        Some(peers.traffic.clone()),
                        peers.config.max_frame_len,
                        move |msg| p1.on_frame(node, msg),
                        move |why| p2.peer_lost(node, Some(generation), &why),
                    );
                }
                Err(e) => {
                    // Kept for the errors of what waited on this
                    // connection, and for the master (`poolctl nodes`).
                    let cause = match &addr {
                        Some(addr) => reach::describe(addr, &e),
                        None => e.to_string(),
                    };
                    peers.dial_failures.failed(node, cause.clone());
                    crx.close();
                    peers.peer_lost(node, Some(generation), &CloseReason::Error(cause));
                }
            }
        });
        Some(tx)
    }

    /// Waits (up to [`UNKNOWN_PEER_WAIT`]) until `node` is a live worker
    /// with an address in the membership.
    async fn await_worker(&self, node: NodeId) -> Option<pool_proto::NodeInfo> {
        let joins = members::read(&self.members).joins();
        let wait = async {
            loop {
                let joined = joins.notified();
                tokio::pin!(joined);
                joined.as_mut().enable();
                if let Some(info) = members::read(&self.members).get(node) {
                    return (info.kind == NodeKind::Worker && !info.addr.is_empty())
                        .then(|| info.clone());
                }
                joined.await;
            }
        };
        tokio::time::timeout(UNKNOWN_PEER_WAIT, wait)
            .await
            .ok()
            .flatten()
    }

    async fn connect(
        &self,
        node: NodeId,
        addr: &str,
    ) -> Result<handshake::Connection<Stream<BoxIo>>, crate::Error> {
        let io = tokio::time::timeout(CONNECT_TIMEOUT, self.transport.connect(addr))
            .await
            .map_err(|_| crate::Error::Unreachable { node })?
            .map_err(|e| crate::Error::Io {
                what: format!("connecting to node {node} at {addr}"),
                source: e,
            })?;
        let (conn, peer) = tls::connect_handshake(
            self.config.tls.as_ref(),
            io,
            addr,
            &self.identity,
            &self.config.cookie,
            &self.handshake_config(),
        )
        .await?;
        if peer.node != node {
            return Err(pool_proto::Error::Impostor {
                claimed: peer.node,
                why: format!("we connected to {addr} expecting node {node}"),
            }
            .into());
        }
        Ok(conn)
    }

    /// Serves a connection another node opened to us: `conn.slot` is its
    /// slot of `--max-connections`, held until it closes; its handshake
    /// runs in its handshaking slot (`pool_proto::listener`: dropped for a
    /// newer connection when a flood fills them; failures logged
    /// rate-limited there).
    pub(crate) async fn accept(self: &Arc<Self>, conn: Accepted) {
        let Accepted {
            io,
            slot: permit,
            handshake,
            ..
        } = conn;
        let shaken = handshake
            .bound(tls::accept_handshake(
                self.config.tls.as_ref(),
                io,
                &self.identity,
                &self.config.cookie,
                &self.handshake_config(),
            ))
            .await;
        let (conn, peer) = match shaken {
            Some(Ok(x)) => {
                handshake.done();
                x
            }
            Some(Err(e)) => return handshake.failed(&e),
            None => return,
        };
        if peer.node == self.id || peer.kind == NodeKind::Master {
            tracing::warn!(peer = %peer, "refused a connection: a peer cannot be the master or ourselves");
            return;
        }
        if members::read(&self.members).is_dead(peer.node) {
            tracing::warn!(peer = %peer, "refused a connection from a node the master declared down");
            return;
        }
        let (tx, crx) = ConnTx::pending(
            self.config.peer_queue,
            self.config.max_frame_len,
            self.tasks.token(),
        );
        let node = peer.node;
        let generation = {
            let mut map = lock(&self.map);
            let generation = self.next_generation();
            let entry = map.entry(node).or_insert(Peer {
                out: None,
                generation,
                inbound: Vec::new(),
            });
            entry.inbound.retain(|c| !c.is_closed());
            if !entry.inbound.is_empty() {
                // A node writes to us on one connection: a second one is a
                // reconnect before we saw the first close, or someone else
                // with the cookie claiming its id (the close of either
                // fires noconnection on every link with that node).
                tracing::warn!(peer = %peer, open = entry.inbound.len(), "a second connection claims to be this peer while one is open: a reconnect, or an impostor holding the cookie");
            }
            entry.inbound.push(tx.clone());
            if peer.kind == NodeKind::Hidden {
                // We write to a hidden node on its own connection.
                entry.out = Some(tx.clone());
                entry.generation = generation;
            }
            entry.generation
        };
        tracing::debug!(peer = %peer, "peer connected");
        // Another worker writes its processes' messages to ours on this
        // connection: it is read on the process runtime, so a frame wakes
        // its receiver on the thread that read it (one wake-up, not a
        // hand-off from the control thread). A hidden node's (poolctl's)
        // stays on the control thread, which answers it even while every
        // process thread computes without awaiting.
        let (on, conn) = match &self.read_on {
            Some(on) if peer.kind == NodeKind::Worker => match move_to(conn, on.tasks.handle()) {
                Ok(conn) => (
                    conn::RunOn {
                        tasks: &on.tasks,
                        stalls: Some(&on.stalls),
                    },
                    conn,
                ),
                Err(e) => {
                    // The stream is gone with the move: this connection is
                    // lost like any other (the peer dials again).
                    tracing::warn!(peer = %peer, cause = %e, "could not move a peer connection to the process runtime");
                    crx.close();
                    drop(permit);
                    let why =
                        CloseReason::Error(format!("moving it to the process runtime failed: {e}"));
                    self.peer_lost(node, Some(generation), &why);
                    return;
                }
            },
            _ => ((&self.tasks).into(), conn),
        };
        let (p1, p2) = (self.clone(), self.clone());
        conn::run(
            on,
            conn,
            crx,
            Some(self.traffic.clone()),
            self.config.max_frame_len,
            move |msg| p1.on_frame(node, msg),
            move |why| {
                drop(permit);
                p2.peer_lost(node, Some(generation), &why)
            },
        );
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }

    /// A connection with `node` closed (or failed to open), or the master
    /// declared it down (`generation` None): close everything with it and
    /// fire `noconnection` on links and monitors towards it.
    pub(crate) fn peer_lost(
        self: &Arc<Self>,
        node: NodeId,
        generation: Option<u64>,
        why: &CloseReason,
    ) {
        let removed = {
            let mut map = lock(&self.map);
            match map.get(&node) {
                Some(p)
                    if generation.is_none_or(|g| {
                        g == p.generation || p.out.as_ref().is_none_or(|o| o.is_closed())
                    }) =>
                {
                    if matches!(why, CloseReason::Overflow { .. }) {
                        lock(&self.backoff).insert(node, Instant::now() + OVERFLOW_BACKOFF);
                    }
                    map.remove(&node)
                }
                _ => None,
            }
        };
        let Some(peer) = removed else {
            return;
        };
        if let Some(out) = &peer.out {
            out.close();
        }
        for c in &peer.inbound {
            c.close();
        }
        if !matches!(why, CloseReason::Local) {
            let hidden = members::read(&self.members)
                .get(node)
                .is_none_or(|i| i.kind == NodeKind::Hidden);
            if matches!(why, CloseReason::Overflow { .. }) {
                tracing::warn!(%node, hidden, reason = %why, "dropped the connection to a peer that does not read; its links and monitors fire noconnection");
            } else if hidden {
                tracing::debug!(%node, reason = %why, "a client disconnected");
            } else {
                tracing::info!(%node, reason = %why, "lost the connection to a peer");
            }
        }
        self.fail_pending(node);
        self.rt.node_down(node);
    }

    /// Fails our requests waiting on `node`: a spawn with the cause of the
    /// last failed dial when there is one ("cannot connect to ADDR: ..."),
    /// else "connection lost".
    fn fail_pending(&self, node: NodeId) {
        let gone: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<ReqId> = pending
                .iter()
                .filter(|(_, p)| p.node() == node)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        let dial = self.dial_failures.cause(node);
        for p in gone {
            answer_lost(p, dial.as_deref());
        }
    }

    /// A frame from a peer. The connection speaks for `node` (the node its
    /// handshake named) only: a signal sent as another node's process is
    /// dropped, and every frame a peer may not send is logged (see
    /// `peer_guard`).
    fn on_frame(self: &Arc<Self>, node: NodeId, msg: Msg) {
        match msg {
            Msg::Request { id, body } => self.serve_request(node, id, body),
            Msg::Response { id, body } => self.complete_request(node, id, body),
            other => {
                if let Some((field, pid)) = peer_guard::foreign_sender(&other, node) {
                    let why = format!(
                        "its {field} {pid} is not a process of the sending node (a connection speaks for its own node only)"
                    );
                    self.note_frame(node, true, other.name(), "foreign sender", &why);
                } else if let Err(other) = self.rt.handle_remote(other) {
                    let why = peer_guard::why_not_from_a_peer(&other);
                    self.note_frame(node, false, other.name(), why, &why);
                }
            }
        }
    }

    /// Logs at warn that a frame of `kind` from peer `node` was `refused`
    /// (answered with an error, or dropped as a lie) or ignored, and why;
    /// rate-limited per peer, kind and `reason` (the class of `why`).
    fn note_frame(
        &self,
        node: NodeId,
        refused: bool,
        kind: &'static str,
        reason: &'static str,
        why: &dyn std::fmt::Display,
    ) {
        let now = Instant::now().into_std();
        let Some(left_out) = self.noted.hit(node, kind, reason, now) else {
            return;
        };
        let name = members::read(&self.members)
            .get(node)
            .map_or_else(|| "?".to_owned(), |i| i.name.clone());
        let what = if refused { "refused" } else { "ignored" };
        tracing::warn!(peer = %node, %name, left_out, "{what} a {kind} from a peer: {why}");
    }

    fn serve_request(self: &Arc<Self>, node: NodeId, id: ReqId, body: Request) {
        match body {
            Request::Spawn(req) => {
                if self.config.kind != NodeKind::Worker {
                    let e = RemoteError::new(
                        ErrorCode::Refused,
                        "a hidden node does not host processes for others",
                    );
                    self.note_frame(node, true, "Spawn", "hidden", &e.message);
                    self.send_frame(
                        node,
                        Msg::Response {
                            id,
                            body: Response::Error(e),
                        },
                    );
                    return;
                }
                if self.stopping.load(Ordering::Acquire) {
                    let e = RemoteError::new(
                        ErrorCode::Overloaded,
                        "the node is stopping: spawn elsewhere",
                    );
                    self.send_frame(
                        node,
                        Msg::Response {
                            id,
                            body: Response::Error(e),
                        },
                    );
                    return;
                }
                if let Some((field, pid)) = peer_guard::foreign_spawn(&req, node) {
                    let why = format!(
                        "its {field} {pid} is not a process of the requesting node (a connection speaks for its own node only)"
                    );
                    self.note_frame(node, true, "Spawn", "foreign sender", &why);
                    let e = RemoteError::new(ErrorCode::Refused, why);
                    self.send_frame(
                        node,
                        Msg::Response {
                            id,
                            body: Response::Error(e),
                        },
                    );
                    return;
                }
                match self.rt.handle_spawn(req) {
                    Ok((pid, gate)) => {
                        // The answer is queued before the process may run.
                        self.send_frame(
                            node,
                            Msg::Response {
                                id,
                                body: Response::Spawned(pid),
                            },
                        );
                        drop(gate);
                    }
                    Err(e) => {
                        let reason = match e.code {
                            ErrorCode::UnknownFunction => "unknown function",
                            ErrorCode::BadArgs => "bad arguments",
                            _ => "spawn failed",
                        };
                        self.note_frame(node, true, "Spawn", reason, &e.message);
                        self.send_frame(
                            node,
                            Msg::Response {
                                id,
                                body: Response::Error(e),
                            },
                        );
                    }
                }
            }
            Request::Inspect { pid } => {
                let peers = self.clone();
                self.tasks.spawn(async move {
                    let body = crate::local::inspect(&peers.rt, pid).await;
                    peers.send_frame(node, Msg::Response { id, body });
                });
            }
            Request::Ping => self.send_frame(
                node,
                Msg::Response {
                    id,
                    body: Response::Pong,
                },
            ),
            // Asked by a peer whose lease on the master ran out.
            Request::MasterSeen => self.send_frame(
                node,
                Msg::Response {
                    id,
                    body: Response::MasterSeen {
                        heard_ms_ago: self.master.heard_ms_ago(),
                    },
                },
            ),
            // What this node runs, asked directly (one side of a
            // partition can be inspected without the master).
            Request::LocalProcesses => {
                let ps = crate::local::processes(&self.rt, &self.config.name);
                self.send_frame(
                    node,
                    Msg::Response {
                        id,
                        body: Response::Processes(ps),
                    },
                );
            }
            other => {
                let name = other.name();
                let e = RemoteError::new(
                    ErrorCode::Refused,
                    format!("a worker does not serve {name} from a peer"),
                );
                self.note_frame(node, true, name, "not served", &e.message);
                self.send_frame(
                    node,
                    Msg::Response {
                        id,
                        body: Response::Error(e),
                    },
                );
            }
        }
    }

    /// An answer from `node`: it completes our request `id` only if that
    /// request went to `node` (a peer cannot answer for another node).
    fn complete_request(&self, node: NodeId, id: ReqId, body: Response) {
        let p = {
            let mut pending = lock(&self.pending);
            let to_node = pending.get(&id).is_some_and(|p| p.node() == node);
            if to_node { pending.remove(&id) } else { None }
        };
        let Some(p) = p else {
            self.note_frame(
                node,
                false,
                "Response",
                "no request",
                &"an answer to no request of ours to that node (a late answer, or a made-up id)",
            );
            return;
        };
        match p {
            Pending::Spawn(reply, _) => reply.complete(match body {
                Response::Spawned(pid) => Ok(pid),
                Response::Error(e) => Err(e),
                other => Err(RemoteError::new(
                    ErrorCode::Internal,
                    format!("unexpected answer to a spawn: {other:?}"),
                )),
            }),
            Pending::Ping(done, _) => {
                let _ = done.send(());
            }
            Pending::MasterSeen(answers, _) => {
                if let Response::MasterSeen { heard_ms_ago } = body {
                    let _ = answers.send(heard_ms_ago);
                }
            }
        }
    }

    /// Sends a spawn request; `reply` is completed by the reader.
    pub(crate) fn spawn_on(
        self: &Arc<Self>,
        node: NodeId,
        req: pool_proto::SpawnRequest,
        reply: SpawnReply,
    ) {
        let id = self.next_req();
        lock(&self.pending).insert(id, Pending::Spawn(reply, node));
        let queued = self.queue_frame(
            node,
            Msg::Request {
                id,
                body: Request::Spawn(req),
            },
        );
        if !queued || members::read(&self.members).get(node).is_none() {
            // Dropped (no route now: not a member, backing off after an
            // overflow, or the dial already failed and closed the queue):
            // nobody will answer.
            let p = lock(&self.pending).remove(&id);
            if let Some(p) = p {
                answer_lost(p, self.dial_failures.cause(node).as_deref());
            }
        }
    }

    /// Asks every live worker `MasterSeen` (this node's lease ran out):
    /// returns how many were asked and their answers as they come. Those
    /// not answered `within` are forgotten.
    pub(crate) fn ask_master_seen(
        self: &Arc<Self>,
        within: Duration,
    ) -> (usize, mpsc::UnboundedReceiver<Option<u64>>) {
        let nodes: Vec<NodeId> = {
            let members = members::read(&self.members);
            members
                .ids()
                .into_iter()
                .filter(|n| members.get(*n).is_some_and(|i| i.kind == NodeKind::Worker))
                .collect()
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut ids = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let id = self.next_req();
            lock(&self.pending).insert(id, Pending::MasterSeen(tx.clone(), *node));
            self.send_frame(
                *node,
                Msg::Request {
                    id,
                    body: Request::MasterSeen,
                },
            );
            ids.push(id);
        }
        let peers = self.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(within).await;
            let mut pending = lock(&peers.pending);
            for id in ids {
                pending.remove(&id);
            }
        });
        (nodes.len(), rx)
    }

    /// Closes every connection with `node` (declared down by the master),
    /// and forgets that it could not be reached.
    pub(crate) fn close_peer(self: &Arc<Self>, node: NodeId) {
        self.dial_failures.clear(node);
        self.peer_lost(node, None, &CloseReason::Local);
    }

    /// Closes every peer connection (fencing, shutdown).
    pub(crate) fn close_all(self: &Arc<Self>) {
        let nodes: Vec<NodeId> = lock(&self.map).keys().copied().collect();
        for n in nodes {
            self.close_peer(n);
        }
    }

    /// Waits until every worker this node has a connection to has read and
    /// applied the frames sent to it so far (a `Ping` on each connection,
    /// answered after them), or `timeout` passes.
    ///
    /// A graceful stop needs this, not only empty queues: when this node
    /// disconnects, the master tells the others it is down, and a peer
    /// that hears it before it has read our last frames (the `shutdown`
    /// exits of the children we hosted for it) fires `noconnection` on
    /// those links instead — a transient child would then be restarted.
    pub(crate) async fn sync(self: &Arc<Self>, timeout: Duration) {
        let connected: Vec<NodeId> = lock(&self.map)
            .iter()
            .filter(|(_, p)| p.out.as_ref().is_some_and(|o| !o.is_closed()))
            .map(|(n, _)| *n)
            .collect();
        // (Not under the peer lock: `open` takes the two the other way.)
        let nodes: Vec<NodeId> = {
            let members = members::read(&self.members);
            connected
                .into_iter()
                .filter(|n| members.get(*n).is_some_and(|i| i.kind == NodeKind::Worker))
                .collect()
        };
        let waits: Vec<_> = nodes
            .into_iter()
            .map(|node| {
                let id = self.next_req();
                let (tx, rx) = tokio::sync::oneshot::channel();
                lock(&self.pending).insert(id, Pending::Ping(tx, node));
                self.send_frame(
                    node,
                    Msg::Request {
                        id,
                        body: Request::Ping,
                    },
                );
                rx
            })
            .collect();
        let _ = tokio::time::timeout(timeout, futures_util::future::join_all(waits)).await;
    }

    /// Waits until every outgoing queue is empty or `timeout` passes (so
    /// exit signals reach other nodes before we disconnect).
    pub(crate) async fn flush(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let busy = lock(&self.map).values().any(|p| {
                    p.out
                        .as_ref()
                        .is_some_and(|o| !o.is_closed() && !o.is_empty())
                });
                if !busy {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}
