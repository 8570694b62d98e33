//! The link to the master: connect, join, fence, report, reconnect; the
//! master's pushes and requests; and [`MasterHandle`], through which the
//! other parts talk to the master.
//!
//! ```text
//! MasterLink::run (task on the control runtime)       MasterHandle (one clone per part)
//!   drives a LinkMachine (machine.rs, pure):            request(): waits for the link as the
//!     Connect   dial, handshake, Join -> Welcome          machine's status says, sends, waits
//!     Fence     NodeEvent::Fence up to node.rs,           for the answer
//!               wait for it, then Ready                 push(): sends if connected, else drops
//!     Joined    report every interval until closed
//!     WaitUntil sleep (selects on the node token)
//!   the master connection (conn.rs: writer + reader tasks); the reader calls
//!   `on_frame`: responses, membership pushes, the master's requests, exit signals
//! ```
//!
//! - **Owns** the master connection and its pending requests (`Client`,
//!   shared with the handles), the link machine, the report sampler.
//! - **Writes** the membership (the Welcome's list, the master's numbered
//!   deltas and lists — asking for the list again after a gap — and the
//!   single NodeUp/NodeDown pushes of an older master); **calls** the
//!   process runtime (spawns and exit signals from the master) and
//!   `local` (`poolctl ps`, tree views); **sends** a [`NodeEvent`] up to
//!   the node task for what touches other parts (fencing, a node down,
//!   application roots). It never names `node.rs`, the peers, the names or
//!   the hosted applications.
//! - **Start-up**: `node.rs` spawns [`MasterLink::run`] last and waits for
//!   the first join's outcome. **Shutdown**: the run loop ends when the node
//!   token is cancelled; the status becomes `Stopped` (requests fail at
//!   once), and the connection, whose token is a child of the node's,
//!   closes with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pool_proto::handshake::HandshakeConfig;
use pool_proto::transport::Transport;
use pool_proto::{
    ErrorCode, Identity, Join, MemberChange, ModuleHash, Msg, NodeInfo, NodeKind, Pid, PlaceQuery,
    Placed, RemoteError, ReqId, Request, Response, RunningApp, SpawnRequest, Welcome,
};
use rand::Rng;
use supervisor::Runtime;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::config::{NodeConfig, RECONNECT_MAX, RECONNECT_MIN};
use crate::conn::{self, CloseReason, ConnTx, Traffic};
use crate::error::Error;
use crate::event::NodeEvent;
use crate::load::LoadSampler;
use crate::loads::{AfterUpdate, Loads};
use crate::members::{self, SharedMembers};
use crate::reach::DialFailures;
use crate::tasks::Tasks;

pub(crate) mod machine;

use machine::{Action, Failure, Lease, LeaseAction, LinkMachine, LinkStatus, RequestPolicy};

