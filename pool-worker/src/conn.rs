//! One authenticated connection: senders encode their frames into a shared
//! buffer, a writer task writes all that is buffered with one `write`, and
//! a reader task hands each frame to a handler, in order.
//!
//! ```text
//! ConnTx (cloneable)              writer task                 reader task
//!   send(Msg): encode into   take the whole buffer,     decode frame -> handler(Msg)
//!   the buffer, wake writer  write_all, swap back       (EOF / bad frame -> close)
//!   close()
//!          \____________________ closed token ______________/
//!                          on_close(reason) runs once
//! ```
//!
//! Either task ending cancels the other through the shared token; the
//! `on_close` callback runs exactly once, after both stopped reading and
//! writing. That token is a child of the node's root token (see
//! [`ConnTx::pending`]): when the node stops, every connection closes with
//! it. Both tasks are spawned through the node's [`Tasks`] (tracked).
//!
//! **Read past a stalled runtime.** A connection run with a [`Stalls`]
//! (those read on the process runtime) keeps its read side behind a lock
//! that the reader task takes for each poll; while that runtime polls
//! nothing, the control thread takes it instead and reads the socket
//! directly ([`crate::stalls`]). Frames are read and delivered under the
//! lock, so their order is kept whoever reads them.
//!
//! **Encoding on the sender's thread.** A send encodes its frame straight
//! into the connection's buffer under a short lock; the writer only swaps
//! the buffer for its empty spare and writes it. Frames are never held as
//! values in a queue, so a burst costs no per-frame allocation or copy of
//! the frame struct, and the encoding work is spread over the threads that
//! send instead of falling on the one control thread. Frame order is the
//! order of the sends (the lock), which is what keeps per-pair order.
//!
//! **One hop when the connection is idle.** A send that finds nothing
//! queued and the writer idle writes its frame to the socket itself, on the
//! sending process's thread (a non-blocking write; TLS flushed the same
//! way), as Erlang's scheduler writes to the distribution port: no wake of
//! the writer task, one thread hand-off less per message. Whatever the
//! socket does not take at once (it would block, or TLS holds bytes to
//! flush) stays in the buffer and the writer is woken for it, so order is
//! kept: the direct write happens under the buffer's lock, and only while
//! the writer holds nothing in flight.
//!
//! **One write per poll of the sender.** Inside a batch
//! ([`supervisor::remote::batch_sends`]: every poll of a process, and each
//! batch of frames a reader delivers) that first send queues its frame
//! instead and registers the connection; later sends of the batch append to
//! it, and when the batch ends the connection writes them all with one
//! direct write. A process that sends one message and then waits has it
//! written when its poll ends at the wait, still on its own thread; one that
//! sends a thousand in a poll makes one system call, not a thousand. A batch
//! that grows past [`DEFER_MAX`] hands its bytes to the writer at once.
//!
//! **The buffer is bounded in bytes** (`--peer-queue`, [`ConnTx::pending`]'s
//! `limit`): the encoded bytes not yet taken by the writer. A send that
//! would take it over the limit (unless it is empty: one frame always fits)
//! closes the connection instead: the peer is not reading, and holding more
//! for it would let one stalled peer exhaust this node's memory. The close
//! reports [`CloseReason::Overflow`], and the owner fires `noconnection` on
//! links and monitors towards that peer, as for any lost connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::StreamExt;
use pool_proto::codec::encode_frame;
use pool_proto::handshake::Connection;
use pool_proto::transport::{Direct, write_now};
use pool_proto::{Codec, Msg};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::stalls::Stalls;
use crate::tasks::Tasks;

#[cfg(test)]
mod tests;

/// The capacity a writer's buffers start with, and go back to after one
/// huge batch grew them past [`SHRINK_OVER`].
const BUF_START: usize = 256 * 1024;

/// A buffer grown past this is given back after it was written.
const SHRINK_OVER: usize = 8 * 1024 * 1024;

/// Encoded bytes waiting for the writer above which a connection is busy:
/// a process whose send finds it so waits at its next `yield_now` until the
/// writer has taken them (as Erlang's `dist_buf_busy_limit`, also 1 MiB).
/// A sender that outruns the peer then runs at the peer's pace with the
/// queue bounded near this size, instead of growing it towards
/// `--peer-queue` (and paying for fresh memory all the way).
pub(crate) const BUSY_LIMIT: usize = 1024 * 1024;

