//! Preemption, budgets and refusals: a spinning module does not starve
//! native processes and dies at once when killed; fuel, memory and
//! instance limits end processes with their reasons; bad modules, unknown
//! exports and named forms are refused; the cache compiles once; WASI
//! sees only what the sandbox grants.

mod support;

use std::time::Duration;

use pool_proto::{DirGrant, Sandbox};
use pool_wasm::ModuleHash;
use supervisor::{Envelope, Error, ExitReason, SpawnOpts};
use support::*;

/// On a current-thread runtime, a native echo process answers within a
/// bounded wait while a wasm module spins, and a kill stops the spinner
/// at once (`killed`).
#[tokio::test(flavor = "current_thread")]
async fn a_spinner_does_not_starve_and_dies_when_killed() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let echo = rt.spawn(|mut ctx| async move {
        while let Envelope::Call(call) = ctx.recv().await {
            ctx.reply(&call, "pong");
        }
    });
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let ready = rt.spawn(|mut ctx| async move {
        let running: bool = ctx.recv().await.take().unwrap();
        let _ = ready_tx.send(running);
    });
    rt.register("ready", ready).unwrap();
    let spinner = rt
        .spawn_function(
            &name(source.add_wat(&spin_ready()), "main"),
            serde_json::Value::Null,
            SpawnOpts::new(),
        )
        .unwrap();
    // The spinner is past its compile and instantiation, and spins.
    assert!(
        tokio::time::timeout(BOUND, ready_rx)
            .await
            .unwrap()
            .unwrap()
    );
    for _ in 0..5 {
        let reply = rt.call(echo, "ping", Duration::from_secs(2)).await.unwrap();
        assert_eq!(reply.take::<String>().unwrap(), "pong");
    }
    let waiter = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.wait(spinner).await })
    };
    tokio::task::yield_now().await;
    rt.kill(spinner);
    let (reason, _) = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("a killed spinner stops at its next epoch tick")
        .unwrap();
    assert_eq!(reason, ExitReason::Killed);
}

/// A spawn with a fuel budget that it spends ends with the fuel reason.
#[tokio::test]
async fn fuel_budget_ends_a_spinner() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let sandbox = Sandbox {
        fuel: Some(10_000),
        ..Default::default()
    };
    let (reason, _) = spawn_wait(
        &rt,
        &name(source.add_wat(&spin()), "main"),
        serde_json::Value::Null,
        SpawnOpts::new().sandbox(sandbox),
    )
    .await
    .unwrap();
    assert_eq!(
        text(&reason),
        "out of fuel: the spawn's budget of 10000 units is spent"
    );
}

/// A module growing its memory past the sandbox's cap ends with the
/// memory-limit reason; a cap above the node's largest memory is refused
/// at the spawn.
#[tokio::test]
async fn memory_cap_ends_a_hog() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let hog = name(source.add_wat(&hog()), "main");
    let sandbox = Sandbox {
        memory: Some(4 << 20),
        ..Default::default()
    };
    let (reason, _) = spawn_wait(
        &rt,
        &hog,
        serde_json::Value::Null,
        SpawnOpts::new().sandbox(sandbox),
    )
    .await
    .unwrap();
    assert_eq!(
        text(&reason),
        format!(
            "memory limit: the module asked for more than {} bytes",
            4 << 20
        )
    );
    // Without a sandbox: the node's default cap.
    let (reason, _) = spawn_wait(&rt, &hog, serde_json::Value::Null, SpawnOpts::new())
        .await
        .unwrap();
    assert_eq!(
        text(&reason),
        format!(
            "memory limit: the module asked for more than {} bytes",
            16 << 20
        )
    );
    let too_big = Sandbox {
        memory: Some(1 << 30),
        ..Default::default()
    };
    let err = rt
        .spawn_function(
            &hog,
            serde_json::Value::Null,
            SpawnOpts::new().sandbox(too_big),
        )
        .unwrap_err();
    assert!(matches!(err, Error::BadArgs { .. }), "{err}");
}

/// More wasm processes than the pool's slots: the one over ends at once
/// saying so, while the others run on.
#[tokio::test]
async fn instance_slots_are_bounded() {
    let (backend, source) = backend(slots(2));
    let rt = node(&backend);
    let server = name(source.add_wat(&echo_server()), "main");
    let mut holders = Vec::new();
    for _ in 0..2 {
        let pid = rt
            .spawn_function(&server, serde_json::Value::Null, SpawnOpts::new())
            .unwrap();
        // An answer means it is instantiated: it holds its slot.
        rt.call(pid, 1u32, BOUND).await.unwrap();
        holders.push(pid);
    }
    let (reason, _) = spawn_wait(&rt, &server, serde_json::Value::Null, SpawnOpts::new())
        .await
        .unwrap();
    assert!(
        text(&reason).contains("most wasm processes at once (2)"),
        "{reason}"
    );
    assert!(holders.iter().all(|p| rt.is_alive(*p)));
    // A slot is free again once its holder ends.
    rt.kill(holders[0]);
    rt.wait(holders[0]).await;
    let again = rt
        .spawn_function(&server, serde_json::Value::Null, SpawnOpts::new())
        .unwrap();
    rt.call(again, 2u32, BOUND).await.unwrap();
}

