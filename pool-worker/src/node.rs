//! A node: its runtimes, its parts, and the node task that composes them;
//! starting and stopping in order.
//!
//! ```text
//! NodeHandle                            owns the two runtimes (none for an in-process node)
//!  ├─ process runtime (N threads)       every process of this node
//!  └─ control runtime (1 thread)        never runs user code; every task tracked (tasks.rs):
//!       ├─ node task                      owns the parts; one loop over NodeEvent and the stop
//!       │                                 request: fencing, nodes down, application roots, stop
//!       ├─ master link (master_link.rs)   join, reports, membership, requests ── NodeEvent ─┐
//!       │                                                                      to the node task
//!       ├─ accept loop (pool_proto::listener)  inbound connections ─> Peers::accept
//!       ├─ peer connections (peer.rs, conn.rs) writer + reader per connection,
//!       │                                 except those other workers opened to us: those
//!       │                                 run on the process runtime
//!       └─ event forwarder (hosted_apps.rs)    supervisor events -> master
//!
//! the parts, each owning its state:
//!   MasterLink, MasterHandle   master_link.rs    Peers       peer.rs
//!   HostedApps                 hosted_apps.rs    Globals     names.rs
//!   Router (the runtime's)     route.rs          PoolPlacer  placer.rs
//!   Pool (the user's)          pool.rs
//! ```
//!
//! No part names this file: the node task is the only place where a step
//! touches several parts, and those steps read top to bottom here
//! (`NodeTask::fence`, `NodeTask::stop_gracefully`).
//!
//! Processes that compute without yielding hold their threads, not the
//! control thread: a node whose processes saturate every core still
//! reports on time, and is seen as busy, never as down (DESIGN.md "A busy
//! node is not a dead node").
//!
//! A connection another worker opened to this node, on which it writes
//! its processes' messages to ours, is read on the process runtime, beside
//! the receivers, as Erlang's schedulers do the distribution I/O: a frame
//! read wakes its receiver on the thread that read it (tokio runs a task
//! woken by the running task next, on the same thread), so a message
//! costs one thread wake-up instead of two (the control thread's, then the
//! receiver's). Everything else stays on the control thread: the master
//! link, the listener and handshakes, and the connections of hidden nodes,
//! so `poolctl` is answered (a kill says `pending`) while every process
//! thread computes without awaiting. And while a process thread so
//! computes, the control thread reads those connections itself, every few
//! milliseconds (`stalls.rs`): a monitor or a link set up on a spinning
//! process is in place when it dies, as on any other node. An in-process node
//! ([`NodeBuilder::on_current_runtime`], for tests) runs both on the
//! caller's runtime instead.
//!
//! Starting ([`NodeBuilder::start`]): the runtimes; the listener and the
//! address peers dial; the process runtime; the parts, leaves first; the
//! tasks (accept loop, event forwarder, node task, and the master link
//! last); then the first join.
//!
//! Stopping ([`NodeHandle::shutdown`]): tell the master we leave (no more
//! placements here), stop application roots in order, stop the children
//! this node hosts for supervisors elsewhere with `shutdown` (so those
//! supervisors restart them elsewhere per their restart type), flush peer
//! queues, then kill what is left, cancel the node token (every loop and
//! connection ends) and wait for the tracked tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_proto::listener::{Accepted, Limits, Listener};
use pool_proto::transport::{Listen, Tcp, Transport};
use pool_proto::{
    ExitReason, Fence, Identity, Msg, NodeId, NodeInfo, NodeKind, Pid, Request, Response,
};
use supervisor::{Functions, Runtime};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::config::NodeConfig;
use crate::error::Error;
use crate::event::NodeEvent;
use crate::hosted_apps::HostedApps;
use crate::master_link::{LinkParts, MasterHandle, MasterLink, Registrations};
use crate::members::{self, SharedMembers};
use crate::names::Globals;
use crate::peer::{PeerParts, Peers};
use crate::placer::PoolPlacer;
use crate::pool::Pool;
use crate::reach::DialFailures;
use crate::route::Router;
use crate::tasks::Tasks;

