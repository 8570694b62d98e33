//! What a mailbox holds: [`Envelope`]s of [`Message`]s, calls, exit
//! signals turned into messages, and monitor `Down` notices.
//!
//! A node monitor's notice is a plain message of type [`NodeDown`].
//!
//! A [`Message`] sent to a process on the same node carries the sender's
//! value itself, boxed and moved: nothing is serialised. Only a message that
//! leaves the node is encoded (MessagePack), and the receiver decodes it when
//! it asks for a type. [`Message::take`] works the same in both cases, so a
//! process receives from local and remote senders through one API.

use std::any::{Any, type_name};
use std::fmt;

use pool_proto::{ExitReason, NodeId, Payload, Pid, Ref, RemoteError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a boxed local value of a known type (monomorphised per type).
type EncodeFn = fn(&(dyn Any + Send)) -> Result<Payload, pool_proto::Error>;

/// What a local value's type can do, one static table per type: keeps a
/// local message at two words plus the box.
struct LocalKind {
    /// Encodes the value, if its type is serialisable.
    encode: Option<EncodeFn>,
    /// The type's name, for errors.
    type_name: fn() -> &'static str,
}

/// The [`LocalKind`] tables of a type `T`.
struct KindOf<T>(std::marker::PhantomData<T>);

impl<T: Serialize + Send + 'static> KindOf<T> {
    const SERIALISABLE: LocalKind = LocalKind {
        encode: Some(encode_as::<T>),
        type_name: type_name::<T>,
    };
}

impl<T: Send + 'static> KindOf<T> {
    const LOCAL_ONLY: LocalKind = LocalKind {
        encode: None,
        type_name: type_name::<T>,
    };
}

fn encode_as<T: Serialize + 'static>(v: &(dyn Any + Send)) -> Result<Payload, pool_proto::Error> {
    match v.downcast_ref::<T>() {
        Some(v) => Payload::encode(v),
        None => Err(pool_proto::Error::Encode {
            reason: format!("message is not a {}", type_name::<T>()),
        }),
    }
}

/// The body of a message: a moved local value or bytes from another node.
enum Body {
    /// A value from this node, with its encoder if it can leave the node.
    Local {
        value: Box<dyn Any + Send>,
        kind: &'static LocalKind,
    },
    /// Bytes that arrived from another node.
    Remote(Payload),
}

/// A message value, local or from another node.
///
/// ```
/// use supervisor::Message;
/// let m = Message::new(("ping", 7u32));
/// let (word, n): (String, u32) = m.take().unwrap(); // a &str tuple decodes as String
/// assert_eq!((word.as_str(), n), ("ping", 7));
/// ```
pub struct Message {
    body: Body,
}

/// A message did not fit the type the receiver asked for.
#[derive(Debug, thiserror::Error)]
#[error("message does not fit {expected}: {reason}")]
pub struct DecodeError {
    /// The type asked for.
    pub expected: &'static str,
    /// Why it did not fit.
    pub reason: String,
}

