//! Spawnpool's WebAssembly backend: wasm modules run as processes of a
//! node's [`supervisor::Runtime`] — with a pid, a mailbox, links, monitors
//! and exit reasons — preempted, budgeted and sandboxed.
//!
//! A node installs a [`WasmBackend`] as its runtime's
//! [`Resolver`](supervisor::Resolver): a spawn of `HASH:EXPORT` (the
//! module's sha-256, 64 hex digits, and an exported function of type
//! `() -> ()`) gets the module from the cache, or from the
//! [`ModuleSource`] (verifying the hash, then compiling it once), and runs
//! the export in its own store.
//!
//! # What it owns, and who owns whom
//!
//! ```text
//! WasmBackend ──Arc──> Shared <──Arc── each running wasm process's body
//!                        ├─ Engine          (cranelift, epochs, fuel, pooling allocator)
//!                        ├─ Linker          (host ABI "spawnpool" + wasi_snapshot_preview1)
//!                        ├─ ModuleCache     ((hash, engine version, config) -> InstancePre, LRU)
//!                        ├─ ModuleSource    (module bytes by hash)
//!                        └─ Ticker          (one thread: engine.increment_epoch() every tick)
//! a wasm process = its runtime task polling process::run
//!   └─ Store<HostState { Ctx, pending buffer, WASI, memory cap, result }>
//! ```
//!
//! The ticker thread stops when the last `Arc<Shared>` drops: the backend
//! and every wasm process still running (so no process outlives its
//! preemption). A process's store, and with it its `Ctx`, lives in the
//! body's future: a signal that kills the process aborts its task, and
//! the future is dropped at the guest's next epoch yield (or wait), which
//! stops the guest there.
//!
//! # Limits
//!
//! - **Preemption**: every store yields to tokio at each epoch tick
//!   ([`WasmConfig::epoch_tick`], 1 ms by default), so a module that loops
//!   for ever holds its thread at most a tick at a time, and a kill
//!   stops it within a tick.
//! - **Fuel**: counted engine-wide (one engine, one compiled artifact per
//!   module); a spawn with a budget ([`pool_proto::Sandbox::fuel`]) ends
//!   with `out of fuel: the spawn's budget of N units is spent`, others
//!   run with an unlimited budget.
//! - **Memory**: a resource limiter caps each instance's linear memory at
//!   the sandbox's `memory`, else [`WasmConfig::default_memory`] (256 MiB);
//!   more ends it with `memory limit: the module asked for more than N
//!   bytes`. A sandbox may not ask more than [`WasmConfig::max_memory`].
//! - **Pooling allocator**: [`WasmConfig::max_instances`] slots (128 by
//!   default), each reserving `max_memory + memory_guard` of address space
//!   (256 MiB + 2 MiB) and one 1 MiB async stack: about 33 GiB of virtual
//!   address space with the defaults ([`WasmConfig::reserved_bytes`]),
//!   none of it resident until used. One process more than the slots
//!   exits at once saying so.
//! - **Cache**: [`WasmConfig::cache_modules`] compiled modules (64),
//!   least recently used out; single-flight: N concurrent first spawns of
//!   a module fetch and compile it once.
//! - **Sandbox**: WASI preview 1 with no preopened directory, no
//!   environment variable and no arguments unless the spawn's sandbox
//!   grants directories or variables; stdout and stderr go to the node's
//!   log (target `wasm`) with the pid. Preview 1 has no sockets.
//!
//! # The host ABI
//!
//! Import module `"spawnpool"`; the guest exports its `memory`. A pid or
//! ref is two i64 (node, serial). Variable-length results go through one
//! pending buffer per process: a call returns its length `L ≥ 0` and the
//! guest copies it with `take(ptr)`. Negative returns: `-1` timeout, `-2`
//! noproc, `-3` noconnection, `-4` bad argument and `-5` other error (the
//! pending buffer then holds the error text). Message and result bodies
//! are MessagePack bytes of one value, exactly what a native process's
//! `Message::take::<T>()` decodes.
//!
//! | import | signature |
//! |---|---|
//! | `args` | `() -> i32` (JSON text into pending) |
//! | `take` | `(ptr)` |
//! | `pending_len` | `() -> i32` (an addition: the length of the pending error text of -4/-5) |
//! | `self_pid` | `(out_ptr)` (16 bytes: node u64 LE, serial u64 LE) |
//! | `send` | `(node i64, serial i64, ptr, len) -> i32` |
//! | `send_name` | `(name_ptr, name_len, ptr, len) -> i32` (0 or -2) |
//! | `recv` | `(timeout_ms i64) -> i32` (< 0: for ever; -1 on timeout) |
//! | `call` | `(node i64, serial i64, ptr, len, timeout_ms i64) -> i32` |
//! | `reply` | `(node i64, serial i64, ref_node i64, ref_serial i64, ptr, len)` |
//! | `spawn` | `(fn_ptr, fn_len, args_ptr, args_len, flags i32, out_ptr) -> i32` (bit0 link, bit1 monitor) |
//! | `link` / `unlink` | `(node i64, serial i64) -> i32` |
//! | `monitor` | `(node i64, serial i64, out_ptr) -> i32` |
//! | `demonitor` | `(ref_node i64, ref_serial i64)` |
//! | `trap_exit` | `(on i32)` |
//! | `exit_pid` | `(node i64, serial i64, reason_ptr, reason_len)` |
//! | `register` | `(name_ptr, name_len) -> i32` (0 or -4) |
//! | `whereis` | `(name_ptr, name_len, out_ptr) -> i32` (0 or -2) |
//! | `set_result` | `(ptr, len)` |
//! | `exit` | `(reason_ptr, reason_len)` (does not return) |
//! | `log` | `(level i32, ptr, len)` |
//! | `now_ms` | `() -> i64` |
//!
//! An envelope from `recv`: byte 0 the kind (0 message, 1 call, 2 exit
//! signal, 3 down), bytes 1..17 a pid (sender, caller, `from`, or the
//! watched pid), bytes 17..33 a ref (a call's or a monitor's, else zero),
//! then the body (message and call: the MessagePack value; exit: the
//! reason text; down: u32 LE length of the reason text, the text, then the
//! result's MessagePack bytes if any).
//!
//! `send_name` resolves local names only: a global name is the pool's, and
//! this crate sees one node's runtime.
//!
//! # Exit reasons
//!
//! Returning from the export: `normal` (with the `set_result` value);
//! `exit`: its reason; a trap: `wasm trap: ...`; a module that cannot be
//! fetched, has another hash, does not compile or lacks the export: text
//! saying so (the last names the module's function exports). All are
//! ordinary `ExitReason::Error` text, through links, monitors and
//! supervisors like any other.

mod abi;
mod backend;
mod cache;
mod config;
mod envelope;
mod error;
mod logio;
mod process;
mod shared;
mod source;
mod state;
mod ticker;

pub use backend::WasmBackend;
pub use config::WasmConfig;
pub use error::Error;
pub use pool_proto::module::ModuleHash;
pub use source::ModuleSource;
