//! Write Spawnpool processes in Rust, compiled to WebAssembly.
//!
//! A module is a `cdylib` built for `wasm32-wasip1`; each exported
//! `extern "C" fn NAME()` is a function the pool can spawn as
//! `MODULE:NAME`. Inside it, this crate is the process's view of the node:
//! its [`args`], its pid ([`self_pid`]), its mailbox ([`recv`],
//! [`recv_timeout`]), messages and calls to any process, native or wasm, on
//! any node ([`send`], [`call`], [`reply`]), [`spawn`], links and monitors,
//! names, its result ([`set_result`]) and its end ([`exit`](fn@exit)). Returning from
//! the export ends the process with `normal`.
//!
//! Messages are MessagePack, encoded exactly as the node encodes them
//! (structs as maps, see [`encode`]), so a guest and a native process agree
//! on every value they both can name: a native `ctx.send(pid, ("ping", 7u32))`
//! is a guest's `body.take::<(String, u32)>()`.
//!
//! # Example
//!
//! A word count (the `count` export of the example module `demo.wasm`):
//!
//! ```no_run
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Args {
//!     text: String,
//! }
//!
//! #[no_mangle]
//! pub extern "C" fn count() {
//!     let args: Args = spawnpool_guest::args()
//!         .unwrap_or_else(|e| spawnpool_guest::exit(&e.to_string().into()));
//!     let words = args.text.split_whitespace().count() as u64;
//!     spawnpool_guest::set_result(&words).unwrap();
//! }
//! ```
//!
//! Build it, push it and spawn it:
//!
//! ```text
//! cargo build --release --target wasm32-wasip1
//! poolctl module push target/wasm32-wasip1/release/wc.wasm
//! poolctl spawn wc.wasm:count '{"text": "a b c"}' --wait
//! ```
//!
//! # Layout
//!
//! - [`process`]: the process API, one function per host import.
//! - [`Envelope`], [`Body`], [`Call`]: what arrives in the mailbox.
//! - [`Pid`], [`Ref`], [`ExitReason`]: the node's identities and reasons,
//!   in the same text and binary forms.
//! - [`encode`], [`decode`]: the message encoding.
//! - [`log`](fn@log) and the macros [`info!`] etc.: the node's log.
//! - `sys`: the raw imports (module `"spawnpool"`), for reference.
//!
//! Outside wasm32 the crate builds (for its tests and docs) but the process
//! functions panic: there is no node to talk to.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod codec;
mod envelope;
mod error;
mod exit;
mod id;
mod log;
pub mod process;
mod sys;

pub use codec::{decode, encode, MAX_DEPTH};
pub use envelope::{Body, Call, Envelope, HEADER_LEN};
pub use error::{CallError, Error, SpawnError};
pub use exit::ExitReason;
pub use id::{Pid, Ref};
pub use log::{log, Level};
pub use process::{
    args, args_json, call, call_body, demonitor, exit, exit_pid, link, monitor, now_ms, recv,
    recv_timeout, register, reply, reply_body, self_pid, send, send_body, send_name, set_result,
    spawn, spawn_opt, trap_exit, unlink, whereis, SpawnFlags,
};
