//! A process: its shared record ([`Process`], reachable from the process
//! table) and the handle its function receives ([`Ctx`]).
//!
//! The record is shared between the process's own task and every sender:
//! senders push to its [`Mailbox`] and, for signals, lock its [`ProcState`]
//! (links, monitors, exit state). The task alone owns the `Ctx`, whose save
//! queue holds envelopes taken from the mailbox but not yet consumed
//! (selective receive leaves non-matching envelopes there, in order).
//!
//! Lock discipline: a process's state lock is never held while taking
//! another process's lock or calling the remote router, so no two locks are
//! ever nested.

pub(crate) mod mailbox;
pub use mailbox::defer_wakes;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Wake};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use pool_proto::{ExitReason, Pid, ProcStatus, Ref, TraceId};
use serde::Serialize;
use sync_wrapper::SyncWrapper;
use tokio::task::AbortHandle;

use crate::error::{CallError, Error};
use crate::message::{CallRequest, Down, Envelope, Message};
use crate::runtime::{Runtime, SpawnOpts};

use self::mailbox::Mailbox;
pub(crate) use self::mailbox::Push;

/// Scheduling state of a process, for the run-queue count: waiting for a
/// wake-up (not runnable).
pub(crate) const SCHED_IDLE: u8 = 0;
/// Woken and queued to run.
pub(crate) const SCHED_QUEUED: u8 = 1;
/// Being polled.
pub(crate) const SCHED_RUNNING: u8 = 2;
/// Being polled, and woken again meanwhile.
pub(crate) const SCHED_RUNNING_WOKEN: u8 = 3;

/// A monitor someone holds on this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MonitorIn {
    pub(crate) mref: Ref,
    pub(crate) watcher: Pid,
    pub(crate) with_result: bool,
}

/// The mutable part of a process record, behind its lock.
#[derive(Debug, Default)]
pub(crate) struct ProcState {
    /// Set once the exit sequence has started: no new links or monitors.
    pub(crate) exiting: bool,
    /// The reason a signal asked the process to die with; it wins over
    /// whatever the function returns afterwards.
    pub(crate) pending_exit: Option<ExitReason>,
    /// Cancels the process's task (set right after spawning).
    pub(crate) abort: Option<AbortHandle>,
    /// Linked processes, local or remote.
    pub(crate) links: Vec<Pid>,
    /// Monitors others hold on this process.
    pub(crate) monitored_by: Vec<MonitorIn>,
    /// Monitors this process holds on others.
    pub(crate) monitoring: Vec<(Ref, Pid)>,
    /// Locally registered name.
    pub(crate) name: Option<String>,
}

/// A monotonic time read cheaply: `CLOCK_MONOTONIC_COARSE` (a few
/// milliseconds of resolution, no system call), enough for the ages shown
/// in listings and read once per spawn.
pub(crate) fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; the clock id is a
    // constant Linux supports.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0;
    if ok {
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    } else {
        Duration::ZERO
    }
}

/// Descriptive fields of a process, fixed at spawn.
#[derive(Debug)]
pub(crate) struct Meta {
    /// The function it runs (for listings).
    pub(crate) function: Cow<'static, str>,
    /// When it was spawned, on the coarse clock ([`coarse_now`]).
    pub(crate) started: Duration,
    /// What it belongs to, e.g. `app/sup/child`.
    pub(crate) owner: Option<String>,
}

/// The shared record of a live process.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: Pid,
    pub(crate) mailbox: Mailbox,
    pub(crate) state: Mutex<ProcState>,
    /// Whether exit signals become messages.
    pub(crate) trap_exit: AtomicBool,
    /// SCHED_* value.
    pub(crate) sched: AtomicU8,
    /// The tokio task's waker, re-registered at each poll.
    pub(crate) task_waker: AtomicWaker,
    /// Envelopes in the receiver's save queue (approximate, for listings
    /// and the mailbox limit).
    pub(crate) saved: AtomicU32,
    /// The most messages that may wait in the mailbox (0: no limit); one
    /// more kills the process with a `mailbox overflow` reason.
    pub(crate) max_mailbox: usize,
    /// The trace id the process works for (0: none); only the process
    /// itself changes it ([`Ctx::set_trace`]). Kept here rather than in
    /// [`Ctx`] so that every idle process's task stays small.
    pub(crate) trace: AtomicU64,
    pub(crate) meta: Meta,
}

