//! The pool master: membership, load table, placement, failure detection,
//! global names and pool applications, served to nodes over the wire
//! protocol (docs/protocol.md) and to people over an HTTP API; the
//! `pool-master` binary is a thin shell around [`spawn_master`].
//!
//! The decisions are pure (STYLE.md point 15): plain data structures and
//! functions with time passed in as an argument, no tokio and no I/O, so they
//! are unit-tested directly and driven unchanged by the placement-quality
//! simulation (`cargo run --release -p pool-benches --bin placement_sim`).
//! The async shell — listener, sessions, failure watch, state writer, HTTP —
//! reads the clocks, feeds them events and carries out the effects they
//! return.
//!
//! # Layout
//!
//! In reading order, from the outside in: the shell first (tasks,
//! connections, requests), then the pure state it drives.
//!
//! - [`config`]: [`MasterConfig`], the settings, with defaults and checks.
//! - [`master`]: [`spawn_master`] and [`MasterHandle`]; the task tree and
//!   the ordered stop.
//! - `shared`: what every task shares — the settings, the pool state and
//!   the connections' outboxes under one lock — and the guard that carries
//!   out a transition's effects before the lock is released.
//! - `server`: the accept loop and one session per node connection, which
//!   turns frames into transitions.
//! - `outbox`: `NodeLink`, one connection's outbox, pending requests and
//!   close token; `MemberFeed`, the membership every writer sends from;
//!   and the writer task.
//! - `node_requests`: requests that wait on nodes (`StartApp`,
//!   `ListProcesses`, `TreeShow`, ...), as free functions over the shared
//!   state.
//! - `http`: the JSON API, `/healthz`, `/metrics`, the live dashboard at
//!   `/`, and the token-guarded operations.
//! - `state`: `PoolState`, the whole state, and its transitions (join,
//!   ready, leave, node down, placement, apps), which return effects
//!   instead of sending.
//! - `membership`: joined nodes, unique names, their sessions, recently
//!   down ids.
//! - `member_log`: the membership as the nodes are told it — live entries
//!   and numbered changes, encoded once — for Welcomes, deltas and lists.
//! - [`load_table`]: [`LoadTable`], each node's last report plus the
//!   placements made since, its score, and the `poolctl nodes` view.
//! - [`placement`]: [`LoadTable::place`], the strategies (least-loaded with
//!   water-filling, two-choices, round-robin, random, keyed) and
//!   [`PlaceError`]; [`placement::keyed`] is the rendezvous hash. Both are
//!   the `pool-place` crate's, re-exported: the nodes that place on a copy
//!   of the table run the same code.
//! - `load_watch`: the nodes that hold a copy of the load table, the rows
//!   changed since their last update, and the placements they told of.
//! - [`failure`]: [`FailureDetector`], node down on disconnect or silence.
//! - [`names`]: [`names::GlobalNames`], OTP `global` semantics.
//! - `apps`: pool applications — generations, adoption, failure — and
//!   `apps::schedule`, where their roots go.
//! - `persist`: the state directory, written atomically.
//! - `modules`: the WebAssembly modules pushed to the pool (in the state
//!   directory's `modules/`), and wasm function names resolved to hashes.
//! - `activity`: what the dashboard shows over time — per-node load
//!   history, recent events, nodes down lately; `metrics`: the series.
//! - `clock`: the one place the clocks are read.
//! - [`error`]: the crate's [`Error`] type.
//!
//! # Example
//!
//! A burst over two idle nodes spreads instead of herding onto one:
//!
//! ```
//! use std::time::Instant;
//! use pool_master::{LoadTable, placement::DEFAULT_STRATEGY};
//! use pool_proto::{NodeId, NodeInfo, NodeKind, PlaceQuery};
//!
//! let now = Instant::now();
//! let mut table = LoadTable::default();
//! for n in 1..=2 {
//!     let info = NodeInfo { id: NodeId::from_u64(n), name: format!("w{n}"), addr: String::new(),
//!                           kind: NodeKind::Worker, capacity: 1, labels: Default::default() };
//!     table.add_node(info, now);
//! }
//! let burst = PlaceQuery { count: 4, commit: true, ..Default::default() };
//! let nodes = table.place(&burst, DEFAULT_STRATEGY, &mut rand::rng()).unwrap();
//! assert_eq!(nodes.iter().filter(|&&n| n == NodeId::from_u64(1)).count(), 2);
//! ```
//!
//! Starting a master on loopback, as the tests do:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use pool_master::{MasterConfig, spawn_master};
//! use pool_proto::Cookie;
//!
//! let config = MasterConfig::new(Cookie::new("secret", "doc").unwrap());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let master = spawn_master(config, listener, None, std::future::pending::<()>())
//!     .await
//!     .unwrap();
//! assert!(master.addr().port() != 0);
//! master.shutdown().await;
//! # }
//! ```

mod activity;
mod apps;
mod clock;
pub mod config;
pub mod error;
pub mod failure;
mod http;
mod load_watch;
pub mod master;
mod member_log;
mod membership;
mod metrics;
mod modules;
pub mod names;
mod node_requests;
mod outbox;
mod persist;
mod server;
mod shared;
mod state;

pub use config::{BootTree, HttpToken, MasterConfig};
pub use error::{Error, Result};
pub use failure::{DownEvent, FailureDetector, Verdict};
// The load table and the strategies live in `pool-place` (the nodes that
// place on a copy of the table run the same code); these paths stay.
pub use pool_place::{load_table, placement};

pub use load_table::{LoadTable, LoadTableConfig};
pub use master::{MasterHandle, spawn_master};
pub use placement::PlaceError;
