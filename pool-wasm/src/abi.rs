//! The host ABI: the functions of import module `spawnpool` (see the crate
//! docs for the table), each a thin layer over the process's
//! [`Ctx`](supervisor::Ctx). Those that wait (`recv`, `call`) are async:
//! the guest's fiber suspends and the process's task waits as a native
//! one does. A guest passing memory it does not have traps.

use std::ops::Range;
use std::time::Duration;

use pool_proto::{ExitReason, NodeId, Payload, Pid, Ref};
use supervisor::{CallError, Error as RtError, Message, SpawnOpts};
use tokio::time::Instant;
use wasmtime::{Caller, Linker};

use crate::envelope::{self, pid_bytes, ref_bytes};
use crate::state::{GuestExit, HostState};

/// The import module name.
pub(crate) const MODULE: &str = "spawnpool";

/// Return codes.
const TIMEOUT: i32 = -1;
const NOPROC: i32 = -2;
const NOCONNECTION: i32 = -3;
const BADARG: i32 = -4;
const OTHER: i32 = -5;

/// "Wait for ever" as a duration (`tokio` clamps far deadlines).
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

type C<'a> = Caller<'a, HostState>;
type R<T> = wasmtime::Result<T>;

fn pid(node: i64, serial: i64) -> Pid {
    Pid::new(NodeId::from_u64(node as u64), serial as u64)
}

fn mref(node: i64, serial: i64) -> Ref {
    Ref::new(NodeId::from_u64(node as u64), serial as u64)
}

/// The byte range `ptr..ptr+len` of a memory of `size` bytes, or a trap.
fn range(ptr: i32, len: i32, size: usize) -> R<Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize);
    match end {
        Some(end) if end <= size => Ok(start..end),
        _ => Err(wasmtime::Error::msg(format!(
            "the module passed the memory range {start}+{} outside its memory of {size} bytes",
            len as u32
        ))),
    }
}

fn memory(c: &C<'_>) -> R<wasmtime::Memory> {
    c.data().memory.ok_or_else(|| {
        wasmtime::Error::msg("the module exports no memory named \"memory\": the host ABI needs it")
    })
}

/// Copies `len` bytes at `ptr` out of the guest's memory.
fn read(c: &mut C<'_>, ptr: i32, len: i32) -> R<Vec<u8>> {
    let m = memory(c)?;
    let data = m.data(&*c);
    let r = range(ptr, len, data.len())?;
    Ok(data[r].to_vec())
}

/// UTF-8 text at `ptr`.
fn text(c: &mut C<'_>, ptr: i32, len: i32) -> R<String> {
    String::from_utf8(read(c, ptr, len)?)
        .map_err(|_| wasmtime::Error::msg("the module passed text that is not UTF-8"))
}

