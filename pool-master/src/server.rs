//! The node listener: the accept loop, bounded and resilient (STYLE.md
//! point 12), and one [`session`] per connection.
//!
//! At most `max_connections` connections are served at once (`--max-connections`):
//! a slot is taken when a connection is accepted and held through the TLS
//! and cookie handshakes until it closes. One more connection is refused
//! at once with a handshake `Refused` that says why (so the refused node's
//! log says it too), by at most [`MAX_REFUSING`] small tasks at a time;
//! beyond those, it is simply closed. Refusals are logged at most once a
//! second, with how many there were. Accept errors (out of file
//! descriptors, mostly) back off exponentially up to
//! [`MAX_ACCEPT_BACKOFF`] instead of spinning or giving up: the master
//! must outlive a burst of reconnects.

pub(crate) mod session;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::shared::Shared;

/// First pause after a failed accept.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts: short enough that the master
/// serves again within a second of descriptors freeing up.
pub(crate) const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Refusals (at the connection limit) in progress at once, at most.
const MAX_REFUSING: usize = 64;

/// Accepts node connections until the master stops.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let max = shared.config.max_connections;
    let limit = Arc::new(Semaphore::new(max));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut last_warning: Option<Instant> = None;
    let mut refused: u64 = 0;
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = shared.token.cancelled() => return,
            res = listener.accept() => res,
        };
        match accepted {
            Ok((stream, addr)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    refused += 1;
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        warn!(from = %addr, max, refused,
                            "refused a connection: --max-connections connections are open");
                        last_warning = Some(Instant::now());
                        refused = 0;
                    }
                    if let Ok(slot) = refusing.clone().try_acquire_owned() {
                        let tls = shared.config.tls.clone();
                        let reason = format!(
                            "too many connections: the master serves at most {max} (--max-connections); try again later or raise the limit"
                        );
                        let timeout = shared.config.handshake_timeout.min(Duration::from_secs(2));
                        shared.tracker.spawn(async move {
                            pool_proto::tls::refuse(tls.as_ref(), stream, reason, timeout).await;
                            drop(slot);
                        });
                    }
                    continue;
                };
                let shared2 = shared.clone();
                shared.tracker.spawn(async move {
                    session::run(shared2, stream, addr).await;
                    drop(permit);
                });
            }
            Err(e) => {
                warn!(cause = %e, retry_in = ?backoff, "failed to accept a connection");
                tokio::select! {
                    _ = shared.token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}
