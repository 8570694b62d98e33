//! The module store: WebAssembly modules pushed to the pool, kept by
//! content hash, and the map from the file names they were pushed under to
//! their hashes (the named form `app.wasm:count` of a wasm function).
//!
//! ```text
//! STATE_DIR/modules/
//!   <hash>.wasm        one module's bytes (sha-256 = <hash>)
//!   <hash>.wasm.tmp    the next one while it is written
//!   index.json         { "version": 1, "modules": [{hash, file, size, pushed_at}, ...] }
//!   index.json.tmp     the next index while it is written
//! ```
//!
//! Files are written as `persist.rs` writes the state: to a `.tmp`,
//! synced, renamed, the directory synced. The index has one entry per
//! (file name, hash) pushed; the named form resolves to the file name's
//! latest push, and every hash pushed stays spawnable by its canonical name
//! (a supervisor restarts its child with the hash it resolved first). At
//! start the index is read back; an entry that does not parse, or whose
//! module file is missing or does not hash to its name, is skipped with a
//! logged error (never a panic). A master without a state directory keeps
//! the bytes in memory.
//!
//! Owns no task: pushes and fetches run on the session's request tasks, the
//! file I/O on the blocking pool.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pool_proto::module::{WasmName, check_file_name, check_header};
use pool_proto::{ErrorCode, ModuleHash, ModuleInfo, RemoteError};
use serde::{Deserialize, Serialize};
use tracing::{error, info};

#[cfg(test)]
mod tests;

/// The directory under the state directory.
const MODULES_DIR: &str = "modules";
/// The index file.
const INDEX_FILE: &str = "index.json";
/// Version of the index format.
const INDEX_VERSION: u32 = 1;

/// The content of `index.json`. Entries are read one by one, so that one
/// that does not parse costs only itself.
#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    /// Format version.
    #[serde(default)]
    version: u32,
    /// One entry per (file name, hash) pushed.
    #[serde(default)]
    modules: Vec<serde_json::Value>,
}

/// The store. Shared by the sessions and the HTTP API (`Shared.modules`).
#[derive(Debug)]
pub(crate) struct ModuleStore {
    /// `STATE_DIR/modules`, or `None`: the bytes live in memory.
    dir: Option<PathBuf>,
    /// The index and, without a directory, the bytes; never held across an
    /// `.await` or a file operation.
    inner: Mutex<Inner>,
    /// Held by a push from before its module file is written until its
    /// index is, so that the index on disk follows the pushes in order.
    writing: tokio::sync::Mutex<()>,
}

/// What the store's lock guards.
#[derive(Debug, Default)]
struct Inner {
    /// One entry per (file name, hash), in push order.
    entries: Vec<ModuleInfo>,
    /// The modules' bytes, when there is no directory.
    bytes: HashMap<ModuleHash, Arc<[u8]>>,
}

/// Records a push of `hash` as `file` at `now_ms` in `entries` (a push
/// again of the same pair moves it to the end, with the new time).
fn record(
    entries: &mut Vec<ModuleInfo>,
    file: &str,
    hash: ModuleHash,
    size: u64,
    now_ms: u64,
) -> ModuleInfo {
    entries.retain(|e| !(e.file == file && e.hash == hash));
    let info = ModuleInfo {
        hash,
        file: file.to_owned(),
        size,
        pushed_at: now_ms,
    };
    entries.push(info.clone());
    info
}

impl Inner {
    fn has(&self, hash: ModuleHash) -> bool {
        self.entries.iter().any(|e| e.hash == hash)
    }

    /// The hash last pushed as `file`.
    fn latest(&self, file: &str) -> Option<ModuleHash> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.file == file)
            .map(|e| e.hash)
    }
}

/// The error for a module that is not stored.
pub(crate) fn no_module(hash: ModuleHash) -> RemoteError {
    RemoteError::new(
        ErrorCode::UnknownFunction,
        format!("no module {hash} in the pool: push it with `poolctl module push FILE`"),
    )
}

/// The error for a file name nothing was pushed under.
fn unknown_file(file: &str) -> RemoteError {
    RemoteError::new(
        ErrorCode::UnknownFunction,
        format!(
            "no module pushed as {file}: push it first with `poolctl module push {file}` (`poolctl module ls` lists the modules)"
        ),
    )
}