/// How long the master may take to answer a Join (or a Ready).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the placements made on the copy of the load table wait to be
/// told to the master, counted from the first: a client spawning one at a
/// time sends one notice per millisecond, not one per spawn (each of which
/// woke the control thread and the master). The master pushes load
/// updates at most every 2 ms; a notice this much later changes no copy's
/// view sooner than that.
const NOTICE_LINGER: Duration = Duration::from_millis(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The node's side of the master connection, shared by the link task and
/// every [`MasterHandle`].
#[derive(Debug)]
struct Client {
    /// Where the master is (for error messages).
    master: String,
    /// How long a request waits, for the link and then for its answer.
    request_timeout: Duration,
    /// The current connection and its generation, if any. Closing it (or
    /// the node token) ends its writer and reader tasks.
    tx: Mutex<Option<(u64, ConnTx)>>,
    /// Requests waiting for an answer; dropped when the connection closes,
    /// so their callers hear "connection lost" at once.
    pending: Mutex<HashMap<ReqId, oneshot::Sender<Response>>>,
    /// Where the link is (the machine's status, published by the link
    /// task); requests wait on it.
    status: watch::Sender<LinkStatus>,
    /// Identifies connections, so a late close of an old one is ignored.
    generation: AtomicU64,
    /// Ids of our requests to the master.
    next_req: AtomicU64,
    /// The lease on the master session (machine.rs): fed by the reports
    /// sent, the master's acks and the peers' answers; read by peers
    /// asking `MasterSeen`.
    lease: Mutex<Lease>,
    /// Wakes the lease task when the lease's deadline may have moved.
    lease_moved: Notify,
    /// This node's copy of the master's load table (loads.rs): installed
    /// and updated by the connection's reader, dropped with the
    /// connection; its notices are sent by the link task.
    loads: Loads,
}

impl Client {
    fn unreachable(&self, why: impl Into<String>) -> Error {
        Error::MasterUnreachable {
            addr: self.master.clone(),
            why: why.into(),
        }
    }

    fn current(&self) -> Option<ConnTx> {
        lock(&self.tx).as_ref().map(|(_, t)| t.clone())
    }

    /// Sends `body` on the current connection, if there is one, without
    /// waiting for its answer (the reader applies what comes back).
    fn send_unanswered(&self, body: Request) {
        if let Some(tx) = self.current() {
            let id = self.next_req.fetch_add(1, Ordering::Relaxed);
            tx.send(Msg::Request { id, body });
        }
    }

    /// Publishes the machine's status (a stopped link stays stopped).
    fn publish(&self, status: LinkStatus) {
        self.status.send_if_modified(|s| {
            let change = *s != status && *s != LinkStatus::Stopped;
            if change {
                *s = status;
            }
            change
        });
    }

    /// Connection `generation` closed: forget it, fail its pending
    /// requests, and (if it was up) make requests wait for the next one.
    /// While fencing the status stays `Fencing`: requests go on failing at
    /// once until the fence is over.
    fn lost(&self, generation: u64) {
        let was = {
            let mut cur = lock(&self.tx);
            match cur.as_ref() {
                Some((g, _)) if *g == generation => cur.take(),
                _ => None,
            }
        };
        if let Some((_, tx)) = was {
            tx.close();
            self.status.send_if_modified(|s| {
                let up = *s == LinkStatus::Up;
                if up {
                    *s = LinkStatus::Down;
                }
                up
            });
            // Requests in flight get "connection lost".
            lock(&self.pending).clear();
            // The copy of the load table was this session's.
            self.loads.clear();
        }
    }

    async fn request_on(
        &self,
        tx: &ConnTx,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let name = body.name();
        let (otx, orx) = oneshot::channel();
        lock(&self.pending).insert(id, otx);
        if !tx.send(Msg::Request { id, body }) {
            lock(&self.pending).remove(&id);
            return Err(self.unreachable("connection closed"));
        }
        match tokio::time::timeout(timeout, orx).await {
            Ok(Ok(Response::Error(e))) => Err(Error::Remote(e)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => {
                Err(self.unreachable(format!("connection lost before it answered {name}")))
            }
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(Error::Timeout {
                    peer: format!("the master ({name})"),
                    after: timeout,
                })
            }
        }
    }
}

/// How the parts talk to the master: requests that wait for their answer,
/// and pushes. Cheap to clone; holds no task (the link task owns the
/// connection).
#[derive(Debug, Clone)]
pub(crate) struct MasterHandle {
    client: Arc<Client>,
}

impl MasterHandle {
    /// A handle on a link to the master at `config.master`, not connected
    /// until a [`MasterLink`] made from it runs.
    pub(crate) fn new(config: &NodeConfig) -> Self {
        MasterHandle {
            client: Arc::new(Client {
                master: config.master.clone(),
                request_timeout: config.request_timeout,
                tx: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
                status: watch::channel(LinkStatus::Down).0,
                generation: AtomicU64::new(0),
                next_req: AtomicU64::new(1),
                lease: Mutex::new(Lease::default()),
                lease_moved: Notify::new(),
                loads: Loads::default(),
            }),
        }
    }

    /// The node stopped: requests fail at once from now on (the link task
    /// says so itself when it ends; an aborted node's may never get to).
    pub(crate) fn stopped(&self) {
        self.client.publish(LinkStatus::Stopped);
    }

    /// True while joined (and fenced, if it had to).
    pub(crate) fn is_connected(&self) -> bool {
        *self.client.status.borrow() == LinkStatus::Up
    }

    /// Sends a request to the master and waits for its answer. While the
    /// link is down it first waits for it (up to the request timeout), so
    /// a short master restart is invisible to callers; while the node
    /// fences, or once it stops, it fails at once (see
    /// [`RequestPolicy`]).
    pub(crate) async fn request(&self, body: Request) -> Result<Response, Error> {
        let c = &*self.client;
        let timeout = c.request_timeout;
        let mut status = c.status.subscribe();
        let settled = async {
            status
                .wait_for(|s| s.policy() != RequestPolicy::Wait)
                .await
                .map(|s| s.policy())
        };
        match tokio::time::timeout(timeout, settled).await {
            Ok(Ok(RequestPolicy::Send)) => {}
            Ok(Ok(RequestPolicy::FailFencing)) => {
                return Err(c.unreachable(
                    "this node is fencing: the master declared it down while it was cut off, and its stale processes are being stopped",
                ));
            }
            Ok(Ok(RequestPolicy::FailStopped)) => return Err(Error::ShuttingDown),
            _ => return Err(c.unreachable("not connected")),
        }
        let tx = c.current().ok_or_else(|| c.unreachable("not connected"))?;
        c.request_on(&tx, body, timeout).await
    }

    /// The bytes of the WebAssembly module `hash`, from the master's module
    /// store (`Request::FetchModule`). The bytes are checked against the
    /// hash here, so a caller never gets another module's bytes.
    pub(crate) async fn fetch_module(&self, hash: ModuleHash) -> Result<Vec<u8>, Error> {
        match self.request(Request::FetchModule { hash }).await? {
            Response::ModuleBytes { bytes } if ModuleHash::of(&bytes) == hash => Ok(bytes),
            Response::ModuleBytes { bytes } => Err(Error::Unexpected {
                peer: "the master".into(),
                got: format!(
                    "{} bytes for module {hash} that hash to {} instead",
                    bytes.len(),
                    ModuleHash::of(&bytes)
                ),
            }),
            other => Err(Error::unexpected(other)),
        }
    }

    /// What a peer asking `MasterSeen` is told: how many ms ago the master
    /// last acknowledged a report of ours; `None` without a master session.
    pub(crate) fn heard_ms_ago(&self) -> Option<u64> {
        if !self.is_connected() {
            return None;
        }
        lock(&self.client.lease).heard_ms_ago(now())
    }

    /// Places `query` on this node's copy of the master's load table, as
    /// the master would (`None`: ask the master). The first time, the copy
    /// is asked for (`WatchLoads`); spawns that come meanwhile wait for it.
    /// A master that refuses to send one is asked every placement, as
    /// before.
    pub(crate) async fn place_here(&self, query: &PlaceQuery) -> Option<Vec<Placed>> {
        let loads = &self.client.loads;
        if !self.is_connected() {
            return None;
        }
        if loads.wants_copy() {
            let _gate = loads.gate.lock().await;
            if loads.wants_copy() {
                // The reader installs the copy before it wakes us.
                match self.request(Request::WatchLoads).await {
                    Ok(_) => {}
                    Err(Error::Remote(e)) => {
                        tracing::debug!(cause = %e, "the master sends no copy of its load table: placing through it");
                        loads.refused();
                    }
                    Err(e) => {
                        tracing::debug!(cause = %e, "no copy of the load table");
                        return None;
                    }
                }
            }
        }
        loads.place(query)
    }

    /// Sends a push to the master if connected (dropped otherwise: reports
    /// and events are only meaningful now).
    pub(crate) fn push(&self, msg: Msg) {
        if let Some(tx) = self.client.current() {
            tx.send(msg);
        }
    }
}

/// What the node re-registers with every Join: the global names its
/// processes hold and the application roots it runs.
#[derive(Debug, Default)]
pub(crate) struct Registrations {
    /// Global names held by this node's processes.
    pub(crate) names: Vec<(String, Pid)>,
    /// Application roots running here.
    pub(crate) apps: Vec<RunningApp>,
}

/// Reads the [`Registrations`] at each join (the node task composes it
/// from the names and the hosted applications, which the link must not
/// name).
pub(crate) type RegistrationsFn = Box<dyn Fn() -> Registrations + Send + Sync>;

/// Asks every live worker peer `MasterSeen`, answers wanted within the
/// given time: how many were asked, and their `heard_ms_ago` as they
/// come (composed by the node over the peers, which the link must not
/// name).
pub(crate) type AskPeersFn =
    Box<dyn Fn(Duration) -> (usize, mpsc::UnboundedReceiver<Option<u64>>) + Send + Sync>;

/// What a [`MasterLink`] is made of (all given by `node.rs`).
pub(crate) struct LinkParts {
    /// This node as the membership describes it (sent in Join).
    pub(crate) info: NodeInfo,
    /// Who we are in the handshake.
    pub(crate) identity: Identity,
    /// The node's settings.
    pub(crate) config: Arc<NodeConfig>,
    /// The process runtime (spawns and exit signals from the master).
    pub(crate) rt: Runtime,
    /// The process runtime's handle, for the load sampler.
    pub(crate) proc_handle: Handle,
    /// The membership, written from the master's pushes.
    pub(crate) members: SharedMembers,
    /// Where node events go (the node task).
    pub(crate) events: mpsc::UnboundedSender<NodeEvent>,
    /// Where the connection's tasks run.
    pub(crate) tasks: Tasks,
    /// How to dial the master.
    pub(crate) transport: Arc<dyn Transport>,
    /// The peer traffic counters, reported with the load.
    pub(crate) traffic: Arc<Traffic>,
    /// The peers this node could not connect to, reported with the load.
    pub(crate) dial_failures: Arc<DialFailures>,
    /// Set when a graceful stop begins: spawns from the master are refused.
    pub(crate) stopping: Arc<AtomicBool>,
    /// Names and roots to re-register with each Join.
    pub(crate) registrations: RegistrationsFn,
    /// How to ask the peers whether they still hear the master.
    pub(crate) ask_peers: AskPeersFn,
}

/// The master link task's state (see the module docs).
pub(crate) struct MasterLink {
    /// This node as the membership describes it (sent in Join).
    info: NodeInfo,
    /// Who we are in the handshake.
    identity: Identity,
    /// The node's settings.
    config: Arc<NodeConfig>,
    /// The connection, shared with every [`MasterHandle`].
    client: Arc<Client>,
    /// The process runtime: the master's spawns and exit signals go to it.
    rt: Runtime,
    /// The process runtime's handle, for the load sampler.
    proc_handle: Handle,
    /// The membership: written from Welcome, NodeUp and NodeDown.
    members: SharedMembers,
    /// Up to the node task: fencing, nodes down, application roots. When
    /// the node task is gone, sends fail and the link stops fencing.
    events: mpsc::UnboundedSender<NodeEvent>,
    /// Where the connection's tasks and request handlers run; its token
    /// ends the run loop.
    tasks: Tasks,
    /// How to dial the master.
    transport: Arc<dyn Transport>,
    /// Peer traffic, reported with the load.
    traffic: Arc<Traffic>,
    /// Peers this node could not connect to (written by the peer layer),
    /// reported with the load. No task.
    dial_failures: Arc<DialFailures>,
    /// Set when a graceful stop begins: spawns from the master are refused.
    stopping: Arc<AtomicBool>,
    /// Names and roots to re-register with each Join.
    registrations: RegistrationsFn,
    /// How to ask the peers whether they still hear the master (the
    /// lease task, when the lease runs out).
    ask_peers: AskPeersFn,
    /// The report interval: `--report-interval`, else what the master's
    /// Welcome asked for.
    report_interval_ms: AtomicU64,
    /// The master's node timeout, from its Welcome: the lease is half of
    /// it.
    node_timeout_ms: AtomicU64,
}

impl std::fmt::Debug for MasterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterLink")
            .field("master", &self.config.master)
            .field("status", &*self.client.status.borrow())
            .finish_non_exhaustive()
    }
}

