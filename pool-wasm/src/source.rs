//! [`ModuleSource`]: where the backend gets the bytes of a module it has
//! not compiled yet. A leaf: pool-worker implements it by asking the
//! master; tests implement it over a map.

use futures_util::future::BoxFuture;
use pool_proto::module::ModuleHash;

/// Where module bytes come from, by hash.
///
/// ```
/// use std::collections::HashMap;
/// use futures_util::FutureExt;
/// use futures_util::future::BoxFuture;
/// use pool_wasm::{ModuleHash, ModuleSource};
///
/// /// Modules kept in memory.
/// struct InMemory(HashMap<ModuleHash, Vec<u8>>);
/// impl ModuleSource for InMemory {
///     fn fetch(&self, hash: ModuleHash) -> BoxFuture<'static, Result<Vec<u8>, String>> {
///         let got = self.0.get(&hash).cloned().ok_or_else(|| format!("no module {hash}"));
///         async move { got }.boxed()
///     }
/// }
/// ```
pub trait ModuleSource: Send + Sync + 'static {
    /// The bytes of the module with `hash` (pool-worker: asks the
    /// master), or why they cannot be had. The backend verifies the hash
    /// before compiling, so a source need not.
    fn fetch(&self, hash: ModuleHash) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}
