//! The process runtime of one node: [`Runtime`], its shared state, its
//! builder and its statistics. What the runtime does lives in the files
//! below it, one concept each, as `impl Runtime` blocks:
//!
//! - `spawn`: [`SpawnOpts`](spawn::SpawnOpts), the process task, `spawn*`,
//!   `run`, `wait`, `call`;
//! - `send`: messages, to local mailboxes or through the router;
//! - `registry`: local names;
//! - `signals`: links, monitors (by pid, by name, of nodes), exit signals
//!   and what they did ([`ExitOutcome`](crate::ExitOutcome)), `kill`, and
//!   the exit sequence of a process (`finish`);
//! - `remote`: the inbound side of the seam to other nodes (`handle_remote`,
//!   `handle_spawn`, `node_down`) and `spawn_on`;
//! - `table`: the process table.
//!
//! ```text
//! Runtime (Arc<Inner>, cheap to clone)
//!  ├─ process table: serial -> Arc<Process>     (senders look up here)
//!  ├─ local names:   name -> Pid
//!  ├─ functions:     name -> start function      (spawn by name, remote spawns)
//!  └─ router:        RemoteRouter                (pids of other nodes)
//!
//! each process = one tokio task running ProcessTask { body, proc }
//!   body ends / panics / is aborted by a signal
//!     -> finish(): mark exiting, leave the table, close the mailbox,
//!        exit signals to links, Down to monitors, drop own monitors
//! ```
//!
//! A process dies from a signal at an await point: the signal records the
//! reason in the process's state, raises the process's `exit_pending` flag
//! and aborts the task. A task waiting at an await point is dropped, and its
//! drop runs the same exit sequence as a normal end. A task being polled
//! runs on to its next await point: there every receive of `Ctx` sees the
//! flag and stops before handing over another envelope, and the task ends
//! as soon as its body stops with the flag raised (`spawn.rs`). A function
//! that computes without ever yielding cannot be interrupted (as any
//! cooperative runtime); until its next `.await` the signal is pending
//! ([`ExitOutcome::Pending`](crate::ExitOutcome::Pending)) and listings
//! show it as exiting.
//!
//! Three types refer to each other and are defined together here: a
//! process's [`Ctx`] holds the `Runtime`; the runtime holds the
//! [`Functions`] it spawns by name; and a function's start takes a `Ctx`.
//! Their behaviour lives above this file: `Ctx`'s in `process.rs`,
//! `Functions`'s in `functions.rs`.

mod outcomes;
mod registry;
pub(crate) mod remote;
mod send;
pub(crate) mod signals;
pub(crate) mod spawn;
mod table;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use futures_util::future::BoxFuture;
use pool_proto::{ExitReason, NodeId, Pid, ProcStatus, Ref};
use sync_wrapper::SyncWrapper;
use tokio::runtime::Handle;
use tokio::sync::{Notify, broadcast};

use self::table::ProcTable;
use crate::envelope::{Envelope, Message};
use crate::error::Error;
use crate::process::record::{Process, coarse_now};
use crate::remote::{Placer, Reach, RemoteRouter};

/// Serial 0 is never a process: it stands for "the node itself" as the
/// sender of signals that no process sent (e.g. `poolctl kill`).
pub const SYSTEM_SERIAL: u64 = 0;

/// Something a supervisor did, for metrics, logs and dashboards.
#[derive(Debug, Clone)]
pub enum RuntimeEvent {
    /// A child was restarted (or its restart attempt failed: `new` is `None`).
    ChildRestarted {
        /// The supervisor.
        supervisor: Pid,
        /// The supervisor's id path, e.g. `ingest/sinks`.
        path: String,
        /// The child's id.
        child: String,
        /// The process that exited.
        old: Option<Pid>,
        /// The new process.
        new: Option<Pid>,
        /// Why the old one exited.
        reason: ExitReason,
    },
    /// A supervisor exceeded its restart intensity and gave up.
    SupervisorGaveUp {
        /// The supervisor.
        supervisor: Pid,
        /// Its id path.
        path: String,
    },
}

/// How many events a slow event subscriber may fall behind before it
/// misses some (it is told how many).
const EVENT_BUFFER: usize = 1024;

