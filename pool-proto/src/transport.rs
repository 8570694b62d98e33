//! The transport seam (feature `net`; STYLE.md point 16): how a node dials
//! another and accepts connections, behind two small traits, with TCP for
//! the daemons and an in-memory network for tests.
//!
//! ```text
//!  Transport::connect(addr) ──> BoxIo ──> tls::connect_handshake ──> frames
//!  Listen::accept()         ──> BoxIo ──> tls::accept_handshake  ──> frames
//! ```
//!
//! Everything above the byte stream (TLS, the cookie handshake, framing) is
//! the same whichever transport carries it: [`crate::tls`] and
//! [`crate::handshake`] are generic over the stream.
//!
//! - [`Tcp`] dials with `TcpStream::connect`; a tokio `TcpListener` is a
//!   [`Listen`]. Both set `TCP_NODELAY` (frames are small and latency-bound).
//! - [`MemNetwork`] is chitchat's `ChannelTransport` for byte streams:
//!   [`MemNetwork::bind`] gives a listener at an address and a
//!   [`MemDialer`] reaches it over a `tokio::io::duplex` pipe. It can refuse
//!   new connections and cut live ones ([`MemNetwork::partition`],
//!   [`MemNetwork::cut`]), so a test can partition a cluster that runs in
//!   one process.
//!
//! Nothing here spawns a task or needs a runtime of its own: these are types
//! and thin I/O; the node decides where the work runs.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

#[cfg(test)]
mod tests;

/// A byte stream a transport carries: anything that reads and writes and
/// can move between tasks.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The stream as `Any`, to tell its type ([`rebind`]).
    fn as_any(&self) -> &dyn Any;
    /// The stream as `Any`, by value ([`rebind`]).
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// Moves `io` to the reactor of the runtime `rt`: a TCP stream is
/// registered there instead (so its readiness wakes `rt`'s threads, and a
/// task of `rt` reading it is woken without a hand-off between runtimes),
/// wrapped so that it can still be read from another thread while `rt`
/// polls nothing ([`read_past_reactor`]); any other stream (memory) is
/// returned as it is. Call it between reads, while nothing waits on the
/// stream.
pub fn rebind(io: BoxIo, rt: &tokio::runtime::Handle) -> io::Result<BoxIo> {
    if !<dyn Io>::as_any(&*io).is::<tokio::net::TcpStream>() {
        return Ok(io);
    }
    let tcp = <dyn Io>::into_any(io)
        .downcast::<tokio::net::TcpStream>()
        .map_err(|_| io::Error::other("a TCP stream changed type while it was moved"))?;
    let std = tcp.into_std()?;
    let _in_rt = rt.enter();
    Ok(Box::new(Rebound {
        tcp: tokio::net::TcpStream::from_std(std)?,
    }))
}

thread_local! {
    /// Set while [`read_past_reactor`] runs on this thread.
    static PAST_REACTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every read of a [`rebind`]-ed TCP stream on this thread
/// made straight on the socket: it returns the bytes the socket holds, or
/// `Pending` (registering no waker) when it holds none.
///
/// Why: a stream's readiness reaches its tasks only through its runtime's
/// reactor, which a runtime whose every thread computes without awaiting
/// does not poll. Another thread (the node's control thread) can still
/// read what arrived, with a no-op waker; the stream's own reader keeps
/// the waker it registered, and is woken as before when the runtime polls
/// again (it then finds nothing, or what arrived since).
pub fn read_past_reactor<R>(f: impl FnOnce() -> R) -> R {
    /// Clears the flag even if `f` panics.
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            PAST_REACTOR.set(self.0);
        }
    }
    let _reset = Reset(PAST_REACTOR.replace(true));
    f()
}

/// The outcome of [`write_now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// All of it was written and flushed.
    Done,
    /// This many bytes were written (possibly none, possibly all but not
    /// flushed); the rest, and a flush, are the connection writer's.
    Partial(usize),
}

/// Writes as much of `buf` as `w` takes without blocking, then flushes
/// without blocking: a connection's direct write, done by whoever has a
/// frame while the connection's writer task is idle. Polled with a no-op
/// waker: a `Pending` registers no one, and the caller hands the rest to
/// the writer task, whose own poll registers it.
pub fn write_now(w: &mut (dyn AsyncWrite + Send + Unpin), buf: &[u8]) -> Direct {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut pos = 0;
    while pos < buf.len() {
        match Pin::new(&mut *w).poll_write(&mut cx, &buf[pos..]) {
            Poll::Ready(Ok(n)) if n > 0 => pos += n,
            // An error or a closed stream is the writer's to report.
            _ => return Direct::Partial(pos),
        }
    }
    match Pin::new(&mut *w).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Direct::Done,
        _ => Direct::Partial(pos),
    }
}

/// A TCP stream moved to another runtime's reactor by [`rebind`].
#[derive(Debug)]
struct Rebound {
    tcp: tokio::net::TcpStream,
}

