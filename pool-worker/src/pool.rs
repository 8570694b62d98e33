//! The Pool API: spawn where the master's placement says (or on a named
//! node, or by key), send and call any pid, global names, `run`, and the
//! views `poolctl` prints. A pool spawn is placed on this node's copy of
//! the master's load table, with the master's code and accounting, and
//! sent straight to the chosen node: one round trip (`loads.rs`).
//!
//! A function declared with [`supervisor::Function`] is spawned typed:
//! [`Spawn::of`] encodes its argument, [`Pool::run`] decodes its result;
//! what travels is still the function's name and JSON arguments.
//!
//! Every node has one ([`crate::NodeHandle::pool`]); `poolctl` is a hidden
//! node using exactly this API.
//!
//! A [`Pool`] holds handles on the parts it needs (the process runtime,
//! the master, the membership, the global names) and owns no task: it
//! never names the node that made it. It works from the node's start
//! (after the first join) on; once the node stopped, requests to the
//! master fail with [`Error::ShuttingDown`].

use std::any::type_name;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pool_proto::{
    AppSummary, ErrorCode, ExitReason, LabelReq, ModuleHash, ModuleInfo, NodeId, NodeStatus, Pid,
    PlaceQuery, Placed, ProcessInfo, Request, Response, Sandbox, SpawnRequest, TraceHex, TraceId,
    TreeSpec, TreeView, WasmName,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use supervisor::{CallError, Function, Message, Runtime, SpawnOpts};

use crate::error::Error;
use crate::master_link::MasterHandle;
use crate::members::{self, SharedMembers};
use crate::names::Globals;

/// Where a spawn goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Where the master's placement strategy says.
    Placed,
    /// On the named node.
    Node(String),
    /// On the node a consistent hash of the key picks.
    Key(String),
    /// On this node.
    Local,
}

/// A spawn request for [`Pool::spawn`] and [`Pool::run_spec`]: by name
/// with JSON arguments ([`Spawn::new`]), or typed from a declaration
/// ([`Spawn::of`]). Every builder method returns the request, so a chain
/// never stops for an error: a label that does not parse is kept as the
/// request's [`problem`](Self::problem), and `spawn` or `run_spec` refuses
/// the request with it.
///
/// ```
/// use pool_worker::Spawn;
/// let s = Spawn::new("builtin.sleep", serde_json::json!({"ms": 10})).label("zone=a").on("w2");
/// assert_eq!(s.function, "builtin.sleep");
/// assert!(s.problem.is_none());
/// assert!(Spawn::new("builtin.sleep", serde_json::json!({})).label("zone").problem.is_some());
/// ```
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The registered function.
    pub function: String,
    /// Its argument.
    pub args: serde_json::Value,
    /// Where it goes.
    pub target: Target,
    /// Label constraints for placement.
    pub labels: Vec<LabelReq>,
    /// Link the new process to this local process.
    pub link: Option<Pid>,
    /// Monitor the new process from this local process.
    pub monitor: Option<Pid>,
    /// The monitor's `Down` carries the process's result value when it
    /// ends normally (as [`Pool::run_spec`]'s does).
    pub monitor_result: bool,
    /// What the process belongs to (shown by `poolctl ps`).
    pub owner: Option<String>,
    /// Trace id, to follow the spawn through every node's logs.
    pub trace: Option<TraceId>,
    /// Limits and grants of a wasm process (fuel, memory, directories,
    /// environment); a native function ignores them.
    pub sandbox: Option<Sandbox>,
    /// The first thing found wrong while building the request (`None` if
    /// nothing was): [`Pool::spawn`] and [`Pool::run_spec`] refuse it with
    /// this before asking anyone.
    pub problem: Option<SpawnProblem>,
}

/// What was wrong with a [`Spawn`] when it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnProblem {
    /// A label constraint that is not `key=value`.
    BadLabel {
        /// The text given.
        label: String,
    },
    /// Typed arguments that do not encode as JSON.
    BadArgs {
        /// Why (the argument type and serde's reason).
        reason: String,
    },
}