/// A snapshot of one process, for listings.
#[derive(Debug, Clone)]
pub struct ProcessSnapshot {
    /// Its pid.
    pub pid: Pid,
    /// The function it runs.
    pub function: String,
    /// Its locally registered name.
    pub name: Option<String>,
    /// What it belongs to.
    pub owner: Option<String>,
    /// Running, waiting or exiting.
    pub status: ProcStatus,
    /// When it started.
    pub started: Instant,
    /// Envelopes waiting in its mailbox.
    pub mailbox: usize,
}

/// A process body ready to run, its arguments already decoded: what a
/// registered function (or a [`Resolver`]'s) becomes when it is spawned by
/// name. It receives the new process's [`Ctx`] and ends with its exit
/// reason and optional result value.
pub type Prepared =
    Box<dyn FnOnce(Ctx) -> BoxFuture<'static, (ExitReason, Option<Message>)> + Send>;

/// One registered function of a [`Functions`] table: decodes the
/// arguments of a spawn and prepares the body (`functions.rs` implements
/// it for typed closures).
pub(crate) trait Start: Send + Sync {
    /// The body for a spawn of function `name` with `args`, or why the
    /// arguments do not fit.
    fn prepare(&self, name: &str, args: serde_json::Value) -> Result<Prepared, Error>;
}

/// Functions resolved when they are spawned instead of registered up front:
/// the pool's wasm backend (pool-wasm) implements it for `MODULE:EXPORT`
/// names. A runtime asks its resolver only for names that no registered
/// function has ([`RuntimeBuilder::resolver`]); [`Functions::contains`] and
/// listings stay about registered functions.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use futures_util::FutureExt;
/// use supervisor::{Error, ExitReason, Prepared, Resolver, RuntimeBuilder, SpawnOpts};
///
/// /// Any name starting with `const.` ends normally with its suffix as result.
/// struct Consts;
/// impl Resolver for Consts {
///     fn resolves(&self, name: &str) -> bool {
///         name.starts_with("const.")
///     }
///     fn prepare(
///         &self,
///         name: &str,
///         _args: serde_json::Value,
///         _sandbox: Option<&pool_proto::Sandbox>,
///     ) -> Result<Prepared, Error> {
///         let value = name["const.".len()..].to_owned();
///         Ok(Box::new(move |_ctx| {
///             async move { (ExitReason::Normal, Some(supervisor::Message::new(value))) }.boxed()
///         }))
///     }
/// }
///
/// let rt = RuntimeBuilder::new().resolver(Arc::new(Consts)).build();
/// let pid = rt.spawn_function("const.seven", serde_json::Value::Null, SpawnOpts::new()).unwrap();
/// assert_eq!(pid.node(), rt.node());
/// assert!(rt.spawn_function("other", serde_json::Value::Null, SpawnOpts::new()).is_err());
/// # }
/// ```
pub trait Resolver: Send + Sync + 'static {
    /// Whether `name` is one of this resolver's (checked after the
    /// registered functions).
    fn resolves(&self, name: &str) -> bool;

    /// The body for a spawn of `name` with `args` and the spawn's sandbox
    /// options, or why it cannot be spawned ([`Error::UnknownFunction`],
    /// [`Error::BadArgs`], as for a registered function).
    fn prepare(
        &self,
        name: &str,
        args: serde_json::Value,
        sandbox: Option<&pool_proto::Sandbox>,
    ) -> Result<Prepared, Error>;
}

/// Functions that can be spawned by name, each with typed arguments
/// decoded from a JSON value: by the pool (`poolctl spawn builtin.echo`),
/// by other nodes, and by tree files. Its methods are in `functions.rs`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Functions, RuntimeBuilder, SpawnOpts};
/// #[derive(serde::Deserialize)]
/// struct Add { a: i64, b: i64 }
/// let mut fns = Functions::new();
/// fns.register("math.add", |_ctx, args: Add| async move { Ok::<_, String>(args.a + args.b) });
/// let rt = RuntimeBuilder::new().functions(fns).build();
/// let pid = rt.spawn_function("math.add", serde_json::json!({"a": 2, "b": 3}), SpawnOpts::new()).unwrap();
/// let (_reason, result) = rt.wait(pid).await;
/// # let _ = result; // the waiter monitors after spawn, so the result may be gone: use Pool::run for that
/// assert!(rt.spawn_function("math.nope", serde_json::Value::Null, SpawnOpts::new()).is_err());
/// # }
/// ```
#[derive(Default, Clone)]
pub struct Functions {
    /// Name → start, sorted so that listings are stable.
    pub(crate) map: BTreeMap<String, Arc<dyn Start>>,
}