impl Process {
    pub(crate) fn new(pid: Pid, meta: Meta, trap_exit: bool, max_mailbox: usize) -> Self {
        Process {
            pid,
            mailbox: Mailbox::default(),
            state: Mutex::new(ProcState::default()),
            trap_exit: AtomicBool::new(trap_exit),
            sched: AtomicU8::new(SCHED_QUEUED),
            task_waker: AtomicWaker::new(),
            saved: AtomicU32::new(0),
            max_mailbox,
            trace: AtomicU64::new(0),
            meta,
        }
    }

    /// Queues a message or a call, within the mailbox limit.
    pub(crate) fn push_message(&self, env: Envelope) -> Push {
        self.mailbox.push_bounded(
            env,
            self.max_mailbox,
            self.saved.load(Ordering::Relaxed) as usize,
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if runnable: running or queued to run.
    pub(crate) fn is_runnable(&self) -> bool {
        self.sched.load(Ordering::Relaxed) != SCHED_IDLE
    }

    /// Status for listings.
    pub(crate) fn status(&self) -> ProcStatus {
        if self.lock().exiting {
            ProcStatus::Exiting
        } else if self.is_runnable() {
            ProcStatus::Running
        } else {
            ProcStatus::Waiting
        }
    }

    /// Envelopes waiting, shared queue and save queue together.
    pub(crate) fn mailbox_len(&self) -> usize {
        self.mailbox.len() + self.saved.load(Ordering::Relaxed) as usize
    }
}

/// The waker a process's function is polled with: it marks the process
/// runnable (for the run-queue count) and wakes the tokio task.
impl Wake for Process {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut cur = self.sched.load(Ordering::Acquire);
        loop {
            let next = match cur {
                SCHED_IDLE => SCHED_QUEUED,
                SCHED_RUNNING => SCHED_RUNNING_WOKEN,
                // Already queued (or re-woken while running): tokio has it.
                _ => return,
            };
            match self
                .sched
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.task_waker.wake();
    }
}

/// The handle a process's function receives: its identity, its mailbox and
/// every operation on other processes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Runtime, Envelope};
/// let rt = Runtime::new(pool_proto::NodeId::random());
/// let echo = rt.spawn(|mut ctx| async move {
///     while let Envelope::Call(call) = ctx.recv().await {
///         let text: String = call.msg.take().unwrap();
///         ctx.reply_to(call.from, call.mref, text.to_uppercase());
///     }
/// });
/// let reply = rt.call(echo, "hi".to_string(), std::time::Duration::from_secs(1)).await.unwrap();
/// assert_eq!(reply.take::<String>().unwrap(), "HI");
/// # }
/// ```
#[derive(Debug)]
pub struct Ctx {
    pub(crate) proc: Arc<Process>,
    pub(crate) rt: Runtime,
    /// Taken from the mailbox, not yet consumed, oldest first. Only ever
    /// touched through `&mut self`, which is what makes `Ctx` `Sync` (so
    /// `&Ctx` can be held across an `.await`) although messages need not be.
    pub(crate) save: SyncWrapper<VecDeque<Envelope>>,
    /// The last local process this one sent to: repeated sends to the same
    /// peer skip the process table. Only this process locks it.
    last_dest: Mutex<Option<Arc<Process>>>,
    /// The reference of the call this process is waiting on, if any: the
    /// only reply it may receive. Any other reply is late (its call timed
    /// out) and is dropped by every receive.
    awaiting: Option<Ref>,
}

impl Ctx {
    pub(crate) fn new(proc: Arc<Process>, rt: Runtime, trace: Option<TraceId>) -> Self {
        proc.trace.store(trace.unwrap_or(0), Ordering::Relaxed);
        Ctx {
            proc,
            rt,
            save: SyncWrapper::new(VecDeque::new()),
            last_dest: Mutex::new(None),
            awaiting: None,
        }
    }

    /// The trace id this process works for (set at spawn, e.g. from a
    /// traced spawn request of another node).
    pub fn trace(&self) -> Option<TraceId> {
        match self.proc.trace.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Sets (or clears) the trace id carried by this process's messages to
    /// other nodes.
    pub fn set_trace(&mut self, trace: Option<TraceId>) {
        self.proc.trace.store(trace.unwrap_or(0), Ordering::Relaxed);
    }

    /// This process's pid.
    pub fn pid(&self) -> Pid {
        self.proc.pid
    }

    /// The runtime (node) this process runs on.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    fn note_saved(&mut self) {
        let n = self.save.get_mut().len().min(u32::MAX as usize) as u32;
        self.proc.saved.store(n, Ordering::Relaxed);
    }

    // ----- receiving --------------------------------------------------------

    /// Waits for the next envelope. Replies to calls that are no longer
    /// waiting (they timed out) are dropped here.
    pub async fn recv(&mut self) -> Envelope {
        loop {
            if let Some(env) = self.pop_front() {
                return env;
            }
            poll_fn(|cx| self.proc.mailbox.poll_drain(self.save.get_mut(), cx)).await;
            self.note_saved();
        }
    }

    /// The next envelope if one arrives within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Envelope> {
        tokio::time::timeout(timeout, self.recv()).await.ok()
    }

    /// The next envelope already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        if self.save.get_mut().is_empty() {
            self.proc.mailbox.drain_into(self.save.get_mut());
        }
        self.pop_front()
    }

    fn pop_front(&mut self) -> Option<Envelope> {
        while let Some(env) = self.save.get_mut().pop_front() {
            if self.save.get_mut().is_empty() {
                self.proc.saved.store(0, Ordering::Relaxed);
            }
            if matches!(env, Envelope::Reply { .. }) {
                continue;
            }
            return Some(env);
        }
        None
    }

    /// Selective receive: the first envelope (oldest first) for which
    /// `matches` is true; the others stay queued in order. `None` if none
    /// arrives within `timeout` (`None` = wait for ever).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use supervisor::{Envelope, Runtime};
    /// let rt = Runtime::new(pool_proto::NodeId::random());
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let p = rt.spawn(|mut ctx| async move {
    ///     // Take "urgent" first even though "normal" arrived before it.
    ///     let first = ctx
    ///         .recv_match(|e| matches!(e, Envelope::Message { msg, .. } if msg.peek(|s: &String| s == "urgent") == Some(true)), None)
    ///         .await
    ///         .unwrap();
    ///     let second = ctx.recv().await;
    ///     tx.send((first.take::<String>().unwrap(), second.take::<String>().unwrap())).unwrap();
    /// });
    /// rt.send(p, "normal".to_string());
    /// rt.send(p, "urgent".to_string());
    /// assert_eq!(rx.await.unwrap(), ("urgent".to_string(), "normal".to_string()));
    /// # }
    /// ```
    pub async fn recv_match(
        &mut self,
        mut matches: impl FnMut(&Envelope) -> bool,
        timeout: Option<Duration>,
    ) -> Option<Envelope> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut scanned = 0;
        loop {
            while scanned < self.save.get_mut().len() {
                if is_late_reply(&self.save.get_mut()[scanned], self.awaiting) {
                    self.save.get_mut().remove(scanned);
                    continue;
                }
                if matches(&self.save.get_mut()[scanned]) {
                    let env = self.save.get_mut().remove(scanned);
                    self.note_saved();
                    return env;
                }
                scanned += 1;
            }
            let more = poll_fn(|cx| self.proc.mailbox.poll_drain(self.save.get_mut(), cx));
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, more).await.is_err() {
                        return None;
                    }
                }
                None => {
                    more.await;
                }
            }
            self.note_saved();
        }
    }

    /// Takes the first already-queued envelope for which `matches` is true,
    /// without waiting; the others stay queued in order.
    pub fn try_recv_match(
        &mut self,
        mut matches: impl FnMut(&Envelope) -> bool,
    ) -> Option<Envelope> {
        self.proc.mailbox.drain_into(self.save.get_mut());
        let awaiting = self.awaiting;
        self.save.get_mut().retain(|e| !is_late_reply(e, awaiting));
        let pos = self.save.get_mut().iter().position(&mut matches)?;
        let env = self.save.get_mut().remove(pos);
        self.note_saved();
        env
    }

    /// Receives the next envelope and takes it as a message of type `T`.
    /// Anything else (another envelope kind, or a message that does not fit
    /// `T`) is handed back untouched as the error, so nothing is lost.
    pub async fn recv_msg<T: serde::de::DeserializeOwned + 'static>(
        &mut self,
    ) -> Result<T, Envelope> {
        match self.recv().await {
            Envelope::Message { msg, from } => msg
                .try_take()
                .map_err(|(msg, _)| Envelope::Message { from, msg }),
            other => Err(other),
        }
    }

    /// Lets other processes run, then continues. Unlike
    /// `tokio::task::yield_now`, which defers its wake-up until the thread
    /// runs out of work, this process stays runnable the whole time, so it
    /// is counted in the node's run queue (the load the pool places by).
    /// Long computations should call it every millisecond or so; it is also
    /// where exit signals reach a process that computes.
    ///
    /// If a send of this process since it last waited found the connection
    /// to another node over its busy limit, it first waits until that queue
    /// has drained below the limit (Erlang's busy distribution port): a
    /// loop of remote sends that yields runs at the pace the peer reads,
    /// with bounded memory.
    pub async fn yield_now(&self) {
        if let Some(node) = crate::runtime::router::take_busy()
            && let Some(drained) = self.rt.remote_drained(node)
        {
            drained.await;
        }
        let mut yielded = false;
        poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    // ----- sending ----------------------------------------------------------

    /// Sends a message. Never blocks and never fails: a message to a dead
    /// process is dropped. Order is kept between this process and `to`.
    pub fn send<T: Serialize + Send + 'static>(&self, to: Pid, value: T) {
        self.send_message(to, Message::new(value));
    }

    /// Sends a prepared [`Message`].
    pub fn send_message(&self, to: Pid, msg: Message) {
        if to.node() != self.rt.node() {
            self.rt.send_remote(Some(self.pid()), to, msg, self.trace());
            return;
        }
        let mut cache = self.last_dest.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|p| p.pid != to) {
            *cache = self.rt.get(to);
        }
        let env = Envelope::Message {
            from: Some(self.pid()),
            msg,
        };
        if let Some(p) = cache.as_ref() {
            match p.push_message(env) {
                Push::Queued => {}
                // It exited: forget it (the message is dropped, as OTP).
                Push::Closed => *cache = None,
                Push::Full => self.rt.mailbox_overflow(p),
            }
        }
    }

    /// Sends to a locally registered name; an unregistered name is an error
    /// (OTP's `badarg`).
    pub fn send_named<T: Serialize + Send + 'static>(
        &self,
        name: &str,
        value: T,
    ) -> Result<(), Error> {
        let to = self.rt.whereis(name).ok_or_else(|| Error::NotRegistered {
            name: name.to_owned(),
        })?;
        self.send(to, value);
        Ok(())
    }

    /// Answers a call.
    pub fn reply<T: Serialize + Send + 'static>(&self, call: &CallRequest, value: T) {
        self.reply_to(call.from, call.mref, value);
    }

    /// Answers the call `mref` from `to`.
    pub fn reply_to<T: Serialize + Send + 'static>(&self, to: Pid, mref: Ref, value: T) {
        self.rt.send_reply(
            Some(self.pid()),
            to,
            mref,
            Message::new(value),
            self.trace(),
        );
    }

    /// Calls `to` (`gen_server:call`): sends `request` and waits for the
    /// reply. Fails with [`CallError::Timeout`], or with the callee's exit
    /// reason if it dies first (`noproc` if it was not alive,
    /// `noconnection` if its node is unreachable).
    pub async fn call<T: Serialize + Send + 'static>(
        &mut self,
        to: Pid,
        request: T,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        self.call_message(to, Message::new(request), timeout).await
    }

    /// [`call`](Self::call) with a prepared [`Message`].
    pub async fn call_message(
        &mut self,
        to: Pid,
        request: Message,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        let mref = self.monitor(to);
        self.rt
            .send_call(self.pid(), to, mref, request, self.trace());
        self.awaiting = Some(mref);
        let got = self
            .recv_match(
                |e| match e {
                    Envelope::Reply { mref: r, .. } => *r == mref,
                    Envelope::Down(d) => d.mref == mref,
                    _ => false,
                },
                Some(timeout),
            )
            .await;
        // From now on a reply to this call is late, and dropped.
        self.awaiting = None;
        match got {
            Some(Envelope::Reply { msg, .. }) => {
                self.demonitor(mref, true);
                Ok(msg)
            }
            Some(Envelope::Down(d)) => Err(CallError::Exit(d.reason)),
            _ => {
                self.demonitor(mref, true);
                Err(CallError::Timeout(timeout))
            }
        }
    }

    // ----- links, monitors, exits ---------------------------------------------

    /// Links this process with `to`. Linking to a process that is not alive
    /// gives `noproc`: as an error if this process does not trap exits, as an
    /// `Exit` message if it does (OTP). For a pid on another node the answer
    /// comes asynchronously, as an exit signal.
    pub fn link(&self, to: Pid) -> Result<(), Error> {
        self.rt.link(self.pid(), to)
    }

    /// Removes the link with `to`, if any.
    pub fn unlink(&self, to: Pid) {
        self.rt.unlink(self.pid(), to);
    }

    /// Monitors `target`: one `Down` arrives when it exits (`noproc` at once
    /// if it is not alive, `noconnection` if its node is lost).
    pub fn monitor(&self, target: Pid) -> Ref {
        self.rt.monitor(self.pid(), target, false)
    }

    /// Like [`monitor`](Self::monitor); the `Down` also carries the
    /// target's result value if it ends normally with one.
    pub fn monitor_with_result(&self, target: Pid) -> Ref {
        self.rt.monitor(self.pid(), target, true)
    }

    /// Removes a monitor; with `flush`, also a `Down` for it already queued.
    pub fn demonitor(&mut self, mref: Ref, flush: bool) {
        self.rt.demonitor(self.pid(), mref);
        if flush {
            let is_it = |e: &Envelope| matches!(e, Envelope::Down(d) if d.mref == mref);
            self.save.get_mut().retain(|e| !is_it(e));
            self.proc.mailbox.remove_where(is_it);
            self.note_saved();
        }
    }

    /// Sets whether exit signals arrive as [`Envelope::Exit`] messages
    /// instead of killing this process (`kill` always kills).
    pub fn trap_exit(&self, on: bool) {
        self.proc.trap_exit.store(on, Ordering::Release);
    }

    /// Sends the exit signal `reason` to `to` (`exit(Pid, Reason)`).
    pub fn exit(&self, to: Pid, reason: ExitReason) {
        self.rt.exit_from(self.pid(), to, reason);
    }

    /// Kills `to`: untrappable, it dies with reason `killed`.
    pub fn kill(&self, to: Pid) {
        self.rt.exit_from(self.pid(), to, ExitReason::Kill);
    }

    /// Registers this process under a local name.
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.rt.register(name, self.pid())
    }

    /// A fresh unique reference.
    pub fn make_ref(&self) -> Ref {
        self.rt.make_ref()
    }

    // ----- spawning -----------------------------------------------------------

    /// Spawns a process on this node.
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::runtime::IntoExit,
    {
        self.rt.spawn(f)
    }

    /// Spawns a process linked to this one (atomically: the link exists
    /// before the new process runs).
    pub fn spawn_link<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::runtime::IntoExit,
    {
        self.rt.spawn_opts(SpawnOpts::new().link(self.pid()), f)
    }

    /// Spawns a process monitored by this one.
    pub fn spawn_monitor<F, Fut>(&self, f: F) -> (Pid, Ref)
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::runtime::IntoExit,
    {
        let mref = self.make_ref();
        let pid = self
            .rt
            .spawn_opts(SpawnOpts::new().monitor(self.pid(), mref, false), f);
        (pid, mref)
    }

    /// Spawns a process with options (link, monitor, name, trap_exit...).
    pub fn spawn_opts<F, Fut>(&self, opts: SpawnOpts, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::runtime::IntoExit,
    {
        self.rt.spawn_opts(opts, f)
    }

    /// Waits for a `Down` for `mref` (from [`monitor`](Self::monitor)),
    /// leaving other envelopes queued.
    pub async fn wait_down(&mut self, mref: Ref, timeout: Option<Duration>) -> Option<Down> {
        match self
            .recv_match(
                |e| matches!(e, Envelope::Down(d) if d.mref == mref),
                timeout,
            )
            .await
        {
            Some(Envelope::Down(d)) => Some(*d),
            _ => None,
        }
    }
}

