//! This node's copy of the master's load table, for placing its own pool
//! spawns (one round trip instead of two: no `Place` to the master before
//! the spawn). A leaf: the master link owns it (inside its client, shared
//! with every `MasterHandle`) — it installs the copy the master answers to
//! `WatchLoads`, applies the master's numbered updates, drops the copy when
//! the connection is lost, and sends the placements made on it to the
//! master in batched notices; the Pool API places on it through
//! `MasterHandle::place_here`. It owns no task.
//!
//! The copy is used only while it is live (answered on the current
//! connection, no gap in the updates since) and only for what it answers
//! exactly as the master would (`LoadCopy::answers`); anything else, and
//! any placement the copy cannot make, goes to the master as before.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use pool_place::{Applied, LoadCopy};
use pool_proto::{LoadTableCopy, LoadUpdate, PlaceQuery, Placed, PlacedNotice};
use tokio::sync::Notify;

#[cfg(test)]
mod tests;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    /// The copy and where it stands.
    state: Mutex<State>,
    /// One `WatchLoads` at a time: the spawns that find no copy wait
    /// behind the one asking, then use its copy.
    pub(crate) gate: tokio::sync::Mutex<()>,
    /// Wakes the master link's task when placements wait to be told
    /// (`take_notice`); the placements of every spawn made before it runs
    /// go in one notice.
    pub(crate) notices_due: Notify,
}

/// The copy as the connection left it.
#[derive(Debug, Default)]
struct State {
    /// The copy, once the master answered `WatchLoads` on the current
    /// connection.
    copy: Option<LoadCopy>,
    /// Updates are missing: the copy is not used until the table asked
    /// for again arrives.
    stale: bool,
    /// The master refused `WatchLoads` on the current connection (an older
    /// master): every placement is asked of it, as before.
    refused: bool,
}

/// What the master link does after an update.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterUpdate {
    /// Nothing.
    Nothing,
    /// Ask for the table again: updates are missing.
    Resync {
        /// The number expected.
        expected: u64,
        /// The number received.
        got: u64,
    },
}

impl Loads {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The master's answer to `WatchLoads` (on the connection's reader, in
    /// frame order: before the updates numbered after it).
    pub(crate) fn install(&self, table: LoadTableCopy) {
        let now = Instant::now();
        let mut s = self.lock();
        match &mut s.copy {
            Some(copy) => copy.resync(table, now),
            None => s.copy = Some(LoadCopy::new(table, now)),
        }
        s.stale = false;
    }

    /// The master's next update (on the connection's reader).
    pub(crate) fn update(&self, update: LoadUpdate) -> AfterUpdate {
        let mut s = self.lock();
        let Some(copy) = &mut s.copy else {
            return AfterUpdate::Nothing; // not watching on this connection
        };
        match copy.apply(update, Instant::now()) {
            Applied::Applied | Applied::Skipped => AfterUpdate::Nothing,
            Applied::Gap { expected, got } => {
                // Ask once: later updates are gaps too until the table
                // arrives.
                let first = !s.stale;
                s.stale = true;
                if first {
                    AfterUpdate::Resync { expected, got }
                } else {
                    AfterUpdate::Nothing
                }
            }
        }
    }

    /// The connection to the master is gone: so is the copy (the next
    /// connection's master may be another one).
    pub(crate) fn clear(&self) {
        *self.lock() = State::default();
    }

    /// The master refused `WatchLoads` on this connection.
    pub(crate) fn refused(&self) {
        self.lock().refused = true;
    }

    /// Whether a `WatchLoads` is worth asking: no copy yet on this
    /// connection, and the master did not refuse one.
    pub(crate) fn wants_copy(&self) -> bool {
        let s = self.lock();
        s.copy.is_none() && !s.refused
    }

    /// Places `query` on the copy, if the copy is live and answers it as
    /// the master would, and places it (`None` otherwise: ask the master,
    /// which also words the errors). The placements count at once and are
    /// told to the master by the link task, which this wakes.
    pub(crate) fn place(&self, query: &PlaceQuery) -> Option<Vec<Placed>> {
        let placed = {
            let mut s = self.lock();
            if s.stale {
                return None;
            }
            let copy = s.copy.as_mut()?;
            if !copy.answers(query) {
                return None;
            }
            let ids = copy.place(query, &mut rand::rng()).ok()?;
            let table = copy.table();
            ids.into_iter()
                .map(|id| table.placed(id))
                .collect::<Option<Vec<_>>>()?
        };
        self.notices_due.notify_one();
        Some(placed)
    }

    /// The placements not yet told to the master, as one notice.
    pub(crate) fn take_notice(&self) -> Option<PlacedNotice> {
        self.lock().copy.as_mut()?.take_notice()
    }
}