/// The handle a process's function receives: its identity, its mailbox and
/// every operation on other processes. Its methods are in `process.rs`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Runtime, Envelope};
/// let rt = Runtime::standalone();
/// let echo = rt.spawn(|mut ctx| async move {
///     while let Envelope::Call(call) = ctx.recv().await {
///         let text: String = call.msg.take().unwrap();
///         ctx.reply_to(call.from, call.mref, &text.to_uppercase());
///     }
/// });
/// let reply = rt.call(echo, "hi".to_string(), std::time::Duration::from_secs(1)).await.unwrap();
/// assert_eq!(reply.take::<String>().unwrap(), "HI");
/// # }
/// ```
#[derive(Debug)]
pub struct Ctx {
    /// This process's shared record (the one in the process table). The
    /// `Ctx` dies with the process's task; the record leaves the table in
    /// the exit sequence.
    pub(crate) proc: Arc<Process>,
    /// The node this process runs on.
    pub(crate) rt: Runtime,
    /// Taken from the mailbox, not yet consumed, oldest first. Only ever
    /// touched through `&mut self`, which is what makes `Ctx` `Sync` (so
    /// `&Ctx` can be held across an `.await`) although messages need not be.
    pub(crate) save: SyncWrapper<VecDeque<Envelope>>,
    /// The last local process this one sent to: repeated sends to the same
    /// peer skip the process table. Only this process locks it.
    pub(crate) last_dest: Mutex<Option<Arc<Process>>>,
    /// The reference of the call this process is waiting on, if any: the
    /// only reply it may receive. Any other reply is late (its call timed
    /// out) and is dropped by every receive.
    pub(crate) awaiting: Option<Ref>,
}

/// The state every clone of a [`Runtime`] shares. Nothing here owns a task:
/// each process's task owns itself and leaves the table when it ends, so a
/// runtime has no shutdown of its own beyond [`Runtime::kill_all`].
struct Inner {
    /// This node's id, the node part of every local pid and ref.
    node: NodeId,
    /// The next process serial (never [`SYSTEM_SERIAL`]).
    serials: AtomicU64,
    /// The next reference serial.
    refs: AtomicU64,
    /// Live processes by serial: every local send looks up here.
    procs: ProcTable,
    /// Local names (`registry.rs`); a process's own record holds its name
    /// too, so the exit sequence can drop it.
    names: Mutex<HashMap<String, Pid>>,
    /// Carries operations on pids of other nodes; unset on a runtime alone.
    router: OnceLock<Arc<dyn RemoteRouter>>,
    /// Chooses the node of a placed child; unset on a runtime alone.
    placer: OnceLock<Arc<dyn Placer>>,
    /// Supervisor events, to every subscriber of [`Runtime::events`].
    events: broadcast::Sender<RuntimeEvent>,
    /// The functions that can be spawned by name, replaced whole.
    functions: RwLock<Arc<Functions>>,
    /// Resolves names no registered function has (the wasm backend);
    /// unset: such names are unknown. Owns no task of the runtime's.
    resolver: OnceLock<Arc<dyn Resolver>>,
    /// The tokio runtime process tasks are spawned on.
    handle: Handle,
    /// Spawn requests received from other nodes (statistics).
    spawns_received: AtomicU64,
    /// Processes spawned since start (statistics).
    spawned: AtomicU64,
    /// Exits and refused spawn requests by reason class (statistics).
    outcomes: outcomes::Outcomes,
    /// Default mailbox limit of new processes (0: none).
    max_mailbox: usize,
    /// How many [`Runtime::kill_all`] calls wait for the table to empty:
    /// only then does an exit check whether it left the table empty.
    empty_waiters: AtomicUsize,
    /// Woken by the exit that leaves the table empty, while someone waits.
    emptied: Notify,
}

/// One node's process runtime. Cheap to clone; all clones are the same
/// runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::Runtime;
/// let rt = Runtime::standalone();
/// let (reason, result) = rt.run(|_ctx| async { Ok::<_, String>(6 * 7) }).await;
/// assert!(reason.is_normal());
/// assert_eq!(result.unwrap().take::<i32>().unwrap(), 42);
/// # }
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("node", &self.inner.node)
            .field("processes", &self.inner.procs.len())
            .finish()
    }
}

