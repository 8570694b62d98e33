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
//!   sampling), `local` (what this node says about its own processes),
//!   `tasks` (where tasks run, tracked, and the root token).
//! - [`error`] — [`Error`].
//!
//! Dialing and accepting go through `pool_proto::transport`: TCP in the
//! binaries, an in-memory network in `tests/`, where
//! [`NodeBuilder::on_current_runtime`] lets one test run a whole pool on
//! paused time.
//!
//! # Example
//!
//! A worker with one function of its own, joining a running master:
//!
//! ```no_run
//! # async fn f() -> Result<(), pool_worker::Error> {
//! use pool_worker::{Node, NodeConfig};
//!
//! let cookie = pool_proto::cookie::resolve_cookie(None, None, std::env::var_os("HOME").as_deref().map(std::path::Path::new))?;
//! let mut functions = supervisor::Functions::new();
//! functions.register("square", |_ctx, n: i64| async move { Ok::<_, String>(n * n) });
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let node = Node::builder(NodeConfig::worker("w1", "127.0.0.1:7400", cookie))
//!     .functions(functions)
//!     .listener(listener)
//!     .start()
//!     .await?;
//! // Typed: `run` checks the argument and decodes the result as declared.
//! const SQUARE: supervisor::Function<i64, i64> = supervisor::Function::new("square");
//! let squared = node.pool().run(&SQUARE, 7).await?;
//! println!("7 squared is {squared}");
//! node.shutdown().await;
//! # Ok(()) }
//! ```

pub mod builtins;
pub mod config;
mod conn;
pub mod error;
mod event;
mod hosted_apps;
mod load;
mod local;
mod master_link;
mod members;
mod names;
pub mod node;
mod peer;
mod peer_guard;
mod placer;
pub mod pool;
mod reach;
mod route;
mod tasks;

pub use config::NodeConfig;
pub use error::{Error, Result};
pub use node::{Node, NodeBuilder, NodeHandle};
pub use pool::{Pool, Run, Spawn, SpawnProblem, Spawned, Target};
