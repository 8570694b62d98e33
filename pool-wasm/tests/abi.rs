//! The host ABI between wasm and native processes: messages both ways,
//! calls both ways, receive timeouts, links, monitors, spawns and names.

mod support;

use std::time::Duration;

use supervisor::{Envelope, ExitReason, SpawnOpts};
use support::*;

/// A native process's `("ping", 7)` reaches a wasm process as MessagePack,
/// and what the wasm sends back — the same bytes, and `["pong", 8]` that it
/// encoded itself — decodes natively with `Message::take::<(String, u32)>()`.
#[tokio::test]
async fn messages_go_both_ways() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let server = rt
        .spawn_function(
            &name(source.add_wat(&echo_server()), "main"),
            serde_json::Value::Null,
            SpawnOpts::new(),
        )
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(move |mut ctx| async move {
        ctx.send(server, ("ping", 7u32));
        let first: (String, u32) = ctx.recv().await.take().unwrap();
        let second: (String, u32) = ctx.recv().await.take().unwrap();
        let _ = tx.send((first, second));
    });
    let (first, second) = tokio::time::timeout(BOUND, rx).await.unwrap().unwrap();
    assert_eq!(first, ("ping".to_string(), 7));
    assert_eq!(second, ("pong".to_string(), 8));
}

/// A native call to a wasm process gets the reply the guest gives (here
/// its request back).
#[tokio::test]
async fn native_calls_wasm() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let server = rt
        .spawn_function(
            &name(source.add_wat(&echo_server()), "main"),
            serde_json::Value::Null,
            SpawnOpts::new(),
        )
        .unwrap();
    let reply = rt.call(server, ("hi", 1u32), BOUND).await.unwrap();
    assert_eq!(
        reply.take::<(String, u32)>().unwrap(),
        ("hi".to_string(), 1)
    );
}

/// A wasm call to a native process gets its reply (and a call to a pid
/// that does not exist returns -2 at once, which the guest checks).
#[tokio::test]
async fn wasm_calls_native() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let echo = rt.spawn(|mut ctx| async move {
        while let Envelope::Call(call) = ctx.recv().await {
            let from = call.from;
            let mref = call.mref;
            let (word, n): (String, u32) = call.msg.take().unwrap();
            ctx.reply_to(from, mref, &(format!("{word}!"), n + 1));
        }
    });
    rt.register("echo", echo).unwrap();
    let (reason, result) = spawn_wait(
        &rt,
        &name(source.add_wat(&caller()), "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(
        result.unwrap().take::<(String, u32)>().unwrap(),
        ("ping!".to_string(), 8)
    );
}

/// A receive with a timeout and no message returns -1 after the timeout.
#[tokio::test]
async fn recv_times_out() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let hash = source.add_wat(&recv_timeout());
    let started = std::time::Instant::now();
    let (reason, result) = spawn_wait(
        &rt,
        &name(hash, "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert_eq!(reason, ExitReason::Normal);
    assert!(result.unwrap().take::<bool>().unwrap());
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// A wasm process that links to a native one and traps: the native
/// process, trapping exits, gets an exit signal whose reason is the trap.
#[tokio::test]
async fn a_trap_reaches_the_linked_native_process() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let function = name(source.add_wat(&trap_linked()), "main");
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.register("parent").unwrap();
        let child = ctx
            .runtime()
            .spawn_function(&function, serde_json::Value::Null, SpawnOpts::new())
            .unwrap();
        if let Envelope::Exit { from, reason } = ctx.recv().await {
            let _ = tx.send((from == child, reason));
        }
    });
    let (from_child, reason) = tokio::time::timeout(BOUND, rx).await.unwrap().unwrap();
    assert!(from_child);
    assert!(
        text(&reason).starts_with("wasm trap: ") && text(&reason).contains("unreachable"),
        "{reason}"
    );
}

/// A wasm process monitors a native one: it gets a `Down` with the right
/// kind, pid, ref and reason (and exits with that reason, which the test
/// sees).
#[tokio::test]
async fn wasm_monitor_gets_down() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let target = rt.spawn(|mut ctx| async move {
        let _ = ctx.recv().await;
        Err::<(), _>("bye".to_string())
    });
    rt.register("target", target).unwrap();
    let (reason, _) = spawn_wait(
        &rt,
        &name(source.add_wat(&monitor_down()), "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert_eq!(reason, ExitReason::Error("bye".into()));
}

/// A wasm process spawns a native function and a wasm function (by hash),
/// monitored, and gets each child's result in the `Down`; a function
/// that does not exist is refused with -4 and its text.
#[tokio::test]
async fn wasm_spawns_native_and_wasm() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let spawner = name(source.add_wat(&spawner()), "main");
    let answer = name(source.add_wat(&answer()), "answer");

    let (reason, result) = spawn_wait(
        &rt,
        &spawner,
        serde_json::json!("native.add"),
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(result.unwrap().take::<i64>().unwrap(), 5);

    let (reason, result) = spawn_wait(&rt, &spawner, serde_json::json!(answer), SpawnOpts::new())
        .await
        .unwrap();
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(result.unwrap().take::<u32>().unwrap(), 42);

    let (reason, _) = spawn_wait(
        &rt,
        &spawner,
        serde_json::json!("no.such"),
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert!(text(&reason).contains("no.such"), "{reason}");
}

/// A wasm process registers a name (seen by `whereis` and reachable by
/// `send_name`), sends to a native process by name, and a second
/// `register` is refused with -4 and a text saying why.
#[tokio::test]
async fn wasm_registers_and_sends_by_name() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let function = name(source.add_wat(&registrar()), "main");
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(move |mut ctx| async move {
        ctx.register("parent").unwrap();
        let mref = ctx.make_ref();
        let child = ctx
            .runtime()
            .spawn_function(
                &function,
                serde_json::Value::Null,
                SpawnOpts::new().monitor(ctx.pid(), mref, false),
            )
            .unwrap();
        let hello: String = ctx.recv().await.take().unwrap();
        let found = ctx.runtime().whereis("wasm.reg");
        ctx.send_named("wasm.reg", "again").unwrap();
        let down = ctx.wait_down(mref, None).await.unwrap();
        let _ = tx.send((hello, found == Some(child), down.reason));
    });
    let (hello, found, reason) = tokio::time::timeout(BOUND, rx).await.unwrap().unwrap();
    assert_eq!(hello, "ok");
    assert!(found);
    assert!(text(&reason).contains("already registered"), "{reason}");
}
