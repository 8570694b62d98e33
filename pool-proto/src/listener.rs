//! One bounded, resilient accept loop (feature `tls`; STYLE.md point 12)
//! for every daemon that accepts connections (the worker's peers and the
//! master's nodes).
//!
//! ```text
//! Listener::run(stop, serve, spawn)
//!   loop: accept ─┬─ a slot is free   → spawn(serve(Accepted { io, from, slot, handshake }))
//!                 ├─ at the limit     → spawn(Refusal::run)   (at most MAX_REFUSING at once)
//!                 ├─ accept error     → back off (5 ms .. 1 s), unless `stop` fires first
//!                 └─ `stop` cancelled → return
//! ```
//!
//! - At most `max_connections` connections are served at once: a slot
//!   ([`Accepted::slot`]) is taken when a connection is accepted and held
//!   by the caller through the TLS and cookie handshakes until it closes.
//! - Connections that have not finished their handshake are limited apart
//!   ([`Limits::max_handshaking`], [`Handshake`]): when that many are
//!   handshaking, the oldest of them is dropped to make room for the new
//!   one, and none may take longer than [`Limits::handshake_timeout`]. So a
//!   flood of idle or bad unauthenticated sockets holds at most
//!   `max_handshaking` slots, for a while, and a legitimate peer always
//!   gets through: the caller runs its handshake under
//!   [`Handshake::bound`] and then says [`Handshake::done`] or
//!   [`Handshake::failed`].
//! - One more connection is refused at once with a handshake `Refused`
//!   that says why (so the refused peer's log says it too), by at most
//!   [`MAX_REFUSING`] refusals at a time; beyond those it is simply closed.
//!   Refusals are logged at most once a second, with how many there were;
//!   so are failed and dropped handshakes (one summary line a second). A
//!   peer that closes before or during its hello (a port probe, a client
//!   that exited) is logged at debug only ([`is_quiet_close`]).
//! - Accept errors (out of file descriptors, mostly) back off exponentially
//!   up to [`MAX_ACCEPT_BACKOFF`] instead of spinning or giving up; the
//!   back-off sleep ends early when `stop` fires.
//!
//! The listener never spawns: it hands each connection's future and each
//! refusal's to a spawner the caller gives (a closure over the caller's
//! `TaskTracker`), so every task it causes belongs to its daemon and ends
//! with it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::tls::{self, TlsConfig};
use crate::transport::{BoxIo, Io, Listen};

#[cfg(test)]
mod tests;

/// First pause after a failed accept.
pub const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);

/// Longest pause between accept attempts: short enough that a daemon serves
/// again within a second of descriptors freeing up.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Refusals (at the connection limit) in progress at once, at most: each
/// holds a socket, and a flood must not turn into a flood of them.
pub const MAX_REFUSING: usize = 64;

/// How often the "refused a connection" warning may be logged, and the
/// summary of failed handshakes.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Connections in their handshake at once, by default: a handshake takes
/// a round trip or two, so even a burst of reconnecting nodes rarely has
/// more than a few in flight.
pub const DEFAULT_MAX_HANDSHAKING: usize = 64;

/// The limits of a [`Listener`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once (`--max-connections`); at least 1.
    pub max_connections: usize,
    /// Connections in their handshake at once (at least 1); a new one
    /// past it drops the oldest ([`DEFAULT_MAX_HANDSHAKING`]).
    pub max_handshaking: usize,
    /// The longest a connection may take to finish its handshake once
    /// accepted (the daemon's `--handshake-timeout`).
    pub handshake_timeout: Duration,
    /// TLS settings, so that a refused peer (which speaks TLS first) can
    /// still read the refusal.
    pub tls: Option<TlsConfig>,
    /// What a refused peer is told, e.g. "too many connections: ...; try
    /// again later or raise the limit".
    pub refusal: String,
    /// Bound on one refusal (TLS, the `Refused` frame, the close).
    pub refuse_timeout: Duration,
}

/// An accepted connection, to be served by the caller.
pub struct Accepted<S = BoxIo> {
    /// The byte stream (no handshake yet).
    pub io: S,
    /// Where it came from, for logs.
    pub from: String,
    /// Its slot of `max_connections`: hold it until the connection closes.
    pub slot: OwnedSemaphorePermit,
    /// Its handshaking slot: run the handshake under [`Handshake::bound`],
    /// then say how it went.
    pub handshake: Handshake,
}

/// Where connections come from: a bound listener of some stream type.
/// [`AnyListen`] (any transport: TCP or memory) and [`TcpAccept`] (plain
/// `TcpStream`s, for a daemon that wants the socket itself) are.
pub trait Accept: fmt::Debug + Send + 'static {
    /// The stream of an accepted connection.
    type Io: Io;

    /// The next connection and where it came from. Cancel-safe.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(Self::Io, String)>>;

    /// The address it is bound to.
    fn local_addr(&self) -> io::Result<String>;
}

