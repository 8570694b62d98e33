//! [`spawn_master`] and [`MasterHandle`]: starting the master on bound
//! sockets, its background tasks, and its ordered stop.
//!
//! Who owns whom. Every task below is spawned on one `TaskTracker` and
//! stops when the root `CancellationToken` is cancelled. Each holds an
//! `Arc<Shared>` (`shared.rs`), which owns the pool state and the
//! connections' outboxes under one lock; nothing below points back up.
//!
//! ```text
//! MasterHandle ─ main task (waits for the shutdown future, then stops the rest in order)
//! ├── accept loop ─── session (one per connection) ─┬─ reader (this task): runs transitions,
//! │   (server.rs)     (server/session.rs)            │    applies their effects
//! │                                                  ├─ writer task: drains its NodeLink (outbox.rs)
//! │                                                  └─ request tasks (node_requests.rs)
//! ├── failure watch   checks at the next report deadline (at least every node-timeout/4),
//! │                   declares nodes down — not after a pause of its own, nor in a minority
//! ├── app timer       releases held apps when their grace ends (after a restart),
//! │                   retries pending apps when their backoff is over
//! ├── upkeep          metrics histogram upkeep, down-list pruning
//! ├── sampler         the dashboard's load history, once a second
//! ├── load push       the load table's changed rows to the nodes that hold a copy
//! │                   (load_watch.rs), at most once per LOAD_PUSH_EVERY
//! ├── HTTP server     axum (http.rs), graceful shutdown on the same token
//! └── state writer    writes the state directory after changes; flushes last
//!                     (its own token: it outlives the others)
//!
//! Shared ── one Mutex ─┬─ PoolState       state.rs: decisions, no I/O; transitions
//!                      │                  return effects (frames, closes, requests)
//!                      └─ links           SessionId → Arc<NodeLink>: where effects go
//! ```
//!
//! Stopping: the token is cancelled (shutdown future, [`MasterHandle::shutdown`]
//! or dropping the handle); the accept loop and the HTTP server stop taking
//! connections, sessions close their sockets without declaring their nodes
//! down (the master is leaving, not the nodes), the state writer writes the
//! last state, and the main task waits for every task (bounded by
//! [`STOP_DEADLINE`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_place::load_table::LoadTable;
use pool_proto::{Identity, NodeId, NodeKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::apps::Apps;
use crate::clock::{Now, now_ms};
use crate::config::MasterConfig;
use crate::error::{Error, Result};
use crate::membership::DownList;
use crate::metrics::Metrics;
use crate::modules::ModuleStore;
use crate::node_requests;
use crate::persist::StateDir;
use crate::shared::Shared;
use crate::state::{PoolSettings, PoolState};

/// How long the ordered stop may take before the remaining tasks are
/// abandoned: sessions only close sockets and the state file is small.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How often metrics upkeep and down-list pruning run.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A running master. Dropping it stops the master (as
/// [`shutdown`](Self::shutdown) does, without waiting for the end).
#[derive(Debug)]
pub struct MasterHandle {
    /// The node listener's address.
    addr: SocketAddr,
    /// The HTTP listener's address, if HTTP is on.
    http_addr: Option<SocketAddr>,
    /// The master's node id in handshakes.
    id: NodeId,
    /// Cancelling it stops the master.
    token: CancellationToken,
    /// The main task; it ends when the master has stopped.
    main: Option<JoinHandle<()>>,
    /// For [`abort`](Self::abort).
    tracker: TaskTracker,
    /// Cancelling it ends the state writer without a last write.
    writer_abort: CancellationToken,
}

impl MasterHandle {
    /// The address nodes connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP API's address, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The master's node id (its identity in handshakes).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Stops the master gracefully and waits until it has stopped: no new
    /// connections, sessions closed (their nodes are *not* declared down),
    /// the state directory written.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        if let Some(main) = self.main.take() {
            let _ = main.await;
        }
    }

    /// Waits until the master stops by itself (its shutdown future fired).
    pub async fn wait(mut self) {
        if let Some(main) = self.main.take() {
            let _ = main.await;
        }
    }

    /// Stops the master at once, as a crash would: every task is cancelled
    /// and nothing is awaited. What the state writer had not written yet is
    /// lost, exactly as if the process had died.
    pub fn abort(mut self) {
        self.tracker.close();
        self.writer_abort.cancel();
        self.token.cancel();
        if let Some(main) = self.main.take() {
            main.abort();
        }
    }
}

