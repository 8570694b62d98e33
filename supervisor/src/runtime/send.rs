//! Messages: a send to a local pid pushes to its mailbox; a send to a pid
//! (or a name) of another node is encoded once and handed to the router,
//! which keeps frames to one node in order. A message to a dead process is
//! dropped, as in OTP; a full mailbox kills its owner (`signals.rs`).

use pool_proto::{Dest, MsgKind, NodeId, Pid, Ref, SendMsg, TraceId};
use serde::Serialize;

use super::Runtime;
use crate::envelope::{CallRequest, Envelope, Message};
use crate::error::Error;
use crate::process::mailbox::Push;

impl Runtime {
    /// Sends `value` to `to` from outside any process.
    pub fn send<T: Serialize + Send + 'static>(&self, to: Pid, value: T) {
        self.send_message(None, to, Message::new(value));
    }

    /// Sends a prepared message; `from` is the sending process, if any.
    pub fn send_message(&self, from: Option<Pid>, to: Pid, msg: Message) {
        if to.node() == self.inner.node {
            // Push under the table's read guard: no reference-count traffic
            // on the receiver's record.
            self.inner.procs.with(to.serial(), |p| {
                if p.push_message(Envelope::Message { from, msg }) == Push::Full {
                    self.mailbox_overflow(p);
                }
            });
        } else {
            self.route(from, Dest::Pid(to), to.node(), MsgKind::Plain, &msg, None);
        }
    }

    /// Sends to a process of another node, carrying `trace`.
    pub(crate) fn send_remote(
        &self,
        from: Option<Pid>,
        to: Pid,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        self.route(from, Dest::Pid(to), to.node(), MsgKind::Plain, &msg, trace);
    }

    /// Sends to a locally registered name.
    pub fn send_named<T: Serialize + Send + 'static>(
        &self,
        name: &str,
        value: T,
    ) -> Result<(), Error> {
        let to = self.whereis(name).ok_or_else(|| Error::NotRegistered {
            name: name.to_owned(),
        })?;
        self.send(to, value);
        Ok(())
    }

    /// Sends to the name `name` registered on `node` (`{Name, Node} ! Msg`).
    pub fn send_to_name_on(
        &self,
        node: NodeId,
        name: &str,
        from: Option<Pid>,
        msg: Message,
    ) -> Result<(), Error> {
        if node == self.inner.node {
            let to = self.whereis(name).ok_or_else(|| Error::NotRegistered {
                name: name.to_owned(),
            })?;
            self.send_message(from, to, msg);
        } else {
            self.route(
                from,
                Dest::Name(name.to_owned()),
                node,
                MsgKind::Plain,
                &msg,
                None,
            );
        }
        Ok(())
    }

    /// Sends the request of call `mref` from `from` to `to`.
    pub(crate) fn send_call(
        &self,
        from: Pid,
        to: Pid,
        mref: Ref,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to)
                && p.push_message(Envelope::Call(Box::new(CallRequest { from, mref, msg })))
                    == Push::Full
            {
                self.mailbox_overflow(&p);
            }
        } else {
            self.route(
                Some(from),
                Dest::Pid(to),
                to.node(),
                MsgKind::Call(mref),
                &msg,
                trace,
            );
        }
    }

    /// Sends the reply to call `mref`. A reply is never refused by a
    /// mailbox limit: the caller is waiting for it.
    pub(crate) fn send_reply(
        &self,
        from: Option<Pid>,
        to: Pid,
        mref: Ref,
        msg: Message,
        trace: Option<TraceId>,
    ) {
        if to.node() == self.inner.node {
            if let Some(p) = self.get(to) {
                p.mailbox.push(Envelope::Reply { mref, msg });
            }
        } else {
            self.route(
                from,
                Dest::Pid(to),
                to.node(),
                MsgKind::Reply(mref),
                &msg,
                trace,
            );
        }
    }

    /// Encodes `msg` and hands it to the router for `node`. Without a
    /// router (a runtime alone) or for a value that cannot leave the node,
    /// the message is dropped: a send never fails.
    fn route(
        &self,
        from: Option<Pid>,
        to: Dest,
        node: NodeId,
        kind: MsgKind,
        msg: &Message,
        trace: Option<TraceId>,
    ) {
        let Some(router) = self.router() else {
            return;
        };
        match msg.encode() {
            Ok(payload) => router.send(
                node,
                SendMsg {
                    to,
                    from,
                    kind,
                    payload,
                    trace,
                },
            ),
            Err(e) => {
                tracing::warn!(?to, cause = %e, "message dropped: it cannot be sent to another node")
            }
        }
    }
}
