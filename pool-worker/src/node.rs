//! A node: starts the runtimes, the listener and the master link, and stops
//! them in order.
//!
//! ```text
//! NodeHandle
//!  ├─ process runtime (N threads)      every process of this node
//!  └─ control runtime (1 thread)       never runs user code:
//!       ├─ master link                   join, reports, membership, requests
//!       ├─ accept loop                   inbound peer connections
//!       ├─ peer connections              writer + reader per connection
//!       └─ event forwarder               supervisor events -> master
//! ```
//!
//! Processes that compute without yielding hold their threads, not the
//! control thread: a node whose processes saturate every core still
//! reports on time, and is seen as busy, never as down (DESIGN.md "A busy
//! node is not a dead node").
//!
//! Stopping (`shutdown`): tell the master we leave (no more placements
//! here), stop application roots in order, stop the children this node
//! hosts for supervisors elsewhere with `shutdown` (so those supervisors
//! restart them elsewhere per their restart type), flush peer queues, then
//! kill what is left and close everything.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pool_proto::{Identity, NodeId, NodeInfo, NodeKind, Pid, ReqId, Request};
use supervisor::{Functions, Runtime};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::apps::{HostedApp, NODE_STOP_REASON};
use crate::config::NodeConfig;
use crate::error::Error;
use crate::master_link::MasterClient;
use crate::members::Members;
use crate::peer::Peers;
use crate::pool::Pool;
use crate::route::{PoolPlacer, Router};

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Source of connection generations (see `peer`).
    pub(crate) generations: AtomicU64,
}

/// Everything the node's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// This incarnation.
    pub(crate) id: NodeId,
    pub(crate) config: NodeConfig,
    /// Who we are in handshakes.
    pub(crate) identity: Identity,
    /// The address peers connect to.
    pub(crate) addr: String,
    /// The process runtime.
    pub(crate) rt: Runtime,
    /// Handle of the process runtime (for its metrics).
    pub(crate) proc_handle: Handle,
    /// Handle of the control runtime (all I/O tasks run there).
    pub(crate) ctl: Handle,
    pub(crate) members: RwLock<Members>,
    pub(crate) peers: Peers,
    pub(crate) master: MasterClient,
    /// Global names held by this node's processes.
    pub(crate) globals: Mutex<HashMap<String, Pid>>,
    /// Application roots running here.
    pub(crate) apps: Mutex<HashMap<String, HostedApp>>,
    /// Cancelled when the node stops: every long-running task selects on it.
    pub(crate) token: CancellationToken,
    /// Set when a graceful stop begins: spawn requests are refused.
    pub(crate) stopping: AtomicBool,
    next_req: AtomicU64,
    pub(crate) stats: Stats,
    /// Frames and bytes exchanged with other nodes (for load reports).
    pub(crate) traffic: Arc<crate::conn::Traffic>,
}

impl Shared {
    pub(crate) fn next_req(&self) -> ReqId {
        self.next_req.fetch_add(1, Ordering::Relaxed)
    }

    /// This node as the membership describes it.
    pub(crate) fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id,
            name: self.config.name.clone(),
            addr: self.addr.clone(),
            kind: self.config.kind,
            capacity: self.config.capacity,
            labels: self.config.labels.clone(),
        }
    }
}

/// Builds and starts a node.
///
/// ```no_run
/// # async fn f() -> Result<(), pool_worker::Error> {
/// use pool_worker::{Node, NodeConfig};
/// let cookie = pool_proto::Cookie::new("secret", "example")?;
/// let config = NodeConfig::worker("w1", "127.0.0.1:7400", cookie);
/// let mut functions = supervisor::Functions::new();
/// functions.register("hello", |_ctx, name: String| async move { Ok::<_, String>(format!("hello {name}")) });
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let node = Node::builder(config).functions(functions).listener(listener).start().await?;
/// println!("joined as {} at {}", node.pool().node_name(), node.addr());
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Node;

impl Node {
    /// A builder for a node with `config`.
    pub fn builder(config: NodeConfig) -> NodeBuilder {
        NodeBuilder {
            config,
            functions: Functions::new(),
            builtins: true,
            listener: None,
        }
    }
}

/// See [`Node`].
#[derive(Debug)]
pub struct NodeBuilder {
    config: NodeConfig,
    functions: Functions,
    builtins: bool,
    listener: Option<std::net::TcpListener>,
}

impl NodeBuilder {
    /// Functions this node can spawn (besides the built-ins).
    pub fn functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// Leaves out the `builtin.*` functions.
    pub fn without_builtins(mut self) -> Self {
        self.builtins = false;
        self
    }

