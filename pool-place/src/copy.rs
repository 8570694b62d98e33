//! [`LoadCopy`]: a node's copy of the master's load table, so that the
//! node places its own spawns (one round trip for a pool spawn instead of
//! two) with the master's code and accounting.
//!
//! The copy starts from the master's whole table (the answer to
//! `Request::WatchLoads`) and follows its numbered [`LoadUpdate`]s; an
//! update out of turn is a gap, and the node asks for the table again
//! ([`LoadCopy::resync`]). The master stays the authority: its rows replace
//! the copy's. Placements the node makes on the copy count on it at once,
//! go to the master in batched [`PlacedNotice`]s, and stay counted on top
//! of the master's rows until an update says the master applied them
//! ([`LoadUpdate::notices`]), so a burst water-fills the copy exactly as it
//! would the master's table, and is neither forgotten nor counted twice
//! when the master's rows arrive.
//!
//! Plain data, like the table: time is an argument.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use pool_proto::{
    LoadTableCopy, LoadUpdate, NodeId, PlaceQuery, PlacedNotice, PlacementStrategy, WasmName,
};
use rand::Rng;

use crate::load_table::{LoadTable, LoadTableConfig};
use crate::placement::PlaceError;

#[cfg(test)]
mod tests;

/// Notices sent and not yet acknowledged that a copy keeps counting: past
/// this the oldest are taken as applied (a master that does not answer
/// them for so long is being corrected by reports anyway).
const MAX_UNACKED: usize = 1024;

/// What became of a [`LoadUpdate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It was the next one: the copy is up to date with it.
    Applied,
    /// It is older than the copy (a table asked for again covers it).
    Skipped,
    /// Updates are missing: the copy is stale until the table is asked for
    /// again.
    Gap {
        /// The number expected.
        expected: u64,
        /// The number received.
        got: u64,
    },
}

/// A node's copy of the master's load table. See the module docs.
///
/// ```
/// use std::time::Instant;
/// use pool_place::{LoadCopy, LoadTable};
/// use pool_proto::{LoadTableCopy, NodeId, NodeInfo, NodeKind, PlaceQuery, PlacementStrategy};
///
/// let now = Instant::now();
/// let mut master = LoadTable::default();
/// for n in 1..=2 {
///     let info = NodeInfo { id: NodeId::from_u64(n), name: format!("w{n}"), addr: String::new(),
///                           kind: NodeKind::Worker, capacity: 1, labels: Default::default() };
///     master.add_node(info, now);
/// }
/// let mut copy = LoadCopy::new(LoadTableCopy {
///     next: 1, notices: 0, strategy: PlacementStrategy::LeastLoaded,
///     mem_refuse_above: None, nodes: master.node_rows(),
/// }, now);
/// let q = PlaceQuery { count: 1, commit: true, ..Default::default() };
/// let a = copy.place(&q, &mut rand::rng()).unwrap();
/// let b = copy.place(&q, &mut rand::rng()).unwrap();
/// assert_ne!(a, b); // the first placement counts before the second
/// let notice = copy.take_notice().unwrap();
/// assert_eq!(notice.placed.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct LoadCopy {
    /// The master's rows, plus this node's placements it does not count
    /// yet (`extra`).
    table: LoadTable,
    /// The master's default strategy.
    strategy: PlacementStrategy,
    /// The number of the next update expected.
    next: u64,
    /// The number of the next notice.
    next_notice: u64,
    /// Placements made here and not told to the master yet.
    unsent: BTreeMap<NodeId, u32>,
    /// Notices told and not yet acknowledged by an update, oldest first.
    sent: VecDeque<PlacedNotice>,
    /// By node, `unsent` plus `sent`: what the copy counts on top of the
    /// master's rows.
    extra: HashMap<NodeId, u32>,
}

impl LoadCopy {
    /// A copy of the master's table as `WatchLoads` answered it, at `now`.
    pub fn new(copy: LoadTableCopy, now: Instant) -> Self {
        let mut c = LoadCopy {
            table: LoadTable::default(),
            strategy: copy.strategy,
            next: 0,
            next_notice: 1,
            unsent: BTreeMap::new(),
            sent: VecDeque::new(),
            extra: HashMap::new(),
        };
        c.resync(copy, now);
        c
    }

    /// Replaces the table with the master's whole table again (after a
    /// gap). Placements not yet told, and those told that the table does
    /// not count yet, stay counted.
    pub fn resync(&mut self, copy: LoadTableCopy, now: Instant) {
        self.ack(copy.notices);
        let mut table = LoadTable::new(LoadTableConfig {
            mem_refuse_above: copy.mem_refuse_above,
            accounting: true,
        });
        for row in copy.nodes {
            table.apply_node_row(row, now);
        }
        for (&id, &n) in &self.extra {
            table.record_placements(id, n);
        }
        self.table = table;
        self.strategy = copy.strategy;
        self.next = copy.next;
    }

