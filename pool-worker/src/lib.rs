//! A Spawnpool node: joins the pool, hosts processes, routes messages and
//! signals to processes on other nodes, reports its load; and the Pool API
//! that user code (and `poolctl`) uses to spawn across the pool.
//!
//! # Layout
//!
//! - [`node`] — [`Node`] / [`NodeHandle`], starting and stopping a node.
//! - [`config`] — [`NodeConfig`].
//! - [`pool`] — [`Pool`], the Pool API.
//! - [`builtins`] — the `builtin.*` functions of the stock worker.
//! - `master_link`: join, fencing, reports, reconnect.
//! - `peer`, `conn`: connections to other nodes.
//! - `refusals`: what a peer may not send, and the log lines about it.
//! - `route`: the supervisor crate's remote seam over those connections.
//! - `load`: load sampling.
//! - `apps`: application roots the master asked this node to run.
//! - [`error`] — [`Error`].
//!
//! # Example
//!
//! A worker with one function of its own, joining a running master:
//!
//! ```no_run
//! # async fn f() -> Result<(), pool_worker::Error> {
//! use pool_worker::{Node, NodeConfig, Spawn};
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
//! let (spawned, reason, result) = node.pool().run(Spawn::new("square", serde_json::json!(7))).await?;
//! println!("{} on {}: {reason}, {:?}", spawned.pid, spawned.node, result.map(|m| m.take::<i64>()));
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod apps;
pub mod builtins;
pub mod config;
mod conn;
pub mod error;
mod load;
mod master_link;
mod members;
pub mod node;
mod peer;
pub mod pool;
mod refusals;
mod route;

pub use config::NodeConfig;
pub use error::{Error, Result};
pub use node::{Node, NodeBuilder, NodeHandle};
pub use pool::{Pool, Spawn, Spawned, Target};
