//! The runtime's side of the seam to other nodes, for router implementers:
//! applying the signal frames another node sent (`handle_remote`), serving
//! its spawn requests (`handle_spawn`), breaking every link and monitor
//! towards a lost node (`node_down`), spawning on another node (`spawn_on`),
//! and the query fencing needs (`linked_to_other_nodes`). The router's own
//! side (the traits it implements) is [`crate::remote`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use pool_proto::{
    Dest, ErrorCode, ExitReason, Msg, MsgKind, NodeId, Pid, Ref, RemoteError, SendMsg,
    SpawnMonitor, SpawnRequest,
};
use tokio::sync::oneshot;

use super::Runtime;
use super::signals::node_down_notice;
use super::spawn::SpawnOpts;
use crate::envelope::{CallRequest, Down, Envelope, Message, SpawnAnswer};
use crate::error::Error;
use crate::process::mailbox::Push;
use crate::process::record::{MonitorIn, Process};
use crate::remote::{Reach, RemoteRouter, SpawnGate, SpawnReply};

impl Runtime {
    /// Applies a node-to-node signal frame that arrived from another node
    /// (`Send`, `Link`, `Unlink`, `Monitor`, `Demonitor`, `Exit`, `Down`).
    /// Any other frame is handed back.
    pub fn handle_remote(&self, msg: Msg) -> Result<(), Box<Msg>> {
        match msg {
            Msg::Send(SendMsg {
                to,
                from,
                kind,
                payload,
                trace,
            }) => {
                if let Some(trace) = trace {
                    tracing::debug!(trace = %pool_proto::TraceHex(trace), ?to, ?from, ?kind, "traced message from another node");
                }
                // `{Name, Node} ! Msg` is resolved here, on the name's node;
                // an unknown name or a dead pid drops the message, as OTP.
                let to = match to {
                    Dest::Pid(p) => p,
                    Dest::Name(n) => match self.whereis(&n) {
                        Some(p) => p,
                        None => return Ok(()),
                    },
                };
                if to.node() != self.inner.node {
                    return Ok(());
                }
                let msg = Message::from_payload(payload);
                // The payload stays encoded until the receiver asks for a
                // type (`Message::take`).
                let env = match kind {
                    MsgKind::Plain => Envelope::Message { from, msg },
                    MsgKind::Call(mref) => Envelope::Call(Box::new(CallRequest {
                        from: from.unwrap_or_else(|| self.system_pid()),
                        mref,
                        msg,
                    })),
                    MsgKind::Reply(mref) => Envelope::Reply { mref, msg },
                };
                // A reply is never refused by the limit: its caller waits.
                // (Under the table's read guard, as a local send: no
                // reference count is taken per message.)
                let bounded = !matches!(env, Envelope::Reply { .. });
                self.inner.procs.with(to.serial(), |p| {
                    if !bounded {
                        p.mailbox.push(env);
                    } else if p.push_message(env) == Push::Full {
                        self.mailbox_overflow(p);
                    }
                });
            }
            // The other node made its half of the link; make ours. If our
            // process is gone, it answers as a dead process does: an exit
            // signal `noproc` back.
            Msg::Link { from, to } => {
                if !self.add_link_half(to, from)
                    && let Some(r) = self.router()
                {
                    r.exit(to, from, ExitReason::NoProc, false);
                }
            }
            Msg::Unlink { from, to } => self.remove_link_half(to, from),
            // A monitor from the other node: recorded on the target, or
            // answered at once with a `Down` `noproc` if it is not alive.
            Msg::Monitor {
                watcher,
                target,
                mref,
                with_result,
            } => {
                let added = self.get(target).is_some_and(|t| {
                    let mut st = t.lock();
                    if st.exiting {
                        return false;
                    }
                    st.monitored_by.push(MonitorIn {
                        mref,
                        watcher,
                        with_result,
                    });
                    true
                });
                if !added && let Some(r) = self.router() {
                    r.down(watcher, mref, target, ExitReason::NoProc, None);
                }
            }
            Msg::Demonitor { target, mref, .. } => {
                if let Some(t) = self.get(target) {
                    t.lock().monitored_by.retain(|m| m.mref != mref);
                }
            }
            // An exit signal: a link's (its half here goes with it) or an
            // explicit `exit/2`, applied as a local one would be.
            Msg::Exit {
                from,
                to,
                reason,
                explicit,
            } => {
                if let Some(p) = self.get(to) {
                    if !explicit {
                        p.lock().links.retain(|l| *l != from);
                    }
                    self.deliver_exit(&p, from, reason, explicit);
                }
            }
            // A monitor held by a local process fired on the other node.
            Msg::Down {
                watcher,
                mref,
                pid,
                reason,
                result,
            } => {
                self.send_down(
                    watcher,
                    mref,
                    pid,
                    reason,
                    result.map(Message::from_payload),
                );
            }
            other => return Err(Box::new(other)),
        }
        Ok(())
    }

