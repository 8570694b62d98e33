//! The process runtime of one node: the process table, spawning, exit
//! signals, links, monitors, local names, and the seam to other nodes.
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
//! A process dies from a signal by having its task aborted: the signal
//! records the reason in the process's state, then aborts the task; the
//! task's drop runs the same exit sequence as a normal end. A function that
//! computes without ever yielding cannot be interrupted (as any cooperative
//! runtime); it dies at its next `.await`.

mod node_ops;
pub mod router;
mod table;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use pool_proto::{
    Dest, ErrorCode, ExitReason, Msg, MsgKind, NodeId, Pid, ProcStatus, Ref, RemoteError, SendMsg,
    SpawnMonitor, SpawnRequest, TraceId,
};
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, oneshot};

use crate::error::{CallError, Error};
use crate::functions::Functions;
use crate::message::{CallRequest, Down, Envelope, Message};
use crate::process::{Ctx, Meta, MonitorIn, Process, Push, SCHED_IDLE, poll_body};

use self::router::{Placer, Reach, RemoteRouter, SpawnReply};

/// Serial 0 is never a process: it stands for "the node itself" as the
/// sender of signals that no process sent (e.g. `poolctl kill`).
pub const SYSTEM_SERIAL: u64 = 0;

/// What a process function's return value means as an exit.
///
/// `()` is a normal exit; an [`ExitReason`] is that reason; `Ok(v)` is a
/// normal exit with result `v` (for `run` and monitors that ask for it);
/// `Err(e)` exits with `e.into()` (any `Box<dyn Error + Send + Sync>`,
/// `String`, `io::Error` or `ExitReason`).
pub trait IntoExit {
    /// The exit reason and the optional result value.
    fn into_exit(self) -> (ExitReason, Option<Message>);
}

impl IntoExit for () {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        (ExitReason::Normal, None)
    }
}

impl IntoExit for (ExitReason, Option<Message>) {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        self
    }
}

impl IntoExit for ExitReason {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        (self, None)
    }
}

impl<T, E> IntoExit for Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Into<ExitReason>,
{
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        match self {
            Ok(v) => (ExitReason::Normal, Some(Message::new(v))),
            Err(e) => (e.into(), None),
        }
    }
}

/// Options of a spawn.
#[derive(Debug, Default)]
pub struct SpawnOpts {
    link: Option<Pid>,
    monitor: Option<(Pid, Ref, bool)>,
    trap_exit: bool,
    name: Option<String>,
    function: Option<Cow<'static, str>>,
    owner: Option<String>,
    gate: Option<oneshot::Receiver<()>>,
    trace: Option<TraceId>,
    max_mailbox: Option<usize>,
}

impl SpawnOpts {
    /// No link, no monitor, not trapping exits.
    pub fn new() -> Self {
        SpawnOpts::default()
    }

    /// Link the new process to `pid` before it runs.
    pub fn link(mut self, pid: Pid) -> Self {
        self.link = Some(pid);
        self
    }

    /// Have `watcher` monitor the new process with `mref` before it runs.
    pub fn monitor(mut self, watcher: Pid, mref: Ref, with_result: bool) -> Self {
        self.monitor = Some((watcher, mref, with_result));
        self
    }

    /// Start trapping exits.
    pub fn trap_exit(mut self, on: bool) -> Self {
        self.trap_exit = on;
        self
    }

    /// Register the new process under a local name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The function name shown in listings.
    pub fn function(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.function = Some(name.into());
        self
    }

    /// What the process belongs to, shown in listings.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The most messages that may wait in the new process's mailbox; one
    /// more kills it with a `mailbox overflow` reason (0: no limit). The
    /// default is the runtime's ([`RuntimeBuilder::max_mailbox`]).
    pub fn max_mailbox(mut self, limit: usize) -> Self {
        self.max_mailbox = Some(limit);
        self
    }

    /// The trace id the process works for (see [`Ctx::trace`]).
    pub fn trace(mut self, trace: Option<TraceId>) -> Self {
        self.trace = trace;
        self
    }
}