/// Bytes a batch may hold back before the writer is woken for them: a
/// process that sends much in one poll streams through the writer, as
/// without batching, instead of holding a large buffer until it yields.
const DEFER_MAX: usize = 64 * 1024;

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

/// Encoded frames waiting for the writer.
#[derive(Debug)]
struct Outbox {
    /// The frames, encoded, in send order.
    buf: BytesMut,
    /// How many frames `buf` holds.
    frames: usize,
    /// The writer has been woken for what is in `buf` and has not taken it
    /// yet (so later sends need not wake it again).
    woken: bool,
    /// The writer holds bytes it has not finished writing (and flushing):
    /// a send must not write past them.
    writing: bool,
    /// What `buf` holds was queued during a batch that has not ended: the
    /// batch's flush writes it (unless the writer was woken for it).
    deferred: bool,
    /// Closed: sends are refused.
    closed: bool,
}

/// What is queued on a connection, shared by its senders and its writer.
#[derive(Debug)]
struct Queue {
    out: Mutex<Outbox>,
    /// Wakes the writer.
    wake: Notify,
    /// Frames sent and not yet written (in the buffer or being written).
    unwritten: AtomicUsize,
    /// The most the buffer may hold, bytes (`--peer-queue`).
    limit: usize,
    /// The largest frame body that may be sent.
    max_frame_len: usize,
    /// Set when a send found the queue full (the close is an overflow).
    overflowed: AtomicBool,
    /// Over [`BUSY_LIMIT`] since the writer last took the buffer.
    busy: AtomicBool,
    /// Wakes senders waiting for a busy queue to drain ([`ConnTx::drained`]).
    drained: Notify,
    /// Set by [`Queue::close`] before the token is cancelled: a cheaper
    /// check than the token's (which locks) for the reader's every frame.
    closing: AtomicBool,
    /// The connection's write half once [`run`] attached it, shared by the
    /// writer task and the senders' direct writes (see the module docs).
    /// Locked only for one non-blocking poll at a time; dropped (closing
    /// the write side) with the queue when the writer task and every
    /// sender are gone.
    io: Mutex<Option<WriteIo>>,
}

/// A connection's write half and the traffic counters its writes add to.
struct WriteIo {
    /// The write half of the stream.
    w: Box<dyn AsyncWrite + Send + Unpin>,
    /// Frames and bytes written, for the load report.
    traffic: Option<Arc<Traffic>>,
}

impl std::fmt::Debug for WriteIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteIo")
    }
}

/// The sending side of a connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnTx {
    closed: CancellationToken,
    queue: Arc<Queue>,
}

/// The writer's side of [`ConnTx::pending`], handed to [`run`].
#[derive(Debug)]
pub(crate) struct ConnRx {
    closed: CancellationToken,
    queue: Arc<Queue>,
}

impl ConnRx {
    /// Closes the connection before it was ever run (connecting failed).
    pub(crate) fn close(&self) {
        self.queue.close(&self.closed);
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

fn lock(m: &Mutex<Outbox>) -> std::sync::MutexGuard<'_, Outbox> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    fn close_reason(&self) -> CloseReason {
        if self.overflowed.load(Ordering::Acquire) {
            CloseReason::Overflow { limit: self.limit }
        } else {
            CloseReason::Local
        }
    }

    /// Refuses further sends, drops what is buffered, and cancels `token`
    /// (both tasks stop).
    fn close(&self, token: &CancellationToken) {
        self.closing.store(true, Ordering::Release);
        {
            let mut out = lock(&self.out);
            out.closed = true;
            self.unwritten.fetch_sub(out.frames, Ordering::Relaxed);
            out.frames = 0;
            out.buf = BytesMut::new();
        }
        token.cancel();
        self.drained.notify_waiters();
    }
}