/// A listener of any transport (a newtype, so that the accept loop's
/// future names no trait object lifetime).
#[derive(Debug)]
pub struct AnyListen(pub Box<dyn Listen>);

impl Accept for AnyListen {
    type Io = BoxIo;

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>> {
        self.0.accept()
    }

    fn local_addr(&self) -> io::Result<String> {
        self.0.local_addr()
    }
}

/// A TCP listener whose connections are handed over as `TcpStream`s.
#[derive(Debug)]
pub struct TcpAccept(pub tokio::net::TcpListener);

impl Accept for TcpAccept {
    type Io = tokio::net::TcpStream;

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(tokio::net::TcpStream, String)>> {
        Box::pin(async move {
            let (stream, from) = self.0.accept().await?;
            Ok((stream, from.to_string()))
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        self.0.local_addr().map(|a| a.to_string())
    }
}

/// True for a handshake that ended because the peer closed quietly — an
/// end of stream or a reset before or during its hello, as a port probe
/// or a client that exited does — rather than because it said something
/// wrong: worth a debug line, not a warning.
pub fn is_quiet_close(e: &Error) -> bool {
    match e {
        Error::HandshakeClosed { .. } => true,
        Error::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// A rate limit: the first event of an interval is logged, the others
/// counted into the next line.
#[derive(Debug, Default)]
struct Every {
    /// When the last line was logged.
    last: Option<Instant>,
    /// Events not logged since.
    left_out: u64,
}

impl Every {
    /// One more event: `Some(left_out)` if this one is to be logged.
    fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last = Some(now);
            Some(std::mem::take(&mut self.left_out))
        } else {
            self.left_out += 1;
            None
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handshaking connections of one listener, shared with their
/// [`Handshake`] guards.
#[derive(Debug)]
struct Handshaking {
    /// At most this many at once.
    max: usize,
    /// How long each may take.
    timeout: Duration,
    /// The handshaking connections, oldest first: id and the token that
    /// drops it.
    open: Mutex<VecDeque<(u64, CancellationToken)>>,
    /// Ids of handshakes.
    next: std::sync::atomic::AtomicU64,
    /// Rate limit of the warnings about failed and dropped handshakes.
    warned: Mutex<Every>,
}

impl Handshaking {
    /// A slot for a new connection, dropping the oldest handshake when all
    /// are taken.
    fn enter(self: &Arc<Self>, from: &str) -> Handshake {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = CancellationToken::new();
        let evicted = {
            let mut open = lock(&self.open);
            let evicted = if open.len() >= self.max {
                open.pop_front()
            } else {
                None
            };
            open.push_back((id, token.clone()));
            evicted
        };
        if let Some((_, old)) = evicted {
            old.cancel();
            self.warn(format_args!(
                "dropped the oldest of {} connections still in their handshake to make room for one from {from} (a flood of unauthenticated connections?)",
                self.max
            ));
        }
        Handshake {
            id,
            from: from.to_owned(),
            dropped: token,
            deadline: Instant::now() + self.timeout,
            pool: self.clone(),
        }
    }

    /// Logs `what` at warn, rate-limited with a count.
    fn warn(&self, what: fmt::Arguments<'_>) {
        if let Some(left_out) = lock(&self.warned).hit() {
            tracing::warn!(left_out, "{what}");
        }
    }
}

/// A connection's handshaking slot (see the module docs). Dropping it
/// frees the slot.
pub struct Handshake {
    /// Which one in the listener's list.
    id: u64,
    /// Where the connection came from, for the logs.
    from: String,
    /// Cancelled when a newer connection takes this slot.
    dropped: CancellationToken,
    /// When the handshake must be done.
    deadline: Instant,
    /// The listener's handshaking connections.
    pool: Arc<Handshaking>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Runs `handshake` unless this connection is dropped for a newer one
    /// or the handshake timeout passes first (then `None`, already logged:
    /// close the connection).
    pub async fn bound<T>(&self, handshake: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            r = handshake => Some(r),
            _ = self.dropped.cancelled() => None,
            _ = tokio::time::sleep_until(self.deadline) => {
                self.pool.warn(format_args!(
                    "refused a connection from {}: the handshake timed out after {:?}",
                    self.from, self.pool.timeout
                ));
                None
            }
        }
    }

    /// The handshake succeeded: the slot is free for the next one.
    pub fn done(self) {}

    /// The handshake failed with `cause`: logged (at debug for a quiet
    /// close, else a rate-limited warning with a count), and the slot is
    /// free.
    pub fn failed(self, cause: &Error) {
        if is_quiet_close(cause) {
            tracing::debug!(from = %self.from, %cause, "a connection closed before its handshake ended");
        } else {
            self.pool.warn(format_args!(
                "refused a connection from {}: {cause}",
                self.from
            ));
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        lock(&self.pool.open).retain(|(id, _)| *id != self.id);
    }
}

/// A connection refused at the limit: run it (it sends the handshake
/// `Refused` and closes within [`Limits::refuse_timeout`]).
pub struct Refusal {
    io: BoxIo,
    tls: Option<TlsConfig>,
    reason: String,
    timeout: Duration,
    /// Its slot of [`MAX_REFUSING`], held while it runs.
    _slot: OwnedSemaphorePermit,
}

impl<S> std::fmt::Debug for Accepted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refusal")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl Refusal {
    /// Refuses the connection politely (see [`crate::tls::refuse`]).
    pub async fn run(self) {
        tls::refuse(self.tls.as_ref(), self.io, self.reason, self.timeout).await;
    }
}

/// The accept loop's state: the bound listener, the connection slots and
/// the warning rate limit.
#[derive(Debug)]
pub struct Listener<A: Accept = AnyListen> {
    /// Where connections come from.
    listen: A,
    /// See [`Limits`].
    limits: Limits,
    /// Slots of `max_connections`; each [`Accepted`] holds one.
    slots: Arc<Semaphore>,
    /// Slots of [`MAX_REFUSING`]; each [`Refusal`] holds one.
    refusing: Arc<Semaphore>,
    /// The connections still in their handshake.
    handshaking: Arc<Handshaking>,
    /// When the last refusal warning was logged.
    last_warning: Option<Instant>,
    /// Refusals since that warning.
    refused: u64,
    /// The pause after the next accept error.
    backoff: Duration,
}

impl Listener {
    /// A listener over `listen` with `limits`.
    pub fn new(listen: impl Listen, limits: Limits) -> Self {
        Listener::boxed(Box::new(listen), limits)
    }

    /// A listener over an already boxed `listen`.
    pub fn boxed(listen: Box<dyn Listen>, limits: Limits) -> Self {
        Listener::over(AnyListen(listen), limits)
    }
}

impl<A: Accept> Listener<A> {
    /// A listener over any [`Accept`] (e.g. [`TcpAccept`]).
    pub fn over(listen: A, limits: Limits) -> Self {
        Listener {
            listen,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            handshaking: Arc::new(Handshaking {
                max: limits.max_handshaking.max(1),
                timeout: limits.handshake_timeout,
                open: Mutex::new(VecDeque::new()),
                next: std::sync::atomic::AtomicU64::new(0),
                warned: Mutex::new(Every::default()),
            }),
            limits,
            last_warning: None,
            refused: 0,
            backoff: MIN_ACCEPT_BACKOFF,
        }
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> io::Result<String> {
        self.listen.local_addr()
    }

    /// The next connection to serve, or `None` once `stop` is cancelled.
    /// A connection over the limit is handed to `refuse` as a [`Refusal`]
    /// to run (or closed when [`MAX_REFUSING`] already run), and the wait
    /// goes on.
    pub async fn accept(
        &mut self,
        stop: &CancellationToken,
        mut refuse: impl FnMut(Refusal),
    ) -> Option<Accepted<A::Io>> {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return None,
                res = self.listen.accept() => res,
            };
            match accepted {
                Ok((io, from)) => {
                    self.backoff = MIN_ACCEPT_BACKOFF;
                    match self.slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let handshake = self.handshaking.enter(&from);
                            return Some(Accepted {
                                io,
                                from,
                                slot,
                                handshake,
                            });
                        }
                        Err(_) => self.refuse(Box::new(io), &from, &mut refuse),
                    }
                }
                Err(e) => {
                    tracing::warn!(cause = %e, retry_in = ?self.backoff, "failed to accept a connection");
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(self.backoff) => {}
                    }
                    self.backoff = (self.backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
    }

    /// A connection over the limit: warn (rate-limited) and refuse it.
    fn refuse(&mut self, io: BoxIo, from: &str, refuse: &mut impl FnMut(Refusal)) {
        self.refused += 1;
        let max = self.limits.max_connections;
        // One warning per second at most under a flood.
        if self.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            tracing::warn!(%from, max, refused = self.refused,
                "refused a connection: --max-connections connections are open");
            self.last_warning = Some(Instant::now());
            self.refused = 0;
        }
        if let Ok(slot) = self.refusing.clone().try_acquire_owned() {
            refuse(Refusal {
                io,
                tls: self.limits.tls.clone(),
                reason: self.limits.refusal.clone(),
                timeout: self.limits.refuse_timeout,
                _slot: slot,
            });
        }
    }

    /// Accepts until `stop` is cancelled: each accepted connection is
    /// handed to `spawn` as `serve(accepted)`, each refusal as its
    /// [`Refusal::run`].
    pub async fn run<F, Fut>(
        mut self,
        stop: CancellationToken,
        mut serve: F,
        mut spawn: impl FnMut(BoxFuture<'static, ()>),
    ) where
        F: FnMut(Accepted<A::Io>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        while let Some(conn) = self
            .accept(&stop, |refusal| spawn(Box::pin(refusal.run())))
            .await
        {
            spawn(Box::pin(serve(conn)));
        }
    }
}

impl Listen for Box<dyn Listen> {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>> {
        (**self).accept()
    }

    fn local_addr(&self) -> io::Result<String> {
        (**self).local_addr()
    }
}