fn slots(instances: u32) -> pool_wasm::WasmConfig {
    pool_wasm::WasmConfig {
        max_instances: instances,
        ..config()
    }
}

/// Bytes that do not have the hash they were fetched under are refused
/// before compiling; bytes that are not wasm are refused by the compiler;
/// a module the source lacks cannot be fetched. Each is the exit reason.
#[tokio::test]
async fn bad_modules_are_refused() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let wrong = ModuleHash::of(b"what was pushed");
    source.add_wrong(wrong, wat::parse_str(spin()).unwrap());
    let (reason, _) = spawn_wait(
        &rt,
        &name(wrong, "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert!(
        text(&reason).contains(&format!("module {wrong} refused"))
            && text(&reason).contains("have the hash"),
        "{reason}"
    );
    let garbage = source.add_bytes(b"\0asm not really".to_vec());
    let (reason, _) = spawn_wait(
        &rt,
        &name(garbage, "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert!(
        text(&reason).contains("not a valid wasm module"),
        "{reason}"
    );
    let missing = ModuleHash::of(b"never pushed");
    let (reason, _) = spawn_wait(
        &rt,
        &name(missing, "main"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert!(text(&reason).contains("could not be fetched"), "{reason}");
    assert!(backend.cached().is_empty());
}

/// Eight concurrent first spawns of one module fetch and compile it once;
/// a later spawn uses the cache.
#[tokio::test]
async fn concurrent_first_spawns_compile_once() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let hash = source.add_wat(&answer());
    let function = name(hash, "answer");
    let mut waits = Vec::new();
    for _ in 0..8 {
        let (rt, function) = (rt.clone(), function.clone());
        waits.push(tokio::spawn(async move {
            spawn_wait(&rt, &function, serde_json::Value::Null, SpawnOpts::new()).await
        }));
    }
    for w in waits {
        let (reason, result) = w.await.unwrap().unwrap();
        assert_eq!(reason, ExitReason::Normal);
        assert_eq!(result.unwrap().take::<u32>().unwrap(), 42);
    }
    assert_eq!(source.fetches(), 1);
    assert_eq!(backend.compiles(), 1);
    spawn_wait(&rt, &function, serde_json::Value::Null, SpawnOpts::new())
        .await
        .unwrap();
    assert_eq!(source.fetches(), 1);
    assert_eq!(backend.cached(), vec![hash]);
}

/// An export the module lacks ends the process with a text naming the
/// exports it has; the named form is refused on a worker.
#[tokio::test]
async fn unknown_export_and_named_form() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let hash = source.add_wat(&answer());
    let (reason, _) = spawn_wait(
        &rt,
        &name(hash, "nope"),
        serde_json::Value::Null,
        SpawnOpts::new(),
    )
    .await
    .unwrap();
    assert!(
        text(&reason).contains("\"nope\" is not exported")
            && text(&reason).contains("its function exports are: answer"),
        "{reason}"
    );
    let err = rt
        .spawn_function("app.wasm:answer", serde_json::Value::Null, SpawnOpts::new())
        .unwrap_err();
    assert!(matches!(err, Error::UnknownFunction { .. }), "{err}");
}

/// WASI preview 1: without a sandbox a module sees no environment
/// variable and no preopened directory (and its stdout write succeeds);
/// granted ones it sees. `proc_exit(0)` is `normal`, another status is an
/// error naming it.
#[tokio::test]
async fn wasi_sees_only_the_grants() {
    let (backend, source) = backend(config());
    let rt = node(&backend);
    let function = name(source.add_wat(&wasi()), "main");
    let (reason, _) = spawn_wait(&rt, &function, serde_json::Value::Null, SpawnOpts::new())
        .await
        .unwrap();
    assert_eq!(reason, ExitReason::Normal);
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox {
        env: vec![("A".into(), "1".into())],
        dirs: vec![DirGrant {
            host: dir.path().to_string_lossy().into_owned(),
            guest: "/data".into(),
            write: false,
        }],
        ..Default::default()
    };
    let (reason, _) = spawn_wait(
        &rt,
        &function,
        serde_json::Value::Null,
        SpawnOpts::new().sandbox(sandbox),
    )
    .await
    .unwrap();
    assert_eq!(text(&reason), "wasm exit status 11");
}
