//! Membership: the nodes that joined (live, or still fencing), their names
//! (unique among them), the session each one is reached through, and the
//! ids the master declared down recently (for fencing, kept across a master
//! restart). Plain data: a member names its connection by [`SessionId`];
//! the shell keeps the connections themselves (`shared.rs`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use pool_proto::{DownReason, NodeId, NodeInfo, NodeKind};
use serde::{Deserialize, Serialize};

/// The serial of one node connection, unique in the master: tells a
/// replaced session from its successor for the same node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionId(pub(crate) u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One connection as the state knows it: its session, and the node the
/// handshake authenticated on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conn {
    /// The connection's serial.
    pub(crate) session: SessionId,
    /// The node at the other end.
    pub(crate) node: NodeId,
    /// Its name, as the handshake gave it.
    pub(crate) name: String,
}

/// One node that joined.
#[derive(Debug)]
pub(crate) struct Member {
    /// The node as it joined (a hidden node's `addr` is blanked).
    pub(crate) info: NodeInfo,
    /// The functions it can spawn (`Join.functions`).
    pub(crate) functions: HashSet<String>,
    /// It runs WebAssembly functions (`Join.wasm`).
    pub(crate) wasm: bool,
    /// Its current connection: pushes and master requests go there.
    pub(crate) session: SessionId,
    /// True once the other nodes were told `NodeUp`: joined without fence,
    /// or fenced and `Ready`. Only live nodes are placed on and watched.
    pub(crate) live: bool,
    /// It sent `Leave`: nothing more is placed on it, and its disconnect is
    /// a `Left` down.
    pub(crate) leaving: bool,
}

/// The members, by id and by name.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Every node that joined and has not gone down.
    by_id: HashMap<NodeId, Member>,
    /// Name → id, for the uniqueness check and name lookups.
    by_name: HashMap<String, NodeId>,
}

impl Membership {
    /// The member `id`.
    pub(crate) fn get(&self, id: NodeId) -> Option<&Member> {
        self.by_id.get(&id)
    }

    /// The member `id`, mutably.
    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Member> {
        self.by_id.get_mut(&id)
    }

    /// The member named `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Member> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    /// Adds (or replaces) a member; returns the member it replaced.
    pub(crate) fn insert(&mut self, member: Member) -> Option<Member> {
        let id = member.info.id;
        let old = self.by_id.remove(&id);
        if let Some(old) = &old
            && self.by_name.get(&old.info.name) == Some(&id)
        {
            self.by_name.remove(&old.info.name);
        }
        self.by_name.insert(member.info.name.clone(), id);
        self.by_id.insert(id, member);
        old
    }

    /// Removes a member.
    pub(crate) fn remove(&mut self, id: NodeId) -> Option<Member> {
        let m = self.by_id.remove(&id)?;
        if self.by_name.get(&m.info.name) == Some(&id) {
            self.by_name.remove(&m.info.name);
        }
        Some(m)
    }

    /// The live members.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Member> {
        self.by_id.values().filter(|m| m.live)
    }

    /// The live workers (hidden nodes excluded).
    pub(crate) fn live_workers(&self) -> impl Iterator<Item = &Member> {
        self.live().filter(|m| m.info.kind == NodeKind::Worker)
    }

    /// Live nodes by kind: (workers, hidden).
    pub(crate) fn count_live(&self) -> (usize, usize) {
        self.live().fold((0, 0), |(w, h), m| match m.info.kind {
            NodeKind::Hidden => (w, h + 1),
            _ => (w + 1, h),
        })
    }

    /// The name of node `id`, if it is a member.
    pub(crate) fn name_of(&self, id: NodeId) -> Option<&str> {
        self.by_id.get(&id).map(|m| m.info.name.as_str())
    }

    /// Whether some live worker registers `function` (for a wasm function
    /// name: whether some live worker runs wasm).
    pub(crate) fn function_known(&self, function: &str) -> bool {
        if pool_proto::WasmName::is_wasm(function) {
            return self.live_workers().any(|m| m.wasm);
        }
        self.live_workers().any(|m| m.functions.contains(function))
    }

    /// Live worker names, sorted, for error messages (`none` if there is
    /// none).
    pub(crate) fn live_worker_names(&self) -> String {
        let mut v: Vec<&str> = self.live_workers().map(|m| m.info.name.as_str()).collect();
        v.sort_unstable();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    }
}

/// A node id the master declared down, with when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DownRecord {
    /// The incarnation.
    pub(crate) node: NodeId,
    /// Wall clock of the declaration, ms since the Unix epoch (kept across
    /// restarts, so not an `Instant`).
    pub(crate) at_ms: u64,
    /// Why.
    pub(crate) reason: DownReason,
}

/// The ids declared down recently: a node that comes back with one of them
/// is fenced before it counts as live again.
#[derive(Debug, Default)]
pub(crate) struct DownList {
    /// Id → record.
    by_id: HashMap<NodeId, DownRecord>,
}

impl DownList {
    /// A list holding these records.
    pub(crate) fn from_records(records: Vec<DownRecord>) -> Self {
        DownList {
            by_id: records.into_iter().map(|r| (r.node, r)).collect(),
        }
    }

    /// Records that `node` was declared down at wall-clock `at_ms`.
    pub(crate) fn insert(&mut self, node: NodeId, reason: DownReason, at_ms: u64) {
        self.by_id.insert(
            node,
            DownRecord {
                node,
                at_ms,
                reason,
            },
        );
    }

    /// Whether `node` was declared down (and not live since).
    pub(crate) fn contains(&self, node: NodeId) -> bool {
        self.by_id.contains_key(&node)
    }

    /// Forgets `node` (it is live again); returns whether it was there.
    pub(crate) fn remove(&mut self, node: NodeId) -> bool {
        self.by_id.remove(&node).is_some()
    }

    /// Forgets records older than `retention` at wall-clock `now_ms`;
    /// returns whether any went.
    pub(crate) fn prune(&mut self, retention: Duration, now_ms: u64) -> bool {
        let cutoff = now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(0));
        let before = self.by_id.len();
        self.by_id.retain(|_, r| r.at_ms >= cutoff);
        self.by_id.len() != before
    }

    /// The records, oldest first (for the state file).
    pub(crate) fn records(&self) -> Vec<DownRecord> {
        let mut v: Vec<DownRecord> = self.by_id.values().cloned().collect();
        v.sort_by_key(|r| (r.at_ms, r.node));
        v
    }
}