/// Is this join failure permanent (retrying cannot help)?
fn failure_of(e: &Error) -> Failure {
    let permanent = match e {
        Error::Remote(r) => matches!(r.code, ErrorCode::DuplicateName | ErrorCode::Refused),
        Error::Proto(p) => matches!(
            p,
            pool_proto::Error::BadCookie { .. }
                | pool_proto::Error::VersionMismatch { .. }
                | pool_proto::Error::PeerSpeaksTls
                | pool_proto::Error::PeerSpeaksHttp { .. }
                | pool_proto::Error::Tls {
                    permanent: true,
                    ..
                }
        ),
        _ => false,
    };
    if permanent {
        Failure::Permanent
    } else {
        Failure::Transient
    }
}

/// Now, on the clock tokio's timers use (paused in tests).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn jitter() -> f64 {
    rand::rng().random_range(machine::JITTER)
}

/// The connection a join attempt opened.
struct Joining {
    generation: u64,
    tx: ConnTx,
    welcome: Welcome,
    /// When the request the master last answered (Join, then Ready) was
    /// sent: the master heard this node then, and the lease starts there.
    heard: Instant,
}

impl MasterLink {
    /// A link made of `parts`, talking through `handle`'s connection.
    pub(crate) fn new(parts: LinkParts, handle: &MasterHandle) -> Self {
        let LinkParts {
            info,
            identity,
            config,
            rt,
            proc_handle,
            members,
            events,
            tasks,
            transport,
            traffic,
            dial_failures,
            stopping,
            registrations,
            ask_peers,
        } = parts;
        let interval = config
            .report_interval
            .unwrap_or(crate::config::DEFAULT_REPORT_INTERVAL);
        MasterLink {
            info,
            identity,
            client: handle.client.clone(),
            rt,
            proc_handle,
            members,
            events,
            tasks,
            transport,
            traffic,
            dial_failures,
            stopping,
            registrations,
            ask_peers,
            report_interval_ms: AtomicU64::new(interval.as_millis() as u64),
            node_timeout_ms: AtomicU64::new(3000),
            config,
        }
    }

