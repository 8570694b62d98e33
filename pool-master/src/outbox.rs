//! [`NodeLink`]: the master's handle on one node connection — the outbox its
//! writer task drains, the requests the master sent it that await an
//! answer, and the token that closes it — and [`run_writer`], that task.
//!
//! ```text
//!   session reader ──answers──┐
//!   state effects ──push()────┼─> outbox (unbounded, byte-counted) ──> writer task ──> socket
//!   node requests ──request()─┘         pending[id] <── complete(id) <── session reader
//! ```
//!
//! Who holds it: the session that owns the connection (and spawns the
//! writer), the table of links in `shared.rs` (so that the state's effects,
//! which name connections by session, reach it), and any request task
//! waiting on it. Its [`closed`](NodeLink::closed) token, a child of the
//! master's root token, ends both the reader and the writer; the last
//! holder to drop it frees the outbox.
//!
//! The writer coalesces every queued frame into one `write` (DESIGN.md
//! "Wire protocol"). A node that lets more than [`MAX_OUTBOX_BYTES`] pile up
//! is too slow to read its membership updates and is disconnected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pool_proto::codec::encode_frame;
use pool_proto::{Msg, ReqId, Request, Response};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::membership::Conn;

/// Bytes queued for one connection beyond which it is disconnected: a node this
/// far behind on reading is hung or overloaded, and buffering more would
/// let one bad node exhaust the master's memory. 64 MiB holds the
/// membership of a 10,000-node pool several times over.
pub(crate) const MAX_OUTBOX_BYTES: usize = 64 * 1024 * 1024;

/// How much the writer gathers into one `write`.
const MAX_BATCH: usize = 256 * 1024;

/// How long the writer lets `NodeUp` pushes gather after a write of pushes
/// before it writes again. A burst of joins makes the master push one `NodeUp` to
/// every node per join; without this each would cost every connection a
/// `write` of its own (O(n²) system calls, and as many wake-ups on every
/// node, while a 10,000-node pool starts). A node learns of a newcomer at
/// most this late, and only during such a burst; answers and `NodeDown`
/// pushes are never held back (and flush the `NodeUp`s queued before them).
const PUSH_LINGER: Duration = Duration::from_millis(100);

/// What the writer task is given.
#[derive(Debug)]
pub(crate) enum Out {
    /// Bytes of one or more whole frames.
    Frames(Bytes),
    /// A push (membership change): may wait up to [`PUSH_LINGER`] to be
    /// written with the pushes behind it.
    Push(Bytes),
    /// Write what is queued, then close the connection.
    Close,
}

/// Why a request to a node got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// The connection closed first.
    Closed,
    /// No answer within the timeout.
    Timeout,
}

/// One node connection, as the rest of the master sees it.
#[derive(Debug)]
pub(crate) struct NodeLink {
    /// Its session and the node the handshake authenticated on it.
    pub(crate) conn: Conn,
    /// The writer task's queue. Sending never blocks.
    tx: mpsc::UnboundedSender<Out>,
    /// Bytes queued and not yet written (see [`MAX_OUTBOX_BYTES`]).
    queued: AtomicUsize,
    /// Requests the master sent that await an answer, by request id. Their
    /// senders are dropped when the connection ends
    /// ([`fail_pending`](Self::fail_pending)), which fails the waiting
    /// requests with [`RequestError::Closed`].
    pending: Mutex<HashMap<ReqId, oneshot::Sender<Response>>>,
    /// Next master-side request id on this connection.
    next_req: AtomicU64,
    /// Frame limit, for encoding.
    max_frame_len: usize,
    /// Cancelled when the connection must close (the master stops, the
    /// state closed it, the node reads too slowly, the socket failed):
    /// stops the reader and the writer. A child of the master's root token.
    pub(crate) closed: CancellationToken,
}

impl NodeLink {
    /// A link for connection `conn` and the receiving end of its outbox
    /// (for the writer task).
    pub(crate) fn new(
        conn: Conn,
        max_frame_len: usize,
        closed: CancellationToken,
    ) -> (Self, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = NodeLink {
            conn,
            tx,
            queued: AtomicUsize::new(0),
            pending: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(1),
            max_frame_len,
            closed,
        };
        (link, rx)
    }

    /// Queues already-encoded frames. Never blocks; a link over
    /// [`MAX_OUTBOX_BYTES`] behind is closed instead.
    pub(crate) fn send(&self, frames: Bytes) {
        self.enqueue(frames.len(), Out::Frames(frames));
    }

    /// Queues an encoded push (see [`PUSH_LINGER`]).
    pub(crate) fn send_push(&self, frame: Bytes) {
        self.enqueue(frame.len(), Out::Push(frame));
    }

    /// Queues `out` (`len` bytes) unless the link is closed or too far
    /// behind, in which case it is closed.
    fn enqueue(&self, len: usize, out: Out) {
        if self.closed.is_cancelled() {
            return;
        }
        let queued = self.queued.fetch_add(len, Ordering::Relaxed) + len;
        if queued > MAX_OUTBOX_BYTES {
            warn!(node = %self.conn.node, name = %self.conn.name, queued,
                "closing connection: the node reads too slowly ({} MiB queued for it)", queued >> 20);
            self.closed.cancel();
            return;
        }
        let _ = self.tx.send(out);
    }