/// Builds a [`Runtime`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Functions, RuntimeBuilder};
/// let rt = RuntimeBuilder::new().functions(Functions::new()).max_mailbox(10_000).build();
/// assert_eq!(rt.process_count(), 0);
/// # }
/// ```
pub struct RuntimeBuilder {
    node: NodeId,
    handle: Option<Handle>,
    functions: Functions,
    resolver: Option<Arc<dyn Resolver>>,
    max_mailbox: usize,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("node", &self.node)
            .field("handle", &self.handle)
            .field("functions", &self.functions)
            .field("resolver", &self.resolver.is_some())
            .field("max_mailbox", &self.max_mailbox)
            .finish()
    }
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder::new()
    }
}

impl RuntimeBuilder {
    /// A builder for a runtime on its own, outside any pool: its node id is
    /// fresh and random (set one with [`node`](Self::node)), no functions are
    /// registered, mailboxes have no limit.
    pub fn new() -> Self {
        RuntimeBuilder {
            node: NodeId::random(),
            handle: None,
            functions: Functions::new(),
            resolver: None,
            max_mailbox: 0,
        }
    }

    /// The node id (a node of a pool gets its own at start).
    pub fn node(mut self, node: NodeId) -> Self {
        self.node = node;
        self
    }

    /// Spawn processes on this tokio runtime (default: the current one).
    pub fn handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// The functions that can be spawned by name. A node whose supervisors
    /// may be asked to start nested supervisors by other nodes also
    /// registers [`register_supervisor_function`](crate::register_supervisor_function).
    pub fn functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// The resolver of names no registered function has (the wasm
    /// backend): a spawn by name asks it after the registered functions.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The mailbox limit of processes that do not set their own (0, the
    /// default: none). See [`SpawnOpts::max_mailbox`](crate::SpawnOpts::max_mailbox).
    pub fn max_mailbox(mut self, limit: usize) -> Self {
        self.max_mailbox = limit;
        self
    }

    /// Builds the runtime. Panics outside a tokio runtime if no handle was
    /// given.
    pub fn build(self) -> Runtime {
        let resolver = OnceLock::new();
        if let Some(r) = self.resolver {
            let _ = resolver.set(r);
        }
        Runtime {
            inner: Arc::new(Inner {
                node: self.node,
                serials: AtomicU64::new(SYSTEM_SERIAL + 1),
                refs: AtomicU64::new(1),
                procs: ProcTable::new(),
                names: Mutex::new(HashMap::new()),
                router: OnceLock::new(),
                placer: OnceLock::new(),
                events: broadcast::channel(EVENT_BUFFER).0,
                functions: RwLock::new(Arc::new(self.functions)),
                resolver,
                handle: self.handle.unwrap_or_else(Handle::current),
                spawns_received: AtomicU64::new(0),
                spawned: AtomicU64::new(0),
                outcomes: outcomes::Outcomes::default(),
                max_mailbox: self.max_mailbox,
                empty_waiters: AtomicUsize::new(0),
                emptied: Notify::new(),
            }),
        }
    }
}

