//! [`Error`]: why the wasm backend could not be set up. A leaf. (What goes
//! wrong with one module — a bad hash, bad bytes, a trap — is that
//! process's exit reason, not an error of the backend.)

/// Why a [`WasmBackend`](crate::WasmBackend) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine refused the configuration (the pooling allocator could
    /// not reserve its slots, or the limits contradict each other).
    #[error(
        "the wasm engine could not be set up: {0}; lower WasmConfig's max_instances or max_memory"
    )]
    Engine(String),

    /// The configuration is inconsistent.
    #[error("invalid wasm configuration: {0}")]
    Config(String),

    /// The host functions could not be added to the linker.
    #[error("the wasm host functions could not be linked: {0}")]
    Link(String),

    /// The epoch ticker thread could not be started.
    #[error("the wasm epoch ticker thread could not start: {0}; the system is out of threads")]
    Ticker(#[source] std::io::Error),
}
