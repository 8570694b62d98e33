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

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use pool_proto::members::{delta_frame, encode_entry, members_frame, welcome_frame};
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

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct MemberLog {
    /// The number of the next change.
    next: u64,
    /// The most recent changes, encoded, oldest first: the last one is
    /// numbered `next - 1`.
    changes: VecDeque<Bytes>,
    /// Every live member's `NodeInfo`, encoded: what a list holds.
    live: HashMap<NodeId, Bytes>,
}

impl MemberLog {
    /// The number of the next change.
    pub(crate) fn next(&self) -> u64 {
        self.next
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
        let entry = match encode_entry(change) {
            Ok(e) => e,
            Err(e) => {
                warn!(cause = %e, ?change, "a membership change cannot be encoded; the nodes are not told");
                return;
            }
        };
        match change {
            MemberChange::Up(info) => match encode_entry(info) {
                Ok(i) => {
                    self.live.insert(info.id, i);
                }
                Err(e) => {
                    warn!(cause = %e, ?change, "a membership change cannot be encoded; the nodes are not told");
                    return;
                }
            },
            MemberChange::Down { node, .. } => {
                self.live.remove(node);
            }
        }
        self.changes.push_back(entry);
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
        let listed: HashSet<NodeId> = welcome.members.iter().map(|m| m.id).collect();
        let entries: Vec<&[u8]> = self
            .live
            .iter()
            .filter(|(id, _)| !listed.contains(id))
            .map(|(_, e)| e.as_ref())
            .chain(own.iter().map(|e| e.as_ref()))
            .collect();
        let head = Welcome {
            members_next: self.next,
            ..welcome.clone()
        };
        match welcome_frame(id, &head, entries.into_iter(), out, max) {
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
        match members_frame(self.next, self.live.values(), out, max) {
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
        for change in self.changes.iter().skip(skip) {
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
