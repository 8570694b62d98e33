//! The membership as this node knows it: live nodes (from the master's
//! Welcome, its numbered deltas and lists, or the older NodeUp pushes),
//! the ids it declared down, the names of ids that were once live (to tell
//! an old incarnation from a node this node has never heard of), and where
//! it is in the master's numbered changes (a gap asks for the list again).
//!
//! A leaf: the master link writes it, the peers, the router and the Pool
//! API read it ([`SharedMembers`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pool_proto::{DownReason, MemberChange, NodeId, NodeInfo, NodeKind};
use supervisor::remote::Reach;

#[cfg(test)]
mod tests;

/// How many declared-down ids are remembered (their pids answer
/// `noconnection`), and how many once-live ids with their names.
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
    /// The live nodes' ids by name (a name is live under one id at most):
    /// a change costs O(1), not a scan of every member, so that the
    /// changes of a join storm cost a node O(n) in all rather than O(n²).
    names: HashMap<String, NodeId>,
    /// Ids declared down: their pids answer `noconnection`, and a
    /// connection claiming one is refused.
    dead: HashSet<NodeId>,
    /// `dead` in the order declared, to forget the oldest past
    /// [`MAX_DEAD`].
    dead_order: VecDeque<NodeId>,
    /// The name of every id that was live here (the live ones too), so
    /// that a pid of an old incarnation of a node that is now live under a
    /// newer id reads as `Unknown` (noproc).
    former: HashMap<NodeId, String>,
    /// `former` in the order first seen, to forget the oldest past
    /// [`MAX_DEAD`].
    former_order: VecDeque<NodeId>,
    /// Woken when a node becomes live: a peer that connected before its
    /// NodeUp reached this node waits on it ([`Members::joins`]).
    joined: Arc<tokio::sync::Notify>,
    /// Where this node is in the current master session's numbered
    /// changes.
    feed: Feed,
}

/// This node's place in the numbered membership changes of its current
/// master session (docs/protocol.md, "Membership").
#[derive(Debug, Default)]
struct Feed {
    /// The number of the next change expected.
    next: u64,
    /// A gap was seen and the list asked for again: deltas are dropped
    /// until it arrives (it covers them).
    resyncing: bool,
    /// The nodes this master session listed or announced and has not
    /// declared down: a list sent again that leaves one out means its
    /// `Down` was missed. Nodes learnt from an earlier master (one that
    /// restarted) are not here, so a list never declares them down: the new
    /// master may not have heard from them yet.
    announced: HashSet<NodeId>,
}

/// What applying membership news did, for the master link to act on.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changed {
    /// Nodes that came up (or changed details), in order: pending children
    /// may find a node now.
    pub(crate) up: Vec<NodeId>,
    /// Older incarnations of names now live under a newer id: gone, though
    /// nobody declared them down (see [`Members::up`]).
    pub(crate) superseded: Vec<NodeId>,
    /// Nodes gone, in order: each with its details if it was live here,
    /// and the master's reason (`None`: a list sent again no longer has
    /// it).
    pub(crate) down: Vec<(NodeId, Option<NodeInfo>, Option<DownReason>)>,
}

/// What became of a delta.
#[derive(Debug, PartialEq)]
pub(crate) enum Delta {
    /// Its new changes were applied.
    Applied(Changed),
    /// Nothing new in it (an old one, or a list to be sent again covers
    /// it).
    Skipped,
    /// Changes before it are missing: ask the master for the list again
    /// (`Request::SyncMembers`); deltas are dropped until it arrives.
    Gap {
        /// The number expected.
        expected: u64,
        /// The number it started with.
        got: u64,
    },
}

impl Members {
    /// Reachability of a node for the runtime: `Up` if live; `Unknown`
    /// (noproc) for an old incarnation of a node whose name is live now
    /// under a newer id (unless the master declared that old id down);
    /// `Down` (noconnection) otherwise — declared down, or never seen at
    /// all (a node of the pool this node has not heard of yet, e.g. a
    /// worker that has not rejoined a restarted master: its processes may
    /// well be alive, it just cannot be reached now).
    pub(crate) fn reach(&self, node: NodeId) -> Reach {
        if self.live.contains_key(&node) {
            return Reach::Up;
        }
        if self.dead.contains(&node) {
            return Reach::Down;
        }
        let replaced = self
            .former
            .get(&node)
            .is_some_and(|name| self.by_name(name).is_some_and(|n| n.id != node));
        if replaced {
            Reach::Unknown
        } else {
            Reach::Down
        }
    }

    pub(crate) fn is_dead(&self, node: NodeId) -> bool {
        self.dead.contains(&node)
    }