impl Queue {
    /// Writes the `frames` frames in `out.buf` to the socket at once (the
    /// writer is idle and nothing is queued before them): true if it all
    /// went out. Otherwise the bytes written are dropped from the buffer
    /// and the rest is left for the writer, which the caller wakes.
    fn write_direct(&self, out: &mut Outbox, frames: u64) -> bool {
        // Never wait for the writer's lock: it is only held for one poll,
        // and the queued path is always correct.
        let Ok(mut io) = self.io.try_lock() else {
            return false;
        };
        let Some(io) = io.as_mut() else {
            return false;
        };
        let len = out.buf.len();
        match write_now(&mut *io.w, &out.buf) {
            Direct::Done => {
                out.buf.clear();
                if let Some(t) = &io.traffic {
                    t.frames_out.fetch_add(frames, Ordering::Relaxed);
                    t.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
                }
                true
            }
            Direct::Partial(n) => {
                let _ = out.buf.split_to(n);
                if let Some(t) = &io.traffic {
                    t.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                }
                false
            }
        }
    }
}

impl supervisor::remote::Flush for Queue {
    /// Writes what a batch queued: directly if the writer is idle, else by
    /// waking it. Nothing to do if the writer was woken meanwhile (the
    /// batch outgrew [`DEFER_MAX`]) or the connection closed.
    fn flush(&self) {
        let mut out = lock(&self.out);
        if !std::mem::replace(&mut out.deferred, false) || out.woken || out.closed {
            return;
        }
        if out.buf.is_empty() && out.frames == 0 {
            return;
        }
        let frames = out.frames;
        if !out.writing && self.write_direct(&mut out, frames as u64) {
            out.frames = 0;
            drop(out);
            self.unwritten.fetch_sub(frames, Ordering::Relaxed);
            return;
        }
        out.woken = true;
        drop(out);
        self.wake.notify_one();
    }
}

impl ConnTx {
    /// Queues a frame; false if the connection is closed.
    pub(crate) fn send(&self, msg: Msg) -> bool {
        self.try_send(msg).is_ok()
    }

    /// Queues a frame, or gives it back if the connection is closed.
    ///
    /// A frame that would take the buffer over its byte bound closes the
    /// connection (see the module docs) and is given back. A frame that
    /// cannot be encoded (over the frame limit) is dropped alone, with a
    /// warning: the connection and the frames around it are fine.
    // The `Err` is the caller's own frame handed back, not an error value:
    // boxing it would allocate on every send to save a move on a rare path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), Msg> {
        let q = &*self.queue;
        let mut out = lock(&q.out);
        if out.closed {
            return Err(msg);
        }
        let before = out.buf.len();
        if let Err(e) = encode_frame(&msg, &mut out.buf, q.max_frame_len) {
            drop(out);
            tracing::warn!(cause = %e, "dropped an outgoing frame");
            return Ok(());
        }
        if before > 0 && out.buf.len() > q.limit {
            let frames = out.frames;
            out.buf.truncate(before);
            drop(out);
            if !q.overflowed.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    queued = before,
                    limit = q.limit,
                    frames,
                    "closing a connection: the peer is not reading and its queue is full (--peer-queue)"
                );
            }
            q.close(&self.closed);
            return Err(msg);
        }
        if !out.woken {
            let held = if out.deferred {
                // Later sends of the batch join its frames, up to a bound.
                out.buf.len() <= DEFER_MAX
            } else if before == 0 && !out.writing {
                if supervisor::remote::defer_flush(|| self.queue.clone()) {
                    out.deferred = true;
                    true
                } else if q.write_direct(&mut out, 1) {
                    drop(out);
                    drop(msg);
                    return Ok(());
                } else {
                    false
                }
            } else {
                false
            };
            if held {
                out.frames += 1;
                q.unwritten.fetch_add(1, Ordering::Relaxed);
                drop(out);
                drop(msg);
                return Ok(());
            }
        }
        out.frames += 1;
        if out.buf.len() > BUSY_LIMIT {
            q.busy.store(true, Ordering::Release);
        }
        q.unwritten.fetch_add(1, Ordering::Relaxed);
        let wake = !std::mem::replace(&mut out.woken, true);
        drop(out);
        if wake {
            q.wake.notify_one();
        }
        drop(msg);
        Ok(())
    }

    /// Closes the connection (both tasks stop; `on_close` runs).
    pub(crate) fn close(&self) {
        self.queue.close(&self.closed);
    }

    /// True while more than [`BUSY_LIMIT`] bytes wait for the writer.
    pub(crate) fn is_busy(&self) -> bool {
        self.queue.busy.load(Ordering::Acquire)
    }

    /// Resolves when the queue is no longer busy (the writer took what was
    /// waiting), or the connection is closed.
    pub(crate) async fn drained(&self) {
        let q = &*self.queue;
        loop {
            let notified = q.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !q.busy.load(Ordering::Acquire) || q.closing.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
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
        self.queue.unwritten.load(Ordering::Relaxed) == 0
    }

    /// Bytes queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.queue.out).buf.len()
    }

    /// Resolves when the connection is closed.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// A sender whose frames queue until [`run`] attaches a connection to
    /// the returned receiver (used while connecting). At most `limit` bytes
    /// of encoded frames may be queued; frame bodies over `max_frame_len`
    /// are not sent. Cancelling `parent` (the node's token) closes it.
    pub(crate) fn pending(
        limit: usize,
        max_frame_len: usize,
        parent: &CancellationToken,
    ) -> (ConnTx, ConnRx) {
        let closed = parent.child_token();
        let queue = Arc::new(Queue {
            out: Mutex::new(Outbox {
                buf: BytesMut::new(),
                frames: 0,
                woken: false,
                writing: false,
                deferred: false,
                closed: false,
            }),
            wake: Notify::new(),
            unwritten: AtomicUsize::new(0),
            limit,
            max_frame_len,
            overflowed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            drained: Notify::new(),
            io: Mutex::new(None),
        });
        (
            ConnTx {
                closed: closed.clone(),
                queue: queue.clone(),
            },
            ConnRx { closed, queue },
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

/// Where a connection's two tasks run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunOn<'a> {
    pub(crate) tasks: &'a Tasks,
    /// Watches its reader while `tasks`' runtime stalls (a connection read
    /// on the process runtime).
    pub(crate) stalls: Option<&'a Stalls>,
}

impl<'a> From<&'a Tasks> for RunOn<'a> {
    fn from(tasks: &'a Tasks) -> Self {
        RunOn {
            tasks,
            stalls: None,
        }
    }
}