    /// The bound listener for peers (workers need one; bind port 0 in
    /// tests).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Starts the node and joins the pool. A worker keeps retrying while
    /// the master is unreachable; a refusal (duplicate name, wrong cookie)
    /// is returned at once. A hidden node gives up on the first failure.
    pub async fn start(self) -> Result<NodeHandle, Error> {
        let NodeBuilder {
            config,
            mut functions,
            builtins,
            listener,
        } = self;
        config.validate()?;
        if builtins {
            crate::builtins::register(&mut functions);
        }
        // Every node of a pool can host a nested supervisor placed on it.
        supervisor::register_supervisor_function(&mut functions);
        let proc_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.process_threads)
            .thread_name(format!("proc-{}", config.name))
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                what: "starting the process runtime".into(),
                source: e,
            })?;
        let ctl_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("ctl-{}", config.name))
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                what: "starting the control runtime".into(),
                source: e,
            })?;

        let id = NodeId::random();
        let (listener, addr) = match (config.kind, listener) {
            (NodeKind::Worker, Some(l)) => {
                l.set_nonblocking(true).map_err(|e| Error::Io {
                    what: "configuring the listener".into(),
                    source: e,
                })?;
                let local = l.local_addr().map_err(|e| Error::Io {
                    what: "reading the listener address".into(),
                    source: e,
                })?;
                let addr = advertised(&config, local)?;
                (Some(l), addr)
            }
            (NodeKind::Worker, None) => {
                return Err(Error::Config(
                    "a worker needs a listener for its peers: pass one with NodeBuilder::listener"
                        .into(),
                ));
            }
            _ => (None, String::new()),
        };

        let rt = Runtime::builder(id)
            .handle(proc_rt.handle().clone())
            .functions(functions)
            .max_mailbox(config.max_mailbox)
            .build();
        let shared = Arc::new(Shared {
            id,
            identity: Identity {
                node: id,
                name: config.name.clone(),
                kind: config.kind,
            },
            addr: addr.clone(),
            rt: rt.clone(),
            proc_handle: proc_rt.handle().clone(),
            ctl: ctl_rt.handle().clone(),
            members: RwLock::new(Members::default()),
            peers: Peers::default(),
            master: MasterClient::new(
                config
                    .report_interval
                    .unwrap_or(crate::config::DEFAULT_REPORT_INTERVAL),
            ),
            globals: Mutex::new(HashMap::new()),
            apps: Mutex::new(HashMap::new()),
            token: CancellationToken::new(),
            stopping: AtomicBool::new(false),
            next_req: AtomicU64::new(1),
            stats: Stats::default(),
            traffic: Arc::default(),
            config,
        });
        rt.set_router(Arc::new(Router {
            shared: Arc::downgrade(&shared),
        }))?;
        rt.set_placer(Arc::new(PoolPlacer {
            shared: Arc::downgrade(&shared),
        }))?;

        if let Some(l) = listener {
            let s = shared.clone();
            ctl_rt.spawn(async move {
                match TcpListener::from_std(l) {
                    Ok(l) => s.accept_loop(l).await,
                    Err(e) => tracing::error!(cause = %e, "cannot use the peer listener"),
                }
            });
        }
        ctl_rt.spawn(shared.clone().forward_events());
        let (first_tx, first_rx) = oneshot::channel();
        ctl_rt.spawn(shared.clone().run_master_link(first_tx));

        let handle = NodeHandle {
            shared,
            proc_rt: Some(proc_rt),
            ctl_rt: Some(ctl_rt),
        };
        match first_rx.await {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => {
                handle.abort();
                Err(e)
            }
            Err(_) => {
                handle.abort();
                Err(Error::ShuttingDown)
            }
        }
    }
}

/// The address peers should use: `--advertise`, else the bound address
/// (which must then be a specific IP, not 0.0.0.0).
fn advertised(config: &NodeConfig, local: SocketAddr) -> Result<String, Error> {
    if let Some(a) = &config.advertise {
        return Ok(a.clone());
    }
    if local.ip().is_unspecified() {
        return Err(Error::Config(format!(
            "the worker listens on {local}, which peers cannot dial: set --advertise HOST:PORT to the address they should use"
        )));
    }
    Ok(local.to_string())
}

/// Refusals (at the connection limit) in progress at once, at most;
/// beyond it a refused connection is just closed.
const MAX_REFUSING: usize = 64;

