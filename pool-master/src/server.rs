//! The node listener: the accept loop, on the bounded and resilient
//! `pool_proto::listener` that the workers use too (STYLE.md point 12), and
//! one [`session`] per connection.
//!
//! At most `max_connections` connections are served at once (`--max-connections`):
//! a slot is taken when a connection is accepted and held through the TLS
//! and cookie handshakes until it closes. One more connection is refused
//! at once with a handshake `Refused` that says why (so the refused node's
//! log says it too), by at most `MAX_REFUSING` small tasks at a time;
//! beyond those, it is simply closed. Refusals are logged at most once a
//! second, with how many there were. Accept errors (out of file
//! descriptors, mostly) back off exponentially up to
//! `MAX_ACCEPT_BACKOFF` instead of spinning or giving up: the master
//! must outlive a burst of reconnects.
//!
//! The session runs its own handshake (within `--handshake-timeout`), so
//! it gives its handshaking slot back at once: a master connection holds
//! only its connection slot.

pub(crate) mod session;

use std::sync::Arc;
use std::time::Duration;

use pool_proto::listener::{Accepted, DEFAULT_MAX_HANDSHAKING, Limits, Listener, TcpAccept};
use tokio::net::{TcpListener, TcpStream};

use crate::shared::Shared;

/// Accepts node connections until the master stops; every session and
/// refusal runs on the master's tracker.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let max = shared.config.max_connections;
    let limits = Limits {
        max_connections: max,
        max_handshaking: DEFAULT_MAX_HANDSHAKING,
        handshake_timeout: shared.config.handshake_timeout,
        tls: shared.config.tls.clone(),
        refusal: format!(
            "too many connections: the master serves at most {max} (--max-connections); try again later or raise the limit"
        ),
        refuse_timeout: shared.config.handshake_timeout.min(Duration::from_secs(2)),
    };
    let stop = shared.token.clone();
    let tracker = shared.tracker.clone();
    let serve = move |conn: Accepted<TcpStream>| {
        let shared = shared.clone();
        async move {
            let Accepted {
                io,
                from,
                slot,
                handshake,
            } = conn;
            handshake.done();
            match io.peer_addr() {
                Ok(addr) => session::run(shared, io, addr).await,
                Err(e) => tracing::debug!(%from, cause = %e, "a connection closed at once"),
            }
            drop(slot);
        }
    };
    Listener::over(TcpAccept(listener), limits)
        .run(stop, serve, move |task| {
            tracker.spawn(task);
        })
        .await;
}
