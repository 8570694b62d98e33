//! Placement for Spawnpool: the load table and the strategies that choose
//! nodes from it, as plain data and functions (no runtime, no I/O; time is
//! an argument). The master places on its [`LoadTable`]; a node that places
//! spawns itself holds a [`LoadCopy`] of it, fed by the master's updates,
//! and places on it with the same code and the same accounting, so that its
//! choices are the ones the master would make (DESIGN.md "Placement",
//! docs/protocol.md "Placement on a node").
//!
//! # Layout
//!
//! - [`load_table`]: [`LoadTable`], each node's last report plus the
//!   placements made since, its score, the `poolctl nodes` view, and the
//!   rows a copy is made of.
//! - [`placement`]: [`LoadTable::place`], the strategies (least-loaded with
//!   water-filling, two-choices, round-robin, random, keyed) and
//!   [`PlaceError`], the crate's error; [`placement::keyed`] is the
//!   rendezvous hash.
//! - [`copy`]: [`LoadCopy`], a node's copy of the master's table: the
//!   master's rows, numbered updates (a gap asks for the table again), and
//!   the placements made on it that the master does not count yet.
//!
//! # Example
//!
//! A burst over two idle nodes spreads instead of herding onto one:
//!
//! ```
//! use std::time::Instant;
//! use pool_place::{LoadTable, placement::DEFAULT_STRATEGY};
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

pub mod copy;
pub mod load_table;
pub mod placement;

pub use copy::{Applied, LoadCopy};
pub use load_table::{LoadTable, LoadTableConfig};
pub use placement::PlaceError;