impl Drop for MasterHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Starts a master on bound sockets: nodes connect to `listener`, the HTTP
/// API (if any) is served on `http`; the master stops when `shutdown`
/// completes or the returned handle is shut down or dropped.
///
/// Reads (and locks) the state directory first: submitted apps come back,
/// running ones wait [`MasterConfig::app_grace`] for their node to rejoin.
/// Must be called inside a Tokio runtime.
///
/// ```no_run
/// # async fn run() -> Result<(), pool_master::Error> {
/// use pool_master::{MasterConfig, spawn_master};
/// use pool_proto::Cookie;
///
/// let config = MasterConfig::new(Cookie::new("secret", "example").unwrap());
/// let nodes = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let master = spawn_master(config, nodes, Some(http), std::future::pending::<()>()).await?;
/// println!("nodes join at {}", master.addr());
/// master.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn spawn_master(
    config: MasterConfig,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<MasterHandle> {
    config.validate()?;
    let addr = listener.local_addr()?;
    let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;

    // The state directory, read before anything listens; its modules/
    // once the directory is locked.
    let (dir, snapshot, modules) = match &config.state_dir {
        Some(path) => {
            let path = path.clone();
            let (dir, snap, modules) = tokio::task::spawn_blocking(move || {
                let (dir, snap) = StateDir::open(&path)?;
                let modules = ModuleStore::open(&path).map_err(|source| Error::StateDir {
                    path: path.join("modules"),
                    source,
                })?;
                Ok::<_, Error>((dir, snap, modules))
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
            (Some(dir), snap, modules)
        }
        None => (None, Default::default(), ModuleStore::in_memory()),
    };
    let now = Instant::now();
    let mut apps = Apps::restore(snapshot.apps, now + config.app_grace());
    apps.restore_restart_counts(snapshot.restarts);
    let mut boot_changed = false;
    for tree in &config.trees {
        let id = &tree.spec.supervisor.id;
        if apps.contains(id) {
            info!(app = %id, "tree given with --tree is already known; keeping the saved one");
        } else {
            apps.submit(tree.spec.clone(), tree.source.clone());
            boot_changed = true;
        }
    }
    let metrics = Arc::new(Metrics::new());
    let settings = PoolSettings {
        placement: config.placement,
        node_timeout: config.node_timeout,
        report_interval: config.report_interval,
        down_retention: config.down_retention,
    };
    let mut downs = DownList::from_records(snapshot.down_nodes);
    downs.prune(config.down_retention, now_ms());
    let mut pool = PoolState::new(
        settings,
        LoadTable::new(config.load_table),
        apps,
        downs,
        metrics.clone(),
        StdRng::from_os_rng(),
    );
    pool.dirty = boot_changed;

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let identity = Identity {
        node: NodeId::random(),
        name: config.name.clone(),
        kind: NodeKind::Master,
    };
    let shared = Arc::new(Shared::new(
        config,
        identity,
        pool,
        metrics,
        modules,
        token.clone(),
        tracker.clone(),
    ));
    if boot_changed {
        shared.persister.mark();
    }

    // The state writer runs on its own token so that it can write the last
    // state after everything else has stopped.
    let writer_stop = CancellationToken::new();
    let writer_abort = CancellationToken::new();
    let writer = {
        // A strong reference: the last write happens after every other task
        // has ended, and must still see the state.
        let persister = shared.persister.clone();
        let shared = shared.clone();
        let snapshot = move || shared.lock().snapshot();
        tokio::spawn(persister.run(dir, writer_stop.clone(), writer_abort.clone(), snapshot))
    };

    tracker.spawn(crate::server::accept_loop(shared.clone(), listener));
    tracker.spawn(watch_failures(shared.clone()));
    tracker.spawn(upkeep(shared.clone()));
    tracker.spawn(sample_activity(shared.clone()));
    tracker.spawn(app_timer(shared.clone()));
    tracker.spawn(push_loads(shared.clone()));
    if let Some(http) = http {
        tracker.spawn(crate::http::serve(shared.clone(), http));
    }
    info!(%addr, http = ?http_addr, id = %shared.identity.node,
        placement = %shared.config.placement, node_timeout = ?shared.config.node_timeout,
        "pool-master listening");

    let main = tokio::spawn({
        let token = token.clone();
        let tracker = tracker.clone();
        async move {
            tokio::select! {
                _ = shutdown => info!("shutdown requested"),
                _ = token.cancelled() => {}
            }
            // Ordered stop: everything on the root token, then the writer.
            token.cancel();
            tracker.close();
            if tokio::time::timeout(STOP_DEADLINE, tracker.wait())
                .await
                .is_err()
            {
                warn!(deadline = ?STOP_DEADLINE, "some tasks did not stop in time; abandoning them");
            }
            writer_stop.cancel();
            let _ = writer.await;
            info!("pool-master stopped");
        }
    });
    Ok(MasterHandle {
        addr,
        http_addr,
        id: shared.identity.node,
        token,
        main: Some(main),
        tracker,
        writer_abort,
    })
}

/// The failure watch: sleeps until the earliest report deadline (but at
/// most a quarter of the node timeout: the gap between its checks tells
/// whether the master itself ran), declares silent workers down, and goes
/// back to sleep. Reports only push deadlines later, so waking at a stale
/// deadline is harmless (nothing expires; the next deadline is computed
/// again); a node becoming live wakes it, since its deadline may be the
/// first.
async fn watch_failures(shared: Arc<Shared>) {
    loop {
        // Declares the silent down (their NodeDown is queued, their
        // connections closed), and asks when to look again.
        let (next, requests) = shared.transition(|s| {
            let now = Now::read();
            let effects = s.tick(now);
            (s.detector.next_check(now.at), effects)
        });
        node_requests::spawn(&shared, requests);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.token.cancelled() => break,
            _ = sleep => {}
            _ = shared.fd_wakeup.notified() => {}
        }
    }
}

/// The app timer: sleeps until the next app hold ends (after a restart,
/// the grace period for a root's node to rejoin) or the next pending app's
/// retry is due, then places what waits. A transition that sets a retry
/// wakes it (`Shared::apps_wakeup`), since that may come first.
async fn app_timer(shared: Arc<Shared>) {
    let mut next = {
        let now = Instant::now();
        let pool = shared.lock();
        earliest(pool.apps.next_hold(now), pool.apps.next_retry(now))
    };
    loop {
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.token.cancelled() => return,
            _ = sleep => {}
            _ = shared.apps_wakeup.notified() => {}
        }
        let now = Now::read();
        let (after, requests) = shared.transition(|s| {
            let effects = s.schedule(now);
            let after = earliest(s.apps.next_hold(now.at), s.apps.next_retry(now.at));
            (after, effects)
        });
        if !requests.is_empty() {
            info!(
                apps = requests.len(),
                "starting application roots: retries due, or the grace period for their node to rejoin is over"
            );
        }
        node_requests::spawn(&shared, requests);
        next = after;
    }
}

