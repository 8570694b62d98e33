//! Starting supervisors and OTP's dynamic API (`start_child`,
//! `terminate_child`, `restart_child`, `delete_child`, `which_children`,
//! `count_children`, `get_childspec`), plus [`inspect`] for the whole tree.
//!
//! Every call works on a supervisor of this node or of another node of the
//! pool; the requests are plain data, except [`start_child`] with a closure
//! child, which only a supervisor on this node can take.

use std::time::Duration;

use pool_proto::{ChildSpecData, ExitReason, Pid, SUPERVISOR_FUNCTION, TreeSpec, TreeView};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::request::{
    CALL_TIMEOUT, ChildCounts, ChildInfo, ChildKey, INSPECT_TIMEOUT, StartChildCode, SupRequest,
};
use super::server;
use super::spec::{Child, Spec};
use crate::envelope::Message;
use crate::error::{CallError, Error, StartError, SupError};
use crate::runtime::spawn::SpawnOpts;
use crate::runtime::{Ctx, Runtime};

async fn spawn_supervisor(
    rt: &Runtime,
    spec: Spec,
    link: Option<Pid>,
    name: Option<&str>,
) -> Result<Pid, Error> {
    let (tx, rx) = oneshot::channel();
    let path = spec.id().to_owned();
    let mut opts = SpawnOpts::new()
        .trap_exit(true)
        .function(SUPERVISOR_FUNCTION)
        .owner(path.clone());
    if let Some(parent) = link {
        opts = opts.link(parent);
    }
    let name = name.map(str::to_owned);
    let pid = rt.spawn_opts(opts, move |ctx| {
        server::run(ctx, spec, link, path, name, Some(tx))
    });
    match rx.await {
        Ok(Ok(())) => Ok(pid),
        // OTP's `{error, {already_started, Pid}}`.
        Ok(Err(StartError::AlreadyStarted(holder))) => {
            Err(Error::Supervisor(SupError::AlreadyStarted(holder)))
        }
        Ok(Err(e)) => Err(Error::Start(e.to_string())),
        // Killed before its init answered (from outside: the spec and the
        // children are not at fault, e.g. the node is stopping or
        // fencing): worth trying again, so transient.
        Err(_) => Err(Error::Unavailable(StartError::Died.to_string())),
    }
}

/// Starts a supervisor linked to the calling process (OTP `start_link`):
/// its children are running when this returns, except those that wait
/// pending (no node can take them now: `pending.*` in `docs/semantics.md`).
/// If a child fails to start, the others are stopped and the error says
/// which one and why.
pub async fn start_link(ctx: &Ctx, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(ctx.runtime(), spec, Some(ctx.pid()), None).await
}

/// [`start_link`] under a local name (OTP `start_link({local, Name}, ...)`):
/// the supervisor takes `name` before it starts any child. If another
/// process holds the name, nothing starts and the answer is
/// `Supervisor(AlreadyStarted(holder))` (OTP `{error, {already_started,
/// Pid}}`). The name is released when the supervisor exits.
pub async fn start_link_named(ctx: &Ctx, name: &str, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(ctx.runtime(), spec, Some(ctx.pid()), Some(name)).await
}

/// [`start`] under a local name (OTP `start({local, Name}, ...)`); see
/// [`start_link_named`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Error, Runtime, Spec, Strategy, SupError};
///
/// let rt = Runtime::standalone();
/// let first = supervisor::start_named(&rt, "jobs", Spec::new("jobs", Strategy::OneForOne)).await.unwrap();
/// assert_eq!(rt.whereis("jobs"), Some(first));
/// let again = supervisor::start_named(&rt, "jobs", Spec::new("jobs", Strategy::OneForOne)).await;
/// assert!(matches!(again, Err(Error::Supervisor(SupError::AlreadyStarted(p))) if p == first));
/// # }
/// ```
pub async fn start_named(rt: &Runtime, name: &str, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(rt, spec, None, Some(name)).await
}

/// Starts a supervisor linked to nothing (a root); stop it with [`stop`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Child, Runtime, Spec, Strategy};
///
/// let rt = Runtime::standalone();
/// let spec = Spec::new("root", Strategy::OneForOne)
///     .child(Child::worker("a", |mut ctx| async move { loop { ctx.recv().await; } #[allow(unreachable_code)] () }));
/// let root = supervisor::start(&rt, spec).await.unwrap();
/// let counts = supervisor::count_children(&rt, root).await.unwrap();
/// assert_eq!((counts.specs, counts.active), (1, 1));
/// supervisor::stop(&rt, root).await.unwrap();
/// # }
/// ```
pub async fn start(rt: &Runtime, spec: Spec) -> Result<Pid, Error> {
    spawn_supervisor(rt, spec, None, None).await
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
