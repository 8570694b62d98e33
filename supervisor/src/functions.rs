//! The registry of functions that can be spawned by name: by the pool
//! (`poolctl spawn builtin.echo`), by other nodes, and by tree files.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::ExitReason;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::message::Message;
use crate::process::Ctx;
use crate::runtime::IntoExit;

/// A process body ready to run, its arguments already decoded.
pub(crate) type Prepared =
    Box<dyn FnOnce(Ctx) -> BoxFuture<'static, (ExitReason, Option<Message>)> + Send>;

trait Start: Send + Sync {
    fn prepare(&self, name: &str, args: serde_json::Value) -> Result<Prepared, Error>;
}

struct StartFn<F, A> {
    f: Arc<F>,
    _args: std::marker::PhantomData<fn(A)>,
}

impl<F, A, Fut> Start for StartFn<F, A>
where
    F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoExit,
{
    fn prepare(&self, name: &str, args: serde_json::Value) -> Result<Prepared, Error> {
        let args = decode_args::<A>(name, args)?;
        let f = self.f.clone();
        Ok(Box::new(move |ctx| {
            async move { f(ctx, args).await.into_exit() }.boxed()
        }))
    }
}

/// Decodes a function's arguments; a missing value (`null`) also tries an
/// empty object, so a struct whose fields all have defaults needs no args.
fn decode_args<A: DeserializeOwned>(name: &str, args: serde_json::Value) -> Result<A, Error> {
    let is_null = args.is_null();
    match serde_json::from_value::<A>(args) {
        Ok(a) => Ok(a),
        Err(first) => {
            if is_null
                && let Ok(a) =
                    serde_json::from_value::<A>(serde_json::Value::Object(Default::default()))
            {
                return Ok(a);
            }
            Err(Error::BadArgs {
                function: name.to_owned(),
                reason: first.to_string(),
            })
        }
    }
}

/// Functions that can be spawned by name, each with typed arguments
/// decoded from a JSON value.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Functions, Runtime, SpawnOpts};
/// #[derive(serde::Deserialize)]
/// struct Add { a: i64, b: i64 }
/// let mut fns = Functions::new();
/// fns.register("math.add", |_ctx, args: Add| async move { Ok::<_, String>(args.a + args.b) });
/// let rt = Runtime::builder(pool_proto::NodeId::random()).functions(fns).build();
/// let pid = rt.spawn_function("math.add", serde_json::json!({"a": 2, "b": 3}), SpawnOpts::new()).unwrap();
/// let (_reason, result) = rt.wait(pid).await;
/// # let _ = result; // the waiter monitors after spawn, so the result may be gone: use Pool::run for that
/// assert!(rt.spawn_function("math.nope", serde_json::Value::Null, SpawnOpts::new()).is_err());
/// # }
/// ```
#[derive(Default, Clone)]
pub struct Functions {
    map: BTreeMap<String, Arc<dyn Start>>,
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

impl Functions {
    /// An empty registry.
    pub fn new() -> Self {
        Functions::default()
    }

    /// Registers `f` under `name` (replacing any previous one). `A` is the
    /// argument type, decoded from the spawn's JSON value.
    pub fn register<A, F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExit,
    {
        self.map.insert(
            name.into(),
            Arc::new(StartFn {
                f: Arc::new(f),
                _args: std::marker::PhantomData,
            }),
        );
        self
    }

    /// Adds every function of `other` (its entries win).
    pub fn merge(&mut self, other: &Functions) -> &mut Self {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
        self
    }

    /// True if `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    pub(crate) fn prepare(&self, name: &str, args: serde_json::Value) -> Result<Prepared, Error> {
        let start = self.map.get(name).ok_or_else(|| Error::UnknownFunction {
            name: name.to_owned(),
            known: self.names().join(", "),
        })?;
        start.prepare(name, args)
    }
}
