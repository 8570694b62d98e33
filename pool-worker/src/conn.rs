//! One authenticated connection: a writer task that coalesces every queued
//! frame into one `write`, and a reader task that hands each frame to a
//! handler, in order.
//!
//! ```text
//! ConnTx (cloneable)          writer task                reader task
//!   send(Msg) --mpsc-->   encode all queued frames    decode frame -> handler(Msg)
//!   close()               into one buffer, write_all   (EOF / bad frame -> close)
//!          \____________________ closed token ______________/
//!                          on_close(reason) runs once
//! ```
//!
//! Either task ending cancels the other through the shared token; the
//! `on_close` callback runs exactly once, after both stopped reading and
//! writing.
//!
//! **The queue is bounded in bytes** (`--peer-queue`, [`ConnTx::pending`]'s
//! `limit`). Frames are encoded by the writer, so each queued frame is
//! charged what it holds in memory at send time ([`charge`]: the `Msg`
//! itself plus the payload bytes it owns) and credited back when the
//! writer has written it. A send that would take the queue over the limit
//! (unless the queue is empty: one frame always fits) closes the
//! connection instead: the peer is not reading, and holding more for it
//! would let one stalled peer exhaust this node's memory. The close reports
//! [`CloseReason::Overflow`], and the owner fires `noconnection` on links
//! and monitors towards that peer, as for any lost connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::BytesMut;
use futures_util::{FutureExt, StreamExt};
use pool_proto::codec::encode_frame;
use pool_proto::handshake::Connection;
use pool_proto::{Codec, Msg};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Bytes a writer gathers before it writes, at most (it writes sooner when
/// the queue is empty).
const MAX_BATCH: usize = 256 * 1024;

/// Frames a reader delivers before it lets the receivers it woke run
/// (see [`supervisor::process::defer_wakes`]).
const READ_BATCH: u64 = 256;

/// Frames and bytes moved by a set of connections, for the load report
/// (updated once per batch written or frame read, not per message send).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
}

/// What is queued on a connection, shared by its senders and its writer.
#[derive(Debug)]
struct Queue {
    /// Frames queued and not yet written.
    frames: AtomicUsize,
    /// Their [`charge`]s, bytes.
    bytes: AtomicUsize,
    /// The most `bytes` may reach (`--peer-queue`).
    limit: usize,
    /// Set when a send found the queue full (the close is an overflow).
    overflowed: AtomicBool,
}

/// The sending side of a connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnTx {
    /// Frames with their [`charge`], computed once when queued.
    tx: mpsc::UnboundedSender<(Msg, usize)>,
    closed: CancellationToken,
    queue: Arc<Queue>,
}

/// The receiving side of [`ConnTx::pending`], handed to [`run`].
#[derive(Debug)]
pub(crate) struct ConnRx {
    rx: mpsc::UnboundedReceiver<(Msg, usize)>,
    closed: CancellationToken,
    queue: Arc<Queue>,
}

impl ConnRx {
    /// Closes the connection before it was ever run (connecting failed).
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }

    /// Resolves when the connection is closed (e.g. its queue overflowed
    /// while it was still connecting).
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Why it was closed before it ran: an overflow, or a local close.
    pub(crate) fn close_reason(&self) -> CloseReason {
        self.queue.close_reason()
    }
}

impl Queue {
    fn close_reason(&self) -> CloseReason {
        if self.overflowed.load(Ordering::Acquire) {
            CloseReason::Overflow { limit: self.limit }
        } else {
            CloseReason::Local
        }
    }
}

/// What a queued frame is charged against the queue's byte bound: the
/// message itself plus the heap bytes it owns (payloads, names, reasons;
/// a spawn's arguments estimated from their JSON shape). Computed once when
/// queued and carried with the frame, so the writer credits back exactly
/// what was charged.
pub(crate) fn charge(msg: &Msg) -> usize {
    use pool_proto::{Dest, ExitReason, Request, Response};
    fn reason(r: &ExitReason) -> usize {
        match r {
            ExitReason::ShutdownWith(s) | ExitReason::Panic(s) | ExitReason::Error(s) => s.len(),
            _ => 0,
        }
    }
    fn json(v: &serde_json::Value) -> usize {
        use serde_json::Value;
        match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => 16,
            Value::String(s) => 16 + s.len(),
            Value::Array(a) => 16 + a.iter().map(json).sum::<usize>(),
            Value::Object(o) => 16 + o.iter().map(|(k, v)| 16 + k.len() + json(v)).sum::<usize>(),
        }
    }
    let heap = match msg {
        Msg::Send(s) => {
            s.payload.as_bytes().len()
                + match &s.to {
                    Dest::Name(n) => n.len(),
                    Dest::Pid(_) => 0,
                }
        }
        Msg::Exit { reason: r, .. } => reason(r),
        Msg::Down {
            reason: r, result, ..
        } => reason(r) + result.as_ref().map_or(0, |p| p.as_bytes().len()),
        Msg::Request {
            body: Request::Spawn(req),
            ..
        } => req.function.len() + json(&req.args) + req.owner.as_ref().map_or(0, String::len),
        Msg::Response { body, .. } => match body {
            Response::Error(e) => e.message.len(),
            Response::Ok | Response::Spawned(_) => 0,
            // Listings and views (rare between peers): a generous flat
            // estimate rather than a walk.
            _ => 4096,
        },
        Msg::NameReleased { name, .. } => name.len(),
        _ => 0,
    };
    std::mem::size_of::<Msg>() + heap
}

