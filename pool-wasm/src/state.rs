//! What a wasm process's `Store` holds ([`HostState`]): its `Ctx`, the
//! pending buffer of the host ABI, its WASI context and its memory cap;
//! and the two errors a host function raises to end the guest at once
//! ([`GuestExit`], [`MemoryLimit`]). A leaf.

use pool_proto::ExitReason;
use supervisor::Ctx;
use tokio::time::Instant;
use wasmtime::{Memory, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

/// The data of one wasm process's store. It owns the process's [`Ctx`]:
/// dropping the store (the body ended, or its task was aborted) drops the
/// `Ctx` with it, as a native body's.
pub(crate) struct HostState {
    /// The process's handle on the runtime: mailbox, links, sends.
    pub(crate) ctx: Ctx,
    /// The pending buffer: the last variable-length result, copied out by
    /// the guest with `take`.
    pub(crate) pending: Vec<u8>,
    /// The guest's exported `memory`, once instantiated.
    pub(crate) memory: Option<Memory>,
    /// WASI preview 1 (stdout/stderr to the log, grants of the sandbox).
    pub(crate) wasi: WasiP1Ctx,
    /// The memory cap, enforced as the store's resource limiter.
    pub(crate) cap: MemoryCap,
    /// The result value set by `set_result` (MessagePack).
    pub(crate) result: Option<Vec<u8>>,
    /// The spawn's arguments, JSON text.
    pub(crate) args: String,
    /// The origin of `now_ms`.
    pub(crate) clock: Instant,
}

/// The memory cap of one process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryCap {
    /// The most bytes of linear memory the process may have.
    pub(crate) bytes: u64,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.bytes {
            // An error, not `Ok(false)`: the guest ends at once with a
            // clear reason instead of seeing `memory.grow` fail and
            // aborting with a vaguer one.
            return Err(wasmtime::Error::new(MemoryLimit { cap: self.bytes }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's slot.
        Ok(true)
    }
}

/// The guest asked for more memory than its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit: the module asked for more than {cap} bytes")]
pub(crate) struct MemoryLimit {
    /// The cap.
    pub(crate) cap: u64,
}

/// The guest called `exit`: the process ends with this reason.
#[derive(Debug, thiserror::Error)]
#[error("the module exited: {0}")]
pub(crate) struct GuestExit(pub(crate) ExitReason);