    /// Applies the master's next update at `now`.
    pub fn apply(&mut self, update: LoadUpdate, now: Instant) -> Applied {
        if update.seq < self.next {
            return Applied::Skipped;
        }
        if update.seq > self.next {
            return Applied::Gap {
                expected: self.next,
                got: update.seq,
            };
        }
        self.next += 1;
        // The rows of this update count the acknowledged notices: stop
        // counting them on top. A node they name always has a row in the
        // same update (the master marks it when it applies the notice),
        // unless it is gone; `forget` covers a master that did not.
        let acked = self.ack(update.notices);
        let mut rowed = HashSet::new();
        for id in &update.gone {
            self.table.remove_node(*id);
            rowed.insert(*id);
        }
        for row in update.nodes {
            let id = row.info.id;
            self.table.apply_node_row(row, now);
            self.count_extra(id);
            rowed.insert(id);
        }
        for row in &update.loads {
            if self.table.apply_load_row(row, now) {
                self.count_extra(row.node);
            }
            rowed.insert(row.node);
        }
        for (id, n) in acked {
            if !rowed.contains(&id) {
                self.table.forget_placements(id, n);
            }
        }
        Applied::Applied
    }

    /// Whether the copy answers `query` exactly as the master would: a
    /// committed placement by the master's default strategy (round-robin
    /// excepted: its rotation is the master's alone) or by key, on no
    /// named node, of a function that is not WebAssembly (the master
    /// resolves those to the modules it stores).
    pub fn answers(&self, query: &PlaceQuery) -> bool {
        let strategy_ok = query.key.is_some()
            || (query.strategy.is_none_or(|s| s == self.strategy)
                && self.strategy != PlacementStrategy::RoundRobin);
        query.commit
            && query.node.is_none()
            && strategy_ok
            && !query.function.as_deref().is_some_and(WasmName::is_wasm)
    }

    /// Places `query` on the copy (see [`LoadTable::place`]); committed
    /// placements count here at once and wait for
    /// [`take_notice`](Self::take_notice).
    pub fn place<R: Rng + ?Sized>(
        &mut self,
        query: &PlaceQuery,
        rng: &mut R,
    ) -> Result<Vec<NodeId>, PlaceError> {
        let ids = self.table.place(query, self.strategy, rng)?;
        if query.commit {
            for &id in &ids {
                *self.unsent.entry(id).or_default() += 1;
                *self.extra.entry(id).or_default() += 1;
            }
        }
        Ok(ids)
    }

    /// The placements not told to the master yet, as the next notice (none
    /// if there are none). They stay counted until an update acknowledges
    /// the notice.
    pub fn take_notice(&mut self) -> Option<PlacedNotice> {
        if self.unsent.is_empty() {
            return None;
        }
        let notice = PlacedNotice {
            seq: self.next_notice,
            placed: std::mem::take(&mut self.unsent).into_iter().collect(),
        };
        self.next_notice += 1;
        self.sent.push_back(notice.clone());
        while self.sent.len() > MAX_UNACKED {
            let oldest = self.sent.front().map_or(0, |n| n.seq);
            for (id, n) in self.ack(oldest) {
                self.table.forget_placements(id, n);
            }
        }
        Some(notice)
    }

    /// True when placements wait for [`take_notice`](Self::take_notice).
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// The table as the copy sees it (the master's rows plus what it
    /// counts on top).
    pub fn table(&self) -> &LoadTable {
        &self.table
    }

    /// The number of the next update expected.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The master's default strategy.
    pub fn strategy(&self) -> PlacementStrategy {
        self.strategy
    }

    /// Drops the notices up to `seq` from what is counted on top; returns
    /// their placements.
    fn ack(&mut self, seq: u64) -> Vec<(NodeId, u32)> {
        let mut acked = Vec::new();
        while self.sent.front().is_some_and(|n| n.seq <= seq) {
            let Some(notice) = self.sent.pop_front() else {
                break;
            };
            for (id, n) in notice.placed {
                if let Some(e) = self.extra.get_mut(&id) {
                    *e = e.saturating_sub(n);
                    if *e == 0 {
                        self.extra.remove(&id);
                    }
                }
                acked.push((id, n));
            }
        }
        acked
    }

    /// Counts this node's own placements on `id` on top of the master's
    /// row just applied.
    fn count_extra(&mut self, id: NodeId) {
        if let Some(&n) = self.extra.get(&id) {
            self.table.record_placements(id, n);
        }
    }
}
