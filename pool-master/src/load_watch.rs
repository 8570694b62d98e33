//! The nodes that hold a copy of the load table (they asked
//! `Request::WatchLoads` the first time they placed a spawn), what changed
//! in the table since their last update, and how many of each one's
//! `PlacedNotice`s the table counts. Nodes that never place are not here
//! and are sent nothing: 10,000 workers must not each receive every
//! report.
//!
//! Plain data, part of the pool state: the transitions mark rows as they
//! change the table (only while someone watches), and the master's
//! load-push task (`master.rs`) takes one [`LoadUpdate`] every few
//! milliseconds at most, numbered, for every watcher. A watcher that sees a
//! gap in the numbers asks for the table again.

use std::collections::{BTreeSet, HashMap};

use pool_place::load_table::LoadTable;
use pool_proto::{LoadTableCopy, LoadUpdate, NodeId, PlacementStrategy};

use crate::membership::SessionId;

#[cfg(test)]
mod tests;

/// One watching connection.
#[derive(Clone, Copy, Debug)]
struct Watcher {
    /// Its `PlacedNotice`s applied so far (the last one's number).
    notices: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct LoadWatch {
    /// The watching connections.
    watchers: HashMap<SessionId, Watcher>,
    /// The number of the next update.
    next: u64,
    /// Nodes that joined or changed what they are since the last update.
    nodes: BTreeSet<NodeId>,
    /// Nodes whose load changed since the last update.
    loads: BTreeSet<NodeId>,
    /// Nodes that left the table since the last update.
    gone: BTreeSet<NodeId>,
    /// A notice was applied since the last update: the watchers learn it
    /// even if it changed no row (its nodes were gone).
    acks: bool,
}

impl LoadWatch {
    /// Connection `session` watches the loads (again, after a gap): its
    /// copy of `table`, with the master's `strategy`. Its notices count
    /// goes on from where it was.
    pub(crate) fn watch(
        &mut self,
        session: SessionId,
        table: &LoadTable,
        strategy: PlacementStrategy,
    ) -> LoadTableCopy {
        let w = self
            .watchers
            .entry(session)
            .or_insert(Watcher { notices: 0 });
        LoadTableCopy {
            next: self.next,
            notices: w.notices,
            strategy,
            mem_refuse_above: table.config().mem_refuse_above,
            nodes: table.node_rows(),
        }
    }

    /// Connection `session` closed.
    pub(crate) fn unwatch(&mut self, session: SessionId) {
        self.watchers.remove(&session);
        if self.watchers.is_empty() {
            self.nodes.clear();
            self.loads.clear();
            self.gone.clear();
            self.acks = false;
        }
    }

    /// Node `id` joined or changed what it is.
    pub(crate) fn node_changed(&mut self, id: NodeId) {
        if !self.watchers.is_empty() {
            self.gone.remove(&id);
            self.nodes.insert(id);
        }
    }

    /// The load of node `id` changed (a report, placements).
    pub(crate) fn load_changed(&mut self, id: NodeId) {
        if !self.watchers.is_empty() {
            self.loads.insert(id);
        }
    }

    /// Node `id` left the table.
    pub(crate) fn gone(&mut self, id: NodeId) {
        if !self.watchers.is_empty() {
            self.nodes.remove(&id);
            self.loads.remove(&id);
            self.gone.insert(id);
        }
    }

    /// Notice `seq` of connection `session` was applied. False if the
    /// connection does not watch (its notice was applied all the same).
    pub(crate) fn noticed(&mut self, session: SessionId, seq: u64) -> bool {
        match self.watchers.get_mut(&session) {
            Some(w) => {
                w.notices = w.notices.max(seq);
                self.acks = true;
                true
            }
            None => false,
        }
    }

    /// Whether an update is due: someone watches and something changed.
    pub(crate) fn due(&self) -> bool {
        !self.watchers.is_empty()
            && (self.acks
                || !self.nodes.is_empty()
                || !self.loads.is_empty()
                || !self.gone.is_empty())
    }

    /// The next update from `table` (rows of the nodes still in it), and
    /// each watcher with its notices count to send it with; `None` if none
    /// is due.
    pub(crate) fn take_update(
        &mut self,
        table: &LoadTable,
    ) -> Option<(LoadUpdate, Vec<(SessionId, u64)>)> {
        if !self.due() {
            return None;
        }
        // A node sent whole needs no load row of its own.
        let changed = std::mem::take(&mut self.nodes);
        let loads = std::mem::take(&mut self.loads)
            .into_iter()
            .filter(|id| !changed.contains(id))
            .filter_map(|id| table.load_row(id))
            .collect();
        let nodes = changed
            .into_iter()
            .filter_map(|id| table.node_row(id))
            .collect();
        let gone = std::mem::take(&mut self.gone)
            .into_iter()
            .filter(|&id| table.info(id).is_none())
            .collect();
        self.acks = false;
        let update = LoadUpdate {
            seq: self.next,
            notices: 0,
            nodes,
            loads,
            gone,
        };
        self.next += 1;
        let to = self.watchers.iter().map(|(s, w)| (*s, w.notices)).collect();
        Some((update, to))
    }

    /// How many connections watch.
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        self.watchers.len()
    }
}
