//! The peers this node tried to connect to and could not: the last dial
//! failure per node, with the address and the cause in words.
//!
//! Owns [`DialFailures`], a plain table behind a lock (no task). The peer
//! layer writes it (a failed dial records, an opened connection or a node
//! declared down clears) and reads it to name the cause in the errors of
//! requests that were waiting on that connection; the master link reads
//! it into each load report, so the master can show which node its peers
//! cannot reach (`poolctl nodes`). It lives beside both so that neither
//! names the other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use pool_proto::{NodeId, Unreachable};

#[cfg(test)]
mod tests;

/// The last dial failure of every peer that has not been reached since.
#[derive(Debug, Default)]
pub(crate) struct DialFailures {
    /// Per peer: the cause and since when (the first failure of the run).
    map: Mutex<HashMap<NodeId, Unreachable>>,
}

impl DialFailures {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Unreachable>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connecting to `node` failed with `cause`; a run of failures keeps
    /// the time of its first one.
    pub(crate) fn failed(&self, node: NodeId, cause: String) {
        let now = now_ms();
        self.lock()
            .entry(node)
            .and_modify(|u| u.cause.clone_from(&cause))
            .or_insert(Unreachable {
                node,
                cause,
                since_ms: now,
            });
    }

    /// A connection to `node` opened, or it left the pool: forget its
    /// failure.
    pub(crate) fn clear(&self, node: NodeId) {
        self.lock().remove(&node);
    }

    /// Why the last connection attempt to `node` failed, if it did.
    pub(crate) fn cause(&self, node: NodeId) -> Option<String> {
        self.lock().get(&node).map(|u| u.cause.clone())
    }

    /// Every peer not reached, in node id order (for the load report).
    pub(crate) fn list(&self) -> Vec<Unreachable> {
        let mut v: Vec<Unreachable> = self.lock().values().cloned().collect();
        v.sort_by_key(|u| u.node);
        v
    }
}

/// Wall-clock ms since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The cause of a failed dial of `addr`, in words: `cannot connect to
/// 127.0.0.1:1: connection refused`, or the TLS or handshake error (which
/// names the certificate problem and what to do).
pub(crate) fn describe(addr: &str, e: &crate::Error) -> String {
    match e {
        // The OS error as its kind says it ("connection refused"), without
        // the "(os error 111)" noise; anything else as it is.
        crate::Error::Io { source, .. } => {
            use std::io::ErrorKind as K;
            let cause = match source.kind() {
                k @ (K::ConnectionRefused
                | K::ConnectionReset
                | K::TimedOut
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::AddrNotAvailable
                | K::PermissionDenied) => k.to_string(),
                _ => source.to_string(),
            };
            format!("cannot connect to {addr}: {cause}")
        }
        crate::Error::Unreachable { .. } => {
            format!("cannot connect to {addr}: no answer in time")
        }
        other => format!("cannot connect to {addr}: {other}"),
    }
}
