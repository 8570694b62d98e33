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
//! Every decision comes from the pure modules ([`strategy`](super::strategy),
//! [`intensity`](super::intensity)); this file only applies them. The
//! mailbox is not served while a restart or a shutdown runs (as OTP), except
//! between the attempts of a failing restart: a failed start marks the child
//! `restarting` and the retry is a message the supervisor sends itself, so
//! calls queued before it are answered first (OTP.md 1.7).

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::tree::{validate_child, validate_supervisor};
use pool_proto::{
    ChildSpecData, ChildStatus, ExitReason, NodeId, Pid, Placement, Restart, SUPERVISOR_FUNCTION,
    Shutdown, SpawnRequest, Strategy, TreeView,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::api::{
    ChildCounts, ChildInfo, ChildKey, ChildPid, StartChildCode, StartError, SupError, SupRequest,
};
use super::intensity::RestartIntensity;
use super::spec::{ChildCode, Spec, Started};
use super::strategy::{
    ChildState, ChildView, ExitAction, RestartPlan, ShutdownPlan, on_child_exit, on_start_ignored,
    on_terminated_by_api, restart_plan, retry_plan, shutdown_plan,
};
use crate::message::{CallRequest, Envelope, Message};
use crate::process::Ctx;
use crate::runtime::{RuntimeEvent, SpawnOpts};

/// Arguments of [`SUPERVISOR_FUNCTION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorArgs {
    /// The supervisor's spec.
    pub spec: pool_proto::SupervisorSpec,
    /// Its parent (an exit signal from it stops the supervisor).
    pub parent: Option<Pid>,
    /// Its id path, for logs and listings.
    pub path: String,
}

/// The supervisor asks itself to retry a failed restart.
#[derive(Debug)]
struct Retry {
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
    state: ChildState,
    /// Restarts of this child.
    restarts: u64,
    /// The node its last process was lost with (`noconnection`): the
    /// replacement is placed elsewhere.
    lost_node: Option<NodeId>,
}

impl ChildRec {
    fn view(&self) -> ChildView {
        ChildView::of(&self.data, self.state)
    }

    fn is_supervisor(&self) -> bool {
        self.data.supervisor.is_some()
    }
}

