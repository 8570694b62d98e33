//! Shared by pool-wasm's tests: an in-memory module source that counts
//! its fetches, a runtime with the backend installed, a spawn that waits
//! for the exit, and the WAT test guests.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_wasm::{ModuleHash, ModuleSource, WasmBackend, WasmConfig};
use supervisor::{ExitReason, Functions, Message, Runtime, RuntimeBuilder, SpawnOpts};

/// The bound of every wait in these tests.
pub const BOUND: Duration = Duration::from_secs(10);

/// Modules by hash, in memory; counts fetches.
#[derive(Default)]
pub struct Source {
    mods: Mutex<HashMap<ModuleHash, Vec<u8>>>,
    fetches: AtomicUsize,
}

impl Source {
    /// Adds the module written as `wat`; returns its hash.
    pub fn add_wat(&self, wat: &str) -> ModuleHash {
        let bytes = wat::parse_str(wat).expect("test guest is valid WAT");
        self.add_bytes(bytes)
    }

    /// Adds `bytes` under their hash.
    pub fn add_bytes(&self, bytes: Vec<u8>) -> ModuleHash {
        let hash = ModuleHash::of(&bytes);
        self.mods.lock().unwrap().insert(hash, bytes);
        hash
    }

    /// Adds `bytes` under `hash`, which is not theirs.
    pub fn add_wrong(&self, hash: ModuleHash, bytes: Vec<u8>) {
        self.mods.lock().unwrap().insert(hash, bytes);
    }

    /// Fetches so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl ModuleSource for Source {
    fn fetch(&self, hash: ModuleHash) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let got = self
            .mods
            .lock()
            .unwrap()
            .get(&hash)
            .cloned()
            .ok_or_else(|| format!("no module {hash} in the test source"));
        async move { got }.boxed()
    }
}

/// A test configuration: few slots, small memories.
pub fn config() -> WasmConfig {
    WasmConfig {
        max_instances: 16,
        max_memory: 16 << 20,
        default_memory: 16 << 20,
        ..Default::default()
    }
}

/// A backend over a fresh source.
pub fn backend(cfg: WasmConfig) -> (Arc<WasmBackend>, Arc<Source>) {
    let source = Arc::new(Source::default());
    (WasmBackend::new(cfg, source.clone()).unwrap(), source)
}

#[derive(serde::Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

/// A runtime with the backend as resolver and one native function,
/// `native.add` (`{a, b}` → `a + b`).
pub fn node(backend: &Arc<WasmBackend>) -> Runtime {
    let mut fns = Functions::new();
    fns.register("native.add", |_ctx, args: Add| async move {
        Ok::<_, String>(args.a + args.b)
    });
    RuntimeBuilder::new()
        .functions(fns)
        .resolver(backend.clone())
        .build()
}

/// `HASH:EXPORT`.
pub fn name(hash: ModuleHash, export: &str) -> String {
    format!("{hash}:{export}")
}

