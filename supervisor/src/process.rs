//! A process as its function sees it: the methods of [`Ctx`] — receiving
//! (with selective receive), sending, calls, links, monitors, exit signals,
//! names and spawning.
//!
//! The record the process shares with every sender is in `record`: senders
//! push to its mailbox and, for signals, lock its state (links, monitors,
//! exit state). The task alone owns the `Ctx`, whose save queue holds
//! envelopes taken from the mailbox but not yet consumed (selective receive
//! leaves non-matching envelopes there, in order).
//!
//! `Ctx` itself is defined beside [`Runtime`] in `runtime.rs`: a `Ctx` holds
//! the runtime, and the runtime's function table holds starts that take a
//! `Ctx`, so the two definitions live in one file and this one, above it,
//! holds the behaviour.
//!
//! Lock discipline: a process's state lock is never held while taking
//! another process's lock or calling the remote router, so no two locks are
//! ever nested.

pub(crate) mod mailbox;
pub(crate) mod record;

pub use crate::runtime::Ctx;
pub use mailbox::defer_wakes;

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use pool_proto::{ExitReason, NodeId, Payload, Pid, Ref, TraceId};
use serde::Serialize;
use sync_wrapper::SyncWrapper;

use self::mailbox::Push;
use self::record::Process;
use crate::envelope::{CallRequest, Down, Envelope, Message};
use crate::error::{CallError, Error};
use crate::exit::IntoExit;
use crate::runtime::Runtime;
use crate::runtime::spawn::SpawnOpts;

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
    //
    // Every receive that awaits is an await point where a pending exit
    // signal takes effect: it checks the process's `exit_pending` flag after
    // taking envelopes from the mailbox and before handing one over, and if
    // the flag is up it returns `Pending` for good; the task then ends at once
    // (`spawn.rs`). An envelope drained from the mailbox was pushed before
    // the drain's lock, so a signal its sender sent earlier has raised the
    // flag by then: the signal is taken first, as OTP orders a sender's
    // signals and messages.

    /// Waits for the next envelope. Replies to calls that are no longer
    /// waiting (they timed out) are dropped here.
    pub async fn recv(&mut self) -> Envelope {
        // One poll function, so that the future has a single state: the
        // hot path of every local message.
        poll_fn(|cx| {
            loop {
                if self.proc.exit_is_pending() {
                    // The task ends at this `Pending` (`spawn.rs`).
                    return Poll::Pending;
                }
                if let Some(env) = self.pop_front() {
                    return Poll::Ready(env);
                }
                match self.proc.mailbox.poll_drain(self.save.get_mut(), cx) {
                    Poll::Ready(_) => self.note_saved(),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }

    /// The next envelope if one arrives within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Envelope> {
        let got = tokio::time::timeout(timeout, self.recv()).await.ok();
        // A timeout that fires in the same poll as a signal must not let
        // the process run on.
        if self.proc.exit_is_pending() {
            return dying().await;
        }
        got
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
    /// let rt = Runtime::standalone();
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
        let deadline = std::pin::pin!(timeout.map(tokio::time::sleep));
        let mut deadline = deadline.as_pin_mut();
        let mut scanned = 0;
        poll_fn(|cx| {
            loop {
                if self.proc.exit_is_pending() {
                    // The task ends at this `Pending` (`spawn.rs`).
                    return Poll::Pending;
                }
                while scanned < self.save.get_mut().len() {
                    if is_late_reply(&self.save.get_mut()[scanned], self.awaiting) {
                        self.save.get_mut().remove(scanned);
                        continue;
                    }
                    if matches(&self.save.get_mut()[scanned]) {
                        let env = self.save.get_mut().remove(scanned);
                        self.note_saved();
                        return Poll::Ready(env);
                    }
                    scanned += 1;
                }
                match self.proc.mailbox.poll_drain(self.save.get_mut(), cx) {
                    Poll::Ready(_) => self.note_saved(),
                    // Nothing new: give up if the time is up (checked after
                    // the mailbox, as `tokio::time::timeout` does).
                    Poll::Pending => {
                        let up = deadline
                            .as_mut()
                            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                        return if up { Poll::Ready(None) } else { Poll::Pending };
                    }
                }
            }
        })
        .await
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
        if let Some(node) = crate::remote::take_busy()
            && let Some(drained) = self.rt.remote_drained(node)
        {
            drained.await;
        }
        let mut yielded = false;
        poll_fn(|cx| {
            // Once an exit is pending it never returns: the task ends at
            // the `Pending` (see the receive notes above).
            if yielded && !self.proc.exit_is_pending() {
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

    /// Answers a call with `value`, borrowed: it is encoded here, at once,
    /// so the process keeps its value and needs no clone
    /// (`ctx.reply(&call, &state)`). The caller reads it with
    /// [`Message::take`] as before. A value that cannot be encoded is
    /// dropped with a logged warning (the caller times out), as a message
    /// that cannot leave its node is.
    ///
    /// To hand an owned value to a caller on this node without encoding
    /// it (the fast path of a hot loop), use [`reply_owned`](Self::reply_owned).
    pub fn reply<T: Serialize + ?Sized>(&self, call: &CallRequest, value: &T) {
        self.reply_to(call.from, call.mref, value);
    }

    /// Answers the call `mref` from `to` with `value`, borrowed and encoded
    /// at once (see [`reply`](Self::reply)).
    pub fn reply_to<T: Serialize + ?Sized>(&self, to: Pid, mref: Ref, value: &T) {
        match Payload::encode(value) {
            Ok(payload) => self.send_reply(to, mref, Message::from_payload(payload)),
            Err(e) => {
                tracing::warn!(%to, cause = %e, "reply dropped: its value cannot be encoded")
            }
        }
    }

    /// Answers a call with an owned value, moved: a caller on this node
    /// receives the value itself, nothing is encoded (as [`send`](Self::send));
    /// only a reply that leaves the node is encoded, on its way out.
    pub fn reply_owned<T: Serialize + Send + 'static>(&self, call: &CallRequest, value: T) {
        self.reply_owned_to(call.from, call.mref, value);
    }

    /// Answers the call `mref` from `to` with an owned value, moved (see
    /// [`reply_owned`](Self::reply_owned)).
    pub fn reply_owned_to<T: Serialize + Send + 'static>(&self, to: Pid, mref: Ref, value: T) {
        self.send_reply(to, mref, Message::new(value));
    }

    fn send_reply(&self, to: Pid, mref: Ref, msg: Message) {
        self.rt
            .send_reply(Some(self.pid()), to, mref, msg, self.trace());
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

    /// Monitors the process registered on this node as `name` (OTP's
    /// `monitor(process, Name)`). The name is resolved now: the monitor
    /// watches that process, and its `Down` carries `name` in
    /// [`Down::name`]. A name nobody holds gives a `Down` with `noproc` at
    /// once (its `pid` is the node's system pid: no process was watched).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use supervisor::{ExitReason, Runtime};
    /// let rt = Runtime::standalone();
    /// let (reason, name) = rt
    ///     .run(|mut ctx| async move {
    ///         let mref = ctx.monitor_name("nobody");
    ///         let d = ctx.wait_down(mref, None).await.unwrap();
    ///         Ok::<_, String>((d.reason.to_string(), d.name))
    ///     })
    ///     .await
    ///     .1
    ///     .unwrap()
    ///     .take::<(String, Option<String>)>()
    ///     .unwrap();
    /// assert_eq!(reason, ExitReason::NoProc.to_string());
    /// assert_eq!(name.as_deref(), Some("nobody"));
    /// # }
    /// ```
    pub fn monitor_name(&self, name: &str) -> Ref {
        self.rt.monitor_name(self.pid(), name)
    }

    /// Monitors node `node` (OTP's `monitor_node(Node, true)`): when the
    /// node goes down (its connection is lost, or the pool declares it
    /// down), this process gets one [`NodeDown`](crate::NodeDown) message per call. A node
    /// that is not up now gives it at once; this process's own node never
    /// goes down while it lives, so monitoring it does nothing.
    pub fn monitor_node(&self, node: NodeId) {
        self.rt.monitor_node(self.pid(), node);
    }

    /// Removes one node monitor on `node` set by
    /// [`monitor_node`](Self::monitor_node) (OTP's `monitor_node(Node,
    /// false)`); nothing if there is none. A notice already queued stays.
    pub fn demonitor_node(&self, node: NodeId) {
        self.rt.demonitor_node(self.pid(), node);
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

    /// Sends the exit signal `reason` to `to` (`exit(Pid, Reason)`). A
    /// signal to this process itself that makes it die takes effect at its
    /// next await point. (What the signal did is
    /// [`Runtime::exit_from`]'s answer.)
    pub fn exit(&self, to: Pid, reason: ExitReason) {
        self.rt.exit_from(self.pid(), to, reason);
    }

    /// Kills `to`: untrappable, it dies with reason `killed`, at its next
    /// await point if it is running its code (see
    /// [`ExitOutcome::Pending`](crate::ExitOutcome::Pending)).
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
        Fut::Output: IntoExit,
    {
        self.rt.spawn(f)
    }

    /// Spawns a process linked to this one (atomically: the link exists
    /// before the new process runs).
    pub fn spawn_link<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        self.rt.spawn_opts(SpawnOpts::new().link(self.pid()), f)
    }

    /// Spawns a process monitored by this one.
    pub fn spawn_monitor<F, Fut>(&self, f: F) -> (Pid, Ref)
    where
        F: FnOnce(Ctx) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
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
        Fut::Output: IntoExit,
    {
        self.rt.spawn_opts(opts, f)
    }

    /// Asks for the function `req.function` on `node` for this process
    /// and returns at once: OTP's `spawn_request`. The answer arrives as a
    /// [`SpawnAnswer`](crate::SpawnAnswer) message carrying the returned
    /// reference. See [`Runtime::spawn_request`](crate::Runtime::spawn_request).
    pub fn spawn_request(
        &self,
        node: NodeId,
        req: pool_proto::SpawnRequest,
        opts: crate::SpawnRequestOpts,
    ) -> Ref {
        self.rt.spawn_request(node, self.pid(), req, opts)
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

/// The await point of a process whose exit is pending: it never completes.
/// The body stops here, and the process's task ends as soon as the body
/// returns `Pending` with the exit pending (`runtime/spawn.rs`).
async fn dying<T>() -> T {
    std::future::pending().await
}

/// True for a reply that no call is waiting for: its call timed out (or the
/// caller was not calling at all), so it is dropped unseen.
fn is_late_reply(env: &Envelope, awaiting: Option<Ref>) -> bool {
    matches!(env, Envelope::Reply { mref, .. } if Some(*mref) != awaiting)
}
