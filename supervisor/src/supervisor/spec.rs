//! Supervision trees in code: [`Spec`] and [`Child`], with the field names
//! of tree files.
//!
//! A `Spec` is the data form of a supervisor ([`pool_proto::SupervisorSpec`],
//! what a tree file parses to) plus, for children written in code, their
//! closures, keyed by child id. A child that names a registered function
//! needs no closure and can be placed on any node of the pool; a closure
//! child runs on the supervisor's own node.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{
    AutoShutdown, ChildSpecData, Dur, ExitReason, Pid, Placement, Restart, Shutdown, Strategy,
    SupervisorSpec,
};
use serde::de::DeserializeOwned;

use crate::envelope::Message;
use crate::exit::IntoExit;
use crate::runtime::Ctx;

/// A closure child's body: gets the process context and the dynamic
/// arguments (`Null` except for `simple_one_for_one` children).
pub type ChildFn = Arc<
    dyn Fn(Ctx, serde_json::Value) -> BoxFuture<'static, (ExitReason, Option<Message>)>
        + Send
        + Sync,
>;

/// What a custom start function returns (OTP's start function results).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// `{ok, Pid}`: the child runs; the pid must be linked to the supervisor.
    Pid(Pid),
    /// `ignore`: the child is not running.
    Ignore,
}

/// A custom start function: runs inside the supervisor process (OTP's
/// `start = {M, F, A}`), must link what it starts to the supervisor, and may
/// fail (`Err`) or return `ignore`.
pub type CustomStart = Arc<
    dyn for<'a> Fn(&'a Ctx, serde_json::Value) -> BoxFuture<'a, Result<Started, ExitReason>>
        + Send
        + Sync,
>;

/// Checks a closure child's dynamic arguments before it is spawned, so that
/// arguments that do not fit are a start failure (OTP: a wrong arity gives
/// `{error, {'EXIT', {undef, _}}}` from `start_child`), not a crash of a
/// child that already started.
pub(crate) type ArgsCheck = Arc<dyn Fn(&serde_json::Value) -> Result<(), String> + Send + Sync>;

/// The code of a child that is not a plain registered function.
#[derive(Clone)]
pub(crate) enum ChildCode {
    /// A closure run on the supervisor's node, with the check of its
    /// arguments if it takes typed ones.
    Closure(ChildFn, Option<ArgsCheck>),
    Custom(CustomStart),
    Supervisor(Spec),
}

impl fmt::Debug for ChildCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildCode::Closure(..) => f.write_str("Closure"),
            ChildCode::Custom(_) => f.write_str("Custom"),
            ChildCode::Supervisor(s) => write!(f, "Supervisor({:?})", s.data.id),
        }
    }
}

/// The function name recorded in the data form of a closure child.
pub(crate) const CODE_FUNCTION_PREFIX: &str = "code:";

/// A supervisor spec: flags and children.
///
/// ```
/// use supervisor::{Child, Restart, Spec, Strategy};
///
/// let spec = Spec::new("root", Strategy::OneForAll)
///     .intensity(3)
///     .period(std::time::Duration::from_secs(10))
///     .child(Child::worker("ticker", |_ctx| async { () }))
///     .child(Child::function("echo", "builtin.echo", serde_json::json!({})).restart(Restart::Transient));
/// assert_eq!(spec.data().children.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Spec {
    pub(crate) data: SupervisorSpec,
    pub(crate) code: HashMap<String, ChildCode>,
}

impl Spec {
    /// A supervisor with OTP's default flags (intensity 1, period 5 s).
    pub fn new(id: impl Into<String>, strategy: Strategy) -> Self {
        Spec {
            data: SupervisorSpec::new(id, strategy),
            code: HashMap::new(),
        }
    }

    /// A spec from its data form (a parsed tree file); every worker child
    /// names a registered function.
    pub fn from_data(data: SupervisorSpec) -> Self {
        Spec {
            data,
            code: HashMap::new(),
        }
    }

    /// Restart intensity.
    pub fn intensity(mut self, n: u32) -> Self {
        self.data.intensity = n;
        self
    }

    /// Restart period.
    pub fn period(mut self, period: Duration) -> Self {
        self.data.period = Dur(period);
        self
    }

    /// Auto-shutdown on significant children.
    pub fn auto_shutdown(mut self, a: AutoShutdown) -> Self {
        self.data.auto_shutdown = a;
        self
    }

    /// Adds a child (after those already added: start order).
    pub fn child(mut self, child: Child) -> Self {
        if let Some(code) = child.code {
            self.code.insert(child.data.id.clone(), code);
        }
        self.data.children.push(child.data);
        self
    }