/// Starts the two tasks of a connection through `on`.
///
/// `rx`/`closed` come from [`ConnTx::pending`] (frames queued before the
/// connection existed are sent first). `handler` is called for every frame
/// read, in order, on the reader task (or, with [`RunOn::stalls`], on the control
/// thread while the reader's runtime stalls): it must not block.
pub(crate) fn run<'a, S, H, C>(
    on: impl Into<RunOn<'a>>,
    conn: Connection<S>,
    crx: ConnRx,
    traffic: Option<Arc<Traffic>>,
    max_frame_len: usize,
    handler: H,
    on_close: C,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
    H: FnMut(Msg) + Send + 'static,
    C: FnOnce(CloseReason) + Send + 'static,
{
    let RunOn { tasks, stalls } = on.into();
    let ConnRx { closed, queue } = crx;
    let parts = conn.into_parts();
    let (read_half, write_half) = tokio::io::split(parts.io);
    let read_half = CountingRead {
        inner: read_half,
        traffic: traffic.clone(),
    };
    let mut reader = FramedRead::new(read_half, Codec::<Msg>::with_max_frame_len(max_frame_len));
    *reader.read_buffer_mut() = parts.read_buf;

    // Only one of the tasks (or a read past a stalled runtime) reports why
    // the connection closed.
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
    *queue.io.lock().unwrap_or_else(|e| e.into_inner()) = Some(WriteIo {
        w: Box::new(write_half),
        traffic: traffic.clone(),
    });
    tasks.spawn(async move {
        let why = write_loop(&wclosed, &queue, wtraffic.as_deref()).await;
        queue.close(&wclosed);
        report_w(why);
    });

    let shared = Arc::new(ReadShared {
        side: Mutex::new(ReadSide {
            reader,
            handler,
            traffic,
        }),
        polled: AtomicBool::new(true),
        queue: rqueue.clone(),
        closed: closed.clone(),
        report: Box::new(report),
    });
    if let Some(stalls) = stalls {
        stalls.watch(Arc::downgrade(&shared) as _);
    }
    tasks.spawn(async move {
        // One cancellation future for the connection's life, not one per
        // frame (registering and dropping a waiter per frame showed in
        // profiles).
        let cancelled = closed.cancelled();
        tokio::pin!(cancelled);
        let why = loop {
            let delivered = std::future::poll_fn(|cx| {
                shared.polled.store(true, Ordering::Relaxed);
                lock_side(&shared.side).poll_deliver(cx, &rqueue)
            });
            let done = tokio::select! {
                biased;
                _ = &mut cancelled => break rqueue.close_reason(),
                done = delivered => done,
            };
            match done {
                // The receivers woken by that batch run (on this thread,
                // next) before more is read: their mailboxes stay short
                // and warm, and another thread may take up the reading.
                Delivered::Full => tokio::task::yield_now().await,
                Delivered::Drained => {}
                Delivered::End(why) => break why,
            }
        };
        shared.end(why);
    });
}

