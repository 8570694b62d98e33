//! The node listener: the accept loop, bounded and resilient (STYLE.md
//! point 12), and one [`session`] per connection.
//!
//! A semaphore permit is taken *before* accepting, so at the limit new
//! connections wait in the kernel's backlog instead of being accepted and
//! dropped. Accept errors (out of file descriptors, mostly) back off
//! exponentially up to [`MAX_ACCEPT_BACKOFF`] instead of spinning or
//! giving up: the master must outlive a burst of reconnects.

pub(crate) mod peer;
pub(crate) mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::master::Shared;

/// First pause after a failed accept.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts: short enough that the master
/// serves again within a second of descriptors freeing up.
pub(crate) const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts node connections until the master stops.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        // Wait for room before accepting.
        let permit = tokio::select! {
            _ = shared.token.cancelled() => return,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return, // the semaphore is never closed
            },
        };
        let accepted = tokio::select! {
            _ = shared.token.cancelled() => return,
            res = listener.accept() => res,
        };
        match accepted {
            Ok((stream, addr)) => {
                backoff = MIN_ACCEPT_BACKOFF;
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
