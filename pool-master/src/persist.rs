//! The state directory: what the master keeps across restarts.
//!
//! ```text
//! STATE_DIR/
//!   lock         held (an OS file lock) while a master uses the directory
//!   state.json   { "version": 1, "apps": [...], "restarts": {...}, "down_nodes": [...] }
//!   state.json.tmp   the next state.json while it is written
//! ```
//!
//! `apps` are the pool applications (spec, generation, status, reason,
//! assigned node id, root pid); `restarts` the child restarts counted per
//! app and child path; `down_nodes` the node ids declared down
//! recently, so that fencing works across a master restart. The file is
//! replaced atomically: written to `state.json.tmp`, synced, renamed over
//! `state.json`, and the directory synced.
//!
//! Writing happens on a task of its own ([`Persister`]): state changes
//! publish a numbered snapshot, the task writes the latest one (skipping
//! any it was too slow for), and callers that must not answer before the
//! state is on disk wait with [`Persister::flush`].

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info};

use crate::apps::{AppRecord, RestartCounts};
use crate::error::{Error, Result};
use crate::membership::DownRecord;

/// Version of the state file format.
const STATE_VERSION: u32 = 1;
/// The state file.
const STATE_FILE: &str = "state.json";
/// The lock file.
const LOCK_FILE: &str = "lock";

/// The content of `state.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// Format version.
    #[serde(default)]
    pub(crate) version: u32,
    /// Pool applications.
    #[serde(default)]
    pub(crate) apps: Vec<AppRecord>,
    /// Child restarts counted per app (by id), then by child path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) restarts: BTreeMap<String, RestartCounts>,
    /// Node ids declared down recently.
    #[serde(default)]
    pub(crate) down_nodes: Vec<DownRecord>,
}

/// An opened state directory: its path and the lock that keeps a second
/// master out (released when this is dropped).
#[derive(Debug)]
pub(crate) struct StateDir {
    /// The directory.
    path: PathBuf,
    /// The locked lock file; the OS lock lives as long as this handle.
    _lock: File,
}

impl StateDir {
    /// Creates (if needed) and locks `path`, and reads the saved state.
    pub(crate) fn open(path: &Path) -> Result<(Self, Snapshot)> {
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| Error::StateDir { path: p, source }
        };
        fs::create_dir_all(path).map_err(io_err(path))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::StateDirLocked { path: lock_path });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let file = path.join(STATE_FILE);
        let snapshot = match fs::read(&file) {
            Ok(bytes) => {
                serde_json::from_slice::<Snapshot>(&bytes).map_err(|e| Error::StateCorrupt {
                    path: file.clone(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(io_err(&file)(e)),
        };
        if snapshot.version > STATE_VERSION {
            return Err(Error::StateCorrupt {
                path: file,
                reason: format!(
                    "format version {} is newer than this master's ({STATE_VERSION}); run the newer pool-master",
                    snapshot.version
                ),
            });
        }
        info!(dir = %path.display(), apps = snapshot.apps.len(),
            down_nodes = snapshot.down_nodes.len(), "state directory opened");
        Ok((
            StateDir {
                path: path.to_owned(),
                _lock: lock,
            },
            snapshot,
        ))
    }

    /// Writes `snapshot` atomically.
    pub(crate) fn write(&self, snapshot: &Snapshot) -> Result<()> {
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| Error::StateDir { path: p, source }
        };
        let file = self.path.join(STATE_FILE);
        let tmp = self.path.join(format!("{STATE_FILE}.tmp"));
        let mut body = serde_json::to_vec_pretty(&Snapshot {
            version: STATE_VERSION,
            ..snapshot.clone()
        })
        .map_err(|e| Error::StateCorrupt {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        body.push(b'\n');
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&body).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &file).map_err(io_err(&file))?;
        // The rename is durable only once the directory is synced.
        if let Ok(dir) = File::open(&self.path) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The writer side of the state directory: state changes bump a number,
/// the writer task snapshots the state and writes it. Changes that arrive
/// while a write is in progress are coalesced into the next one, so a burst
/// of changes (a thousand nodes going down at once) costs a few writes.
#[derive(Debug)]
pub(crate) struct Persister {
    /// The number of the latest change.
    requested: watch::Sender<u64>,
    /// The number of the latest change known to be on disk.
    written: watch::Sender<u64>,
}

impl Persister {
    /// A persister with no change yet.
    pub(crate) fn new() -> Self {
        Persister {
            requested: watch::Sender::new(0),
            written: watch::Sender::new(0),
        }
    }

    /// Records a change; returns its number (for [`flush`](Self::flush)).
    pub(crate) fn mark(&self) -> u64 {
        let mut n = 0;
        self.requested.send_modify(|v| {
            *v += 1;
            n = *v;
        });
        n
    }

    /// The number of the latest change.
    pub(crate) fn latest(&self) -> u64 {
        *self.requested.borrow()
    }

    /// Waits until change `n` is on disk. Returns at once once the writer
    /// task has stopped.
    pub(crate) async fn flush(&self, n: u64) {
        let mut rx = self.written.subscribe();
        let _ = rx.wait_for(|&w| w >= n).await;
    }

    /// The writer task: after each change, takes `snapshot()` and writes it
    /// to `dir` (if any), until `stop` fires; then writes the last change
    /// if it was not yet. `abort` ends it at once, writing nothing more (a
    /// simulated crash). The directory's lock is released when it ends.
    pub(crate) async fn run(
        self: Arc<Self>,
        dir: Option<StateDir>,
        stop: tokio_util::sync::CancellationToken,
        abort: tokio_util::sync::CancellationToken,
        snapshot: impl Fn() -> Snapshot + Send + 'static,
    ) {
        let dir = dir.map(Arc::new);
        let mut rx = self.requested.subscribe();
        loop {
            let stopping = tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                _ = stop.cancelled() => true,
                changed = rx.changed() => changed.is_err(),
            };
            let n = *rx.borrow_and_update();
            if n > *self.written.borrow() {
                // The snapshot is taken after reading `n`, so it holds every
                // change up to `n` (and maybe later ones).
                if let Some(dir) = &dir {
                    let snap = snapshot();
                    let dir = dir.clone();
                    match tokio::task::spawn_blocking(move || dir.write(&snap)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => error!(cause = %e, "could not save the master's state"),
                        Err(e) => error!(cause = %e, "state writer panicked"),
                    }
                }
                self.written.send_replace(n);
            }
            if stopping {
                break;
            }
        }
        // Nothing more will be written: release every waiting flush.
        self.written.send_replace(u64::MAX);
    }
}
