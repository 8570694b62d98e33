//! Helpers shared by the supervisor crate's integration tests:
//!
//! - [`with_ctx`]: run a test body inside a process (so it can link,
//!   monitor, trap exits and receive), with its panic reported as such;
//! - [`Log`]: an event log that children write to, so a test can assert an
//!   exact ordering such as `stopped C, stopped A, started A, ...`;
//! - [`worker`] / [`plain`] (a custom start that logs `started <id>` in
//!   the supervisor itself), [`closure`] (a `Child::worker` that logs when
//!   it first runs), [`Mode`] and [`Cmd`]: test workers that log their
//!   start and their stop and obey commands (exit with a reason, panic);
//! - [`scripted`]: a custom-start child whose successive start attempts
//!   follow a script (start, ignore, fail, panic, block);
//! - [`end_child`] and [`watch`]: make a child end and wait until its exit
//!   reached its supervisor; watch a process's end and its time;
//! - [`wait_until`]: poll a condition until a deadline instead of sleeping;
//! - [`cluster`]: two runtimes joined by an in-memory router;
//! - small accessors over `which_children`.
//!
//! Nothing here sleeps to synchronise: waits end on a message, a monitor's
//! `Down`, or a condition checked against a deadline.

#![allow(dead_code, clippy::mod_module_files)]

pub(crate) mod cluster;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures_util::FutureExt;
use pool_proto::{ExitReason, NodeId, Pid};
use serde::{Deserialize, Serialize};
use supervisor::supervisor::{self as sup, Child, ChildInfo, ChildPid, Started};
use supervisor::{Ctx, Envelope, Runtime};
use tokio::sync::{Notify, oneshot};

/// Milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A fresh node.
pub(crate) fn node() -> Runtime {
    Runtime::new(NodeId::random())
}

/// How long a test waits for something that should happen at once before
/// it fails (virtual time under `start_paused`).
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Panics whose message starts with this are part of a test (a child told
/// to panic) and are not printed.
pub(crate) const DELIBERATE: &str = "deliberate";

/// Silences the default panic output for deliberate panics (messages
/// starting with [`DELIBERATE`]); every other panic prints as usual.
pub(crate) fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.starts_with(DELIBERATE) {
                default(info);
            }
        }));
    });
}

// ----- running a test body inside a process ------------------------------------

/// Runs `f` as the body of a fresh process of `rt` and returns its value.
/// If the body panics (a failed assertion) or is killed, the test fails with
/// the process's exit reason, which carries the panic message.
pub(crate) async fn with_ctx<T, F, Fut>(rt: &Runtime, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (value_tx, value_rx) = oneshot::channel();
    let (reason_tx, reason_rx) = oneshot::channel();
    rt.spawn(move |outer| async move {
        let (_pid, mref) = outer.spawn_monitor(move |ctx| async move {
            let v = f(ctx).await;
            let _ = value_tx.send(v);
        });
        let mut outer = outer;
        if let Some(d) = outer.wait_down(mref, None).await {
            let _ = reason_tx.send(d.reason);
        }
    });
    match value_rx.await {
        Ok(v) => v,
        Err(_) => {
            let reason = reason_rx
                .await
                .map_or_else(|_| "unknown".to_owned(), |r| r.to_string());
            panic!("the test process died: {reason}");
        }
    }
}

// ----- waiting ---------------------------------------------------------------

/// Polls `cond` every millisecond until it holds; fails the test with `what`
/// if it does not within `deadline`.
pub(crate) async fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(ms(1)).await;
    }
}

/// Like [`wait_until`] with an async condition.
pub(crate) async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(ms(1)).await;
    }
}

/// Waits for the `Down` of `mref` (at most [`DEADLINE`]) and returns its
/// reason.
pub(crate) async fn down_reason(ctx: &mut Ctx, mref: supervisor::Ref) -> ExitReason {
    ctx.wait_down(mref, Some(DEADLINE))
        .await
        .expect("no Down before the deadline")
        .reason
}

/// Monitors `pid` and waits for it to end; returns its exit reason.
pub(crate) async fn await_exit(ctx: &mut Ctx, pid: Pid) -> ExitReason {
    let mref = ctx.monitor(pid);
    down_reason(ctx, mref).await
}

