//! What a spawn grants a WebAssembly process ([`Sandbox`]): a CPU budget
//! (fuel), a memory cap, directories and environment variables. Without
//! grants a module sees no directory, no environment variable and (WASI
//! preview 1 has no sockets) no network. A native function ignores it.
//!
//! It travels as the serde-default field `sandbox` of a
//! [`SpawnRequest`](crate::SpawnRequest) and as the optional `sandbox` key
//! of a tree child spec; every field defaults, so `{}` grants nothing.

use serde::{Deserialize, Serialize};

/// Per-spawn limits and grants of a wasm process.
///
/// ```
/// let s: pool_proto::Sandbox = serde_json::from_str(r#"{"fuel": 1000}"#).unwrap();
/// assert_eq!(s.fuel, Some(1000));
/// assert!(s.dirs.is_empty() && s.env.is_empty() && s.memory.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// CPU budget in fuel units; the process ends with `out of fuel` when
    /// it is spent. `None`: unlimited.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Memory cap in bytes; `None`: the node's default.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Host directories the module may open.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables the module sees.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// A host directory shown to a module at a guest path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// The directory on the worker's machine.
    #[serde(default)]
    pub host: String,
    /// Where the module sees it.
    #[serde(default)]
    pub guest: String,
    /// Whether the module may write in it (read-only otherwise).
    #[serde(default)]
    pub write: bool,
}

impl DirGrant {
    /// Parses `HOST:GUEST[:rw]` (`poolctl spawn --grant-dir`); read-only
    /// unless `:rw`.
    ///
    /// ```
    /// use pool_proto::DirGrant;
    /// let g = DirGrant::parse("/srv/data:/data:rw").unwrap();
    /// assert_eq!((g.host.as_str(), g.guest.as_str(), g.write), ("/srv/data", "/data", true));
    /// assert!(!DirGrant::parse("/srv/data:/data").unwrap().write);
    /// assert!(DirGrant::parse("/srv/data").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<DirGrant, String> {
        let (rest, write) = match s.strip_suffix(":rw") {
            Some(rest) => (rest, true),
            None => (s.strip_suffix(":ro").unwrap_or(s), false),
        };
        match rest.split_once(':') {
            Some((host, guest)) if !host.is_empty() && !guest.is_empty() => Ok(DirGrant {
                host: host.to_owned(),
                guest: guest.to_owned(),
                write,
            }),
            _ => Err(format!(
                "{s:?} is not a directory grant: give HOST:GUEST, or HOST:GUEST:rw to allow writes"
            )),
        }
    }
}

#[cfg(test)]
mod tests;