impl AsyncRead for Rebound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !PAST_REACTOR.get() {
            return Pin::new(&mut self.tcp).poll_read(cx, buf);
        }
        use std::io::Read;
        let sock = socket2::SockRef::from(&self.tcp);
        loop {
            match (&*sock).read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Rebound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A connection of any transport, as the layers above see it.
pub type BoxIo = Box<dyn Io>;

/// The dialing side of a transport.
pub trait Transport: fmt::Debug + Send + Sync + 'static {
    /// Opens a connection to `addr` (`host:port` for TCP, any address a
    /// [`MemListener`] was bound to for memory).
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>>;
}

/// The accepting side of a transport: a bound listener.
pub trait Listen: fmt::Debug + Send + 'static {
    /// The next connection, with the address it came from (for logs).
    /// Cancel-safe: dropping the future loses no connection.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>>;

    /// The address this listener is bound to.
    fn local_addr(&self) -> io::Result<String>;
}

/// Dials over TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Transport for Tcp {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as BoxIo)
        })
    }
}

impl Listen for tokio::net::TcpListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>> {
        Box::pin(async move {
            let (stream, from) = tokio::net::TcpListener::accept(self).await?;
            let _ = stream.set_nodelay(true);
            Ok((Box::new(stream) as BoxIo, from.to_string()))
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        tokio::net::TcpListener::local_addr(self).map(|a| a.to_string())
    }
}

/// Bytes an in-memory pipe holds in each direction before a writer waits
/// (as a socket's buffers would).
const PIPE_BUFFER: usize = 256 * 1024;

/// An in-memory network: listeners keyed by address, connections as
/// `tokio::io::duplex` pipes, and switches to refuse or cut them. Cheap to
/// clone (every clone is the same network).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use pool_proto::transport::{Listen, MemNetwork, Transport};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let net = MemNetwork::new();
/// let mut listener = net.bind("w1:1")?;
/// let mut out = net.dialer("w2:1").connect("w1:1").await?;
/// let (mut inc, from) = listener.accept().await?;
/// assert_eq!(from, "w2:1");
/// out.write_all(b"hi").await?;
/// let mut buf = [0; 2];
/// inc.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hi");
///
/// net.partition("w1:1", "w2:1"); // cuts the pipe, refuses new ones
/// assert!(inc.read(&mut buf).await.is_err());
/// assert!(net.dialer("w2:1").connect("w1:1").await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemNetwork {
    state: Arc<Mutex<MemState>>,
}

/// What a [`MemNetwork`] knows.
#[derive(Debug, Default)]
struct MemState {
    /// Bound listeners: where a connection to each address is queued.
    listeners: HashMap<String, mpsc::UnboundedSender<(MemStream, String)>>,
    /// Addresses that refuse new connections ([`MemNetwork::refuse`]).
    refused: HashSet<String>,
    /// Pairs of addresses that cannot reach each other, smaller first.
    partitions: HashSet<(String, String)>,
    /// Connections that may still be open, for [`MemNetwork::cut`].
    links: Vec<MemLink>,
}

/// One connection between two addresses.
#[derive(Debug)]
struct MemLink {
    /// The dialing side's address.
    from: String,
    /// The listening side's address.
    to: String,
    /// Cancelled to cut it: both ends then fail every read and write.
    cut: CancellationToken,
    /// Alive while either end is.
    alive: Weak<()>,
}

impl MemLink {
    fn joins(&self, a: &str, b: &str) -> bool {
        (self.from == a && self.to == b) || (self.from == b && self.to == a)
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, why)
}

