//! WebAssembly modules as the pool names them: [`ModuleHash`], the sha-256
//! of a module's bytes (64 lowercase hex digits), [`WasmName`], a wasm
//! function name `MODULE:EXPORT`, and [`check_header`], the cheap check that
//! bytes are a core wasm module at all.
//!
//! A name is a wasm function name iff it contains `:` and its MODULE part
//! is 64 lowercase hex digits (the **canonical** form, `<hash>:count`) or
//! ends in `.wasm` (the **named** form, `app.wasm:count`, the file name the
//! module was pushed under). Native names (`builtin.echo`) never contain
//! `:`. Only the master maps a named form to a hash; everything that
//! reaches a worker's runtime is canonical.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// The first 8 bytes of every core WebAssembly module: the magic `\0asm`
/// and version 1 (little endian).
pub const WASM_HEADER: [u8; 8] = *b"\0asm\x01\0\0\0";

/// The content hash of a module: sha-256 of its bytes.
///
/// ```
/// use pool_proto::module::ModuleHash;
/// let h = ModuleHash::of(b"\0asm\x01\0\0\0");
/// let text = h.to_string();
/// assert_eq!(text.len(), 64);
/// assert_eq!(text.parse::<ModuleHash>().unwrap(), h);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The first 12 hex digits, for tables (`poolctl module ls`).
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }
}

impl From<[u8; 32]> for ModuleHash {
    fn from(bytes: [u8; 32]) -> Self {
        ModuleHash(bytes)
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

/// Why a text is not a [`ModuleHash`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a module hash: give the 64 lowercase hex digits of its sha-256, as `poolctl module ls --json` prints them"
)]
pub struct ParseHashError {
    /// The text given (cut to 80 characters).
    pub input: String,
}

impl FromStr for ModuleHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, ParseHashError> {
        let err = || ParseHashError {
            input: s.chars().take(80).collect(),
        };
        if !is_hash_text(s) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| err())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| err())?;
        }
        Ok(ModuleHash(out))
    }
}

/// Whether `s` is 64 lowercase hex digits.
fn is_hash_text(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Serialize for ModuleHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModuleHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A wasm function name, parsed (see the module doc).
///
/// ```
/// use pool_proto::module::{ModuleHash, WasmName};
/// let h = ModuleHash::of(b"x");
/// let canonical = format!("{h}:count");
/// assert_eq!(
///     WasmName::parse(&canonical),
///     Some(WasmName::Hash { hash: h, export: "count".into() })
/// );
/// assert_eq!(
///     WasmName::parse("app.wasm:count"),
///     Some(WasmName::Named { file: "app.wasm".into(), export: "count".into() })
/// );
/// assert_eq!(WasmName::parse("builtin.echo"), None);
/// assert_eq!(WasmName::parse("app.wasm:count").unwrap().to_string(), "app.wasm:count");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WasmName {
    /// The canonical form `<hash>:EXPORT`.
    Hash {
        /// The module.
        hash: ModuleHash,
        /// The exported function to run.
        export: String,
    },
    /// The named form `FILE.wasm:EXPORT`: the module last pushed under
    /// that file name (only the master resolves it).
    Named {
        /// The file name the module was pushed under.
        file: String,
        /// The exported function to run.
        export: String,
    },
}

impl WasmName {
    /// Parses `name`; `None` if it is not a wasm function name (a native
    /// function's name, or an empty MODULE or EXPORT).
    pub fn parse(name: &str) -> Option<WasmName> {
        let (module, export) = name.rsplit_once(':')?;
        if export.is_empty() || module.is_empty() {
            return None;
        }
        if is_hash_text(module) {
            let hash = module.parse().ok()?;
            return Some(WasmName::Hash {
                hash,
                export: export.to_owned(),
            });
        }
        if module.ends_with(".wasm") && module.len() > ".wasm".len() {
            return Some(WasmName::Named {
                file: module.to_owned(),
                export: export.to_owned(),
            });
        }
        None
    }

    /// Whether `name` is a wasm function name (of either form).
    pub fn is_wasm(name: &str) -> bool {
        WasmName::parse(name).is_some()
    }

    /// The exported function.
    pub fn export(&self) -> &str {
        match self {
            WasmName::Hash { export, .. } | WasmName::Named { export, .. } => export,
        }
    }

    /// The hash, for the canonical form.
    pub fn hash(&self) -> Option<ModuleHash> {
        match self {
            WasmName::Hash { hash, .. } => Some(*hash),
            WasmName::Named { .. } => None,
        }
    }

    /// The canonical name of `export` in the module `hash`.
    pub fn canonical(hash: ModuleHash, export: &str) -> String {
        format!("{hash}:{export}")
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

/// Checks that a file name can name a module: it ends in `.wasm` (so that
/// `FILE:EXPORT` is recognised as a wasm name) and holds no `:`, `/` or
/// `\`; the error says what to do.
///
/// ```
/// assert!(pool_proto::module::check_file_name("app.wasm").is_ok());
/// assert!(pool_proto::module::check_file_name("app.bin").is_err());
/// ```
pub fn check_file_name(file: &str) -> Result<(), String> {
    if file.len() <= ".wasm".len() || !file.ends_with(".wasm") {
        return Err(format!(
            "module file name {file:?} does not end in .wasm: rename it NAME.wasm, so that NAME.wasm:EXPORT names its functions"
        ));
    }
    if file.contains([':', '/', '\\']) || file.chars().any(char::is_control) {
        return Err(format!(
            "module file name {file:?} holds ':', '/', '\\' or a control character: rename it"
        ));
    }
    Ok(())
}

/// Checks that `bytes` start like a core WebAssembly module (the magic
/// `\0asm`, version 1); the error says what the bytes look like instead.
///
/// ```
/// assert!(pool_proto::module::check_header(b"\0asm\x01\0\0\0").is_ok());
/// assert!(pool_proto::module::check_header(b"hello").is_err());
/// ```
pub fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < WASM_HEADER.len() || bytes[..4] != WASM_HEADER[..4] {
        return Err(
            "not a WebAssembly module: it does not start with \\0asm; push the .wasm file the compiler wrote (cargo build --target wasm32-wasip1)"
                .to_owned(),
        );
    }
    if bytes[4..8] != WASM_HEADER[4..8] {
        return Err(format!(
            "not a core WebAssembly module: version {:02x?} instead of 1 (a component, or a newer format); build a core module (wasm32-wasip1)",
            &bytes[4..8]
        ));
    }
    Ok(())
}