impl Message {
    /// A message that can also be sent to other nodes (encoded only if it
    /// does leave this node).
    pub fn new<T: Serialize + Send + 'static>(value: T) -> Self {
        Message {
            body: Body::Local {
                value: Box::new(value),
                kind: &KindOf::<T>::SERIALISABLE,
            },
        }
    }

    /// A message for processes on this node only (any `Send` value, e.g.
    /// one holding a channel). Sending it to another node drops it with a
    /// logged warning.
    pub fn local<T: Send + 'static>(value: T) -> Self {
        Message {
            body: Body::Local {
                value: Box::new(value),
                kind: &KindOf::<T>::LOCAL_ONLY,
            },
        }
    }

    /// A message that arrived encoded from another node.
    pub fn from_payload(payload: Payload) -> Self {
        Message {
            body: Body::Remote(payload),
        }
    }

    /// True if the value came from another node (and is still encoded).
    pub fn is_remote(&self) -> bool {
        matches!(self.body, Body::Remote(_))
    }

    /// True if the value is a local `T` (without decoding anything).
    pub fn is<T: 'static>(&self) -> bool {
        match &self.body {
            Body::Local { value, .. } => value.is::<T>(),
            Body::Remote(_) => false,
        }
    }

    /// Takes the value as `T`: a local value of type `T` is moved out; a
    /// local value of another serialisable type, or a remote one, is
    /// decoded into `T` (so a struct can be read as `serde_json::Value`).
    pub fn take<T: DeserializeOwned + 'static>(self) -> Result<T, DecodeError> {
        self.try_take().map_err(|(_, e)| e)
    }

    /// Like [`take`](Self::take), but gives the message back with the
    /// error when it does not fit.
    pub fn try_take<T: DeserializeOwned + 'static>(self) -> Result<T, (Message, DecodeError)> {
        match self.body {
            Body::Local { value, kind } => match value.downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(value) => {
                    let back = |value| Message {
                        body: Body::Local { value, kind },
                    };
                    let Some(enc) = kind.encode else {
                        let err = DecodeError {
                            expected: type_name::<T>(),
                            reason: format!("it is a local-only {}", (kind.type_name)()),
                        };
                        return Err((back(value), err));
                    };
                    match enc(value.as_ref()).map_err(|e| DecodeError {
                        expected: type_name::<T>(),
                        reason: e.to_string(),
                    }) {
                        Ok(payload) => decode_payload(&payload).map_err(|e| (back(value), e)),
                        Err(e) => Err((back(value), e)),
                    }
                }
            },
            Body::Remote(payload) => match decode_payload(&payload) {
                Ok(v) => Ok(v),
                Err(e) => Err((Message::from_payload(payload), e)),
            },
        }
    }

    /// Takes a local value of exactly type `T` (no decoding); on mismatch
    /// the message is given back.
    pub fn downcast<T: 'static>(self) -> Result<T, Message> {
        match self.body {
            Body::Local { value, kind } => match value.downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(value) => Err(Message {
                    body: Body::Local { value, kind },
                }),
            },
            remote => Err(Message { body: remote }),
        }
    }

    /// Calls `f` with the value seen as `T`, if it is (or decodes as) one,
    /// leaving the message intact: for selective receive.
    pub fn peek<T: DeserializeOwned + 'static, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        match &self.body {
            Body::Local { value, kind } => match value.downcast_ref::<T>() {
                Some(v) => Some(f(v)),
                None => {
                    let payload = (kind.encode.as_ref()?)(value.as_ref()).ok()?;
                    decode_payload::<T>(&payload).ok().map(|v| f(&v))
                }
            },
            Body::Remote(p) => decode_payload::<T>(p).ok().map(|v| f(&v)),
        }
    }

    /// The encoded form, for sending to another node.
    pub fn encode(&self) -> Result<Payload, pool_proto::Error> {
        match &self.body {
            Body::Local { value, kind } => match kind.encode {
                Some(encode) => encode(value.as_ref()),
                None => Err(pool_proto::Error::Encode {
                    reason: format!(
                        "a local-only {} cannot be sent to another node: build it with Message::new (needs Serialize)",
                        (kind.type_name)()
                    ),
                }),
            },
            Body::Remote(p) => Ok(p.clone()),
        }
    }

    /// The value as JSON (for tools such as poolctl), if it is serialisable.
    pub fn to_json(&self) -> Result<serde_json::Value, DecodeError> {
        let payload = self.encode().map_err(|e| DecodeError {
            expected: "serde_json::Value",
            reason: e.to_string(),
        })?;
        decode_payload(&payload)
    }
}

fn decode_payload<T: DeserializeOwned>(p: &Payload) -> Result<T, DecodeError> {
    p.decode().map_err(|e| DecodeError {
        expected: type_name::<T>(),
        reason: e.to_string(),
    })
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            Body::Local { kind, .. } => write!(f, "Message(local {})", (kind.type_name)()),
            Body::Remote(p) => write!(f, "Message(remote, {} bytes)", p.as_bytes().len()),
        }
    }
}

/// A call waiting for its reply (`gen_server:call`): answer with
/// [`Ctx::reply`](crate::Ctx::reply).
#[derive(Debug)]
pub struct CallRequest {
    /// The caller.
    pub from: Pid,
    /// The call's reference; the reply carries it.
    pub mref: Ref,
    /// The request.
    pub msg: Message,
}