    /// Encodes and queues one message.
    pub(crate) fn push(&self, msg: &Msg) {
        if let Some(frame) = encode(msg, self.max_frame_len) {
            self.send(frame);
        }
    }

    /// Queues an already-encoded membership push: a `NodeUp` may wait up
    /// to [`PUSH_LINGER`] to share a write with the pushes behind it; any
    /// other message goes out at once.
    pub(crate) fn send_membership(&self, msg: &Msg, frame: Bytes) {
        if matches!(msg, Msg::NodeUp(_)) {
            self.send_push(frame);
        } else {
            self.send(frame);
        }
    }

    /// Queues a response to request `id`.
    pub(crate) fn respond(&self, id: ReqId, body: Response) {
        self.push(&Msg::Response { id, body });
    }

    /// Asks the writer to close the connection once what is queued is
    /// written (after a refusal).
    pub(crate) fn close_after_flush(&self) {
        let _ = self.tx.send(Out::Close);
    }

    /// Sends a request to the node and waits for its answer.
    pub(crate) async fn request(
        &self,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, RequestError> {
        if self.closed.is_cancelled() {
            return Err(RequestError::Closed);
        }
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        self.push(&Msg::Request { id, body });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(RequestError::Closed),
            Err(_) => {
                self.lock_pending().remove(&id);
                Err(RequestError::Timeout)
            }
        }
    }

    /// Hands an answer from the node to the request waiting for it. False
    /// if no request of ours has this id (late, or never sent).
    pub(crate) fn complete(&self, id: ReqId, resp: Response) -> bool {
        match self.lock_pending().remove(&id) {
            Some(tx) => {
                let _ = tx.send(resp);
                true
            }
            None => false,
        }
    }

    /// Fails every request awaiting an answer (the connection is gone).
    pub(crate) fn fail_pending(&self) {
        self.lock_pending().clear();
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<ReqId, oneshot::Sender<Response>>> {
        // A poisoned map only means a panic elsewhere; the map is still valid.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `n` queued bytes as written.
    fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Encodes one message as a frame; `None` (logged) if it cannot be, e.g. a
/// listing over the frame limit.
pub(crate) fn encode(msg: &Msg, max_frame_len: usize) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    match encode_frame(msg, &mut buf, max_frame_len) {
        Ok(()) => Some(buf.freeze()),
        Err(e) => {
            warn!(cause = %e, "dropping a message that cannot be encoded");
            None
        }
    }
}

/// The writer task of a connection: drains the outbox, gathering whatever
/// is queued into one `write`, until the link is closed, the socket fails
/// or a [`Out::Close`] is written. Closing the link's token on the way out
/// stops the reader too.
pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(
    link: std::sync::Arc<NodeLink>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut wr: W,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // When a write last carried a push: only then are we in a burst of
    // joins worth lingering for. A lone join is pushed at once, so a node
    // learns of a newcomer as soon as the master lists it.
    let mut last_push_write: Option<tokio::time::Instant> = None;
    loop {
        let first = tokio::select! {
            biased;
            _ = link.closed.cancelled() => break,
            out = rx.recv() => out,
        };
        // A push right after a write of pushes (a burst of joins) waits a
        // moment for the pushes behind it, so that they share one write;
        // anything else arriving meanwhile (an answer, a NodeDown) ends the
        // wait at once: answers are never held back.
        let mut gathered = Vec::new();
        if let (Some(Out::Push(_)), Some(at)) = (&first, last_push_write)
            && at.elapsed() < PUSH_LINGER
        {
            let until = at + PUSH_LINGER;
            loop {
                tokio::select! {
                    biased;
                    _ = link.closed.cancelled() => break,
                    _ = tokio::time::sleep_until(until) => break,
                    out = rx.recv() => {
                        let push = matches!(out, Some(Out::Push(_)));
                        gathered.push(out);
                        if !push {
                            break;
                        }
                    }
                }
            }
        }
        let mut close = false;
        let mut pushed = false;
        let mut take = |out: Option<Out>, buf: &mut BytesMut| match out {
            Some(Out::Frames(b)) => {
                buf.extend_from_slice(&b);
                true
            }
            Some(Out::Push(b)) => {
                pushed = true;
                buf.extend_from_slice(&b);
                true
            }
            Some(Out::Close) | None => {
                close = true;
                false
            }
        };
        let mut more = true;
        for out in std::iter::once(first).chain(gathered) {
            if !take(out, &mut buf) {
                more = false;
                break;
            }
        }
        if more {
            // Coalesce everything else already queued.
            while buf.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(out) => {
                        if !take(Some(out), &mut buf) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        if !buf.is_empty() {
            let n = buf.len();
            let res = tokio::select! {
                biased;
                _ = link.closed.cancelled() => break,
                res = wr.write_all(&buf) => res,
            };
            link.written(n);
            buf.clear();
            if pushed {
                last_push_write = Some(tokio::time::Instant::now());
            }
            if let Err(e) = res {
                debug!(node = %link.conn.node, cause = %e, "write failed; closing the connection");
                break;
            }
        }
        if close {
            let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
            break;
        }
    }
    link.closed.cancel();
}
