//! [`Sandbox`]: what one spawn of a wasm function may use beyond its own
//! memory — a CPU budget (fuel), a memory cap, directories and environment
//! variables. A leaf: plain serde data carried by spawn requests and tree
//! child specs; the wasm backend enforces it, a native function ignores it.

use serde::{Deserialize, Serialize};

/// Per-spawn limits and grants of a wasm process. Without grants a module
/// sees no directory, no environment variable and (WASI preview 1 has no
/// sockets) no network.
///
/// ```
/// use pool_proto::Sandbox;
/// let s: Sandbox = serde_json::from_str(r#"{"fuel": 1000}"#).unwrap();
/// assert_eq!(s.fuel, Some(1000));
/// assert!(s.dirs.is_empty() && s.env.is_empty() && s.memory.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The CPU budget in fuel units (about one per wasm instruction); none:
    /// unlimited.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// The most bytes of linear memory the module may have; none: the
    /// node's default.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Host directories the module may open, each under a guest path.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables the module sees.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// One host directory granted to a wasm process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// The directory on the worker's host.
    #[serde(default)]
    pub host: String,
    /// Where the module sees it (its preopened path).
    #[serde(default)]
    pub guest: String,
    /// Whether the module may write (read-only otherwise).
    #[serde(default)]
    pub write: bool,
}
