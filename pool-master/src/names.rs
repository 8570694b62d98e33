//! Global names with OTP `global` semantics: a name maps to one pid, a pid
//! holds at most one name, and a name dies with its process
//! (`NameReleased`) or its node. Plain data; the master applies it under its
//! state lock.

use std::collections::{BTreeMap, HashMap};

use pool_proto::{NodeId, Pid};

#[cfg(test)]
mod tests;

/// The registry of global names.
///
/// ```
/// use pool_master::names::GlobalNames;
/// use pool_proto::{NodeId, Pid};
///
/// let mut names = GlobalNames::default();
/// let pid = Pid::new(NodeId::from_u64(1), 7);
/// assert!(names.register("db", pid));
/// assert!(!names.register("cache", pid)); // one name per pid
/// assert_eq!(names.whereis("db"), Some(pid));
/// names.release("db", pid);
/// assert_eq!(names.whereis("db"), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct GlobalNames {
    /// Name → holder, sorted so listings come out in name order.
    by_name: BTreeMap<String, Pid>,
    /// Holder → its one name.
    by_pid: HashMap<Pid, String>,
}

/// How a name re-registered by a rejoining node fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// Free, now registered to the pid.
    Registered,
    /// Already held by the same pid.
    Kept,
    /// Held by another process (or the pid holds another name): the node
    /// must forget it.
    Lost,
}

impl GlobalNames {
    /// Registers `name` for `pid`. False (OTP's `no`) if the name is taken —
    /// even by the same pid — or the pid already has a name.
    pub fn register(&mut self, name: &str, pid: Pid) -> bool {
        if self.by_name.contains_key(name) || self.by_pid.contains_key(&pid) {
            return false;
        }
        self.by_name.insert(name.to_owned(), pid);
        self.by_pid.insert(pid, name.to_owned());
        true
    }

    /// A rejoining node's claim on `name` for `pid`: registered again if
    /// free, kept if already held by the same pid, lost otherwise.
    pub fn reclaim(&mut self, name: &str, pid: Pid) -> Reclaim {
        match self.by_name.get(name).copied() {
            Some(holder) if holder == pid => Reclaim::Kept,
            Some(_) => Reclaim::Lost,
            None if self.register(name, pid) => Reclaim::Registered,
            None => Reclaim::Lost,
        }
    }

    /// Removes `name` whoever holds it (OTP's `unregister_name`); returns
    /// the holder.
    pub fn unregister(&mut self, name: &str) -> Option<Pid> {
        let pid = self.by_name.remove(name)?;
        self.by_pid.remove(&pid);
        Some(pid)
    }

    /// Removes `name` only if `pid` still holds it (a process died; a newer
    /// holder is left alone). Returns whether it was removed.
    pub fn release(&mut self, name: &str, pid: Pid) -> bool {
        if self.by_name.get(name) != Some(&pid) {
            return false;
        }
        self.unregister(name);
        true
    }

    /// Removes every name held by a process of `node`; returns them.
    pub fn remove_node(&mut self, node: NodeId) -> Vec<(String, Pid)> {
        let gone: Vec<(String, Pid)> = self
            .by_name
            .iter()
            .filter(|(_, pid)| pid.node() == node)
            .map(|(n, p)| (n.clone(), *p))
            .collect();
        for (name, pid) in &gone {
            self.by_name.remove(name);
            self.by_pid.remove(pid);
        }
        gone
    }

    /// The holder of `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.by_name.get(name).copied()
    }

    /// Every name and its holder, in name order.
    pub fn all(&self) -> BTreeMap<String, Pid> {
        self.by_name.clone()
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when no name is registered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
