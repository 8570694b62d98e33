//! What a peer may not send, and the log lines about it.
//!
//! The handshake binds a connection to one node id. On that connection a
//! peer speaks for its own node only: a process signal whose sender (the
//! `from`, `watcher` or `pid` that says who sends it) is a process of
//! another node is refused ([`foreign_sender`]), as is a `Spawn` that asks
//! to link the new process to, or monitor it from, another node's process
//! ([`foreign_spawn`]). Every refused or ignored frame is logged at warn
//! with the peer and the reason, rate-limited per peer, kind and reason
//! ([`Noted`]) so that a flood of bad frames cannot flood the log.
//!
//! Pure: the rules and the rate limit take their inputs (and the time) as
//! arguments; `peer.rs` applies them and writes the log lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pool_proto::{Msg, NodeId, Pid, SpawnRequest};

#[cfg(test)]
mod tests;

/// How often one peer may cause a log line about one kind of frame: the
/// first is logged at once, then one a second with the count left out.
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Most (peer, kind) pairs remembered: a peer that reconnects under ever
/// new node ids must not grow the table without bound.
const MAX_NOTED: usize = 4096;

/// What one log line is about: the peer, the kind of frame, and the
/// reason it was refused or ignored.
type NoteKey = (NodeId, &'static str, &'static str);

/// Rate limit of the log lines about refused and ignored frames, per peer,
/// kind of frame and reason.
#[derive(Debug, Default)]
pub(crate) struct Noted(Mutex<HashMap<NoteKey, (Instant, u64)>>);

impl Noted {
    /// One more frame of `kind` from `peer`, refused or ignored for
    /// `reason`: `Some(left_out)` (how many were not logged since the last
    /// line) if this one is to be logged.
    pub(crate) fn hit(
        &self,
        peer: NodeId,
        kind: &'static str,
        reason: &'static str,
        now: Instant,
    ) -> Option<u64> {
        let key = (peer, kind, reason);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_NOTED && !map.contains_key(&key) {
            map.retain(|_, (last, _)| now.duration_since(*last) < NOTE_EVERY);
            if map.len() >= MAX_NOTED {
                map.clear();
            }
        }
        match map.get_mut(&key) {
            None => {
                map.insert(key, (now, 0));
                Some(0)
            }
            Some((last, left_out)) if now.duration_since(*last) >= NOTE_EVERY => {
                *last = now;
                Some(std::mem::take(left_out))
            }
            Some((_, left_out)) => {
                *left_out += 1;
                None
            }
        }
    }
}

/// The field of a process signal that names its sender, and its value,
/// if that is not a process of `sender` (the node the connection's
/// handshake named). Frames other than process signals, and a `Send`
/// without a sender, give `None`.
pub(crate) fn foreign_sender(msg: &Msg, sender: NodeId) -> Option<(&'static str, Pid)> {
    let (field, pid) = match msg {
        Msg::Send(s) => ("from", s.from?),
        Msg::Link { from, .. } | Msg::Unlink { from, .. } | Msg::Exit { from, .. } => {
            ("from", *from)
        }
        Msg::Monitor { watcher, .. } | Msg::Demonitor { watcher, .. } => ("watcher", *watcher),
        // The `pid` of a `Down` is the process that went down: the sender's.
        Msg::Down { pid, .. } => ("pid", *pid),
        _ => return None,
    };
    (pid.node() != sender).then_some((field, pid))
}

/// The process a `Spawn` from `sender` would link the new process to, or
/// monitor it from, if that is not a process of `sender`.
pub(crate) fn foreign_spawn(req: &SpawnRequest, sender: NodeId) -> Option<(&'static str, Pid)> {
    if let Some(p) = req.link.filter(|p| p.node() != sender) {
        return Some(("link", p));
    }
    req.monitor
        .map(|m| m.watcher)
        .filter(|p| p.node() != sender)
        .map(|p| ("monitor", p))
}

/// Why a peer may not send a frame that is neither a request, a response
/// nor a process signal.
pub(crate) fn why_not_from_a_peer(msg: &Msg) -> &'static str {
    match msg {
        Msg::NodeUp(_) | Msg::NodeDown { .. } | Msg::Members(_) | Msg::MembersDelta(_) => {
            "only the master sends membership changes, on its own connection"
        }
        Msg::LoadUpdate(_) => "only the master sends load table updates, on its own connection",
        Msg::LoadReport(_) | Msg::AppEvent(_) | Msg::NameReleased { .. } | Msg::PlacedNotice(_) => {
            "it goes from a node to the master, never to a peer"
        }
        _ => "a peer may not send it",
    }
}
