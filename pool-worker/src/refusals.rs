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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pool_proto::{Msg, NodeId, Pid, SpawnRequest};

use crate::node::Shared;

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
        Msg::NodeUp(_) | Msg::NodeDown { .. } => {
            "only the master sends membership changes, on its own connection"
        }
        Msg::LoadReport(_) | Msg::AppEvent(_) | Msg::NameReleased { .. } => {
            "it goes from a node to the master, never to a peer"
        }
        _ => "a peer may not send it",
    }
}

impl Shared {
    /// Logs at warn that a frame of `kind` from peer `node` was `refused`
    /// (answered with an error, or dropped as a lie) or ignored, and why;
    /// rate-limited per peer, kind and `reason` (the class of `why`).
    pub(crate) fn note_peer_frame(
        &self,
        node: NodeId,
        refused: bool,
        kind: &'static str,
        reason: &'static str,
        why: &dyn std::fmt::Display,
    ) {
        let Some(left_out) = self.peers.noted.hit(node, kind, reason, Instant::now()) else {
            return;
        };
        let name = self
            .members
            .read()
            .ok()
            .and_then(|m| m.get(node).map(|i| i.name.clone()))
            .unwrap_or_else(|| "?".to_owned());
        let what = if refused { "refused" } else { "ignored" };
        tracing::warn!(peer = %node, %name, left_out, "{what} a {kind} from a peer: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_proto::{Dest, MsgKind, Payload, Ref, SendMsg, SpawnMonitor};

    fn node(n: u64) -> NodeId {
        NodeId::from_u64(n)
    }

    #[test]
    fn a_signal_speaks_for_its_own_node_only() {
        let (a, b) = (node(0xa), node(0xb));
        let (pa, pb) = (Pid::new(a, 1), Pid::new(b, 1));
        let mref = Ref::new(a, 1);
        let send = |from| {
            Msg::Send(SendMsg {
                to: Dest::Pid(pb),
                from,
                kind: MsgKind::Plain,
                payload: Payload::encode(&1).unwrap(),
                trace: None,
            })
        };
        assert_eq!(foreign_sender(&send(Some(pa)), a), None);
        assert_eq!(foreign_sender(&send(None), a), None);
        assert_eq!(foreign_sender(&send(Some(pb)), a), Some(("from", pb)));
        let link = Msg::Link { from: pb, to: pa };
        assert_eq!(foreign_sender(&link, a), Some(("from", pb)));
        assert_eq!(foreign_sender(&link, b), None);
        let mon = Msg::Demonitor {
            watcher: pb,
            target: pa,
            mref,
        };
        assert_eq!(foreign_sender(&mon, a), Some(("watcher", pb)));
        let down = Msg::Down {
            watcher: pa,
            mref,
            pid: pb,
            reason: pool_proto::ExitReason::Normal,
            result: None,
        };
        assert_eq!(foreign_sender(&down, a), Some(("pid", pb)));
        assert_eq!(foreign_sender(&down, b), None);
        let req = |link, watcher: Option<Pid>| SpawnRequest {
            function: "f".into(),
            args: serde_json::Value::Null,
            link,
            monitor: watcher.map(|watcher| SpawnMonitor {
                watcher,
                mref,
                with_result: false,
            }),
            owner: None,
            trace: None,
        };
        assert_eq!(foreign_spawn(&req(Some(pa), Some(pa)), a), None);
        assert_eq!(foreign_spawn(&req(Some(pb), None), a), Some(("link", pb)));
        assert_eq!(
            foreign_spawn(&req(None, Some(pb)), a),
            Some(("monitor", pb))
        );
    }

    #[test]
    fn a_flood_of_one_kind_logs_once_a_second() {
        let noted = Noted::default();
        let t0 = Instant::now();
        assert_eq!(noted.hit(node(1), "Link", "r", t0), Some(0));
        for _ in 0..10 {
            assert_eq!(noted.hit(node(1), "Link", "r", t0), None);
        }
        assert_eq!(noted.hit(node(1), "Send", "r", t0), Some(0));
        assert_eq!(noted.hit(node(1), "Link", "other", t0), Some(0));
        assert_eq!(noted.hit(node(2), "Link", "r", t0), Some(0));
        assert_eq!(noted.hit(node(1), "Link", "r", t0 + NOTE_EVERY), Some(10));
        for n in 0..2 * MAX_NOTED as u64 {
            noted.hit(node(100 + n), "Link", "r", t0 + 2 * NOTE_EVERY);
        }
        assert!(noted.0.lock().unwrap().len() <= MAX_NOTED);
    }
}