/// The reason hosted children are stopped with when their node stops
/// gracefully: their supervisors elsewhere restart them per their type.
const NODE_STOP_REASON: ExitReason = ExitReason::Shutdown;

/// How long the tracked tasks may take to end once the node token is
/// cancelled (they only have to notice it).
const TASKS_GRACE: Duration = Duration::from_secs(5);

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
            incoming: None,
            transport: None,
            in_process: false,
            #[cfg(feature = "wasm")]
            wasm: true,
        }
    }
}

/// Where a worker accepts its peers.
#[derive(Debug)]
enum Incoming {
    /// A bound TCP listener (the binaries).
    Tcp(std::net::TcpListener),
    /// A listener of any transport (an in-memory one in tests).
    Any(Box<dyn Listen>),
}

/// See [`Node`].
#[derive(Debug)]
pub struct NodeBuilder {
    /// The node's settings (validated by `start`).
    config: NodeConfig,
    /// Functions the node can spawn.
    functions: Functions,
    /// Whether the `builtin.*` functions are added.
    builtins: bool,
    /// Where a worker accepts its peers.
    incoming: Option<Incoming>,
    /// How to dial the master and peers (`None`: TCP).
    transport: Option<Arc<dyn Transport>>,
    /// Run on the caller's runtime instead of two of its own.
    in_process: bool,
    /// Whether a worker installs the WebAssembly backend (feature `wasm`).
    #[cfg(feature = "wasm")]
    wasm: bool,
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

    /// Leaves out the WebAssembly backend: the node runs no wasm function
    /// and the master places none on it. A worker built with the `wasm`
    /// feature has it unless this is called; other nodes never do.
    #[cfg(feature = "wasm")]
    pub fn without_wasm(mut self) -> Self {
        self.wasm = false;
        self
    }