/// True for a reply that no call is waiting for: its call timed out (or the
/// caller was not calling at all), so it is dropped unseen.
fn is_late_reply(env: &Envelope, awaiting: Option<Ref>) -> bool {
    matches!(env, Envelope::Reply { mref, .. } if Some(*mref) != awaiting)
}

/// Polls the future `f` as the body of `proc`: with the process's own
/// waker (which tracks whether it is runnable) and catching panics.
pub(crate) fn poll_body<F: Future>(
    proc: &Process,
    waker: &std::task::Waker,
    f: std::pin::Pin<&mut F>,
    outer: &std::task::Waker,
) -> Poll<Result<F::Output, String>> {
    proc.task_waker.register(outer);
    proc.sched.store(SCHED_RUNNING, Ordering::Release);
    crate::runtime::router::clear_busy();
    let mut cx = std::task::Context::from_waker(waker);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.poll(&mut cx)));
    match res {
        Ok(Poll::Pending) => {
            if proc
                .sched
                .compare_exchange(
                    SCHED_RUNNING,
                    SCHED_IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // Woken while running: it stays runnable.
                proc.sched.store(SCHED_QUEUED, Ordering::Release);
            }
            Poll::Pending
        }
        Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
        Err(panic) => {
            let msg = if let Some(s) = panic.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = panic.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic payload".to_owned()
            };
            Poll::Ready(Err(msg))
        }
    }
}
