//! A single-node Erlang-style runtime with OTP supervision trees: processes
//! with mailboxes, links, monitors and exit signals, `call`, local names,
//! and supervisors with OTP's strategies. It is usable on its own; the pool
//! (pool-worker) plugs other nodes in through [`RemoteRouter`].
//!
//! # Layout
//!
//! - [`runtime`] — [`Runtime`], the node's process table, spawning, signals.
//! - [`process`] — [`Ctx`], what a process function receives.
//! - [`message`] — [`Message`] and [`Envelope`], what a mailbox holds.
//! - [`functions`] — [`Functions`], spawning by name.
//! - [`runtime::router`]: [`RemoteRouter`], the seam to other nodes.
//! - [`supervisor`] — supervisors, strategies and restart intensity.
//! - [`error`] — [`Error`] and [`CallError`].
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use supervisor::{Envelope, Runtime};
//!
//! let rt = Runtime::new(pool_proto::NodeId::random());
//! let counter = rt.spawn(|mut ctx| async move {
//!     let mut n = 0u64;
//!     loop {
//!         match ctx.recv().await {
//!             Envelope::Call(call) => ctx.reply(&call, n),
//!             Envelope::Message { .. } => n += 1,
//!             _ => break,
//!         }
//!     }
//! });
//! rt.send(counter, "tick");
//! rt.send(counter, "tick");
//! let n: u64 = rt.call(counter, "get", Duration::from_secs(1)).await.unwrap().take().unwrap();
//! assert_eq!(n, 2);
//! # }
//! ```

pub mod error;
pub mod functions;
pub mod message;
pub mod process;
pub mod runtime;
pub mod supervisor;

pub use error::{CallError, Error, Result};
pub use functions::Functions;
pub use message::{CallRequest, DecodeError, Down, Envelope, Message};
pub use process::Ctx;
pub use runtime::router::{Placer, Reach, RemoteRouter, SpawnReply, note_busy};
pub use runtime::{
    IntoExit, ProcessSnapshot, Runtime, RuntimeBuilder, RuntimeEvent, SpawnGate, SpawnOpts,
};

pub use pool_proto::{ExitReason, NodeId, Pid, Ref};