/// A monitor held by a helper process: made when [`watch`] returns, it
/// reports the watched process's exit reason and the (tokio) time it came.
#[derive(Debug)]
pub(crate) struct Watch {
    rx: oneshot::Receiver<(ExitReason, tokio::time::Instant)>,
}

/// Monitors `pid` from a helper process; the monitor exists when this
/// returns.
pub(crate) async fn watch(rt: &Runtime, pid: Pid) -> Watch {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = oneshot::channel();
    rt.spawn(move |mut ctx| async move {
        let mref = ctx.monitor(pid);
        let _ = ready_tx.send(());
        if let Some(d) = ctx.wait_down(mref, None).await {
            let _ = tx.send((d.reason, tokio::time::Instant::now()));
        }
    });
    ready_rx.await.expect("the watcher started");
    Watch { rx }
}

impl Watch {
    /// Waits (at most [`DEADLINE`]) for the exit; its reason and time.
    pub(crate) async fn exit(self) -> (ExitReason, tokio::time::Instant) {
        self.exit_within(DEADLINE).await
    }

    /// Waits at most `deadline` for the exit; its reason and time.
    pub(crate) async fn exit_within(
        self,
        deadline: Duration,
    ) -> (ExitReason, tokio::time::Instant) {
        tokio::time::timeout(deadline, self.rx)
            .await
            .expect("the watched process did not end before the deadline")
            .expect("the watcher died")
    }

    /// Waits (at most [`DEADLINE`]) for the exit; its reason.
    pub(crate) async fn reason(self) -> ExitReason {
        self.exit().await.0
    }
}

/// Waits for the next `Exit` envelope (trapped exit signal), leaving other
/// envelopes queued.
pub(crate) async fn next_exit(ctx: &mut Ctx) -> (Pid, ExitReason) {
    match ctx
        .recv_match(|e| matches!(e, Envelope::Exit { .. }), Some(DEADLINE))
        .await
    {
        Some(Envelope::Exit { from, reason }) => (from, reason),
        other => panic!("expected an exit signal, got {other:?}"),
    }
}

// ----- the event log ---------------------------------------------------------

/// An ordered log of events, written by children (`started A`, `stopped A`)
/// and by tests.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn new() -> Self {
        Log::default()
    }

    pub(crate) fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Takes every event so far, leaving the log empty.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// How many events equal `event`.
    pub(crate) fn count(&self, event: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Logs `stopped <id>` when dropped while armed: a child's future is dropped
/// when it ends or is killed, so this marks every end except the crashes a
/// test asked for (which disarm it first).
struct StopGuard {
    log: Log,
    id: String,
    armed: bool,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        if self.armed {
            self.log.push(format!("stopped {}", self.id));
        }
    }
}

// ----- children --------------------------------------------------------------

/// A command a test worker obeys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Cmd {
    /// End with this reason (a crash when it is not normal).
    Exit(ExitReason),
    /// Panic with this message (prefixed with [`DELIBERATE`]).
    Panic(String),
}

/// How a test makes a worker end.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Why {
    /// It returns this reason by itself.
    Exit(ExitReason),
    /// It panics (reason `panic: ...`).
    Panic,
    /// It is killed with `exit(Pid, kill)` (reason `killed`).
    Killed,
}

impl Why {
    /// The exit reason this produces.
    pub(crate) fn reason(&self) -> ExitReason {
        match self {
            Why::Exit(r) => r.clone(),
            Why::Panic => ExitReason::Panic(format!("{DELIBERATE}: told to panic")),
            Why::Killed => ExitReason::Killed,
        }
    }
}

/// Makes worker `pid` end as `why` says and waits until it has ended; by
/// then its exit signal is in its supervisor's mailbox, so any later call
/// to the supervisor is answered after the supervisor has handled the exit.
/// Returns the observed exit reason (checked against `why`).
pub(crate) async fn end_child(rt: &Runtime, pid: Pid, why: Why) -> ExitReason {
    with_ctx(rt, move |mut ctx| async move {
        let mref = ctx.monitor(pid);
        match &why {
            Why::Exit(r) => ctx.send(pid, Cmd::Exit(r.clone())),
            Why::Panic => ctx.send(pid, Cmd::Panic("told to panic".into())),
            Why::Killed => ctx.kill(pid),
        }
        let got = down_reason(&mut ctx, mref).await;
        assert_eq!(got, why.reason(), "the child ended as told");
        got
    })
    .await
}

