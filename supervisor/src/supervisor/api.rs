//! Starting supervisors and OTP's dynamic API (`start_child`,
//! `terminate_child`, `restart_child`, `delete_child`, `which_children`,
//! `count_children`, `get_childspec`), plus [`inspect`] for the whole tree.
//!
//! Every call works on a supervisor of this node or of another node of the
//! pool; the requests are plain data, except [`start_child`] with a closure
//! child, which only a supervisor on this node can take.

use std::fmt;
use std::time::Duration;

use pool_proto::{ChildSpecData, ExitReason, Pid, SUPERVISOR_FUNCTION, TreeSpec, TreeView};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::server;
use super::spec::{Child, Spec};
use crate::error::{CallError, Error};
use crate::message::Message;
use crate::process::Ctx;
use crate::runtime::{Runtime, SpawnOpts};

/// Supervisor calls wait this long: OTP's supervisor calls wait forever,
/// and a call blocks while a slow child shuts down; an hour stands for
/// "forever" without leaking a caller for good.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long `inspect` waits for each nested supervisor.
pub const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A child named by id, or (simple_one_for_one) by pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKey {
    /// By id.
    Id(String),
    /// By pid.
    Pid(Pid),
}

impl From<&str> for ChildKey {
    fn from(id: &str) -> Self {
        ChildKey::Id(id.to_owned())
    }
}

impl From<Pid> for ChildKey {
    fn from(pid: Pid) -> Self {
        ChildKey::Pid(pid)
    }
}

/// A child's process in `which_children`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildPid {
    /// Running.
    Pid(Pid),
    /// A failed restart is being retried.
    Restarting,
    /// Not running (`undefined`).
    Undefined,
}

/// One entry of `which_children`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// Its id (`None` for simple_one_for_one children: OTP's `undefined`).
    pub id: Option<String>,
    /// Its process.
    pub pid: ChildPid,
    /// A supervisor (true) or a worker.
    pub supervisor: bool,
    /// Times it was restarted.
    pub restarts: u64,
}

/// `count_children`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// Child specs (1 for simple_one_for_one).
    pub specs: u64,
    /// Children with a live process.
    pub active: u64,
    /// Supervisor children (running or not).
    pub supervisors: u64,
    /// Worker children (running or not).
    pub workers: u64,
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

/// The data requests a supervisor serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SupRequest {
    /// `which_children`.
    WhichChildren,
    /// `count_children`.
    CountChildren,
    /// `start_child` with a data spec.
    StartChild(ChildSpecData),
    /// `start_child` of a simple_one_for_one supervisor.
    StartDynamic(serde_json::Value),
    /// `terminate_child`.
    TerminateChild(ChildKey),
    /// `restart_child`.
    RestartChild(String),
    /// `delete_child`.
    DeleteChild(String),
    /// `get_childspec`.
    GetChildSpec(ChildKey),
    /// The tree below the supervisor.
    Inspect,
    /// Stop the supervisor (children first, in order).
    Stop,
}

/// `start_child` with a code child (local only).
pub(crate) struct StartChildCode(pub(crate) Child);

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

impl fmt::Display for ChildPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildPid::Pid(p) => write!(f, "{p}"),
            ChildPid::Restarting => f.write_str("restarting"),
            ChildPid::Undefined => f.write_str("undefined"),
        }
    }
}

async fn spawn_supervisor(rt: &Runtime, spec: Spec, link: Option<Pid>) -> Result<Pid, Error> {
    let (tx, rx) = oneshot::channel();
    let path = spec.id().to_owned();
    let mut opts = SpawnOpts::new()
        .trap_exit(true)
        .function(SUPERVISOR_FUNCTION)
        .owner(path.clone());
    if let Some(parent) = link {
        opts = opts.link(parent);
    }
    let pid = rt.spawn_opts(opts, move |ctx| {
        server::run(ctx, spec, link, path, Some(tx))
    });
    match rx.await {
        Ok(Ok(())) => Ok(pid),
        Ok(Err(e)) => Err(Error::Start(e.to_string())),
        Err(_) => Err(Error::Start(StartError::Died.to_string())),
    }
}

/// Starts a supervisor linked to the calling process (OTP `start_link`):
/// its children are running when this returns. If a child fails to start,
/// the others are stopped and the error says which one and why.
pub async fn start_link(ctx: &Ctx, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(ctx.runtime(), spec, Some(ctx.pid())).await
}

