//! Figures of the wasm backend, printed as a table:
//!
//! - warm spawn-to-exit latency (module cached), p50/p99;
//! - cold spawn-to-exit latency (first use: fetch, verify, compile);
//! - local message rate, wasm → wasm against native → native;
//! - the call latency of a native echo process on a current-thread
//!   runtime, idle against while two wasm processes spin;
//! - the address space the pooling allocator reserves.
//!
//! `cargo bench -p pool-wasm --bench wasm` (release). Guests are WAT.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_wasm::{ModuleHash, ModuleSource, WasmBackend, WasmConfig};
use supervisor::{Envelope, Runtime, RuntimeBuilder, SpawnOpts};

const IMPORTS: &str = r#"
  (import "spawnpool" "take" (func $take (param i32)))
  (import "spawnpool" "send" (func $send (param i64 i64 i32 i32) (result i32)))
  (import "spawnpool" "recv" (func $recv (param i64) (result i32)))
  (import "spawnpool" "call" (func $call (param i64 i64 i32 i32 i64) (result i32)))
  (import "spawnpool" "reply" (func $reply (param i64 i64 i64 i64 i32 i32)))
  (import "spawnpool" "whereis" (func $whereis (param i32 i32 i32) (result i32)))
  (import "spawnpool" "set_result" (func $set_result (param i32 i32)))
  (memory (export "memory") 1)
"#;

/// Modules in memory.
#[derive(Default)]
struct Source(Mutex<HashMap<ModuleHash, Vec<u8>>>);

impl Source {
    fn add(&self, wat: &str) -> ModuleHash {
        let bytes = wat::parse_str(wat).unwrap();
        let h = ModuleHash::of(&bytes);
        self.0.lock().unwrap().insert(h, bytes);
        h
    }
}

impl ModuleSource for Source {
    fn fetch(&self, hash: ModuleHash) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let got = self
            .0
            .lock()
            .unwrap()
            .get(&hash)
            .cloned()
            .ok_or_else(|| "missing".to_string());
        async move { got }.boxed()
    }
}

/// `answer`: result `n`; the constant makes each variant a new module.
fn answer(n: u8) -> String {
    format!(
        r#"(module {IMPORTS} (data (i32.const 4096) "\{n:02x}")
             (func (export "answer") (call $set_result (i32.const 4096) (i32.const 1))))"#
    )
}

/// `main`: receives; answers calls with their request, ignores messages.
fn sink() -> String {
    format!(
        r#"(module {IMPORTS}
  (func (export "main") (local $n i32)
    (loop $next
      (local.set $n (call $recv (i64.const -1)))
      (call $take (i32.const 0))
      (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 1))
        (then (call $reply (i64.load (i32.const 1)) (i64.load (i32.const 9))
                           (i64.load (i32.const 17)) (i64.load (i32.const 25))
                           (i32.const 33) (i32.sub (local.get $n) (i32.const 33)))))
      (br $next))))"#
    )
}

