//! Every error type of the crate: [`Error`], and the small enums of normal
//! failures — [`CallError`] (a call got no reply), [`SupError`] (a
//! supervisor refused a request) and [`StartError`] (a supervisor did not
//! start). A leaf: it names only pool-proto's types, so every other file
//! can use it.

use std::time::Duration;

use pool_proto::{ErrorCode, ExitReason, NodeId, Pid, RemoteError, SpecError, TreeFileError};
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

    /// A resolver was already installed.
    #[error(
        "a function resolver is already installed on this runtime: install it once, when the node starts"
    )]
    ResolverAlreadySet,

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

    /// It could not be done now, for a reason that may pass: a supervisor
    /// whose start-up was cut short from outside (killed, its node
    /// stopping) although its spec is fine. Try again later, or elsewhere.
    #[error("{0}; the spec is fine: try again later or on another node")]
    Unavailable(String),

    /// A supervisor refused a request.
    #[error("{0}")]
    Supervisor(SupError),

    /// A supervisor call failed.
    #[error("supervisor call failed: {0}")]
    Call(#[from] CallError),
}

impl Error {
    /// Whether the failure may pass by itself, so that the same request is
    /// worth retrying later (or elsewhere) rather than reporting as a bad
    /// spec or a bug: a node that cannot be reached, a remote refusal whose
    /// code says "not now" ([`code_is_transient`]), a callee lost with its
    /// node, or a start cut short from outside.
    ///
    /// A supervisor's start ([`Error::Start`]) is never transient: a child
    /// that cannot be started for such a reason waits *pending* instead of
    /// failing the start (see `docs/semantics.md`, `pending.*`).
    ///
    /// ```
    /// use pool_proto::{ErrorCode, NodeId, RemoteError};
    /// use supervisor::Error;
    ///
    /// let lost = Error::Remote(RemoteError::new(ErrorCode::NoNode, "no live node has label zone=z2"));
    /// assert!(lost.is_transient());
    /// let typo = Error::Remote(RemoteError::new(ErrorCode::UnknownFunction, "no function \"ech\""));
    /// assert!(!typo.is_transient());
    /// assert!(!Error::Start("failed_to_start_child a: nope".into()).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::NoRoute { .. } | Error::Unavailable(_) => true,
            Error::Remote(e) => code_is_transient(e.code),
            Error::Call(CallError::Exit(ExitReason::NoConnection)) => true,
            Error::Supervisor(SupError::Unavailable(_)) => true,
            _ => false,
        }
    }
}

/// Whether a remote failure of this kind may pass by itself: no live node
/// can take the work now (`NoNode`), the node is gone or unknown
/// (`UnknownNode`, also what a spawn answers when the connection is lost
/// before its answer), it refuses work for now (`Overloaded`), or it says
/// so (`Unavailable`). Everything else — an unknown function, arguments
/// that do not fit, a bad spec, a refusal — will fail again the same way.
pub fn code_is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NoNode | ErrorCode::UnknownNode | ErrorCode::Overloaded | ErrorCode::Unavailable
    )
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
    /// The child could not be started now, for a reason that may pass (no
    /// live node can take it, its node was lost during the start); nothing
    /// was stored. A dynamic start is answered at once rather than kept
    /// pending: the caller is there to decide.
    #[error("the child cannot be started now: {0}; try again later")]
    Unavailable(String),
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
    /// The supervisor was to be registered under a name another process
    /// holds (OTP `{error, {already_started, Pid}}`); nothing was started.
    #[error("a process is already registered under the supervisor's name: {0}")]
    AlreadyStarted(Pid),
    /// The supervisor could not take its name (not a name conflict).
    #[error("the supervisor could not take its name: {0}")]
    Name(String),
}
