//! Pending children in the supervisor process (`pending.*` in
//! `docs/semantics.md`): a child whose start failed for a reason that may
//! pass waits here instead of failing the start or using up the restart
//! intensity. The decisions (what is transient, the backoff) are pure, in
//! [`supervisor::pending`](super::super::pending); this file marks children
//! pending, waits for the next due retry or a membership change between
//! two envelopes (`wait`), and retries (`retry_pending`).
//!
//! Owns no task: the wait is a branch of the supervisor's own loop, so a
//! supervisor that stops (or is killed) takes its pending retries with it.

use std::hash::BuildHasher;

use pool_proto::{ExitReason, Strategy};
use tokio::sync::watch;
use tokio::time::Instant;

use super::super::pending::{BACKOFF, StartFailure};
use super::super::spec::Started;
use super::super::strategy::{ChildState, ExitAction, on_start_ignored};
use super::{PendingStart, Retry, Server, Wake};
use crate::envelope::Message;
use crate::runtime::{Ctx, RuntimeEvent};

/// Whether the strategy starts its children in order, later ones
/// depending on earlier ones: then a pending child holds back the children
/// after it (in init and in a group restart).
fn ordered(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::OneForAll | Strategy::RestForOne)
}

/// Resolves when the membership signal fires; never without one (or once
/// its sender is gone).
async fn changed(rx: Option<&mut watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl Server {
    /// The delay before retry number `attempts` of child `uid`: the backoff
    /// with this supervisor's jitter.
    fn backoff(&self, uid: u64, attempts: u32) -> std::time::Duration {
        let h = self.jitter.hash_one((uid, attempts));
        let jitter = (h >> 11) as f64 / (1u64 << 53) as f64;
        BACKOFF.delay(attempts, jitter)
    }

    /// Child `idx` could not start for a transient reason `why`: it waits
    /// pending, retried after the first backoff step (or the next one, if
    /// it was already pending).
    pub(super) fn set_pending(&mut self, idx: usize, why: String, restart: bool) {
        let uid = self.children[idx].uid;
        let (attempts, restart) = match &self.children[idx].pending {
            Some(p) if p.due.is_some() => (p.attempts + 1, p.restart || restart),
            Some(p) => (0, p.restart || restart),
            None => (0, restart),
        };
        let due = Instant::now() + self.backoff(uid, attempts);
        let rec = &mut self.children[idx];
        rec.pid = None;
        rec.state = ChildState::Pending;
        rec.pending = Some(PendingStart {
            reason: why,
            attempts,
            due: Some(due),
            restart,
        });
    }

    /// Under one_for_all and rest_for_one, the children `behind` (uids, in
    /// start order) wait for `first`, pending with no backoff of their own:
    /// they start after it, in order, as a group restart would.
    pub(super) fn wait_behind(&mut self, behind: &[u64], first: &str, restart: bool) {
        if !ordered(self.strategy()) {
            return;
        }
        for &u in behind {
            let Some(i) = self.index_of_uid(u) else {
                continue;
            };
            let rec = &mut self.children[i];
            if rec.state == ChildState::Running {
                continue;
            }
            rec.state = ChildState::Pending;
            rec.pending = Some(PendingStart {
                reason: format!("waits for {first} to start first"),
                attempts: 0,
                due: None,
                restart: restart || rec.pending.as_ref().is_some_and(|p| p.restart),
            });
        }
    }

    /// When the loop should next retry pending children: the earliest due
    /// retry. A child waiting for a sibling has none of its own, but is
    /// looked at again at the backoff's cap, in case what it waits for was
    /// stopped or deleted through the API meanwhile.
    fn next_due(&self) -> Option<Instant> {
        self.children
            .iter()
            .filter_map(|c| c.pending.as_ref())
            .map(|p| p.due.unwrap_or_else(|| Instant::now() + BACKOFF.cap))
            .min()
    }

    /// Waits for the next envelope, or, while children are pending, for
    /// the first of their due retries or a change of the pool's membership.
    /// The mailbox comes first, so calls are never held up by retries.
    pub(super) async fn wait(&mut self, ctx: &mut Ctx) -> Wake {
        let Some(due) = self.next_due() else {
            return Wake::Envelope(ctx.recv().await);
        };
        tokio::select! {
            biased;
            env = ctx.recv() => Wake::Envelope(env),
            _ = changed(self.changes.as_mut()) => Wake::PendingDue { all: true },
            _ = tokio::time::sleep_until(due) => Wake::PendingDue { all: false },
        }
    }

    /// Retries the pending children, in start order: those whose backoff is
    /// up, or `all` of them. A success runs the child (one restart of it if
    /// it replaces a process); a transient failure waits again, one backoff
    /// step longer; a permanent failure is a failed restart as OTP has it
    /// (counted, then retried at once: `Retry`). Under one_for_all and
    /// rest_for_one a child still pending holds back the ones after it.
    /// Returns the supervisor's exit reason if it gives up.
    pub(super) async fn retry_pending(&mut self, ctx: &mut Ctx, all: bool) -> Option<ExitReason> {
        let now = Instant::now();
        let ordered = ordered(self.strategy());
        let uids: Vec<u64> = self
            .children
            .iter()
            .filter(|c| c.state == ChildState::Pending)
            .map(|c| c.uid)
            .collect();
        let mut blocked: Option<String> = None;
        for u in uids {
            let Some(i) = self.index_of_uid(u) else {
                continue;
            };
            // The node a child was lost with is avoided for its immediate
            // restart only: once it waits, that node may well be back (a
            // rejoining node counts), and may be the only one that fits.
            self.children[i].lost_node = None;
            let rec = self.children[i].clone();
            let Some(p) = rec.pending.clone() else {
                continue;
            };
            if let Some(first) = &blocked {
                self.wait_behind(&[u], first, false);
                continue;
            }
            if !all && p.due.is_some_and(|d| d > now) {
                if ordered {
                    blocked = Some(rec.data.id.clone());
                }
                continue;
            }
            let old = rec.last_pid;
            match self.start_one(ctx, &rec).await {
                Ok(Started::Pid(pid)) => {
                    tracing::info!(supervisor = %self.path, child = %rec.data.id, %pid, "pending child started");
                    let r = &mut self.children[i];
                    r.set_running(pid);
                    r.lost_node = None;
                    if p.restart {
                        r.restarts += 1;
                        ctx.runtime().emit(RuntimeEvent::ChildRestarted {
                            supervisor: ctx.pid(),
                            path: self.path.clone(),
                            child: rec.data.id.clone(),
                            old,
                            new: Some(pid),
                            reason: ExitReason::Error(p.reason.clone()),
                        });
                    }
                }
                Ok(Started::Ignore) => {
                    let r = &mut self.children[i];
                    r.pending = None;
                    r.state = ChildState::Stopped;
                    if on_start_ignored(self.strategy(), rec.data.restart) == ExitAction::Remove {
                        self.children.remove(i);
                    }
                }
                Err(StartFailure::Transient(why)) => {
                    tracing::debug!(supervisor = %self.path, child = %rec.data.id, reason = %why, "pending child still cannot start");
                    self.set_pending(i, why, false);
                    if ordered {
                        blocked = Some(rec.data.id.clone());
                    }
                }
                Err(StartFailure::Permanent(reason)) => {
                    // No longer a matter of time: OTP's failed restart
                    // (§1.7), counted, retried at once after the mailbox.
                    tracing::error!(supervisor = %self.path, child = %rec.data.id, %reason, "pending child failed to start; retrying");
                    if let Some(stop) = self.count_restart(ctx).await {
                        return Some(stop);
                    }
                    let Some(i) = self.index_of_uid(u) else {
                        continue;
                    };
                    let r = &mut self.children[i];
                    r.pending = None;
                    r.state = ChildState::Restarting;
                    ctx.runtime().emit(RuntimeEvent::ChildRestarted {
                        supervisor: ctx.pid(),
                        path: self.path.clone(),
                        child: rec.data.id.clone(),
                        old,
                        new: None,
                        reason,
                    });
                    let me = ctx.pid();
                    ctx.send_message(me, Message::local(Retry { uid: u }));
                    if ordered {
                        // The retry's plan starts the rest of the group.
                        break;
                    }
                }
            }
        }
        None
    }
}