/// A connection's read side: the frames read and who they go to. Locked
/// for one poll at a time, by the reader task or by [`ReadPast`].
struct ReadSide<R, H> {
    /// The read half of the stream, and the frames buffered from it;
    /// dropped when the reader task ends (the [`Stalls`] watch holds it
    /// only while it reads).
    reader: FramedRead<R, Codec<Msg>>,
    /// Where each frame goes, in order.
    handler: H,
    /// Frames read, for the load report.
    traffic: Option<Arc<Traffic>>,
}

fn lock_side<R, H>(m: &Mutex<ReadSide<R, H>>) -> std::sync::MutexGuard<'_, ReadSide<R, H>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: AsyncRead + Unpin, H: FnMut(Msg)> ReadSide<R, H> {
    /// Reads and delivers the frames readable now, up to [`READ_BATCH`]:
    /// `Pending` if there are none (`cx` is woken when there are).
    ///
    /// Every frame already read is delivered before the receivers run:
    /// each is woken once per batch, not per frame; the frames the handler
    /// sends meanwhile (answers to spawns, exit signals) leave together
    /// when the batch ends, before the wakes.
    fn poll_deliver(&mut self, cx: &mut Context<'_>, queue: &Queue) -> Poll<Delivered> {
        let first = match self.reader.poll_next_unpin(cx) {
            Poll::Ready(next) => next,
            Poll::Pending => return Poll::Pending,
        };
        let done = supervisor::process::defer_wakes(|| {
            supervisor::remote::batch_sends(|| {
                let mut next = first;
                let mut frames = 0u64;
                let done = loop {
                    match next {
                        Some(Ok(msg)) => {
                            frames += 1;
                            (self.handler)(msg);
                        }
                        Some(Err(e)) => break Delivered::End(CloseReason::Error(e.to_string())),
                        None => break Delivered::End(CloseReason::Eof),
                    }
                    if frames >= READ_BATCH {
                        break Delivered::Full;
                    }
                    // Closed meanwhile (e.g. the node was declared down):
                    // nothing more is delivered.
                    if queue.closing.load(Ordering::Acquire) {
                        break Delivered::End(queue.close_reason());
                    }
                    // Frames still buffered (or readable at once); stop when
                    // the next would have to wait.
                    match self.reader.poll_next_unpin(cx) {
                        Poll::Ready(n) => next = n,
                        Poll::Pending => break Delivered::Drained,
                    }
                };
                if let Some(t) = &self.traffic {
                    t.frames_in.fetch_add(frames, Ordering::Relaxed);
                }
                done
            })
        });
        Poll::Ready(done)
    }
}

/// What one [`ReadSide::poll_deliver`] did.
enum Delivered {
    /// A whole batch: more may be readable at once.
    Full,
    /// Every frame readable was delivered.
    Drained,
    /// The connection ended.
    End(CloseReason),
}

/// What the reader task and [`ReadPast`] share.
struct ReadShared<R, H> {
    /// The read side, locked for one poll at a time.
    side: Mutex<ReadSide<R, H>>,
    /// Set at every poll of the reader task; cleared by each
    /// [`ReadPast::read_past`], which only reads when it finds it clear.
    polled: AtomicBool,
    /// The connection's queue: closed when the read side ends it.
    queue: Arc<Queue>,
    /// The connection's token: cancelled when the read side ends it (the
    /// writer task stops).
    closed: CancellationToken,
    /// Reports why the connection closed (once, whoever calls it first).
    report: Box<dyn Fn(CloseReason) + Send + Sync>,
}

impl<R, H> ReadShared<R, H> {
    /// The connection ended for `why`: it closes, and `on_close` runs.
    fn end(&self, why: CloseReason) {
        self.queue.close(&self.closed);
        (self.report)(why);
    }
}

/// Batches of frames one [`ReadPast::read_past`] delivers at most, so
/// that one busy connection does not hold the control thread.
const PAST_BATCHES: usize = 16;

