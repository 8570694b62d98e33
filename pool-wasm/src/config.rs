//! [`WasmConfig`], the backend's limits, and the wasmtime configuration
//! made from them (`engine_config`). A leaf.
//!
//! The engine compiles with Cranelift, interrupts by epochs (each store
//! yields to tokio at every tick), always counts fuel (a spawn without a
//! budget gets an unlimited one: one engine, one compiled artifact per
//! module, whatever the spawns ask), and allocates instances from a pool
//! of fixed slots.

use std::time::Duration;

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::Error;

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// The wasm backend's limits. The pooling allocator reserves (virtual
/// address space only, nothing resident) one memory slot of
/// `max_memory + guard` and one async stack per instance up front: with
/// the defaults, 128 × (256 MiB + 2 MiB) of memory slots and 128 × 1 MiB of
/// stacks, about 33 GiB of address space and no resident memory until
/// modules run.
///
/// ```
/// let cfg = pool_wasm::WasmConfig { max_instances: 16, ..Default::default() };
/// assert_eq!(cfg.default_memory, 256 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmConfig {
    /// How many compiled modules the cache keeps (least recently used
    /// first out).
    pub cache_modules: usize,
    /// How many wasm processes may run at once on the node (the pool's
    /// slots); one more exits at once with a reason saying so.
    pub max_instances: u32,
    /// The largest linear memory any instance may have, in bytes: the size
    /// of a pool slot, and the most a spawn's sandbox may ask for.
    pub max_memory: u64,
    /// The memory cap of a spawn whose sandbox sets none, in bytes (at
    /// most `max_memory`).
    pub default_memory: u64,
    /// The guard region after each memory slot, in bytes.
    pub memory_guard: u64,
    /// How often the epoch advances: the longest a wasm process computes
    /// before it yields to the node's other processes.
    pub epoch_tick: Duration,
    /// The native stack of each running instance (its async fiber), in
    /// bytes; wasm itself may use all but 64 KiB of it.
    pub stack_size: usize,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            cache_modules: 64,
            max_instances: 128,
            max_memory: 256 * MIB,
            default_memory: 256 * MIB,
            memory_guard: 2 * MIB,
            epoch_tick: Duration::from_millis(1),
            stack_size: MIB as usize,
        }
    }
}

impl WasmConfig {
    /// The address space the pooling allocator reserves for memories and
    /// stacks, in bytes (what the module docs figure).
    pub fn reserved_bytes(&self) -> u64 {
        u64::from(self.max_instances)
            * (self.max_memory + self.memory_guard + self.stack_size as u64)
    }

    /// Checks that the limits fit together.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |s: String| Err(Error::Config(s));
        if self.max_instances == 0 {
            return bad("max_instances is 0: no wasm process could run; give at least 1".into());
        }
        if self.cache_modules == 0 {
            return bad("cache_modules is 0: give at least 1".into());
        }
        if self.default_memory > self.max_memory {
            return bad(format!(
                "default_memory ({}) exceeds max_memory ({}): lower it or raise max_memory",
                self.default_memory, self.max_memory
            ));
        }
        if self.max_memory > 4 << 30 || self.max_memory < 64 << 10 {
            return bad(format!(
                "max_memory ({}) must be between 64 KiB and 4 GiB (a 32-bit linear memory)",
                self.max_memory
            ));
        }
        if self.stack_size < 256 << 10 {
            return bad(format!("stack_size ({}) is below 256 KiB", self.stack_size));
        }
        if self.epoch_tick.is_zero() {
            return bad("epoch_tick is zero: give at least 100µs".into());
        }
        Ok(())
    }

    /// The wasmtime configuration of the backend's engine.
    pub(crate) fn engine_config(&self) -> Config {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(self.max_instances)
            .total_memories(self.max_instances)
            .total_tables(self.max_instances)
            .total_stacks(self.max_instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(self.max_memory as usize);
        let mut c = Config::new();
        c.epoch_interruption(true)
            .consume_fuel(true)
            // Exit reasons name the trap; a backtrace per trap is not worth
            // its capture.
            .wasm_backtrace_max_frames(None)
            .memory_reservation(self.max_memory)
            .memory_guard_size(self.memory_guard)
            .memory_reservation_for_growth(0)
            .async_stack_size(self.stack_size)
            .max_wasm_stack(self.stack_size - (64 << 10))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        c
    }
}
