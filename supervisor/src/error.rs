//! Every error type of the crate: [`Error`], and the small enums of normal
//! failures — [`CallError`] (a call got no reply), [`SupError`] (a
//! supervisor refused a request) and [`StartError`] (a supervisor did not
//! start). A leaf: it names only pool-proto's types, so every other file
//! can use it.

use std::time::Duration;

use pool_proto::{ExitReason, NodeId, Pid, RemoteError, SpecError, TreeFileError};
use serde::{Deserialize, Serialize};

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

    /// A router was already installed.
    #[error(
        "a remote router is already installed on this runtime: install it once, when the node starts"
    )]
    RouterAlreadySet,

    /// A placer was already installed.
    #[error("a placer is already installed on this runtime: install it once, when the node starts")]
    PlacerAlreadySet,

    /// A tree file is invalid.
    #[error(transparent)]
    TreeFile(#[from] TreeFileError),

    /// A supervisor or child spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),

    /// A supervisor failed to start (`{error, {shutdown, {failed_to_start_child, Id, R}}}`
    /// and the other start errors of OTP).
    #[error("supervisor failed to start: {0}")]
    Start(String),

    /// A supervisor refused a request.
    #[error("{0}")]
    Supervisor(SupError),

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

/// Why a supervisor call failed (OTP's `{error, _}` values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SupError {
    /// `{error, not_found}`.
    #[error("no such child")]
    NotFound,
    /// `{error, running}`.
    #[error("the child is running: terminate it first")]
    Running,
    /// `{error, restarting}`.
    #[error("the child is being restarted")]
    Restarting,
    /// `{error, {already_started, Pid}}`.
    #[error("a child with this id is already running as {0}")]
    AlreadyStarted(Pid),
    /// `{error, already_present}`.
    #[error("a child with this id exists (not running): restart or delete it")]
    AlreadyPresent,
    /// `{error, simple_one_for_one}`.
    #[error("not allowed on a simple_one_for_one supervisor: address its children by pid")]
    SimpleOneForOne,
    /// The operation needs a simple_one_for_one supervisor.
    #[error("only a simple_one_for_one supervisor takes dynamic arguments")]
    NotSimpleOneForOne,
    /// The child spec is invalid.
    #[error("invalid child spec: {0}")]
    Invalid(String),
    /// The start function failed; nothing was stored.
    #[error("the child failed to start: {0}")]
    StartFailed(ExitReason),
    /// The request did not decode.
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// Why a supervisor did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The spec is invalid (`{error, {supervisor_data | start_spec, _}}`).
    #[error("invalid supervisor spec: {0}")]
    Spec(String),
    /// A child failed to start during init; the children started before it
    /// were stopped (`{error, {shutdown, {failed_to_start_child, Id, R}}}`).
    #[error("failed_to_start_child {id}: {reason}")]
    FailedToStartChild {
        /// The child.
        id: String,
        /// Why.
        reason: ExitReason,
    },
    /// The supervisor process died during init.
    #[error("the supervisor died during init")]
    Died,
}