impl<R, H> crate::stalls::ReadPast for ReadShared<R, H>
where
    R: AsyncRead + Unpin + Send,
    H: FnMut(Msg) + Send,
{
    fn read_past(&self) {
        if self.polled.swap(false, Ordering::Relaxed) || self.queue.closing.load(Ordering::Acquire)
        {
            return;
        }
        // The reader task holds it: it is running after all.
        let Ok(mut side) = self.side.try_lock() else {
            return;
        };
        let end = pool_proto::transport::read_past_reactor(|| {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            for _ in 0..PAST_BATCHES {
                match side.poll_deliver(&mut cx, &self.queue) {
                    Poll::Pending | Poll::Ready(Delivered::Drained) => return None,
                    Poll::Ready(Delivered::Full) => {}
                    Poll::Ready(Delivered::End(why)) => return Some(why),
                }
            }
            None
        });
        drop(side);
        if let Some(why) = end {
            self.end(why);
        }
    }
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

/// Polls the connection's write half, for one poll (the lock is never held
/// across an await).
fn poll_io<T>(
    queue: &Queue,
    cx: &mut Context<'_>,
    f: impl FnOnce(
        Pin<&mut (dyn AsyncWrite + Send + Unpin)>,
        &mut Context<'_>,
    ) -> Poll<std::io::Result<T>>,
) -> Poll<std::io::Result<T>> {
    let mut io = queue.io.lock().unwrap_or_else(|e| e.into_inner());
    match io.as_mut() {
        Some(io) => f(Pin::new(&mut *io.w), cx),
        None => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
    }
}

/// Writes all of `buf`, then flushes (TLS may hold bytes until then).
async fn write_all(queue: &Queue, buf: &[u8]) -> std::io::Result<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let n =
            std::future::poll_fn(|cx| poll_io(queue, cx, |w, cx| w.poll_write(cx, &buf[pos..])))
                .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pos += n;
    }
    std::future::poll_fn(|cx| poll_io(queue, cx, |w, cx| w.poll_flush(cx))).await
}

async fn write_loop(
    closed: &CancellationToken,
    queue: &Queue,
    traffic: Option<&Traffic>,
) -> CloseReason {
    let mut buf = BytesMut::with_capacity(BUF_START);
    loop {
        tokio::select! {
            biased;
            _ = queue.wake.notified() => {}
            _ = closed.cancelled() => {
                // Flush nothing more: the connection is closing (a peer
                // that does not read must not hold the shutdown either).
                let shutdown = std::future::poll_fn(|cx| poll_io(queue, cx, |w, cx| w.poll_shutdown(cx)));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), shutdown).await;
                return queue.close_reason();
            }
        }
        // Take everything buffered; senders go on filling the spare. From
        // here until the bytes are written and flushed, no sender writes
        // directly (`writing`).
        let frames = {
            let mut out = lock(&queue.out);
            out.woken = false;
            std::mem::swap(&mut out.buf, &mut buf);
            let frames = std::mem::take(&mut out.frames);
            // A direct write that left only a flush to do queued its frame
            // with no bytes: it still needs this pass.
            out.writing = frames > 0 || !buf.is_empty();
            frames
        };
        if queue.busy.swap(false, Ordering::AcqRel) {
            queue.drained.notify_waiters();
        }
        if frames == 0 && buf.is_empty() {
            continue;
        }
        let written = tokio::select! {
            biased;
            // A peer that stopped reading holds the write forever: a
            // close (e.g. on overflow) must still end this task.
            _ = closed.cancelled() => return queue.close_reason(),
            r = write_all(queue, &buf) => r,
        };
        if let Err(e) = written {
            return CloseReason::Error(format!("write failed: {e}"));
        }
        queue.unwritten.fetch_sub(frames, Ordering::Relaxed);
        if let Some(t) = traffic {
            t.frames_out.fetch_add(frames as u64, Ordering::Relaxed);
            t.bytes_out.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        buf.clear();
        if buf.capacity() > SHRINK_OVER {
            // A burst grew the buffer: give the memory back.
            buf = BytesMut::with_capacity(BUF_START);
        }
        // Sends queued meanwhile woke this task already (`woken`); until it
        // takes them, `woken` keeps senders off the direct path.
        lock(&queue.out).writing = false;
    }
}
