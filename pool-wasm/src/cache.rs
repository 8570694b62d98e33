//! The compiled-module cache: a bounded map (least recently used out,
//! by count) from (module hash, engine version, configuration
//! fingerprint) to the module's `InstancePre`, so that a warm spawn only
//! instantiates. Loading is single-flight: the first spawn of a module
//! fetches and compiles it, and every spawn of the same module meanwhile
//! waits for that one result. A load that fails is not kept: the next spawn
//! tries again (a fetch may fail for a reason that passes). It owns no
//! task: the loading runs in the spawning process's body.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use pool_proto::module::ModuleHash;
use tokio::sync::OnceCell;

/// What a compiled artifact depends on: the module, the engine's version
/// and the engine's code-relevant configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    hash: ModuleHash,
    engine: &'static str,
    config: u64,
}

/// One cache entry.
struct Slot<V> {
    /// The module once loaded; waiters of a load in progress share it.
    cell: Arc<OnceCell<V>>,
    /// When it was last used (the cache's clock), for the eviction.
    used: u64,
}

/// The entries and the use clock.
struct Lru<V> {
    clock: u64,
    slots: HashMap<Key, Slot<V>>,
}

/// The bounded, single-flight cache of compiled modules (`V`: the
/// backend's `InstancePre`; anything cheap to clone in unit tests).
pub(crate) struct ModuleCache<V> {
    /// The most entries kept.
    cap: usize,
    /// The engine version of every key.
    engine: &'static str,
    /// The configuration fingerprint of every key.
    config: u64,
    /// The entries.
    lru: Mutex<Lru<V>>,
}

impl<V: Clone> ModuleCache<V> {
    /// An empty cache of at most `cap` modules for one engine.
    pub(crate) fn new(cap: usize, engine: &'static str, config: u64) -> Self {
        ModuleCache {
            cap,
            engine,
            config,
            lru: Mutex::new(Lru {
                clock: 0,
                slots: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<V>> {
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, hash: ModuleHash) -> Key {
        Key {
            hash,
            engine: self.engine,
            config: self.config,
        }
    }

    /// The module `hash`, from the cache or loaded by `load` (once for all
    /// concurrent callers); the error text of a failed load.
    pub(crate) async fn get<F, Fut>(&self, hash: ModuleHash, load: F) -> Result<V, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, String>>,
    {
        let key = self.key(hash);
        let cell = {
            let mut lru = self.lock();
            lru.clock += 1;
            let now = lru.clock;
            let cell = {
                let slot = lru.slots.entry(key).or_insert_with(|| Slot {
                    cell: Arc::new(OnceCell::new()),
                    used: now,
                });
                slot.used = now;
                slot.cell.clone()
            };
            // Over the bound: the least recently used other entry goes
            // (its waiters, if any, keep their own handle on it).
            while lru.slots.len() > self.cap {
                let Some(old) = lru
                    .slots
                    .iter()
                    .filter(|(k, _)| **k != key)
                    .min_by_key(|(_, s)| s.used)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                lru.slots.remove(&old);
            }
            cell
        };
        match cell.get_or_try_init(load).await {
            Ok(ready) => Ok(ready.clone()),
            Err(e) => {
                // Not kept: the next spawn tries again.
                let mut lru = self.lock();
                if lru
                    .slots
                    .get(&key)
                    .is_some_and(|s| Arc::ptr_eq(&s.cell, &cell) && !s.cell.initialized())
                {
                    lru.slots.remove(&key);
                }
                Err(e)
            }
        }
    }

    /// The hashes of the modules compiled and kept, most recently used
    /// first.
    pub(crate) fn cached(&self) -> Vec<ModuleHash> {
        let lru = self.lock();
        let mut v: Vec<(u64, ModuleHash)> = lru
            .slots
            .iter()
            .filter(|(_, s)| s.cell.initialized())
            .map(|(k, s)| (s.used, k.hash))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
        v.into_iter().map(|(_, h)| h).collect()
    }
}

#[cfg(test)]
mod tests;
