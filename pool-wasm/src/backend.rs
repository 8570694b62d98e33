//! [`WasmBackend`]: the wasm backend of a node, the
//! [`Resolver`](supervisor::Resolver) a runtime asks for `HASH:EXPORT`
//! names. It checks a spawn's name and sandbox at once (a bad one is
//! refused before any process exists) and prepares the body that
//! `process.rs` runs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use pool_proto::Sandbox;
use pool_proto::module::{ModuleHash, WasmName};
use supervisor::{Error as RtError, Prepared, Resolver};

use crate::config::WasmConfig;
use crate::error::Error;
use crate::process::{Spawn, run};
use crate::shared::{ENGINE_VERSION, Shared};
use crate::source::ModuleSource;

/// A node's wasm backend: install it as the runtime's resolver
/// ([`RuntimeBuilder::resolver`](supervisor::RuntimeBuilder::resolver)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use futures_util::FutureExt;
/// use pool_wasm::{ModuleHash, ModuleSource, WasmBackend, WasmConfig};
///
/// struct NoModules;
/// impl ModuleSource for NoModules {
///     fn fetch(&self, hash: ModuleHash) -> futures_util::future::BoxFuture<'static, Result<Vec<u8>, String>> {
///         async move { Err(format!("no module {hash} here")) }.boxed()
///     }
/// }
/// let cfg = WasmConfig { max_instances: 4, ..Default::default() };
/// let backend = WasmBackend::new(cfg, Arc::new(NoModules)).unwrap();
/// let rt = supervisor::RuntimeBuilder::new().resolver(backend.clone()).build();
/// let name = format!("{}:main", ModuleHash::of(b"missing"));
/// // A native process spawns it monitored, and ends with its exit reason.
/// let (_, reason) = rt
///     .run(move |mut ctx| async move {
///         let mref = ctx.make_ref();
///         let opts = supervisor::SpawnOpts::new().monitor(ctx.pid(), mref, false);
///         ctx.runtime().spawn_function(&name, serde_json::Value::Null, opts).unwrap();
///         Ok::<_, String>(ctx.wait_down(mref, None).await.unwrap().reason.to_string())
///     })
///     .await;
/// let reason: String = reason.unwrap().take().unwrap();
/// assert!(reason.contains("could not be fetched"), "{reason}");
/// # }
/// ```
pub struct WasmBackend {
    /// The engine, linker, cache, source and ticker, shared with every
    /// running wasm process (the ticker stops when the last holder drops).
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WasmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmBackend")
            .field("cfg", &self.shared.cfg)
            .field("cached", &self.cached().len())
            .finish()
    }
}

impl WasmBackend {
    /// Builds the engine (reserving the pool's slots), the linker and the
    /// cache, and starts the epoch ticker.
    pub fn new(cfg: WasmConfig, source: Arc<dyn ModuleSource>) -> Result<Arc<Self>, Error> {
        Ok(Arc::new(WasmBackend {
            shared: Arc::new(Shared::new(cfg, source)?),
        }))
    }

    /// The engine's version, part of the cache key of a compiled module.
    pub fn engine_version() -> &'static str {
        ENGINE_VERSION
    }

    /// The modules compiled and cached, most recently used first.
    pub fn cached(&self) -> Vec<ModuleHash> {
        self.shared.cache.cached()
    }

    /// How many modules were compiled since start.
    pub fn compiles(&self) -> u64 {
        self.shared.compiles.load(Ordering::Relaxed)
    }

    /// The limits.
    pub fn config(&self) -> &WasmConfig {
        &self.shared.cfg
    }
}

impl Resolver for WasmBackend {
    fn resolves(&self, name: &str) -> bool {
        WasmName::parse(name).is_some()
    }

    fn prepare(
        &self,
        name: &str,
        args: serde_json::Value,
        sandbox: Option<&Sandbox>,
    ) -> Result<Prepared, RtError> {
        let (hash, export) = match WasmName::parse(name) {
            Some(WasmName::Hash { hash, export }) => (hash, export),
            Some(WasmName::Named { file, .. }) => {
                return Err(RtError::UnknownFunction {
                    name: name.to_owned(),
                    known: format!(
                        "a worker runs wasm modules by hash only: spawn through the pool, which maps \
                         {file} to its hash, or push it (poolctl module push {file}) and spawn HASH:EXPORT"
                    ),
                });
            }
            None => {
                return Err(RtError::UnknownFunction {
                    name: name.to_owned(),
                    known: "wasm functions are named HASH:EXPORT".into(),
                });
            }
        };
        let cfg = &self.shared.cfg;
        let memory = match sandbox.and_then(|s| s.memory) {
            Some(m) if m > cfg.max_memory => {
                return Err(RtError::BadArgs {
                    function: name.to_owned(),
                    reason: format!(
                        "the sandbox's memory cap of {m} bytes exceeds this node's largest wasm \
                         memory ({} bytes): ask for at most that",
                        cfg.max_memory
                    ),
                });
            }
            Some(m) => m,
            None => cfg.default_memory,
        };
        let spawn = Spawn {
            hash,
            export,
            args: args.to_string(),
            fuel: sandbox.and_then(|s| s.fuel),
            memory,
            sandbox: sandbox.cloned(),
        };
        let shared = self.shared.clone();
        Ok(Box::new(move |ctx| run(shared, ctx, spawn).boxed()))
    }
}