    /// The bound listener for peers (workers need one; bind port 0 in
    /// tests).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.incoming = Some(Incoming::Tcp(listener));
        self
    }

    /// Accepts peers from `listener`, of any transport (e.g. a
    /// [`MemNetwork`](pool_proto::transport::MemNetwork) listener in
    /// tests); its address is the one peers dial unless
    /// [`NodeConfig::advertise`] says otherwise.
    pub fn listen(mut self, listener: impl Listen) -> Self {
        self.incoming = Some(Incoming::Any(Box::new(listener)));
        self
    }

    /// Dials the master and the peers through `transport` (default: TCP).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Runs the node on the caller's tokio runtime instead of two of its
    /// own: for tests, where one `current_thread` runtime (with paused
    /// time) can host a master and several nodes. The control thread then
    /// shares the runtime with the processes.
    pub fn on_current_runtime(mut self) -> Self {
        self.in_process = true;
        self
    }

    /// Starts the node and joins the pool. A worker keeps retrying while
    /// the master is unreachable; a refusal (duplicate name, wrong cookie)
    /// is returned at once. A hidden node gives up on the first failure.
    pub async fn start(self) -> Result<NodeHandle, Error> {
        let NodeBuilder {
            #[cfg_attr(not(feature = "wasm"), allow(unused_mut))]
            mut config,
            mut functions,
            builtins,
            incoming,
            transport,
            in_process,
            #[cfg(feature = "wasm")]
            wasm,
        } = self;
        config.validate()?;
        let master = MasterHandle::new(&config);
        // Wasm functions are resolved when spawned, from modules fetched
        // from the master; only a worker hosts others' processes.
        #[cfg(feature = "wasm")]
        let resolver = if wasm && config.kind == NodeKind::Worker {
            config.wasm_backend = true;
            Some(crate::wasm::backend(&master)?)
        } else {
            None
        };
        if builtins {
            crate::builtins::register(&mut functions);
        }
        // Every node of a pool can host a nested supervisor placed on it.
        supervisor::register_supervisor_function(&mut functions);
        let config = Arc::new(config);
        let transport = transport.unwrap_or_else(|| Arc::new(Tcp));

        // 1. The runtimes: processes apart from the control plane, unless
        //    the caller's runtime hosts both.
        let (runtimes, proc_handle, ctl_handle) = if in_process {
            let here = Handle::try_current().map_err(|_| {
                Error::Config(
                    "on_current_runtime needs to be started inside a tokio runtime".into(),
                )
            })?;
            (None, here.clone(), here)
        } else {
            let r = Runtimes::build(&config)?;
            let (p, c) = (r.proc_rt.handle().clone(), r.ctl_rt.handle().clone());
            (Some(r), p, c)
        };

        // 2. The listener, and the address peers dial.
        let id = NodeId::random();
        let (listener, addr) = listen(&config, incoming, &ctl_handle)?;

        // 3. The process runtime.
        let builder = Runtime::builder(id)
            .handle(proc_handle.clone())
            .functions(functions)
            .max_mailbox(config.max_mailbox);
        #[cfg(feature = "wasm")]
        let builder = match resolver {
            Some(r) => builder.resolver(r),
            None => builder,
        };
        let rt = builder.build();

        // 4. The parts, leaves first; then what the runtime calls.
        let identity = Identity {
            node: id,
            name: config.name.clone(),
            kind: config.kind,
        };
        let info = NodeInfo {
            id,
            name: config.name.clone(),
            addr: addr.clone(),
            kind: config.kind,
            capacity: config.capacity,
            labels: config.labels.clone(),
        };
        let tasks = Tasks::new(ctl_handle);
        let members = SharedMembers::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let traffic = Arc::default();
        let dial_failures = Arc::new(DialFailures::default());
        // Connections from other workers are read on the process runtime
        // of a node that has one, watched while it stalls (`stalls.rs`).
        let read_on = runtimes.as_ref().map(|_| crate::peer::ReadOn {
            tasks: tasks.on(proc_handle.clone()),
            stalls: Arc::default(),
        });
        if let Some(on) = &read_on {
            tasks.spawn(crate::stalls::watch(
                on.stalls.clone(),
                proc_handle.clone(),
                tasks.token().clone(),
            ));
        }
        let peers = Arc::new(Peers::new(PeerParts {
            identity: identity.clone(),
            config: config.clone(),
            rt: rt.clone(),
            members: members.clone(),
            tasks: tasks.clone(),
            read_on,
            transport: transport.clone(),
            traffic: Arc::clone(&traffic),
            stopping: stopping.clone(),
            master: master.clone(),
            dial_failures: dial_failures.clone(),
        }));
        let apps = Arc::new(HostedApps::new(rt.clone(), master.clone()));
        let globals = Arc::new(Globals::new(rt.clone(), master.clone()));
        rt.set_router(Arc::new(Router::new(
            Arc::downgrade(&peers),
            members.clone(),
        )))?;
        rt.set_placer(Arc::new(PoolPlacer::new(master.clone())))?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let registrations = {
            let (globals, apps) = (globals.clone(), apps.clone());
            Box::new(move || Registrations {
                names: globals.held(),
                apps: apps.running_for_join(),
            })
        };
        let ask_peers = {
            let peers = peers.clone();
            Box::new(move |within| peers.ask_master_seen(within))
        };
        let link = Arc::new(MasterLink::new(
            LinkParts {
                info,
                identity,
                config: config.clone(),
                rt: rt.clone(),
                proc_handle,
                members: members.clone(),
                events: events_tx,
                tasks: tasks.clone(),
                transport,
                traffic,
                dial_failures,
                stopping: stopping.clone(),
                registrations,
                ask_peers,
            },
            &master,
        ));
        let pool = Pool::new(
            &config.name,
            rt.clone(),
            master.clone(),
            members.clone(),
            globals.clone(),
        );

        // 5. The tasks: the accept loop, the event forwarder, the node
        //    task, and the master link last (its events need the node task).
        if let Some(listener) = listener {
            spawn_accept_loop(&tasks, listener, &config, peers.clone());
        }
        tasks.spawn(apps.clone().forward_events(tasks.token().clone()));
        let (stop_tx, stop_rx) = oneshot::channel();
        let node_task = NodeTask {
            config,
            rt,
            members,
            peers: peers.clone(),
            apps,
            globals,
            master: master.clone(),
            tasks: tasks.clone(),
            stopping,
        };
        tasks.spawn(node_task.run(events_rx, stop_rx));
        let (first_tx, first_rx) = oneshot::channel();
        tasks.spawn(link.run(first_tx));

        let handle = NodeHandle {
            pool,
            addr,
            master,
            peers,
            tasks,
            stop: Some(stop_tx),
            runtimes,
        };
        // 6. The first join: a refusal fails the start.
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

/// The two runtimes of a node that owns them.
#[derive(Debug)]
struct Runtimes {
    /// Runs every process of the node.
    proc_rt: tokio::runtime::Runtime,
    /// Runs the node's I/O tasks (one thread, never user code).
    ctl_rt: tokio::runtime::Runtime,
}

impl Runtimes {
    fn build(config: &NodeConfig) -> Result<Runtimes, Error> {
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
        Ok(Runtimes { proc_rt, ctl_rt })
    }

    /// Drops both at once, from any context (their tasks are dropped).
    fn shutdown(self) {
        self.proc_rt.shutdown_background();
        self.ctl_rt.shutdown_background();
    }
}

/// A worker's listener and the address peers dial (a hidden node has
/// neither).
fn listen(
    config: &NodeConfig,
    incoming: Option<Incoming>,
    ctl: &Handle,
) -> Result<(Option<Box<dyn Listen>>, String), Error> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e| Error::Io { what, source: e }
    };
    match (config.kind, incoming) {
        (NodeKind::Worker, Some(Incoming::Tcp(l))) => {
            l.set_nonblocking(true)
                .map_err(io("configuring the listener"))?;
            let local = l.local_addr().map_err(io("reading the listener address"))?;
            let addr = advertised(config, &local.to_string())?;
            // Registered with the control runtime's reactor.
            let _in_ctl = ctl.enter();
            let l = tokio::net::TcpListener::from_std(l).map_err(io("using the peer listener"))?;
            Ok((Some(Box::new(l)), addr))
        }
        (NodeKind::Worker, Some(Incoming::Any(l))) => {
            let local = l.local_addr().map_err(io("reading the listener address"))?;
            Ok((Some(l), advertised(config, &local)?))
        }
        (NodeKind::Worker, None) => Err(Error::Config(
            "a worker needs a listener for its peers: pass one with NodeBuilder::listener".into(),
        )),
        _ => Ok((None, String::new())),
    }
}