/// Locks `m`, going on through poison: every critical section here leaves
/// its map whole, so a panic elsewhere does not make it unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    /// A runtime for node `node` on the current tokio runtime, with no
    /// functions registered.
    pub fn new(node: NodeId) -> Self {
        Self::builder(node).build()
    }

    /// A runtime on its own, outside any pool, on the current tokio
    /// runtime: a fresh node id, no functions registered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let rt = supervisor::Runtime::standalone();
    /// let pid = rt.spawn(|_ctx| async {});
    /// assert_eq!(pid.node(), rt.node());
    /// # }
    /// ```
    pub fn standalone() -> Self {
        RuntimeBuilder::new().build()
    }

    /// A builder for node `node`.
    pub fn builder(node: NodeId) -> RuntimeBuilder {
        RuntimeBuilder::new().node(node)
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// The pid standing for the node itself as a signal sender.
    pub fn system_pid(&self) -> Pid {
        Pid::new(self.inner.node, SYSTEM_SERIAL)
    }

    /// A fresh unique reference.
    pub fn make_ref(&self) -> Ref {
        Ref::new(
            self.inner.node,
            self.inner.refs.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Installs the router for pids of other nodes (once).
    pub fn set_router(&self, router: Arc<dyn RemoteRouter>) -> Result<(), Error> {
        self.inner
            .router
            .set(router)
            .map_err(|_| Error::RouterAlreadySet)
    }

    /// Installs the placer that resolves children's `placement` (once).
    pub fn set_placer(&self, placer: Arc<dyn Placer>) -> Result<(), Error> {
        self.inner
            .placer
            .set(placer)
            .map_err(|_| Error::PlacerAlreadySet)
    }

    /// Installs the resolver of names no registered function has (once;
    /// or at build, [`RuntimeBuilder::resolver`]).
    pub fn set_resolver(&self, resolver: Arc<dyn Resolver>) -> Result<(), Error> {
        self.inner
            .resolver
            .set(resolver)
            .map_err(|_| Error::ResolverAlreadySet)
    }

    /// The resolver, if one is installed.
    pub fn resolver(&self) -> Option<Arc<dyn Resolver>> {
        self.inner.resolver.get().cloned()
    }

    /// Answers the call `mref` of `to` with a prepared [`Message`], as
    /// process `from` (for bodies that hold their reply already encoded,
    /// such as a wasm process's MessagePack bytes: see
    /// [`Message::from_payload`]). A reply is never refused by a mailbox
    /// limit; one to a dead caller is dropped.
    pub fn reply_message(&self, from: Pid, to: Pid, mref: Ref, msg: Message) {
        self.send_reply(Some(from), to, mref, msg, None);
    }

    /// The placer, if the runtime is part of a pool.
    pub fn placer(&self) -> Option<Arc<dyn Placer>> {
        self.inner.placer.get().cloned()
    }

    /// Subscribes to supervisor events.
    pub fn events(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    pub(crate) fn emit(&self, event: RuntimeEvent) {
        // No subscriber is fine: nobody is watching.
        let _ = self.inner.events.send(event);
    }

    fn router(&self) -> Option<&Arc<dyn RemoteRouter>> {
        self.inner.router.get()
    }

    /// The router's wait for a busy queue towards `node` to drain.
    pub(crate) fn remote_drained(&self, node: NodeId) -> Option<BoxFuture<'static, ()>> {
        self.router()?.drained(node)
    }

    /// Reachability of another node (unknown without a router).
    fn reach(&self, node: NodeId) -> Reach {
        self.router().map_or(Reach::Unknown, |r| r.reach(node))
    }

    /// The functions that can be spawned by name.
    pub fn functions(&self) -> Arc<Functions> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the function registry.
    pub fn set_functions(&self, functions: Functions) {
        *self
            .inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(functions);
    }

    /// The record of local process `pid`, if it is in the table.
    pub(crate) fn get(&self, pid: Pid) -> Option<Arc<Process>> {
        if pid.node() != self.inner.node {
            return None;
        }
        self.inner.procs.get(pid.serial())
    }

    /// True if `pid` is a live process of this node: until its exit
    /// sequence starts, so also while an exit signal is pending because it
    /// has not reached an await point (its listed status is then
    /// `exiting`).
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.get(pid).is_some_and(|p| !p.lock().exiting)
    }

    /// Number of live processes.
    pub fn process_count(&self) -> usize {
        self.inner.procs.len()
    }

    /// Processes spawned since start.
    pub fn spawned_total(&self) -> u64 {
        self.inner.spawned.load(Ordering::Relaxed)
    }

    /// Spawn requests received from other nodes since start.
    pub fn spawns_received(&self) -> u64 {
        self.inner.spawns_received.load(Ordering::Relaxed)
    }

    /// Process exits and refused spawn requests since start, by reason
    /// class (cumulative; for the load report).
    pub fn outcomes(&self) -> pool_proto::ProcessOutcomes {
        self.inner.outcomes.snapshot()
    }

    /// Processes currently runnable (being polled or queued to run).
    pub fn run_queue(&self) -> usize {
        self.inner.procs.count(Process::is_runnable)
    }

    /// A snapshot of every live process.
    pub fn processes(&self) -> Vec<ProcessSnapshot> {
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        let (now_std, now_coarse) = (Instant::now(), coarse_now());
        let mut out: Vec<ProcessSnapshot> = procs
            .iter()
            .map(|p| {
                // One lock at a time: a guard held across the struct
                // expression would deadlock with `status()`.
                let name = p.lock().name.clone();
                ProcessSnapshot {
                    pid: p.pid,
                    function: p.meta.function.to_string(),
                    name,
                    owner: p.meta.owner.clone(),
                    status: p.status(),
                    started: now_std
                        .checked_sub(now_coarse.saturating_sub(p.meta.started))
                        .unwrap_or(now_std),
                    mailbox: p.mailbox_len(),
                }
            })
            .collect();
        out.sort_by_key(|s| s.pid);
        out
    }
}