/// Crashes worker `pid` with [`boom`] and waits until it has ended.
pub(crate) async fn crash_child(rt: &Runtime, pid: Pid) {
    end_child(rt, pid, Why::Exit(boom())).await;
}

/// An error reason for crashes.
pub(crate) fn boom() -> ExitReason {
    ExitReason::Error("boom".into())
}

/// How a worker takes exit signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Does not trap exits: any non-normal signal kills it.
    Plain,
    /// Traps exits and ends at once with the signal's reason.
    Trap,
    /// Traps exits and ignores them: only `kill` stops it.
    IgnoreShutdown,
    /// Traps exits and ends with the signal's reason after this long.
    SlowStop(Duration),
}

/// The body of a test worker `id`: logs `started <id>` when it first runs,
/// then as [`run_body`].
pub(crate) async fn body(ctx: Ctx, log: Log, id: String, mode: Mode) -> ExitReason {
    log.push(format!("started {id}"));
    let guard = StopGuard {
        log,
        id,
        armed: true,
    };
    run_body(ctx, guard, mode).await
}

/// Spawns a worker linked to `ctx` (a supervisor, inside a custom start
/// function): logs `started <id>` at once, in the supervisor, so the log
/// shows the supervisor's start order even for a child stopped before it
/// ever ran; then the worker runs [`run_body`].
pub(crate) fn spawn_eager(ctx: &Ctx, log: &Log, id: &str, mode: Mode) -> Pid {
    log.push(format!("started {id}"));
    let guard = StopGuard {
        log: log.clone(),
        id: id.to_owned(),
        armed: true,
    };
    // The guard lives in the closure from now on: dropping the process,
    // even before its first poll, logs its stop.
    ctx.spawn_link(move |c| run_body(c, guard, mode))
}

/// A test worker: obeys [`Cmd`]s, answers any call with its pid, takes exit
/// signals as `mode` says; its guard logs `stopped <id>` when it ends other
/// than by a [`Cmd`].
async fn run_body(mut ctx: Ctx, mut guard: StopGuard, mode: Mode) -> ExitReason {
    if mode != Mode::Plain {
        ctx.trap_exit(true);
    }
    loop {
        match ctx.recv().await {
            Envelope::Message { msg, .. } => match msg.take::<Cmd>() {
                Ok(Cmd::Exit(reason)) => {
                    guard.armed = false;
                    return reason;
                }
                Ok(Cmd::Panic(text)) => {
                    guard.armed = false;
                    panic!("{DELIBERATE}: {text}");
                }
                Err(_) => {}
            },
            Envelope::Call(call) => ctx.reply(&call, &ctx.pid()),
            Envelope::Exit { reason, .. } => match mode {
                Mode::Plain | Mode::Trap => return reason,
                Mode::IgnoreShutdown => guard.log.push(format!("ignored {}", guard.id)),
                Mode::SlowStop(d) => {
                    tokio::time::sleep(d).await;
                    return reason;
                }
            },
            Envelope::Down(_) | Envelope::Reply { .. } => {}
        }
    }
}

/// A worker child written as a closure ([`Child::worker`]) running
/// [`body`]: it logs `started <id>` when it first runs, which is after the
/// supervisor spawned it.
pub(crate) fn closure(log: &Log, id: &str, mode: Mode) -> Child {
    let log = log.clone();
    let name = id.to_owned();
    Child::worker(id, move |ctx| body(ctx, log.clone(), name.clone(), mode))
}

/// A test worker child started by a custom start function with
/// [`spawn_eager`], so the log shows exactly the supervisor's start and stop
/// order.
pub(crate) fn worker(log: &Log, id: &str, mode: Mode) -> Child {
    scripted(log, id, mode, script([], Attempt::Start))
}