    /// Serves a spawn request from another node. The returned gate holds
    /// the new process back until the caller has queued the answer; drop it
    /// right after.
    pub fn handle_spawn(&self, req: SpawnRequest) -> Result<(Pid, SpawnGate), RemoteError> {
        self.inner.spawns_received.fetch_add(1, Ordering::Relaxed);
        // The link and monitor of the requester are made at the spawn, as
        // for a local one; the process waits at the gate so that its first
        // signal cannot overtake the answer carrying its pid.
        let (gate, held) = SpawnGate::new();
        let mut opts = SpawnOpts::new();
        opts.gate = Some(held);
        opts.link = req.link;
        opts.monitor = req.monitor.map(|m| (m.watcher, m.mref, m.with_result));
        opts.owner = req.owner;
        opts.trace = req.trace;
        if let Some(sandbox) = req.sandbox {
            opts = opts.sandbox(sandbox);
        }
        let pid = self
            .spawn_function(&req.function, req.args, opts)
            .map_err(refusal)
            .inspect_err(|e| self.inner.outcomes.spawn_refused(e.code))?;
        if let Some(trace) = req.trace {
            // 16 hex digits, as every node logs a trace (`grep trace=<hex>`).
            tracing::info!(trace = %pool_proto::TraceHex(trace), function = %req.function, %pid, "spawning for another node");
        }
        Ok((pid, gate))
    }

    /// Every link and monitor towards `node` fires `noconnection` (its
    /// connection is lost, or the master declared it down), and every node
    /// monitor on it delivers its [`NodeDown`](crate::NodeDown) message.
    pub fn node_down(&self, node: NodeId) {
        // Under each process's lock, take out every link and monitor
        // towards `node`, then signal outside the lock (no two locks are
        // ever held together). Monitors the lost node held on our
        // processes are simply forgotten: nobody is left to tell.
        let procs: Vec<Arc<Process>> = self.inner.procs.snapshot();
        for p in procs {
            let (links, downs, notices) = {
                let mut st = p.lock();
                if st.exiting {
                    continue;
                }
                let mut links = Vec::new();
                st.links.retain(|l| {
                    let gone = l.node() == node;
                    if gone {
                        links.push(*l);
                    }
                    !gone
                });
                let mut downs = Vec::new();
                st.monitoring.retain(|(r, t)| {
                    let gone = t.node() == node;
                    if gone {
                        downs.push((*r, *t));
                    }
                    !gone
                });
                st.monitored_by.retain(|m| m.watcher.node() != node);
                let mut notices = 0;
                if !st.node_monitors.is_empty() {
                    st.node_monitors.retain(|n| {
                        let gone = *n == node;
                        notices += usize::from(gone);
                        !gone
                    });
                }
                (links, downs, notices)
            };
            // (A monitor by name watches a local process: none is here.)
            for (mref, target) in downs {
                p.mailbox.push(Envelope::Down(Box::new(Down {
                    mref,
                    pid: target,
                    reason: ExitReason::NoConnection,
                    result: None,
                    name: None,
                })));
            }
            // OTP does not order `nodedown` against the link and monitor
            // signals of the same loss; here it comes after the `Down`s.
            for _ in 0..notices {
                p.mailbox.push(node_down_notice(node));
            }
            for l in links {
                self.deliver_exit(&p, l, ExitReason::NoConnection, false);
            }
        }
    }