/// The address peers should use: `--advertise`, else the bound address
/// (which must then be a specific IP, not 0.0.0.0).
fn advertised(config: &NodeConfig, local: &str) -> Result<String, Error> {
    if let Some(a) = &config.advertise {
        return Ok(a.clone());
    }
    if local
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified())
    {
        return Err(Error::Config(format!(
            "the worker listens on {local}, which peers cannot dial: set --advertise HOST:PORT to the address they should use"
        )));
    }
    Ok(local.to_owned())
}

/// Accepts peer connections until the node stops: at most
/// `--max-connections` at once, one more refused with a handshake
/// `Refused` that says why, and at most
/// [`DEFAULT_MAX_HANDSHAKING`](pool_proto::listener::DEFAULT_MAX_HANDSHAKING)
/// of them still in their handshake (see `pool_proto::listener`). Every
/// connection and refusal runs as a tracked task.
fn spawn_accept_loop(
    tasks: &Tasks,
    listen: Box<dyn Listen>,
    config: &NodeConfig,
    peers: Arc<Peers>,
) {
    let max = config.max_connections;
    let limits = Limits {
        max_connections: max,
        max_handshaking: pool_proto::listener::DEFAULT_MAX_HANDSHAKING,
        handshake_timeout: config.handshake_timeout,
        tls: config.tls.clone(),
        refusal: format!(
            "too many connections: node {} serves at most {max} (--max-connections); try again later or raise the limit",
            config.name
        ),
        refuse_timeout: config.handshake_timeout.min(Duration::from_secs(2)),
    };
    let listener = Listener::boxed(listen, limits);
    let stop = tasks.token().clone();
    let spawner = tasks.clone();
    tasks.spawn(async move {
        let serve = move |conn: Accepted| {
            let peers = peers.clone();
            async move { peers.accept(conn).await }
        };
        listener
            .run(stop, serve, move |task| spawner.spawn(task))
            .await;
    });
}

