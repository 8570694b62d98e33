//! [`MemberLog`]: the membership as the nodes are told it — the live
//! members' entries and the recent changes, numbered — each encoded once,
//! from which the writer of every joined connection brings its node up to
//! date (`outbox.rs`): a `Welcome` listing every live member, then deltas
//! of the changes since, or the whole list again when the changes it lacks
//! are no longer kept.
//!
//! Plain data. The shell records each change the state decides, under the
//! pool lock, in the order decided (`shared.rs`); the writers read it
//! under the lock of the `MemberFeed` that holds it (`outbox.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use pool_proto::members::{
    delta_frame, encode_entry, encode_entry_into, members_frame_runs, welcome_frame_runs,
};
use pool_proto::{MemberChange, NodeId, ReqId, Welcome};
use tracing::warn;

#[cfg(test)]
mod tests;

/// Fewest changes kept. More are kept while the pool is larger (as many
/// as it has members): a connection that lacks more changes than are kept
/// gets the whole list instead, which is then no larger than the deltas
/// it would have got.
pub(crate) const MIN_KEPT: usize = 4096;

/// What is left of a frame for the changes of a delta: the limit less the
/// head (a map key, the number and the array marker take a few dozen
/// bytes).
const DELTA_HEAD_ROOM: usize = 256;

/// The changes are encoded into blocks of this size, one after the other,
/// so that the changes a writer copies lie side by side in memory.
const CHANGE_BLOCK: usize = 64 * 1024;

/// Holes in the list of live entries are closed once they take more than
/// this and half the list.
const COMPACT_MIN: usize = 64 * 1024;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct MemberLog {
    /// The number of the next change.
    next: u64,
    /// The bytes of every change recorded so far, encoded: what a writer
    /// lacks since its last catch-up is the difference (`outbox/linger.rs`).
    bytes: u64,
    /// The most recent changes, encoded, oldest first: the last one is
    /// numbered `next - 1`. Each is a slice of a block of
    /// [`CHANGE_BLOCK`] bytes shared with its neighbours.
    changes: VecDeque<Bytes>,
    /// Where the next changes are encoded (the rest of the current block).
    block: BytesMut,
    /// Every live member's `NodeInfo`, encoded: what a list holds.
    live: LiveList,
}

/// Every live member's entry, encoded, in one buffer: a `Welcome` or a
/// list copies a few long runs of it rather than one entry per member
/// from as many allocations (a `Welcome` at 10,000 members is 700 kB, and
/// a join storm sends one per join).
#[derive(Debug, Default)]
struct LiveList {
    /// The entries one after another; one that left (or was replaced by
    /// newer details) is a hole until the next compaction.
    bytes: Vec<u8>,
    /// Where each live member's entry is in `bytes`.
    at: HashMap<NodeId, Range<usize>>,
    /// The holes in `bytes`: end by start.
    holes: BTreeMap<usize, usize>,
    /// The bytes in holes.
    hole_bytes: usize,
}

impl LiveList {
    /// How many members are listed.
    fn len(&self) -> usize {
        self.at.len()
    }

    /// Lists (or relists) member `id` with `entry`.
    fn insert(&mut self, id: NodeId, entry: &[u8]) {
        self.remove(id);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(entry);
        self.at.insert(id, start..self.bytes.len());
    }

    /// Takes member `id` off the list, if listed.
    fn remove(&mut self, id: NodeId) {
        let Some(r) = self.at.remove(&id) else {
            return;
        };
        self.hole_bytes += r.len();
        self.holes.insert(r.start, r.end);
        if self.hole_bytes > COMPACT_MIN.max(self.bytes.len() / 2) {
            self.compact();
        }
    }

    /// Closes the holes (O(n), once per as many bytes removed as are
    /// left).
    fn compact(&mut self) {
        let mut order: Vec<(NodeId, Range<usize>)> = self.at.drain().collect();
        order.sort_unstable_by_key(|(_, r)| r.start);
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.hole_bytes);
        for (id, r) in order {
            let start = bytes.len();
            bytes.extend_from_slice(&self.bytes[r]);
            self.at.insert(id, start..bytes.len());
        }
        self.bytes = bytes;
        self.holes.clear();
        self.hole_bytes = 0;
    }

    /// The bytes of the listed entries.
    fn listed_bytes(&self) -> usize {
        self.bytes.len() - self.hole_bytes
    }

    /// The entries of every listed member but those of `skip`, as runs of
    /// entries in list order, and how many entries they hold.
    fn runs(&self, skip: &[NodeId]) -> (Vec<&[u8]>, usize) {
        let mut cuts: Vec<Range<usize>> = skip
            .iter()
            .filter_map(|id| self.at.get(id).cloned())
            .collect();
        cuts.sort_unstable_by_key(|r| r.start);
        cuts.dedup();
        let count = self.at.len() - cuts.len();
        let mut holes = self.holes.iter().map(|(&s, &e)| s..e).peekable();
        let mut cuts = cuts.into_iter().peekable();
        let mut runs = Vec::new();
        let mut pos = 0;
        loop {
            // The next gap, holes and cuts merged in order.
            let gap = match (holes.peek(), cuts.peek()) {
                (Some(h), Some(c)) if h.start <= c.start => holes.next(),
                (Some(_), Some(_)) => cuts.next(),
                (Some(_), None) => holes.next(),
                (None, _) => cuts.next(),
            };
            let Some(gap) = gap else { break };
            if gap.start > pos {
                runs.push(&self.bytes[pos..gap.start]);
            }
            pos = pos.max(gap.end);
        }
        if pos < self.bytes.len() {
            runs.push(&self.bytes[pos..]);
        }
        (runs, count)
    }
}

