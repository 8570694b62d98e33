//! [`Shared`]: what every task of the master shares — the settings, the
//! pool state and the open connections under one lock, the metrics, the
//! state writer's handle, the root token and the task tracker — and
//! [`PoolGuard`], the lock held, which carries out the state's effects.
//!
//! It imports nothing of the daemon's tasks: the listener, the sessions,
//! the HTTP handlers, the node requests and `master.rs` all import it.
//!
//! Why one lock for the state and the connections: a transition decides
//! what every node must be told, and [`PoolGuard::apply`] queues those
//! frames before the lock is released. The next transition can only queue
//! behind them, so every node sees the changes in the order they were
//! decided (a `NodeDown` never overtakes the `NodeUp` before it). Queuing
//! never blocks, so the lock is still short.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pool_proto::{Identity, NodeId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::MasterConfig;
use crate::membership::SessionId;
use crate::metrics::Metrics;
use crate::modules::ModuleStore;
use crate::outbox::{MemberFeed, NodeLink};
use crate::persist::Persister;
use crate::state::{Effect, NodeRequest, PoolState};

/// What every task of the master shares. Created by `spawn_master`; each
/// task holds an `Arc` of it, so it lives until the last task has ended
/// (the state writer, which takes the last snapshot, is the last).
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings it was started with.
    pub(crate) config: MasterConfig,
    /// The master's identity in handshakes.
    pub(crate) identity: Identity,
    /// The pool state and the connections its effects go to; never held
    /// across an `.await` (see [`PoolGuard`]).
    pool: Mutex<Locked>,
    /// Metric handles (also used by the pool's transitions).
    pub(crate) metrics: Arc<Metrics>,
    /// The WebAssembly modules pushed to the pool, with their own lock
    /// (never taken inside the pool lock's critical sections that queue
    /// effects; a placement resolves its function before it locks).
    pub(crate) modules: ModuleStore,
    /// Saves the state directory after changes; its task runs on a token of
    /// its own so that it writes the last state after everything else has
    /// stopped.
    pub(crate) persister: Arc<Persister>,
    /// The root token: cancelled when the master stops. Every loop selects
    /// on it; each connection's token is a child of it.
    pub(crate) token: CancellationToken,
    /// Every task of the master, so that the stop can wait for them all.
    pub(crate) tracker: TaskTracker,
    /// Wakes the failure watch when a node becomes live (its deadline may
    /// be the first one).
    pub(crate) fd_wakeup: Notify,
    /// Wakes the app timer when a transition set an app's retry (the
    /// state's `rearm` flag), since it may come before the timer's next
    /// wake-up. Notified by [`PoolGuard`] when the lock is released.
    pub(crate) apps_wakeup: Notify,
    /// Wakes the load-push task (`master.rs`) when rows of the load table
    /// changed while nodes watch it. Notified by [`PoolGuard`] when the
    /// lock is released.
    pub(crate) loads_wakeup: Notify,
    /// Serial of the next connection.
    next_session: AtomicU64,
    /// The membership as the nodes are told it: the state's membership
    /// changes are recorded there (under the pool lock, in the order
    /// decided) and every connection's writer sends from it.
    pub(crate) feed: Arc<MemberFeed>,
}

/// What the one lock guards.
#[derive(Debug)]
struct Locked {
    /// The decisions: membership, load, names, apps, down list.
    state: PoolState,
    /// The outbox of every connection past its handshake, by session:
    /// where the effects the state addresses to a session are queued. A
    /// session adds its own and removes it when it ends.
    links: HashMap<SessionId, Arc<NodeLink>>,
}

/// The pool state, locked. Dropping it asks the state writer to save if
/// the state changed.
pub(crate) struct PoolGuard<'a> {
    /// The lock.
    guard: MutexGuard<'a, Locked>,
    /// Where changes are reported.
    persister: &'a Persister,
    /// The app timer's wake-up, notified if a retry was set.
    apps_wakeup: &'a Notify,
    /// The load-push task's wake-up, notified if an update is due.
    loads_wakeup: &'a Notify,
    /// Where membership changes are recorded.
    feed: &'a MemberFeed,
}

impl std::ops::Deref for PoolGuard<'_> {
    type Target = PoolState;
    fn deref(&self) -> &PoolState {
        &self.guard.state
    }
}