/// A running supervisor's state.
struct Server {
    spec: Spec,
    path: String,
    parent: Option<Pid>,
    children: Vec<ChildRec>,
    intensity: RestartIntensity,
    next_uid: u64,
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
    ack: Option<oneshot::Sender<Result<(), StartError>>>,
) -> BoxFuture<'static, ExitReason> {
    async move {
        ctx.trap_exit(true);
        if let Err(e) = validate_supervisor(&spec.data) {
            let reason = ExitReason::Error(e.to_string());
            if let Some(ack) = ack {
                let _ = ack.send(Err(StartError::Spec(e.to_string())));
            }
            return reason;
        }
        let mut server = Server {
            intensity: RestartIntensity::from_spec(&spec.data),
            spec,
            path,
            parent,
            children: Vec::new(),
            next_uid: 0,
        };
        if let Err(e) = server.init(&mut ctx).await {
            let reason = ExitReason::ShutdownWith(e.to_string());
            if let Some(ack) = ack {
                let _ = ack.send(Err(e));
            }
            return reason;
        }
        if let Some(ack) = ack {
            let _ = ack.send(Ok(()));
        }
        server.serve(&mut ctx).await
    }
    .boxed()
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Merges the template's arguments with dynamic ones (simple_one_for_one):
/// objects merge (dynamic keys win), a template array gets the dynamic value
/// appended, otherwise the dynamic value replaces a null template.
fn merge_args(template: &serde_json::Value, extra: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (template, extra) {
        (t, Value::Null) => t.clone(),
        (Value::Null, e) => e.clone(),
        (Value::Object(t), Value::Object(e)) => {
            let mut m = t.clone();
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        (Value::Array(t), Value::Array(e)) => Value::Array(t.iter().chain(e).cloned().collect()),
        (Value::Array(t), e) => Value::Array(t.iter().cloned().chain([e.clone()]).collect()),
        (_, e) => e.clone(),
    }
}

impl Server {
    fn strategy(&self) -> Strategy {
        self.spec.data.strategy
    }

    fn views(&self) -> Vec<ChildView> {
        self.children.iter().map(ChildRec::view).collect()
    }

    fn index_of_uid(&self, uid: u64) -> Option<usize> {
        self.children.iter().position(|c| c.uid == uid)
    }

    fn index_of_pid(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.pid == Some(pid))
    }

    fn index_of_id(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.data.id == id)
    }

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
        }
    }

    fn owner(&self, rec: &ChildRec) -> String {
        if rec.data.id.is_empty() {
            format!("{}/*", self.path)
        } else {
            format!("{}/{}", self.path, rec.data.id)
        }
    }

    // ----- init ---------------------------------------------------------------

    async fn init(&mut self, ctx: &mut Ctx) -> Result<(), StartError> {
        if self.strategy() == Strategy::SimpleOneForOne {
            // The one spec is a template; children come with start_child.
            return Ok(());
        }
        for data in self.spec.data.children.clone() {
            let mut rec = self.new_rec(data, serde_json::Value::Null);
            match self.start_one(ctx, &rec).await {
                Ok(Started::Pid(pid)) => {
                    rec.pid = Some(pid);
                    rec.state = ChildState::Running;
                    self.children.push(rec);
                }
                Ok(Started::Ignore) => {
                    if on_start_ignored(self.strategy(), rec.data.restart)
                        == ExitAction::KeepStopped
                    {
                        self.children.push(rec);
                    }
                }
                Err(reason) => {
                    tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "failed to start child");
                    self.terminate_all(ctx).await;
                    return Err(StartError::FailedToStartChild {
                        id: rec.data.id.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    // ----- starting a child -----------------------------------------------------

    /// Starts one child; the process is linked to the supervisor.
    async fn start_one(&self, ctx: &Ctx, rec: &ChildRec) -> Result<Started, ExitReason> {
        let me = ctx.pid();
        let owner = self.owner(rec);
        let code = self.spec.code_of(&rec.data.id).cloned();
        match code {
            Some(ChildCode::Closure(f, check)) => {
                let args = rec.extra.clone();
                // Arguments that do not fit are a start failure, as OTP's
                // wrong arity, not a crash after the start.
                if let Some(check) = check {
                    check(&args).map_err(ExitReason::Error)?;
                }
                let pid = ctx.spawn_opts(
                    SpawnOpts::new()
                        .link(me)
                        .function(rec.data.function.clone().unwrap_or_default())
                        .owner(owner),
                    move |c| f(c, args),
                );
                Ok(Started::Pid(pid))
            }
            Some(ChildCode::Custom(f)) => {
                let fut = f(ctx, rec.extra.clone());
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(r) => r,
                    // `as_ref`: the payload inside the box, not the box.
                    Err(panic) => Err(ExitReason::Panic(panic_text(panic.as_ref()))),
                }
            }
            Some(ChildCode::Supervisor(spec)) => self.start_nested_local(ctx, spec, owner).await,
            None => {
                if rec.is_supervisor() {
                    let spec = self
                        .spec
                        .nested(&rec.data)
                        .expect("a supervisor child has a nested spec");
                    let node = self.resolve_node(ctx, rec).await?;
                    if node == ctx.runtime().node() {
                        self.start_nested_local(ctx, spec, owner).await
                    } else {
                        let args = SupervisorArgs {
                            spec: spec.data,
                            parent: Some(me),
                            path: owner.clone(),
                        };
                        let args = serde_json::to_value(args)
                            .map_err(|e| ExitReason::Error(e.to_string()))?;
                        self.spawn_remote(ctx, node, SUPERVISOR_FUNCTION, args, owner)
                            .await
                    }
                } else {
                    let function = rec.data.function.clone().unwrap_or_default();
                    let args = merge_args(&rec.data.args, &rec.extra);
                    let node = self.resolve_node(ctx, rec).await?;
                    if node == ctx.runtime().node() {
                        ctx.runtime()
                            .spawn_function(&function, args, SpawnOpts::new().link(me).owner(owner))
                            .map(Started::Pid)
                            .map_err(|e| ExitReason::Error(e.to_string()))
                    } else {
                        self.spawn_remote(ctx, node, &function, args, owner).await
                    }
                }
            }
        }
    }

    /// The node a child runs on: the supervisor's own unless its spec has a
    /// placement and the runtime is part of a pool.
    async fn resolve_node(&self, ctx: &Ctx, rec: &ChildRec) -> Result<NodeId, ExitReason> {
        let local = ctx.runtime().node();
        let placement = match &rec.data.placement {
            None | Some(Placement::Local) => return Ok(local),
            Some(p) => p.clone(),
        };
        let Some(placer) = ctx.runtime().placer() else {
            return Ok(local);
        };
        let exclude: Vec<NodeId> = rec.lost_node.into_iter().collect();
        placer
            .place(&placement, &exclude)
            .await
            .map_err(|e| ExitReason::Error(format!("placement {placement} failed: {e}")))
    }

    async fn spawn_remote(
        &self,
        ctx: &Ctx,
        node: NodeId,
        function: &str,
        args: serde_json::Value,
        owner: String,
    ) -> Result<Started, ExitReason> {
        let req = SpawnRequest {
            function: function.to_owned(),
            args,
            link: None,
            monitor: None,
            owner: Some(owner),
            trace: None,
        };
        ctx.runtime()
            .spawn_on(node, ctx.pid(), req, true, None)
            .await
            .map(|(pid, _)| Started::Pid(pid))
            .map_err(|e| ExitReason::Error(e.to_string()))
    }

    async fn start_nested_local(
        &self,
        ctx: &Ctx,
        spec: Spec,
        path: String,
    ) -> Result<Started, ExitReason> {
        let (tx, rx) = oneshot::channel();
        let me = ctx.pid();
        let p = path.clone();
        let pid = ctx.spawn_opts(
            SpawnOpts::new()
                .link(me)
                .trap_exit(true)
                .function(SUPERVISOR_FUNCTION)
                .owner(path),
            move |c| run(c, spec, Some(me), p, Some(tx)),
        );
        match rx.await {
            Ok(Ok(())) => Ok(Started::Pid(pid)),
            Ok(Err(e)) => Err(ExitReason::ShutdownWith(e.to_string())),
            Err(_) => Err(ExitReason::Killed),
        }
    }

    // ----- stopping children ----------------------------------------------------

    /// Stops one child as OTP's `shutdown/1`: unlink (taking an exit that
    /// already arrived), monitor, signal per the shutdown spec, wait for
    /// the DOWN. Returns the child's exit reason.
    async fn shutdown_child(ctx: &mut Ctx, pid: Pid, shutdown: Shutdown) -> ExitReason {
        ctx.unlink(pid);
        if let Some(Envelope::Exit { reason, .. }) =
            ctx.try_recv_match(|e| matches!(e, Envelope::Exit { from, .. } if *from == pid))
        {
            return reason;
        }
        let mref = ctx.monitor(pid);
        let first = match shutdown {
            Shutdown::BrutalKill => {
                ctx.kill(pid);
                None
            }
            Shutdown::Timeout(t) => {
                ctx.exit(pid, ExitReason::Shutdown);
                Some(t)
            }
            Shutdown::Infinity => {
                ctx.exit(pid, ExitReason::Shutdown);
                None
            }
        };
        if let Some(d) = ctx.wait_down(mref, first).await {
            return d.reason;
        }
        // It ignored `shutdown` for its whole timeout.
        ctx.kill(pid);
        ctx.wait_down(mref, None)
            .await
            .map_or(ExitReason::Killed, |d| d.reason)
    }

    /// Whether `reason` is a clean stop for a child stopped with `shutdown`
    /// (OTP.md 1.8); anything else is logged as a shutdown error.
    fn check_stop_reason(&self, rec: &ChildRec, reason: &ExitReason) {
        let clean = match reason {
            ExitReason::Shutdown | ExitReason::Killed => true,
            ExitReason::Normal | ExitReason::ShutdownWith(_) => {
                rec.data.restart != Restart::Permanent
            }
            // The child's node is gone: nothing is left running there.
            ExitReason::NoConnection => true,
            _ => false,
        };
        if !clean {
            tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "shutdown_error");
        }
    }

    async fn terminate_index(&mut self, ctx: &mut Ctx, idx: usize) {
        let rec = &self.children[idx];
        if let Some(pid) = rec.pid {
            let shutdown = rec.data.effective_shutdown();
            let reason = Self::shutdown_child(ctx, pid, shutdown).await;
            self.check_stop_reason(&self.children[idx], &reason);
        }
        let rec = &mut self.children[idx];
        if let Some(pid) = rec.pid.take() {
            rec.last_pid = Some(pid);
        }
        rec.state = ChildState::Stopped;
    }

    /// Stops every child: in reverse start order one at a time, or (simple
    /// one for one) all at once with one timer.
    async fn terminate_all(&mut self, ctx: &mut Ctx) {
        match shutdown_plan(self.strategy(), &self.views()) {
            ShutdownPlan::Sequential(order) => {
                let uids: Vec<u64> = order.iter().map(|&i| self.children[i].uid).collect();
                for uid in uids {
                    if let Some(i) = self.index_of_uid(uid) {
                        self.terminate_index(ctx, i).await;
                    }
                }
            }
            ShutdownPlan::Simultaneous(all) => {
                let shutdown = self
                    .spec
                    .data
                    .children
                    .first()
                    .map_or(Shutdown::Infinity, |t| t.effective_shutdown());
                let mut waiting = Vec::new();
                for &i in &all {
                    let Some(pid) = self.children[i].pid else {
                        continue;
                    };
                    ctx.unlink(pid);
                    if ctx
                        .try_recv_match(
                            |e| matches!(e, Envelope::Exit { from, .. } if *from == pid),
                        )
                        .is_some()
                    {
                        continue;
                    }
                    let mref = ctx.monitor(pid);
                    if shutdown == Shutdown::BrutalKill {
                        ctx.kill(pid);
                    } else {
                        ctx.exit(pid, ExitReason::Shutdown);
                    }
                    waiting.push((pid, mref));
                }
                let deadline = match shutdown {
                    Shutdown::Timeout(t) => Some(tokio::time::Instant::now() + t),
                    _ => None,
                };
                let mut left = Vec::new();
                for (pid, mref) in waiting {
                    let rest =
                        deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
                    if ctx.wait_down(mref, rest).await.is_none() {
                        left.push((pid, mref));
                    }
                }
                for (pid, mref) in left {
                    ctx.kill(pid);
                    ctx.wait_down(mref, None).await;
                }
                for i in all {
                    self.children[i].pid = None;
                    self.children[i].state = ChildState::Stopped;
                }
            }
        }
    }

    // ----- the loop -----------------------------------------------------------

    async fn serve(&mut self, ctx: &mut Ctx) -> ExitReason {
        let system = ctx.runtime().system_pid();
        loop {
            match ctx.recv().await {
                Envelope::Exit { from, reason } => {
                    if Some(from) == self.parent || from == system {
                        // The parent (or the node, shutting down) stops us.
                        self.terminate_all(ctx).await;
                        return reason;
                    }
                    if let Some(idx) = self.index_of_pid(from)
                        && let Some(stop) = self.child_exited(ctx, idx, reason).await
                    {
                        return stop;
                    }
                }
                Envelope::Call(call) => {
                    if let Some(stop) = self.handle_call(ctx, *call).await {
                        return stop;
                    }
                }
                Envelope::Message { msg, .. } => {
                    if let Ok(Retry { uid }) = msg.downcast::<Retry>()
                        && let Some(stop) = self.retry(ctx, uid).await
                    {
                        return stop;
                    }
                }
                Envelope::Down(_) | Envelope::Reply { .. } => {}
            }
        }
    }

    /// A child exited by itself.
    async fn child_exited(
        &mut self,
        ctx: &mut Ctx,
        idx: usize,
        reason: ExitReason,
    ) -> Option<ExitReason> {
        let local = ctx.runtime().node();
        {
            let rec = &mut self.children[idx];
            let old = rec.pid.take();
            if old.is_some() {
                rec.last_pid = old;
            }
            rec.state = ChildState::Stopped;
            rec.lost_node = old
                .filter(|p| reason == ExitReason::NoConnection && p.node() != local)
                .map(Pid::node);
        }
        let d = on_child_exit(
            self.strategy(),
            self.spec.data.auto_shutdown,
            &self.views(),
            idx,
            &reason,
        );
        let rec = &self.children[idx];
        if d.report {
            tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "child_terminated");
        }
        match d.action {
            ExitAction::Restart => return self.restart(ctx, idx, reason).await,
            ExitAction::Remove => {
                self.children.remove(idx);
            }
            ExitAction::KeepStopped => {}
        }
        if d.auto_shutdown {
            tracing::info!(supervisor = %self.path, "significant child exited: auto_shutdown");
            self.terminate_all(ctx).await;
            return Some(ExitReason::Shutdown);
        }
        None
    }

    /// Counts a restart; false (after stopping everything) if the supervisor
    /// gives up.
    async fn count_restart(&mut self, ctx: &mut Ctx) -> bool {
        if self.intensity.add_restart(now()) {
            return true;
        }
        tracing::error!(
            supervisor = %self.path,
            intensity = self.intensity.intensity(),
            period = ?self.intensity.period(),
            "reached_max_restart_intensity: shutting down"
        );
        ctx.runtime().emit(RuntimeEvent::SupervisorGaveUp {
            supervisor: ctx.pid(),
            path: self.path.clone(),
        });
        self.terminate_all(ctx).await;
        false
    }

    async fn restart(
        &mut self,
        ctx: &mut Ctx,
        idx: usize,
        reason: ExitReason,
    ) -> Option<ExitReason> {
        if !self.count_restart(ctx).await {
            return Some(ExitReason::Shutdown);
        }
        let plan = restart_plan(self.strategy(), &self.views(), idx);
        self.apply_plan(ctx, plan, reason).await;
        None
    }

    async fn retry(&mut self, ctx: &mut Ctx, uid: u64) -> Option<ExitReason> {
        let idx = self.index_of_uid(uid)?;
        if self.children[idx].state != ChildState::Restarting {
            // Stopped by terminate_child, or restarted by a group restart.
            return None;
        }
        if !self.count_restart(ctx).await {
            return Some(ExitReason::Shutdown);
        }
        let plan = retry_plan(self.strategy(), &self.views(), idx);
        self.apply_plan(ctx, plan, ExitReason::Error("start failed".into()))
            .await;
        None
    }

    /// Terminates, then starts (stopping at the first failure, which
    /// schedules a retry), then drops temporary bystanders.
    async fn apply_plan(&mut self, ctx: &mut Ctx, plan: RestartPlan, reason: ExitReason) {
        let uid = |i: usize| self.children[i].uid;
        let terminate: Vec<u64> = plan.terminate.iter().map(|&i| uid(i)).collect();
        let start: Vec<u64> = plan.start.iter().map(|&i| uid(i)).collect();
        let remove: Vec<u64> = plan.remove.iter().map(|&i| uid(i)).collect();
        for u in terminate {
            if let Some(i) = self.index_of_uid(u) {
                self.terminate_index(ctx, i).await;
            }
        }
        for u in start {
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
                    rec.pid = Some(pid);
                    rec.state = ChildState::Running;
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
                    if on_start_ignored(self.strategy(), rec.data.restart) == ExitAction::Remove {
                        self.children.remove(i);
                    }
                }
                Err(e) => {
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
        for u in remove {
            if let Some(i) = self.index_of_uid(u) {
                self.children.remove(i);
            }
        }
    }

    // ----- the dynamic API ------------------------------------------------------

    async fn handle_call(&mut self, ctx: &mut Ctx, call: CallRequest) -> Option<ExitReason> {
        let CallRequest { from, mref, msg } = call;
        let req = match msg.downcast::<StartChildCode>() {
            Ok(code) => {
                let r = self.start_child(ctx, code.0.data, code.0.code).await;
                ctx.reply_to(from, mref, r);
                return None;
            }
            Err(msg) => match msg.take::<SupRequest>() {
                Ok(req) => req,
                Err(e) => {
                    ctx.reply_to(
                        from,
                        mref,
                        Err::<(), _>(SupError::BadRequest(e.to_string())),
                    );
                    return None;
                }
            },
        };
        let sofo = self.strategy() == Strategy::SimpleOneForOne;
        match req {
            SupRequest::WhichChildren => {
                let infos: Vec<ChildInfo> =
                    self.children.iter().rev().map(|c| self.info(c)).collect();
                ctx.reply_to(from, mref, Ok::<_, SupError>(infos));
            }
            SupRequest::CountChildren => {
                let counts = self.counts();
                ctx.reply_to(from, mref, Ok::<_, SupError>(counts));
            }
            SupRequest::StartChild(data) => {
                let r = self.start_child(ctx, data, None).await;
                ctx.reply_to(from, mref, r);
            }
            SupRequest::StartDynamic(args) => {
                let r = if sofo {
                    self.start_dynamic(ctx, args).await
                } else {
                    Err(SupError::NotSimpleOneForOne)
                };
                ctx.reply_to(from, mref, r);
            }
            SupRequest::TerminateChild(key) => {
                let r = self.terminate_child(ctx, key).await;
                ctx.reply_to(from, mref, r);
            }
            SupRequest::RestartChild(id) => {
                let r = if sofo {
                    Err(SupError::SimpleOneForOne)
                } else {
                    self.restart_child(ctx, &id).await
                };
                ctx.reply_to(from, mref, r);
            }
            SupRequest::DeleteChild(id) => {
                let r = if sofo {
                    Err(SupError::SimpleOneForOne)
                } else {
                    match self.index_of_id(&id).map(|i| (i, self.children[i].state)) {
                        None => Err(SupError::NotFound),
                        Some((_, ChildState::Running)) => Err(SupError::Running),
                        Some((_, ChildState::Restarting)) => Err(SupError::Restarting),
                        Some((i, ChildState::Stopped)) => {
                            self.children.remove(i);
                            Ok(())
                        }
                    }
                };
                ctx.reply_to(from, mref, r);
            }
            SupRequest::GetChildSpec(key) => {
                let found = match &key {
                    ChildKey::Id(id) if !sofo => self.index_of_id(id),
                    ChildKey::Pid(p) => self.index_of_pid(*p),
                    ChildKey::Id(_) => None,
                };
                let r = found
                    .map(|i| {
                        let mut d = self.children[i].data.clone();
                        d.shutdown = Some(d.effective_shutdown());
                        d
                    })
                    .ok_or(SupError::NotFound);
                ctx.reply_to(from, mref, r);
            }
            SupRequest::Inspect => {
                let view = self.inspect(ctx).await;
                ctx.reply_to(from, mref, Ok::<_, SupError>(view));
            }
            SupRequest::Stop => {
                self.terminate_all(ctx).await;
                ctx.reply_to(from, mref, Ok::<(), SupError>(()));
                return Some(ExitReason::Normal);
            }
        }
        None
    }

    fn info(&self, c: &ChildRec) -> ChildInfo {
        ChildInfo {
            id: (!c.data.id.is_empty() && self.strategy() != Strategy::SimpleOneForOne)
                .then(|| c.data.id.clone()),
            pid: match (c.state, c.pid) {
                (ChildState::Running, Some(p)) => ChildPid::Pid(p),
                (ChildState::Restarting, _) => ChildPid::Restarting,
                _ => ChildPid::Undefined,
            },
            supervisor: c.is_supervisor(),
            restarts: c.restarts,
        }
    }

    fn counts(&self) -> ChildCounts {
        let sofo = self.strategy() == Strategy::SimpleOneForOne;
        let active = self
            .children
            .iter()
            .filter(|c| c.state == ChildState::Running)
            .count() as u64;
        let supervisors = self.children.iter().filter(|c| c.is_supervisor()).count() as u64;
        let workers = self.children.len() as u64 - supervisors;
        ChildCounts {
            specs: if sofo { 1 } else { self.children.len() as u64 },
            active,
            supervisors,
            workers,
        }
    }

    async fn start_child(
        &mut self,
        ctx: &mut Ctx,
        data: ChildSpecData,
        code: Option<ChildCode>,
    ) -> Result<Option<Pid>, SupError> {
        if self.strategy() == Strategy::SimpleOneForOne {
            return Err(SupError::SimpleOneForOne);
        }
        validate_child(self.spec.data.auto_shutdown, self.children.len(), &data)
            .map_err(|e| SupError::Invalid(e.to_string()))?;
        if let Some(i) = self.index_of_id(&data.id) {
            return Err(match (self.children[i].state, self.children[i].pid) {
                (ChildState::Running, Some(p)) => SupError::AlreadyStarted(p),
                _ => SupError::AlreadyPresent,
            });
        }
        if let Some(code) = code {
            self.spec.code.insert(data.id.clone(), code);
        }
        let mut rec = self.new_rec(data, serde_json::Value::Null);
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                rec.pid = Some(pid);
                rec.state = ChildState::Running;
                self.children.push(rec);
                Ok(Some(pid))
            }
            Ok(Started::Ignore) => {
                if on_start_ignored(self.strategy(), rec.data.restart) == ExitAction::KeepStopped {
                    self.children.push(rec);
                }
                Ok(None)
            }
            Err(reason) => {
                self.spec.code.remove(&rec.data.id);
                Err(SupError::StartFailed(reason))
            }
        }
    }

    async fn start_dynamic(
        &mut self,
        ctx: &mut Ctx,
        args: serde_json::Value,
    ) -> Result<Option<Pid>, SupError> {
        let template = self
            .spec
            .data
            .children
            .first()
            .cloned()
            .ok_or(SupError::NotFound)?;
        let mut rec = self.new_rec(template, args);
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                rec.pid = Some(pid);
                rec.state = ChildState::Running;
                self.children.push(rec);
                Ok(Some(pid))
            }
            Ok(Started::Ignore) => Ok(None),
            Err(reason) => Err(SupError::StartFailed(reason)),
        }
    }

    async fn terminate_child(&mut self, ctx: &mut Ctx, key: ChildKey) -> Result<(), SupError> {
        let sofo = self.strategy() == Strategy::SimpleOneForOne;
        match (sofo, key) {
            (true, ChildKey::Pid(pid)) => match self.index_of_pid(pid) {
                Some(i) => {
                    self.terminate_index(ctx, i).await;
                    self.children.remove(i);
                    Ok(())
                }
                None if pid.node() == ctx.runtime().node() && ctx.runtime().is_alive(pid) => {
                    Err(SupError::NotFound)
                }
                None => Ok(()),
            },
            (true, ChildKey::Id(_)) => Err(SupError::SimpleOneForOne),
            (false, ChildKey::Pid(_)) => Err(SupError::NotFound),
            (false, ChildKey::Id(id)) => {
                let i = self.index_of_id(&id).ok_or(SupError::NotFound)?;
                self.terminate_index(ctx, i).await;
                if on_terminated_by_api(self.strategy(), self.children[i].data.restart)
                    == ExitAction::Remove
                {
                    self.children.remove(i);
                }
                Ok(())
            }
        }
    }

    async fn restart_child(&mut self, ctx: &mut Ctx, id: &str) -> Result<Option<Pid>, SupError> {
        let i = self.index_of_id(id).ok_or(SupError::NotFound)?;
        match self.children[i].state {
            ChildState::Running => return Err(SupError::Running),
            ChildState::Restarting => return Err(SupError::Restarting),
            ChildState::Stopped => {}
        }
        let rec = self.children[i].clone();
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                let rec = &mut self.children[i];
                rec.pid = Some(pid);
                rec.state = ChildState::Running;
                Ok(Some(pid))
            }
            Ok(Started::Ignore) => Ok(None),
            Err(reason) => Err(SupError::StartFailed(reason)),
        }
    }

    /// The tree below this supervisor, asking nested supervisors for theirs.
    async fn inspect<'a>(&'a self, ctx: &'a mut Ctx) -> TreeView {
        let mut children = Vec::with_capacity(self.children.len());
        for c in &self.children {
            let status = match c.state {
                ChildState::Running => ChildStatus::Running,
                ChildState::Restarting => ChildStatus::Restarting,
                ChildState::Stopped => ChildStatus::Stopped,
            };
            let leaf = TreeView {
                id: c.data.id.clone(),
                strategy: None,
                pid: c.pid,
                node: c.pid.map(|p| p.node().to_string()),
                restarts: c.restarts,
                status,
                children: None,
            };
            let view = match (c.is_supervisor(), c.pid) {
                (true, Some(pid)) => match ctx
                    .call(pid, SupRequest::Inspect, super::api::INSPECT_TIMEOUT)
                    .await
                    .ok()
                    .and_then(|m| m.take::<Result<TreeView, SupError>>().ok())
                {
                    Some(Ok(mut v)) => {
                        v.id = c.data.id.clone();
                        v.restarts = v.restarts.max(c.restarts);
                        v
                    }
                    _ => leaf,
                },
                _ => leaf,
            };
            children.push(view);
        }
        TreeView {
            id: self.spec.data.id.clone(),
            strategy: Some(self.strategy()),
            pid: Some(ctx.pid()),
            node: Some(ctx.runtime().node().to_string()),
            restarts: self.intensity.total_restarts(),
            status: ChildStatus::Running,
            children: Some(children),
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
