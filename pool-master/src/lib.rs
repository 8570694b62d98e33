//! The pool master (being built): membership, load table, placement and
//! failure detection.
//!
//! The decisions are pure (STYLE.md point 15): plain data structures and
//! functions with time passed in as an argument, no tokio and no I/O, so they
//! are unit-tested directly and driven unchanged by the placement-quality
//! simulation (`cargo run --release -p pool-benches --bin placement_sim`).
//! The async shell that wires them to the network comes later.
//!
//! # Layout
//!
//! - [`load_table`]: [`LoadTable`], each node's last report plus the
//!   placements made since, its score, and the `poolctl nodes` view.
//! - [`placement`]: [`LoadTable::place`], the strategies (least-loaded with
//!   water-filling, two-choices, round-robin, random, keyed) and
//!   [`PlaceError`]; [`placement::keyed`] is the rendezvous hash.
//! - [`failure`]: [`FailureDetector`], node down on disconnect or silence.
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

pub mod failure;
pub mod load_table;
pub mod placement;

pub use failure::{DownEvent, FailureDetector};
pub use load_table::{LoadTable, LoadTableConfig};
pub use placement::PlaceError;
