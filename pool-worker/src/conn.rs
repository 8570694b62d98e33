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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::BytesMut;
use futures_util::StreamExt;
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

/// Frames and bytes moved by a set of connections, for the load report
/// (updated once per batch written or frame read, not per message send).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
}

/// The sending side of a connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnTx {
    tx: mpsc::UnboundedSender<Msg>,
    closed: CancellationToken,
    /// Frames queued and not yet written.
    queued: Arc<AtomicUsize>,
}

/// The receiving side of [`ConnTx::pending`], handed to [`run`].
#[derive(Debug)]
pub(crate) struct ConnRx {
    rx: mpsc::UnboundedReceiver<Msg>,
    closed: CancellationToken,
    queued: Arc<AtomicUsize>,
}

impl ConnRx {
    /// Closes the connection before it was ever run (connecting failed).
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }
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
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), Msg> {
        if self.closed.is_cancelled() {
            return Err(msg);
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.send(msg) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(e.0)
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

    /// True when every queued frame has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Relaxed) == 0
    }

    /// Resolves when the connection is closed.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// A sender whose frames queue until [`run`] attaches a connection to
    /// the returned receiver (used while connecting).
    pub(crate) fn pending() -> (ConnTx, ConnRx) {
        let (tx, rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            ConnTx {
                tx,
                closed: closed.clone(),
                queued: queued.clone(),
            },
            ConnRx { rx, closed, queued },
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
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Eof => f.write_str("closed by the peer"),
            CloseReason::Error(e) => f.write_str(e),
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
    let ConnRx { rx, closed, queued } = crx;
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
    tokio::spawn(async move {
        let why = write_loop(
            write_half,
            rx,
            &wclosed,
            &queued,
            wtraffic.as_deref(),
            max_frame_len,
        )
        .await;
        wclosed.cancel();
        report_w(why);
    });

    tokio::spawn(async move {
        let why = loop {
            tokio::select! {
                biased;
                _ = closed.cancelled() => break CloseReason::Local,
                next = reader.next() => match next {
                    Some(Ok(msg)) => {
                        if let Some(t) = &traffic {
                            t.frames_in.fetch_add(1, Ordering::Relaxed);
                        }
                        handler(msg)
                    }
                    Some(Err(e)) => break CloseReason::Error(e.to_string()),
                    None => break CloseReason::Eof,
                },
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
    mut rx: mpsc::UnboundedReceiver<Msg>,
    closed: &CancellationToken,
    queued: &AtomicUsize,
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
        let Some(first) = first else {
            // Flush nothing more: the connection is closing.
            let _ = w.shutdown().await;
            return CloseReason::Local;
        };
        push_frame(&first, &mut buf, max_frame_len);
        let mut frames = 1;
        while buf.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => {
                    push_frame(&m, &mut buf, max_frame_len);
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        if buf.is_empty() {
            queued.fetch_sub(frames, Ordering::Relaxed);
            continue;
        }
        if let Err(e) = w.write_all(&buf).await {
            return CloseReason::Error(format!("write failed: {e}"));
        }
        queued.fetch_sub(frames, Ordering::Relaxed);
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