impl Spawn {
    /// Spawn `function` with `args`, placed by the master.
    pub fn new(function: impl Into<String>, args: serde_json::Value) -> Self {
        Spawn {
            function: function.into(),
            args,
            target: Target::Placed,
            labels: Vec::new(),
            link: None,
            monitor: None,
            monitor_result: false,
            owner: None,
            trace: None,
            sandbox: None,
            problem: None,
        }
    }

    /// Spawn the declared `function` with `args`, placed by the master.
    /// The argument's type is checked by the compiler; it travels as JSON,
    /// as [`Spawn::new`]'s does. Arguments that do not encode as JSON (a
    /// map with non-text keys) are the request's [`problem`](Self::problem).
    ///
    /// ```
    /// use pool_worker::Spawn;
    /// use supervisor::Function;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Range { from: u64, to: u64 }
    /// const SEARCH: Function<Range, u64> = Function::new("primes.search");
    /// let s = Spawn::of(&SEARCH, Range { from: 1, to: 9 }).keyed("user-1");
    /// assert_eq!(s.function, "primes.search");
    /// assert_eq!(s.args, serde_json::json!({"from": 1, "to": 9}));
    /// ```
    pub fn of<A: Serialize, R>(function: &Function<A, R>, args: impl Borrow<A>) -> Self {
        match serde_json::to_value(args.borrow()) {
            Ok(args) => Spawn::new(function.name(), args),
            Err(e) => {
                let mut spec = Spawn::new(function.name(), serde_json::Value::Null);
                spec.problem = Some(SpawnProblem::BadArgs {
                    reason: format!("{} does not encode as JSON: {e}", type_name::<A>()),
                });
                spec
            }
        }
    }

    /// On the named node.
    pub fn on(mut self, node: impl Into<String>) -> Self {
        self.target = Target::Node(node.into());
        self
    }

    /// By consistent hashing on `key`.
    pub fn keyed(mut self, key: impl Into<String>) -> Self {
        self.target = Target::Key(key.into());
        self
    }

    /// Only on nodes with this label (`key=value`). A label that does not
    /// parse becomes the request's [`problem`](Self::problem) (if it has
    /// none yet), so the chain goes on and the spawn is refused.
    pub fn label(mut self, label: &str) -> Self {
        match LabelReq::parse(label) {
            Ok(req) => self.labels.push(req),
            Err(_) => {
                self.problem.get_or_insert(SpawnProblem::BadLabel {
                    label: label.to_owned(),
                });
            }
        }
        self
    }

    /// Linked to local process `pid`.
    pub fn link(mut self, pid: Pid) -> Self {
        self.link = Some(pid);
        self
    }

    /// Monitored by local process `pid`.
    pub fn monitor(mut self, pid: Pid) -> Self {
        self.monitor = Some(pid);
        self
    }

    /// Monitored by local process `pid`, whose `Down` carries the result
    /// value of a normal exit.
    pub fn monitor_with_result(mut self, pid: Pid) -> Self {
        self.monitor = Some(pid);
        self.monitor_result = true;
        self
    }

    /// Tagged with an owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Limits and grants of a wasm process (see [`Sandbox`]).
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Tagged with a trace id.
    pub fn trace(mut self, trace: TraceId) -> Self {
        self.trace = Some(trace);
        self
    }
}

impl SpawnProblem {
    /// The error a spawn of `function` is refused with.
    fn to_error(&self, function: &str) -> Error {
        match self {
            SpawnProblem::BadLabel { label } => Error::Proto(pool_proto::Error::InvalidLabel {
                input: label.clone(),
            }),
            SpawnProblem::BadArgs { reason } => Error::Runtime(supervisor::Error::BadArgs {
                function: function.to_owned(),
                reason: reason.clone(),
            }),
        }
    }
}

/// A spawned process and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawned {
    /// Its pid.
    pub pid: Pid,
    /// The node's name.
    pub node: String,
    /// The monitor's reference, if [`Spawn::monitor`] asked for one.
    pub mref: Option<pool_proto::Ref>,
}