/// A monitor fired: the watched process ended (or never existed, or its
/// node is gone).
#[derive(Debug)]
pub struct Down {
    /// The monitor's reference.
    pub mref: Ref,
    /// The watched process.
    pub pid: Pid,
    /// Its exit reason (`noproc`, `noconnection` for the special cases).
    pub reason: ExitReason,
    /// Its result value, if the monitor asked for it and it ended normally.
    pub result: Option<Message>,
    /// The local name the monitor was set by
    /// ([`Ctx::monitor_name`](crate::Ctx::monitor_name)), OTP's `{Name,
    /// Node}` object; `None` for a monitor by pid. A name nobody held gives
    /// `noproc` at once, with the node's system pid as `pid` (no process
    /// was watched).
    pub name: Option<String>,
}

/// The message a node monitor delivers when its node goes down (OTP's
/// `{nodedown, Node}`), once per [`Ctx::monitor_node`](crate::Ctx::monitor_node)
/// call. It arrives as a plain [`Envelope::Message`] with no sender, as in
/// OTP; take it with `env.take::<NodeDown>()` or test it with
/// `msg.is::<NodeDown>()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeDown {
    /// The node that went down (or could not be reached when the monitor
    /// was set).
    pub node: NodeId,
}

/// The answer to a [`Runtime::spawn_request`](crate::Runtime::spawn_request)
/// (OTP's `{spawn_reply, ReqId, ok | error, Pid | Reason}`). It arrives as a
/// plain [`Envelope::Message`] with no sender, unless the request's
/// [`SpawnReplies`](crate::SpawnReplies) left it out; take it with
/// `env.take::<SpawnAnswer>()` or test it with `msg.is::<SpawnAnswer>()`.
/// A mailbox's limit never refuses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpawnAnswer {
    /// The reference the request returned (also the monitor's, if the
    /// request asked for one).
    pub req: Ref,
    /// The new process, or why none was spawned: the function is unknown
    /// there (`UnknownFunction`), its arguments do not fit (`BadArgs`), the
    /// node refuses spawns (`Overloaded`), or it cannot be reached or was
    /// lost before it answered (`UnknownNode`).
    pub result: Result<Pid, RemoteError>,
}

/// One entry of a mailbox.
#[derive(Debug)]
pub enum Envelope {
    /// A message (`Pid ! Msg`).
    Message {
        /// The sending process, if sent from a process.
        from: Option<Pid>,
        /// The value.
        msg: Message,
    },
    /// A call expecting a reply (boxed: calls are rarer than messages, and
    /// the mailbox's entries stay small).
    Call(Box<CallRequest>),
    /// The reply to a call; consumed by `call` itself (a late reply to a
    /// call that timed out is dropped, never seen by any receive).
    Reply {
        /// The call's reference.
        mref: Ref,
        /// The answer.
        msg: Message,
    },
    /// An exit signal received while trapping exits (`{'EXIT', From, Reason}`).
    Exit {
        /// The process whose exit (or `exit/2` call) sent the signal.
        from: Pid,
        /// The reason.
        reason: ExitReason,
    },
    /// A monitor fired (`{'DOWN', Ref, process, Pid, Reason}`); boxed as
    /// calls are.
    Down(Box<Down>),
}

impl Envelope {
    /// The message value, if this is a plain message.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Envelope::Message { msg, .. } => Some(msg),
            _ => None,
        }
    }

    /// Takes a plain message as `T`; anything else is an error.
    pub fn take<T: DeserializeOwned + 'static>(self) -> Result<T, DecodeError> {
        match self {
            Envelope::Message { msg, .. } => msg.take(),
            other => Err(DecodeError {
                expected: type_name::<T>(),
                reason: format!("received {}", other.kind()),
            }),
        }
    }

    /// A short name of the variant, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Envelope::Message { .. } => "a message",
            Envelope::Call(_) => "a call",
            Envelope::Reply { .. } => "a reply",
            Envelope::Exit { .. } => "an exit signal",
            Envelope::Down(_) => "a monitor DOWN",
        }
    }
}

#[cfg(test)]
mod tests;
