//! [`Envelope`]: what [`recv`](crate::recv) hands over, parsed from the
//! bytes the host puts in the pending buffer, and [`Body`], a message's
//! MessagePack bytes.
//!
//! The byte layout (little endian), as the host ABI defines it:
//!
//! | bytes | content |
//! |---|---|
//! | 0 | kind: `0` message, `1` call, `2` exit signal, `3` down |
//! | 1..17 | a pid: the sender (zero if not from a process), the caller, the exit's `from`, the watched pid |
//! | 17..33 | a ref: the call's or the monitor's, otherwise zero |
//! | 33.. | the body: message/call: one MessagePack value; exit: the reason text; down: u32 length of the reason text, the text, then the result's MessagePack bytes (none if empty) |

use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::Error;
use crate::exit::ExitReason;
use crate::id::{Pid, Ref};

/// The size of an envelope without its body.
pub const HEADER_LEN: usize = 33;

/// The MessagePack bytes of one value: a message, a call's request, a
/// process's result.
///
/// ```
/// use spawnpool_guest::Body;
/// let body = Body::encode(&("ping", 7u32)).unwrap();
/// assert_eq!(body.take::<(String, u32)>().unwrap(), ("ping".to_string(), 7));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The body holding `value`, encoded as the node encodes messages.
    ///
    /// ```
    /// assert_eq!(spawnpool_guest::Body::encode(&1u8).unwrap().as_bytes(), [1]);
    /// ```
    pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        codec::encode(value).map(Body)
    }

    /// Decodes the value as a `T` (the whole body must be one `T`). Named as
    /// the node's `Message::take`; the body stays, so a second try with
    /// another type works.
    ///
    /// ```
    /// let body = spawnpool_guest::Body::encode("hello").unwrap();
    /// assert!(body.take::<u32>().is_err());
    /// assert_eq!(body.take::<String>().unwrap(), "hello");
    /// ```
    pub fn take<T: DeserializeOwned>(&self) -> Result<T, Error> {
        codec::decode(&self.0)
    }

    /// The encoded bytes.
    ///
    /// ```
    /// assert!(spawnpool_guest::Body::default().as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A call waiting for its answer: give it to [`reply`](crate::reply).
///
/// ```
/// use spawnpool_guest::{Body, Call, Pid, Ref};
/// let call = Call { from: Pid::new(1, 2), mref: Ref::new(1, 9), body: Body::encode("ping").unwrap() };
/// assert_eq!(call.body.take::<String>().unwrap(), "ping");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The caller.
    pub from: Pid,
    /// The call's reference, which the reply carries back.
    pub mref: Ref,
    /// The request.
    pub body: Body,
}

/// What arrived in the mailbox.
///
/// ```
/// use spawnpool_guest::{Envelope, Pid};
/// let mut bytes = vec![0u8];
/// bytes.extend_from_slice(&Pid::new(5, 6).to_bytes());
/// bytes.extend_from_slice(&[0; 16]);
/// bytes.extend_from_slice(&spawnpool_guest::encode("hi").unwrap());
/// match Envelope::parse(&bytes).unwrap() {
///     Envelope::Message { from, body } => {
///         assert_eq!(from, Some(Pid::new(5, 6)));
///         assert_eq!(body.take::<String>().unwrap(), "hi");
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// A plain message (`Pid ! Msg`).
    Message {
        /// The sender, `None` if it did not come from a process (e.g. `poolctl send`).
        from: Option<Pid>,
        /// The value sent.
        body: Body,
    },
    /// A call: answer it with [`reply`](crate::reply).
    Call(Call),
    /// An exit signal from a linked process (only while trapping exits,
    /// see [`trap_exit`](crate::trap_exit)).
    Exit {
        /// The process that exited (or sent the signal).
        from: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A monitored process ended (or never existed: `noproc`).
    Down {
        /// The monitor's reference, as [`monitor`](crate::monitor) returned it.
        mref: Ref,
        /// The watched process.
        pid: Pid,
        /// Why it ended.
        reason: ExitReason,
        /// Its result, if it set one.
        result: Option<Body>,
    },
}

impl Envelope {
    /// Parses the envelope bytes the host hands over (see the module doc).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Malformed(format!(
                "an envelope of {} bytes; it needs at least {HEADER_LEN}",
                bytes.len()
            )));
        }
        let pid = Pid::from_bytes(sixteen(&bytes[1..17]));
        let mref = Ref::from_bytes(sixteen(&bytes[17..33]));
        let rest = &bytes[HEADER_LEN..];
        match bytes[0] {
            0 => Ok(Envelope::Message {
                from: if pid == Pid::new(0, 0) {
                    None
                } else {
                    Some(pid)
                },
                body: Body(rest.to_vec()),
            }),
            1 => Ok(Envelope::Call(Call {
                from: pid,
                mref,
                body: Body(rest.to_vec()),
            })),
            2 => Ok(Envelope::Exit {
                from: pid,
                reason: reason_text(rest)?,
            }),
            3 => {
                if rest.len() < 4 {
                    return Err(Error::Malformed(
                        "a down envelope without its reason length".to_owned(),
                    ));
                }
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let rest = &rest[4..];
                if rest.len() < len {
                    return Err(Error::Malformed(format!(
                        "a down envelope's reason of {len} bytes, with {} left",
                        rest.len()
                    )));
                }
                let (text, result) = rest.split_at(len);
                Ok(Envelope::Down {
                    mref,
                    pid,
                    reason: reason_text(text)?,
                    result: if result.is_empty() {
                        None
                    } else {
                        Some(Body(result.to_vec()))
                    },
                })
            }
            kind => Err(Error::Malformed(format!(
                "an envelope of kind {kind}; known kinds are 0 to 3"
            ))),
        }
    }
}

/// The 16 bytes at the start of `bytes` (callers pass exactly 16).
fn sixteen(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(bytes);
    out
}

/// An exit reason from its UTF-8 text.
fn reason_text(bytes: &[u8]) -> Result<ExitReason, Error> {
    std::str::from_utf8(bytes)
        .map(ExitReason::from)
        .map_err(|e| Error::Malformed(format!("an exit reason that is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests;