/// How a process spawned by [`Pool::run_spec`] ended.
#[derive(Debug)]
pub struct Run {
    /// The function it ran.
    pub function: String,
    /// Where it ran.
    pub spawned: Spawned,
    /// Its exit reason.
    pub reason: ExitReason,
    /// Its result value, if it ended normally with one.
    pub result: Option<Message>,
}

impl Run {
    /// The result as `R`: [`Error::Exited`] with the reason if the process
    /// did not end normally, [`Error::BadResult`] if its result does not
    /// fit `R`. A normal end without a result is taken as JSON `null`, so
    /// a function declared to return `()` may return nothing.
    pub fn take<R: DeserializeOwned + 'static>(self) -> Result<R, Error> {
        let Run {
            function,
            spawned,
            reason,
            result,
        } = self;
        if !reason.is_normal() {
            return Err(Error::Exited {
                function,
                pid: spawned.pid,
                node: spawned.node,
                reason,
            });
        }
        let decoded = match result {
            Some(msg) => msg.take::<R>().map_err(|e| e.reason),
            None => serde_json::from_value::<R>(serde_json::Value::Null)
                .map_err(|_| "it returned no result".to_owned()),
        };
        decoded.map_err(|reason| Error::BadResult {
            function,
            pid: spawned.pid,
            node: spawned.node,
            expected: type_name::<R>(),
            reason,
        })
    }
}

/// The Pool API of one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pool {
    /// This node's id.
    id: NodeId,
    /// This node's name.
    name: Arc<str>,
    /// The process runtime: spawns, sends and calls start here.
    rt: Runtime,
    /// Requests to the master (placement, names, views).
    master: MasterHandle,
    /// The membership (read): node names both ways.
    members: SharedMembers,
    /// Global names held by this node's processes.
    globals: Arc<Globals>,
}

impl Pool {
    /// The API of node `name` over its parts.
    pub(crate) fn new(
        name: &str,
        rt: Runtime,
        master: MasterHandle,
        members: SharedMembers,
        globals: Arc<Globals>,
    ) -> Self {
        Pool {
            id: rt.node(),
            name: name.into(),
            rt,
            master,
            members,
            globals,
        }
    }

    /// Asks the master and picks the answer `pick` expects (any other is
    /// an [`Error::Unexpected`]).
    async fn ask<T>(
        &self,
        body: Request,
        pick: impl FnOnce(Response) -> Result<T, Response>,
    ) -> Result<T, Error> {
        pick(self.master.request(body).await?).map_err(Error::unexpected)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.name
    }

    /// The process runtime of this node.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The name of a live node, from this node's membership.
    pub fn node_name_of(&self, node: NodeId) -> Option<String> {
        if node == self.id {
            return Some(self.name.to_string());
        }
        members::read(&self.members)
            .get(node)
            .map(|n| n.name.clone())
    }

    fn node_by_name(&self, name: &str) -> Result<NodeId, Error> {
        if name == &*self.name {
            return Ok(self.id);
        }
        let m = members::read(&self.members);
        m.by_name(name)
            .map(|n| n.id)
            .ok_or_else(|| Error::UnknownNode {
                name: name.to_owned(),
                live: m.worker_names(),
            })
    }

