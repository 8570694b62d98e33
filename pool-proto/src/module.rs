//! Wasm module names: [`ModuleHash`], a module's identity (the sha-256 of
//! its bytes), and [`WasmName`], a wasm function name `MODULE:EXPORT` in
//! its canonical (hash) or named (`app.wasm`) form. A leaf: pure parsing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The identity of a wasm module: the sha-256 of its bytes, written as 64
/// lowercase hex digits.
///
/// ```
/// use pool_proto::module::ModuleHash;
/// let h = ModuleHash::of(b"");
/// assert_eq!(h.to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// assert_eq!(h.to_string().parse::<ModuleHash>().unwrap(), h);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleHash([u8; 32]);

impl ModuleHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ModuleHash(Sha256::digest(bytes).into())
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({self})")
    }
}

/// A text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a module hash: expected 64 hex digits (the sha-256 of the module)")]
pub struct ParseHashError {
    /// The text given.
    pub text: String,
}

impl FromStr for ModuleHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseHashError { text: s.to_owned() };
        let s = s.trim();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(ModuleHash(out))
    }
}

impl Serialize for ModuleHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModuleHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A wasm function name, `MODULE:EXPORT`: a name is one iff it contains
/// `:` and its MODULE part is 64 hex digits or ends in `.wasm`.
///
/// ```
/// use pool_proto::module::WasmName;
/// let h = "ab".repeat(32);
/// assert!(matches!(WasmName::parse(&format!("{h}:count")), Some(WasmName::Hash { .. })));
/// assert!(matches!(WasmName::parse("app.wasm:count"), Some(WasmName::Named { .. })));
/// assert_eq!(WasmName::parse("builtin.echo"), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WasmName {
    /// The canonical form: the module by its hash.
    Hash {
        /// The module.
        hash: ModuleHash,
        /// The exported function.
        export: String,
    },
    /// The named form: the module last pushed under a file name.
    Named {
        /// The file name (ends in `.wasm`).
        file: String,
        /// The exported function.
        export: String,
    },
}

impl WasmName {
    /// Parses `name`; `None` if it is not a wasm function name.
    pub fn parse(name: &str) -> Option<WasmName> {
        let (module, export) = name.split_once(':')?;
        if export.is_empty() {
            return None;
        }
        if let Ok(hash) = module.parse::<ModuleHash>()
            && module.len() == 64
        {
            return Some(WasmName::Hash {
                hash,
                export: export.to_owned(),
            });
        }
        if module.ends_with(".wasm") {
            return Some(WasmName::Named {
                file: module.to_owned(),
                export: export.to_owned(),
            });
        }
        None
    }

    /// The exported function.
    pub fn export(&self) -> &str {
        match self {
            WasmName::Hash { export, .. } | WasmName::Named { export, .. } => export,
        }
    }
}

impl fmt::Display for WasmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmName::Hash { hash, export } => write!(f, "{hash}:{export}"),
            WasmName::Named { file, export } => write!(f, "{file}:{export}"),
        }
    }
}
