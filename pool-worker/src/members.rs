//! The membership as this node knows it: live nodes (from the master's
//! Welcome and NodeUp pushes) and the ids it declared down.
//!
//! A leaf: the master link writes it, the peers, the router and the Pool
//! API read it ([`SharedMembers`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pool_proto::{NodeId, NodeInfo, NodeKind};
use supervisor::remote::Reach;

/// How many declared-down ids are remembered (their pids answer
/// `noconnection`; older ones fall back to `noproc`).
const MAX_DEAD: usize = 10_000;

/// The membership as the parts share it.
pub(crate) type SharedMembers = Arc<RwLock<Members>>;

/// Reads the membership (a poisoned lock is still read: a panic elsewhere
/// must not stop routing).
pub(crate) fn read(m: &RwLock<Members>) -> RwLockReadGuard<'_, Members> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// Writes the membership (see [`read`]).
pub(crate) fn write(m: &RwLock<Members>) -> RwLockWriteGuard<'_, Members> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Live nodes (this one left out), by id.
    live: HashMap<NodeId, NodeInfo>,
    /// Ids declared down: their pids answer `noconnection`, and a
    /// connection claiming one is refused.
    dead: HashSet<NodeId>,
    /// `dead` in the order declared, to forget the oldest past
    /// [`MAX_DEAD`].
    dead_order: VecDeque<NodeId>,
}

impl Members {
    /// Reachability of a node for the runtime.
    pub(crate) fn reach(&self, node: NodeId) -> Reach {
        if self.live.contains_key(&node) {
            Reach::Up
        } else if self.dead.contains(&node) {
            Reach::Down
        } else {
            Reach::Unknown
        }
    }

    pub(crate) fn is_dead(&self, node: NodeId) -> bool {
        self.dead.contains(&node)
    }

    /// A node is live (again).
    pub(crate) fn up(&mut self, info: NodeInfo) {
        self.dead.remove(&info.id);
        self.live.insert(info.id, info);
    }

    /// A node is gone; returns its info if it was live.
    pub(crate) fn down(&mut self, node: NodeId) -> Option<NodeInfo> {
        if self.dead.insert(node) {
            self.dead_order.push_back(node);
            if self.dead_order.len() > MAX_DEAD
                && let Some(old) = self.dead_order.pop_front()
            {
                self.dead.remove(&old);
            }
        }
        self.live.remove(&node)
    }

    pub(crate) fn get(&self, node: NodeId) -> Option<&NodeInfo> {
        self.live.get(&node)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&NodeInfo> {
        self.live.values().find(|n| n.name == name)
    }

    /// The live ids, for fencing.
    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.live.keys().copied().collect()
    }

    /// Names of live workers, for error messages.
    pub(crate) fn worker_names(&self) -> String {
        let mut v: Vec<&str> = self
            .live
            .values()
            .filter(|n| n.kind == NodeKind::Worker)
            .map(|n| n.name.as_str())
            .collect();
        v.sort_unstable();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    }
}
