//! The process table: serial → process record, read on every local send
//! and written on every spawn and exit.
//!
//! A sharded map (dashmap) with a fast hash on the serial. A spawn inserts
//! on the spawning thread and the exit removes on whatever thread the
//! process ended on, so the entry's cache line moves between cores once
//! per process; we measured a lock-free map (papaya) as slower here (its
//! epoch pinning and deferred reclamation cost more than the shard lock),
//! and more shards as no better.

use std::sync::Arc;

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::process::record::Process;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ProcTable {
    map: DashMap<u64, Arc<Process>, FxBuildHasher>,
}

impl ProcTable {
    pub(crate) fn new() -> Self {
        ProcTable {
            map: DashMap::with_hasher(FxBuildHasher),
        }
    }

    pub(crate) fn insert(&self, serial: u64, proc: Arc<Process>) {
        self.map.insert(serial, proc);
    }

    pub(crate) fn remove(&self, serial: u64) {
        self.map.remove(&serial);
    }

    /// The record of `serial`, if live.
    pub(crate) fn get(&self, serial: u64) -> Option<Arc<Process>> {
        self.map.get(&serial).map(|p| p.value().clone())
    }

    /// Runs `f` on the record of `serial` under the shard's read guard,
    /// without taking a reference count (the hot path of a local send).
    pub(crate) fn with<R>(&self, serial: u64, f: impl FnOnce(&Arc<Process>) -> R) -> Option<R> {
        self.map.get(&serial).map(|p| f(p.value()))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every live record (a snapshot; no guard is held afterwards, so the
    /// caller may lock the records).
    pub(crate) fn snapshot(&self) -> Vec<Arc<Process>> {
        self.map.iter().map(|p| p.value().clone()).collect()
    }

    /// How many records satisfy `pred` (without cloning them).
    pub(crate) fn count(&self, mut pred: impl FnMut(&Process) -> bool) -> usize {
        self.map.iter().filter(|p| pred(p.value())).count()
    }
}
