//! The supervisor process: starts its children in order, reacts to their
//! exits as its strategy says, stops them in reverse order, and serves the
//! dynamic API.
//!
//! ```text
//! parent (or the caller of `start`)
//!   └─ supervisor process (traps exits)
//!        ├─ child 0   linked; its exit arrives as an Exit message
//!        ├─ child 1   may live on another node (placement); same link
//!        └─ nested supervisor, same shape
//! ```
//!
//! The supervisor owns its children through links alone: each child is
//! linked to it, so a supervisor killed without a shutdown (`kill`) takes
//! its children with it by their links (OTP.md §1.8, last paragraph). A
//! supervisor that stops by itself stops its children first.
//!
//! Every decision comes from the pure modules ([`strategy`](super::strategy),
//! [`intensity`](super::intensity)); these files only apply them:
//!
//! - this file: `run` (trap exits, take its name, validate, init, then
//!   serve), the loop (`serve`), a child's exit (`child_exited`) and
//!   restarts (`restart`, `retry`, `apply_plan`);
//! - `start.rs`: init and where and how one child starts;
//! - `pending.rs`: children whose start failed for a reason that may pass
//!   (`pending.*`): marking them, and their retries on backoff or when the
//!   pool's membership changes;
//! - `stop.rs`: OTP's `shutdown/1` and the stop of every child;
//! - `dynamic.rs`: the calls (`which_children`, `start_child`, ...).
//!
//! The mailbox is not served while a restart or a shutdown runs (as OTP),
//! except between the attempts of a failing restart: a failed start marks
//! the child `restarting` and the retry is a message the supervisor sends
//! itself, so calls queued before it are answered first (OTP.md §1.7).
//! Pending children are retried from the loop too, when their backoff is
//! due or the membership changes, between two envelopes.

mod dynamic;
mod pending;
mod start;
mod stop;

use std::hash::RandomState;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::tree::validate_supervisor;
use pool_proto::{ChildSpecData, ExitReason, NodeId, Pid, Strategy, SupervisorSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::intensity::{RestartIntensity, gave_up};
use super::pending::StartFailure;
use super::spec::{Spec, Started};
use super::strategy::{
    ChildState, ChildView, ExitAction, RestartPlan, on_child_exit, on_start_ignored, restart_plan,
    retry_plan,
};
use crate::envelope::{Envelope, Message};
use crate::error::StartError;
use crate::runtime::{Ctx, RuntimeEvent};

/// Arguments of [`SUPERVISOR_FUNCTION`](pool_proto::SUPERVISOR_FUNCTION):
/// what a supervisor sends to another node to start a nested supervisor
/// there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorArgs {
    /// The supervisor's spec.
    pub spec: SupervisorSpec,
    /// Its parent (an exit signal from it stops the supervisor).
    pub parent: Option<Pid>,
    /// Its id path, for logs and listings.
    pub path: String,
}

/// The supervisor asks itself to retry a failed restart (OTP casts itself
/// `{try_again_restart, Child}`).
#[derive(Debug)]
struct Retry {
    /// The child to retry, by its stable handle.
    uid: u64,
}

/// One child as the supervisor tracks it.
#[derive(Debug, Clone)]
struct ChildRec {
    /// Stable handle (indices shift when specs are removed).
    uid: u64,
    /// Its spec (for simple_one_for_one: the template).
    data: ChildSpecData,
    /// Dynamic arguments (simple_one_for_one).
    extra: serde_json::Value,
    /// Its process, if it runs.
    pid: Option<Pid>,
    /// The process it last ran as, once that one ended: the `old` pid of
    /// the restart event that replaces it.
    last_pid: Option<Pid>,
    /// Running, restarting or stopped, as the strategy sees it.
    state: ChildState,
    /// Restarts of this child.
    restarts: u64,
    /// The node its last process was lost with (`noconnection`): the
    /// replacement is placed elsewhere.
    lost_node: Option<NodeId>,
    /// While it is `Pending`: why, and when it is retried.
    pending: Option<PendingStart>,
    /// Why it stopped for good, when `inspect` should show it `failed`: a
    /// nested supervisor that gave up and is kept stopped.
    failed: Option<String>,
    /// The canonical name of its function, once resolved at its first
    /// start (`start.rs`): every later start runs this one.
    function: PinnedFunction,
}