impl MemberLog {
    /// The number of the next change.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// The bytes of every change recorded so far, encoded.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many members are live.
    pub(crate) fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The number of the oldest change kept.
    fn first(&self) -> u64 {
        self.next - self.changes.len() as u64
    }

    /// Records a change: it is numbered, the live members are updated, and
    /// the oldest changes past what is kept are forgotten. A change that
    /// cannot be encoded (it never happens to a `NodeInfo` the master
    /// accepted) is logged and not numbered.
    pub(crate) fn record(&mut self, change: &MemberChange) {
        let cannot = |e: pool_proto::Error| {
            warn!(cause = %e, ?change, "a membership change cannot be encoded; the nodes are not told");
        };
        // A block shared with the changes before it while it has room; a
        // new one (`reserve` cannot grow a shared buffer) once it is full.
        if self.block.capacity() < DELTA_HEAD_ROOM {
            self.block.reserve(CHANGE_BLOCK);
        }
        if let Err(e) = encode_entry_into(change, &mut self.block) {
            return cannot(e);
        }
        match change {
            MemberChange::Up(info) => match encode_entry(info) {
                Ok(i) => self.live.insert(info.id, &i),
                Err(e) => {
                    self.block.clear();
                    return cannot(e);
                }
            },
            MemberChange::Down { node, .. } => self.live.remove(*node),
        }
        let change = self.block.split().freeze();
        self.bytes += change.len() as u64;
        self.changes.push_back(change);
        self.next += 1;
        let keep = MIN_KEPT.max(self.live.len());
        while self.changes.len() > keep {
            self.changes.pop_front();
        }
    }

    /// Appends to `out` the answer to a `Join` (request `id`): `welcome`
    /// listing its own `members` (the joiner) and every other live member,
    /// numbered. Returns the number of the next change (what the
    /// connection then has), `None` if the frame could not be made
    /// (logged; nothing appended).
    pub(crate) fn welcome(
        &self,
        id: ReqId,
        welcome: &Welcome,
        out: &mut BytesMut,
        max: usize,
    ) -> Option<u64> {
        let own: Vec<Bytes> = welcome
            .members
            .iter()
            .filter_map(|m| encode_entry(m).ok())
            .collect();
        let listed: Vec<NodeId> = welcome.members.iter().map(|m| m.id).collect();
        let (runs, count) = self.live.runs(&listed);
        let head = Welcome {
            members_next: self.next,
            ..welcome.clone()
        };
        // One allocation for the frame rather than a doubling series of
        // them (each touching fresh pages).
        out.reserve(self.live.listed_bytes() + own.iter().map(Bytes::len).sum::<usize>() + 256);
        let runs = runs.into_iter().chain(own.iter().map(|e| e.as_ref()));
        match welcome_frame_runs(id, &head, count + own.len(), runs, out, max) {
            Ok(()) => Some(self.next),
            Err(e) => {
                warn!(cause = %e, members = self.live.len(), "cannot send the Welcome (raise --max-frame on every node)");
                None
            }
        }
    }

    /// Appends the whole list to `out`. Returns the number of the next
    /// change, `None` if the frame could not be made (logged; nothing
    /// appended).
    pub(crate) fn list(&self, out: &mut BytesMut, max: usize) -> Option<u64> {
        let (runs, count) = self.live.runs(&[]);
        out.reserve(self.live.listed_bytes() + 64);
        match members_frame_runs(self.next, count, runs.into_iter(), out, max) {
            Ok(()) => Some(self.next),
            Err(e) => {
                warn!(cause = %e, members = self.live.len(), "cannot send the membership list (raise --max-frame on every node)");
                None
            }
        }
    }

    /// Appends to `out` what a connection that has every change before
    /// `cursor` lacks: nothing; the changes since, as deltas (as many as
    /// the frame limit needs); or, when some of them are no longer kept,
    /// the whole list. Returns the number of the next change the
    /// connection then lacks. A frame that cannot be made is logged and
    /// left out: the node sees the gap at the next delta and asks for the
    /// list.
    pub(crate) fn catch_up(&self, cursor: u64, out: &mut BytesMut, max: usize) -> u64 {
        if cursor >= self.next {
            return cursor;
        }
        if cursor < self.first() {
            let _ = self.list(out, max);
            return self.next;
        }
        let budget = max.saturating_sub(DELTA_HEAD_ROOM).max(1);
        let skip = (cursor - self.first()) as usize;
        let mut first = cursor;
        let mut chunk: Vec<&[u8]> = Vec::new();
        let mut bytes = 0;
        for change in self.changes.range(skip..) {
            if !chunk.is_empty() && bytes + change.len() > budget {
                self.delta(first, &chunk, out, max);
                first += chunk.len() as u64;
                chunk.clear();
                bytes = 0;
            }
            bytes += change.len();
            chunk.push(change);
        }
        self.delta(first, &chunk, out, max);
        self.next
    }

    /// Appends one delta frame (logged if it cannot be made).
    fn delta(&self, first: u64, chunk: &[&[u8]], out: &mut BytesMut, max: usize) {
        if let Err(e) = delta_frame(first, chunk.iter(), out, max) {
            warn!(cause = %e, first, "cannot send membership changes (raise --max-frame on every node)");
        }
    }
}