    /// A node is live (again). Returns the older incarnations of its name
    /// that were live here: a new incarnation of a name means the old one
    /// is gone (as a new creation of an Erlang node name does), and after
    /// a master restart nobody else will declare it down. They leave the
    /// live set here; the caller fires `noconnection` on links and
    /// monitors towards them.
    pub(crate) fn up(&mut self, info: NodeInfo) -> Vec<NodeId> {
        let superseded: Vec<NodeId> = self
            .names
            .get(&info.name)
            .filter(|&&id| id != info.id && self.live.contains_key(&id))
            .copied()
            .into_iter()
            .collect();
        // Not marked dead: a pid of the old incarnation then reads as
        // `Unknown` (noproc), as OTP answers for an old creation.
        for old in &superseded {
            self.live.remove(old);
        }
        // New details of a live node may come with a new name.
        if let Some(before) = self.live.get(&info.id)
            && before.name != info.name
            && self.names.get(&before.name) == Some(&info.id)
        {
            self.names.remove(&before.name);
        }
        self.names.insert(info.name.clone(), info.id);
        self.dead.remove(&info.id);
        if self.former.insert(info.id, info.name.clone()).is_none() {
            self.former_order.push_back(info.id);
            if self.former_order.len() > MAX_DEAD
                && let Some(old) = self.former_order.pop_front()
            {
                self.former.remove(&old);
            }
        }
        self.live.insert(info.id, info);
        self.joined.notify_waiters();
        superseded
    }

    /// Woken (all waiters) each time a node becomes live.
    pub(crate) fn joins(&self) -> Arc<tokio::sync::Notify> {
        self.joined.clone()
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
        let info = self.live.remove(&node)?;
        if self.names.get(&info.name) == Some(&node) {
            self.names.remove(&info.name);
        }
        Some(info)
    }

    pub(crate) fn get(&self, node: NodeId) -> Option<&NodeInfo> {
        self.live.get(&node)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&NodeInfo> {
        self.names.get(name).and_then(|id| self.live.get(id))
    }

    /// Applies one change: the per-member code that a Welcome, a list, a
    /// delta and the older NodeUp/NodeDown pushes share. News about this
    /// node itself (`me`) is ignored.
    pub(crate) fn apply(&mut self, change: MemberChange, me: NodeId, out: &mut Changed) {
        match change {
            MemberChange::Up(info) => {
                if info.id == me {
                    return;
                }
                let id = info.id;
                self.feed.announced.insert(id);
                out.superseded.extend(self.up(info));
                out.up.push(id);
            }
            MemberChange::Down { node, reason } => {
                if node == me {
                    return;
                }
                self.feed.announced.remove(&node);
                let info = self.down(node);
                out.down.push((node, info, Some(reason)));
            }
        }
    }

    /// A new master session's Welcome: its members are added (only added:
    /// a master that restarted may not know every node yet; departures
    /// come as changes), and changes are expected from `next` on.
    pub(crate) fn welcome(&mut self, members: &[NodeInfo], next: u64, me: NodeId) -> Changed {
        self.feed = Feed {
            next,
            ..Feed::default()
        };
        let mut out = Changed::default();
        for info in members {
            self.apply(MemberChange::Up(info.clone()), me, &mut out);
        }
        out
    }

    /// The whole list again (after a gap, or because this node fell too
    /// far behind): every node it lists is up, and a node this master
    /// session announced that it no longer lists is down (its `Down` was
    /// missed). Changes are expected from `next` on.
    pub(crate) fn list(&mut self, members: &[NodeInfo], next: u64, me: NodeId) -> Changed {
        let listed: HashSet<NodeId> = members.iter().map(|m| m.id).collect();
        let mut gone: Vec<NodeId> = self
            .feed
            .announced
            .iter()
            .filter(|id| !listed.contains(id))
            .copied()
            .collect();
        gone.sort_unstable();
        let mut out = Changed::default();
        for node in gone {
            self.feed.announced.remove(&node);
            let info = self.down(node);
            out.down.push((node, info, None));
        }
        for info in members {
            self.apply(MemberChange::Up(info.clone()), me, &mut out);
        }
        self.feed.next = next;
        self.feed.resyncing = false;
        out
    }

    /// Changes numbered from `first`: applied if they follow on from what
    /// this node has (the ones it already has are skipped), a gap
    /// otherwise.
    pub(crate) fn delta(&mut self, first: u64, changes: Vec<MemberChange>, me: NodeId) -> Delta {
        if self.feed.resyncing {
            return Delta::Skipped;
        }
        let expected = self.feed.next;
        if first > expected {
            self.feed.resyncing = true;
            return Delta::Gap {
                expected,
                got: first,
            };
        }
        let end = first.saturating_add(changes.len() as u64);
        if end <= expected {
            return Delta::Skipped;
        }
        let mut out = Changed::default();
        for change in changes.into_iter().skip((expected - first) as usize) {
            self.apply(change, me, &mut out);
        }
        self.feed.next = end;
        Delta::Applied(out)
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