/// Holds back a process spawned for another node until the answer to the
/// spawn request has been queued, so that the requester always learns the
/// pid before any signal from the new process. Dropping it opens the gate.
#[derive(Debug)]
pub struct SpawnGate(#[allow(dead_code)] oneshot::Sender<()>);

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

struct Inner {
    node: NodeId,
    serials: AtomicU64,
    refs: AtomicU64,
    procs: self::table::ProcTable,
    names: Mutex<HashMap<String, Pid>>,
    router: OnceLock<Arc<dyn RemoteRouter>>,
    placer: OnceLock<Arc<dyn Placer>>,
    events: broadcast::Sender<RuntimeEvent>,
    functions: RwLock<Arc<Functions>>,
    handle: Handle,
    spawns_received: AtomicU64,
    spawned: AtomicU64,
    /// Default mailbox limit of new processes (0: none).
    max_mailbox: usize,
}

/// One node's process runtime. Cheap to clone; all clones are the same
/// runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::Runtime;
/// let rt = Runtime::new(pool_proto::NodeId::random());
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
#[derive(Debug)]
pub struct RuntimeBuilder {
    node: NodeId,
    handle: Option<Handle>,
    functions: Functions,
    max_mailbox: usize,
}

impl RuntimeBuilder {
    /// Spawn processes on this tokio runtime (default: the current one).
    pub fn handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// The functions that can be spawned by name.
    pub fn functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// The mailbox limit of processes that do not set their own (0, the
    /// default: none). See [`SpawnOpts::max_mailbox`].
    pub fn max_mailbox(mut self, limit: usize) -> Self {
        self.max_mailbox = limit;
        self
    }

    /// Builds the runtime. Panics outside a tokio runtime if no handle was
    /// given.
    pub fn build(mut self) -> Runtime {
        crate::supervisor::register_supervisor_function(&mut self.functions);
        Runtime {
            inner: Arc::new(Inner {
                node: self.node,
                serials: AtomicU64::new(SYSTEM_SERIAL + 1),
                refs: AtomicU64::new(1),
                procs: self::table::ProcTable::new(),
                names: Mutex::new(HashMap::new()),
                router: OnceLock::new(),
                placer: OnceLock::new(),
                events: broadcast::channel(EVENT_BUFFER).0,
                functions: RwLock::new(Arc::new(self.functions)),
                handle: self.handle.unwrap_or_else(Handle::current),
                spawns_received: AtomicU64::new(0),
                spawned: AtomicU64::new(0),
                max_mailbox: self.max_mailbox,
            }),
        }
    }
}

pin_project! {
    /// The tokio task of one process.
    struct ProcessTask<F> {
        #[pin]
        body: Option<F>,
        proc: Arc<Process>,
        waker: Waker,
        rt: Option<Runtime>,
    }

    impl<F> PinnedDrop for ProcessTask<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Drop the function's state first: the process is dead before
            // anyone hears of it.
            this.body.set(None);
            if let Some(rt) = this.rt.take() {
                rt.finish(this.proc, None);
            }
        }
    }
}