    /// Where the master would place `count` processes now (Erlang's
    /// `get_node`); with `commit` it counts them as placed. Set
    /// `query.function` to keep to the nodes that register that function
    /// (every spawn of this API does).
    ///
    /// ```no_run
    /// # async fn f(pool: pool_worker::Pool) -> Result<(), pool_worker::Error> {
    /// let q = pool_proto::PlaceQuery { count: 3, ..Default::default() };
    /// for p in pool.place(q).await? {
    ///     println!("{} ({})", p.name, p.addr);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn place(&self, query: PlaceQuery) -> Result<Vec<Placed>, Error> {
        self.ask(Request::Place(query), |r| match r {
            Response::Placed(p) => Ok(p),
            other => Err(other),
        })
        .await
    }

    /// Spawns a process as `spec` says and returns where it runs.
    ///
    /// ```no_run
    /// # async fn f(pool: pool_worker::Pool) -> Result<(), pool_worker::Error> {
    /// use pool_worker::Spawn;
    /// let s = pool.spawn(Spawn::new("builtin.echo", serde_json::json!({}))).await?;
    /// println!("{} runs on {}", s.pid, s.node);
    /// # Ok(()) }
    /// ```
    pub async fn spawn(&self, spec: Spawn) -> Result<Spawned, Error> {
        if spec.link.is_some() && spec.monitor.is_some() && spec.link != spec.monitor {
            return Err(Error::Config(
                "link and monitor must come from the same local process".into(),
            ));
        }
        let requester = spec
            .link
            .or(spec.monitor)
            .unwrap_or_else(|| self.rt.system_pid());
        let monitor = spec.monitor.map(|_| spec.monitor_result);
        self.spawn_inner(&spec, requester, spec.link.is_some(), monitor)
            .await
    }

    /// Where `spec` goes, never one of `exclude`, the name of the function
    /// to send there, and whether this node's copy of the load table chose
    /// it. Every placement names the function, so only nodes that register
    /// it are chosen (for a wasm function: nodes that run wasm; the master
    /// answers its canonical name). A pool spawn (placed or by key) is
    /// placed on the copy of the master's load table when `here` allows it
    /// and the copy answers it as the master would (`loads.rs`): no round
    /// trip to the master; otherwise the master places it.
    /// A named node without labels is taken from the membership, with no
    /// round trip to the master (the latency path): if it lacks the
    /// function it refuses the spawn itself, and [`spawn_inner`]
    /// (Self::spawn_inner) then asks the master which nodes have it; a
    /// named wasm form (`app.wasm:count`) is then resolved by the master
    /// first, so a worker only ever sees canonical names.
    async fn resolve(
        &self,
        spec: &Spawn,
        exclude: &[NodeId],
        here: bool,
    ) -> Result<(NodeId, String, bool), Error> {
        let pinned = |node: NodeId| async move {
            match WasmName::parse(&spec.function) {
                Some(WasmName::Named { .. }) => {
                    Ok((node, self.resolve_function(&spec.function).await?, false))
                }
                _ => Ok((node, spec.function.clone(), false)),
            }
        };
        let query = |node: Option<String>, key: Option<String>| PlaceQuery {
            count: 1,
            key,
            labels: spec.labels.clone(),
            node,
            exclude: exclude.to_vec(),
            commit: true,
            // The master logs a traced placement decision.
            trace: spec.trace,
            function: Some(spec.function.clone()),
            ..PlaceQuery::default()
        };
        let first = |placed: Vec<Placed>, local: bool| {
            placed
                .into_iter()
                .next()
                .map(|p| {
                    let function = p.function.unwrap_or_else(|| spec.function.clone());
                    (p.id, function, local)
                })
                .ok_or_else(|| Error::Unexpected {
                    peer: "the master".into(),
                    got: "an empty placement".into(),
                })
        };
        // A pool spawn: on the copy if it can, else by the master. A traced
        // spawn is placed by the master, whose log shows the decision under
        // the trace id.
        let pool_spawn = |q: PlaceQuery| async move {
            if here
                && q.trace.is_none()
                && let Some(placed) = self.master.place_here(&q).await
            {
                return first(placed, true);
            }
            first(self.place(q).await?, false)
        };
        match &spec.target {
            Target::Local => pinned(self.id).await,
            // This node: its own runtime refuses an unknown function
            // before anything is sent.
            Target::Node(n) if spec.labels.is_empty() && n == &*self.name => pinned(self.id).await,
            // A named node, as the membership knows it (a name this node
            // does not know fails at once, naming the live ones).
            Target::Node(n) if spec.labels.is_empty() => pinned(self.node_by_name(n)?).await,
            // With labels: the master checks that it is live, has the
            // function and the labels (and counts the placement).
            Target::Node(n) => first(self.place(query(Some(n.clone()), None)).await?, false),
            Target::Placed => pool_spawn(query(None, None)).await,
            Target::Key(k) => pool_spawn(query(None, Some(k.clone()))).await,
        }
    }

    /// Places and spawns; a node lost between placement and spawn is
    /// excluded and placement tried once more. A spawn placed on this
    /// node's copy of the load table that the chosen node refuses (it is
    /// gone, overloaded, or lacks the function) is placed once more by the
    /// master, the authority, so the caller sees the errors it would see
    /// had the master placed it.
    async fn spawn_inner(
        &self,
        spec: &Spawn,
        requester: Pid,
        link: bool,
        monitor: Option<bool>,
    ) -> Result<Spawned, Error> {
        if let Some(problem) = &spec.problem {
            return Err(problem.to_error(&spec.function));
        }
        let mut exclude = Vec::new();
        let mut here = true;
        loop {
            let (node, function, local) = self.resolve(spec, &exclude, here).await?;
            let req = SpawnRequest {
                function,
                args: spec.args.clone(),
                link: None,
                monitor: None,
                owner: spec.owner.clone(),
                trace: spec.trace,
                sandbox: spec.sandbox.clone(),
            };
            if let Some(trace) = spec.trace {
                tracing::info!(
                    trace = %TraceHex(trace),
                    node = %self.node_name_of(node).unwrap_or_else(|| node.to_string()),
                    function = %spec.function,
                    "spawning"
                );
            }
            match self.rt.spawn_on(node, requester, req, link, monitor).await {
                Ok((pid, mref)) => {
                    let node = self.node_name_of(node).unwrap_or_else(|| node.to_string());
                    if let Some(trace) = spec.trace {
                        tracing::info!(trace = %TraceHex(trace), %pid, %node, "spawned");
                    }
                    return Ok(Spawned { pid, node, mref });
                }
                Err(e) => {
                    let e = Error::Runtime(e);
                    if local && (is_node_lost(&e) || is_unknown_function(&e)) {
                        tracing::debug!(%node, cause = %e, "spawn placed on the load table copy refused; the master places it");
                        here = false;
                        if spec.target == Target::Placed && is_node_lost(&e) {
                            exclude.push(node);
                        }
                        continue;
                    }
                    if exclude.is_empty() && spec.target == Target::Placed && is_node_lost(&e) {
                        tracing::debug!(%node, cause = %e, "spawn target lost; placing again");
                        exclude.push(node);
                        continue;
                    }
                    let node_name = self.node_name_of(node).unwrap_or_else(|| node.to_string());
                    if let Some(trace) = spec.trace {
                        tracing::info!(trace = %TraceHex(trace), node = %node_name, cause = %e, "spawn failed");
                    }
                    // A named node without the function: the master's
                    // placement error names the nodes that have it (one
                    // round trip, on this failure path only).
                    let unknown = is_unknown_function(&e);
                    if let (Target::Node(n), true) = (&spec.target, unknown) {
                        let query = PlaceQuery {
                            count: 1,
                            node: Some(n.clone()),
                            function: Some(spec.function.clone()),
                            ..PlaceQuery::default()
                        };
                        if let Err(better) = self.place(query).await
                            && better.code().is_some()
                        {
                            return Err(better);
                        }
                    }
                    return Err(match e {
                        Error::Runtime(supervisor::Error::Remote(mut r)) => {
                            r.message = format!("node {node_name}: {}", r.message);
                            Error::Remote(r)
                        }
                        other => other,
                    });
                }
            }
        }
    }

    /// Spawns on the named node.
    pub async fn spawn_on(
        &self,
        node: &str,
        function: &str,
        args: serde_json::Value,
    ) -> Result<Spawned, Error> {
        self.spawn(Spawn::new(function, args).on(node)).await
    }

    /// Spawns on the node that key `key` maps to: the same key goes to the
    /// same node while it lives.
    pub async fn spawn_keyed(
        &self,
        key: &str,
        function: &str,
        args: serde_json::Value,
    ) -> Result<Spawned, Error> {
        self.spawn(Spawn::new(function, args).keyed(key)).await
    }

    /// Runs the declared `function` with `args` where the master places it,
    /// waits for it to end and returns its result, typed: a process that
    /// does not end normally (a crash, a kill, its node lost) is
    /// [`Error::Exited`] with its exit reason, a result that does not fit
    /// `R` is [`Error::BadResult`]. To place it otherwise (on a node, by
    /// key, with labels), build the request with [`Spawn::of`] and use
    /// [`run_spec`](Self::run_spec), then [`Run::take`].
    ///
    /// ```no_run
    /// # async fn f(pool: pool_worker::Pool) -> Result<(), pool_worker::Error> {
    /// use supervisor::Function;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct SleepArgs { ms: u64 }
    /// const SLEEP: Function<SleepArgs, u64> = Function::new("builtin.sleep");
    /// let slept: u64 = pool.run(&SLEEP, SleepArgs { ms: 50 }).await?;
    /// assert_eq!(slept, 50);
    /// # Ok(()) }
    /// ```
    pub async fn run<A, R>(
        &self,
        function: &Function<A, R>,
        args: impl Borrow<A>,
    ) -> Result<R, Error>
    where
        A: Serialize,
        R: DeserializeOwned + 'static,
    {
        self.run_spec(Spawn::of(function, args)).await?.take()
    }

    /// Spawns as `spec` says, then waits for the process to end: where it
    /// ran, its exit reason, and its result value if it ended normally with
    /// one. A process that crashes is a [`Run`] too (its reason says how);
    /// the error is for a spawn that did not happen.
    ///
    /// ```no_run
    /// # async fn f(pool: pool_worker::Pool) -> Result<(), pool_worker::Error> {
    /// use pool_worker::Spawn;
    /// let run = pool.run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 50})).on("w2")).await?;
    /// assert!(run.reason.is_normal());
    /// assert_eq!(run.spawned.node, "w2");
    /// assert_eq!(run.take::<u64>()?, 50);
    /// # Ok(()) }
    /// ```
    pub async fn run_spec(&self, spec: Spawn) -> Result<Run, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pool = self.clone();
        self.rt.spawn_opts(
            // The waiting process works for the spawn's trace too.
            SpawnOpts::new().function("pool.run").trace(spec.trace),
            move |mut ctx| async move {
                let me = ctx.pid();
                match pool.spawn_inner(&spec, me, false, Some(true)).await {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(spawned) => {
                        let mref = spawned.mref.expect("run asks for a monitor");
                        let down = ctx.wait_down(mref, None).await;
                        let (reason, result) = match down {
                            Some(d) => (d.reason, d.result),
                            None => (ExitReason::Killed, None),
                        };
                        let _ = tx.send(Ok(Run {
                            function: spec.function,
                            spawned,
                            reason,
                            result,
                        }));
                    }
                }
            },
        );
        rx.await.unwrap_or(Err(Error::ShuttingDown))
    }

    /// Sends a message to any pid (never fails; dropped if it is dead).
    pub fn send<T: Serialize + Send + 'static>(&self, to: Pid, value: T) {
        self.rt.send(to, value);
    }

    /// [`send`](Self::send) whose message carries `trace` to the receiver's
    /// node (logged there at debug where it arrives), logged here at info.
    ///
    /// The message leaves from a short-lived process that works for `trace`
    /// (a send from outside any process carries none); it is queued on the
    /// peer connection when this returns.
    pub async fn send_traced<T: Serialize + Send + 'static>(
        &self,
        to: Pid,
        value: T,
        trace: Option<TraceId>,
    ) {
        let Some(id) = trace else {
            return self.send(to, value);
        };
        tracing::info!(trace = %TraceHex(id), %to, "sending");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = Message::new(value);
        self.rt.spawn_opts(
            SpawnOpts::new().function("send").trace(trace),
            move |ctx| async move {
                ctx.send_message(to, msg);
                let _ = tx.send(());
            },
        );
        let _ = rx.await;
    }

    /// Calls any pid: its reply, a timeout, or its exit reason.
    pub async fn call<T: Serialize + Send + 'static>(
        &self,
        to: Pid,
        request: T,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        self.rt.call(to, request, timeout).await
    }

    /// [`call`](Self::call) whose request carries `trace` to the callee's
    /// node (logged there at debug where it arrives); the call and its
    /// outcome are logged here at info with the same `trace`.
    ///
    /// A call is made by a short-lived process; that process works for
    /// `trace` ([`supervisor::Ctx::trace`]), so its request frame carries it.
    pub async fn call_traced<T: Serialize + Send + 'static>(
        &self,
        to: Pid,
        request: T,
        timeout: Duration,
        trace: Option<TraceId>,
    ) -> Result<Message, CallError> {
        let Some(id) = trace else {
            return self.call(to, request, timeout).await;
        };
        tracing::info!(trace = %TraceHex(id), %to, "calling");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request = Message::new(request);
        self.rt.spawn_opts(
            SpawnOpts::new().function("call").trace(trace),
            move |mut ctx| async move {
                let _ = tx.send(ctx.call_message(to, request, timeout).await);
            },
        );
        let reply = rx.await.unwrap_or(Err(CallError::Exit(ExitReason::Killed)));
        match &reply {
            Ok(_) => tracing::info!(trace = %TraceHex(id), %to, "reply received"),
            Err(e) => tracing::info!(trace = %TraceHex(id), %to, cause = %e, "call failed"),
        }
        reply
    }

    /// Sends the exit signal `reason` to any pid (`kill` is untrappable).
    pub fn exit(&self, to: Pid, reason: ExitReason) {
        self.rt.exit(to, reason);
    }

    /// Registers a global name; false if the name is taken or the process
    /// already has one (OTP's `global:register_name`). The name is released
    /// when the process dies.
    pub async fn register_global(&self, name: &str, pid: Pid) -> Result<bool, Error> {
        self.globals.register(name, pid).await
    }

    /// Removes a global name.
    pub async fn unregister_global(&self, name: &str) -> Result<(), Error> {
        self.globals.unregister(name).await
    }

    /// The pid holding a global name.
    pub async fn whereis(&self, name: &str) -> Result<Option<Pid>, Error> {
        let body = Request::WhereIs {
            name: name.to_owned(),
        };
        self.ask(body, |r| match r {
            Response::WhereIs(p) => Ok(p),
            other => Err(other),
        })
        .await
    }

    /// Sends to a global name; an unknown name is an error (OTP's
    /// `{badarg, {Name, Msg}}`).
    pub async fn send_named<T: Serialize + Send + 'static>(
        &self,
        name: &str,
        value: T,
    ) -> Result<(), Error> {
        let pid = self.whereis(name).await?.ok_or_else(|| {
            Error::Remote(pool_proto::RemoteError::new(
                pool_proto::ErrorCode::NotFound,
                format!("no process is registered globally as {name:?}"),
            ))
        })?;
        self.send(pid, value);
        Ok(())
    }

    /// Every global name.
    pub async fn names(&self) -> Result<BTreeMap<String, Pid>, Error> {
        self.ask(Request::ListNames, |r| match r {
            Response::Names(n) => Ok(n),
            other => Err(other),
        })
        .await
    }

    /// Live nodes with their load.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, Error> {
        self.ask(Request::ListNodes, |r| match r {
            Response::Nodes(n) => Ok(n),
            other => Err(other),
        })
        .await
    }

    /// Processes of the pool (or of one node).
    pub async fn processes(&self, node: Option<&str>) -> Result<Vec<ProcessInfo>, Error> {
        let body = Request::ListProcesses {
            node: node.map(str::to_owned),
        };
        self.ask(body, |r| match r {
            Response::Processes(p) => Ok(p),
            other => Err(other),
        })
        .await
    }

    /// Hands a tree to the master to keep alive; `text` (the file's text)
    /// lets the master name the line of an error.
    pub async fn tree_start(
        &self,
        spec: TreeSpec,
        source: Option<String>,
        text: Option<String>,
    ) -> Result<Vec<AppSummary>, Error> {
        self.ask(Request::TreeStart { spec, source, text }, apps)
            .await
    }

    /// The applications the master keeps.
    pub async fn tree_list(&self) -> Result<Vec<AppSummary>, Error> {
        self.ask(Request::TreeList, apps).await
    }

    /// One application's whole tree.
    pub async fn tree_show(&self, id: &str) -> Result<TreeView, Error> {
        self.ask(Request::TreeShow { id: id.to_owned() }, |r| match r {
            Response::Tree(t) => Ok(*t),
            other => Err(other),
        })
        .await
    }

    /// Stops an application in order.
    pub async fn tree_stop(&self, id: &str) -> Result<Vec<AppSummary>, Error> {
        self.ask(Request::TreeStop { id: id.to_owned() }, apps)
            .await
    }

    /// Starts a failed or stopped application again (`poolctl tree
    /// restart`): a new generation, restart counts kept. A running or
    /// pending one is refused (`AlreadyRunning`).
    pub async fn tree_restart(&self, id: &str) -> Result<Vec<AppSummary>, Error> {
        self.ask(Request::TreeRestart { id: id.to_owned() }, apps)
            .await
    }

    /// Forgets a stopped or failed application (`poolctl tree rm`); a
    /// running or pending one must be stopped first. Answers what is left.
    pub async fn tree_remove(&self, id: &str) -> Result<Vec<AppSummary>, Error> {
        self.ask(Request::TreeRemove { id: id.to_owned() }, apps)
            .await
    }
}

