//! [`NodeLink`]: the master's handle on one node connection — the outbox its
//! writer task drains, the requests the master sent it that await an
//! answer, and the token that closes it — [`MemberFeed`], the membership
//! every writer brings its node up to date from, and [`run_writer`], that
//! task.
//!
//! ```text
//!   session reader ──answers──┐
//!   state effects ──push()────┼─> outbox (unbounded, byte-counted) ──┐
//!   node requests ──request()─┘                                      ├─> writer task ──> socket
//!   state effects ──record()──> MemberFeed (changes) ─ grew, downs, bulk ┘
//!                                        pending[id] <── complete(id) <── session reader
//! ```
//!
//! Who holds it: the session that owns the connection (and spawns the
//! writer), the table of links in `shared.rs` (so that the state's effects,
//! which name connections by session, reach it), and any request task
//! waiting on it. Its [`closed`](NodeLink::closed) token, a child of the
//! master's root token, ends both the reader and the writer; the last
//! holder to drop it frees the outbox. The feed is the master's (`shared.rs`);
//! each link holds it to read.
//!
//! The writer coalesces every queued frame into one `write` (DESIGN.md
//! "Wire protocol"), in a buffer it borrows for that write from a pool
//! that every writer shares; a `Welcome`'s list goes out from the shared
//! snapshot it is in (`member_log.rs`), by a vectored write. Membership does not go through the outbox: the changes
//! are recorded once in the feed, and each writer, once its node's
//! `Welcome` is written, sends the changes its node lacks as one delta in
//! front of what it writes next, or on their own when `linger.rs` says so:
//! at once in a quiet pool, gathered during a burst (docs/protocol.md,
//! "Membership"). A node
//! that lets more than [`MAX_OUTBOX_BYTES`] of other frames pile up is too
//! slow to read and is disconnected.

use std::collections::HashMap;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pool_proto::codec::encode_frame;
use pool_proto::transport::{Direct, write_now};
use pool_proto::{MemberChange, Msg, ReqId, Request, Response, Welcome};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::member_log::MemberLog;
use crate::membership::Conn;
use linger::{CAP_STEP, Lacking, Linger, When};

mod linger;
#[cfg(test)]
mod tests;

/// Bytes queued for one connection beyond which it is disconnected: a node this
/// far behind on reading is hung or overloaded, and buffering more would
/// let one bad node exhaust the master's memory. (Membership changes are
/// not counted: a writer that falls behind them sends the whole list once
/// it can write again.)
pub(crate) const MAX_OUTBOX_BYTES: usize = 64 * 1024 * 1024;

/// How much the writer gathers into one `write`.
const MAX_BATCH: usize = 256 * 1024;

/// A write buffer to begin with.
const INITIAL_BUF: usize = 16 * 1024;

/// The largest write buffer kept for the next write.
const KEEP_BUF: usize = 256 * 1024;

/// The most write buffers kept for the next writes.
const KEPT_BUFS: usize = 64;

/// The write buffers between writes, lent to the writers one write at a
/// time. Only a few writers write at any moment, so a few buffers serve
/// them all: a buffer of its own per connection would hold gigabytes at
/// 10,000 connections, and one allocated per write would be fresh memory
/// (faulted in and zeroed) on every write of a join storm.
#[derive(Debug)]
struct BufPool {
    /// The buffers, empty.
    free: Mutex<Vec<BytesMut>>,
}