/// `main`: sends `count` messages (`1`) to the process named `sink`, then
/// calls it once (all of them handled).
fn sender(count: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (data (i32.const 4096) "\01")
  (data (i32.const 4200) "sink")
  (func (export "main") (local $i i32)
    (drop (call $whereis (i32.const 4200) (i32.const 4) (i32.const 8192)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
      (drop (call $send (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 4096) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (drop (call $call (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 4096) (i32.const 1) (i64.const -1)))))"#
    )
}

/// `main`: tells the process named `ready`, then loops for ever.
fn spin() -> String {
    format!(
        r#"(module {IMPORTS}
  (data (i32.const 4096) "\01")
  (data (i32.const 4200) "ready")
  (func (export "main")
    (drop (call $whereis (i32.const 4200) (i32.const 5) (i32.const 8192)))
    (drop (call $send (i64.load (i32.const 8192)) (i64.load (i32.const 8200)) (i32.const 4096) (i32.const 1)))
    (loop $l (br $l))))"#
    )
}

/// Spawns `function` monitored and waits for its end.
async fn spawn_wait(rt: &Runtime, function: &str) {
    let function = function.to_owned();
    let (reason, _) = rt
        .run(move |mut ctx| async move {
            let mref = ctx.make_ref();
            let opts = SpawnOpts::new().monitor(ctx.pid(), mref, false);
            ctx.runtime()
                .spawn_function(&function, serde_json::Value::Null, opts)
                .unwrap();
            let d = ctx.wait_down(mref, None).await.unwrap();
            assert!(d.reason.is_normal(), "{}", d.reason);
        })
        .await;
    assert!(reason.is_normal(), "{reason}");
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn vm_size_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmSize:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = vm_size_kib();
        let source = Arc::new(Source::default());
        let cfg = WasmConfig::default();
        let backend = WasmBackend::new(cfg.clone(), source.clone()).unwrap();
        let after = vm_size_kib();
        if let (Some(b), Some(a)) = (before, after) {
            println!(
                "pooling allocator reserve (defaults: {} slots × {} MiB): {:.1} GiB of address space (config says {:.1} GiB)",
                cfg.max_instances,
                cfg.max_memory >> 20,
                (a - b) as f64 / (1 << 20) as f64,
                cfg.reserved_bytes() as f64 / (1u64 << 30) as f64
            );
        }
        let node = RuntimeBuilder::new().resolver(backend.clone()).build();

        // Cold: a new module each time.
        let mut cold = Vec::new();
        for i in 0..30u8 {
            let f = format!("{}:answer", source.add(&answer(i)));
            let t = Instant::now();
            spawn_wait(&node, &f).await;
            cold.push(t.elapsed());
        }
        // Warm: one cached module.
        let f = format!("{}:answer", source.add(&answer(100)));
        spawn_wait(&node, &f).await;
        let mut warm = Vec::new();
        for _ in 0..3000 {
            let t = Instant::now();
            spawn_wait(&node, &f).await;
            warm.push(t.elapsed());
        }
        // Native reference: the same spawn-monitor-wait of a native body.
        let mut native = Vec::new();
        for _ in 0..3000 {
            let t = Instant::now();
            let (reason, _) = node
                .run(|mut ctx| async move {
                    let (_, mref) = ctx.spawn_monitor(|_ctx| async { Ok::<_, String>(42u8) });
                    ctx.wait_down(mref, None).await.unwrap();
                })
                .await;
            assert!(reason.is_normal());
            native.push(t.elapsed());
        }
        println!(
            "spawn to exit, warm wasm:   p50 {}  p99 {}",
            us(pct(&mut warm, 0.5)),
            us(pct(&mut warm, 0.99))
        );
        println!(
            "spawn to exit, cold wasm:   p50 {}  p99 {}  (fetch + sha-256 + compile)",
            us(pct(&mut cold, 0.5)),
            us(pct(&mut cold, 0.99))
        );
        println!(
            "spawn to exit, native:      p50 {}  p99 {}",
            us(pct(&mut native, 0.5)),
            us(pct(&mut native, 0.99))
        );

        // Message rate, wasm -> wasm.
        const N: u32 = 200_000;
        let sink_pid = node
            .spawn_function(&format!("{}:main", source.add(&sink())), serde_json::Value::Null, SpawnOpts::new())
            .unwrap();
        node.register("sink", sink_pid).unwrap();
        let sender_f = format!("{}:main", source.add(&sender(N)));
        spawn_wait(&node, &format!("{}:main", source.add(&sender(10)))).await;
        let t = Instant::now();
        spawn_wait(&node, &sender_f).await;
        let wasm_rate = f64::from(N) / t.elapsed().as_secs_f64();
        node.kill(sink_pid);
        node.wait(sink_pid).await;
        // Native -> native.
        let sink_pid = node.spawn(|mut ctx| async move {
            loop {
                match ctx.recv().await {
                    Envelope::Call(call) => ctx.reply(&call, &1u8),
                    Envelope::Message { .. } => {}
                    _ => break,
                }
            }
        });
        let t = Instant::now();
        let (reason, _) = node
            .run(move |mut ctx| async move {
                for _ in 0..N {
                    ctx.send(sink_pid, 1u8);
                }
                ctx.call(sink_pid, 1u8, Duration::from_secs(60)).await.unwrap();
            })
            .await;
        assert!(reason.is_normal());
        let native_rate = f64::from(N) / t.elapsed().as_secs_f64();
        println!(
            "local messages: wasm -> wasm {:.0}/s, native -> native {:.0}/s",
            wasm_rate, native_rate
        );

    });
    drop(rt);
    fuel_cost();
    for (label, rt) in [
        (
            "current-thread runtime",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi-thread runtime, 2 workers",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ] {
        rt.block_on(echo_under_spin(label));
    }
}

