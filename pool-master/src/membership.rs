//! Membership: the nodes that joined (live, or still fencing), their names
//! (unique among them), the connection each one is reached through, and the
//! ids the master declared down recently (for fencing, kept across a master
//! restart). Pushes to "every node" go through [`Membership::broadcast`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pool_proto::{DownReason, NodeId, NodeInfo, NodeKind};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::outbox::NodeLink;

/// One node that joined.
#[derive(Debug)]
pub(crate) struct Member {
    /// The node as it joined (a hidden node's `addr` is blanked).
    pub(crate) info: NodeInfo,
    /// The functions it can spawn (`Join.functions`).
    pub(crate) functions: HashSet<String>,
    /// Its connection: pushes and master requests go here.
    pub(crate) peer: Arc<NodeLink>,
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

    /// Whether some live worker registers `function`.
    pub(crate) fn function_known(&self, function: &str) -> bool {
        self.live_workers().any(|m| m.functions.contains(function))
    }

    /// Sends one encoded frame to every member that got its `Welcome`
    /// (live or fencing) except `except`. A `lazy` push (`NodeUp`) may be
    /// held back briefly to share a write with the ones behind it.
    pub(crate) fn broadcast(&self, frame: &Bytes, except: Option<NodeId>, lazy: bool) {
        for m in self.by_id.values() {
            if Some(m.info.id) != except {
                if lazy {
                    m.peer.send_push(frame.clone());
                } else {
                    m.peer.send(frame.clone());
                }
            }
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

    /// Records that `node` was declared down now.
    pub(crate) fn insert(&mut self, node: NodeId, reason: DownReason) {
        self.by_id.insert(
            node,
            DownRecord {
                node,
                at_ms: now_ms(),
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

    /// Forgets records older than `retention`; returns whether any went.
    pub(crate) fn prune(&mut self, retention: Duration) -> bool {
        let cutoff = now_ms().saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(0));
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