/// How long the load push gathers changes before it sends them: the rows
/// changed by the reports, placements and notices of that time go out in
/// one update per watching node.
const LOAD_PUSH_EVERY: Duration = Duration::from_millis(2);

/// The load push: when rows of the load table changed while nodes hold a
/// copy of it (`Shared::loads_wakeup`), waits [`LOAD_PUSH_EVERY`] for more,
/// then sends one numbered update to each watching node. Built under the
/// lock (so its number and rows match the table), encoded and queued
/// outside it; a watcher's copy was queued on its link before the first
/// update that follows it could be built, so it never overtakes it.
async fn push_loads(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.token.cancelled() => return,
            _ = shared.loads_wakeup.notified() => {}
        }
        tokio::select! {
            _ = shared.token.cancelled() => return,
            _ = tokio::time::sleep(LOAD_PUSH_EVERY) => {}
        }
        let out: Vec<_> = {
            let mut pool = shared.lock();
            let Some((update, to)) = ({
                let state = &mut *pool;
                state.loads.take_update(&state.table)
            }) else {
                continue;
            };
            let links: Vec<_> = to
                .into_iter()
                .filter_map(|(session, notices)| pool.link(session).map(|l| (l, notices)))
                .collect();
            links
                .into_iter()
                .map(|(l, n)| (l, n, update.clone()))
                .collect()
        };
        for (link, notices, mut update) in out {
            update.notices = notices;
            link.push(&pool_proto::Msg::LoadUpdate(update));
        }
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The dashboard's sampler: once a second, a sample of every live worker's
/// load for the charts (and the placement summary of the second before).
async fn sample_activity(shared: Arc<Shared>) {
    let step = Duration::from_millis(crate::activity::HISTORY_STEP_MS);
    let mut tick = tokio::time::interval(step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.token.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.lock().sample_activity(Now::read());
    }
}

/// Periodic upkeep: drains histogram samples, prunes old down ids.
async fn upkeep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.token.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.metrics.upkeep();
        shared.lock().prune_downs(now_ms());
    }
}
