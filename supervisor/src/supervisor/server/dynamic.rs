//! The calls a supervisor serves (OTP.md §1.10, §1.11): `which_children`,
//! `count_children`, `start_child`, `terminate_child`, `restart_child`,
//! `delete_child`, `get_childspec`, `stop`, and `inspect` (the whole tree
//! below it). Calls that stop or start children do it as a shutdown or an
//! init does (`stop.rs`, `start.rs`), and none of them counts against the
//! restart intensity.

use pool_proto::tree::validate_child;
use pool_proto::{ChildSpecData, ChildStatus, ExitReason, Pid, Strategy, TreeView};

use super::super::pending::StartFailure;
use super::super::request::{
    ChildCounts, ChildInfo, ChildKey, ChildPid, INSPECT_TIMEOUT, StartChildCode, SupRequest,
};
use super::super::spec::{ChildCode, Started};
use super::super::strategy::{ChildState, ExitAction, on_start_ignored, on_terminated_by_api};
use super::{ChildRec, Server};
use crate::envelope::CallRequest;
use crate::error::SupError;
use crate::runtime::Ctx;

impl Server {
    /// Serves one call. Every request is answered, a bad one with
    /// `BadRequest`; `stop` answers after the children are stopped and
    /// returns the supervisor's exit reason (`normal`).
    pub(super) async fn handle_call(
        &mut self,
        ctx: &mut Ctx,
        call: CallRequest,
    ) -> Option<ExitReason> {
        let CallRequest { from, mref, msg } = call;
        // A child written in code travels as a local message (it holds
        // closures); everything else is a data request.
        let req = match msg.downcast::<StartChildCode>() {
            Ok(code) => {
                let r = self.start_child(ctx, code.0.data, code.0.code).await;
                ctx.reply_owned_to(from, mref, r);
                return None;
            }
            Err(msg) => match msg.take::<SupRequest>() {
                Ok(req) => req,
                // A request that does not decode (another version, or not
                // a supervisor request at all) is answered, not crashed on:
                // the supervisor serves whatever its mailbox gets.
                Err(e) => {
                    ctx.reply_owned_to(
                        from,
                        mref,
                        Err::<(), _>(SupError::BadRequest(e.to_string())),
                    );
                    return None;
                }
            },
        };
        // simple_one_for_one children have no ids: the calls that name a
        // child by id are refused there (OTP.md §1.11).
        let sofo = self.strategy() == Strategy::SimpleOneForOne;
        match req {
            // Newest first, as OTP stores them.
            SupRequest::WhichChildren => {
                let infos: Vec<ChildInfo> =
                    self.children.iter().rev().map(|c| self.info(c)).collect();
                ctx.reply_owned_to(from, mref, Ok::<_, SupError>(infos));
            }
            // Counted from the records, as OTP's `count_children`.
            SupRequest::CountChildren => {
                let counts = self.counts();
                ctx.reply_owned_to(from, mref, Ok::<_, SupError>(counts));
            }
            SupRequest::StartChild(data) => {
                let r = self.start_child(ctx, data, None).await;
                ctx.reply_owned_to(from, mref, r);
            }
            // Only a simple_one_for_one supervisor has a template to
            // start with dynamic arguments.
            SupRequest::StartDynamic(args) => {
                let r = if sofo {
                    self.start_dynamic(ctx, args).await
                } else {
                    Err(SupError::NotSimpleOneForOne)
                };
                ctx.reply_owned_to(from, mref, r);
            }
            SupRequest::TerminateChild(key) => {
                let r = self.terminate_child(ctx, key).await;
                ctx.reply_owned_to(from, mref, r);
            }
            // By id only: a simple_one_for_one child has none.
            SupRequest::RestartChild(id) => {
                let r = if sofo {
                    Err(SupError::SimpleOneForOne)
                } else {
                    self.restart_child(ctx, &id).await
                };
                ctx.reply_owned_to(from, mref, r);
            }
            // Only a stopped child's spec can be deleted (OTP.md §1.10).
            SupRequest::DeleteChild(id) => {
                let r = if sofo {
                    Err(SupError::SimpleOneForOne)
                } else {
                    match self.index_of_id(&id).map(|i| (i, self.children[i].state)) {
                        None => Err(SupError::NotFound),
                        Some((_, ChildState::Running)) => Err(SupError::Running),
                        Some((_, ChildState::Restarting | ChildState::Pending)) => {
                            Err(SupError::Restarting)
                        }
                        Some((i, ChildState::Stopped)) => {
                            self.children.remove(i);
                            Ok(())
                        }
                    }
                };
                ctx.reply_owned_to(from, mref, r);
            }
            // The spec with every default filled in, as OTP returns it.
            SupRequest::GetChildSpec(key) => {
                // As OTP 25: by id, except on simple_one_for_one, whose
                // children share one spec and are known by pid only — the
                // old pid too while the child's restart is pending or
                // being retried (`{restarting, OldPid}`).
                let found = match &key {
                    ChildKey::Id(id) if !sofo => self.index_of_id(id),
                    ChildKey::Pid(p) if sofo => self.index_answering_to(*p),
                    ChildKey::Id(_) | ChildKey::Pid(_) => None,
                };
                let r = found
                    .map(|i| {
                        let mut d = self.children[i].data.clone();
                        d.shutdown = Some(d.effective_shutdown());
                        d
                    })
                    .ok_or(SupError::NotFound);
                ctx.reply_owned_to(from, mref, r);
            }
            // The whole subtree; this supervisor serves nothing else while
            // it asks its nested supervisors (see `inspect`).
            SupRequest::Inspect => {
                let view = self.inspect(ctx).await;
                ctx.reply_owned_to(from, mref, Ok::<_, SupError>(view));
            }
            // Children first, in order, then the reply, then the exit.
            SupRequest::Stop => {
                self.terminate_all(ctx).await;
                ctx.reply_owned_to(from, mref, Ok::<(), SupError>(()));
                return Some(ExitReason::Normal);
            }
        }
        None
    }