    /// Local processes linked to a process of another node (children this
    /// node hosts for supervisors elsewhere, among others): what a node
    /// stops when it is fenced or leaves the pool gracefully.
    pub fn linked_to_other_nodes(&self) -> Vec<Pid> {
        let node = self.node();
        let mut out: Vec<Pid> = self
            .inner
            .procs
            .snapshot()
            .into_iter()
            .filter(|p| {
                let st = p.lock();
                !st.exiting && st.links.iter().any(|l| l.node() != node)
            })
            .map(|p| p.pid)
            .collect();
        out.sort();
        out
    }

    /// Spawns the function `function` on `node` (this node included) for
    /// process `requester`, linked and/or monitored by it. Returns the pid
    /// and the monitor's reference if one was asked for.
    pub async fn spawn_on(
        &self,
        node: NodeId,
        requester: Pid,
        mut req: SpawnRequest,
        link: bool,
        monitor: Option<bool>,
    ) -> Result<(Pid, Option<Ref>), Error> {
        let mref = monitor.map(|_| self.make_ref());
        req.link = link.then_some(requester);
        req.monitor = monitor.zip(mref).map(|(with_result, mref)| SpawnMonitor {
            watcher: requester,
            mref,
            with_result,
        });
        if node == self.inner.node {
            let pid = self.spawn_requested_here(req)?;
            return Ok((pid, mref));
        }
        // Another node: only a live member can be asked.
        let router = self.reachable(node)?;
        let (tx, rx) = oneshot::channel();
        let rt = self.clone();
        let reply = SpawnReply::new(move |res: Result<Pid, RemoteError>| {
            rt.spawn_answered(requester, link, mref, &res);
            let _ = tx.send(res);
        });
        router.spawn(node, req, reply);
        // A reply dropped unanswered (the connection was lost) is `NoRoute`.
        match rx.await {
            Ok(Ok(pid)) => Ok((pid, mref)),
            Ok(Err(e)) => Err(Error::Remote(e)),
            Err(_) => Err(Error::NoRoute { node }),
        }
    }

    /// OTP's `spawn_request`: asks for the function `function` on `node`
    /// (this node included) for process `requester`, and returns at once
    /// with the request's reference. The answer comes later as a
    /// [`SpawnAnswer`] message in the requester's mailbox, if
    /// `opts.reply` wants it; nothing waits for it, so a process can have
    /// any number of spawns in flight, each costing only the router's
    /// record of the request until its answer arrives. A link and a monitor (`opts.link`, `opts.monitor`) are made
    /// as [`spawn_on`](Self::spawn_on) makes them, before the new process
    /// runs; the monitor's reference is the request's, as in OTP. A failed
    /// spawn makes neither, and its error is in the answer (or nowhere, if
    /// `opts.reply` leaves errors out).
    pub fn spawn_request(
        &self,
        node: NodeId,
        requester: Pid,
        mut req: SpawnRequest,
        opts: SpawnRequestOpts,
    ) -> Ref {
        let id = self.make_ref();
        req.link = opts.link.then_some(requester);
        req.monitor = opts.monitor.map(|with_result| SpawnMonitor {
            watcher: requester,
            mref: id,
            with_result,
        });
        if node == self.inner.node {
            let res = self.spawn_requested_here(req).map_err(refusal);
            self.deliver_answer(requester, id, opts.reply, res);
            return id;
        }
        let router = match self.reachable(node) {
            Ok(r) => r,
            Err(e) => {
                let e = RemoteError::new(ErrorCode::UnknownNode, e.to_string());
                self.deliver_answer(requester, id, opts.reply, Err(e));
                return id;
            }
        };
        let rt = self.clone();
        let mref = opts.monitor.map(|_| id);
        let reply = SpawnReply::new(move |res: Result<Pid, RemoteError>| {
            rt.spawn_answered(requester, opts.link, mref, &res);
            rt.deliver_answer(requester, id, opts.reply, res);
        });
        router.spawn(node, req, reply);
        id
    }

