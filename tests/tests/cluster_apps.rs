//! Cluster tests of supervision across nodes and pool applications, with
//! the real `pool-master`, `pool-worker` and `poolctl` binaries on loopback
//! (and, for one partition test, in a network namespace of its own).
//!
//! - `placement`: children placed by the pool, linked across the wire,
//!   restarted on a live node by their placement rule when their node dies;
//!   a supervisor's death takes its remote children with it.
//! - `apps`: `poolctl tree start|ls|show|stop`, `pool-master --tree`,
//!   adoption after a master restart, refusals.
//! - `partition`: fencing of a worker that was declared down while cut off
//!   (SIGSTOP/SIGCONT, and a veth link cut in a network namespace).
//! - `graceful`: SIGTERM to a worker.
//! - `chaos`: ten kills of a worker under a 30-child tree.
//!
//! Every cluster runs with `--node-timeout 1s` and workers report every
//! 200 ms, so that failover is quick.

// The modules live in `cluster_apps/` (an inline module gives them that
// directory without a `mod.rs`).
mod cluster_apps {
    mod apps;
    mod chaos;
    pub(crate) mod common;
    mod graceful;
    mod partition;
    mod placement;
}
