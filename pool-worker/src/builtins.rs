//! The functions of the stock worker (DESIGN.md "Built-in functions"), so
//! that a fresh install does something useful and tests need no custom
//! build.
//!
//! | function | args | behaviour |
//! |---|---|---|
//! | `builtin.echo` | none | replies to every call with its request; sends plain messages back to their sender; runs until stopped |
//! | `builtin.sleep` | `{ms}` | sleeps, then ends normally with result `ms` |
//! | `builtin.busy` | `{ms}` | burns CPU for `ms` (yielding every millisecond so signals still reach it), ends with result `ms` |
//! | `builtin.crash` | `{after_ms, reason}` | after `after_ms`, exits with `reason` (default `crash`) |
//! | `builtin.counter` | none | call `"inc"` → new value, `"get"` → value |

use std::time::{Duration, Instant};

use pool_proto::ExitReason;
use serde::Deserialize;
use supervisor::{Ctx, Envelope, Functions, Message};

/// `builtin.sleep` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// Milliseconds to sleep.
    #[serde(default)]
    pub ms: u64,
}

/// `builtin.busy` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusyArgs {
    /// Milliseconds of CPU to burn.
    #[serde(default)]
    pub ms: u64,
}

/// `builtin.crash` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashArgs {
    /// Milliseconds to wait first.
    #[serde(default)]
    pub after_ms: u64,
    /// The exit reason (text form: `normal`, `shutdown`, anything else is an
    /// error reason).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Registers every built-in function in `functions`.
///
/// ```
/// let mut fns = supervisor::Functions::new();
/// pool_worker::builtins::register(&mut fns);
/// assert!(fns.contains("builtin.echo"));
/// ```
pub fn register(functions: &mut Functions) {
    functions.register("builtin.echo", |ctx, _: serde_json::Value| echo(ctx));
    functions.register("builtin.sleep", |_ctx, args: SleepArgs| async move {
        tokio::time::sleep(Duration::from_millis(args.ms)).await;
        Ok::<u64, ExitReason>(args.ms)
    });
    functions.register("builtin.busy", |ctx, args: BusyArgs| busy(ctx, args.ms));
    functions.register("builtin.crash", |_ctx, args: CrashArgs| async move {
        tokio::time::sleep(Duration::from_millis(args.after_ms)).await;
        args.reason
            .as_deref()
            .unwrap_or("crash")
            .parse::<ExitReason>()
            .unwrap_or_else(|e| match e {})
    });
    functions.register("builtin.counter", |ctx, _: serde_json::Value| counter(ctx));
}

async fn echo(mut ctx: Ctx) {
    loop {
        match ctx.recv().await {
            Envelope::Call(call) => {
                let reply = call
                    .msg
                    .take::<serde_json::Value>()
                    .unwrap_or(serde_json::Value::Null);
                ctx.reply_owned_to(call.from, call.mref, reply);
            }
            Envelope::Message {
                from: Some(from),
                msg,
            } => ctx.send_message(from, msg_back(msg)),
            _ => {}
        }
    }
}

/// A plain message echoed back as it came (re-encoded only if it came
/// from another node and goes back there).
fn msg_back(msg: Message) -> Message {
    msg
}

async fn busy(ctx: Ctx, ms: u64) -> Result<u64, ExitReason> {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut x = 0u64;
    while Instant::now() < end {
        // About a millisecond of work, then let signals and others in.
        let slice = Instant::now() + Duration::from_millis(1);
        while Instant::now() < slice {
            for i in 0..1000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        // Stay counted as runnable while yielding (see Ctx::yield_now).
        ctx.yield_now().await;
    }
    std::hint::black_box(x);
    Ok(ms)
}

async fn counter(mut ctx: Ctx) {
    let mut n: i64 = 0;
    loop {
        if let Envelope::Call(call) = ctx.recv().await {
            let op = call.msg.take::<String>().unwrap_or_default();
            match op.as_str() {
                "inc" => n += 1,
                "dec" => n -= 1,
                _ => {}
            }
            ctx.reply_to(call.from, call.mref, &n);
        }
    }
}
