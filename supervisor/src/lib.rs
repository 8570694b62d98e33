//! A single-node Erlang-style runtime with OTP supervision trees: processes
//! with mailboxes, links, monitors and exit signals, `call`, local names,
//! and supervisors with OTP's strategies. It is usable on its own; the pool
//! (pool-worker) plugs other nodes in through [`remote`].
//!
//! # Layout
//!
//! In the order a reader meets them:
//!
//! - [`runtime`] — [`Runtime`], one node's processes: spawning, messages,
//!   names, links, monitors and exit signals, one file each under
//!   `runtime/`.
//! - [`process`] — [`Ctx`], what a process function receives.
//! - [`envelope`] — [`Message`] and [`Envelope`], what a mailbox holds.
//! - [`exit`] — [`IntoExit`], how a return value becomes an exit reason.
//! - [`functions`] — [`Functions`], spawning by name, and [`Function`],
//!   a typed declaration of one name; [`Resolver`], names resolved when
//!   spawned (wasm modules).
//! - [`supervisor`] — supervisors: [`Spec`] and [`Child`], [`start`] and the
//!   dynamic API, the pure strategy and intensity decisions, and the
//!   supervisor process. The crate root re-exports what writing a tree
//!   needs.
//! - [`remote`] — the seam to other nodes, for router implementers:
//!   [`RemoteRouter`](remote::RemoteRouter), [`Placer`](remote::Placer).
//! - [`error`] — [`Error`], [`CallError`], [`SupError`], [`StartError`].
//!
//! Tree files (TOML) and spec validation are pure functions over the spec
//! types, in `pool_proto::tree`.
//!
//! # Example
//!
//! A counter process, then a supervisor that restarts a crashing worker:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use supervisor::{Child, Envelope, Runtime, Spec, Strategy};
//!
//! let rt = Runtime::standalone();
//! let counter = rt.spawn(|mut ctx| async move {
//!     let mut n = 0u64;
//!     loop {
//!         match ctx.recv().await {
//!             Envelope::Call(call) => ctx.reply(&call, &n),
//!             Envelope::Message { .. } => n += 1,
//!             _ => break,
//!         }
//!     }
//! });
//! rt.send(counter, "tick");
//! rt.send(counter, "tick");
//! let n: u64 = rt.call(counter, "get", Duration::from_secs(1)).await.unwrap().take().unwrap();
//! assert_eq!(n, 2);
//!
//! let spec = Spec::new("app", Strategy::OneForOne)
//!     .child(Child::worker("echo", |mut ctx| async move {
//!         while let Envelope::Call(call) = ctx.recv().await {
//!             ctx.reply(&call, "pong");
//!         }
//!     }));
//! let app = supervisor::start(&rt, spec).await.unwrap();
//! let children = supervisor::which_children(&rt, app).await.unwrap();
//! assert_eq!(children[0].id.as_deref(), Some("echo"));
//! supervisor::stop(&rt, app).await.unwrap();
//! # }
//! ```

pub mod envelope;
pub mod error;
pub mod exit;
pub mod functions;
pub mod process;
pub mod remote;
pub mod runtime;
pub mod supervisor;

pub use envelope::{CallRequest, DecodeError, Down, Envelope, Message, NodeDown, SpawnAnswer};
pub use error::{CallError, Error, Result, StartError, SupError};
pub use exit::IntoExit;
pub use functions::{Function, Functions};
pub use process::Ctx;
pub use runtime::remote::{SpawnReplies, SpawnRequestOpts};
pub use runtime::signals::ExitOutcome;
pub use runtime::spawn::SpawnOpts;
pub use runtime::{Prepared, ProcessSnapshot, Resolver, Runtime, RuntimeBuilder, RuntimeEvent};
pub use supervisor::{
    Child, ChildCounts, ChildFn, ChildInfo, ChildKey, ChildPid, CustomStart, SUPERVISOR_FUNCTION,
    Spec, Started, count_children, delete_child, get_childspec, inspect,
    register_supervisor_function, restart_child, start, start_child, start_dynamic_child,
    start_link, start_link_named, start_named, start_tree, stop, terminate_child, which_children,
};

pub use pool_proto::{
    AutoShutdown, ExitReason, NodeId, Pid, Placement, Ref, Restart, Sandbox, Shutdown, Strategy,
};
