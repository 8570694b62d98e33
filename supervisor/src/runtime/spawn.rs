//! Spawning: [`SpawnOpts`], the tokio task of a process ([`ProcessTask`]),
//! `spawn`, `spawn_opts`, `spawn_function`, and the helpers that run a short
//! process for a caller outside any process (`run`, `wait`, `call`).
//!
//! ```text
//! spawn_inner
//!   ├─ record in the table first (a dying parent or watcher must find it)
//!   ├─ link / monitor halves, name
//!   └─ tokio task: ProcessTask { body: f(Ctx), proc }
//!        polled through poll_body (run-queue state, panics caught)
//!        ends, panics or is aborted -> Runtime::finish (signals.rs)
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use pool_proto::{ExitReason, Pid, Ref, Sandbox, TraceId};
use serde::Serialize;
use tokio::sync::oneshot;

use super::{Ctx, Runtime};
use crate::envelope::Message;
use crate::error::{CallError, Error};
use crate::exit::{IntoExit, panic_text};
use crate::process::record::{
    Meta, MonitorIn, Process, SCHED_IDLE, SCHED_QUEUED, SCHED_RUNNING, coarse_now,
};

/// Options of a spawn.
#[derive(Debug, Default)]
pub struct SpawnOpts {
    pub(super) link: Option<Pid>,
    pub(super) monitor: Option<(Pid, Ref, bool)>,
    pub(super) trap_exit: bool,
    pub(super) name: Option<String>,
    pub(super) function: Option<Cow<'static, str>>,
    pub(super) owner: Option<String>,
    /// Held back until this completes (a spawn for another node, see
    /// [`SpawnGate`](crate::remote::SpawnGate)).
    pub(super) gate: Option<oneshot::Receiver<()>>,
    pub(super) trace: Option<TraceId>,
    pub(super) max_mailbox: Option<usize>,
    /// The limits and grants of a resolved (wasm) function; registered
    /// functions ignore it.
    pub(super) sandbox: Option<Sandbox>,
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
    /// default is the runtime's ([`RuntimeBuilder::max_mailbox`](crate::RuntimeBuilder::max_mailbox)).
    pub fn max_mailbox(mut self, limit: usize) -> Self {
        self.max_mailbox = Some(limit);
        self
    }

    /// The sandbox of a function resolved at spawn (a wasm module's fuel,
    /// memory cap, directories and environment: see
    /// [`Resolver`](crate::Resolver)); a registered (native) function
    /// ignores it.
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// The trace id the process works for (see [`Ctx::trace`]).
    pub fn trace(mut self, trace: Option<TraceId>) -> Self {
        self.trace = trace;
        self
    }
}

pin_project! {
    /// The tokio task of one process. It owns the function's future; the
    /// process ends when the future does, panics, or the task is aborted by
    /// a signal, and in all three cases the exit sequence runs exactly once
    /// (here on completion, in the drop otherwise). (The fields carry `//`
    /// comments: `pin_project!` takes no other field attribute.)
    struct ProcessTask<F> {
        // The function's future; `None` once it ended, so that it is
        // dropped (its state freed) before anyone hears of the exit.
        #[pin]
        body: Option<F>,
        // The process's record, shared with the table and every sender.
        proc: Arc<Process>,
        // The waker the body is polled with (marks the process runnable).
        waker: Waker,
        // Taken by whichever of completion and drop comes first, to run
        // the exit sequence.
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
        // A signal decided that the process dies: it ends here, before its
        // code runs again. Checked before the poll (the task was woken or
        // first run after the signal) and after it (the body stopped at an
        // await point: the runtime's own await points stop for ever once
        // the exit is pending, so no further envelope is handed over).
        if this.proc.exit_is_pending() {
            return end_killed(this.body, this.proc, this.rt);
        }
        match poll_body(this.proc, this.waker, body, cx.waker()) {
            Poll::Pending if this.proc.exit_is_pending() => {
                end_killed(this.body, this.proc, this.rt)
            }
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

/// Ends a process whose exit a signal left pending, at an await point of
/// its body: the body's state is dropped first, then the exit sequence
/// runs with the signal's reason. Cold and out of line: it keeps the poll
/// of every live process small.
#[cold]
#[inline(never)]
fn end_killed<F>(
    mut body: Pin<&mut Option<F>>,
    proc: &Arc<Process>,
    rt: &mut Option<Runtime>,
) -> Poll<()> {
    body.set(None);
    if let Some(rt) = rt.take() {
        rt.finish(proc, None);
    }
    Poll::Ready(())
}

/// Polls the future `f` as the body of `proc`: with the process's own
/// waker (which tracks whether it is runnable) and catching panics.
fn poll_body<F: Future>(
    proc: &Process,
    waker: &Waker,
    f: Pin<&mut F>,
    outer: &Waker,
) -> Poll<Result<F::Output, String>> {
    proc.task_waker.register(outer);
    proc.sched.store(SCHED_RUNNING, Ordering::Release);
    crate::remote::clear_busy();
    let mut cx = Context::from_waker(waker);
    // Sends to other nodes made during the poll leave together when it
    // ends (see `remote::batch_sends`).
    let res = crate::remote::batch_sends(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.poll(&mut cx)))
    });
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
        // `as_ref`: the payload inside the box, not the box.
        Err(panic) => Poll::Ready(Err(panic_text(panic.as_ref()))),
    }
}

impl Runtime {
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
            started: coarse_now(),
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
        // A signal that arrived before the abort handle was stored could
        // not abort the task: it left its reason, so abort now.
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

    /// Spawns the function `name` with `args`: a registered one, or else
    /// one the runtime's [`Resolver`](crate::Resolver) resolves (with the
    /// options' sandbox).
    pub fn spawn_function(
        &self,
        name: &str,
        args: serde_json::Value,
        opts: SpawnOpts,
    ) -> Result<Pid, Error> {
        let functions = self.functions();
        let start = match self.resolver() {
            Some(r) if !functions.contains(name) && r.resolves(name) => {
                r.prepare(name, args, opts.sandbox.as_ref())?
            }
            _ => functions.prepare(name, args)?,
        };
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
}
