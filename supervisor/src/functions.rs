//! The registry of functions that can be spawned by name, [`Functions`]:
//! by the pool (`poolctl spawn builtin.echo`), by other nodes, and by tree
//! files. Each entry decodes its typed arguments from the spawn's JSON
//! value. (`Functions` is defined beside the runtime that holds it, in
//! `runtime.rs`; its methods are here.)

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::de::DeserializeOwned;

pub use crate::runtime::Functions;

use crate::error::Error;
use crate::exit::IntoExit;
use crate::runtime::{Ctx, Prepared, Start};

/// A registered closure `f` taking arguments of type `A`.
struct StartFn<F, A> {
    f: Arc<F>,
    _args: PhantomData<fn(A)>,
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
                _args: PhantomData,
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