impl BufPool {
    /// A buffer for one write.
    fn take(&self) -> BytesMut {
        self.lock()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(INITIAL_BUF))
    }

    /// Gives a buffer back after its write (one too large, or past
    /// [`KEPT_BUFS`], is freed).
    fn give(&self, mut buf: BytesMut) {
        buf.clear();
        if buf.capacity() <= KEEP_BUF {
            let mut free = self.lock();
            if free.len() < KEPT_BUFS {
                free.push(buf);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BytesMut>> {
        // A poisoned pool only means a panic elsewhere; its buffers are
        // still buffers.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The write buffers of every writer of the process.
static WRITE_BUFS: BufPool = BufPool {
    free: Mutex::new(Vec::new()),
};

/// What the writer task is given.
#[derive(Debug)]
pub(crate) enum Out {
    /// Bytes of one or more whole frames.
    Frames(Bytes),
    /// The answer to `Join` request `id`: `welcome` (its `members` the
    /// joiner alone) with every live member listed, numbered from the
    /// feed; from then on the writer keeps the node up to date.
    Welcome {
        /// The request answered.
        id: ReqId,
        /// The answer, less the other members.
        welcome: Box<Welcome>,
    },
    /// The whole membership list (the node saw a gap in the deltas).
    MemberList,
    /// The rest of a direct write ([`NodeLink::send_now`]) that the socket
    /// did not take at once, this many bytes, waits in the link's
    /// [`WriteIo::carry`]: written ahead of anything else.
    Carry(usize),
    /// Write what is queued, then close the connection.
    Close,
}

/// The membership as the nodes are told it, and the signals that it
/// grew: recorded by the shell under the pool lock, read by every writer.
#[derive(Debug)]
pub(crate) struct MemberFeed {
    /// The live members and the numbered recent changes, encoded once.
    log: RwLock<MemberLog>,
    /// The log's number of the next change, readable without its lock: a
    /// direct write ([`NodeLink::send_now`]) checks that its node lacks no
    /// change.
    next: AtomicU64,
    /// The number of the next change, sent on every change: wakes the
    /// writers that wait for news.
    grew: watch::Sender<u64>,
    /// The same, sent on `Down` changes only: wakes the writers that let
    /// changes gather ([`Linger`]), since a `Down` is not held back.
    downs: watch::Sender<u64>,
    /// The bytes of every change recorded so far, sent each time they pass
    /// a multiple of [`CAP_STEP`]: wakes the writers that let changes
    /// gather, to check whether theirs reached the cap.
    bulk: watch::Sender<u64>,
}

impl Default for MemberFeed {
    fn default() -> Self {
        MemberFeed {
            log: RwLock::new(MemberLog::default()),
            next: AtomicU64::new(0),
            grew: watch::Sender::new(0),
            downs: watch::Sender::new(0),
            bulk: watch::Sender::new(0),
        }
    }
}

impl MemberFeed {
    /// Records a change decided by the state and wakes the writers.
    pub(crate) fn record(&self, change: &MemberChange) {
        let (next, before, bytes) = {
            let mut log = self.write_log();
            let before = log.bytes();
            log.record(change);
            self.next.store(log.next(), Ordering::SeqCst);
            (log.next(), before, log.bytes())
        };
        self.grew.send_replace(next);
        if matches!(change, MemberChange::Down { .. }) {
            self.downs.send_replace(next);
        }
        if before / CAP_STEP != bytes / CAP_STEP {
            self.bulk.send_replace(bytes);
        }
    }

    fn read_log(&self) -> std::sync::RwLockReadGuard<'_, MemberLog> {
        // A poisoned log only means a panic elsewhere; the log is still valid.
        self.log.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_log(&self) -> std::sync::RwLockWriteGuard<'_, MemberLog> {
        self.log.write().unwrap_or_else(|e| e.into_inner())
    }
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
    /// Items queued and not yet written (every [`Out`], whatever its
    /// bytes): a direct write goes ahead only when there are none.
    unwritten: AtomicUsize,
    /// The number of the next membership change the node lacks, once the
    /// writer has written every change before it (`u64::MAX` before the
    /// node's `Welcome`: a node not welcomed is told no changes). A direct
    /// write goes ahead only when the feed has no change past it.
    told: AtomicU64,
    /// The connection's write half, once the writer task put it here, and
    /// the rest of a direct write. Shared by the writer and the session
    /// reader's direct writes; locked for one non-blocking poll at a time,
    /// never across an await.
    io: Mutex<WriteIo>,
    /// Requests the master sent that await an answer, by request id. Their
    /// senders are dropped when the connection ends
    /// ([`fail_pending`](Self::fail_pending)), which fails the waiting
    /// requests with [`RequestError::Closed`].
    pending: Mutex<HashMap<ReqId, oneshot::Sender<Response>>>,
    /// Next master-side request id on this connection.
    next_req: AtomicU64,
    /// Frame limit, for encoding.
    max_frame_len: usize,
    /// The master's membership feed, which the writer sends from.
    feed: Arc<MemberFeed>,
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
        feed: Arc<MemberFeed>,
        closed: CancellationToken,
    ) -> (Self, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = NodeLink {
            conn,
            tx,
            queued: AtomicUsize::new(0),
            unwritten: AtomicUsize::new(0),
            told: AtomicU64::new(u64::MAX),
            io: Mutex::new(WriteIo::default()),
            pending: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(1),
            max_frame_len,
            feed,
            closed,
        };
        (link, rx)
    }

    /// Queues already-encoded frames. Never blocks; a link over
    /// [`MAX_OUTBOX_BYTES`] behind is closed instead.
    pub(crate) fn send(&self, frames: Bytes) {
        self.enqueue(frames.len(), Out::Frames(frames));
    }

    /// Sends already-encoded frames, taking them out of `frames` (whose
    /// buffer stays for the next ones). When the writer is idle — nothing
    /// queued or being written, no membership change the node lacks — they
    /// are written to the socket here, by a non-blocking write: no wake of
    /// the writer task. That is the session reader's path for a read
    /// batch's answers, a load report's `ReportAck` above all. What the
    /// socket does not take at once is left to the writer, ahead of
    /// anything queued; when the writer is not idle the frames are queued
    /// as by [`send`](Self::send). Either way they reach the node in order
    /// with everything sent on this link before.
    pub(crate) fn send_now(&self, frames: &mut BytesMut) {
        if frames.is_empty() {
            return;
        }
        if !self.write_direct(frames) {
            self.send(frames.split().freeze());
        }
        frames.clear();
    }

    /// The direct write of [`send_now`](Self::send_now): false if the
    /// writer is not idle (nothing written). Otherwise true, whatever the
    /// socket took: the rest is carried.
    fn write_direct(&self, frames: &[u8]) -> bool {
        // Never waits for the writer's lock: it holds it for one poll only,
        // and the queued path is always correct.
        let Ok(mut io) = self.io.try_lock() else {
            return false;
        };
        // Checked under the lock, which every write of the writer's holds:
        // an item or a change the writer has taken is counted until its
        // write is done, so none is half written now.
        if self.unwritten.load(Ordering::SeqCst) != 0
            || self.told.load(Ordering::SeqCst) < self.feed.next.load(Ordering::SeqCst)
            || self.closed.is_cancelled()
        {
            return false;
        }
        let WriteIo { w, carry } = &mut *io;
        let Some(w) = w.as_mut() else {
            return false;
        };
        if let Direct::Partial(n) = write_now(&mut **w, frames) {
            // The rest (possibly nothing but a flush, under TLS) is the
            // writer's, before anything else it writes.
            *carry = Bytes::copy_from_slice(&frames[n..]);
            let left = carry.len();
            drop(io);
            self.enqueue(left, Out::Carry(left));
        }
        true
    }

    /// Queues `out` (`len` bytes) unless the link is closed or too far
    /// behind, in which case it is closed.
    fn enqueue(&self, len: usize, out: Out) {
        if self.closed.is_cancelled() {
            return;
        }
        // Counted before it is queued: a direct write checks for it.
        self.unwritten.fetch_add(1, Ordering::SeqCst);
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

    /// Queues the answer to `Join` request `id` (see [`Out::Welcome`]).
    pub(crate) fn welcome(&self, id: ReqId, welcome: Welcome) {
        self.enqueue(
            0,
            Out::Welcome {
                id,
                welcome: Box::new(welcome),
            },
        );
    }

    /// Queues the whole membership list (see [`Out::MemberList`]).
    pub(crate) fn member_list(&self) {
        self.enqueue(0, Out::MemberList);
    }

    /// Queues a response to request `id`.
    pub(crate) fn respond(&self, id: ReqId, body: Response) {
        self.push(&Msg::Response { id, body });
    }

    /// Asks the writer to close the connection once what is queued is
    /// written (after a refusal).
    pub(crate) fn close_after_flush(&self) {
        self.unwritten.fetch_add(1, Ordering::SeqCst);
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

    /// Marks `n` queued bytes, in `items` items, as written.
    fn written(&self, n: usize, items: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.unwritten.fetch_sub(items, Ordering::SeqCst);
    }

    /// Polls the write half (after the rest of a direct write) with `f`,
    /// under the lock for this one poll.
    fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(
            Pin<&mut (dyn AsyncWrite + Send + Unpin)>,
            &mut Context<'_>,
        ) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let WriteIo { w, carry } = &mut *io;
        let Some(w) = w.as_mut() else {
            return Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()));
        };
        while !carry.is_empty() {
            match Pin::new(&mut **w).poll_write(cx, carry) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    let _ = carry.split_to(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        f(Pin::new(&mut **w), cx)
    }
}

/// A connection's write half, shared by its writer task and the direct
/// writes of its session reader ([`NodeLink::send_now`]).
#[derive(Default)]
struct WriteIo {
    /// The write half; `None` until the writer task starts and after it
    /// ends (dropping it closes the write side).
    w: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// The bytes of a direct write that the socket did not take: every
    /// write of the writer's writes them first.
    carry: Bytes,
}

impl std::fmt::Debug for WriteIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteIo")
            .field("open", &self.w.is_some())
            .field("carry", &self.carry.len())
            .finish()
    }
}

/// The writer's side of the link's [`WriteIo`], as one stream: each poll
/// writes the rest of a direct write first.
struct LinkWrite<'a>(&'a NodeLink);