impl MemNetwork {
    /// An empty network.
    pub fn new() -> Self {
        MemNetwork::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A listener at `addr`; an address already bound is refused
    /// (`AddrInUse`) until its listener is dropped.
    pub fn bind(&self, addr: impl Into<String>) -> io::Result<MemListener> {
        let addr = addr.into();
        let mut st = self.lock();
        if st.listeners.get(&addr).is_some_and(|l| !l.is_closed()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{addr} is already bound on this in-memory network"),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        st.listeners.insert(addr.clone(), tx);
        Ok(MemListener {
            addr,
            incoming: rx,
            net: Arc::downgrade(&self.state),
        })
    }

    /// A [`Transport`] whose connections come from `from` (the address a
    /// listener reports, and the one [`partition`](Self::partition) and
    /// [`cut`](Self::cut) match).
    pub fn dialer(&self, from: impl Into<String>) -> MemDialer {
        MemDialer {
            net: self.clone(),
            from: from.into(),
        }
    }

    /// Opens a connection from `from` to the listener at `to`. Refused
    /// (`ConnectionRefused`) when nothing listens there, when `to` refuses
    /// connections, or when the two are partitioned.
    pub fn connect(&self, from: &str, to: &str) -> io::Result<MemStream> {
        let mut st = self.lock();
        if st.refused.contains(to) {
            return Err(refused(format!("{to} refuses connections")));
        }
        if st.partitions.contains(&ordered(from, to)) {
            return Err(refused(format!("{from} and {to} are partitioned")));
        }
        let Some(listener) = st.listeners.get(to) else {
            return Err(refused(format!("nothing listens at {to}")));
        };
        let (near, far) = tokio::io::duplex(PIPE_BUFFER);
        let cut = CancellationToken::new();
        let alive = Arc::new(());
        let near = MemStream::new(near, &cut, alive.clone());
        let far = MemStream::new(far, &cut, alive.clone());
        if listener.send((far, from.to_owned())).is_err() {
            return Err(refused(format!("nothing listens at {to}")));
        }
        st.links.retain(|l| l.alive.strong_count() > 0);
        st.links.push(MemLink {
            from: from.to_owned(),
            to: to.to_owned(),
            cut,
            alive: Arc::downgrade(&alive),
        });
        Ok(near)
    }

    /// New connections to `addr` are refused (a host that went away, or a
    /// firewall); live ones are left alone (see [`cut`](Self::cut)).
    pub fn refuse(&self, addr: &str) {
        self.lock().refused.insert(addr.to_owned());
    }

    /// Undoes [`refuse`](Self::refuse).
    pub fn allow(&self, addr: &str) {
        self.lock().refused.remove(addr);
    }

    /// `a` and `b` can no longer reach each other: live connections between
    /// them are cut and new ones refused, both ways, until
    /// [`heal`](Self::heal).
    pub fn partition(&self, a: &str, b: &str) {
        let mut st = self.lock();
        st.partitions.insert(ordered(a, b));
        for l in st.links.iter().filter(|l| l.joins(a, b)) {
            l.cut.cancel();
        }
    }

    /// Undoes [`partition`](Self::partition).
    pub fn heal(&self, a: &str, b: &str) {
        self.lock().partitions.remove(&ordered(a, b));
    }

    /// Cuts every live connection to or from `addr` (both ends fail their
    /// next read or write, as after a reset); returns how many.
    pub fn cut(&self, addr: &str) -> usize {
        let mut st = self.lock();
        st.links.retain(|l| l.alive.strong_count() > 0);
        let mut n = 0;
        for l in st.links.iter().filter(|l| l.from == addr || l.to == addr) {
            if !l.cut.is_cancelled() {
                l.cut.cancel();
                n += 1;
            }
        }
        n
    }
}

/// Dials on a [`MemNetwork`] from one address ([`MemNetwork::dialer`]).
#[derive(Clone, Debug)]
pub struct MemDialer {
    net: MemNetwork,
    from: String,
}

impl Transport for MemDialer {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxIo>> {
        let conn = self.net.connect(&self.from, addr);
        Box::pin(async move { conn.map(|s| Box::new(s) as BoxIo) })
    }
}

/// A listener on a [`MemNetwork`] ([`MemNetwork::bind`]). Dropping it
/// frees the address: connections not yet accepted see their peer close.
#[derive(Debug)]
pub struct MemListener {
    addr: String,
    incoming: mpsc::UnboundedReceiver<(MemStream, String)>,
    net: Weak<Mutex<MemState>>,
}

impl Listen for MemListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>> {
        Box::pin(async move {
            match self.incoming.recv().await {
                Some((stream, from)) => Ok((Box::new(stream) as BoxIo, from)),
                None => Err(io::Error::other(format!(
                    "the in-memory listener at {} was unbound",
                    self.addr
                ))),
            }
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.addr.clone())
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        self.incoming.close();
        let Some(state) = self.net.upgrade() else {
            return;
        };
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        // Only our own registration (now closed): the address may have been
        // bound again already.
        if st.listeners.get(&self.addr).is_some_and(|l| l.is_closed()) {
            st.listeners.remove(&self.addr);
        }
    }
}

/// One end of an in-memory connection: a duplex pipe that a
/// [`MemNetwork`] can cut.
pub struct MemStream {
    io: DuplexStream,
    /// Resolves once the connection is cut.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set once `cut` resolved (it is not polled again).
    is_cut: bool,
    /// Tells the network whether either end is still open.
    _alive: Arc<()>,
}

impl fmt::Debug for MemStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStream")
            .field("is_cut", &self.is_cut)
            .finish_non_exhaustive()
    }
}

impl MemStream {
    fn new(io: DuplexStream, cut: &CancellationToken, alive: Arc<()>) -> Self {
        MemStream {
            io,
            cut: Box::pin(cut.clone().cancelled_owned()),
            is_cut: false,
            _alive: alive,
        }
    }

    /// True once cut; registers the task to be woken by a cut otherwise.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.is_cut && self.cut.as_mut().poll(cx).is_ready() {
            self.is_cut = true;
        }
        self.is_cut
    }
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the in-memory connection was cut",
    )
}

impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_cut(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_cut(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_cut(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_cut(cx) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
