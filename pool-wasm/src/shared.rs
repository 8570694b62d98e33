//! [`Shared`]: what the backend and every wasm process it started share —
//! the engine, the linker with the host ABI, the module cache, the module
//! source and the epoch ticker — and the loading of a module (fetch,
//! verify, compile, pre-instantiate).
//!
//! Ownership: [`WasmBackend`](crate::WasmBackend) holds an `Arc<Shared>`,
//! and so does each running wasm process's body; the ticker thread (inside)
//! stops when the last of them drops, so a process outliving the backend
//! is still preempted.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pool_proto::module::ModuleHash;
use tokio::time::Instant;
use wasmtime::{Engine, InstancePre, Linker, Module};

use crate::cache::ModuleCache;
use crate::config::WasmConfig;
use crate::error::Error;
use crate::source::ModuleSource;
use crate::state::HostState;
use crate::ticker::Ticker;

/// The engine's version, part of every cache key.
pub(crate) const ENGINE_VERSION: &str = "wasmtime-48";

/// A module ready to instantiate.
pub(crate) type Ready = InstancePre<HostState>;

/// The state shared by the backend and its processes.
pub(crate) struct Shared {
    /// The limits.
    pub(crate) cfg: WasmConfig,
    /// The engine: compiles modules; its epoch is what the ticker advances.
    pub(crate) engine: Engine,
    /// The host ABI and WASI preview 1, for pre-instantiation.
    pub(crate) linker: Linker<HostState>,
    /// Compiled modules.
    pub(crate) cache: ModuleCache<Ready>,
    /// Where module bytes come from.
    pub(crate) source: Arc<dyn ModuleSource>,
    /// Modules compiled since start (statistics).
    pub(crate) compiles: AtomicU64,
    /// The origin of the guests' `now_ms`.
    pub(crate) clock: Instant,
    /// Advances the epoch; its thread stops when this is dropped.
    _ticker: Ticker,
}

impl Shared {
    /// The engine, linker, cache and ticker for `cfg`.
    pub(crate) fn new(cfg: WasmConfig, source: Arc<dyn ModuleSource>) -> Result<Shared, Error> {
        cfg.validate()?;
        let engine =
            Engine::new(&cfg.engine_config()).map_err(|e| Error::Engine(chain_text(&e)))?;
        let mut linker = Linker::new(&engine);
        crate::abi::add_to_linker(&mut linker).map_err(|e| Error::Link(chain_text(&e)))?;
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| Error::Link(chain_text(&e)))?;
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let cache = ModuleCache::new(cfg.cache_modules, ENGINE_VERSION, h.finish());
        let ticker = Ticker::start(engine.clone(), cfg.epoch_tick).map_err(Error::Ticker)?;
        Ok(Shared {
            cfg,
            engine,
            linker,
            cache,
            source,
            compiles: AtomicU64::new(0),
            clock: Instant::now(),
            _ticker: ticker,
        })
    }

    /// Module `hash`, from the cache or fetched, verified and compiled.
    pub(crate) async fn module(self: &Arc<Self>, hash: ModuleHash) -> Result<Ready, String> {
        self.cache.get(hash, || self.load(hash)).await
    }

    /// Fetches module `hash`, checks its hash, compiles it (off the
    /// runtime's threads) and links it.
    async fn load(self: &Arc<Self>, hash: ModuleHash) -> Result<Ready, String> {
        let bytes = self
            .source
            .fetch(hash)
            .await
            .map_err(|e| format!("module {hash} could not be fetched: {e}"))?;
        let got = ModuleHash::of(&bytes);
        if got != hash {
            return Err(format!(
                "module {hash} refused: the {} bytes the module source gave have the hash {got}; \
                 the source holds other bytes under that hash: push the module again",
                bytes.len()
            ));
        }
        let engine = self.engine.clone();
        let module = tokio::task::spawn_blocking(move || Module::new(&engine, &bytes))
            .await
            .map_err(|e| format!("module {hash} could not be compiled: the compiler stopped: {e}"))?
            .map_err(|e| {
                format!(
                    "module {hash} refused: its bytes are not a valid wasm module: {}",
                    chain_text(&e)
                )
            })?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.linker.instantiate_pre(&module).map_err(|e| {
            format!(
                "module {hash} cannot be linked: {}; a module may import only the \
                 \"spawnpool\" host ABI and wasi_snapshot_preview1",
                chain_text(&e)
            )
        })
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain_text(e: &wasmtime::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        out.push_str(": ");
        out.push_str(&cause.to_string());
    }
    out
}