/// Copies `bytes` into the guest's memory at `ptr`.
fn write(c: &mut C<'_>, ptr: i32, bytes: &[u8]) -> R<()> {
    let m = memory(c)?;
    let data = m.data_mut(&mut *c);
    let r = range(ptr, bytes.len() as i32, data.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Puts `bytes` in the pending buffer; returns its length.
fn pend(st: &mut HostState, bytes: Vec<u8>) -> R<i32> {
    let n = i32::try_from(bytes.len()).map_err(|_| {
        wasmtime::Error::msg(format!(
            "a value of {} bytes does not fit a wasm32 guest",
            bytes.len()
        ))
    })?;
    st.pending = bytes;
    Ok(n)
}

/// Puts the text of an error in the pending buffer; returns `code`.
fn fail(st: &mut HostState, code: i32, text: String) -> i32 {
    st.pending = text.into_bytes();
    code
}

fn msg(bytes: Vec<u8>) -> Message {
    Message::from_payload(Payload(bytes))
}

/// Adds every function of the host ABI to `l`.
pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> R<()> {
    l.func_wrap(MODULE, "args", |mut c: C<'_>| -> R<i32> {
        let st = c.data_mut();
        let args = st.args.clone().into_bytes();
        pend(st, args)
    })?;
    // Not in the contract's table, an addition: the length of what is
    // pending, for the error texts of -4 and -5 (whose return is the code,
    // not the length).
    l.func_wrap(MODULE, "pending_len", |c: C<'_>| -> i32 {
        i32::try_from(c.data().pending.len()).unwrap_or(i32::MAX)
    })?;
    l.func_wrap(MODULE, "take", |mut c: C<'_>, ptr: i32| -> R<()> {
        let bytes = std::mem::take(&mut c.data_mut().pending);
        write(&mut c, ptr, &bytes)
    })?;
    l.func_wrap(MODULE, "self_pid", |mut c: C<'_>, out: i32| -> R<()> {
        let me = c.data().ctx.pid();
        write(&mut c, out, &pid_bytes(me))
    })?;
    l.func_wrap(
        MODULE,
        "send",
        |mut c: C<'_>, node: i64, serial: i64, ptr: i32, len: i32| -> R<i32> {
            let body = read(&mut c, ptr, len)?;
            c.data().ctx.send_message(pid(node, serial), msg(body));
            Ok(0)
        },
    )?;
    l.func_wrap(
        MODULE,
        "send_name",
        |mut c: C<'_>, nptr: i32, nlen: i32, ptr: i32, len: i32| -> R<i32> {
            let name = text(&mut c, nptr, nlen)?;
            let body = read(&mut c, ptr, len)?;
            let ctx = &c.data().ctx;
            match ctx.runtime().whereis(&name) {
                Some(to) => {
                    ctx.send_message(to, msg(body));
                    Ok(0)
                }
                None => Ok(NOPROC),
            }
        },
    )?;
    l.func_wrap_async(MODULE, "recv", |mut c: C<'_>, (timeout_ms,): (i64,)| {
        Box::new(async move {
            let deadline = (timeout_ms >= 0)
                .then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
            let st = c.data_mut();
            let me = st.ctx.pid();
            loop {
                let env = match deadline {
                    None => st.ctx.recv().await,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        match st.ctx.recv_timeout(left).await {
                            Some(env) => env,
                            None => return Ok(TIMEOUT),
                        }
                    }
                };
                if let Some(bytes) = envelope::encode(env, me) {
                    return pend(st, bytes);
                }
            }
        })
    })?;
    l.func_wrap_async(
        MODULE,
        "call",
        |mut c: C<'_>, (node, serial, ptr, len, timeout_ms): (i64, i64, i32, i32, i64)| {
            Box::new(async move {
                let body = read(&mut c, ptr, len)?;
                let timeout = if timeout_ms < 0 {
                    FOREVER
                } else {
                    Duration::from_millis(timeout_ms as u64)
                };
                let st = c.data_mut();
                let got = st
                    .ctx
                    .call_message(pid(node, serial), msg(body), timeout)
                    .await;
                match got {
                    Ok(reply) => match reply.encode() {
                        Ok(p) => pend(st, p.0),
                        Err(e) => Ok(fail(st, OTHER, format!("the reply cannot be encoded: {e}"))),
                    },
                    Err(CallError::Timeout(_)) => Ok(TIMEOUT),
                    Err(CallError::Exit(ExitReason::NoProc)) => Ok(NOPROC),
                    Err(CallError::Exit(ExitReason::NoConnection)) => Ok(NOCONNECTION),
                    Err(e) => Ok(fail(st, OTHER, e.to_string())),
                }
            })
        },
    )?;
    l.func_wrap(
        MODULE,
        "reply",
        |mut c: C<'_>,
         node: i64,
         serial: i64,
         rnode: i64,
         rserial: i64,
         ptr: i32,
         len: i32|
         -> R<()> {
            let body = read(&mut c, ptr, len)?;
            let ctx = &c.data().ctx;
            ctx.runtime().reply_message(
                ctx.pid(),
                pid(node, serial),
                mref(rnode, rserial),
                msg(body),
            );
            Ok(())
        },
    )?;
    l.func_wrap(
        MODULE,
        "spawn",
        |mut c: C<'_>,
         fptr: i32,
         flen: i32,
         aptr: i32,
         alen: i32,
         flags: i32,
         out: i32|
         -> R<i32> {
            let function = text(&mut c, fptr, flen)?;
            let args_text = text(&mut c, aptr, alen)?;
            let st = c.data_mut();
            let args = if args_text.trim().is_empty() {
                serde_json::Value::Null
            } else {
                match serde_json::from_str(&args_text) {
                    Ok(v) => v,
                    Err(e) => {
                        let t =
                            format!("the arguments of the spawn of {function} are not JSON: {e}");
                        return Ok(fail(st, BADARG, t));
                    }
                }
            };
            let me = st.ctx.pid();
            let mut opts = SpawnOpts::new();
            if flags & 1 != 0 {
                opts = opts.link(me);
            }
            let monitor = (flags & 2 != 0).then(|| st.ctx.make_ref());
            if let Some(r) = monitor {
                opts = opts.monitor(me, r, true);
            }
            match st.ctx.runtime().spawn_function(&function, args, opts) {
                Ok(child) => {
                    let mut bytes = pid_bytes(child).to_vec();
                    if let Some(r) = monitor {
                        bytes.extend_from_slice(&ref_bytes(r));
                    }
                    write(&mut c, out, &bytes)?;
                    Ok(0)
                }
                Err(e @ (RtError::UnknownFunction { .. } | RtError::BadArgs { .. })) => {
                    Ok(fail(st, BADARG, e.to_string()))
                }
                Err(e) => Ok(fail(st, OTHER, e.to_string())),
            }
        },
    )?;
    l.func_wrap(
        MODULE,
        "link",
        |mut c: C<'_>, node: i64, serial: i64| -> R<i32> {
            let st = c.data_mut();
            match st.ctx.link(pid(node, serial)) {
                Ok(()) => Ok(0),
                Err(RtError::NoProc { .. }) => Ok(NOPROC),
                Err(e) => Ok(fail(st, OTHER, e.to_string())),
            }
        },
    )?;
    l.func_wrap(
        MODULE,
        "unlink",
        |c: C<'_>, node: i64, serial: i64| -> i32 {
            c.data().ctx.unlink(pid(node, serial));
            0
        },
    )?;
    l.func_wrap(
        MODULE,
        "monitor",
        |mut c: C<'_>, node: i64, serial: i64, out: i32| -> R<i32> {
            let r = c.data().ctx.monitor_with_result(pid(node, serial));
            write(&mut c, out, &ref_bytes(r))?;
            Ok(0)
        },
    )?;
    l.func_wrap(
        MODULE,
        "demonitor",
        |mut c: C<'_>, node: i64, serial: i64| {
            c.data_mut().ctx.demonitor(mref(node, serial), true);
        },
    )?;
    l.func_wrap(MODULE, "trap_exit", |c: C<'_>, on: i32| {
        c.data().ctx.trap_exit(on != 0);
    })?;
    l.func_wrap(
        MODULE,
        "exit_pid",
        |mut c: C<'_>, node: i64, serial: i64, ptr: i32, len: i32| -> R<()> {
            let reason: ExitReason = text(&mut c, ptr, len)?
                .parse()
                .unwrap_or(ExitReason::Normal);
            c.data().ctx.exit(pid(node, serial), reason);
            Ok(())
        },
    )?;
    l.func_wrap(
        MODULE,
        "register",
        |mut c: C<'_>, ptr: i32, len: i32| -> R<i32> {
            let name = text(&mut c, ptr, len)?;
            let st = c.data_mut();
            match st.ctx.register(&name) {
                Ok(()) => Ok(0),
                Err(e) => Ok(fail(st, BADARG, e.to_string())),
            }
        },
    )?;
    l.func_wrap(
        MODULE,
        "whereis",
        |mut c: C<'_>, ptr: i32, len: i32, out: i32| -> R<i32> {
            let name = text(&mut c, ptr, len)?;
            match c.data().ctx.runtime().whereis(&name) {
                Some(p) => {
                    write(&mut c, out, &pid_bytes(p))?;
                    Ok(0)
                }
                None => Ok(NOPROC),
            }
        },
    )?;
    l.func_wrap(
        MODULE,
        "set_result",
        |mut c: C<'_>, ptr: i32, len: i32| -> R<()> {
            let body = read(&mut c, ptr, len)?;
            c.data_mut().result = Some(body);
            Ok(())
        },
    )?;
    l.func_wrap(
        MODULE,
        "exit",
        |mut c: C<'_>, ptr: i32, len: i32| -> R<()> {
            let reason: ExitReason = text(&mut c, ptr, len)?
                .parse()
                .unwrap_or(ExitReason::Normal);
            Err(wasmtime::Error::new(GuestExit(reason)))
        },
    )?;
    l.func_wrap(
        MODULE,
        "log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> R<()> {
            let line = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
            let pid = c.data().ctx.pid();
            match level {
                0 => tracing::error!(target: "wasm", %pid, "{line}"),
                1 => tracing::warn!(target: "wasm", %pid, "{line}"),
                2 => tracing::info!(target: "wasm", %pid, "{line}"),
                _ => tracing::debug!(target: "wasm", %pid, "{line}"),
            }
            Ok(())
        },
    )?;
    l.func_wrap(MODULE, "now_ms", |c: C<'_>| -> i64 {
        c.data().clock.elapsed().as_millis() as i64
    })?;
    Ok(())
}
