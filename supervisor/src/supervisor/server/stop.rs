//! Stopping children in OTP's order (OTP.md §1.8): one child as OTP's
//! `shutdown/1`, and every child — one at a time in reverse start order,
//! or, under simple_one_for_one, all at once with one timer.
//!
//! A stop waits on a monitor, not on the link: the link is removed first,
//! so a child that unlinked itself cannot hang the supervisor, and the
//! child's exit does not come back as an `Exit` message to be mistaken for
//! a crash.

use pool_proto::{ExitReason, Pid, Restart, Shutdown};

use super::super::strategy::{ChildState, ShutdownPlan, shutdown_plan};
use super::{ChildRec, Server};
use crate::envelope::Envelope;
use crate::runtime::Ctx;

/// True if `env` is the exit signal of `pid`, already queued.
fn is_exit_of(env: &Envelope, pid: Pid) -> bool {
    matches!(env, Envelope::Exit { from, .. } if *from == pid)
}

impl Server {
    /// Stops one child as OTP's `shutdown/1`. Returns the child's exit
    /// reason.
    async fn shutdown_child(ctx: &mut Ctx, pid: Pid, shutdown: Shutdown) -> ExitReason {
        // 1. Unlink. If the child had already exited, its `Exit` is in the
        //    mailbox: take it, and that is its reason; nothing to stop.
        ctx.unlink(pid);
        if let Some(Envelope::Exit { reason, .. }) = ctx.try_recv_match(|e| is_exit_of(e, pid)) {
            return reason;
        }
        // 2. Monitor, then signal as the shutdown spec says: `brutal_kill`
        //    kills at once; a timeout or `infinity` asks with `shutdown`.
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
        // 3. Wait for the `Down`: for the timeout, or for ever.
        if let Some(d) = ctx.wait_down(mref, first).await {
            return d.reason;
        }
        // 4. It ignored `shutdown` for its whole timeout: kill it, and wait
        //    for that `Down` (a kill cannot be ignored).
        ctx.kill(pid);
        ctx.wait_down(mref, None)
            .await
            .map_or(ExitReason::Killed, |d| d.reason)
    }

    /// Whether `reason` is a clean stop for a child stopped with `shutdown`
    /// (OTP.md §1.8); anything else is logged as a shutdown error, and the
    /// stop goes on regardless.
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

    /// Stops child `idx` (if it runs) and marks it stopped; its spec stays.
    pub(super) async fn terminate_index(&mut self, ctx: &mut Ctx, idx: usize) {
        let rec = &self.children[idx];
        if let Some(pid) = rec.pid {
            let shutdown = rec.data.effective_shutdown();
            let reason = Self::shutdown_child(ctx, pid, shutdown).await;
            self.check_stop_reason(&self.children[idx], &reason);
        }
        // The pid is kept as `last_pid`: the restart that may follow (a
        // group restart) reports it as the process it replaces.
        let rec = &mut self.children[idx];
        if let Some(pid) = rec.pid.take() {
            rec.last_pid = Some(pid);
        }
        // A pending child is stopped too: its retry is over.
        rec.state = ChildState::Stopped;
        rec.pending = None;
    }

    /// Stops every child, in the order the strategy gives (OTP.md §1.8):
    /// in reverse start order one at a time, each fully stopped before the
    /// next is signalled, or (simple_one_for_one) all at once with one
    /// timer.
    pub(super) async fn terminate_all(&mut self, ctx: &mut Ctx) {
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
                // simple_one_for_one: the children share the template's
                // shutdown spec.
                let shutdown = self
                    .spec
                    .data
                    .children
                    .first()
                    .map_or(Shutdown::Infinity, |t| t.effective_shutdown());
                // 1. Signal every child at once (unlink, take an exit that
                //    already arrived, monitor, then kill or `shutdown`).
                let mut waiting = Vec::new();
                for &i in &all {
                    let Some(pid) = self.children[i].pid else {
                        continue;
                    };
                    ctx.unlink(pid);
                    if ctx.try_recv_match(|e| is_exit_of(e, pid)).is_some() {
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
                // 2. One timer for all of them: each wait gets what is left
                //    of the shutdown timeout.
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
                // 3. When the timer is up, kill the stragglers and wait for
                //    them.
                for (pid, mref) in left {
                    ctx.kill(pid);
                    ctx.wait_down(mref, None).await;
                }
                // Every child is stopped; their stop reasons are not
                // checked one by one (no `shutdown_error` report here).
                for i in all {
                    self.children[i].pid = None;
                    self.children[i].state = ChildState::Stopped;
                }
                // Pending children have no process to stop; their retries
                // end with the supervisor.
                for c in &mut self.children {
                    if c.state == ChildState::Pending {
                        c.state = ChildState::Stopped;
                        c.pending = None;
                    }
                }
            }
        }
    }
}