/// What the handle sends the node task to stop it gracefully: answered
/// once the node stopped.
type StopRequest = oneshot::Sender<()>;

/// The node task's state: every part of the node.
#[derive(Debug)]
struct NodeTask {
    /// This node's settings.
    config: Arc<NodeConfig>,
    /// The process runtime.
    rt: Runtime,
    /// The membership (read: whom to fence from).
    members: SharedMembers,
    /// The peer connections.
    peers: Arc<Peers>,
    /// The application roots.
    apps: Arc<HostedApps>,
    /// The global names.
    globals: Arc<Globals>,
    /// The master: `Leave`, and the answers to `StartApp`/`StopApp`.
    master: MasterHandle,
    /// Where tasks run; its token is the node's root token, cancelled at
    /// the end of a stop (or at once on abort).
    tasks: Tasks,
    /// Set when the graceful stop begins: spawns are refused from then on.
    stopping: Arc<AtomicBool>,
}

/// How handling an event ended.
enum Handled {
    /// Go on.
    Next,
    /// The handle asked for a graceful stop meanwhile.
    Stop(StopRequest),
    /// The handle is gone: the node stops at once.
    Gone,
}

impl NodeTask {
    /// The node task: one event at a time until the node stops.
    async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<NodeEvent>,
        mut stop: oneshot::Receiver<StopRequest>,
    ) {
        let token = self.tasks.token().clone();
        let mut events_open = true;
        loop {
            let event = tokio::select! {
                biased;
                _ = token.cancelled() => return,
                req = &mut stop => match req {
                    Ok(done) => return self.stop(done).await,
                    Err(_) => return,
                },
                ev = events.recv(), if events_open => match ev {
                    Some(ev) => ev,
                    None => {
                        events_open = false;
                        continue;
                    }
                },
            };
            match self.handle(event, &mut stop).await {
                Handled::Next => {}
                Handled::Stop(done) => return self.stop(done).await,
                Handled::Gone => return,
            }
        }
    }

    async fn handle(&self, event: NodeEvent, stop: &mut oneshot::Receiver<StopRequest>) -> Handled {
        match event {
            NodeEvent::Fence { fence, done } => {
                // A stop asked for while fencing wins: the fence only
                // matters to a node that goes on.
                tokio::select! {
                    biased;
                    req = stop => return req.map_or(Handled::Gone, Handled::Stop),
                    _ = self.fence(&fence) => {
                        let _ = done.send(());
                    }
                }
            }
            NodeEvent::NodeDown(node) => {
                self.peers.close_peer(node);
                // Links and monitors towards it fire even if we never had a
                // connection with it.
                self.rt.node_down(node);
            }
            NodeEvent::CutOff => self.cut_off(),
            NodeEvent::WatchName { id, name, pid } => {
                let body = match self.globals.watch(name, pid) {
                    Ok(()) => Response::Ok,
                    Err(why) => Response::Error(pool_proto::RemoteError::new(
                        pool_proto::ErrorCode::Refused,
                        why,
                    )),
                };
                self.master.push(Msg::Response { id, body });
            }
            NodeEvent::StartApp {
                id,
                app,
                generation,
                spec,
            } => {
                let (apps, master) = (self.apps.clone(), self.master.clone());
                self.tasks.spawn(async move {
                    let body = apps.start(app, generation, *spec).await;
                    master.push(Msg::Response { id, body });
                });
            }
            NodeEvent::StopApp { id, app } => {
                let (apps, master) = (self.apps.clone(), self.master.clone());
                self.tasks.spawn(async move {
                    apps.stop(&app).await;
                    master.push(Msg::Response {
                        id,
                        body: Response::Ok,
                    });
                });
            }
        }
        Handled::Next
    }

    /// Fencing (docs/protocol.md): this incarnation was declared down while
    /// cut off. Everything other nodes restarted must stop here first.
    async fn fence(&self, fence: &Fence) {
        tracing::warn!(
            stop_apps = ?fence.stop_apps,
            lost_names = ?fence.lost_names,
            "the master declared this node down while it was cut off: fencing before rejoining"
        );
        // 0. Roots still starting were asked for by the session that gave
        //    this node up: they stop themselves when their start ends.
        self.apps.end_epoch();
        // 1. Break every link and monitor towards other nodes (their
        //    supervisors already restarted what they had here), and close
        //    the connections.
        let others = members::read(&self.members).ids();
        self.peers.close_all();
        for node in others {
            self.rt.node_down(node);
        }
        // 2. Stop the roots that now run elsewhere, in order: those the
        //    master lists, and those whose start ended after the Join was
        //    built (their StartApp was read late, as after this node was
        //    stopped): the master never judged them, and gave them up with
        //    the node.
        let mut stop: Vec<String> = fence.stop_apps.clone();
        for app in self.apps.unannounced() {
            if !stop.contains(&app) {
                stop.push(app);
            }
        }
        for app in &stop {
            self.apps.stop(app).await;
        }
        // 3. Forget the names other processes hold now.
        self.globals.forget(&fence.lost_names);
        // 4. Wait until the processes that lost their links are gone.
        wait_remote_linked_gone(&self.rt, Duration::from_secs(5)).await;
    }

    /// Cut off from the master (docs/semantics.md, "The worker's lease"):
    /// the supervised work hosted here stops at once, before the master
    /// restarts it elsewhere. Nothing orderly: there is no time for it.
    fn cut_off(&self) {
        // 1. The roots, killed (and forgotten: the master restarts them).
        let apps = self.apps.kill_all();
        // 2. Children hosted for supervisors elsewhere, and whatever else
        //    is linked to another node's processes: killed.
        let linked = self.rt.linked_to_other_nodes();
        for pid in &linked {
            self.rt.kill(*pid);
        }
        // 3. As if every other node went down: links and monitors towards
        //    them fire noconnection, connections close.
        let others = members::read(&self.members).ids();
        self.peers.close_all();
        for node in others {
            self.rt.node_down(node);
        }
        tracing::warn!(
            ?apps,
            linked = linked.len(),
            "stopped the supervised work of a node cut off from the master"
        );
    }

    /// The stop: the ordered part within the stop timeout, then whatever is
    /// left is killed, the node token cancelled (every loop and connection
    /// ends), and `done` answered.
    async fn stop(&self, done: StopRequest) {
        let _ = tokio::time::timeout(self.config.stop_timeout, self.stop_gracefully()).await;
        self.tasks.token().cancel();
        self.rt.kill_all(Duration::from_secs(2)).await;
        let _ = done.send(());
    }

    /// The ordered part of a stop.
    async fn stop_gracefully(&self) {
        // 1. Spawns are refused from now on.
        self.stopping.store(true, Ordering::Release);
        tracing::info!(name = %self.config.name, "stopping");
        // 2. No more placements here.
        if self.config.kind == NodeKind::Worker && self.master.is_connected() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), self.master.request(Request::Leave))
                    .await;
        }
        // 3. Application roots: ordered shutdown of their trees.
        self.apps.stop_all().await;
        // 4. Other root supervisors of this node (started in code), ordered
        //    shutdown too.
        let roots: Vec<Pid> = self
            .rt
            .processes()
            .into_iter()
            .filter(|p| is_root_supervisor(&p.function, p.owner.as_deref()))
            .map(|p| p.pid)
            .collect();
        stop_and_wait(&self.rt, &roots, Duration::from_secs(20)).await;
        // 5. Children hosted for supervisors elsewhere: `shutdown`, so their
        //    supervisors restart them on other nodes per their restart type.
        let hosted = self.rt.linked_to_other_nodes();
        stop_and_wait(&self.rt, &hosted, Duration::from_secs(10)).await;
        // 6. Their exit signals leave the queues...
        self.peers.flush(Duration::from_secs(2)).await;
        // ... and are read by the peers, before the master can tell them we
        //    are gone.
        self.peers.sync(Duration::from_secs(2)).await;
    }
}

