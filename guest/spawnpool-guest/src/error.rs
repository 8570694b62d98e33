//! [`Error`]: everything that can go wrong in this crate, from a value that
//! does not encode to a call that timed out.

use std::fmt;

/// What went wrong: an encoding, a host refusal, or a peer that did not
/// answer. [`CallError`] and [`SpawnError`] are this type, named for the
/// functions that return them.
///
/// ```
/// use spawnpool_guest::Error;
/// let e = Error::Timeout;
/// assert_eq!(e.to_string(), "timed out: no answer within the timeout; retry with a longer one or check that the peer is alive");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A value did not encode as MessagePack or JSON (e.g. a map with
    /// non-string keys in JSON).
    Encode(String),
    /// Bytes did not decode into the type asked for: the sender sent
    /// another shape than the receiver expects.
    Decode(String),
    /// The spawn's arguments are not the JSON the function expects.
    Args(String),
    /// The host's bytes are not a well-formed envelope, pid or reference.
    Malformed(String),
    /// No answer in time (`-1`).
    Timeout,
    /// No such process or name (`-2`).
    NoProc,
    /// The process's node is unreachable (`-3`).
    NoConnection,
    /// The host refused an argument (`-4`), e.g. a name already taken.
    BadArgument(String),
    /// Any other failure the host reports (`-5`).
    Other(String),
}

/// The errors of [`call`](crate::call): [`Error::Timeout`], [`Error::NoProc`],
/// [`Error::NoConnection`], [`Error::Other`], or an encoding error.
pub type CallError = Error;

/// The errors of [`spawn`](crate::spawn): [`Error::BadArgument`] (e.g. an
/// unknown function), [`Error::Other`], or an encoding error.
pub type SpawnError = Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Encode(e) => write!(f, "cannot encode the value: {e}"),
            Error::Decode(e) => write!(
                f,
                "cannot decode the bytes into the type asked for: {e}; check that sender and receiver agree on its shape"
            ),
            Error::Args(e) => write!(
                f,
                "the spawn's arguments are not what this function expects: {e}"
            ),
            Error::Malformed(e) => write!(
                f,
                "the host sent malformed bytes: {e}; the module and the node disagree on the ABI"
            ),
            Error::Timeout => f.write_str(
                "timed out: no answer within the timeout; retry with a longer one or check that the peer is alive",
            ),
            Error::NoProc => f.write_str("noproc: no such process or name"),
            Error::NoConnection => {
                f.write_str("noconnection: the process's node is unreachable")
            }
            Error::BadArgument(e) => write!(f, "the host refused an argument: {e}"),
            Error::Other(e) => write!(f, "the host reported an error: {e}"),
        }
    }
}

impl std::error::Error for Error {}
