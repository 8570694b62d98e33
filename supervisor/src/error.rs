//! The crate's error type, and [`CallError`] for the normal failures of a
//! call.

use std::time::Duration;

use pool_proto::{ExitReason, NodeId, Pid, RemoteError};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the runtime or a supervisor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process is registered under the name (OTP `badarg`).
    #[error("no process is registered as {name:?}: register it first, or send to its pid")]
    NotRegistered {
        /// The name.
        name: String,
    },

    /// The name is taken.
    #[error(
        "the name {name:?} is already registered by {holder}: pick another name or unregister it"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// Its holder.
        holder: Pid,
    },

    /// The process already has a name.
    #[error("process {pid} is already registered as {name:?}: a process has at most one name")]
    AlreadyNamed {
        /// The process.
        pid: Pid,
        /// Its name.
        name: String,
    },

    /// The process is not alive.
    #[error("process {pid} is not alive (noproc)")]
    NoProc {
        /// The process.
        pid: Pid,
    },

    /// No function of that name is registered.
    #[error(
        "no function {name:?} is registered (known: {known}): register it on the worker with Functions::register"
    )]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },

    /// The arguments do not fit the function.
    #[error("arguments for {function} do not fit: {reason}")]
    BadArgs {
        /// The function.
        function: String,
        /// Why.
        reason: String,
    },

    /// The node cannot be reached.
    #[error("node {node} cannot be reached: it is not a live member of the pool")]
    NoRoute {
        /// The node.
        node: NodeId,
    },

    /// Another node refused a request.
    #[error("{0}")]
    Remote(RemoteError),

    /// A router or placer was already installed.
    #[error("a remote router (or placer) is already installed on this runtime")]
    RouterAlreadySet,

    /// A tree file is invalid.
    #[error(transparent)]
    TreeFile(#[from] pool_proto::TreeFileError),

    /// A supervisor or child spec is invalid.
    #[error(transparent)]
    Spec(#[from] pool_proto::SpecError),

    /// A supervisor failed to start (`{error, {shutdown, {failed_to_start_child, Id, R}}}`
    /// and the other start errors of OTP).
    #[error("supervisor failed to start: {0}")]
    Start(String),

    /// A supervisor refused a request.
    #[error("{0}")]
    Supervisor(crate::supervisor::SupError),

    /// A supervisor call failed.
    #[error("supervisor call failed: {0}")]
    Call(#[from] CallError),
}

/// Why a call got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The callee exited (or was not alive: `noproc`; or its node was lost:
    /// `noconnection`) before replying.
    #[error("the callee exited: {0}")]
    Exit(ExitReason),
}
