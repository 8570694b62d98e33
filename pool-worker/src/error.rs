//! The crate's error type: what went wrong talking to the pool, and what to
//! do about it.

use std::time::Duration;

use pool_proto::{ErrorCode, ExitReason, NodeId, Pid, RemoteError, Response};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the node or the Pool API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The master did not answer in time or is not connected.
    #[error(
        "the master at {addr} is unreachable ({why}): check that pool-master runs there and that --master/POOL_MASTER points at it"
    )]
    MasterUnreachable {
        /// Where we look for it.
        addr: String,
        /// What failed.
        why: String,
    },

    /// The master (or another node) refused the request. Transparent, so
    /// that `{:#}` does not print the message twice (as itself and as its
    /// source).
    #[error(transparent)]
    Remote(#[from] RemoteError),

    /// A frame, handshake or cookie problem.
    #[error(transparent)]
    Proto(#[from] pool_proto::Error),

    /// A runtime problem (unknown function, bad args, no route...).
    #[error(transparent)]
    Runtime(#[from] supervisor::Error),

    /// No live node of that name.
    #[error("no live node is named {name:?} (live: {live}): check `poolctl nodes`")]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The live names.
        live: String,
    },

    /// The node is not reachable.
    #[error("node {node} is not reachable: it left the pool or its connection failed")]
    Unreachable {
        /// The node.
        node: NodeId,
    },

    /// A request got no answer in time.
    #[error("no answer from {peer} within {after:?}")]
    Timeout {
        /// Who was asked.
        peer: String,
        /// How long we waited.
        after: Duration,
    },

    /// The master answered something unexpected.
    #[error("unexpected answer from {peer}: {got}")]
    Unexpected {
        /// Who answered.
        peer: String,
        /// What it said.
        got: String,
    },

    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An I/O error (binding, connecting).
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },

    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,

    /// A process run for its result ([`Pool::run`](crate::Pool::run),
    /// [`Run::take`](crate::Run::take)) did not end normally.
    #[error(
        "{function} ({pid} on node {node}) ended with reason {reason} instead of returning its result: node {node}'s log says why"
    )]
    Exited {
        /// The function it ran.
        function: String,
        /// The process.
        pid: Pid,
        /// The node it ran on.
        node: String,
        /// Its exit reason.
        reason: ExitReason,
    },

    /// A process run for its result returned one that does not fit the
    /// declared result type.
    #[error(
        "{function} ({pid} on node {node}) returned a result that is not a {expected} ({reason}): declare {function} with the same result type where it is registered and where it is run"
    )]
    BadResult {
        /// The function it ran.
        function: String,
        /// The process.
        pid: Pid,
        /// The node it ran on.
        node: String,
        /// The type the caller expected.
        expected: &'static str,
        /// Why it does not fit.
        reason: String,
    },
}

impl Error {
    /// The master answered a request with something it does not answer it
    /// with.
    pub(crate) fn unexpected(r: Response) -> Error {
        Error::Unexpected {
            peer: "the master".into(),
            got: format!("{r:?}"),
        }
    }

    /// The machine-readable code of a remote refusal, if this is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Remote(e) => Some(e.code),
            _ => None,
        }
    }
}
