//! Links, monitors and exit signals (OTP.md §2.1, §2.2), `kill`, and the
//! exit sequence of a process (`finish`), which turns its end into exit
//! signals to its links and `Down`s to its monitors.
//!
//! Each link and monitor is recorded in halves, one on each process; a half
//! on a process of another node is that node's job, reached through the
//! router. A signal to a local process either becomes a message (it traps
//! exits) or makes it die: the reason is recorded in its state and its task
//! aborted, and the task's drop runs `finish`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pool_proto::{ExitReason, Pid, Ref};

use super::Runtime;
use crate::envelope::{Down, Envelope, Message};
use crate::error::Error;
use crate::process::record::{MonitorIn, Process, SCHED_IDLE};
use crate::remote::Reach;

impl Runtime {
    /// Adds `other` to the links of local process `pid`; false if `pid` is
    /// not alive.
    pub(super) fn add_link_half(&self, pid: Pid, other: Pid) -> bool {
        match self.get(pid) {
            Some(p) => {
                let mut st = p.lock();
                if st.exiting {
                    return false;
                }
                if !st.links.contains(&other) {
                    st.links.push(other);
                }
                true
            }
            None => false,
        }
    }

    /// Removes `other` from the links of local process `pid`, if alive.
    pub(super) fn remove_link_half(&self, pid: Pid, other: Pid) {
        if let Some(p) = self.get(pid) {
            p.lock().links.retain(|l| *l != other);
        }
    }

    /// Links `from` (a local process) with `to` (`link/1`).
    pub(crate) fn link(&self, from: Pid, to: Pid) -> Result<(), Error> {
        if from == to {
            return Ok(());
        }
        let Some(me) = self.get(from) else {
            return Ok(());
        };
        // The other half first: a local target that is not alive is
        // `Unknown`, like a pid of a node never seen.
        let reach = if to.node() == self.inner.node {
            if self.add_link_half(to, from) {
                Reach::Up
            } else {
                Reach::Unknown
            }
        } else {
            self.reach(to.node())
        };
        match reach {
            Reach::Up => {
                // Our half; a remote target makes its half when the
                // router's frame arrives (and answers `noproc` if it cannot).
                self.add_link_half(from, to);
                if to.node() != self.inner.node
                    && let Some(r) = self.router()
                {
                    r.link(from, to);
                }
                Ok(())
            }
            Reach::Down => {
                // A pid of an unreachable node: the link breaks at once.
                self.deliver_exit(&me, to, ExitReason::NoConnection, false);
                Ok(())
            }
            // Linking to a dead process (OTP.md §2.1): an error for a
            // process that does not trap exits, an `Exit` `noproc` message
            // for one that does.
            Reach::Unknown => {
                if me.trap_exit.load(Ordering::Acquire) {
                    me.mailbox.push(Envelope::Exit {
                        from: to,
                        reason: ExitReason::NoProc,
                    });
                    Ok(())
                } else {
                    Err(Error::NoProc { pid: to })
                }
            }
        }
    }

    /// Removes the link between `from` (local) and `to`, both halves.
    pub(crate) fn unlink(&self, from: Pid, to: Pid) {
        self.remove_link_half(from, to);
        if to.node() == self.inner.node {
            self.remove_link_half(to, from);
        } else if let Some(r) = self.router() {
            r.unlink(from, to);
        }
    }

    /// `watcher` (local) monitors `target`; a target that is not alive (or
    /// whose node is lost) gives its `Down` at once.
    pub(crate) fn monitor(&self, watcher: Pid, target: Pid, with_result: bool) -> Ref {
        let mref = self.make_ref();
        let Some(w) = self.get(watcher) else {
            return mref;
        };
        let reach = if target.node() == self.inner.node {
            match self.get(target) {
                Some(t) => {
                    let mut st = t.lock();
                    if st.exiting {
                        Reach::Unknown
                    } else {
                        st.monitored_by.push(MonitorIn {
                            mref,
                            watcher,
                            with_result,
                        });
                        Reach::Up
                    }
                }
                None => Reach::Unknown,
            }
        } else {
            self.reach(target.node())
        };
        let down = |reason| {
            w.mailbox.push(Envelope::Down(Box::new(Down {
                mref,
                pid: target,
                reason,
                result: None,
            })))
        };
        match reach {
            Reach::Up => {
                w.lock().monitoring.push((mref, target));
                if target.node() != self.inner.node
                    && let Some(r) = self.router()
                {
                    r.monitor(watcher, target, mref, with_result);
                }
            }
            Reach::Down => {
                down(ExitReason::NoConnection);
            }
            Reach::Unknown => {
                down(ExitReason::NoProc);
            }
        }
        mref
    }