/// A root supervisor started in code: the supervisor function, owned by
/// itself (its owner is its own id, without a parent path).
fn is_root_supervisor(function: &str, owner: Option<&str>) -> bool {
    function == pool_proto::SUPERVISOR_FUNCTION && owner.is_some_and(|o| !o.contains('/'))
}

/// Sends `shutdown` to `pids` and waits up to `timeout` for them to end.
async fn stop_and_wait(rt: &Runtime, pids: &[Pid], timeout: Duration) {
    for pid in pids {
        rt.exit(*pid, NODE_STOP_REASON);
    }
    let waits = pids.iter().map(|p| rt.wait(*p));
    let _ = tokio::time::timeout(timeout, futures_util::future::join_all(waits)).await;
}

/// Waits until no process of this node is linked to another node, or
/// `timeout` passes.
async fn wait_remote_linked_gone(rt: &Runtime, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !rt.linked_to_other_nodes().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A running node. Dropping it stops everything at once (use
/// [`shutdown`](Self::shutdown) for an orderly stop): its connections
/// close, its tasks end, and its processes die (with its runtimes, or
/// killed, for an in-process node).
#[derive(Debug)]
pub struct NodeHandle {
    /// The Pool API of this node.
    pool: Pool,
    /// The address peers dial (empty for a hidden node).
    addr: String,
    /// The master link's handle (is it connected?).
    master: MasterHandle,
    /// The peer connections, closed at once on abort.
    peers: Arc<Peers>,
    /// The node's tasks and root token.
    tasks: Tasks,
    /// Asks the node task to stop gracefully; taken by `shutdown`.
    stop: Option<oneshot::Sender<StopRequest>>,
    /// The runtimes the node owns (`None` in process: the caller's).
    runtimes: Option<Runtimes>,
}

impl NodeHandle {
    /// The Pool API of this node.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.pool.node_id()
    }

    /// The address peers connect to (empty for a hidden node).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The process runtime.
    pub fn runtime(&self) -> &Runtime {
        self.pool.runtime()
    }

    /// True while joined to the master.
    pub fn is_connected(&self) -> bool {
        self.master.is_connected()
    }

    /// Stops in order (see the module docs), within the configured stop
    /// timeout; whatever is left is then killed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done, stopped) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = stopped.await;
            }
        }
        if !self.tasks.stop(TASKS_GRACE).await {
            tracing::warn!(name = %self.pool.node_name(), "some of the node's tasks did not end in time");
        }
        if let Some(r) = self.runtimes.take() {
            r.shutdown();
        }
    }

    /// Stops at once: no leave, no ordered shutdown.
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.tasks.token().cancel();
        self.master.stopped();
        match self.runtimes.take() {
            Some(r) => r.shutdown(),
            None => {
                // In process, the tasks end on the token, but nothing more
                // may leave this node: close the connections now, then kill
                // the processes (their exit signals find no connection).
                self.peers.close_all();
                let rt = self.pool.runtime();
                for p in rt.processes() {
                    rt.kill(p.pid);
                }
            }
        }
    }
}