    /// The data form (what a tree file would hold).
    pub fn data(&self) -> &SupervisorSpec {
        &self.data
    }

    /// The supervisor's id.
    pub fn id(&self) -> &str {
        &self.data.id
    }

    /// The code of child `id`, if it has any.
    pub(crate) fn code_of(&self, id: &str) -> Option<&ChildCode> {
        self.code.get(id)
    }

    /// The spec of nested supervisor child `id` (with its closures).
    pub(crate) fn nested(&self, child: &ChildSpecData) -> Option<Spec> {
        if let Some(ChildCode::Supervisor(s)) = self.code.get(&child.id) {
            return Some(s.clone());
        }
        child.supervisor.clone().map(|mut data| {
            if data.id.is_empty() {
                data.id = child.id.clone();
            }
            Spec::from_data(data)
        })
    }
}

/// One child of a [`Spec`].
#[derive(Clone, Debug)]
pub struct Child {
    pub(crate) data: ChildSpecData,
    pub(crate) code: Option<ChildCode>,
}

impl Child {
    /// A worker running a closure on the supervisor's node.
    pub fn worker<F, Fut>(id: impl Into<String>, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        let f = Arc::new(f);
        Self::with_code(
            id,
            ChildCode::Closure(
                Arc::new(move |ctx, _args| {
                    let f = f.clone();
                    async move { f(ctx).await.into_exit() }.boxed()
                }),
                None,
            ),
        )
    }

    /// A worker running a closure that takes typed arguments: the dynamic
    /// arguments of a `simple_one_for_one` child (`start_child`). Arguments
    /// that do not decode as `A` are a start failure: nothing is spawned.
    pub fn worker_with_args<A, F, Fut>(id: impl Into<String>, f: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        let f = Arc::new(f);
        Self::with_code(
            id,
            ChildCode::Closure(
                Arc::new(move |ctx, args| {
                    let f = f.clone();
                    async move {
                        match serde_json::from_value::<A>(args) {
                            Ok(a) => f(ctx, a).await.into_exit(),
                            Err(e) => {
                                (ExitReason::Error(format!("bad child arguments: {e}")), None)
                            }
                        }
                    }
                    .boxed()
                }),
                Some(Arc::new(|args: &serde_json::Value| {
                    A::deserialize(args)
                        .map(drop)
                        .map_err(|e| format!("bad child arguments: {e}"))
                })),
            ),
        )
    }

    /// A worker running the registered function `function` with `args`:
    /// can be placed anywhere in the pool.
    pub fn function(
        id: impl Into<String>,
        function: impl Into<String>,
        args: serde_json::Value,
    ) -> Self {
        Child {
            data: ChildSpecData::worker(id, function, args),
            code: None,
        }
    }

    /// A child with a custom start function (OTP start semantics: it may
    /// return `ignore` or fail).
    pub fn custom<F>(id: impl Into<String>, start: F) -> Self
    where
        F: for<'a> Fn(&'a Ctx, serde_json::Value) -> BoxFuture<'a, Result<Started, ExitReason>>
            + Send
            + Sync
            + 'static,
    {
        Self::with_code(id, ChildCode::Custom(Arc::new(start)))
    }

    /// A nested supervisor.
    pub fn supervisor(id: impl Into<String>, spec: Spec) -> Self {
        let id = id.into();
        let mut data = spec.data.clone();
        data.id = String::new();
        let mut child = Child {
            data: ChildSpecData::supervisor(id, data),
            code: None,
        };
        if !spec.code.is_empty() {
            child.code = Some(ChildCode::Supervisor(spec));
        }
        child
    }

    fn with_code(id: impl Into<String>, code: ChildCode) -> Self {
        let id = id.into();
        Child {
            data: ChildSpecData::worker(
                id.clone(),
                format!("{CODE_FUNCTION_PREFIX}{id}"),
                serde_json::Value::Null,
            ),
            code: Some(code),
        }
    }

    /// Restart type (default permanent).
    pub fn restart(mut self, r: Restart) -> Self {
        self.data.restart = r;
        self
    }

    /// Shutdown spec (default 5 s for a worker, infinity for a supervisor).
    pub fn shutdown(mut self, s: Shutdown) -> Self {
        self.data.shutdown = Some(s);
        self
    }

    /// Mark significant (for auto_shutdown).
    pub fn significant(mut self, on: bool) -> Self {
        self.data.significant = on;
        self
    }

    /// Where the pool runs it (registered-function children only).
    pub fn placement(mut self, p: Placement) -> Self {
        self.data.placement = Some(p);
        self
    }

    /// The data form.
    pub fn data(&self) -> &ChildSpecData {
        &self.data
    }
}