    /// Removes monitor `mref` of `watcher` (local), both halves.
    pub(crate) fn demonitor(&self, watcher: Pid, mref: Ref) {
        let Some(w) = self.get(watcher) else {
            return;
        };
        let target = {
            let mut st = w.lock();
            let pos = st.monitoring.iter().position(|(r, _)| *r == mref);
            pos.map(|i| st.monitoring.swap_remove(i).1)
        };
        let Some(target) = target else {
            return;
        };
        if target.node() == self.inner.node {
            if let Some(t) = self.get(target) {
                t.lock().monitored_by.retain(|m| m.mref != mref);
            }
        } else if let Some(r) = self.router() {
            r.demonitor(watcher, target, mref);
        }
    }

    /// Sends the exit signal `reason` from `from` to `to` (`exit/2`).
    pub fn exit_from(&self, from: Pid, to: Pid, reason: ExitReason) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to) {
                self.deliver_exit(&p, from, reason, true);
            }
        } else if let Some(r) = self.router() {
            r.exit(from, to, reason, true);
        }
    }

    /// Sends the exit signal `reason` to `to` from the node itself.
    pub fn exit(&self, to: Pid, reason: ExitReason) {
        self.exit_from(self.system_pid(), to, reason);
    }

    /// Kills `to` (untrappable; it dies `killed`).
    pub fn kill(&self, to: Pid) {
        self.exit(to, ExitReason::Kill);
    }

    /// Applies an exit signal to a local process (OTP.md 2.1).
    pub(super) fn deliver_exit(
        &self,
        target: &Arc<Process>,
        from: Pid,
        reason: ExitReason,
        explicit: bool,
    ) {
        if explicit && reason == ExitReason::Kill {
            self.terminate(target, ExitReason::Killed);
        } else if target.trap_exit.load(Ordering::Acquire) {
            target.mailbox.push(Envelope::Exit { from, reason });
        } else if reason.is_normal() {
            // `normal` is ignored, except `exit(self(), normal)`.
            if from == target.pid {
                self.terminate(target, ExitReason::Normal);
            }
        } else {
            self.terminate(target, reason);
        }
    }

    /// A message did not fit in `target`'s mailbox (its limit): the process
    /// dies, as an Erlang process over its `max_heap_size` does.
    pub(crate) fn mailbox_overflow(&self, target: &Arc<Process>) {
        tracing::warn!(pid = %target.pid, limit = target.max_mailbox, "mailbox limit reached: killing the process");
        self.terminate(
            target,
            ExitReason::Error(format!(
                "mailbox overflow: more than {} messages waiting",
                target.max_mailbox
            )),
        );
    }

    /// Makes a local process die with `reason`: records it and aborts the
    /// task, whose drop runs the exit sequence.
    fn terminate(&self, target: &Arc<Process>, reason: ExitReason) {
        let abort = {
            let mut st = target.lock();
            if st.exiting || st.pending_exit.is_some() {
                return;
            }
            st.pending_exit = Some(reason);
            st.abort.clone()
        };
        if let Some(a) = abort {
            a.abort();
        }
    }

    /// The exit sequence of a process (OTP order: the process is gone from
    /// the table before anyone is told).
    pub(super) fn finish(&self, proc: &Arc<Process>, out: Option<(ExitReason, Option<Message>)>) {
        let pid = proc.pid;
        // 1. Under the lock: mark it exiting (no new link or monitor can
        //    be added from now on), settle the reason — one a signal left
        //    wins over what the function returned — and take every link,
        //    monitor and the name out.
        let (reason, mut result, links, monitored_by, monitoring, name) = {
            let mut st = proc.lock();
            st.exiting = true;
            st.abort = None;
            let (reason, result) = match st.pending_exit.take() {
                Some(r) => (r, None),
                None => out.unwrap_or((ExitReason::Killed, None)),
            };
            (
                reason,
                result,
                std::mem::take(&mut st.links),
                std::mem::take(&mut st.monitored_by),
                std::mem::take(&mut st.monitoring),
                st.name.take(),
            )
        };
        // 2. Out of the table before anyone is told: a process that learns
        //    of the exit and looks the pid up finds it gone.
        self.inner.procs.remove(pid.serial());
        // Only while `kill_all` waits is it worth asking whether this exit
        // emptied the table.
        if self.inner.empty_waiters.load(Ordering::SeqCst) > 0 && self.inner.procs.is_empty() {
            self.inner.emptied.notify_waiters();
        }
        // 3. Later sends are refused by the closed mailbox (and dropped).
        proc.mailbox.close();
        proc.sched.store(SCHED_IDLE, Ordering::Release);
        if let Some(name) = name {
            self.drop_name(&name, pid);
        }
        if !reason.is_normal() {
            tracing::debug!(%pid, function = %proc.meta.function, %reason, "process exited");
        }
        // 4. Exit signals to the links (each drops its half of the link),
        //    then `Down`s to the monitors (the result goes to the first
        //    that asked for it), then our own monitors are removed.
        for other in links {
            if other.node() == self.inner.node {
                if let Some(p) = self.get(other) {
                    p.lock().links.retain(|l| *l != pid);
                    self.deliver_exit(&p, pid, reason.clone(), false);
                }
            } else if let Some(r) = self.router() {
                r.exit(pid, other, reason.clone(), false);
            }
        }
        for m in monitored_by {
            let res = if m.with_result { result.take() } else { None };
            self.send_down(m.watcher, m.mref, pid, reason.clone(), res);
        }
        for (mref, target) in monitoring {
            if target.node() == self.inner.node {
                if let Some(t) = self.get(target) {
                    t.lock().monitored_by.retain(|m| m.mref != mref);
                }
            } else if let Some(r) = self.router() {
                r.demonitor(pid, target, mref);
            }
        }
    }

    /// Delivers the `Down` of monitor `mref` (on `pid`, ended with
    /// `reason`) to `watcher`, here or on its node.
    pub(super) fn send_down(
        &self,
        watcher: Pid,
        mref: Ref,
        pid: Pid,
        reason: ExitReason,
        result: Option<Message>,
    ) {
        if watcher.node() == self.inner.node {
            if let Some(w) = self.get(watcher) {
                w.lock().monitoring.retain(|(r, _)| *r != mref);
                w.mailbox.push(Envelope::Down(Box::new(Down {
                    mref,
                    pid,
                    reason,
                    result,
                })));
            }
        } else if let Some(r) = self.router() {
            let result = result.and_then(|m| m.encode().ok());
            r.down(watcher, mref, pid, reason, result);
        }
    }

    /// Kills every process (last step of a node's shutdown) and waits up to
    /// `timeout` for them to be gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let rt = supervisor::Runtime::standalone();
    /// for _ in 0..3 {
    ///     rt.spawn(|mut ctx| async move {
    ///         ctx.recv().await;
    ///     });
    /// }
    /// rt.kill_all(Duration::from_secs(5)).await;
    /// assert_eq!(rt.process_count(), 0);
    /// # }
    /// ```
    pub async fn kill_all(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // Counted before the table is read: an exit that empties it after
        // that read sees the waiter and wakes it.
        self.inner.empty_waiters.fetch_add(1, Ordering::SeqCst);
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        for p in &procs {
            self.terminate(p, ExitReason::Killed);
        }
        loop {
            let emptied = self.inner.emptied.notified();
            tokio::pin!(emptied);
            // Registered before the check, so a wake between the two is kept.
            emptied.as_mut().enable();
            if self.inner.procs.is_empty()
                || tokio::time::timeout_at(deadline, emptied).await.is_err()
            {
                break;
            }
        }
        self.inner.empty_waiters.fetch_sub(1, Ordering::SeqCst);
    }
}