/// A [`worker`] that does not trap exits.
pub(crate) fn plain(log: &Log, id: &str) -> Child {
    worker(log, id, Mode::Plain)
}

/// What one start attempt of a [`scripted`] child does.
#[derive(Clone, Debug)]
pub(crate) enum Attempt {
    /// Start a [`body`] worker.
    Start,
    /// Return `ignore`.
    Ignore,
    /// Fail with this reason.
    Fail(ExitReason),
    /// Panic in the start function.
    Panic,
    /// Wait until the gate is opened, then fail with this reason.
    Block(Arc<Notify>, ExitReason),
}

/// The script of a [`scripted`] child: the attempts in order; when the
/// script runs out, `then` is repeated.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) steps: VecDeque<Attempt>,
    pub(crate) then: Attempt,
}

/// A child with a custom start function that follows `script`, one step per
/// start attempt (starting with [`spawn_eager`]), logging `start-failed <id>` / `ignored-start <id>` for the
/// attempts that do not start a worker.
pub(crate) fn scripted(log: &Log, id: &str, mode: Mode, script: Script) -> Child {
    let log = log.clone();
    let name = id.to_owned();
    let script = Arc::new(Mutex::new(script));
    Child::custom(id, move |ctx: &Ctx, _args| {
        let log = log.clone();
        let name = name.clone();
        let step = {
            let mut s = script.lock().unwrap();
            let then = s.then.clone();
            s.steps.pop_front().unwrap_or(then)
        };
        async move {
            match step {
                Attempt::Start => Ok(Started::Pid(spawn_eager(ctx, &log, &name, mode))),
                Attempt::Ignore => {
                    log.push(format!("ignored-start {name}"));
                    Ok(Started::Ignore)
                }
                Attempt::Fail(reason) => {
                    log.push(format!("start-failed {name}"));
                    Err(reason)
                }
                Attempt::Panic => {
                    log.push(format!("start-failed {name}"));
                    panic!("{DELIBERATE}: start of {name}");
                }
                Attempt::Block(gate, reason) => {
                    log.push(format!("start-blocked {name}"));
                    gate.notified().await;
                    log.push(format!("start-failed {name}"));
                    Err(reason)
                }
            }
        }
        .boxed()
    })
}

/// A script: these steps, then `then` for ever.
pub(crate) fn script(steps: impl IntoIterator<Item = Attempt>, then: Attempt) -> Script {
    Script {
        steps: steps.into_iter().collect(),
        then,
    }
}

// ----- looking at a supervisor -------------------------------------------------

/// `which_children`, as (id, pid) pairs, newest first.
pub(crate) async fn children(rt: &Runtime, sup: Pid) -> Vec<(Option<String>, ChildPid)> {
    sup::which_children(rt, sup)
        .await
        .expect("which_children")
        .into_iter()
        .map(|c: ChildInfo| (c.id, c.pid))
        .collect()
}

/// The pid of child `id`, if it runs.
pub(crate) async fn pid_of(rt: &Runtime, sup: Pid, id: &str) -> Option<Pid> {
    sup::which_children(rt, sup)
        .await
        .expect("which_children")
        .into_iter()
        .find(|c| c.id.as_deref() == Some(id))
        .and_then(|c| match c.pid {
            ChildPid::Pid(p) => Some(p),
            _ => None,
        })
}

/// The pid of child `id`, which must be running.
pub(crate) async fn running(rt: &Runtime, sup: Pid, id: &str) -> Pid {
    pid_of(rt, sup, id)
        .await
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// The pid state of child `id` (`None` if it has no spec).
pub(crate) async fn state_of(rt: &Runtime, sup: Pid, id: &str) -> Option<ChildPid> {
    sup::which_children(rt, sup)
        .await
        .expect("which_children")
        .into_iter()
        .find(|c| c.id.as_deref() == Some(id))
        .map(|c| c.pid)
}

/// The supervisor's refusal in a dynamic-API result.
pub(crate) fn sup_err<T: std::fmt::Debug>(r: Result<T, supervisor::Error>) -> sup::SupError {
    match r {
        Err(supervisor::Error::Supervisor(e)) => e,
        other => panic!("expected a supervisor error, got {other:?}"),
    }
}