impl std::ops::DerefMut for PoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut PoolState {
        &mut self.guard.state
    }
}

impl PoolGuard<'_> {
    /// Reports a pending change now; returns the change number to
    /// [`Persister::flush`] on (the latest one if nothing changed).
    pub(crate) fn save(&mut self) -> u64 {
        if self.guard.state.dirty {
            self.guard.state.dirty = false;
            self.persister.mark()
        } else {
            self.persister.latest()
        }
    }

    /// Adds a connection's outbox, so that effects addressed to its
    /// session reach it.
    pub(crate) fn attach(&mut self, link: Arc<NodeLink>) {
        self.guard.links.insert(link.conn.session, link);
    }

    /// Removes the outbox of `session` (the connection ended): effects
    /// still addressed to it are dropped.
    pub(crate) fn detach(&mut self, session: SessionId) {
        self.guard.links.remove(&session);
        self.guard.state.unwatch_loads(session);
    }

    /// The outbox of `session`, if that connection is open.
    pub(crate) fn link(&self, session: SessionId) -> Option<Arc<NodeLink>> {
        self.guard.links.get(&session).cloned()
    }

    /// The outbox of member `node`'s current connection.
    pub(crate) fn link_of(&self, node: NodeId) -> Option<Arc<NodeLink>> {
        let session = self.guard.state.members.get(node)?.session;
        self.link(session)
    }

    /// Carries out a transition's effects, in order: frames are queued and
    /// connections closed now, while the lock is held (see the module
    /// doc); the requests that wait for an answer are returned, to be run
    /// once the lock is released (`node_requests::spawn`).
    #[must_use]
    pub(crate) fn apply(&mut self, effects: Vec<Effect>) -> Vec<NodeRequest> {
        let mut requests = Vec::new();
        for effect in effects {
            match effect {
                Effect::Welcome { to, id, welcome } => {
                    if let Some(link) = self.guard.links.get(&to) {
                        link.welcome(id, welcome);
                    }
                }
                // Recorded once; every joined connection's writer sends it.
                Effect::Membership(change) => self.feed.record(&change),
                Effect::Close(session) => {
                    if let Some(link) = self.guard.links.get(&session) {
                        link.closed.cancel();
                    }
                }
                Effect::Request(request) => requests.push(request),
            }
        }
        requests
    }
}

impl Drop for PoolGuard<'_> {
    fn drop(&mut self) {
        if self.guard.state.dirty {
            self.guard.state.dirty = false;
            self.persister.mark();
        }
        if self.guard.state.rearm {
            self.guard.state.rearm = false;
            self.apps_wakeup.notify_one();
        }
        if self.guard.state.loads.due() {
            self.loads_wakeup.notify_one();
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
        modules: ModuleStore,
        token: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        Shared {
            config,
            identity,
            pool: Mutex::new(Locked {
                state: pool,
                links: HashMap::new(),
            }),
            metrics,
            modules,
            persister: Arc::new(Persister::new()),
            token,
            tracker,
            fd_wakeup: Notify::new(),
            apps_wakeup: Notify::new(),
            loads_wakeup: Notify::new(),
            next_session: AtomicU64::new(1),
            feed: Arc::default(),
        }
    }

    /// Locks the pool state.
    pub(crate) fn lock(&self) -> PoolGuard<'_> {
        PoolGuard {
            // A panic while holding the lock leaves the pool as it was at the
            // panic; carrying on beats taking the whole pool down.
            guard: self.pool.lock().unwrap_or_else(|e| e.into_inner()),
            persister: &self.persister,
            apps_wakeup: &self.apps_wakeup,
            loads_wakeup: &self.loads_wakeup,
            feed: &self.feed,
        }
    }

    /// Runs one transition under the lock and carries out its effects
    /// ([`PoolGuard::apply`]); returns its answer and the requests to run
    /// once the lock is released.
    #[must_use]
    pub(crate) fn transition<T>(
        &self,
        f: impl FnOnce(&mut PoolState) -> (T, Vec<Effect>),
    ) -> (T, Vec<NodeRequest>) {
        let mut pool = self.lock();
        let (answer, effects) = f(&mut pool);
        (answer, pool.apply(effects))
    }

    /// A fresh connection serial.
    pub(crate) fn next_session(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }
}
