//! [`Shared`]: what every task of the master shares — the settings, the
//! pool state under its one lock, the metrics, the state writer's handle,
//! the root token and the task tracker — and [`PoolGuard`], the locked
//! state. It imports nothing of the daemon's tasks: the listener, the
//! sessions, the HTTP handlers and the node requests all import it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pool_proto::Identity;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::MasterConfig;
use crate::metrics::Metrics;
use crate::persist::Persister;
use crate::state::PoolState;

/// What every task of the master shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings it was started with.
    pub(crate) config: MasterConfig,
    /// The master's identity in handshakes.
    pub(crate) identity: Identity,
    /// The whole pool state; never held across an `.await`.
    pool: Mutex<PoolState>,
    /// Metric handles (also used by the pool's transitions).
    pub(crate) metrics: Arc<Metrics>,
    /// Saves the state directory after changes.
    pub(crate) persister: Arc<Persister>,
    /// The root token: cancelled when the master stops.
    pub(crate) token: CancellationToken,
    /// Every task of the master.
    pub(crate) tracker: TaskTracker,
    /// Wakes the failure watch when a node becomes live (its deadline may
    /// be the first one).
    pub(crate) fd_wakeup: Notify,
    /// Serial of the next connection.
    next_session: AtomicU64,
}

/// The pool state, locked. Dropping it asks the state writer to save if
/// the state changed.
pub(crate) struct PoolGuard<'a> {
    /// The lock.
    guard: MutexGuard<'a, PoolState>,
    /// Where changes are reported.
    persister: &'a Persister,
}

impl std::ops::Deref for PoolGuard<'_> {
    type Target = PoolState;
    fn deref(&self) -> &PoolState {
        &self.guard
    }
}

impl std::ops::DerefMut for PoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut PoolState {
        &mut self.guard
    }
}

impl PoolGuard<'_> {
    /// Reports a pending change now; returns the change number to
    /// [`Persister::flush`] on (the latest one if nothing changed).
    pub(crate) fn save(&mut self) -> u64 {
        if self.guard.dirty {
            self.guard.dirty = false;
            self.persister.mark()
        } else {
            self.persister.latest()
        }
    }
}

impl Drop for PoolGuard<'_> {
    fn drop(&mut self) {
        if self.guard.dirty {
            self.guard.dirty = false;
            self.persister.mark();
        }
    }
}

impl Shared {
    /// The shared part of a master about to start: `pool` is the state
    /// restored from the state directory, `token` the root token and
    /// `tracker` the tracker every task is spawned on.
    pub(crate) fn new(
        config: MasterConfig,
        identity: Identity,
        pool: PoolState,
        metrics: Arc<Metrics>,
        token: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Shared {
            config,
            identity,
            pool: Mutex::new(pool),
            metrics,
            persister: Arc::new(Persister::new()),
            token,
            tracker,
            fd_wakeup: Notify::new(),
            next_session: AtomicU64::new(1),
        }
    }

    /// Locks the pool state.
    pub(crate) fn lock(&self) -> PoolGuard<'_> {
        PoolGuard {
            // A panic while holding the lock leaves the pool as it was at the
            // panic; carrying on beats taking the whole pool down.
            guard: self.pool.lock().unwrap_or_else(|e| e.into_inner()),
            persister: &self.persister,
        }
    }

    /// A fresh connection serial.
    pub(crate) fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}