/// A child's function as resolved by the placer at its first start
/// ([`Placer::resolve_function`](crate::remote::Placer::resolve_function)):
/// a named wasm form (`app.wasm:count`) pinned to the module hash it
/// named then, so that restarts — here or on another node — run the same
/// code even after another module is pushed under that name. Empty until
/// the first resolution succeeds (a failed one is tried again at the next
/// start). Shared by the clones of its record: a start works on a clone,
/// and what it pins lands in the record kept.
#[derive(Debug, Clone, Default)]
struct PinnedFunction(std::sync::Arc<std::sync::OnceLock<String>>);

impl ChildRec {
    /// What the pure decisions need to know of this child.
    fn view(&self) -> ChildView {
        ChildView::of(&self.data, self.state)
    }

    fn is_supervisor(&self) -> bool {
        self.data.supervisor.is_some()
    }

    /// The child now runs as `pid`: whatever it waited for or failed with
    /// is over.
    fn set_running(&mut self, pid: Pid) {
        self.pid = Some(pid);
        self.state = ChildState::Running;
        self.pending = None;
        self.failed = None;
    }

    /// Whether `pid` names this child: its process, or (OTP's
    /// `{restarting, OldPid}`) the process it ran as while its restart is
    /// being retried or waits pending.
    fn answers_to(&self, pid: Pid) -> bool {
        self.pid == Some(pid)
            || (self.pid.is_none()
                && matches!(self.state, ChildState::Restarting | ChildState::Pending)
                && self.last_pid == Some(pid))
    }
}

/// Why a pending child waits, and when it is tried again.
#[derive(Debug, Clone)]
struct PendingStart {
    /// Why, in words: the transient failure, or the earlier sibling it
    /// waits for. Shown by `inspect`.
    reason: String,
    /// Failed attempts so far (the backoff's exponent).
    attempts: u32,
    /// When it is retried; `None` while it waits for an earlier sibling
    /// (one_for_all, rest_for_one), which starts it when it starts itself.
    due: Option<Instant>,
    /// It replaces a process that ran (a restart): its start counts as one
    /// restart of the child and is published as `ChildRestarted`.
    restart: bool,
}

/// A running supervisor's state. It lives in the supervisor process's
/// future and dies with it; it owns no task, only the records of its
/// children (whose processes it reaches by pid) and one receiver.
struct Server {
    /// The flags and the children's specs, with the closures of children
    /// written in code.
    spec: Spec,
    /// The id path (`root/sub`), for logs, listings and children's owners.
    path: String,
    /// The process whose exit signal stops this supervisor (OTP's parent).
    parent: Option<Pid>,
    /// The children, in start order (OTP keeps them newest first; the
    /// decisions reverse where OTP's order is "reverse start order").
    children: Vec<ChildRec>,
    /// The restart window (OTP.md §1.6), shared by all children.
    intensity: RestartIntensity,
    /// The last [`ChildRec::uid`] given out.
    next_uid: u64,
    /// Fires when the pool's membership changes (the placer's
    /// [`NodeChanges`](crate::remote::NodeChanges)): pending children are
    /// then retried at once. `None` without a placer. A receiver only:
    /// dropped with the supervisor, nothing to stop.
    changes: Option<watch::Receiver<u64>>,
    /// Seeds the jitter of pending children's backoff (random per
    /// supervisor, so supervisors that lost the same node spread out).
    jitter: RandomState,
}