    /// The link task: joins, then keeps the link up until the node stops.
    /// `first` gets the outcome of the first join.
    pub(crate) async fn run(self: Arc<Self>, first: oneshot::Sender<Result<(), Error>>) {
        let token = self.tasks.token().clone();
        let mut first = Some(first);
        let mut machine = LinkMachine::new(self.config.kind, RECONNECT_MIN, RECONNECT_MAX);
        let mut sampler = LoadSampler::new(self.proc_handle.clone());
        let mut joined: Option<Joining> = None;
        let mut action = machine.start();
        if self.config.kind == NodeKind::Worker {
            self.tasks.spawn(self.clone().keep_lease());
        }
        loop {
            self.client.publish(machine.status());
            action = match action {
                Action::Connect { rejoin } => {
                    let attempt = tokio::select! {
                        r = self.connect(rejoin) => r,
                        _ = token.cancelled() => break,
                    };
                    match attempt {
                        Ok(j) => {
                            self.apply_welcome(&j.welcome, rejoin);
                            let fenced = j.welcome.fence.is_some();
                            joined = Some(j);
                            machine.on_welcome(fenced)
                        }
                        Err(e) => match self.failed(&mut machine, e, &mut first) {
                            Some(next) => next,
                            None => break,
                        },
                    }
                }
                Action::Fence => {
                    let Some(j) = joined.as_mut() else {
                        break;
                    };
                    let fence = j.welcome.fence.take().unwrap_or_default();
                    let fenced = tokio::select! {
                        r = self.fence_then_ready(&j.tx, fence, &mut machine) => r,
                        _ = token.cancelled() => break,
                    };
                    match fenced {
                        Ok(ready_sent) => {
                            j.heard = ready_sent;
                            machine.on_ready()
                        }
                        Err(e) => {
                            j.tx.close();
                            match self.failed(&mut machine, e, &mut first) {
                                Some(next) => next,
                                None => break,
                            }
                        }
                    }
                }
                Action::Joined { first: is_first } => {
                    let Some(j) = joined.take() else {
                        break;
                    };
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    if is_first {
                        tracing::info!(master = %self.config.master, node = %self.info.id, name = %self.config.name, "joined the pool");
                    } else {
                        tracing::info!(master = %self.config.master, "rejoined the pool");
                    }
                    self.start_lease(j.heard);
                    self.stay_connected(&j.tx, &mut sampler).await;
                    self.client.lost(j.generation);
                    if token.is_cancelled() {
                        break;
                    }
                    tracing::warn!(master = %self.config.master, "lost the master; processes keep running, reconnecting");
                    machine.on_lost(now(), jitter())
                }
                Action::WaitUntil(_) => {
                    // Sleep until the machine has something to do, then
                    // let it decide.
                    let Some(until) = machine.next_deadline() else {
                        break;
                    };
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = token.cancelled() => break,
                    }
                    machine.tick(now()).unwrap_or(Action::WaitUntil(until))
                }
                Action::GiveUp => break,
            };
        }
        self.client.publish(LinkStatus::Stopped);
        if let Some(j) = joined {
            self.client.lost(j.generation);
        }
    }

    /// A join attempt failed with `e`: the machine says whether to retry
    /// (`Some`) or give up (`None`, after handing `e` to the starter).
    fn failed(
        &self,
        machine: &mut LinkMachine,
        e: Error,
        first: &mut Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Option<Action> {
        match machine.on_failed(failure_of(&e), now(), jitter()) {
            Action::GiveUp => {
                if let Some(f) = first.take() {
                    let _ = f.send(Err(e));
                }
                None
            }
            next => {
                if let Action::WaitUntil(until) = next {
                    let retry_in = until.saturating_duration_since(now());
                    tracing::warn!(master = %self.config.master, cause = %e, ?retry_in, "could not join the pool");
                }
                Some(next)
            }
        }
    }

    /// Dials the master, runs the handshakes, starts the connection's
    /// tasks and joins.
    async fn connect(self: &Arc<Self>, rejoin: bool) -> Result<Joining, Error> {
        let c = &*self.client;
        let io = tokio::time::timeout(
            self.config.handshake_timeout,
            self.transport.connect(&self.config.master),
        )
        .await
        .map_err(|_| c.unreachable("connect timed out"))?
        .map_err(|e| c.unreachable(e.to_string()))?;
        let hcfg = HandshakeConfig {
            timeout: self.config.handshake_timeout,
            max_frame_len: self.config.max_frame_len,
        };
        // TLS first when configured (--tls-*), the cookie handshake inside.
        let (conn, peer) = pool_proto::tls::connect_handshake(
            self.config.tls.as_ref(),
            io,
            &self.config.master,
            &self.identity,
            &self.config.cookie,
            &hcfg,
        )
        .await?;
        if peer.kind != NodeKind::Master {
            return Err(c.unreachable(format!(
                "{} is a {:?} node, not the master",
                self.config.master, peer.kind
            )));
        }
        let generation = c.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, crx) = ConnTx::pending(
            self.config.peer_queue,
            self.config.max_frame_len,
            self.tasks.token(),
        );
        let (l1, l2) = (self.clone(), self.clone());
        conn::run(
            &self.tasks,
            conn,
            crx,
            None,
            self.config.max_frame_len,
            move |msg| l1.on_frame(msg),
            move |why: CloseReason| {
                if !matches!(why, CloseReason::Local) {
                    tracing::debug!(reason = %why, "master connection closed");
                }
                l2.client.lost(generation);
            },
        );
        *lock(&c.tx) = Some((generation, tx.clone()));

        let Registrations { names, apps } = (self.registrations)();
        let heard = now();
        let join = Join {
            info: self.info.clone(),
            functions: self.rt.functions().names(),
            names,
            apps,
            rejoin,
            // Only a worker hosts others' processes, wasm ones included.
            wasm: self.config.wasm_backend && self.config.kind == NodeKind::Worker,
        };
        match c.request_on(&tx, Request::Join(join), JOIN_TIMEOUT).await {
            Ok(Response::Welcome(welcome)) => Ok(Joining {
                generation,
                tx,
                welcome,
                heard,
            }),
            Ok(other) => {
                tx.close();
                Err(Error::Unexpected {
                    peer: "the master".into(),
                    got: format!("{other:?}"),
                })
            }
            Err(e) => {
                tx.close();
                Err(e)
            }
        }
    }

    /// Has the node task fence (docs/protocol.md), then tells the master
    /// it is done. The fencing flag is cleared *before* `Ready` leaves:
    /// the master sends application starts as soon as it handles `Ready`,
    /// and their placements must wait for the link, not fail.
    async fn fence_then_ready(
        &self,
        tx: &ConnTx,
        fence: pool_proto::Fence,
        machine: &mut LinkMachine,
    ) -> Result<Instant, Error> {
        let (done, fenced) = oneshot::channel();
        self.events
            .send(NodeEvent::Fence { fence, done })
            .map_err(|_| Error::ShuttingDown)?;
        fenced.await.map_err(|_| Error::ShuttingDown)?;
        machine.on_fenced();
        self.client.publish(machine.status());
        let sent = now();
        self.client
            .request_on(tx, Request::Ready, JOIN_TIMEOUT)
            .await
            .map(|_| sent)
    }

    fn apply_welcome(&self, w: &Welcome, rejoin: bool) {
        if self.config.report_interval.is_none() {
            self.report_interval_ms
                .store(w.report_interval_ms.max(50), Ordering::Relaxed);
        }
        self.node_timeout_ms
            .store(w.node_timeout_ms, Ordering::Relaxed);
        // No lease until the session is up (a fence stops what it must).
        lock(&self.client.lease).pause();
        self.client.lease_moved.notify_one();
        // The members it lists were applied by the connection's reader as
        // the Welcome went by (`on_frame`), before the changes behind it.
        if !rejoin {
            tracing::debug!(members = w.members.len(), "membership received");
        }
    }

    /// Acts on what membership news changed: the nodes gone get
    /// `noconnection` (through the node task), pending children may find a
    /// node that came up.
    fn members_changed(&self, changed: members::Changed) {
        let members::Changed {
            up,
            superseded,
            down,
        } = changed;
        self.superseded(superseded);
        for (node, info, reason) in down {
            let why = reason.map_or_else(
                || "no longer in the master's list".to_owned(),
                |r| r.to_string(),
            );
            match &info {
                // Clients such as poolctl come and go all the time.
                Some(i) if i.kind == NodeKind::Hidden => {
                    tracing::debug!(%node, name = %i.name, reason = %why, "client left");
                }
                _ => {
                    tracing::info!(%node, name = info.as_ref().map_or("?", |i| i.name.as_str()), reason = %why, "node down")
                }
            }
            // The node task closes the connections and fires noconnection
            // on links and monitors towards it (even if we never had a
            // connection with it).
            let _ = self.events.send(NodeEvent::NodeDown(node));
        }
        if !up.is_empty() {
            tracing::debug!(nodes = ?up, "nodes up");
            self.rt.nodes_changed(); // pending children may find a node now
        }
    }

    /// A gap in the membership deltas: asks the master for the whole list
    /// again (it comes as `Members`, ahead of the answer, which is not
    /// waited for: deltas are dropped until the list arrives).
    fn ask_members(&self, expected: u64, got: u64) {
        tracing::warn!(
            expected,
            got,
            "membership changes are missing from the master's deltas: asking for the whole list again"
        );
        self.client.send_unanswered(Request::SyncMembers);
    }

    /// A gap in the load table updates: asks the master for the table
    /// again (the reader installs it; the answer is not waited for, and
    /// the copy is not used until it arrives).
    fn ask_loads(&self, expected: u64, got: u64) {
        tracing::warn!(
            expected,
            got,
            "load table updates are missing: asking the master for the whole table again"
        );
        self.client.send_unanswered(Request::WatchLoads);
    }

    /// Older incarnations of nodes that are live again under a new id are
    /// gone: the node task fires `noconnection` towards them, as for a
    /// NodeDown (a restarted master never declares them down itself).
    fn superseded(&self, old: Vec<pool_proto::NodeId>) {
        for node in old {
            tracing::info!(%node, "node down: a newer incarnation of its name joined");
            let _ = self.events.send(NodeEvent::NodeDown(node));
        }
    }

    /// Reports the load every interval until the connection closes or the
    /// node stops (a hidden node does not report), and tells the master of
    /// the placements made on the copy of its load table (loads.rs), all
    /// of those made since the last notice in one, [`NOTICE_LINGER`] after
    /// the first of them.
    async fn stay_connected(&self, tx: &ConnTx, sampler: &mut LoadSampler) {
        let token = self.tasks.token();
        let reports = self.config.kind == NodeKind::Worker;
        let every = || Duration::from_millis(self.report_interval_ms.load(Ordering::Relaxed));
        // A deadline, not a sleep per turn: notices must not put reports off.
        let mut next_report = tokio::time::Instant::now() + every();
        // When the placements made since the last notice are told: at most
        // [`NOTICE_LINGER`] after the first of them.
        let mut notice_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = token.cancelled() => {
                    // A client that stops right after its spawns (poolctl)
                    // still tells the master of them, if the connection
                    // takes it.
                    if let Some(notice) = self.client.loads.take_notice() {
                        tx.send(Msg::PlacedNotice(notice));
                    }
                    return;
                }
                _ = self.client.loads.notices_due.notified(), if notice_at.is_none() => {
                    notice_at = Some(tokio::time::Instant::now() + NOTICE_LINGER);
                }
                _ = tokio::time::sleep_until(notice_at.unwrap_or(next_report)), if notice_at.is_some() => {
                    notice_at = None;
                    if let Some(notice) = self.client.loads.take_notice() {
                        tx.send(Msg::PlacedNotice(notice));
                    }
                }
                _ = tokio::time::sleep_until(next_report), if reports => {
                    next_report = tokio::time::Instant::now() + every();
                    let mut report = sampler.sample(&self.rt, self.config.capacity);
                    let t = &self.traffic;
                    report.frames_out = t.frames_out.load(Ordering::Relaxed);
                    report.bytes_out = t.bytes_out.load(Ordering::Relaxed);
                    report.frames_in = t.frames_in.load(Ordering::Relaxed);
                    report.bytes_in = t.bytes_in.load(Ordering::Relaxed);
                    report.unreachable = self.unreachable();
                    lock(&self.client.lease).on_sent(report.seq, now());
                    tx.send(Msg::LoadReport(report));
                }
            }
        }
    }

    /// The members this node could not connect to, for the report (a node
    /// that left since is not reported).
    fn unreachable(&self) -> Vec<pool_proto::Unreachable> {
        let mut list = self.dial_failures.list();
        if !list.is_empty() {
            let members = members::read(&self.members);
            list.retain(|u| members.get(u.node).is_some());
        }
        list
    }

    /// A session began: the lease runs from `heard` (when the master was
    /// last sent a request it answered).
    fn start_lease(&self, heard: Instant) {
        if self.config.kind != NodeKind::Worker {
            return;
        }
        let node_timeout = Duration::from_millis(self.node_timeout_ms.load(Ordering::Relaxed));
        let interval = Duration::from_millis(self.report_interval_ms.load(Ordering::Relaxed));
        lock(&self.client.lease).start(heard, node_timeout, interval);
        self.client.lease_moved.notify_one();
    }

    /// The lease task (workers only): sleeps until the lease runs out,
    /// then asks the peers and acts on the machine's decision; ends with
    /// the node token.
    async fn keep_lease(self: Arc<Self>) {
        let token = self.tasks.token().clone();
        loop {
            let deadline = lock(&self.client.lease).next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = token.cancelled() => return,
                _ = self.client.lease_moved.notified() => continue,
                _ = sleep => {}
            }
            let action = lock(&self.client.lease).tick(now());
            let decided = match action {
                Some(LeaseAction::Ask { until }) => {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        d = self.ask_peers(until) => d,
                    }
                }
                other => other,
            };
            if let Some(decided) = decided {
                self.on_lease_decided(decided);
            }
        }
    }

    /// Asks every live worker peer `MasterSeen` and feeds their answers to
    /// the lease until it decides or `until` passes.
    async fn ask_peers(&self, until: Instant) -> Option<LeaseAction> {
        let lease = &self.client.lease;
        let (asked, mut answers) = (self.ask_peers)(until.saturating_duration_since(now()));
        if let Some(d) = lock(lease).asked(asked, now()) {
            return Some(d);
        }
        let mut open = true;
        loop {
            tokio::select! {
                answer = answers.recv(), if open => match answer {
                    Some(heard) => {
                        if let Some(d) = lock(lease).on_answer(heard, now()) {
                            return Some(d);
                        }
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(until.into()) => return lock(lease).tick(now()),
            }
        }
    }

    /// What the lease decided (logged at warn, once per decision).
    fn on_lease_decided(&self, decided: LeaseAction) {
        match decided {
            LeaseAction::StopWork => {
                tracing::warn!(
                    master = %self.config.master,
                    "cut off from the master (a peer still hears it, or no peer answers): stopping the supervised work here before the master restarts it elsewhere, then rejoining"
                );
                let _ = self.events.send(NodeEvent::CutOff);
                // Drop the session: the link reconnects, and the master
                // fences this node or reconciles its (now empty) roots.
                if let Some(tx) = self.client.current() {
                    tx.close();
                }
            }
            LeaseAction::KeepRunning => tracing::warn!(
                master = %self.config.master,
                "lost the master, and so did every peer that answered: it is down or paused for everyone; everything keeps running, reconnecting"
            ),
            LeaseAction::Ask { .. } => {}
        }
    }

    /// A frame from the master (on the connection's reader task: must not
    /// block).
    fn on_frame(self: &Arc<Self>, msg: Msg) {
        match msg {
            // The copy of the load table is installed here, in the order of
            // the frames (before the updates behind it); whoever asked is
            // told it is there.
            Msg::Response {
                id,
                body: Response::Loads(table),
            } => {
                self.client.loads.install(*table);
                if let Some(tx) = lock(&self.client.pending).remove(&id) {
                    let _ = tx.send(Response::Ok);
                }
            }
            Msg::Response { id, body } => {
                // The members a Welcome lists are applied here, in the
                // order of the frames: before the deltas behind it.
                if let Response::Welcome(w) = &body {
                    let changed = members::write(&self.members).welcome(
                        &w.members,
                        w.members_next,
                        self.info.id,
                    );
                    self.members_changed(changed);
                }
                if let Some(tx) = lock(&self.client.pending).remove(&id) {
                    let _ = tx.send(body);
                }
            }
            Msg::ReportAck { seq } => {
                lock(&self.client.lease).on_ack(seq, now());
                self.client.lease_moved.notify_one();
            }
            // Membership: the numbered deltas and lists of this master, and
            // the single pushes of an older one.
            Msg::MembersDelta(d) => {
                let verdict = members::write(&self.members).delta(d.first, d.changes, self.info.id);
                match verdict {
                    members::Delta::Applied(changed) => self.members_changed(changed),
                    members::Delta::Skipped => {}
                    members::Delta::Gap { expected, got } => self.ask_members(expected, got),
                }
            }
            Msg::LoadUpdate(update) => {
                if let AfterUpdate::Resync { expected, got } = self.client.loads.update(update) {
                    self.ask_loads(expected, got);
                }
            }
            Msg::Members(list) => {
                let changed =
                    members::write(&self.members).list(&list.members, list.next, self.info.id);
                self.members_changed(changed);
            }
            Msg::NodeUp(info) => self.member_change(MemberChange::Up(info)),
            Msg::NodeDown { node, reason } => {
                self.member_change(MemberChange::Down { node, reason });
            }
            Msg::Request {
                id,
                body: Request::Spawn(req),
            } => self.serve_spawn(id, req),
            Msg::Request { id, body } => self.serve_request(id, body),
            // An exit signal from the master's system pid (`POST /api/kill`
            // on its HTTP API), applied as one from a peer would be.
            exit @ Msg::Exit { .. } => {
                if let Err(other) = self.rt.handle_remote(exit) {
                    tracing::debug!(frame = ?other, "ignored an exit signal the runtime refused");
                }
            }
            other => tracing::debug!(frame = ?other, "ignored a frame the master may not send"),
        }
    }

    /// One change pushed on its own (`NodeUp`, `NodeDown`).
    fn member_change(&self, change: MemberChange) {
        let mut changed = members::Changed::default();
        members::write(&self.members).apply(change, self.info.id, &mut changed);
        self.members_changed(changed);
    }

    fn respond(&self, id: ReqId, body: Response) {
        if let Some(tx) = self.client.current() {
            tx.send(Msg::Response { id, body });
        }
    }

    /// `Spawn` from the master (`POST /api/spawn` on its HTTP API, after
    /// it placed the process here): served as a peer's spawn is, inline, so
    /// the answer is queued before the new process may run.
    fn serve_spawn(&self, id: ReqId, req: SpawnRequest) {
        let refuse = |code, message: &str| Response::Error(RemoteError::new(code, message));
        let body = if self.config.kind != NodeKind::Worker {
            refuse(
                ErrorCode::Refused,
                "a hidden node does not host processes for others",
            )
        } else if self.stopping.load(Ordering::Acquire) {
            refuse(
                ErrorCode::Overloaded,
                "the node is stopping: spawn elsewhere",
            )
        } else {
            match self.rt.handle_spawn(req) {
                Ok((pid, gate)) => {
                    self.respond(id, Response::Spawned(pid));
                    // Only now may the process run (and exit).
                    drop(gate);
                    return;
                }
                Err(e) => Response::Error(e),
            }
        };
        self.respond(id, body);
    }

    /// Any other request from the master: answered here, or (application
    /// roots) by the node task, which answers request `id` itself.
    fn serve_request(self: &Arc<Self>, id: ReqId, body: Request) {
        let event = match body {
            Request::LocalProcesses => {
                let ps = crate::local::processes(&self.rt, &self.config.name);
                return self.respond(id, Response::Processes(ps));
            }
            Request::Ping => return self.respond(id, Response::Pong),
            Request::Inspect { pid } => {
                let link = self.clone();
                self.tasks.spawn(async move {
                    let body = crate::local::inspect(&link.rt, pid).await;
                    link.respond(id, body);
                });
                return;
            }
            Request::StartApp { app, .. } if !lock(&self.client.lease).is_current(now()) => {
                // Read late (this node did not run, or its lease ran out):
                // the master may have given it up and placed the app
                // elsewhere. It retries the start if it still wants it here.
                tracing::warn!(%app, "refused an application start that arrived after this node's lease with the master ran out");
                let e = RemoteError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "application {app} was not started: this node's lease with the master ran out before the request was read; place it again"
                    ),
                );
                return self.respond(id, Response::Error(e));
            }
            Request::StartApp {
                app,
                generation,
                spec,
            } => NodeEvent::StartApp {
                id,
                app,
                generation,
                spec: Box::new(spec),
            },
            Request::StopApp { app } => NodeEvent::StopApp { id, app },
            Request::WatchName { name, pid } => NodeEvent::WatchName { id, name, pid },
            other => {
                let e = RemoteError::new(
                    ErrorCode::Refused,
                    format!("a node does not serve {} from the master", other.name()),
                );
                return self.respond(id, Response::Error(e));
            }
        };
        if self.events.send(event).is_err() {
            let e = RemoteError::new(ErrorCode::Overloaded, "the node is stopping");
            self.respond(id, Response::Error(e));
        }
    }
}
