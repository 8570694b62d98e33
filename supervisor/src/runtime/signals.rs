//! Links, monitors and exit signals (OTP.md §2.1, §2.2), `kill`, and the
//! exit sequence of a process (`finish`), which turns its end into exit
//! signals to its links and `Down`s to its monitors.
//!
//! Each link and monitor is recorded in halves, one on each process; a half
//! on a process of another node is that node's job, reached through the
//! router. A signal to a local process either becomes a message (it traps
//! exits) or makes it die: the reason is recorded in its state, the
//! process's `exit_pending` flag is raised and its task aborted. A process
//! waiting at an await point goes at once (the task's drop runs `finish`);
//! a process running its code goes at its next await point: every receive
//! of `Ctx` checks the flag before it hands over another envelope, and the
//! task ends as soon as the body stops with the flag raised. So a signal
//! takes effect before any message its sender sent after it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pool_proto::{ExitReason, NodeId, Pid, Ref};

use super::Runtime;
use crate::envelope::{Down, Envelope, Message, NodeDown};
use crate::error::Error;
use crate::process::record::{MonitorIn, Process, SCHED_IDLE};
use crate::remote::Reach;

/// What an exit signal (or a kill) did to its target, as far as the sender
/// can tell when the call returns.
///
/// Scheduling is cooperative: a process dies at an await point. One that
/// was waiting when the signal came is gone before it runs again
/// ([`Exiting`](Self::Exiting)); one that was running its own code dies at
/// its next await point ([`Pending`](Self::Pending)), and one that computes
/// without ever awaiting cannot be stopped. Meanwhile it is listed with the
/// status `exiting`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{ExitOutcome, ExitReason, Runtime};
/// let rt = Runtime::standalone();
/// let p = rt.spawn(|mut ctx| async move {
///     ctx.recv().await;
/// });
/// tokio::task::yield_now().await; // let it wait for a message
/// assert_eq!(rt.kill(p), ExitOutcome::Exiting);
/// assert_eq!(rt.kill(p), ExitOutcome::Exiting, "a second kill finds it dying");
/// while rt.process_count() > 0 {
///     tokio::task::yield_now().await;
/// }
/// assert_eq!(rt.kill(p), ExitOutcome::NoProc);
/// assert_eq!(rt.exit(p, ExitReason::Shutdown), ExitOutcome::NoProc);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitOutcome {
    /// The target dies without running any more of its code: it was
    /// waiting at an await point (or queued to run), or was already dying.
    Exiting,
    /// The target must die but was running its code when the signal came:
    /// it dies at its next await point (`recv`, `recv_match`, `call`,
    /// `yield_now`, or any other `.await` that waits), before it receives
    /// anything more. Until then it is listed as `exiting`.
    Pending,
    /// The target lives on: it traps exits, and the signal is now an
    /// `Exit` message in its mailbox, after what was already there.
    Trapped,
    /// The target lives on: a `normal` signal from another process to a
    /// process that does not trap exits is ignored.
    Ignored,
    /// No live local process has that pid: the signal is dropped.
    NoProc,
    /// The target is on another node: the signal was handed to the
    /// router, and that node applies it.
    Sent,
}

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
        self.monitor_as(watcher, target, with_result, None)
    }

    /// `watcher` (local) monitors the process registered locally as `name`
    /// (OTP's `monitor(process, Name)`): the name is resolved now, and the
    /// `Down` names it. A name nobody holds gives `Down` `noproc` at once.
    pub(crate) fn monitor_name(&self, watcher: Pid, name: &str) -> Ref {
        match self.whereis(name) {
            Some(target) => self.monitor_as(watcher, target, false, Some(name.to_owned())),
            None => {
                let mref = self.make_ref();
                if let Some(w) = self.get(watcher) {
                    w.mailbox.push(Envelope::Down(Box::new(Down {
                        mref,
                        pid: self.system_pid(),
                        reason: ExitReason::NoProc,
                        result: None,
                        name: Some(name.to_owned()),
                    })));
                }
                mref
            }
        }
    }

    /// [`monitor`](Self::monitor), the `Down` carrying `name` if set.
    fn monitor_as(
        &self,
        watcher: Pid,
        target: Pid,
        with_result: bool,
        name: Option<String>,
    ) -> Ref {
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
        let down = |reason, name| {
            w.mailbox.push(Envelope::Down(Box::new(Down {
                mref,
                pid: target,
                reason,
                result: None,
                name,
            })))
        };
        match reach {
            Reach::Up => {
                {
                    let mut st = w.lock();
                    st.monitoring.push((mref, target));
                    if let Some(name) = name {
                        st.named_monitors.push((mref, name));
                    }
                }
                if target.node() != self.inner.node
                    && let Some(r) = self.router()
                {
                    r.monitor(watcher, target, mref, with_result);
                }
            }
            Reach::Down => {
                down(ExitReason::NoConnection, name);
            }
            Reach::Unknown => {
                down(ExitReason::NoProc, name);
            }
        }
        mref
    }

    /// `watcher` (local) monitors node `node` (OTP's `monitor_node(Node,
    /// true)`): one [`NodeDown`] message when the node goes down, per call.
    /// A node that is not up now (gone, or never seen) gives it at once;
    /// this node never goes down while its processes live, so monitoring
    /// it does nothing.
    pub(crate) fn monitor_node(&self, watcher: Pid, node: NodeId) {
        if node == self.inner.node {
            return;
        }
        let Some(w) = self.get(watcher) else {
            return;
        };
        // Recorded before the reach is read: a `node_down` that runs in
        // between finds the entry and delivers it, and then the entry is
        // gone below, so the notice comes exactly once.
        w.lock().node_monitors.push(node);
        if self.reach(node) == Reach::Up {
            return;
        }
        let still_there = {
            let mut st = w.lock();
            match st.node_monitors.iter().position(|n| *n == node) {
                Some(i) => {
                    st.node_monitors.swap_remove(i);
                    true
                }
                None => false,
            }
        };
        if still_there {
            w.mailbox.push(node_down_notice(node));
        }
    }

    /// Removes one node monitor of `watcher` on `node` (OTP's
    /// `monitor_node(Node, false)`), if it has one.
    pub(crate) fn demonitor_node(&self, watcher: Pid, node: NodeId) {
        if let Some(w) = self.get(watcher) {
            let mut st = w.lock();
            if let Some(i) = st.node_monitors.iter().position(|n| *n == node) {
                st.node_monitors.swap_remove(i);
            }
        }
    }

    /// Removes monitor `mref` of `watcher` (local), both halves.
    pub(crate) fn demonitor(&self, watcher: Pid, mref: Ref) {
        let Some(w) = self.get(watcher) else {
            return;
        };
        let target = {
            let mut st = w.lock();
            if !st.named_monitors.is_empty() {
                st.named_monitors.retain(|(r, _)| *r != mref);
            }
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

    /// Sends the exit signal `reason` from `from` to `to` (`exit/2`), and
    /// says what it did to a local target.
    pub fn exit_from(&self, from: Pid, to: Pid, reason: ExitReason) -> ExitOutcome {
        if to.node() == self.inner.node {
            match self.get(to) {
                Some(p) => self.deliver_exit(&p, from, reason, true),
                None => ExitOutcome::NoProc,
            }
        } else if let Some(r) = self.router() {
            r.exit(from, to, reason, true);
            ExitOutcome::Sent
        } else {
            // No router: the pid's node is unknown, as a dead process.
            ExitOutcome::NoProc
        }
    }

    /// Sends the exit signal `reason` to `to` from the node itself.
    pub fn exit(&self, to: Pid, reason: ExitReason) -> ExitOutcome {
        self.exit_from(self.system_pid(), to, reason)
    }

    /// Kills `to` (untrappable; it dies `killed`). A target running its
    /// code answers [`ExitOutcome::Pending`]: it dies at its next await
    /// point.
    pub fn kill(&self, to: Pid) -> ExitOutcome {
        self.exit(to, ExitReason::Kill)
    }

    /// Applies an exit signal to a local process (OTP.md 2.1).
    pub(super) fn deliver_exit(
        &self,
        target: &Arc<Process>,
        from: Pid,
        reason: ExitReason,
        explicit: bool,
    ) -> ExitOutcome {
        if explicit && reason == ExitReason::Kill {
            self.terminate(target, ExitReason::Killed)
        } else if target.trap_exit.load(Ordering::Acquire) {
            // Queued behind what the sender sent before, ahead of what it
            // sends after: the signal keeps its place among the messages.
            if target.mailbox.push(Envelope::Exit { from, reason }) {
                ExitOutcome::Trapped
            } else {
                ExitOutcome::NoProc
            }
        } else if reason.is_normal() {
            // `normal` is ignored, except `exit(self(), normal)`.
            if from == target.pid {
                self.terminate(target, ExitReason::Normal)
            } else {
                ExitOutcome::Ignored
            }
        } else {
            self.terminate(target, reason)
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
        // Whether it was running does not matter here: it dies at its
        // next receive, before it takes another message.
    }

    /// Makes a local process die with `reason`: records it, raises the
    /// process's `exit_pending` flag and aborts the task. A task waiting at
    /// an await point is dropped (its drop runs the exit sequence); a task
    /// being polled ends at its next await point, where the flag stops it
    /// before it receives anything more (`spawn.rs`, `process.rs`). The
    /// first reason wins.
    fn terminate(&self, target: &Arc<Process>, reason: ExitReason) -> ExitOutcome {
        let abort = {
            let mut st = target.lock();
            if st.exiting {
                return ExitOutcome::Exiting;
            }
            if st.pending_exit.is_none() {
                st.pending_exit = Some(reason);
                // Raised under the lock, after the reason: whoever sees the
                // flag and then takes the lock finds the reason. A message
                // the same sender pushes after this is pushed after the
                // flag, so the receiver sees the flag first.
                target.exit_pending.store(true, Ordering::Release);
            }
            st.abort.clone()
        };
        if let Some(a) = abort {
            a.abort();
        }
        if target.is_running() {
            ExitOutcome::Pending
        } else {
            ExitOutcome::Exiting
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
        self.inner.outcomes.exited(&reason);
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
                let name = {
                    let mut st = w.lock();
                    st.monitoring.retain(|(r, _)| *r != mref);
                    take_name(&mut st.named_monitors, mref)
                };
                w.mailbox.push(Envelope::Down(Box::new(Down {
                    mref,
                    pid,
                    reason,
                    result,
                    name,
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

/// Takes the name monitor `mref` was set by out of `named`, if it was set
/// by a name.
fn take_name(named: &mut Vec<(Ref, String)>, mref: Ref) -> Option<String> {
    let i = named.iter().position(|(r, _)| *r == mref)?;
    Some(named.swap_remove(i).1)
}

/// The message a node monitor on `node` delivers (OTP's `{nodedown, Node}`).
pub(super) fn node_down_notice(node: NodeId) -> Envelope {
    Envelope::Message {
        from: None,
        msg: Message::new(NodeDown { node }),
    }
}