impl ConnTx {
    /// Queues a frame; false if the connection is closed.
    pub(crate) fn send(&self, msg: Msg) -> bool {
        self.try_send(msg).is_ok()
    }

    /// Queues a frame, or gives it back if the connection is closed.
    // The `Err` is the caller's own frame handed back, not an error value:
    // boxing it would allocate on every send to save a move on a rare path.
    #[allow(clippy::result_large_err)]
    ///
    /// A frame that would take the queue over its byte bound closes the
    /// connection (see the module docs) and is given back.
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), Msg> {
        if self.closed.is_cancelled() {
            return Err(msg);
        }
        let q = &self.queue;
        let cost = charge(&msg);
        let before = q.bytes.fetch_add(cost, Ordering::Relaxed);
        if before > 0 && before + cost > q.limit {
            q.bytes.fetch_sub(cost, Ordering::Relaxed);
            if !q.overflowed.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    queued = before,
                    limit = q.limit,
                    frames = q.frames.load(Ordering::Relaxed),
                    "closing a connection: the peer is not reading and its queue is full (--peer-queue)"
                );
            }
            self.closed.cancel();
            return Err(msg);
        }
        q.frames.fetch_add(1, Ordering::Relaxed);
        match self.tx.send((msg, cost)) {
            Ok(()) => Ok(()),
            Err(e) => {
                q.frames.fetch_sub(1, Ordering::Relaxed);
                q.bytes.fetch_sub(cost, Ordering::Relaxed);
                Err(e.0.0)
            }
        }
    }

    /// Closes the connection (both tasks stop; `on_close` runs).
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// True once a send found the queue full and closed the connection
    /// (the peer does not read).
    pub(crate) fn overflowed(&self) -> bool {
        self.queue.overflowed.load(Ordering::Acquire)
    }

    /// True when every queued frame has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.frames.load(Ordering::Relaxed) == 0
    }

    /// Bytes queued and not yet written (as [`charge`] counts them).
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.bytes.load(Ordering::Relaxed)
    }

    /// Resolves when the connection is closed.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// A sender whose frames queue until [`run`] attaches a connection to
    /// the returned receiver (used while connecting). At most `limit` bytes
    /// (see [`charge`]) may be queued.
    pub(crate) fn pending(limit: usize) -> (ConnTx, ConnRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let queue = Arc::new(Queue {
            frames: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            limit,
            overflowed: AtomicBool::new(false),
        });
        (
            ConnTx {
                tx,
                closed: closed.clone(),
                queue: queue.clone(),
            },
            ConnRx { rx, closed, queue },
        )
    }
}

/// Why a connection closed.
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// Closed locally ([`ConnTx::close`]).
    Local,
    /// The peer closed it cleanly.
    Eof,
    /// Reading or writing failed, or a frame was invalid.
    Error(String),
    /// The peer did not read and its queue reached the byte bound.
    Overflow {
        /// The bound, bytes.
        limit: usize,
    },
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Eof => f.write_str("closed by the peer"),
            CloseReason::Error(e) => f.write_str(e),
            CloseReason::Overflow { limit } => write!(
                f,
                "the peer stopped reading: {} queued for it (--peer-queue)",
                pool_proto::format_size(*limit as u64)
            ),
        }
    }
}