    /// One entry of `which_children`: a restarting child shows as such, and
    /// so does a pending one (OTP has no pending state; both wait for a
    /// retry with no process), a stopped one as `undefined`.
    fn info(&self, c: &ChildRec) -> ChildInfo {
        ChildInfo {
            id: (!c.data.id.is_empty() && self.strategy() != Strategy::SimpleOneForOne)
                .then(|| c.data.id.clone()),
            pid: match (c.state, c.pid) {
                (ChildState::Running, Some(p)) => ChildPid::Pid(p),
                (ChildState::Restarting | ChildState::Pending, _) => ChildPid::Restarting,
                _ => ChildPid::Undefined,
            },
            supervisor: c.is_supervisor(),
            restarts: c.restarts,
        }
    }

    /// `count_children`: a restarting child is not active (OTP.md §1.7).
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

    /// `start_child` with a spec (OTP.md §1.10): validated as at start, an
    /// id already in use refused (`already_started` / `already_present`),
    /// then started as at init; a failed start stores nothing.
    async fn start_child(
        &mut self,
        ctx: &mut Ctx,
        data: ChildSpecData,
        code: Option<ChildCode>,
    ) -> Result<Option<Pid>, SupError> {
        if self.strategy() == Strategy::SimpleOneForOne {
            return Err(SupError::SimpleOneForOne);
        }
        // 1. The same rules as at start (`spec.validation`), with the index
        //    the child will take; the duplicate-id check is the next step's.
        validate_child(self.spec.data.auto_shutdown, self.children.len(), &data)
            .map_err(|e| SupError::Invalid(e.to_string()))?;
        // 2. An id in use: `already_started` if that child runs,
        //    `already_present` if its spec is kept stopped (or restarting).
        if let Some(i) = self.index_of_id(&data.id) {
            return Err(match (self.children[i].state, self.children[i].pid) {
                (ChildState::Running, Some(p)) => SupError::AlreadyStarted(p),
                _ => SupError::AlreadyPresent,
            });
        }
        // 3. Start it as init does; it joins the end of the start order.
        //    Its closures must be in the spec before `start_one` looks.
        if let Some(code) = code {
            self.spec.code.insert(data.id.clone(), code);
        }
        let mut rec = self.new_rec(data, serde_json::Value::Null);
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                rec.set_running(pid);
                self.children.push(rec);
                Ok(Some(pid))
            }
            // `ignore` returns no pid; the spec is kept as at init.
            Ok(Started::Ignore) => {
                if on_start_ignored(self.strategy(), rec.data.restart) == ExitAction::KeepStopped {
                    self.children.push(rec);
                }
                Ok(None)
            }
            // A failed start stores nothing, closures included, so the
            // same id can be tried again. A transient failure is answered
            // too, as `Unavailable`, not kept pending: the caller is there
            // to decide whether to try again.
            Err(failure) => {
                self.spec.code.remove(&rec.data.id);
                Err(start_error(failure))
            }
        }
    }

    /// `start_child` of a simple_one_for_one supervisor (OTP.md §1.11):
    /// the template started with the dynamic arguments; `ignore` and
    /// failures store nothing.
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
        // Each dynamic child is a record of its own, with the template's
        // spec and its own arguments: a restart starts it with the same
        // arguments (OTP.md §1.5).
        let mut rec = self.new_rec(template, args);
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                rec.set_running(pid);
                self.children.push(rec);
                Ok(Some(pid))
            }
            Ok(Started::Ignore) => Ok(None),
            Err(failure) => Err(start_error(failure)),
        }
    }

    /// `terminate_child` (OTP.md §1.10, §1.11): stops the child as a
    /// shutdown does; not counted as a restart. By id the spec stays
    /// (except a temporary one); by pid (simple_one_for_one) the child is
    /// gone.
    async fn terminate_child(&mut self, ctx: &mut Ctx, key: ChildKey) -> Result<(), SupError> {
        let sofo = self.strategy() == Strategy::SimpleOneForOne;
        match (sofo, key) {
            // simple_one_for_one: by pid, and the child is forgotten. A
            // child whose restart is pending or being retried answers to
            // its old pid (OTP 25's `{restarting, OldPid}`): it is removed
            // and its retry stops.
            (true, ChildKey::Pid(pid)) => match self.index_answering_to(pid) {
                Some(i) => {
                    self.terminate_index(ctx, i).await;
                    self.children.remove(i);
                    Ok(())
                }
                // A live process that is not our child is `not_found`; a
                // dead one (perhaps a child that just exited) is `ok`
                // (`sofo.terminate`).
                None if pid.node() == ctx.runtime().node() && ctx.runtime().is_alive(pid) => {
                    Err(SupError::NotFound)
                }
                None => Ok(()),
            },
            (true, ChildKey::Id(_)) => Err(SupError::SimpleOneForOne),
            (false, ChildKey::Pid(_)) => Err(SupError::NotFound),
            // Other strategies: by id. A restarting child is stopped too
            // (its pending retry then finds it stopped and does nothing).
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

    /// `restart_child` of a stopped child (OTP.md §1.10): started again
    /// from its spec; not counted as a restart.
    async fn restart_child(&mut self, ctx: &mut Ctx, id: &str) -> Result<Option<Pid>, SupError> {
        let i = self.index_of_id(id).ok_or(SupError::NotFound)?;
        match self.children[i].state {
            ChildState::Running => return Err(SupError::Running),
            ChildState::Restarting | ChildState::Pending => return Err(SupError::Restarting),
            ChildState::Stopped => {}
        }
        // The record keeps its place in the start order and its restart
        // count: this is the same child, started again by request.
        let rec = self.children[i].clone();
        match self.start_one(ctx, &rec).await {
            Ok(Started::Pid(pid)) => {
                self.children[i].set_running(pid);
                Ok(Some(pid))
            }
            Ok(Started::Ignore) => Ok(None),
            Err(failure) => Err(start_error(failure)),
        }
    }

    /// The tree below this supervisor, asking nested supervisors for theirs
    /// one after another (each within [`INSPECT_TIMEOUT`]). A nested
    /// supervisor that does not answer in time, or is not running, shows as
    /// a leaf with what this supervisor knows of it.
    async fn inspect<'a>(&'a self, ctx: &'a mut Ctx) -> TreeView {
        let mut children = Vec::with_capacity(self.children.len());
        for c in &self.children {
            // Pending and failed children say why, in words.
            let (status, reason) = match c.state {
                ChildState::Running => (ChildStatus::Running, None),
                ChildState::Restarting => (ChildStatus::Restarting, None),
                ChildState::Pending => (
                    ChildStatus::Pending,
                    c.pending.as_ref().map(|p| p.reason.clone()),
                ),
                ChildState::Stopped => match &c.failed {
                    Some(why) => (ChildStatus::Failed, Some(why.clone())),
                    None => (ChildStatus::Stopped, None),
                },
            };
            let leaf = TreeView {
                reason,
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
                    .call(pid, SupRequest::Inspect, INSPECT_TIMEOUT)
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
            reason: None,
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

/// A failed dynamic start as the API answers it: `Unavailable` if it may
/// pass, OTP's `{error, R}` otherwise.
fn start_error(failure: StartFailure) -> SupError {
    match failure {
        StartFailure::Transient(why) => SupError::Unavailable(why),
        StartFailure::Permanent(reason) => SupError::StartFailed(reason),
    }
}
