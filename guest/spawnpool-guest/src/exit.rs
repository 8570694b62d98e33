//! [`ExitReason`]: why a process ended, in the text form the host ABI
//! carries (`exit`, `exit_pid`, exit signals and down notifications) and
//! the node prints.

use std::fmt;
use std::str::FromStr;

/// Why a process ended, with OTP's distinctions kept. The same variants and
/// text as the node's `pool_proto::ExitReason`; any text that is not one of
/// the fixed forms is an [`Error`](ExitReason::Error).
///
/// ```
/// use spawnpool_guest::ExitReason;
/// let r: ExitReason = "shutdown: maintenance".parse().unwrap();
/// assert_eq!(r, ExitReason::ShutdownWith("maintenance".into()));
/// assert!(r.is_clean_for_transient());
/// assert_eq!(ExitReason::from("disk full").to_string(), "disk full");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The process finished its work (`normal`).
    Normal,
    /// Stopped by its supervisor or by request (`shutdown`).
    Shutdown,
    /// A clean stop with a detail (`shutdown: detail`).
    ShutdownWith(String),
    /// Killed by an untrappable kill signal (`killed`).
    Killed,
    /// The process exited with reason `kill` itself (trappable by others).
    Kill,
    /// The process did not exist (`noproc`).
    NoProc,
    /// The process's node is unreachable (`noconnection`).
    NoConnection,
    /// A native process panicked (`panic: message`).
    Panic(String),
    /// Any other reason: an error text. A module's trap is
    /// `wasm trap: ...`, its spent budget `out of fuel: ...`, its memory cap
    /// `memory limit: ...` (see [`ExitReason::is_trap`] and its siblings).
    Error(String),
}

impl ExitReason {
    /// True for `normal`, the only reason a linked process that does not
    /// trap exits ignores.
    ///
    /// ```
    /// assert!(spawnpool_guest::ExitReason::Normal.is_normal());
    /// ```
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }

    /// True for `normal`, `shutdown` and `shutdown: ...`: the reasons after
    /// which a transient child is not restarted.
    ///
    /// ```
    /// assert!(spawnpool_guest::ExitReason::Shutdown.is_clean_for_transient());
    /// ```
    pub fn is_clean_for_transient(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }

    /// True if a module trapped (the reason starts with `wasm trap: `).
    ///
    /// ```
    /// let r: spawnpool_guest::ExitReason = "wasm trap: unreachable".parse().unwrap();
    /// assert!(r.is_trap());
    /// ```
    pub fn is_trap(&self) -> bool {
        self.error_starts_with("wasm trap: ")
    }

    /// True if a module spent its fuel budget (`out of fuel: ...`).
    ///
    /// ```
    /// let r: spawnpool_guest::ExitReason =
    ///     "out of fuel: the spawn's budget of 1000 units is spent".parse().unwrap();
    /// assert!(r.is_out_of_fuel());
    /// ```
    pub fn is_out_of_fuel(&self) -> bool {
        self.error_starts_with("out of fuel: ")
    }

    /// True if a module hit its memory cap (`memory limit: ...`).
    ///
    /// ```
    /// let r: spawnpool_guest::ExitReason =
    ///     "memory limit: the module asked for more than 1048576 bytes".parse().unwrap();
    /// assert!(r.is_memory_limit());
    /// ```
    pub fn is_memory_limit(&self) -> bool {
        self.error_starts_with("memory limit: ")
    }

    fn error_starts_with(&self, prefix: &str) -> bool {
        matches!(self, ExitReason::Error(e) if e.starts_with(prefix))
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(d) => write!(f, "shutdown: {d}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::Panic(m) => write!(f, "panic: {m}"),
            ExitReason::Error(e) => f.write_str(e),
        }
    }
}

/// Parses the text form of `Display`; any other text is an
/// [`ExitReason::Error`] with that text, as any term is a reason in Erlang.
impl FromStr for ExitReason {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "killed" => ExitReason::Killed,
            "kill" => ExitReason::Kill,
            "noproc" => ExitReason::NoProc,
            "noconnection" => ExitReason::NoConnection,
            _ => {
                if let Some(d) = s.strip_prefix("shutdown:") {
                    ExitReason::ShutdownWith(d.trim().to_owned())
                } else if let Some(m) = s.strip_prefix("panic:") {
                    ExitReason::Panic(m.trim().to_owned())
                } else {
                    ExitReason::Error(s.to_owned())
                }
            }
        })
    }
}

impl From<&str> for ExitReason {
    fn from(text: &str) -> Self {
        text.parse().unwrap_or_else(|e| match e {})
    }
}

impl From<String> for ExitReason {
    fn from(text: String) -> Self {
        ExitReason::from(text.as_str())
    }
}

#[cfg(test)]
mod tests;