/// Starts the two tasks of a connection on the current runtime.
///
/// `rx`/`closed` come from [`ConnTx::pending`] (frames queued before the
/// connection existed are sent first). `handler` is called for every frame
/// read, in order, on the reader task: it must not block.
pub(crate) fn run<S, H, C>(
    conn: Connection<S>,
    crx: ConnRx,
    traffic: Option<Arc<Traffic>>,
    max_frame_len: usize,
    mut handler: H,
    on_close: C,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
    H: FnMut(Msg) + Send + 'static,
    C: FnOnce(CloseReason) + Send + 'static,
{
    let ConnRx { rx, closed, queue } = crx;
    let parts = conn.into_parts();
    let (read_half, write_half) = tokio::io::split(parts.io);
    let read_half = CountingRead {
        inner: read_half,
        traffic: traffic.clone(),
    };
    let mut reader = FramedRead::new(read_half, Codec::<Msg>::with_max_frame_len(max_frame_len));
    *reader.read_buffer_mut() = parts.read_buf;

    // Only one of the two tasks reports why the connection closed.
    let once = Arc::new(AtomicBool::new(false));
    let on_close = Arc::new(std::sync::Mutex::new(Some(on_close)));
    let report = {
        let once = once.clone();
        let on_close = on_close.clone();
        move |why: CloseReason| {
            if !once.swap(true, Ordering::AcqRel)
                && let Some(f) = on_close.lock().unwrap_or_else(|e| e.into_inner()).take()
            {
                f(why);
            }
        }
    };
    let report_w = report.clone();

    let wclosed = closed.clone();
    let wtraffic = traffic.clone();
    let rqueue = queue.clone();
    tokio::spawn(async move {
        let why = write_loop(
            write_half,
            rx,
            &wclosed,
            &queue,
            wtraffic.as_deref(),
            max_frame_len,
        )
        .await;
        wclosed.cancel();
        report_w(why);
    });

    tokio::spawn(async move {
        // One cancellation future for the connection's life, not one per
        // frame (registering and dropping a waiter per frame showed in
        // profiles).
        let cancelled = closed.cancelled();
        tokio::pin!(cancelled);
        let why = loop {
            let first = tokio::select! {
                biased;
                _ = &mut cancelled => break rqueue.close_reason(),
                next = reader.next() => next,
            };
            // Deliver every frame already read (up to a batch) before the
            // receivers run: each is woken once per batch, not per frame.
            let end = supervisor::process::defer_wakes(|| {
                let mut next = first;
                let mut frames = 0u64;
                let end = loop {
                    match next {
                        Some(Ok(msg)) => {
                            frames += 1;
                            handler(msg);
                        }
                        Some(Err(e)) => break Some(CloseReason::Error(e.to_string())),
                        None => break Some(CloseReason::Eof),
                    }
                    if frames >= READ_BATCH {
                        break None;
                    }
                    // Closed meanwhile (e.g. the node was declared down):
                    // nothing more is delivered.
                    if closed.is_cancelled() {
                        break Some(rqueue.close_reason());
                    }
                    // Frames still buffered (or readable at once); `None`
                    // when the next would have to wait.
                    match reader.next().now_or_never() {
                        Some(n) => next = n,
                        None => break None,
                    }
                };
                if let Some(t) = &traffic {
                    t.frames_in.fetch_add(frames, Ordering::Relaxed);
                }
                end
            });
            if let Some(why) = end {
                break why;
            }
        };
        closed.cancel();
        report(why);
    });
}

/// A reader that adds what it reads to the connection's traffic counters
/// (one update per read, however many frames it holds).
struct CountingRead<R> {
    inner: R,
    traffic: Option<Arc<Traffic>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingRead<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(t) = &self.traffic {
            let n = buf.filled().len() - before;
            if n > 0 {
                t.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        res
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<(Msg, usize)>,
    closed: &CancellationToken,
    queue: &Queue,
    traffic: Option<&Traffic>,
    max_frame_len: usize,
) -> CloseReason {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = closed.cancelled() => None,
        };
        let Some((first, mut cost)) = first else {
            // Flush nothing more: the connection is closing (a peer that
            // does not read must not hold the shutdown either).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), w.shutdown()).await;
            return queue.close_reason();
        };
        push_frame(&first, &mut buf, max_frame_len);
        drop(first);
        let mut frames = 1;
        while buf.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((m, c)) => {
                    cost += c;
                    push_frame(&m, &mut buf, max_frame_len);
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        if buf.is_empty() {
            queue.frames.fetch_sub(frames, Ordering::Relaxed);
            queue.bytes.fetch_sub(cost, Ordering::Relaxed);
            continue;
        }
        // Encoded: the messages are gone, the buffer (at most a batch and
        // one frame) holds their bytes until written.
        queue.bytes.fetch_sub(cost, Ordering::Relaxed);
        let written = tokio::select! {
            biased;
            // A peer that stopped reading holds `write_all` forever: a
            // close (e.g. on overflow) must still end this task.
            _ = closed.cancelled() => return queue.close_reason(),
            r = w.write_all(&buf) => r,
        };
        if let Err(e) = written {
            return CloseReason::Error(format!("write failed: {e}"));
        }
        queue.frames.fetch_sub(frames, Ordering::Relaxed);
        if let Some(t) = traffic {
            t.frames_out.fetch_add(frames as u64, Ordering::Relaxed);
            t.bytes_out.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        buf.clear();
        if buf.capacity() > 4 * MAX_BATCH {
            // One huge frame grew the buffer: give the memory back.
            buf = BytesMut::with_capacity(64 * 1024);
        }
    }
}

fn push_frame(msg: &Msg, buf: &mut BytesMut, max: usize) {
    if let Err(e) = encode_frame(msg, buf, max) {
        // A frame we cannot encode (e.g. over the limit) is dropped alone;
        // the connection and the frames around it are fine.
        tracing::warn!(cause = %e, "dropped an outgoing frame");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pool_proto::{Dest, MAX_FRAME_LEN, MsgKind, NodeId, Payload, Pid, SendMsg};
    use tokio::io::AsyncReadExt;
    use tokio::sync::oneshot;
    use tokio_util::codec::Framed;

    use super::*;

    fn message(bytes: usize) -> Msg {
        Msg::Send(SendMsg {
            to: Dest::Pid(Pid::new(NodeId::random(), 1)),
            from: None,
            kind: MsgKind::Plain,
            payload: Payload(vec![7; bytes]),
            trace: None,
        })
    }

    /// Runs a connection over an in-memory pipe of `pipe` bytes; returns
    /// the sender, the far end and the close reason when it comes.
    fn start(
        pipe: usize,
        limit: usize,
    ) -> (ConnTx, tokio::io::DuplexStream, oneshot::Receiver<String>) {
        let (near, far) = tokio::io::duplex(pipe);
        let (tx, crx) = ConnTx::pending(limit);
        let (done_tx, done_rx) = oneshot::channel();
        run(
            Framed::new(near, Codec::<Msg>::new()),
            crx,
            None,
            MAX_FRAME_LEN,
            |_| {},
            move |why| {
                let _ = done_tx.send(why.to_string());
            },
        );
        (tx, far, done_rx)
    }

    /// A peer that stops reading: the queue grows to the byte bound, then
    /// the next send closes the connection, which reports why; the queue
    /// never held more than the bound (plus the frame in hand).
    #[tokio::test]
    async fn a_peer_that_stops_reading_is_dropped_at_the_bound() {
        let limit = 256 * 1024;
        let (tx, _far, done) = start(8 * 1024, limit);
        let mut sent = 0;
        while tx.send(message(10_000)) {
            sent += 1;
            assert!(tx.queued_bytes() <= limit, "{} queued", tx.queued_bytes());
            assert!(sent < 1000, "the bound never closed the connection");
            // Let the writer run: it fills the pipe, then blocks.
            tokio::task::yield_now().await;
        }
        assert!(tx.is_closed());
        let why = tokio::time::timeout(Duration::from_secs(5), done)
            .await
            .expect("the close is reported although the writer is blocked")
            .unwrap();
        assert!(
            why.contains("stopped reading") && why.contains("256KiB"),
            "{why}"
        );
    }

    /// A peer that reads gets everything, and the count returns to zero.
    #[tokio::test]
    async fn a_reading_peer_drains_the_queue() {
        let (tx, mut far, _done) = start(8 * 1024, 64 * 1024);
        let reader = tokio::spawn(async move {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while total < 200 * 1_010 {
                let n = far.read(&mut buf).await.unwrap();
                assert!(n > 0);
                total += n;
            }
            far
        });
        for _ in 0..200 {
            // Waits for room like a well-behaved sender would not; here the
            // reader keeps up, so the bound is never reached.
            while tx.queued_bytes() > 32 * 1024 {
                tokio::task::yield_now().await;
            }
            assert!(tx.send(message(1000)));
        }
        let _far = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tx.queued_bytes(), 0);
        assert!(tx.is_empty());
        assert!(!tx.is_closed());
    }

    /// One frame larger than the bound still goes through an empty queue
    /// (the bound is on what piles up, not on a single frame).
    #[tokio::test]
    async fn one_frame_always_fits() {
        let (tx, _far, _done) = start(1024 * 1024, 64 * 1024);
        assert!(tx.send(message(100 * 1024)));
        assert!(!tx.is_closed());
    }

    #[test]
    fn charges_count_payloads() {
        let small = charge(&message(0));
        assert_eq!(charge(&message(1000)), small + 1000);
        assert!(small >= std::mem::size_of::<Msg>());
    }
}