/// Spawns `function` monitored (with its result) by a native process and
/// waits, bounded, for its exit reason and result.
pub async fn spawn_wait(
    rt: &Runtime,
    function: &str,
    args: serde_json::Value,
    opts: SpawnOpts,
) -> Result<(ExitReason, Option<Message>), supervisor::Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let function = function.to_owned();
    rt.spawn(move |mut ctx| async move {
        let mref = ctx.make_ref();
        let opts = opts.monitor(ctx.pid(), mref, true);
        match ctx.runtime().spawn_function(&function, args, opts) {
            Ok(_) => {
                let d = ctx.wait_down(mref, None).await.unwrap();
                let _ = tx.send(Ok((d.reason, d.result)));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    tokio::time::timeout(BOUND, rx)
        .await
        .expect("the wasm process ends within the bound")
        .unwrap()
}

/// The error text of an exit reason.
pub fn text(reason: &ExitReason) -> String {
    reason.to_string()
}

/// Every import of the host ABI, for the guests below.
const IMPORTS: &str = r#"
  (import "spawnpool" "args" (func $args (result i32)))
  (import "spawnpool" "take" (func $take (param i32)))
  (import "spawnpool" "pending_len" (func $pending_len (result i32)))
  (import "spawnpool" "self_pid" (func $self_pid (param i32)))
  (import "spawnpool" "send" (func $send (param i64 i64 i32 i32) (result i32)))
  (import "spawnpool" "send_name" (func $send_name (param i32 i32 i32 i32) (result i32)))
  (import "spawnpool" "recv" (func $recv (param i64) (result i32)))
  (import "spawnpool" "call" (func $call (param i64 i64 i32 i32 i64) (result i32)))
  (import "spawnpool" "reply" (func $reply (param i64 i64 i64 i64 i32 i32)))
  (import "spawnpool" "spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "spawnpool" "link" (func $link (param i64 i64) (result i32)))
  (import "spawnpool" "unlink" (func $unlink (param i64 i64) (result i32)))
  (import "spawnpool" "monitor" (func $monitor (param i64 i64 i32) (result i32)))
  (import "spawnpool" "demonitor" (func $demonitor (param i64 i64)))
  (import "spawnpool" "trap_exit" (func $trap_exit (param i32)))
  (import "spawnpool" "exit_pid" (func $exit_pid (param i64 i64 i32 i32)))
  (import "spawnpool" "register" (func $register (param i32 i32) (result i32)))
  (import "spawnpool" "whereis" (func $whereis (param i32 i32 i32) (result i32)))
  (import "spawnpool" "set_result" (func $set_result (param i32 i32)))
  (import "spawnpool" "exit" (func $exit (param i32 i32)))
  (import "spawnpool" "log" (func $log (param i32 i32 i32)))
  (import "spawnpool" "now_ms" (func $now_ms (result i64)))
  (memory (export "memory") 1)
"#;

/// A module with every import, one page of memory and `body`. Memory
/// layout of the guests: received envelopes at 0, constants from 4096,
/// pids and refs from 8192.
pub fn guest(body: &str) -> String {
    format!("(module {IMPORTS} {body})")
}

/// `main`: a server. A call is answered with its request; a message is
/// sent back to its sender, followed by `["pong", 8]`; anything else ends
/// it.
pub fn echo_server() -> String {
    guest(
        r#"
  (data (i32.const 4096) "\92\a4pong\08")
  (func (export "main") (local $n i32) (local $k i32)
    (block $done
      (loop $next
        (local.set $n (call $recv (i64.const -1)))
        (call $take (i32.const 0))
        (local.set $k (i32.load8_u (i32.const 0)))
        (if (i32.eq (local.get $k) (i32.const 1))
          (then
            (call $reply (i64.load (i32.const 1)) (i64.load (i32.const 9))
                         (i64.load (i32.const 17)) (i64.load (i32.const 25))
                         (i32.const 33) (i32.sub (local.get $n) (i32.const 33)))
            (br $next)))
        (if (i32.eq (local.get $k) (i32.const 0))
          (then
            (drop (call $send (i64.load (i32.const 1)) (i64.load (i32.const 9))
                              (i32.const 33) (i32.sub (local.get $n) (i32.const 33))))
            (drop (call $send (i64.load (i32.const 1)) (i64.load (i32.const 9))
                              (i32.const 4096) (i32.const 7)))
            (br $next)))
        (br $done))))
"#,
    )
}

/// `main`: calls a pid that does not exist (expects -2), then calls the
/// process registered as `echo` with `["ping", 7]` and makes the reply its
/// result.
pub fn caller() -> String {
    guest(
        r#"
  (data (i32.const 4096) "\92\a4ping\07")
  (data (i32.const 4200) "echo")
  (data (i32.const 4300) "call failed")
  (func (export "main") (local $n i32)
    (call $self_pid (i32.const 8192))
    (if (i32.ne (call $call (i64.load (i32.const 8192)) (i64.const 999999)
                            (i32.const 4096) (i32.const 7) (i64.const 5000))
                (i32.const -2))
      (then unreachable))
    (if (i32.ne (call $whereis (i32.const 4200) (i32.const 4) (i32.const 8192)) (i32.const 0))
      (then unreachable))
    (local.set $n (call $call (i64.load (i32.const 8192)) (i64.load (i32.const 8200))
                              (i32.const 4096) (i32.const 7) (i64.const 5000)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (call $exit (i32.const 4300) (i32.const 11))))
    (call $take (i32.const 0))
    (call $set_result (i32.const 0) (local.get $n)))
"#,
    )
}

/// `main`: a receive with a 50 ms timeout must time out (-1); the
/// result is then `true`.
pub fn recv_timeout() -> String {
    guest(
        r#"
  (func (export "main")
    (if (i32.ne (call $recv (i64.const 50)) (i32.const -1)) (then unreachable))
    (i32.store8 (i32.const 0) (i32.const 0xc3))
    (call $set_result (i32.const 0) (i32.const 1)))
"#,
    )
}

/// `main`: links to the process registered as `parent`, then traps.
pub fn trap_linked() -> String {
    guest(
        r#"
  (data (i32.const 4200) "parent")
  (func (export "main")
    (if (i32.ne (call $whereis (i32.const 4200) (i32.const 6) (i32.const 8192)) (i32.const 0))
      (then unreachable))
    (if (i32.ne (call $link (i64.load (i32.const 8192)) (i64.load (i32.const 8200))) (i32.const 0))
      (then unreachable))
    unreachable)
"#,
    )
}

/// `main`: monitors the process registered as `target`, sends it `"go"`,
/// receives the `Down` (checking its kind, ref and pid) and exits with
/// the `Down`'s reason.
pub fn monitor_down() -> String {
    guest(
        r#"
  (data (i32.const 4096) "\a2go")
  (data (i32.const 4200) "target")
  (func (export "main")
    (if (i32.ne (call $whereis (i32.const 4200) (i32.const 6) (i32.const 8192)) (i32.const 0))
      (then unreachable))
    (drop (call $monitor (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 8300)))
    (drop (call $send (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 4096) (i32.const 3)))
    (drop (call $recv (i64.const -1)))
    (call $take (i32.const 0))
    (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 3)) (then unreachable))
    (if (i64.ne (i64.load (i32.const 1)) (i64.load (i32.const 8192))) (then unreachable))
    (if (i64.ne (i64.load (i32.const 9)) (i64.load (i32.const 8200))) (then unreachable))
    (if (i64.ne (i64.load (i32.const 17)) (i64.load (i32.const 8300))) (then unreachable))
    (if (i64.ne (i64.load (i32.const 25)) (i64.load (i32.const 8308))) (then unreachable))
    (call $exit (i32.const 37) (i32.load (i32.const 33))))
"#,
    )
}

/// `main`: its args are a JSON string, the name of a function; it spawns
/// that function monitored with args `{"a":2,"b":3}` and makes the
/// child's result its own. A refused spawn exits with the error text.
pub fn spawner() -> String {
    guest(
        r#"
  (data (i32.const 4096) "{\"a\":2,\"b\":3}")
  (func (export "main") (local $n i32) (local $len i32)
    (local.set $n (call $args))
    (call $take (i32.const 1000))
    (if (i32.ne (call $spawn (i32.const 1001) (i32.sub (local.get $n) (i32.const 2))
                             (i32.const 4096) (i32.const 13) (i32.const 2) (i32.const 8192))
                (i32.const 0))
      (then
        (local.set $len (call $pending_len))
        (call $take (i32.const 2000))
        (call $exit (i32.const 2000) (local.get $len))))
    (local.set $n (call $recv (i64.const -1)))
    (call $take (i32.const 0))
    (if (i32.ne (i32.load8_u (i32.const 0)) (i32.const 3)) (then unreachable))
    (if (i64.ne (i64.load (i32.const 1)) (i64.load (i32.const 8192))) (then unreachable))
    (if (i64.ne (i64.load (i32.const 17)) (i64.load (i32.const 8208))) (then unreachable))
    (local.set $len (i32.load (i32.const 33)))
    (call $set_result (i32.add (i32.const 37) (local.get $len))
                      (i32.sub (local.get $n) (i32.add (i32.const 37) (local.get $len)))))
"#,
    )
}

/// `answer`: ends normally with result 42.
pub fn answer() -> String {
    guest(
        r#"
  (data (i32.const 4096) "\2a")
  (func (export "answer") (call $set_result (i32.const 4096) (i32.const 1)))
"#,
    )
}

/// `main`: registers as `wasm.reg`, tells the process registered as
/// `parent` (`"ok"`), waits for a message, then registers again and exits
/// with the refusal's text.
pub fn registrar() -> String {
    guest(
        r#"
  (data (i32.const 4096) "wasm.reg")
  (data (i32.const 4200) "parent")
  (data (i32.const 4300) "\a2ok")
  (func (export "main") (local $len i32)
    (if (i32.ne (call $register (i32.const 4096) (i32.const 8)) (i32.const 0)) (then unreachable))
    (if (i32.ne (call $send_name (i32.const 4200) (i32.const 6) (i32.const 4300) (i32.const 3)) (i32.const 0))
      (then unreachable))
    (drop (call $recv (i64.const -1)))
    (if (i32.ne (call $register (i32.const 4096) (i32.const 8)) (i32.const -4)) (then unreachable))
    (local.set $len (call $pending_len))
    (call $take (i32.const 2000))
    (call $exit (i32.const 2000) (local.get $len)))
"#,
    )
}

/// `main`: loops for ever without calling anything.
pub fn spin() -> String {
    guest(r#"(func (export "main") (loop $l (br $l)))"#)
}

/// `main`: tells the process registered as `ready` (`true`), then loops
/// for ever without calling anything.
pub fn spin_ready() -> String {
    guest(
        r#"
  (data (i32.const 4096) "\c3")
  (data (i32.const 4200) "ready")
  (func (export "main")
    (if (i32.ne (call $whereis (i32.const 4200) (i32.const 5) (i32.const 8192)) (i32.const 0))
      (then unreachable))
    (drop (call $send (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 4096) (i32.const 1)))
    (loop $l (br $l)))
"#,
    )
}

/// `main`: grows its memory by 1 MiB at a time until refused.
pub fn hog() -> String {
    guest(
        r#"(func (export "main")
             (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))))"#,
    )
}

/// `main`, WASI only: writes a line to stdout and exits (`proc_exit`)
/// with 10 × its number of environment variables + 1 if a directory is
/// preopened (fd 3).
pub fn wasi() -> String {
    r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello from wasm\n")
  (func (export "main") (local $code i32)
    (drop (call $env_sizes (i32.const 0) (i32.const 4)))
    (local.set $code (i32.mul (i32.load (i32.const 0)) (i32.const 10)))
    (if (i32.eqz (call $prestat (i32.const 3) (i32.const 200)))
      (then (local.set $code (i32.add (local.get $code) (i32.const 1)))))
    (i32.store (i32.const 16) (i32.const 100))
    (i32.store (i32.const 20) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $proc_exit (local.get $code))))"#
        .to_owned()
}