fn bad_module(why: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorCode::BadRequest, why.into())
}

fn internal(why: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorCode::Internal, why.into())
}

/// Checks that `bytes` are a valid core WebAssembly module: the header
/// first (the clearest message for bytes that are no wasm at all), then a
/// full validation (a few ms per MiB).
pub(crate) fn validate(bytes: &[u8]) -> Result<(), String> {
    check_header(bytes)?;
    let mut v = wasmparser::Validator::new();
    v.validate_all(bytes)
        .map(drop)
        .map_err(|e| format!("not a valid WebAssembly module: {e}; rebuild it"))
}

impl ModuleStore {
    /// A store kept in memory only (no state directory).
    pub(crate) fn in_memory() -> Self {
        ModuleStore {
            dir: None,
            inner: Mutex::new(Inner::default()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The store under `state_dir` (created if needed), with its index
    /// read back. Blocking: call it on the blocking pool.
    pub(crate) fn open(state_dir: &Path) -> std::io::Result<Self> {
        let dir = state_dir.join(MODULES_DIR);
        fs::create_dir_all(&dir)?;
        let entries = load_index(&dir);
        info!(dir = %dir.display(), modules = entries.len(), "module store opened");
        Ok(ModuleStore {
            dir: Some(dir),
            inner: Mutex::new(Inner {
                entries,
                bytes: HashMap::new(),
            }),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every module stored, by file name then push time.
    pub(crate) fn list(&self) -> Vec<ModuleInfo> {
        let mut v = self.lock().entries.clone();
        v.sort_by(|a, b| (&a.file, a.pushed_at).cmp(&(&b.file, b.pushed_at)));
        v
    }

    /// Whether module `hash` is stored.
    pub(crate) fn has(&self, hash: ModuleHash) -> bool {
        self.lock().has(hash)
    }

    /// The canonical name of `function`: a named wasm form becomes the
    /// hash of the module last pushed under its file name; a canonical one
    /// must be stored; any other name is returned as it is.
    pub(crate) fn resolve(&self, function: &str) -> Result<String, RemoteError> {
        match WasmName::parse(function) {
            None => Ok(function.to_owned()),
            Some(WasmName::Hash { hash, .. }) if self.has(hash) => Ok(function.to_owned()),
            Some(WasmName::Hash { hash, .. }) => Err(no_module(hash)),
            Some(WasmName::Named { file, export }) => match self.lock().latest(&file) {
                Some(hash) => Ok(WasmName::canonical(hash, &export)),
                None => Err(unknown_file(&file)),
            },
        }
    }

    /// Stores `bytes` pushed as `file` at `now_ms`. Refused (nothing
    /// stored) when the file name cannot name a module, the claimed hash
    /// is not the bytes', or the bytes are not a valid module.
    pub(crate) async fn push(
        &self,
        file: String,
        bytes: Vec<u8>,
        claimed: Option<ModuleHash>,
        now_ms: u64,
    ) -> Result<ModuleInfo, RemoteError> {
        check_file_name(&file).map_err(bad_module)?;
        let bytes: Arc<[u8]> = bytes.into();
        let b = bytes.clone();
        // Hashing and validating a large module takes milliseconds: off
        // the async threads.
        let hash = tokio::task::spawn_blocking(move || {
            let hash = ModuleHash::of(&b);
            validate(&b).map(|()| hash)
        })
        .await
        .map_err(|e| internal(format!("module check failed: {e}")))?
        .map_err(|why| bad_module(format!("{file}: {why}")))?;
        if let Some(claimed) = claimed
            && claimed != hash
        {
            return Err(bad_module(format!(
                "{file}: the hash sent ({claimed}) is not the sha-256 of the bytes ({hash}): the module was corrupted on the way; push it again"
            )));
        }
        let size = bytes.len() as u64;
        let _writing = self.writing.lock().await;
        let Some(dir) = self.dir.clone() else {
            let mut inner = self.lock();
            inner.bytes.insert(hash, bytes);
            return Ok(record(&mut inner.entries, &file, hash, size, now_ms));
        };
        // The next index, applied in memory only once it is on disk (the
        // `writing` lock keeps other pushes out meanwhile): a push that
        // could not be written is not stored at all.
        let mut entries = self.lock().entries.clone();
        let info = record(&mut entries, &file, hash, size, now_ms);
        let index = entries.clone();
        let written = tokio::task::spawn_blocking(move || {
            let path = dir.join(format!("{hash}.wasm"));
            // Written unless an intact copy is there already (the same
            // module pushed under another name, or pushed again).
            let intact = fs::read(&path).is_ok_and(|b| ModuleHash::of(&b) == hash);
            if !intact {
                write_atomic(&dir, &path, &bytes)?;
            }
            write_index(&dir, &index)
        })
        .await
        .map_err(|e| internal(format!("module write failed: {e}")))?;
        if let Err(e) = written {
            error!(cause = %e, %hash, "could not store a module");
            return Err(internal(format!(
                "could not store the module in the master's state directory: {e}; check its free space and permissions"
            )));
        }
        self.lock().entries = entries;
        info!(%hash, file = %info.file, size, "module stored");
        Ok(info)
    }

    /// The bytes of module `hash`.
    pub(crate) async fn fetch(&self, hash: ModuleHash) -> Result<Vec<u8>, RemoteError> {
        let in_memory = {
            let inner = self.lock();
            if !inner.has(hash) {
                return Err(no_module(hash));
            }
            inner.bytes.get(&hash).cloned()
        };
        if let Some(bytes) = in_memory {
            return Ok(bytes.to_vec());
        }
        let Some(dir) = self.dir.clone() else {
            return Err(no_module(hash));
        };
        let path = dir.join(format!("{hash}.wasm"));
        let read = tokio::task::spawn_blocking(move || {
            let bytes = fs::read(&path)?;
            // A file damaged on disk is not served as this module.
            if ModuleHash::of(&bytes) != hash {
                return Err(std::io::Error::other(format!(
                    "{} no longer hashes to its name (damaged on disk); push the module again",
                    path.display()
                )));
            }
            Ok(bytes)
        })
        .await
        .map_err(|e| internal(format!("module read failed: {e}")))?;
        read.map_err(|e| {
            error!(cause = %e, %hash, "could not read a stored module");
            internal(format!("could not read module {hash}: {e}"))
        })
    }
}

/// Writes `bytes` to `path` atomically: a `.tmp` beside it, synced,
/// renamed, the directory synced.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    // The rename is durable only once the directory is synced.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes the index atomically.
fn write_index(dir: &Path, entries: &[ModuleInfo]) -> std::io::Result<()> {
    let index = IndexFile {
        version: INDEX_VERSION,
        modules: entries
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect(),
    };
    let mut body = serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?;
    body.push(b'\n');
    write_atomic(dir, &dir.join(INDEX_FILE), &body)
}

/// Reads the index of `dir`: every entry that parses and whose module file
/// is there and hashes to its name; the others are logged and skipped.
fn load_index(dir: &Path) -> Vec<ModuleInfo> {
    let path = dir.join(INDEX_FILE);
    let index: IndexFile = match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(index) => index,
            Err(e) => {
                error!(file = %path.display(), cause = %e,
                    "the module index is corrupt: starting without the modules it listed; push them again");
                return Vec::new();
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            error!(file = %path.display(), cause = %e,
                "cannot read the module index: starting without the modules it listed");
            return Vec::new();
        }
    };
    let mut checked: HashMap<ModuleHash, bool> = HashMap::new();
    let mut out = Vec::new();
    for (i, value) in index.modules.into_iter().enumerate() {
        let entry: ModuleInfo = match serde_json::from_value(value) {
            Ok(e) => e,
            Err(e) => {
                error!(file = %path.display(), entry = i, cause = %e,
                    "skipped a corrupt entry of the module index");
                continue;
            }
        };
        let ok = *checked.entry(entry.hash).or_insert_with(|| {
            let file = dir.join(format!("{}.wasm", entry.hash));
            match fs::read(&file) {
                Ok(bytes) if ModuleHash::of(&bytes) == entry.hash => true,
                Ok(_) => {
                    error!(file = %file.display(),
                        "skipped a module whose file does not hash to its name (damaged); push it again");
                    false
                }
                Err(e) => {
                    error!(file = %file.display(), cause = %e,
                        "skipped a module of the index whose file cannot be read; push it again");
                    false
                }
            }
        });
        if ok && check_file_name(&entry.file).is_ok() {
            out.push(entry);
        }
    }
    out
}
