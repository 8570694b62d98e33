//! Lines to the node's log, tagged with this process's pid: [`log`] and
//! the macros [`error!`](crate::error!), [`warn!`](crate::warn!),
//! [`info!`](crate::info!) and [`debug!`](crate::debug!). (A module's
//! stdout and stderr reach the log too, without a level.)

use crate::sys;

/// How important a log line is.
///
/// ```
/// assert_eq!(spawnpool_guest::Level::Info as i32, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// What the process is doing.
    Info = 2,
    /// Details for finding a bug.
    Debug = 3,
}

/// Writes `text` to the node's log at `level`.
///
/// ```no_run
/// spawnpool_guest::log(spawnpool_guest::Level::Info, "started");
/// ```
pub fn log(level: Level, text: &str) {
    // SAFETY: the text's pointer and length describe live memory.
    unsafe { sys::log(level as i32, text.as_ptr(), text.len()) };
}

/// Logs a `format!` line at [`Level::Error`].
///
/// ```no_run
/// spawnpool_guest::error!("cannot parse {}", "x");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &format!($($arg)*)) };
}

/// Logs a `format!` line at [`Level::Warn`].
///
/// ```no_run
/// spawnpool_guest::warn!("retrying in {} ms", 100);
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &format!($($arg)*)) };
}

/// Logs a `format!` line at [`Level::Info`].
///
/// ```no_run
/// spawnpool_guest::info!("counted {} words", 3);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &format!($($arg)*)) };
}

/// Logs a `format!` line at [`Level::Debug`].
///
/// ```no_run
/// spawnpool_guest::debug!("state {:?}", (1, 2));
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &format!($($arg)*)) };
}