impl Shared {
    /// Accepts peer connections until the node stops. Accept errors (e.g.
    /// out of file descriptors) back off instead of spinning.
    ///
    /// At most `--max-connections` inbound connections are served at once
    /// (a slot is held from the accept, through the TLS and cookie
    /// handshakes, until the connection closes); one more is refused with
    /// a handshake `Refused` that says why, so the peer's log says it too.
    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let limit = Arc::new(tokio::sync::Semaphore::new(self.config.max_connections));
        let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
        let mut last_warning: Option<std::time::Instant> = None;
        let mut refused: u64 = 0;
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = self.token.cancelled() => return,
            };
            match accepted {
                Ok((stream, from)) => {
                    backoff = Duration::from_millis(10);
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        refused += 1;
                        let max = self.config.max_connections;
                        // One warning per second at most under a flood.
                        if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                            tracing::warn!(%from, max, refused, "refused a connection: --max-connections connections are open");
                            last_warning = Some(std::time::Instant::now());
                            refused = 0;
                        }
                        if let Ok(slot) = refusing.clone().try_acquire_owned() {
                            let tls = self.config.tls.clone();
                            let reason = format!(
                                "too many connections: node {} serves at most {max} (--max-connections); try again later or raise the limit",
                                self.config.name
                            );
                            let timeout = self.config.handshake_timeout.min(Duration::from_secs(2));
                            tokio::spawn(async move {
                                pool_proto::tls::refuse(tls.as_ref(), stream, reason, timeout)
                                    .await;
                                drop(slot);
                            });
                        }
                        continue;
                    };
                    let s = self.clone();
                    tokio::spawn(async move { s.accept_peer(stream, permit).await });
                }
                Err(e) => {
                    tracing::warn!(cause = %e, retry_in = ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// A running node. Dropping it stops everything at once (use
/// [`shutdown`](Self::shutdown) for an orderly stop).
#[derive(Debug)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    proc_rt: Option<tokio::runtime::Runtime>,
    ctl_rt: Option<tokio::runtime::Runtime>,
}

impl NodeHandle {
    /// The Pool API of this node.
    pub fn pool(&self) -> Pool {
        Pool {
            shared: self.shared.clone(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The address peers connect to (empty for a hidden node).
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The process runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.rt
    }

    /// True while joined to the master.
    pub fn is_connected(&self) -> bool {
        self.shared.master.is_connected()
    }

    /// Stops in order (see the module docs), within the configured stop
    /// timeout; whatever is left is then killed.
    pub async fn shutdown(mut self) {
        let shared = self.shared.clone();
        let stop = shared.config.stop_timeout;
        let ctl = shared.ctl.clone();
        let graceful = ctl.spawn(async move {
            let _ = tokio::time::timeout(stop, shared.stop_gracefully()).await;
            shared.token.cancel();
            shared.rt.kill_all(Duration::from_secs(2)).await;
        });
        let _ = graceful.await;
        self.stop_runtimes();
    }

    /// Stops at once: no leave, no ordered shutdown.
    pub fn abort(mut self) {
        self.shared.token.cancel();
        self.stop_runtimes();
    }

    fn stop_runtimes(&mut self) {
        if let Some(rt) = self.proc_rt.take() {
            rt.shutdown_background();
        }
        if let Some(rt) = self.ctl_rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shared.token.cancel();
        self.stop_runtimes();
    }
}

impl Shared {
    async fn stop_gracefully(self: &Arc<Self>) {
        self.stopping.store(true, Ordering::Release);
        tracing::info!(name = %self.config.name, "stopping");
        if self.config.kind == NodeKind::Worker && self.master.is_connected() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), self.master_request(Request::Leave))
                    .await;
        }
        // Application roots: ordered shutdown of their trees.
        let apps: Vec<String> = self
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for app in apps {
            self.stop_app(&app).await;
        }
        // Other root supervisors of this node (started in code): their owner
        // is their own id, without a parent path. Ordered shutdown too.
        let roots: Vec<Pid> = self
            .rt
            .processes()
            .into_iter()
            .filter(|p| {
                p.function == supervisor::supervisor::SUPERVISOR_FUNCTION
                    && p.owner.as_deref().is_some_and(|o| !o.contains('/'))
            })
            .map(|p| p.pid)
            .collect();
        for pid in &roots {
            self.rt.exit(*pid, NODE_STOP_REASON);
        }
        let waits = roots.iter().map(|p| self.rt.wait(*p));
        let _ = tokio::time::timeout(
            Duration::from_secs(20),
            futures_util::future::join_all(waits),
        )
        .await;
        // Children hosted for supervisors elsewhere: `shutdown`, so their
        // supervisors restart them on other nodes per their restart type.
        let hosted = self.rt.linked_to_other_nodes();
        for pid in &hosted {
            self.rt.exit(*pid, NODE_STOP_REASON);
        }
        let waits = hosted.iter().map(|p| self.rt.wait(*p));
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join_all(waits),
        )
        .await;
        self.flush_peers(Duration::from_secs(2)).await;
        // ... and read by the peers, before the master can tell them we
        // are gone.
        self.sync_peers(Duration::from_secs(2)).await;
    }
}