impl<F: Future<Output = (ExitReason, Option<Message>)>> Future for ProcessTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(body) = this.body.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        match poll_body(this.proc, this.waker, body, cx.waker()) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                this.body.set(None);
                let out = out.unwrap_or_else(|panic| (ExitReason::Panic(panic), None));
                if let Some(rt) = this.rt.take() {
                    rt.finish(this.proc, Some(out));
                }
                Poll::Ready(())
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    /// A runtime for node `node` on the current tokio runtime, with no
    /// functions registered.
    pub fn new(node: NodeId) -> Self {
        Self::builder(node).build()
    }

    /// A builder for node `node`.
    pub fn builder(node: NodeId) -> RuntimeBuilder {
        RuntimeBuilder {
            node,
            handle: None,
            functions: Functions::new(),
            max_mailbox: 0,
        }
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
            .map_err(|_| Error::RouterAlreadySet)
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
    pub(crate) fn remote_drained(
        &self,
        node: NodeId,
    ) -> Option<futures_util::future::BoxFuture<'static, ()>> {
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

    /// Replaces the function registry (the supervisor function is kept).
    pub fn set_functions(&self, mut functions: Functions) {
        crate::supervisor::register_supervisor_function(&mut functions);
        *self
            .inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(functions);
    }

    pub(crate) fn get(&self, pid: Pid) -> Option<Arc<Process>> {
        if pid.node() != self.inner.node {
            return None;
        }
        self.inner.procs.get(pid.serial())
    }

    /// True if `pid` is a live process of this node.
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

    /// Processes currently runnable (being polled or queued to run).
    pub fn run_queue(&self) -> usize {
        self.inner.procs.count(Process::is_runnable)
    }

    /// A snapshot of every live process.
    pub fn processes(&self) -> Vec<ProcessSnapshot> {
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        let (now_std, now_coarse) = (Instant::now(), crate::process::coarse_now());
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

    // ----- spawning ---------------------------------------------------------

    /// Spawns a process running `f`.
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        self.spawn_opts(SpawnOpts::new(), f)
    }

    /// Spawns a process running `f` with options.
    pub fn spawn_opts<F, Fut>(&self, opts: SpawnOpts, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        let mut opts = opts;
        let gate = opts.gate.take();
        let function = opts.function.take().unwrap_or(Cow::Borrowed("anonymous"));
        self.spawn_inner(opts, function, move |ctx| async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            f(ctx).await.into_exit()
        })
    }

    /// Spawns `f` with `opts` (its gate already taken out), listed as
    /// running `function`.
    fn spawn_inner<F, Fut>(&self, opts: SpawnOpts, function: Cow<'static, str>, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut,
        Fut: Future<Output = (ExitReason, Option<Message>)> + Send + 'static,
    {
        let SpawnOpts {
            link,
            monitor,
            trap_exit,
            name,
            owner,
            trace,
            max_mailbox,
            ..
        } = opts;
        let max_mailbox = max_mailbox.unwrap_or(self.inner.max_mailbox);
        let serial = self.inner.serials.fetch_add(1, Ordering::Relaxed);
        let pid = Pid::new(self.inner.node, serial);
        let meta = Meta {
            function,
            started: crate::process::coarse_now(),
            owner,
        };
        let proc = Arc::new(Process::new(pid, meta, trap_exit, max_mailbox));

        // Links and monitors exist before the process runs (spawn_link and
        // spawn_monitor are atomic in OTP). The other half is recorded on
        // the other process; a remote other half is the requester's job.
        // In the table first: a parent or watcher dying while the link or
        // monitor is being made must find this process to signal it.
        self.inner.procs.insert(serial, proc.clone());
        let mut dead_parent = None;
        if let Some(parent) = link {
            proc.lock().links.push(parent);
            if parent.node() == self.inner.node && !self.add_link_half(parent, pid) {
                dead_parent = Some(parent);
            }
        }
        let mut dead_watcher = false;
        if let Some((watcher, mref, with_result)) = monitor {
            proc.lock().monitored_by.push(MonitorIn {
                mref,
                watcher,
                with_result,
            });
            if watcher.node() == self.inner.node {
                match self.get(watcher) {
                    Some(w) => w.lock().monitoring.push((mref, pid)),
                    None => dead_watcher = true,
                }
            }
        }
        if dead_watcher {
            proc.lock().monitored_by.clear();
        }
        self.inner.spawned.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = name
            && let Err(e) = self.register(&name, pid)
        {
            tracing::warn!(%pid, cause = %e, "spawned process could not take its name");
        }

        let ctx = Ctx::new(proc.clone(), self.clone(), trace);
        let task = ProcessTask {
            body: Some(f(ctx)),
            waker: Waker::from(proc.clone()),
            proc: proc.clone(),
            rt: Some(self.clone()),
        };
        let abort = self.inner.handle.spawn(task).abort_handle();
        let killed = {
            let mut st = proc.lock();
            if st.exiting {
                false
            } else {
                st.abort = Some(abort.clone());
                st.pending_exit.is_some()
            }
        };
        if killed {
            abort.abort();
        }
        if let Some(parent) = dead_parent {
            // The parent died before the link was made: as linking to a dead
            // process, the new process gets `noproc` from it.
            self.deliver_exit(&proc, parent, ExitReason::NoProc, false);
        }
        pid
    }

    /// Spawns the registered function `name` with `args`.
    pub fn spawn_function(
        &self,
        name: &str,
        args: serde_json::Value,
        opts: SpawnOpts,
    ) -> Result<Pid, Error> {
        let start = self.functions().prepare(name, args)?;
        let mut opts = opts;
        let gate = opts.gate.take();
        let function = opts
            .function
            .take()
            .unwrap_or_else(|| Cow::Owned(name.to_owned()));
        Ok(self.spawn_inner(opts, function, move |ctx| async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            start(ctx).await
        }))
    }

    /// Spawns, waits for the process to end, and returns its exit reason
    /// and result value (the Pool API's `run`, locally).
    pub async fn run<F, Fut>(&self, f: F) -> (ExitReason, Option<Message>)
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        let (tx, rx) = oneshot::channel::<(ExitReason, Option<Message>)>();
        self.spawn_opts(
            SpawnOpts::new().function("run"),
            move |mut ctx| async move {
                let mref = ctx.make_ref();
                let me = ctx.pid();
                ctx.rt
                    .spawn_opts(SpawnOpts::new().monitor(me, mref, true), f);
                if let Some(d) = ctx.wait_down(mref, None).await {
                    let _ = tx.send((d.reason, d.result));
                }
            },
        );
        rx.await.unwrap_or((ExitReason::Killed, None))
    }

    /// Waits until `pid` exits; returns its reason and, if it ended
    /// normally with one, its result (`noproc` if it is not alive).
    pub async fn wait(&self, pid: Pid) -> (ExitReason, Option<Message>) {
        let (tx, rx) = oneshot::channel();
        self.spawn_opts(
            SpawnOpts::new().function("wait"),
            move |mut ctx| async move {
                let mref = ctx.monitor_with_result(pid);
                if let Some(d) = ctx.wait_down(mref, None).await {
                    let _ = tx.send((d.reason, d.result));
                }
            },
        );
        rx.await.unwrap_or((ExitReason::Killed, None))
    }

    /// Calls `to` from outside any process (through a short-lived one).
    pub async fn call<T: Serialize + Send + 'static>(
        &self,
        to: Pid,
        request: T,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        self.call_message(to, Message::new(request), timeout).await
    }

    /// [`call`](Self::call) with a prepared [`Message`].
    pub async fn call_message(
        &self,
        to: Pid,
        request: Message,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        let (tx, rx) = oneshot::channel();
        self.spawn_opts(
            SpawnOpts::new().function("call"),
            move |mut ctx| async move {
                let _ = tx.send(ctx.call_message(to, request, timeout).await);
            },
        );
        rx.await.unwrap_or(Err(CallError::Exit(ExitReason::Killed)))
    }

    // ----- messages ---------------------------------------------------------

    /// Sends `value` to `to` from outside any process.
    pub fn send<T: Serialize + Send + 'static>(&self, to: Pid, value: T) {
        self.send_message(None, to, Message::new(value));
    }

    /// Sends a prepared message; `from` is the sending process, if any.
    pub fn send_message(&self, from: Option<Pid>, to: Pid, msg: Message) {
        if to.node() == self.inner.node {
            // Push under the table's read guard: no reference-count traffic
            // on the receiver's record.
            self.inner.procs.with(to.serial(), |p| {
                if p.push_message(Envelope::Message { from, msg }) == Push::Full {
                    self.mailbox_overflow(p);
                }
            });
        } else {
            self.route(from, Dest::Pid(to), to.node(), MsgKind::Plain, &msg, None);
        }
    }

    /// Sends to a process of another node, carrying `trace`.
    pub(crate) fn send_remote(
        &self,
        from: Option<Pid>,
        to: Pid,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        self.route(from, Dest::Pid(to), to.node(), MsgKind::Plain, &msg, trace);
    }

    /// Sends to a locally registered name.
    pub fn send_named<T: Serialize + Send + 'static>(
        &self,
        name: &str,
        value: T,
    ) -> Result<(), Error> {
        let to = self.whereis(name).ok_or_else(|| Error::NotRegistered {
            name: name.to_owned(),
        })?;
        self.send(to, value);
        Ok(())
    }

    /// Sends to the name `name` registered on `node` (`{Name, Node} ! Msg`).
    pub fn send_to_name_on(
        &self,
        node: NodeId,
        name: &str,
        from: Option<Pid>,
        msg: Message,
    ) -> Result<(), Error> {
        if node == self.inner.node {
            let to = self.whereis(name).ok_or_else(|| Error::NotRegistered {
                name: name.to_owned(),
            })?;
            self.send_message(from, to, msg);
        } else {
            self.route(
                from,
                Dest::Name(name.to_owned()),
                node,
                MsgKind::Plain,
                &msg,
                None,
            );
        }
        Ok(())
    }

    pub(crate) fn send_call(
        &self,
        from: Pid,
        to: Pid,
        mref: Ref,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to)
                && p.push_message(Envelope::Call(Box::new(CallRequest { from, mref, msg })))
                    == Push::Full
            {
                self.mailbox_overflow(&p);
            }
        } else {
            self.route(
                Some(from),
                Dest::Pid(to),
                to.node(),
                MsgKind::Call(mref),
                &msg,
                trace,
            );
        }
    }

    pub(crate) fn send_reply(
        &self,
        from: Option<Pid>,
        to: Pid,
        mref: Ref,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to) {
                p.mailbox.push(Envelope::Reply { mref, msg });
            }
        } else {
            self.route(
                from,
                Dest::Pid(to),
                to.node(),
                MsgKind::Reply(mref),
                &msg,
                trace,
            );
        }
    }

    fn route(
        &self,
        from: Option<Pid>,
        to: Dest,
        node: NodeId,
        kind: MsgKind,
        msg: &Message,
        trace: Option<TraceId>,
    ) {
        let Some(router) = self.router() else {
            return;
        };
        match msg.encode() {
            Ok(payload) => router.send(
                node,
                SendMsg {
                    to,
                    from,
                    kind,
                    payload,
                    trace,
                },
            ),
            Err(e) => {
                tracing::warn!(?to, cause = %e, "message dropped: it cannot be sent to another node")
            }
        }
    }

    // ----- names ------------------------------------------------------------

    /// Registers `pid` (a live local process) under `name`. Fails if the
    /// name is taken or the process already has a name (OTP `badarg`).
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), Error> {
        let proc = self.get(pid).ok_or(Error::NoProc { pid })?;
        let mut names = lock(&self.inner.names);
        if let Some(holder) = names.get(name) {
            return Err(Error::NameTaken {
                name: name.to_owned(),
                holder: *holder,
            });
        }
        let mut st = proc.lock();
        if st.exiting {
            return Err(Error::NoProc { pid });
        }
        if let Some(old) = &st.name {
            return Err(Error::AlreadyNamed {
                pid,
                name: old.clone(),
            });
        }
        st.name = Some(name.to_owned());
        names.insert(name.to_owned(), pid);
        Ok(())
    }

    /// Removes a local name.
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        let pid = lock(&self.inner.names)
            .remove(name)
            .ok_or_else(|| Error::NotRegistered {
                name: name.to_owned(),
            })?;
        if let Some(p) = self.get(pid) {
            p.lock().name = None;
        }
        Ok(())
    }

    /// The process registered under `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        lock(&self.inner.names).get(name).copied()
    }

    /// Every local name.
    pub fn registered(&self) -> Vec<(String, Pid)> {
        let mut v: Vec<_> = lock(&self.inner.names)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    // ----- links, monitors, exit signals --------------------------------------

    /// Adds `other` to the links of local process `pid`; false if `pid` is
    /// not alive.
    fn add_link_half(&self, pid: Pid, other: Pid) -> bool {
        match self.get(pid) {
            Some(p) => {
                let mut st = p.lock();
                if st.exiting {
                    return false;
                }
                if !st.links.contains(&other) {
                    st.links.push(other);
                }
                true
            }
            None => false,
        }
    }

    fn remove_link_half(&self, pid: Pid, other: Pid) {
        if let Some(p) = self.get(pid) {
            p.lock().links.retain(|l| *l != other);
        }
    }

    pub(crate) fn link(&self, from: Pid, to: Pid) -> Result<(), Error> {
        if from == to {
            return Ok(());
        }
        let Some(me) = self.get(from) else {
            return Ok(());
        };
        let reach = if to.node() == self.inner.node {
            if self.add_link_half(to, from) {
                Reach::Up
            } else {
                Reach::Unknown
            }
        } else {
            self.reach(to.node())
        };
        match reach {
            Reach::Up => {
                self.add_link_half(from, to);
                if to.node() != self.inner.node
                    && let Some(r) = self.router()
                {
                    r.link(from, to);
                }
                Ok(())
            }
            Reach::Down => {
                // A pid of an unreachable node: the link breaks at once.
                self.deliver_exit(&me, to, ExitReason::NoConnection, false);
                Ok(())
            }
            Reach::Unknown => {
                if me.trap_exit.load(Ordering::Acquire) {
                    me.mailbox.push(Envelope::Exit {
                        from: to,
                        reason: ExitReason::NoProc,
                    });
                    Ok(())
                } else {
                    Err(Error::NoProc { pid: to })
                }
            }
        }
    }

    pub(crate) fn unlink(&self, from: Pid, to: Pid) {
        self.remove_link_half(from, to);
        if to.node() == self.inner.node {
            self.remove_link_half(to, from);
        } else if let Some(r) = self.router() {
            r.unlink(from, to);
        }
    }

    pub(crate) fn monitor(&self, watcher: Pid, target: Pid, with_result: bool) -> Ref {
        let mref = self.make_ref();
        let Some(w) = self.get(watcher) else {
            return mref;
        };
        let reach = if target.node() == self.inner.node {
            match self.get(target) {
                Some(t) => {
                    let mut st = t.lock();
                    if st.exiting {
                        Reach::Unknown
                    } else {
                        st.monitored_by.push(MonitorIn {
                            mref,
                            watcher,
                            with_result,
                        });
                        Reach::Up
                    }
                }
                None => Reach::Unknown,
            }
        } else {
            self.reach(target.node())
        };
        let down = |reason| {
            w.mailbox.push(Envelope::Down(Box::new(Down {
                mref,
                pid: target,
                reason,
                result: None,
            })))
        };
        match reach {
            Reach::Up => {
                w.lock().monitoring.push((mref, target));
                if target.node() != self.inner.node
                    && let Some(r) = self.router()
                {
                    r.monitor(watcher, target, mref, with_result);
                }
            }
            Reach::Down => {
                down(ExitReason::NoConnection);
            }
            Reach::Unknown => {
                down(ExitReason::NoProc);
            }
        }
        mref
    }

    pub(crate) fn demonitor(&self, watcher: Pid, mref: Ref) {
        let Some(w) = self.get(watcher) else {
            return;
        };
        let target = {
            let mut st = w.lock();
            let pos = st.monitoring.iter().position(|(r, _)| *r == mref);
            pos.map(|i| st.monitoring.swap_remove(i).1)
        };
        let Some(target) = target else {
            return;
        };
        if target.node() == self.inner.node {
            if let Some(t) = self.get(target) {
                t.lock().monitored_by.retain(|m| m.mref != mref);
            }
        } else if let Some(r) = self.router() {
            r.demonitor(watcher, target, mref);
        }
    }

    /// Sends the exit signal `reason` from `from` to `to` (`exit/2`).
    pub fn exit_from(&self, from: Pid, to: Pid, reason: ExitReason) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to) {
                self.deliver_exit(&p, from, reason, true);
            }
        } else if let Some(r) = self.router() {
            r.exit(from, to, reason, true);
        }
    }

    /// Sends the exit signal `reason` to `to` from the node itself.
    pub fn exit(&self, to: Pid, reason: ExitReason) {
        self.exit_from(self.system_pid(), to, reason);
    }

    /// Kills `to` (untrappable; it dies `killed`).
    pub fn kill(&self, to: Pid) {
        self.exit(to, ExitReason::Kill);
    }

    /// Applies an exit signal to a local process (OTP.md 2.1).
    fn deliver_exit(&self, target: &Arc<Process>, from: Pid, reason: ExitReason, explicit: bool) {
        if explicit && reason == ExitReason::Kill {
            self.terminate(target, ExitReason::Killed);
        } else if target.trap_exit.load(Ordering::Acquire) {
            target.mailbox.push(Envelope::Exit { from, reason });
        } else if reason.is_normal() {
            // `normal` is ignored, except `exit(self(), normal)`.
            if from == target.pid {
                self.terminate(target, ExitReason::Normal);
            }
        } else {
            self.terminate(target, reason);
        }
    }

    /// A message did not fit in `target`'s mailbox (its limit): the process
    /// dies, as an Erlang process over its `max_heap_size` does.
    pub(crate) fn mailbox_overflow(&self, target: &Arc<Process>) {
        tracing::warn!(pid = %target.pid, limit = target.max_mailbox, "mailbox limit reached: killing the process");
        self.terminate(
            target,
            ExitReason::Error(format!(
                "mailbox overflow: more than {} messages waiting",
                target.max_mailbox
            )),
        );
    }

    /// Makes a local process die with `reason`: records it and aborts the
    /// task, whose drop runs the exit sequence.
    fn terminate(&self, target: &Arc<Process>, reason: ExitReason) {
        let abort = {
            let mut st = target.lock();
            if st.exiting || st.pending_exit.is_some() {
                return;
            }
            st.pending_exit = Some(reason);
            st.abort.clone()
        };
        if let Some(a) = abort {
            a.abort();
        }
    }

    /// The exit sequence of a process (OTP order: the process is gone from
    /// the table before anyone is told).
    fn finish(&self, proc: &Arc<Process>, out: Option<(ExitReason, Option<Message>)>) {
        let pid = proc.pid;
        let (reason, mut result, links, monitored_by, monitoring, name) = {
            let mut st = proc.lock();
            st.exiting = true;
            st.abort = None;
            let (reason, result) = match st.pending_exit.take() {
                Some(r) => (r, None),
                None => out.unwrap_or((ExitReason::Killed, None)),
            };
            (
                reason,
                result,
                std::mem::take(&mut st.links),
                std::mem::take(&mut st.monitored_by),
                std::mem::take(&mut st.monitoring),
                st.name.take(),
            )
        };
        self.inner.procs.remove(pid.serial());
        proc.mailbox.close();
        proc.sched.store(SCHED_IDLE, Ordering::Release);
        if let Some(name) = name {
            let mut names = lock(&self.inner.names);
            if names.get(&name) == Some(&pid) {
                names.remove(&name);
            }
        }
        if !reason.is_normal() {
            tracing::debug!(%pid, function = %proc.meta.function, %reason, "process exited");
        }
        for other in links {
            if other.node() == self.inner.node {
                if let Some(p) = self.get(other) {
                    p.lock().links.retain(|l| *l != pid);
                    self.deliver_exit(&p, pid, reason.clone(), false);
                }
            } else if let Some(r) = self.router() {
                r.exit(pid, other, reason.clone(), false);
            }
        }
        for m in monitored_by {
            let res = if m.with_result { result.take() } else { None };
            self.send_down(m.watcher, m.mref, pid, reason.clone(), res);
        }
        for (mref, target) in monitoring {
            if target.node() == self.inner.node {
                if let Some(t) = self.get(target) {
                    t.lock().monitored_by.retain(|m| m.mref != mref);
                }
            } else if let Some(r) = self.router() {
                r.demonitor(pid, target, mref);
            }
        }
    }

    fn send_down(
        &self,
        watcher: Pid,
        mref: Ref,
        pid: Pid,
        reason: ExitReason,
        result: Option<Message>,
    ) {
        if watcher.node() == self.inner.node {
            if let Some(w) = self.get(watcher) {
                w.lock().monitoring.retain(|(r, _)| *r != mref);
                w.mailbox.push(Envelope::Down(Box::new(Down {
                    mref,
                    pid,
                    reason,
                    result,
                })));
            }
        } else if let Some(r) = self.router() {
            let result = result.and_then(|m| m.encode().ok());
            r.down(watcher, mref, pid, reason, result);
        }
    }

    // ----- the remote seam: inbound -------------------------------------------

    /// Applies a node-to-node signal frame that arrived from another node
    /// (`Send`, `Link`, `Unlink`, `Monitor`, `Demonitor`, `Exit`, `Down`).
    /// Any other frame is handed back.
    pub fn handle_remote(&self, msg: Msg) -> Result<(), Box<Msg>> {
        match msg {
            Msg::Send(SendMsg {
                to,
                from,
                kind,
                payload,
                trace,
            }) => {
                if let Some(trace) = trace {
                    tracing::debug!(trace = %pool_proto::TraceHex(trace), ?to, ?from, ?kind, "traced message from another node");
                }
                let to = match to {
                    Dest::Pid(p) => p,
                    Dest::Name(n) => match self.whereis(&n) {
                        Some(p) => p,
                        None => return Ok(()),
                    },
                };
                let Some(p) = self.get(to) else {
                    return Ok(());
                };
                let msg = Message::from_payload(payload);
                let env = match kind {
                    MsgKind::Plain => Envelope::Message { from, msg },
                    MsgKind::Call(mref) => Envelope::Call(Box::new(CallRequest {
                        from: from.unwrap_or_else(|| self.system_pid()),
                        mref,
                        msg,
                    })),
                    MsgKind::Reply(mref) => Envelope::Reply { mref, msg },
                };
                let bounded = !matches!(env, Envelope::Reply { .. });
                if bounded {
                    if p.push_message(env) == Push::Full {
                        self.mailbox_overflow(&p);
                    }
                } else {
                    p.mailbox.push(env);
                }
            }
            Msg::Link { from, to } => {
                if !self.add_link_half(to, from)
                    && let Some(r) = self.router()
                {
                    r.exit(to, from, ExitReason::NoProc, false);
                }
            }
            Msg::Unlink { from, to } => self.remove_link_half(to, from),
            Msg::Monitor {
                watcher,
                target,
                mref,
                with_result,
            } => {
                let added = self.get(target).is_some_and(|t| {
                    let mut st = t.lock();
                    if st.exiting {
                        return false;
                    }
                    st.monitored_by.push(MonitorIn {
                        mref,
                        watcher,
                        with_result,
                    });
                    true
                });
                if !added && let Some(r) = self.router() {
                    r.down(watcher, mref, target, ExitReason::NoProc, None);
                }
            }
            Msg::Demonitor { target, mref, .. } => {
                if let Some(t) = self.get(target) {
                    t.lock().monitored_by.retain(|m| m.mref != mref);
                }
            }
            Msg::Exit {
                from,
                to,
                reason,
                explicit,
            } => {
                if let Some(p) = self.get(to) {
                    if !explicit {
                        p.lock().links.retain(|l| *l != from);
                    }
                    self.deliver_exit(&p, from, reason, explicit);
                }
            }
            Msg::Down {
                watcher,
                mref,
                pid,
                reason,
                result,
            } => {
                self.send_down(
                    watcher,
                    mref,
                    pid,
                    reason,
                    result.map(Message::from_payload),
                );
            }
            other => return Err(Box::new(other)),
        }
        Ok(())
    }

    /// Serves a spawn request from another node. The returned gate holds
    /// the new process back until the caller has queued the answer; drop it
    /// right after.
    pub fn handle_spawn(&self, req: SpawnRequest) -> Result<(Pid, SpawnGate), RemoteError> {
        self.inner.spawns_received.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut opts = SpawnOpts::new();
        opts.gate = Some(rx);
        opts.link = req.link;
        opts.monitor = req.monitor.map(|m| (m.watcher, m.mref, m.with_result));
        opts.owner = req.owner;
        opts.trace = req.trace;
        let pid = self
            .spawn_function(&req.function, req.args, opts)
            .map_err(|e| match e {
                Error::UnknownFunction { .. } => {
                    RemoteError::new(ErrorCode::UnknownFunction, e.to_string())
                }
                Error::BadArgs { .. } => RemoteError::new(ErrorCode::BadArgs, e.to_string()),
                other => RemoteError::new(ErrorCode::Internal, other.to_string()),
            })?;
        if let Some(trace) = req.trace {
            // 16 hex digits, as every node logs a trace (`grep trace=<hex>`).
            tracing::info!(trace = %pool_proto::TraceHex(trace), function = %req.function, %pid, "spawning for another node");
        }
        Ok((pid, SpawnGate(tx)))
    }

    /// Every link and monitor towards `node` fires `noconnection` (its
    /// connection is lost, or the master declared it down).
    pub fn node_down(&self, node: NodeId) {
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        for p in procs {
            let (links, downs) = {
                let mut st = p.lock();
                if st.exiting {
                    continue;
                }
                let mut links = Vec::new();
                st.links.retain(|l| {
                    let gone = l.node() == node;
                    if gone {
                        links.push(*l);
                    }
                    !gone
                });
                let mut downs = Vec::new();
                st.monitoring.retain(|(r, t)| {
                    let gone = t.node() == node;
                    if gone {
                        downs.push((*r, *t));
                    }
                    !gone
                });
                st.monitored_by.retain(|m| m.watcher.node() != node);
                (links, downs)
            };
            for (mref, target) in downs {
                p.mailbox.push(Envelope::Down(Box::new(Down {
                    mref,
                    pid: target,
                    reason: ExitReason::NoConnection,
                    result: None,
                })));
            }
            for l in links {
                self.deliver_exit(&p, l, ExitReason::NoConnection, false);
            }
        }
    }

    // ----- the remote seam: outbound spawn --------------------------------------

    /// Spawns the function `function` on `node` (this node included) for
    /// process `requester`, linked and/or monitored by it. Returns the pid
    /// and the monitor's reference if one was asked for.
    pub async fn spawn_on(
        &self,
        node: NodeId,
        requester: Pid,
        mut req: SpawnRequest,
        link: bool,
        monitor: Option<bool>,
    ) -> Result<(Pid, Option<Ref>), Error> {
        let mref = monitor.map(|_| self.make_ref());
        req.link = link.then_some(requester);
        req.monitor = monitor.zip(mref).map(|(with_result, mref)| SpawnMonitor {
            watcher: requester,
            mref,
            with_result,
        });
        if node == self.inner.node {
            let mut opts = SpawnOpts::new();
            opts.link = req.link;
            opts.monitor = req.monitor.map(|m| (m.watcher, m.mref, m.with_result));
            opts.owner = req.owner;
            let pid = self.spawn_function(&req.function, req.args, opts)?;
            return Ok((pid, mref));
        }
        let router = self.router().ok_or(Error::NoRoute { node })?;
        match router.reach(node) {
            Reach::Up => {}
            Reach::Down | Reach::Unknown => return Err(Error::NoRoute { node }),
        }
        let (tx, rx) = oneshot::channel();
        let rt = self.clone();
        let reply = SpawnReply::new(move |res: Result<Pid, RemoteError>| {
            // Runs where the answer arrives, before any later frame from
            // that node is applied: record our halves of the link and the
            // monitor now, so a signal from the new process finds them.
            if let Ok(pid) = &res {
                if link
                    && !rt.add_link_half(requester, *pid)
                    && let Some(r) = rt.router()
                {
                    r.exit(requester, *pid, ExitReason::NoProc, false);
                }
                if let Some(mref) = mref
                    && let Some(w) = rt.get(requester)
                {
                    w.lock().monitoring.push((mref, *pid));
                }
            }
            let _ = tx.send(res);
        });
        router.spawn(node, req, reply);
        match rx.await {
            Ok(Ok(pid)) => Ok((pid, mref)),
            Ok(Err(e)) => Err(Error::Remote(e)),
            Err(_) => Err(Error::NoRoute { node }),
        }
    }

    /// Kills every process (last step of a node's shutdown) and waits up to
    /// `timeout` for them to be gone.
    pub async fn kill_all(&self, timeout: Duration) {
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        for p in &procs {
            self.terminate(p, ExitReason::Killed);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inner.procs.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
