//! Cluster tests of the pool: the real `pool-master`, `pool-worker`,
//! `poolctl` (and the `test-worker` of this crate) on loopback, each test
//! with its own ports, temporary directory and cookie, every child killed
//! when the test ends. One test binary with one module per area, to keep
//! link time down (STYLE.md point 17).
//!
//! - `pool_join`: joining, leaving, duplicate names, SIGTERM.
//! - `pool_config`: pool-worker's flag > env > file > default.
//! - `pool_poolctl`: every command's `--json` shape, exit codes, errors.
//! - `pool_placement`: load-aware spread, bursts, keys, labels.
//! - `pool_routing`: send, call, links, monitors and exit signals between
//!   nodes.
//! - `pool_failure`: kill -9, SIGSTOP, a saturated worker.
//! - `pool_master_restart`: the master killed and restarted.
//! - `pool_hostile`: wrong cookie, garbage and oversized frames.

#[path = "cluster/support.rs"]
mod support;

#[path = "cluster/pool_config.rs"]
mod pool_config;
#[path = "cluster/pool_failure.rs"]
mod pool_failure;
#[path = "cluster/pool_hostile.rs"]
mod pool_hostile;
#[path = "cluster/pool_join.rs"]
mod pool_join;
#[path = "cluster/pool_master_restart.rs"]
mod pool_master_restart;
#[path = "cluster/pool_placement.rs"]
mod pool_placement;
#[path = "cluster/pool_poolctl.rs"]
mod pool_poolctl;
#[path = "cluster/pool_routing.rs"]
mod pool_routing;