/// Picks the application list out of an answer.
impl Pool {
    /// Stores the WebAssembly module `bytes` in the pool as `file` (a name
    /// ending in `.wasm`); returns its entry, whose hash names it
    /// (`<hash>:EXPORT`). The hash is computed here and checked by the
    /// master, so bytes damaged on the way are refused, as are bytes that
    /// are not a valid module. A module must fit in one frame (16 MiB by
    /// default).
    ///
    /// ```no_run
    /// # async fn f(pool: pool_worker::Pool) -> Result<(), pool_worker::Error> {
    /// let m = pool.push_module("count.wasm", std::fs::read("count.wasm").unwrap()).await?;
    /// pool.spawn(pool_worker::Spawn::new(format!("{}:count", m.hash), serde_json::json!({}))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push_module(&self, file: &str, bytes: Vec<u8>) -> Result<ModuleInfo, Error> {
        let hash = ModuleHash::of(&bytes);
        let body = Request::PushModule {
            file: file.to_owned(),
            bytes,
            hash: Some(hash),
        };
        self.ask(body, |r| match r {
            Response::Modules(mut m) if m.len() == 1 => Ok(m.remove(0)),
            other => Err(other),
        })
        .await
    }

    /// The modules stored in the pool, one entry per file name and hash.
    pub async fn modules(&self) -> Result<Vec<ModuleInfo>, Error> {
        self.ask(Request::ListModules, |r| match r {
            Response::Modules(m) => Ok(m),
            other => Err(other),
        })
        .await
    }

    /// The bytes of module `hash`, from the master's store (checked
    /// against the hash).
    pub async fn fetch_module(&self, hash: ModuleHash) -> Result<Vec<u8>, Error> {
        self.master.fetch_module(hash).await
    }

    /// The canonical name of `function`: a named wasm form
    /// (`app.wasm:count`) becomes `<hash>:count`, the module last pushed
    /// under that file name; a canonical one is checked to be stored; any
    /// other name comes back as it is (asked of the master all the same).
    pub async fn resolve_function(&self, function: &str) -> Result<String, Error> {
        self.ask(
            Request::ResolveFunction {
                function: function.to_owned(),
            },
            |r| match r {
                Response::Function(f) => Ok(f),
                other => Err(other),
            },
        )
        .await
    }
}

fn apps(r: Response) -> Result<Vec<AppSummary>, Response> {
    match r {
        Response::Apps(a) => Ok(a),
        other => Err(other),
    }
}

/// The node refused the spawn: it does not register the function.
fn is_unknown_function(e: &Error) -> bool {
    matches!(e, Error::Runtime(supervisor::Error::UnknownFunction { .. }))
        || matches!(
            e,
            Error::Runtime(supervisor::Error::Remote(r)) if r.code == ErrorCode::UnknownFunction
        )
}

fn is_node_lost(e: &Error) -> bool {
    match e {
        Error::Runtime(supervisor::Error::NoRoute { .. }) => true,
        Error::Runtime(supervisor::Error::Remote(r)) => {
            matches!(
                r.code,
                pool_proto::ErrorCode::UnknownNode | pool_proto::ErrorCode::Overloaded
            )
        }
        _ => false,
    }
}