impl AsyncWrite for LinkWrite<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.poll_io(cx, |w, cx| w.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.0.poll_io(cx, |w, cx| w.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_io(cx, |w, cx| w.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_io(cx, |w, cx| w.poll_shutdown(cx))
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
/// is queued into one `write`, and once its node's `Welcome` is written
/// puts in front of each write the membership changes the node lacks,
/// until the link is closed, the socket fails or a [`Out::Close`] is
/// written. Closing the link's token on the way out stops the reader too.
/// The write half is shared with the session reader's direct writes
/// ([`NodeLink::send_now`]) while the writer runs; it is dropped (the
/// write side closed) when the writer ends.
pub(crate) async fn run_writer<W: AsyncWrite + Send + Unpin + 'static>(
    link: Arc<NodeLink>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    wr: W,
) {
    link.io.lock().unwrap_or_else(|e| e.into_inner()).w = Some(Box::new(wr));
    write_loop(&link, &mut rx).await;
    link.closed.cancel();
    drop(link.io.lock().unwrap_or_else(|e| e.into_inner()).w.take());
}

/// The loop of [`run_writer`], until the connection is to close.
async fn write_loop(link: &NodeLink, rx: &mut mpsc::UnboundedReceiver<Out>) {
    let mut wr = LinkWrite(link);
    let feed = link.feed.clone();
    let max = link.max_frame_len;
    let mut grew = feed.grew.subscribe();
    let mut downs = feed.downs.subscribe();
    let mut bulk = feed.bulk.subscribe();
    // What goes out before the write buffer in the next write: a Welcome's shared
    // list between the bytes around it (written as they are, not copied).
    let mut pieces: Vec<Bytes> = Vec::new();
    // Made once: a `cancelled()` made anew at every wake-up costs each
    // load report's ack a lock and a registration.
    let closed = link.closed.cancelled();
    tokio::pin!(closed);
    // The number of the next membership change the node lacks, and the
    // feed's bytes of changes up to there; none until its Welcome is
    // written (a connection that has not joined is told nothing).
    let mut cursor: Option<(u64, u64)> = None;
    // When the changes go out (a lone change at once, a burst gathered).
    let mut linger = Linger::default();
    loop {
        let until = linger
            .until(Instant::now().into_std())
            .map(Instant::from_std);
        let joined = cursor.is_some();
        // `Some(item)`: an item of the outbox (`None` in it: the outbox is
        // gone); `None`: membership news, or the end of a wait.
        let first: Option<Option<Out>> = tokio::select! {
            biased;
            _ = &mut closed => break,
            out = rx.recv() => Some(out),
            _ = downs.changed(), if joined && until.is_some() => None,
            _ = bulk.changed(), if joined && until.is_some() => None,
            _ = tokio::time::sleep_until(until.unwrap_or_else(Instant::now)), if joined && until.is_some() => None,
            _ = grew.changed(), if joined && until.is_none() => None,
        };
        // Lent for this round (see `BufPool`).
        let mut buf = WRITE_BUFS.take();
        let mut close = false;
        let mut changes = false;
        let mut members = 0;
        // Frames' bytes, as counted by the outbox, and the outbox's items
        // taken.
        let mut counted = 0;
        let mut items = 0;
        // The rest of a direct write waits (see `Out::Carry`).
        let mut carried = false;
        // The changes go first: every change decided before the frames
        // below is in front of them (changes decided since may be too:
        // news may come early, never late).
        if let Some((c, mark)) = cursor {
            // Marked seen before the log is read: news recorded from here
            // on wakes the next round.
            grew.mark_unchanged();
            bulk.mark_unchanged();
            let last_down = *downs.borrow_and_update();
            let log = feed.read_log();
            let lacking = Lacking {
                changes: log.next().saturating_sub(c),
                bytes: log.bytes().saturating_sub(mark),
                down: last_down > c,
                frames: first.is_some(),
            };
            if linger.when(Instant::now().into_std(), &lacking) == When::Now {
                // One allocation at most for the deltas of a burst (the
                // list, for a node too far behind, reserves its own).
                buf.reserve(
                    usize::try_from(lacking.bytes)
                        .unwrap_or(usize::MAX)
                        .min(MAX_BATCH)
                        + 256,
                );
                let next = log.catch_up(c, &mut buf, max);
                members = log.live_count();
                changes = next != c;
                cursor = Some((next, log.bytes()));
            }
        }
        if let Some(first) = first {
            let mut item = Some(first);
            loop {
                let out = match item.take() {
                    Some(out) => out,
                    None if buf.len() + pieces.iter().map(Bytes::len).sum::<usize>()
                        >= MAX_BATCH =>
                    {
                        break;
                    }
                    None => match rx.try_recv() {
                        Ok(out) => Some(out),
                        Err(_) => break,
                    },
                };
                if out.is_some() {
                    items += 1;
                }
                match out {
                    Some(Out::Frames(b)) => {
                        counted += b.len();
                        buf.extend_from_slice(&b);
                    }
                    Some(Out::Carry(n)) => {
                        counted += n;
                        carried = true;
                    }
                    Some(Out::Welcome { id, welcome }) => {
                        grew.mark_unchanged();
                        downs.mark_unchanged();
                        bulk.mark_unchanged();
                        let log = feed.read_log();
                        if let Some(w) = log.welcome_out(id, &welcome, max) {
                            buf.extend_from_slice(&w.head);
                            if !w.entries.is_empty() {
                                // Copied out (a few bytes) rather than
                                // split off: the buffer stays whole for
                                // the next writer that borrows it.
                                pieces.push(Bytes::copy_from_slice(&buf));
                                buf.clear();
                                pieces.push(w.entries);
                            }
                            buf.extend_from_slice(&w.rest);
                            cursor = Some((w.next, log.bytes()));
                        }
                    }
                    Some(Out::MemberList) => {
                        grew.mark_unchanged();
                        downs.mark_unchanged();
                        bulk.mark_unchanged();
                        let log = feed.read_log();
                        if let Some(next) = log.list(&mut buf, max) {
                            cursor = Some((next, log.bytes()));
                            members = log.live_count();
                            changes = true;
                        }
                    }
                    Some(Out::Close) | None => {
                        close = true;
                        break;
                    }
                }
            }
        }
        if !buf.is_empty() || !pieces.is_empty() || carried {
            // The flush sends what TLS holds (a no-op on plain TCP); the
            // rest of a direct write goes first in any case (`LinkWrite`).
            let res = tokio::select! {
                biased;
                _ = &mut closed => break,
                res = async {
                    write_pieces(&mut wr, &pieces, &buf).await?;
                    wr.flush().await
                } => res,
            };
            pieces.clear();
            if changes {
                linger.sent(Instant::now().into_std(), members);
            }
            if let Err(e) = res {
                debug!(node = %link.conn.node, cause = %e, "write failed; closing the connection");
                break;
            }
        }
        // Written: direct writes may go ahead again if nothing else is
        // queued and the node lacks no change (the order of these two
        // stores does not matter; a direct write needs both).
        link.told
            .store(cursor.map_or(u64::MAX, |(c, _)| c), Ordering::SeqCst);
        link.written(counted, items);
        WRITE_BUFS.give(buf);
        if close {
            let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
            break;
        }
    }
}

/// Writes `pieces`, then `last`, as if they were one buffer: with vectored
/// writes when there are pieces (a Welcome's shared list is sent from
/// where it is, not copied), with plain ones otherwise.
async fn write_pieces<W: AsyncWrite + Unpin>(
    wr: &mut W,
    pieces: &[Bytes],
    last: &[u8],
) -> std::io::Result<()> {
    if pieces.is_empty() {
        return wr.write_all(last).await;
    }
    let mut left: Vec<&[u8]> = pieces
        .iter()
        .map(|p| &p[..])
        .chain(std::iter::once(last))
        .filter(|p| !p.is_empty())
        .collect();
    let mut first = 0;
    while first < left.len() {
        let slices: Vec<IoSlice<'_>> = left[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let p = &mut left[first];
            if n >= p.len() {
                n -= p.len();
                first += 1;
            } else {
                *p = &p[n..];
                n = 0;
            }
        }
    }
    Ok(())
}
