//! The worker's WebAssembly backend (feature `wasm`): pool-wasm's
//! [`WasmBackend`] as the runtime's resolver of wasm function names, fed
//! with module bytes from the master's store. Owns no task: the backend
//! owns its engine and epoch ticker, and the runtime owns the backend.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use pool_proto::ModuleHash;
use pool_wasm::{ModuleSource, WasmBackend, WasmConfig};

use crate::error::Error;
use crate::master_link::MasterHandle;

/// Module bytes from the master (`Request::FetchModule`), for the backend's
/// first use of a module on this node.
struct MasterModules {
    /// The node's link to the master (requests wait for a connection as
    /// every other request does).
    master: MasterHandle,
}

impl ModuleSource for MasterModules {
    fn fetch(&self, hash: ModuleHash) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let master = self.master.clone();
        Box::pin(async move {
            master
                .fetch_module(hash)
                .await
                .map_err(|e| format!("fetching module {hash} from the master: {e}"))
        })
    }
}

/// The backend a worker installs as its runtime's resolver.
pub(crate) fn backend(master: &MasterHandle) -> Result<Arc<WasmBackend>, Error> {
    WasmBackend::new(
        WasmConfig::default(),
        Arc::new(MasterModules {
            master: master.clone(),
        }),
    )
    .map_err(|e| Error::Config(format!("the WebAssembly backend cannot start: {e}")))
}