/// Starts a supervisor linked to nothing (a root); stop it with [`stop`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use pool_proto::Strategy;
/// use supervisor::Runtime;
/// use supervisor::supervisor::{self as sup, Child, Spec};
///
/// let rt = Runtime::new(pool_proto::NodeId::random());
/// let spec = Spec::new("root", Strategy::OneForOne)
///     .child(Child::worker("a", |mut ctx| async move { loop { ctx.recv().await; } #[allow(unreachable_code)] () }));
/// let root = sup::start(&rt, spec).await.unwrap();
/// let counts = sup::count_children(&rt, root).await.unwrap();
/// assert_eq!((counts.specs, counts.active), (1, 1));
/// sup::stop(&rt, root).await.unwrap();
/// # }
/// ```
pub async fn start(rt: &Runtime, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(rt, spec, None).await
}

/// Starts the root supervisor of a tree (a parsed tree file), unlinked.
pub async fn start_tree(rt: &Runtime, tree: TreeSpec) -> Result<Pid, Error> {
    start(rt, Spec::from_data(tree.supervisor)).await
}

async fn request<T: DeserializeOwned + 'static>(
    rt: &Runtime,
    sup: Pid,
    msg: Message,
    timeout: Duration,
) -> Result<T, Error> {
    let reply = rt
        .call_message(sup, msg, timeout)
        .await
        .map_err(Error::Call)?;
    let r: Result<T, SupError> = reply
        .take()
        .map_err(|e| Error::Call(CallError::Exit(ExitReason::Error(e.to_string()))))?;
    r.map_err(Error::Supervisor)
}

async fn call<T: DeserializeOwned + 'static>(
    rt: &Runtime,
    sup: Pid,
    req: SupRequest,
) -> Result<T, Error> {
    request(rt, sup, Message::new(req), CALL_TIMEOUT).await
}

/// `which_children`: newest first, as OTP.
pub async fn which_children(rt: &Runtime, sup: Pid) -> Result<Vec<ChildInfo>, Error> {
    call(rt, sup, SupRequest::WhichChildren).await
}

/// `count_children`.
pub async fn count_children(rt: &Runtime, sup: Pid) -> Result<ChildCounts, Error> {
    call(rt, sup, SupRequest::CountChildren).await
}

/// `start_child` with a child built in code. Returns the pid, or `None`
/// if its start function returned `ignore`.
pub async fn start_child(rt: &Runtime, sup: Pid, child: Child) -> Result<Option<Pid>, Error> {
    if child.code.is_none() {
        return call(rt, sup, SupRequest::StartChild(child.data)).await;
    }
    if sup.node() != rt.node() {
        return Err(Error::Supervisor(SupError::Invalid(
            "a child written as a closure can only be added to a supervisor on this node; use Child::function".into(),
        )));
    }
    request(rt, sup, Message::local(StartChildCode(child)), CALL_TIMEOUT).await
}

/// `start_child` on a simple_one_for_one supervisor, with the dynamic
/// arguments handed to the template.
pub async fn start_dynamic_child(
    rt: &Runtime,
    sup: Pid,
    args: serde_json::Value,
) -> Result<Option<Pid>, Error> {
    call(rt, sup, SupRequest::StartDynamic(args)).await
}

/// `terminate_child`.
pub async fn terminate_child(
    rt: &Runtime,
    sup: Pid,
    child: impl Into<ChildKey>,
) -> Result<(), Error> {
    call(rt, sup, SupRequest::TerminateChild(child.into())).await
}

/// `restart_child`.
pub async fn restart_child(rt: &Runtime, sup: Pid, id: &str) -> Result<Option<Pid>, Error> {
    call(rt, sup, SupRequest::RestartChild(id.to_owned())).await
}

/// `delete_child`.
pub async fn delete_child(rt: &Runtime, sup: Pid, id: &str) -> Result<(), Error> {
    call(rt, sup, SupRequest::DeleteChild(id.to_owned())).await
}

/// `get_childspec`, with every default filled in.
pub async fn get_childspec(
    rt: &Runtime,
    sup: Pid,
    child: impl Into<ChildKey>,
) -> Result<ChildSpecData, Error> {
    call(rt, sup, SupRequest::GetChildSpec(child.into())).await
}

/// The whole tree below `sup`: pids, nodes (as node ids), restart counts.
pub async fn inspect(rt: &Runtime, sup: Pid) -> Result<TreeView, Error> {
    request(
        rt,
        sup,
        Message::new(SupRequest::Inspect),
        INSPECT_TIMEOUT * 4,
    )
    .await
}

/// Stops `sup`: its children stop in reverse start order, then it exits
/// `normal`.
pub async fn stop(rt: &Runtime, sup: Pid) -> Result<(), Error> {
    call(rt, sup, SupRequest::Stop).await
}
