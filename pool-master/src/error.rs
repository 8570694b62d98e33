//! The crate's error type: what can stop the master from starting, or fail
//! one of its operations. Every message says what to do.
//!
//! Failures that are answers to a node (a refused join, a placement that
//! found no node) travel as [`pool_proto::RemoteError`]; this type is for the
//! library's own callers.

use std::io;
use std::path::PathBuf;

use pool_place::placement::PlaceError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the master.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {problem}")]
    Config {
        /// The setting, as named in the config file.
        field: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },

    /// The state directory could not be created, read or written.
    #[error("state directory {}: {source}; check the path and its permissions (--state-dir)", path.display())]
    StateDir {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// Another master holds the state directory.
    #[error(
        "state directory {} is in use by another pool-master (lock file held): stop it, or give this one another --state-dir",
        path.display()
    )]
    StateDirLocked {
        /// The lock file.
        path: PathBuf,
    },

    /// A state file does not parse.
    #[error("state file {} is corrupt: {reason}; restore it from a backup or move it away to start empty", path.display())]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },

    /// A listener's address could not be read.
    #[error("listener error: {0}")]
    Io(#[from] io::Error),

    /// A placement found no node.
    #[error(transparent)]
    Place(#[from] PlaceError),
}
