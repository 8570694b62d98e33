//! The registry of functions that can be spawned by name, [`Functions`]:
//! by the pool (`poolctl spawn builtin.echo`), by other nodes, and by tree
//! files. Each entry decodes its typed arguments from the spawn's JSON
//! value. (`Functions` is defined beside the runtime that holds it, in
//! `runtime.rs`; its methods are here.)
//!
//! [`Function`] is a typed declaration of one entry: its name, argument
//! type and result type, declared once and shared by the code that
//! registers it ([`Functions::add`]) and the code that spawns it (the
//! pool's `run(&F, args)`), so the compiler checks both ends. On the wire a
//! spawn stays a name and JSON arguments.

use std::any::type_name;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::FutureExt;
use pool_proto::ExitReason;
use serde::Serialize;
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

/// Decodes a function's arguments, the one place every spawn by name goes
/// through. "No arguments" has three spellings: no value (`null`), an empty
/// object (`{}`, `poolctl spawn`'s default) and nothing at all (a spawn
/// request without args decodes as `null`). Each stands for the others when
/// it does not fit `A`, so a `()` argument accepts `{}` and a struct whose
/// fields all have defaults accepts `null`.
///
/// The error names the function and the type it expected, with serde's
/// reason from the value as given.
pub(crate) fn decode_args<A: DeserializeOwned>(
    name: &str,
    args: serde_json::Value,
) -> Result<A, Error> {
    let alternative = match &args {
        serde_json::Value::Null => Some(serde_json::Value::Object(Default::default())),
        serde_json::Value::Object(m) if m.is_empty() => Some(serde_json::Value::Null),
        _ => None,
    };
    match serde_json::from_value::<A>(args) {
        Ok(a) => Ok(a),
        Err(first) => {
            if let Some(other) = alternative
                && let Ok(a) = serde_json::from_value::<A>(other)
            {
                return Ok(a);
            }
            Err(Error::BadArgs {
                function: name.to_owned(),
                reason: format!("expected {}: {first}", type_name::<A>()),
            })
        }
    }
}

/// A function declared once with its name, its argument type `A` and its
/// result type `R`: registered with [`Functions::add`], spawned with the
/// pool's typed `run` and `Spawn::of`, and both ends checked by the
/// compiler. On the wire it is still its name and JSON arguments, so
/// `poolctl spawn` and tree files reach it as before.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Function, Functions, RuntimeBuilder, SpawnOpts};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Add { a: i64, b: i64 }
/// const ADD: Function<Add, i64> = Function::new("math.add");
///
/// let mut fns = Functions::new();
/// // The closure's types come from the declaration.
/// fns.add(&ADD, |_ctx, args| async move { Ok(args.a + args.b) });
/// assert!(fns.contains(ADD.name()));
/// let rt = RuntimeBuilder::new().functions(fns).build();
/// let pid = rt.spawn_function(ADD.name(), serde_json::json!({"a": 2, "b": 3}), SpawnOpts::new());
/// assert!(pid.is_ok());
/// # }
/// ```
pub struct Function<A, R> {
    /// The name it is registered and spawned under.
    name: &'static str,
    /// The argument and result types; `fn(A) -> R` keeps the declaration
    /// `Send`, `Sync` and `Copy` whatever `A` and `R` are.
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Function<A, R> {
    /// Declares function `name` taking `A` and returning `R`.
    pub const fn new(name: &'static str) -> Self {
        Function {
            name,
            _types: PhantomData,
        }
    }

    /// The name it is registered and spawned under.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

// By hand: derives would ask `A: Clone` and `R: Clone`, which a
// declaration does not need.
impl<A, R> Clone for Function<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Function<A, R> {}

impl<A, R> fmt::Debug for Function<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Function({:?}: {} -> {})",
            self.name,
            type_name::<A>(),
            type_name::<R>()
        )
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

    /// Registers the typed function `function`: `f` receives its decoded
    /// argument and returns its result, or an exit reason (`?` converts
    /// `io::Error`, `String`, `&str` and boxed errors). Built on
    /// [`register`](Self::register): the table is the same, keyed by name.
    ///
    /// A spawn whose JSON arguments do not fit `A` is refused before any
    /// process starts, with [`Error::BadArgs`] naming the function and `A`.
    pub fn add<A, R, F, Fut>(&mut self, function: &Function<A, R>, f: F) -> &mut Self
    where
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        Fut: Future<Output = Result<R, ExitReason>> + Send + 'static,
    {
        self.register(function.name(), f)
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

#[cfg(test)]
mod tests;