    /// A spawn request for this node: a plain local spawn by name, the
    /// link and the monitor made atomically by the spawn itself.
    fn spawn_requested_here(&self, req: SpawnRequest) -> Result<Pid, Error> {
        let mut opts = SpawnOpts::new();
        opts.link = req.link;
        opts.monitor = req.monitor.map(|m| (m.watcher, m.mref, m.with_result));
        opts.owner = req.owner;
        self.spawn_function(&req.function, req.args, opts)
    }

    /// The router, if `node` is a live member it can ask.
    fn reachable(&self, node: NodeId) -> Result<&Arc<dyn RemoteRouter>, Error> {
        let router = self.router().ok_or(Error::NoRoute { node })?;
        match router.reach(node) {
            Reach::Up => Ok(router),
            Reach::Down | Reach::Unknown => Err(Error::NoRoute { node }),
        }
    }

    /// The answer to a spawn on another node arrived: runs before any later
    /// frame from that node is applied, so it records the requester's
    /// halves of the link and the monitor now, and a signal from the new
    /// process finds them.
    fn spawn_answered(
        &self,
        requester: Pid,
        link: bool,
        mref: Option<Ref>,
        res: &Result<Pid, RemoteError>,
    ) {
        let Ok(pid) = res else { return };
        if link
            && !self.add_link_half(requester, *pid)
            && let Some(r) = self.router()
        {
            r.exit(requester, *pid, ExitReason::NoProc, false);
        }
        if let Some(mref) = mref
            && let Some(w) = self.get(requester)
        {
            w.lock().monitoring.push((mref, *pid));
        }
    }

    /// Puts a spawn request's answer in its requester's mailbox, if `reply`
    /// wants it and the requester is still alive.
    fn deliver_answer(
        &self,
        requester: Pid,
        req: Ref,
        reply: SpawnReplies,
        result: Result<Pid, RemoteError>,
    ) {
        if !reply.wants(result.is_ok()) {
            return;
        }
        if let Some(p) = self.get(requester) {
            p.mailbox.push(Envelope::Message {
                from: None,
                msg: Message::new(SpawnAnswer { req, result }),
            });
        }
    }
}

/// Which answers of a [`Runtime::spawn_request`] reach the requester's
/// mailbox: OTP's `{reply, yes | no | error_only | success_only}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpawnReplies {
    /// Every answer (`yes`).
    #[default]
    All,
    /// None (`no`).
    None,
    /// Only failures (`error_only`).
    ErrorsOnly,
    /// Only successes (`success_only`).
    SuccessesOnly,
}

impl SpawnReplies {
    /// Whether an answer that is a success (`ok`) or a failure goes to the
    /// requester.
    pub fn wants(self, ok: bool) -> bool {
        match self {
            SpawnReplies::All => true,
            SpawnReplies::None => false,
            SpawnReplies::ErrorsOnly => !ok,
            SpawnReplies::SuccessesOnly => ok,
        }
    }
}

/// The options of a [`Runtime::spawn_request`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnRequestOpts {
    /// Link the requester with the new process.
    pub link: bool,
    /// Monitor the new process (`Some(true)`: and be given its result
    /// value in the `Down`); the monitor's reference is the request's.
    pub monitor: Option<bool>,
    /// Which answers reach the requester.
    pub reply: SpawnReplies,
}

/// A spawn this node refused, as the requester is told it.
fn refusal(e: Error) -> RemoteError {
    match e {
        Error::UnknownFunction { .. } => {
            RemoteError::new(ErrorCode::UnknownFunction, e.to_string())
        }
        Error::BadArgs { .. } => RemoteError::new(ErrorCode::BadArgs, e.to_string()),
        other => RemoteError::new(ErrorCode::Internal, other.to_string()),
    }
}
