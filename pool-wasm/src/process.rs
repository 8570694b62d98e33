//! The body of a wasm process: get the compiled module (cache, or fetch
//! and compile), check the export, build the store (the process's `Ctx`,
//! WASI, the memory cap, fuel, epoch yields), instantiate and call the
//! export, then turn how it ended into the exit reason. The store lives in
//! the body's future: when a signal aborts the process's task, the future
//! is dropped at the guest's next epoch yield (or wait), and the guest
//! stops there.

use std::sync::Arc;

use pool_proto::module::ModuleHash;
use pool_proto::{ExitReason, Payload, Sandbox};
use supervisor::{Ctx, Message};
use wasmtime::{ExternType, PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::logio::LogOutput;
use crate::shared::{Shared, chain_text};
use crate::state::{GuestExit, HostState, MemoryCap, MemoryLimit};

/// What one spawn runs.
pub(crate) struct Spawn {
    /// The module.
    pub(crate) hash: ModuleHash,
    /// Its exported function, `() -> ()`.
    pub(crate) export: String,
    /// The arguments, JSON text.
    pub(crate) args: String,
    /// Fuel budget; `None`: unlimited.
    pub(crate) fuel: Option<u64>,
    /// Memory cap in bytes.
    pub(crate) memory: u64,
    /// Directory and environment grants.
    pub(crate) sandbox: Option<Sandbox>,
}

/// Runs `spawn` as the process of `ctx` to its end.
pub(crate) async fn run(
    shared: Arc<Shared>,
    ctx: Ctx,
    spawn: Spawn,
) -> (ExitReason, Option<Message>) {
    match run_inner(&shared, ctx, &spawn).await {
        Ok(out) => out,
        Err(text) => (ExitReason::Error(text), None),
    }
}

async fn run_inner(
    shared: &Arc<Shared>,
    ctx: Ctx,
    spawn: &Spawn,
) -> Result<(ExitReason, Option<Message>), String> {
    let hash = spawn.hash;
    let pre = shared.module(hash).await?;
    check_export(pre.module(), hash, &spawn.export)?;
    let wasi = wasi(ctx.pid(), spawn.sandbox.as_ref())?;
    let mut store = Store::new(
        &shared.engine,
        HostState {
            ctx,
            pending: Vec::new(),
            memory: None,
            wasi,
            cap: MemoryCap {
                bytes: spawn.memory,
            },
            result: None,
            args: spawn.args.clone(),
            clock: shared.clock,
        },
    );
    store.limiter(|s| &mut s.cap);
    store
        .set_fuel(spawn.fuel.unwrap_or(u64::MAX))
        .map_err(|e| format!("the fuel budget could not be set: {}", chain_text(&e)))?;
    // Yield to tokio at every epoch tick: the process's task goes back to
    // the run queue, and a signal that aborted it takes effect there.
    store.epoch_deadline_async_yield_and_update(1);
    let instance = match pre.instantiate_async(&mut store).await {
        Ok(i) => i,
        Err(e) => return Ok((reason_of(&e, spawn, &shared.cfg), None)),
    };
    store.data_mut().memory = instance.get_memory(&mut store, "memory");
    let f = instance
        .get_typed_func::<(), ()>(&mut store, &spawn.export)
        .map_err(|e| chain_text(&e))?;
    let reason = match f.call_async(&mut store, ()).await {
        Ok(()) => ExitReason::Normal,
        Err(e) => reason_of(&e, spawn, &shared.cfg),
    };
    let result = if reason.is_normal() {
        store
            .data_mut()
            .result
            .take()
            .map(|b| Message::from_payload(Payload(b)))
    } else {
        None
    };
    Ok((reason, result))
}

/// Refuses an export that is missing or not `() -> ()`, naming the
/// function exports the module has.
fn check_export(module: &wasmtime::Module, hash: ModuleHash, export: &str) -> Result<(), String> {
    if let Some(ExternType::Func(ft)) = module.get_export(export)
        && ft.params().len() == 0
        && ft.results().len() == 0
    {
        return Ok(());
    }
    let mut fns: Vec<String> = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(ft) => {
                let shape = if ft.params().len() == 0 && ft.results().len() == 0 {
                    ""
                } else {
                    " (not () -> ())"
                };
                Some(format!("{}{shape}", e.name()))
            }
            _ => None,
        })
        .collect();
    fns.sort();
    let what = match module.get_export(export) {
        Some(ExternType::Func(_)) => "is not a function of type () -> ()",
        Some(_) => "is not a function",
        None => "is not exported",
    };
    Err(format!(
        "module {hash}: {export:?} {what}; its function exports are: {}",
        if fns.is_empty() {
            "none".to_owned()
        } else {
            fns.join(", ")
        }
    ))
}

/// The WASI context: stdout and stderr to the log; directories and
/// environment only as the sandbox grants.
fn wasi(
    pid: pool_proto::Pid,
    sandbox: Option<&Sandbox>,
) -> Result<wasmtime_wasi::p1::WasiP1Ctx, String> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogOutput {
        pid,
        stream: "stdout",
    })
    .stderr(LogOutput {
        pid,
        stream: "stderr",
    });
    if let Some(s) = sandbox {
        for (k, v) in &s.env {
            b.env(k, v);
        }
        for d in &s.dirs {
            let perms = if d.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
                format!(
                    "sandbox: the granted directory {:?} cannot be opened: {}",
                    d.host,
                    chain_text(&e)
                )
            })?;
        }
    }
    Ok(b.build_p1())
}

/// How a guest's end by error reads as an exit reason.
fn reason_of(e: &wasmtime::Error, spawn: &Spawn, cfg: &crate::WasmConfig) -> ExitReason {
    if let Some(GuestExit(r)) = e.downcast_ref::<GuestExit>() {
        return r.clone();
    }
    if let Some(m) = e.downcast_ref::<MemoryLimit>() {
        return ExitReason::Error(m.to_string());
    }
    if let Some(I32Exit(code)) = e.downcast_ref::<I32Exit>() {
        return match code {
            0 => ExitReason::Normal,
            n => ExitReason::Error(format!("wasm exit status {n}")),
        };
    }
    if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return ExitReason::Error(format!(
            "this node runs its most wasm processes at once ({}): try again later or on another node",
            cfg.max_instances
        ));
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        if *trap == Trap::OutOfFuel {
            return ExitReason::Error(format!(
                "out of fuel: the spawn's budget of {} units is spent",
                spawn.fuel.unwrap_or(u64::MAX)
            ));
        }
        return ExitReason::Error(format!("wasm trap: {trap}"));
    }
    ExitReason::Error(format!("wasm trap: {}", chain_text(e)))
}
