//! [`MemberLog`]: the membership as the nodes are told it — the live
//! members' entries and the recent changes, numbered — each encoded once,
//! from which the writer of every joined connection brings its node up to
//! date (`outbox.rs`): a `Welcome` listing every live member (from a
//! snapshot of the list that the Welcomes of a burst share), then deltas
//! of the changes since, or the whole list again when the changes it lacks
//! are no longer kept.
//!
//! Plain data. The shell records each change the state decides, under the
//! pool lock, in the order decided (`shared.rs`); the writers read it
//! under the lock of the `MemberFeed` that holds it (`outbox.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use pool_proto::members::{
    delta_frame, encode_entry, encode_entry_into, members_frame_runs, welcome_frame_parts,
    welcome_frame_runs,
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

/// A snapshot of the list is stale once the changes recorded since take
/// more than this fraction of its bytes (1/16): a `Welcome` made from it
/// carries those changes again as deltas, so the join storm reads at most
/// that much more, and the list is copied once per as many joins (about
/// n/16 at n members) rather than once per join.
const SNAPSHOT_STALE_FRACTION: u64 = 16;

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
    /// The list as of a recent change, in one shared buffer: every
    /// `Welcome` of a join storm sends it (with the changes since as
    /// deltas) instead of a copy of its own. Taken when a `Welcome` finds
    /// none fresh enough; behind a lock of its own because the writers
    /// make Welcomes under the log's read lock.
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

/// The live members' entries as of one change, for the Welcomes of a
/// burst of joins to share (see [`MemberLog::welcome_out`]).
#[derive(Debug)]
struct Snapshot {
    /// The number of the first change it does not include.
    next: u64,
    /// The log's bytes of changes when it was taken (how stale it is).
    bytes: u64,
    /// Every member's entry, one after another.
    entries: Bytes,
    /// Where each member's entry is in `entries`.
    at: HashMap<NodeId, Range<usize>>,
}

/// The answer to a `Join` as a writer sends it: `head`, `entries`, then
/// `rest`. The entries are shared with the other Welcomes of a burst (see
/// [`MemberLog::welcome_out`]); `rest` ends the frame and carries the
/// changes since the list, as deltas.
#[derive(Debug)]
pub(crate) struct WelcomeOut {
    /// The frame up to its list.
    pub(crate) head: BytesMut,
    /// The list's entries (empty when `head` holds the whole frame).
    pub(crate) entries: Bytes,
    /// The end of the frame, then the changes the list lacks, as deltas.
    pub(crate) rest: BytesMut,
    /// The number of the next change the node then lacks.
    pub(crate) next: u64,
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

    /// A copy of the list, numbered `next` (the log having `bytes` bytes
    /// of changes then).
    fn snapshot(&self, next: u64, bytes: u64) -> Snapshot {
        let mut order: Vec<(NodeId, Range<usize>)> =
            self.at.iter().map(|(id, r)| (*id, r.clone())).collect();
        order.sort_unstable_by_key(|(_, r)| r.start);
        let mut entries = Vec::with_capacity(self.listed_bytes());
        let mut at = HashMap::with_capacity(order.len());
        for (id, r) in order {
            let start = entries.len();
            entries.extend_from_slice(&self.bytes[r]);
            at.insert(id, start..entries.len());
        }
        Snapshot {
            next,
            bytes,
            entries: Bytes::from(entries),
            at,
        }
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
    /// numbered, then the changes its list lacks, as deltas (see
    /// [`welcome_out`](Self::welcome_out)). Returns the number of the next
    /// change (what the connection then has), `None` if the frame could
    /// not be made (logged; nothing appended).
    #[cfg(test)]
    pub(crate) fn welcome(
        &self,
        id: ReqId,
        welcome: &Welcome,
        out: &mut BytesMut,
        max: usize,
    ) -> Option<u64> {
        let w = self.welcome_out(id, welcome, max)?;
        out.extend_from_slice(&w.head);
        out.extend_from_slice(&w.entries);
        out.extend_from_slice(&w.rest);
        Some(w.next)
    }

    /// The answer to a `Join` (request `id`), in parts: `welcome` listing
    /// its own `members` (the joiner) and every other live member as of a
    /// recent change — the snapshot the other Welcomes of a burst share,
    /// not a copy per join (a join storm at 10,000 members would copy and
    /// fault in 400 kB per join) — then, as deltas, the changes since. A
    /// joiner already in the snapshot with other details gets a list made
    /// for it alone. `None` if the frame could not be made (logged).
    pub(crate) fn welcome_out(
        &self,
        id: ReqId,
        welcome: &Welcome,
        max: usize,
    ) -> Option<WelcomeOut> {
        let snap = self.fresh_snapshot();
        let mut own = Vec::new();
        for m in &welcome.members {
            let Ok(entry) = encode_entry(m) else { continue };
            match snap.at.get(&m.id) {
                None => own.push(entry),
                // Listed already, as the Welcome lists it.
                Some(r) if snap.entries[r.clone()] == entry[..] => {}
                Some(_) => return self.welcome_alone(id, welcome, max),
            }
        }
        let head = Welcome {
            members_next: snap.next,
            ..welcome.clone()
        };
        let count = snap.at.len() + own.len();
        let own_len: usize = own.iter().map(Bytes::len).sum();
        let parts = match welcome_frame_parts(id, &head, count, snap.entries.len() + own_len, max) {
            Ok(parts) => parts,
            Err(e) => {
                warn!(cause = %e, members = self.live.len(), "cannot send the Welcome (raise --max-frame on every node)");
                return None;
            }
        };
        let mut rest = BytesMut::with_capacity(own_len + parts.tail.len());
        for e in &own {
            rest.extend_from_slice(e);
        }
        rest.extend_from_slice(&parts.tail);
        let next = self.catch_up(snap.next, &mut rest, max);
        Some(WelcomeOut {
            head: parts.head,
            entries: snap.entries.clone(),
            rest,
            next,
        })
    }

    /// [`welcome_out`](Self::welcome_out) with a list of the live members
    /// copied for this Welcome alone.
    fn welcome_alone(&self, id: ReqId, welcome: &Welcome, max: usize) -> Option<WelcomeOut> {
        let mut head = BytesMut::new();
        let next = self.welcome_fresh(id, welcome, &mut head, max)?;
        Some(WelcomeOut {
            head,
            entries: Bytes::new(),
            rest: BytesMut::new(),
            next,
        })
    }

    /// The snapshot of the list, taken anew if there is none yet, if the
    /// changes since it are no longer kept, or if they take more than
    /// [`SNAPSHOT_STALE_FRACTION`] of its bytes.
    fn fresh_snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a panic elsewhere; the snapshot is
        // still valid (or absent).
        let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        match &*snap {
            Some(s)
                if s.next >= self.first()
                    && self.bytes.saturating_sub(s.bytes) * SNAPSHOT_STALE_FRACTION
                        <= s.entries.len() as u64 =>
            {
                s.clone()
            }
            _ => {
                let s = Arc::new(self.live.snapshot(self.next, self.bytes));
                *snap = Some(s.clone());
                s
            }
        }
    }

    /// Appends to `out` the answer to a `Join` (request `id`): `welcome`
    /// listing its own `members` (the joiner) and every other live member,
    /// numbered. Returns the number of the next change (what the
    /// connection then has), `None` if the frame could not be made
    /// (logged; nothing appended).
    fn welcome_fresh(
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
