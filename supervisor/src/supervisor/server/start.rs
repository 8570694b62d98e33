//! Where and how a child starts: init (every child in order, OTP.md §1.3),
//! and the start of one child — a closure on this node, a custom start
//! function, a registered function here or on the node its placement
//! chooses, or a nested supervisor, here or there.
//!
//! Every child's process is linked to the supervisor before it runs, so its
//! exit always arrives as an `Exit` message (the supervisor traps exits).
//!
//! A failed start is classified here ([`StartFailure`]): transient (the
//! placement found no node, the node was lost during the spawn) or
//! permanent (OTP's start failure). Init fails only on a permanent one.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use pool_proto::{ExitReason, NodeId, Placement, SUPERVISOR_FUNCTION, SpawnRequest, Strategy};
use tokio::sync::oneshot;

use super::super::pending::StartFailure;
use super::super::spec::{ChildCode, Spec, Started};
use super::super::strategy::{ChildState, ExitAction, on_start_ignored};
use super::{ChildRec, Server, SupervisorArgs, run};
use crate::error::{Error, StartError};
use crate::exit::panic_text;
use crate::runtime::Ctx;
use crate::runtime::spawn::SpawnOpts;

/// Merges the template's arguments with dynamic ones (simple_one_for_one):
/// objects merge (dynamic keys win), a template array gets the dynamic value
/// appended, otherwise the dynamic value replaces a null template. This
/// stands for OTP's `apply(M, F, Args ++ ExtraArgs)` over JSON values.
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
    /// Starts the children in order (OTP.md §1.3). At the first failure,
    /// the children already started are stopped in reverse start order and
    /// the start fails with `failed_to_start_child`; later children are
    /// never started. A child that cannot start *now* (a transient failure)
    /// does not fail the start: it waits pending (`pending.rs`), and under
    /// one_for_all and rest_for_one the children after it wait with it.
    pub(super) async fn init(&mut self, ctx: &mut Ctx) -> Result<(), StartError> {
        if self.strategy() == Strategy::SimpleOneForOne {
            // The one spec is a template; children come with start_child.
            return Ok(());
        }
        for data in self.spec.data.children.clone() {
            let mut rec = self.new_rec(data, serde_json::Value::Null);
            // Behind a pending sibling (ordered strategies): wait for it.
            if let Some(first) = self
                .children
                .iter()
                .rev()
                .find(|c| c.state == ChildState::Pending)
                .map(|c| c.data.id.clone())
                && matches!(self.strategy(), Strategy::OneForAll | Strategy::RestForOne)
            {
                let uid = rec.uid;
                self.children.push(rec);
                self.wait_behind(&[uid], &first, false);
                continue;
            }
            match self.start_one(ctx, &rec).await {
                Ok(Started::Pid(pid)) => {
                    rec.set_running(pid);
                    self.children.push(rec);
                }
                Ok(Started::Ignore) => {
                    // `ignore`: the child does not run. A permanent or
                    // transient child keeps its spec (pid `undefined`); a
                    // temporary one is dropped.
                    if on_start_ignored(self.strategy(), rec.data.restart)
                        == ExitAction::KeepStopped
                    {
                        self.children.push(rec);
                    }
                }
                Err(StartFailure::Transient(why)) => {
                    tracing::warn!(supervisor = %self.path, child = %rec.data.id, reason = %why, "child cannot start now; pending");
                    self.children.push(rec);
                    let i = self.children.len() - 1;
                    self.set_pending(i, why, false);
                }
                Err(StartFailure::Permanent(reason)) => {
                    tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "failed to start child");
                    // Only the children started so far are in `children`:
                    // they stop, in reverse start order, with their
                    // shutdown specs (`stop.rs`).
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

    /// Starts one child; the process is linked to the supervisor. An
    /// `Err` is a start failure — transient (no node for it now, its node
    /// lost during the spawn) or permanent (OTP's `{error, R}` or a crash
    /// of the start function): nothing of the child runs.
    pub(super) async fn start_one(
        &self,
        ctx: &Ctx,
        rec: &ChildRec,
    ) -> Result<Started, StartFailure> {
        let me = ctx.pid();
        let owner = self.owner(rec);
        let code = self.spec.code_of(&rec.data.id).cloned();
        match code {
            // A closure written in code: always on this node.
            Some(ChildCode::Closure(f, check)) => {
                let args = rec.extra.clone();
                // Arguments that do not fit are a start failure, as OTP's
                // wrong arity, not a crash after the start.
                if let Some(check) = check {
                    check(&args).map_err(ExitReason::Error)?;
                }
                // Linked at the spawn, before the child runs (OTP's
                // `spawn_link` is atomic): a child that dies at once still
                // reaches the supervisor as an `Exit`.
                let pid = ctx.spawn_opts(
                    SpawnOpts::new()
                        .link(me)
                        .function(rec.data.function.clone().unwrap_or_default())
                        .owner(owner),
                    move |c| f(c, args),
                );
                Ok(Started::Pid(pid))
            }
            // A custom start function runs inside the supervisor (OTP's
            // `start = {M, F, A}`): it links what it starts, may return
            // `ignore`, and a panic in it is a start failure, not the
            // supervisor's death.
            Some(ChildCode::Custom(f)) => {
                let fut = f(ctx, rec.extra.clone());
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(r) => r.map_err(StartFailure::from_reason),
                    // `as_ref`: the payload inside the box, not the box.
                    Err(panic) => Err(StartFailure::Permanent(ExitReason::Panic(panic_text(
                        panic.as_ref(),
                    )))),
                }
            }
            // A nested supervisor with closures among its children: it can
            // only run here, where the closures are.
            Some(ChildCode::Supervisor(spec)) => self
                .start_nested_local(ctx, spec, owner)
                .await
                .map_err(StartFailure::Permanent),
            // Data only: it can run on any node of the pool that has the
            // function, so its placement decides.
            None => {
                if rec.is_supervisor() {
                    let spec = self
                        .spec
                        .nested(&rec.data)
                        .expect("a supervisor child has a nested spec");
                    let node = self.resolve_node(ctx, rec, SUPERVISOR_FUNCTION).await?;
                    if node == ctx.runtime().node() {
                        self.start_nested_local(ctx, spec, owner)
                            .await
                            .map_err(StartFailure::Permanent)
                    } else {
                        // Elsewhere, the nested supervisor is a spawn of
                        // the supervisor function with its spec as data;
                        // that node must have registered the function.
                        let args = SupervisorArgs {
                            spec: spec.data,
                            parent: Some(me),
                            path: owner.clone(),
                        };
                        let args = serde_json::to_value(args).map_err(|e| {
                            StartFailure::Permanent(ExitReason::Error(e.to_string()))
                        })?;
                        let req = SpawnRequest {
                            function: SUPERVISOR_FUNCTION.to_owned(),
                            args,
                            link: None,
                            monitor: None,
                            owner: Some(owner),
                            trace: None,
                            sandbox: None,
                        };
                        self.spawn_remote(ctx, node, req).await
                    }
                } else {
                    let function = self.pinned_function(ctx, rec).await?;
                    let args = merge_args(&rec.data.args, &rec.extra);
                    let node = self.resolve_node(ctx, rec, &function).await?;
                    // An unknown function or arguments that do not fit fail
                    // before anything runs, here or on the other node: a
                    // start failure, as OTP's `{error, R}`.
                    if node == ctx.runtime().node() {
                        let mut opts = SpawnOpts::new().link(me).owner(owner);
                        if let Some(sandbox) = rec.data.sandbox.as_deref() {
                            opts = opts.sandbox(sandbox.clone());
                        }
                        ctx.runtime()
                            .spawn_function(&function, args, opts)
                            .map(Started::Pid)
                            .map_err(|e| StartFailure::from_error("", &e))
                    } else {
                        let req = SpawnRequest {
                            function: function.clone(),
                            args,
                            link: None,
                            monitor: None,
                            owner: Some(owner),
                            trace: None,
                            sandbox: rec.data.sandbox.as_deref().cloned(),
                        };
                        self.spawn_remote(ctx, node, req).await
                    }
                }
            }
        }
    }

    /// The function child `rec` runs: the canonical name pinned at its
    /// first start, or (at that first start) the placer's resolution of
    /// its spec's function, pinned now. A runtime without a placer runs
    /// the spec's name. A resolution that fails is a start failure
    /// (transient when the master cannot be asked now) and pins nothing.
    async fn pinned_function(&self, ctx: &Ctx, rec: &ChildRec) -> Result<String, StartFailure> {
        if let Some(f) = rec.function.0.get() {
            return Ok(f.clone());
        }
        let named = rec.data.function.clone().unwrap_or_default();
        let Some(placer) = ctx.runtime().placer() else {
            return Ok(named);
        };
        let canonical = placer
            .resolve_function(&named)
            .await
            .map_err(|e| StartFailure::from_error("", &Error::Remote(e)))?;
        // A concurrent start of the same record cannot happen (one
        // supervisor process); the first answer stays in any case.
        Ok(rec.function.0.get_or_init(|| canonical).clone())
    }

    /// The node a child running `function` runs on: the supervisor's own
    /// unless its spec has a placement and the runtime is part of a pool
    /// (then a node that registers `function`). A child lost with its node
    /// is placed anywhere but there.
    async fn resolve_node(
        &self,
        ctx: &Ctx,
        rec: &ChildRec,
        function: &str,
    ) -> Result<NodeId, StartFailure> {
        let local = ctx.runtime().node();
        let placement = match &rec.data.placement {
            None | Some(Placement::Local) => return Ok(local),
            Some(p) => p.clone(),
        };
        // A runtime alone (no pool) has no placer: everything is local.
        let Some(placer) = ctx.runtime().placer() else {
            return Ok(local);
        };
        // A child lost with its node (`noconnection`) would most likely
        // be lost again there: place its replacement elsewhere.
        let exclude: Vec<NodeId> = rec.lost_node.into_iter().collect();
        // No node for it *now* (`NoNode`, ...) is transient: the child
        // waits pending for one (a node joining wakes it).
        placer
            .place_function(&placement, function, &exclude)
            .await
            .map_err(|e| {
                StartFailure::from_error(
                    &format!("placement {placement} failed"),
                    &Error::Remote(e),
                )
            })
    }

    /// Spawns `req` on `node`, linked to the supervisor: the link is made
    /// atomically with the spawn (the other node links before the new
    /// process runs), as with a local child.
    async fn spawn_remote(
        &self,
        ctx: &Ctx,
        node: NodeId,
        req: SpawnRequest,
    ) -> Result<Started, StartFailure> {
        ctx.runtime()
            .spawn_on(node, ctx.pid(), req, true, None)
            .await
            .map(|(pid, _)| Started::Pid(pid))
            // The node unknown or unreachable (`NoRoute`), or lost before
            // it answered (`UnknownNode`), is transient; an unknown
            // function there is not.
            .map_err(|e| StartFailure::from_error("", &e))
    }

    /// Starts a nested supervisor on this node and waits for its init: like
    /// `start_link`, it has started only when all its children have, and a
    /// failed init is this child's start failure.
    async fn start_nested_local(
        &self,
        ctx: &Ctx,
        spec: Spec,
        path: String,
    ) -> Result<Started, ExitReason> {
        // The nested supervisor traps exits from its spawn (as `run` would
        // first thing) and answers `tx` when its init is done.
        let (tx, rx) = oneshot::channel();
        let me = ctx.pid();
        let p = path.clone();
        let pid = ctx.spawn_opts(
            SpawnOpts::new()
                .link(me)
                .trap_exit(true)
                .function(SUPERVISOR_FUNCTION)
                .owner(path),
            move |c| run(c, spec, Some(me), p, None, Some(tx)),
        );
        // Its init failed: it already stopped its own children and exits
        // with this reason, so the parent reports the same one. No answer
        // at all means it was killed before its init finished.
        match rx.await {
            Ok(Ok(())) => Ok(Started::Pid(pid)),
            Ok(Err(e)) => Err(ExitReason::ShutdownWith(e.to_string())),
            Err(_) => Err(ExitReason::Killed),
        }
    }
}