/// What counting fuel costs a tight loop: the same module on an engine
/// with fuel off and one with fuel on (the backend's, engine-wide).
fn fuel_cost() {
    let wat = r#"(module (func (export "count") (param i64) (result i64) (local $i i64)
        (loop $l
          (local.set $i (i64.add (local.get $i) (i64.const 1)))
          (br_if $l (i64.lt_u (local.get $i) (local.get 0))))
        (local.get $i)))"#;
    let bytes = wat::parse_str(wat).unwrap();
    const ITERS: i64 = 300_000_000;
    let mut times = Vec::new();
    for fuel in [false, true] {
        let mut c = wasmtime::Config::new();
        c.epoch_interruption(true).consume_fuel(fuel);
        let engine = wasmtime::Engine::new(&c).unwrap();
        let module = wasmtime::Module::new(&engine, &bytes).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1 << 40);
        if fuel {
            store.set_fuel(u64::MAX).unwrap();
        }
        let inst = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = inst
            .get_typed_func::<i64, i64>(&mut store, "count")
            .unwrap();
        let t = Instant::now();
        assert_eq!(f.call(&mut store, ITERS).unwrap(), ITERS);
        times.push(t.elapsed());
    }
    println!(
        "tight loop of {ITERS} iterations: fuel off {:.0} ms, fuel on {:.0} ms ({:+.0}%)",
        times[0].as_secs_f64() * 1e3,
        times[1].as_secs_f64() * 1e3,
        (times[1].as_secs_f64() / times[0].as_secs_f64() - 1.0) * 100.0
    );
}

/// The call latency of a native echo process, called by a native process
/// (both tasks of the runtime, as on a node), idle and then while two wasm
/// processes spin; then how long killing the spinners takes.
async fn echo_under_spin(label: &str) {
    let source = Arc::new(Source::default());
    let cfg = WasmConfig::default();
    let backend = WasmBackend::new(cfg.clone(), source.clone()).unwrap();
    let node = RuntimeBuilder::new().resolver(backend).build();
    let echo = node.spawn(|mut ctx| async move {
        while let Envelope::Call(call) = ctx.recv().await {
            ctx.reply(&call, &1u8);
        }
    });
    let measure = |node: Runtime| async move {
        let (_, v) = node
            .run(move |mut ctx| async move {
                let mut v = Vec::new();
                for _ in 0..1000 {
                    let t = Instant::now();
                    ctx.call(echo, 1u8, Duration::from_secs(5)).await.unwrap();
                    v.push(t.elapsed());
                }
                Ok::<_, String>(v.iter().map(|d| d.as_nanos() as u64).collect::<Vec<u64>>())
            })
            .await;
        v.unwrap()
            .take::<Vec<u64>>()
            .unwrap()
            .into_iter()
            .map(Duration::from_nanos)
            .collect::<Vec<_>>()
    };
    let mut idle = measure(node.clone()).await;
    // Both spinners report once past compile and instantiation.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let ready = node.spawn(|mut ctx| async move {
        ctx.recv().await;
        ctx.recv().await;
        let _ = ready_tx.send(());
    });
    node.register("ready", ready).unwrap();
    let spin_f = format!("{}:main", source.add(&spin()));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            node.spawn_function(&spin_f, serde_json::Value::Null, SpawnOpts::new())
                .unwrap()
        })
        .collect();
    ready_rx.await.unwrap();
    let mut busy = measure(node.clone()).await;
    let t = Instant::now();
    for s in &spinners {
        node.kill(*s);
    }
    for s in &spinners {
        node.wait(*s).await;
    }
    let kill = t.elapsed();
    println!(
        "native echo call ({label}, epoch tick {:?}): idle p50 {} p99 {}; two wasm spinners p50 {} p99 {}; kill of both spinners {}",
        cfg.epoch_tick,
        us(pct(&mut idle, 0.5)),
        us(pct(&mut idle, 0.99)),
        us(pct(&mut busy, 0.5)),
        us(pct(&mut busy, 0.99)),
        us(kill)
    );
}
