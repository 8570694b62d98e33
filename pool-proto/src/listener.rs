//! One bounded, resilient accept loop (feature `tls`; STYLE.md point 12)
//! for every daemon that accepts connections.
//!
//! ```text
//! Listener::run(stop, serve, spawn)
//!   loop: accept ─┬─ a slot is free   → spawn(serve(Accepted { io, from, slot }))
//!                 ├─ at the limit     → spawn(Refusal::run)   (at most MAX_REFUSING at once)
//!                 ├─ accept error     → back off (5 ms .. 1 s), unless `stop` fires first
//!                 └─ `stop` cancelled → return
//! ```
//!
//! - At most `max_connections` connections are served at once: a slot
//!   ([`Accepted::slot`]) is taken when a connection is accepted and held
//!   by the caller through the TLS and cookie handshakes until it closes.
//! - One more connection is refused at once with a handshake `Refused`
//!   that says why (so the refused peer's log says it too), by at most
//!   [`MAX_REFUSING`] refusals at a time; beyond those it is simply closed.
//!   Refusals are logged at most once a second, with how many there were.
//! - Accept errors (out of file descriptors, mostly) back off exponentially
//!   up to [`MAX_ACCEPT_BACKOFF`] instead of spinning or giving up; the
//!   back-off sleep ends early when `stop` fires.
//!
//! The listener never spawns: it hands each connection's future and each
//! refusal's to a spawner the caller gives (a closure over the caller's
//! `TaskTracker`), so every task it causes belongs to its daemon and ends
//! with it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::tls::{self, TlsConfig};
use crate::transport::{BoxIo, Listen};

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

/// How often the "refused a connection" warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// The limits of a [`Listener`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once (`--max-connections`); at least 1.
    pub max_connections: usize,
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
pub struct Accepted {
    /// The byte stream (no handshake yet).
    pub io: BoxIo,
    /// Where it came from, for logs.
    pub from: String,
    /// Its slot of `max_connections`: hold it until the connection closes.
    pub slot: OwnedSemaphorePermit,
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

impl std::fmt::Debug for Accepted {
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
pub struct Listener {
    /// Where connections come from.
    listen: Box<dyn Listen>,
    /// See [`Limits`].
    limits: Limits,
    /// Slots of `max_connections`; each [`Accepted`] holds one.
    slots: Arc<Semaphore>,
    /// Slots of [`MAX_REFUSING`]; each [`Refusal`] holds one.
    refusing: Arc<Semaphore>,
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
        Listener {
            listen,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
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
    ) -> Option<Accepted> {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return None,
                res = self.listen.accept() => res,
            };
            match accepted {
                Ok((io, from)) => {
                    self.backoff = MIN_ACCEPT_BACKOFF;
                    match self.slots.clone().try_acquire_owned() {
                        Ok(slot) => return Some(Accepted { io, from, slot }),
                        Err(_) => self.refuse(io, &from, &mut refuse),
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
        F: FnMut(Accepted) -> Fut,
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
