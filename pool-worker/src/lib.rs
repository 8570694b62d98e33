//! A Spawnpool node: joins the pool, hosts processes, routes messages and
//! signals to processes on other nodes, reports its load; and the Pool API
//! that user code (and `poolctl`) uses to spawn across the pool.
//!
//! # Layout
//!
//! In reading order: the node, then its parts from the top of the tree
//! down, then the leaves they share.
//!
//! - [`node`] — [`Node`] / [`NodeHandle`]: the runtimes, the parts, and the
//!   node task that starts and stops them in order (fencing and the
//!   graceful stop read top to bottom there). No module imports it.
//! - [`config`] — [`NodeConfig`].
//! - `master_link`: connect, join, report, reconnect; `MasterHandle`,
//!   through which the parts talk to the master. Its decisions (back-off,
//!   fencing first, giving up, what requests do meanwhile) are the pure
//!   `master_link::machine`.
//! - `event`: what the master link asks of the node task.
//! - `peer`: connections to other nodes, opened on first use;
//!   `peer_guard`: what a peer may not send.
//! - `hosted_apps`: application roots the master asked this node to run.
//! - `names`: global names held by this node's processes.
//! - `route`: the supervisor crate's remote seam over the peers;
//!   `placer`: worker-side placement through the master.
//! - [`pool`] — [`Pool`], the Pool API (never names the node).
//! - [`builtins`] — the `builtin.*` functions of the stock worker.
//! - Leaves: `members` (the membership as this node knows it), `conn`
//!   (one framed connection: writer, reader, bounded queue), `load` (load
//!   sampling), `loads` (this node's copy of the master's load table, to
//!   place its own pool spawns), `local` (what this node says about its own processes),
//!   `tasks` (where tasks run, tracked, and the root token).
//! - [`error`] — [`Error`].
//! - [`client`] — [`Client`]: join as a client from the standard sources
//!   (`POOL_MASTER`, the cookie, `POOL_TLS_*`) under a unique name.
//! - `cli` (feature `cli`) — `cli::Worker`: the stock worker's command
//!   line (flags, `POOL_*` variables, config file, logging, signals) for a
//!   binary of your own; the stock `pool-worker` is built on it.
//! - [`prelude`] — what a program needs, in one `use`.
//!
//! # Features
//!
//! None by default: the library alone needs no command-line crates.
//! `cli` adds `cli::Worker` (clap, toml, tracing-subscriber); `bins`
//! builds the stock `pool-worker` and `poolctl` binaries.
//!
//! This crate re-exports [`pool_proto`] and [`supervisor`], so a program
//! depends on `pool-worker` alone.
//!
//! Dialing and accepting go through `pool_proto::transport`: TCP in the
//! binaries, an in-memory network in `tests/`, where
//! [`NodeBuilder::on_current_runtime`] lets one test run a whole pool on
//! paused time.
//!
//! # Examples
//!
//! A client: spawn a function somewhere in the pool and wait for its end.
//! The master's address, the cookie and the TLS files come from the
//! standard sources (`POOL_MASTER`, `POOL_COOKIE`, `~/.spawnpool/cookie`,
//! `POOL_TLS_*`):
//!
//! ```no_run
//! # async fn f() -> Result<(), pool_worker::Error> {
//! use pool_worker::prelude::*;
//!
//! let client = Client::new().connect().await?;
//! let run = client
//!     .pool()
//!     .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 50})))
//!     .await?;
//! println!("{} on {}: {}", run.spawned.pid, run.spawned.node, run.reason);
//! client.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A worker with a function of its own and every flag of the stock worker
//! (feature `cli`; `examples/custom_worker.rs` is a whole one):
//!
//! ```no_run
//! use std::process::ExitCode;
//! use pool_worker::prelude::*;
//!
//! # #[cfg(not(feature = "cli"))] fn main() {}
//! # #[cfg(feature = "cli")]
//! fn main() -> ExitCode {
//!     let mut functions = Functions::new();
//!     functions.register("square", |_ctx, n: i64| async move { Ok::<_, String>(n * n) });
//!     Worker::new().functions(functions).main()
//! }
//! ```
//!
//! A node in-process, its settings given in code:
//!
//! ```no_run
//! # async fn f() -> Result<(), pool_worker::Error> {
//! use pool_worker::prelude::*;
//!
//! let cookie = pool_worker::client::standard_cookie(None)?;
//! let mut functions = Functions::new();
//! functions.register("square", |_ctx, n: i64| async move { Ok::<_, String>(n * n) });
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let node = Node::builder(NodeConfig::worker("w1", "127.0.0.1:7400", cookie))
//!     .functions(functions)
//!     .listener(listener)
//!     .start()
//!     .await?;
//! // Typed: `run` checks the argument and decodes the result as declared.
//! const SQUARE: Function<i64, i64> = Function::new("square");
//! let squared = node.pool().run(&SQUARE, 7).await?;
//! println!("7 squared is {squared}");
//! node.shutdown().await;
//! # Ok(()) }
//! ```

pub mod builtins;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
mod conn;
pub mod error;
mod event;
mod hosted_apps;
mod load;
mod loads;
mod local;
mod master_link;
mod members;
mod names;
pub mod node;
mod peer;
mod peer_guard;
mod placer;
pub mod pool;
pub mod prelude;
mod reach;
mod route;
mod stalls;
mod tasks;
#[cfg(feature = "wasm")]
mod wasm;

pub use client::{Client, connect};
pub use config::NodeConfig;
pub use error::{Error, Result};
pub use node::{Node, NodeBuilder, NodeHandle};
pub use pool::{Pool, Run, Spawn, SpawnProblem, Spawned, Target};

pub use pool_proto;
pub use supervisor;