/// Runs a supervisor in the calling process until it stops; returns its
/// exit reason. `ack` receives the result of init.
///
/// Boxed because supervisors start supervisors: the future type is
/// recursive.
pub(crate) fn run(
    mut ctx: Ctx,
    spec: Spec,
    parent: Option<Pid>,
    path: String,
    name: Option<String>,
    ack: Option<oneshot::Sender<Result<(), StartError>>>,
) -> BoxFuture<'static, ExitReason> {
    async move {
        // OTP.md §1.3: the supervisor traps exits before anything else, so
        // that a child dying during init is a message, not its own death.
        ctx.trap_exit(true);
        // OTP's `{local, Name}`: the name is taken before anything starts
        // (proc_lib registers it before `init`), atomically, so of two
        // starts under one name exactly one runs; the other answers
        // `{already_started, Pid}` and exits `normal`.
        if let Some(name) = name
            && let Err(e) = ctx.register(&name)
        {
            let (err, reason) = match e {
                crate::error::Error::NameTaken { holder, .. } => {
                    (StartError::AlreadyStarted(holder), ExitReason::Normal)
                }
                e => (
                    StartError::Name(e.to_string()),
                    ExitReason::Error(e.to_string()),
                ),
            };
            if let Some(ack) = ack {
                let _ = ack.send(Err(err));
            }
            return reason;
        }
        // A spec that cannot be started fails the start and no child runs
        // (`spec.validation`); the caller gets the error, not a crash.
        if let Err(e) = validate_supervisor(&spec.data) {
            let reason = ExitReason::Error(e.to_string());
            if let Some(ack) = ack {
                let _ = ack.send(Err(StartError::Spec(e.to_string())));
            }
            return reason;
        }
        let changes = ctx
            .runtime()
            .placer()
            .and_then(|p| p.node_changes())
            .map(|c| c.subscribe());
        let mut server = Server {
            intensity: RestartIntensity::from_spec(&spec.data),
            spec,
            path,
            parent,
            children: Vec::new(),
            next_uid: 0,
            changes,
            jitter: RandomState::new(),
        };
        // Start the children in order; the first failure stops those
        // already started and fails the start (`start.rs`, OTP.md §1.3).
        // A child that cannot start *now* (transient) does not fail it: it
        // waits pending (`pending.rs`).
        // The supervisor then exits with the reason `start_link` returns,
        // so a linked caller that traps exits sees the same thing.
        if let Err(e) = server.init(&mut ctx).await {
            let reason = ExitReason::ShutdownWith(e.to_string());
            if let Some(ack) = ack {
                let _ = ack.send(Err(e));
            }
            return reason;
        }
        // `start` returns only now: every child is running or pending.
        if let Some(ack) = ack {
            let _ = ack.send(Ok(()));
        }
        server.serve(&mut ctx).await
    }
    .boxed()
}

/// What woke the supervisor's loop.
enum Wake {
    /// An envelope from the mailbox.
    Envelope(Envelope),
    /// Pending children are due: those whose backoff is up, or `all` of
    /// them when the pool's membership changed.
    PendingDue {
        /// Retry every pending child now, whatever its backoff says.
        all: bool,
    },
}

