//! The raw host ABI: the imports of module `"spawnpool"`, one to one with
//! the table in `docs/wasm.md`. Everything else in the crate is a safe
//! wrapper over these.
//!
//! Pointers and lengths are offsets into this module's own memory (`i32` on
//! wasm32); a pid or a reference is two `i64` (node, serial). Variable-length
//! answers go through the host's pending buffer: the import returns its
//! length `L ≥ 0` and [`take`] copies it out. Negative returns are the
//! error codes of [`code`](crate::sys::code).
//!
//! Outside wasm32 (`cargo test` and `cargo doc` on the build machine) the
//! same functions exist so that the crate type-checks and its pure parts
//! can be tested, but there is no host: calling one panics with a message
//! saying so.

/// The error codes the imports return.
pub(crate) mod code {
    /// No answer in time.
    pub(crate) const TIMEOUT: i32 = -1;
    /// No such process or name.
    pub(crate) const NOPROC: i32 = -2;
    /// The node is unreachable.
    pub(crate) const NOCONNECTION: i32 = -3;
    /// A bad argument.
    pub(crate) const BAD_ARGUMENT: i32 = -4;
}

/// Declares the imports: real ones on wasm32, ones that say there is no
/// host elsewhere.
macro_rules! host_imports {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "spawnpool")]
        extern "C" {
            $( $(#[$m])* pub(crate) fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }

        /// The imports outside wasm32: no host to call.
        #[cfg(not(target_arch = "wasm32"))]
        mod outside {
            $(
                $(#[$m])*
                pub(crate) unsafe fn $name($(_: $ty),*) $(-> $ret)? {
                    crate::sys::no_host(stringify!($name))
                }
            )*
        }

        #[cfg(not(target_arch = "wasm32"))]
        pub(crate) use outside::*;
    };
}

/// What any import does outside a wasm module.
#[cfg(not(target_arch = "wasm32"))]
fn no_host(import: &str) -> ! {
    panic!(
        "spawnpool-guest: `{import}` needs the Spawnpool host; build this crate for \
         wasm32-wasip1 and run the module on a worker"
    )
}

host_imports! {
    /// The spawn's arguments (JSON text) into pending; returns L.
    fn args() -> i32;
    /// Copies the pending buffer to `ptr` and empties it.
    fn take(ptr: *mut u8);
    /// Writes this process's pid (16 bytes) at `out`.
    fn self_pid(out: *mut u8);
    /// `Pid ! Msg` (msgpack body); 0.
    fn send(node: i64, serial: i64, ptr: *const u8, len: usize) -> i32;
    /// Sends to a name registered on this node; 0 or -2.
    fn send_name(name_ptr: *const u8, name_len: usize, ptr: *const u8, len: usize) -> i32;
    /// The next envelope into pending (timeout < 0: forever); L or -1.
    fn recv(timeout_ms: i64) -> i32;
    /// A call; the reply body into pending; L or -1/-2/-3/-5.
    fn call(node: i64, serial: i64, ptr: *const u8, len: usize, timeout_ms: i64) -> i32;
    /// Answers a call.
    fn reply(node: i64, serial: i64, ref_node: i64, ref_serial: i64, ptr: *const u8, len: usize);
    /// Spawns `fn` with JSON args on this node; pid (and ref) at `out`; 0 or -4/-5.
    fn spawn(
        fn_ptr: *const u8,
        fn_len: usize,
        args_ptr: *const u8,
        args_len: usize,
        flags: i32,
        out: *mut u8,
    ) -> i32;
    /// Links to a process; 0 or -2.
    fn link(node: i64, serial: i64) -> i32;
    /// Removes a link; 0 or -2.
    fn unlink(node: i64, serial: i64) -> i32;
    /// Monitors a process; the ref (16 bytes) at `out`; 0.
    fn monitor(node: i64, serial: i64, out: *mut u8) -> i32;
    /// Removes a monitor and flushes its down message.
    fn demonitor(ref_node: i64, ref_serial: i64);
    /// Turns exit signals into messages (1) or back (0).
    fn trap_exit(on: i32);
    /// Sends an exit signal with a reason (text).
    fn exit_pid(node: i64, serial: i64, reason_ptr: *const u8, reason_len: usize);
    /// Registers a local name for this process; 0 or -4.
    fn register(name_ptr: *const u8, name_len: usize) -> i32;
    /// The pid of a registered name at `out`; 0 or -2.
    fn whereis(name_ptr: *const u8, name_len: usize, out: *mut u8) -> i32;
    /// Sets this process's result (msgpack).
    fn set_result(ptr: *const u8, len: usize);
    /// Ends this process with a reason (text); does not return.
    fn exit(reason_ptr: *const u8, reason_len: usize);
    /// A line to the node's log: 0 error, 1 warn, 2 info, 3 debug.
    fn log(level: i32, ptr: *const u8, len: usize);
    /// Milliseconds of a monotonic clock.
    fn now_ms() -> i64;
}