/// The clock of the restart window: tokio's, so that tests on paused time
/// measure restarts in virtual time.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Server {
    fn strategy(&self) -> Strategy {
        self.spec.data.strategy
    }

    /// Every child as the pure decisions see it, in start order.
    fn views(&self) -> Vec<ChildView> {
        self.children.iter().map(ChildRec::view).collect()
    }

    fn index_of_uid(&self, uid: u64) -> Option<usize> {
        self.children.iter().position(|c| c.uid == uid)
    }

    fn index_of_pid(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.pid == Some(pid))
    }

    /// The child `pid` names, counting the old pid of a child whose restart
    /// is pending or being retried (simple_one_for_one's calls by pid,
    /// OTP's `{restarting, OldPid}`).
    fn index_answering_to(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.answers_to(pid))
    }

    fn index_of_id(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.data.id == id)
    }

    /// A record for a child about to start (not yet in `children`).
    fn new_rec(&mut self, data: ChildSpecData, extra: serde_json::Value) -> ChildRec {
        self.next_uid += 1;
        ChildRec {
            uid: self.next_uid,
            data,
            extra,
            pid: None,
            last_pid: None,
            state: ChildState::Stopped,
            restarts: 0,
            lost_node: None,
            pending: None,
            failed: None,
            function: PinnedFunction::default(),
        }
    }

    /// What a child's process belongs to, for listings: `path/id`, or
    /// `path/*` for the anonymous children of simple_one_for_one.
    fn owner(&self, rec: &ChildRec) -> String {
        if rec.data.id.is_empty() {
            format!("{}/*", self.path)
        } else {
            format!("{}/{}", self.path, rec.data.id)
        }
    }

    // ----- the loop -----------------------------------------------------------

    /// Serves the mailbox until the supervisor stops; returns its exit
    /// reason. Each envelope is handled to the end (a restart, a shutdown,
    /// a call) before the next is taken.
    async fn serve(&mut self, ctx: &mut Ctx) -> ExitReason {
        let system = ctx.runtime().system_pid();
        loop {
            // Between two envelopes: pending children whose backoff is due,
            // or all of them when the membership changed (`pending.rs`).
            let env = match self.wait(ctx).await {
                Wake::Envelope(env) => env,
                Wake::PendingDue { all } => {
                    if let Some(stop) = self.retry_pending(ctx, all).await {
                        return stop;
                    }
                    continue;
                }
            };
            match env {
                Envelope::Exit { from, reason } => {
                    // An exit signal from the parent means "stop" (OTP:
                    // the supervisor terminates with the parent's reason
                    // after stopping its children, OTP.md §1.8). The node
                    // itself sends one when it shuts down.
                    if Some(from) == self.parent || from == system {
                        self.terminate_all(ctx).await;
                        return reason;
                    }
                    // Otherwise it is a child that exited by itself. An
                    // exit from a pid that is no longer a child (already
                    // replaced, or unlinked by a stop) is stale: ignored.
                    if let Some(idx) = self.index_of_pid(from)
                        && let Some(stop) = self.child_exited(ctx, idx, reason).await
                    {
                        return stop;
                    }
                }
                Envelope::Call(call) => {
                    // The dynamic API (`dynamic.rs`); `stop` ends the loop.
                    if let Some(stop) = self.handle_call(ctx, *call).await {
                        return stop;
                    }
                }
                Envelope::Message { msg, .. } => {
                    // The only plain message a supervisor acts on is its
                    // own retry of a failed restart (OTP.md §1.7).
                    if let Ok(Retry { uid }) = msg.downcast::<Retry>()
                        && let Some(stop) = self.retry(ctx, uid).await
                    {
                        return stop;
                    }
                }
                // Monitors are only used inside a stop, which waits for its
                // own `Down`; replies only inside a call. Anything left
                // over is late.
                Envelope::Down(_) | Envelope::Reply { .. } => {}
            }
        }
    }

    /// A child exited by itself (OTP.md §1.4): restart it, keep its spec
    /// stopped, or remove it, as its restart type and the reason say; then
    /// auto-shutdown if a significant child's exit calls for it (§1.9).
    /// Returns the supervisor's exit reason if it stops.
    async fn child_exited(
        &mut self,
        ctx: &mut Ctx,
        idx: usize,
        reason: ExitReason,
    ) -> Option<ExitReason> {
        let local = ctx.runtime().node();
        {
            // The child has no process any more. If it was lost with its
            // node (`noconnection`), remember the node so the replacement
            // is placed elsewhere.
            let rec = &mut self.children[idx];
            let old = rec.pid.take();
            if old.is_some() {
                rec.last_pid = old;
            }
            rec.state = ChildState::Stopped;
            rec.lost_node = old
                .filter(|p| reason == ExitReason::NoConnection && p.node() != local)
                .map(Pid::node);
            // A nested supervisor that gave up shows `failed` while its
            // spec is kept (a transient one); a restart clears it.
            rec.failed = gave_up(&reason).then(|| reason.to_string());
        }
        // The decision is pure (strategy.rs): restart type × reason, and
        // whether the exit is a trigger for auto_shutdown.
        let d = on_child_exit(
            self.strategy(),
            self.spec.data.auto_shutdown,
            &self.views(),
            idx,
            &reason,
        );
        let rec = &self.children[idx];
        // OTP logs a `child_terminated` error report for every exit that
        // is not a clean one for this child's restart type.
        if d.report {
            tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "child_terminated");
        }
        match d.action {
            ExitAction::Restart => return self.restart(ctx, idx, reason).await,
            ExitAction::Remove => {
                // A temporary child, or a simple_one_for_one child that
                // will not come back: its spec goes with it.
                self.children.remove(idx);
            }
            ExitAction::KeepStopped => {}
        }
        // A significant child that ended for good stops the supervisor
        // (and with it, its remaining children) with `shutdown`.
        if d.auto_shutdown {
            tracing::info!(supervisor = %self.path, "significant child exited: auto_shutdown");
            self.terminate_all(ctx).await;
            return Some(ExitReason::Shutdown);
        }
        None
    }

    /// Counts a restart in the window (OTP.md §1.6); if the supervisor
    /// gives up, stops everything and returns its exit reason.
    async fn count_restart(&mut self, ctx: &mut Ctx) -> Option<ExitReason> {
        // The check comes before the restart: with intensity 0 the first
        // restart is already one too many.
        let at = now();
        if self.intensity.add_restart(at) {
            return None;
        }
        let reason = self.intensity.give_up_reason(at);
        // Giving up, in OTP's order: the crashed child is not restarted,
        // the limit is logged, the other children stop in reverse start
        // order, and the caller exits `{shutdown, "restart intensity
        // exceeded: ..."}` (OTP: plain `shutdown`; the words say why, and
        // the parent treats both alike: escalation).
        tracing::error!(
            supervisor = %self.path,
            intensity = self.intensity.intensity(),
            period = ?self.intensity.period(),
            %reason,
            "reached_max_restart_intensity: shutting down"
        );
        ctx.runtime().emit(RuntimeEvent::SupervisorGaveUp {
            supervisor: ctx.pid(),
            path: self.path.clone(),
        });
        self.terminate_all(ctx).await;
        Some(reason)
    }

    /// Restarts after child `idx` exited with `reason` (OTP.md §1.5): one
    /// restart in the window, then the strategy's plan.
    async fn restart(
        &mut self,
        ctx: &mut Ctx,
        idx: usize,
        reason: ExitReason,
    ) -> Option<ExitReason> {
        if let Some(stop) = self.count_restart(ctx).await {
            return Some(stop);
        }
        let plan = restart_plan(self.strategy(), &self.views(), idx);
        self.apply_plan(ctx, plan, reason).await;
        None
    }

    /// Retries the failed restart of child `uid` (OTP.md §1.7): it counts
    /// again, and the strategy says which siblings go with it.
    async fn retry(&mut self, ctx: &mut Ctx, uid: u64) -> Option<ExitReason> {
        let idx = self.index_of_uid(uid)?;
        if self.children[idx].state != ChildState::Restarting {
            // Stopped by terminate_child, or restarted by a group restart.
            return None;
        }
        if let Some(stop) = self.count_restart(ctx).await {
            return Some(stop);
        }
        let plan = retry_plan(self.strategy(), &self.views(), idx);
        self.apply_plan(ctx, plan, ExitReason::Error("start failed".into()))
            .await;
        None
    }

    /// Applies a restart plan (OTP.md §1.5, §1.7): terminates, one at a
    /// time and in the plan's order (reverse start order), then starts in
    /// start order, stopping at the first failure, which schedules a retry;
    /// then drops temporary bystanders.
    async fn apply_plan(&mut self, ctx: &mut Ctx, plan: RestartPlan, reason: ExitReason) {
        // The plan names children by index; terminating and removing shift
        // indices, so work on stable handles.
        let uid = |i: usize| self.children[i].uid;
        let terminate: Vec<u64> = plan.terminate.iter().map(|&i| uid(i)).collect();
        let start: Vec<u64> = plan.start.iter().map(|&i| uid(i)).collect();
        let remove: Vec<u64> = plan.remove.iter().map(|&i| uid(i)).collect();
        // 1. Stop the siblings the strategy takes down, each fully (its
        //    `Down` seen) before the next (`stop.rs`).
        for u in terminate {
            if let Some(i) = self.index_of_uid(u) {
                self.terminate_index(ctx, i).await;
            }
        }
        // 2. Start the group in start order.
        for (k, &u) in start.iter().enumerate() {
            let Some(i) = self.index_of_uid(u) else {
                continue;
            };
            let rec = self.children[i].clone();
            // The process this start replaces (already ended: a crashed
            // child, or one the plan terminated).
            let old = rec.pid.or(rec.last_pid);
            match self.start_one(ctx, &rec).await {
                Ok(Started::Pid(pid)) => {
                    let rec = &mut self.children[i];
                    rec.set_running(pid);
                    rec.restarts += 1;
                    rec.lost_node = None;
                    ctx.runtime().emit(RuntimeEvent::ChildRestarted {
                        supervisor: ctx.pid(),
                        path: self.path.clone(),
                        child: rec.data.id.clone(),
                        old,
                        new: Some(pid),
                        reason: reason.clone(),
                    });
                }
                Ok(Started::Ignore) => {
                    // `ignore` on a restart is treated as at init (OTP.md
                    // §1.3): the strategy says whether the spec stays,
                    // stopped, or goes.
                    if on_start_ignored(self.strategy(), rec.data.restart) == ExitAction::Remove {
                        self.children.remove(i);
                    }
                }
                Err(StartFailure::Transient(why)) => {
                    // 3a. It cannot start *now* (no node for it, its node
                    //     lost during the start): pending, retried with
                    //     backoff, not counted. Under one_for_all and
                    //     rest_for_one the rest of the group waits for it,
                    //     pending too, and starts after it, in order.
                    tracing::warn!(supervisor = %self.path, child = %rec.data.id, reason = %why, "restart cannot proceed now; child pending");
                    ctx.runtime().emit(RuntimeEvent::ChildRestarted {
                        supervisor: ctx.pid(),
                        path: self.path.clone(),
                        child: rec.data.id.clone(),
                        old,
                        new: None,
                        reason: ExitReason::Error(why.clone()),
                    });
                    self.set_pending(i, why, true);
                    self.wait_behind(&start[k + 1..], &rec.data.id, true);
                    break;
                }
                Err(StartFailure::Permanent(e)) => {
                    // 3. A start failed: the child is `restarting`, and the
                    //    retry is a message to ourselves, so the mailbox is
                    //    served before it (OTP.md §1.7). The rest of the
                    //    group waits for the retry.
                    tracing::error!(supervisor = %self.path, child = %rec.data.id, reason = %e, "restart failed; retrying");
                    self.children[i].state = ChildState::Restarting;
                    ctx.runtime().emit(RuntimeEvent::ChildRestarted {
                        supervisor: ctx.pid(),
                        path: self.path.clone(),
                        child: rec.data.id.clone(),
                        old,
                        new: None,
                        reason: e,
                    });
                    let me = ctx.pid();
                    ctx.send_message(me, Message::local(Retry { uid: u }));
                    break;
                }
            }
        }
        // 4. Temporary bystanders a group restart terminated are not
        //    restarted: their specs go (OTP.md §1.5).
        for u in remove {
            if let Some(i) = self.index_of_uid(u) {
                self.children.remove(i);
            }
        }
    }
}
