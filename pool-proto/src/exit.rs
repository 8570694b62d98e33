//! [`ExitReason`]: why a process ended, with OTP's distinctions kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a process ended (or the reason carried by an exit signal).
///
/// The variants keep the distinctions OTP makes (see `docs/semantics.md`):
/// `Normal` does not kill linked processes; `Shutdown` and
/// `ShutdownWith` are clean stops for transient children; `Killed` is what a
/// process killed by an untrappable `kill` signal dies with, while `Kill` is
/// the (trappable) reason of a process that exited with reason `kill` itself.
///
/// ```
/// use pool_proto::ExitReason;
/// let r: ExitReason = "shutdown: maintenance".parse().unwrap();
/// assert_eq!(r, ExitReason::ShutdownWith("maintenance".into()));
/// assert!(r.is_clean_for_transient());
/// assert_eq!(ExitReason::Panic("boom".into()).to_string(), "panic: boom");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[serde(remote = "Self")]
pub enum ExitReason {
    /// The process finished its work (`normal`).
    Normal,
    /// Stopped by its supervisor or by request (`shutdown`).
    Shutdown,
    /// A clean stop with a detail (`{shutdown, Term}`).
    ShutdownWith(String),
    /// Killed by an untrappable `kill` signal (`killed`).
    Killed,
    /// The process itself exited with reason `kill`; linked processes
    /// receive it as an ordinary, trappable reason.
    Kill,
    /// The process did not exist (`noproc`).
    NoProc,
    /// The process's node is unreachable (`noconnection`).
    NoConnection,
    /// The process panicked; the text is the panic message.
    Panic(String),
    /// The process returned an error, or was sent an exit signal with a
    /// reason of its own; the text describes it.
    Error(String),
}

impl ExitReason {
    /// True for `normal`, the only reason a non-trapping linked process
    /// ignores.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }

    /// True for the reasons after which a transient child is not restarted:
    /// `normal`, `shutdown` and `{shutdown, _}`.
    pub fn is_clean_for_transient(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }

    /// A reason built from an error value and its `source()` chain.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = err.to_string();
        let mut cur = err.source();
        while let Some(e) = cur {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cur = e.source();
        }
        ExitReason::Error(text)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for ExitReason {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        ExitReason::from_error(e.as_ref())
    }
}

impl From<std::io::Error> for ExitReason {
    fn from(e: std::io::Error) -> Self {
        ExitReason::from_error(&e)
    }
}

impl From<String> for ExitReason {
    fn from(e: String) -> Self {
        ExitReason::Error(e)
    }
}

impl From<&str> for ExitReason {
    fn from(e: &str) -> Self {
        ExitReason::Error(e.to_owned())
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

impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitReason({self})")
    }
}

/// Parses the text form printed by `Display`; any other text is an
/// [`ExitReason::Error`] with that text, as any Erlang term is a reason.
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

// In human-readable formats (JSON for poolctl and HTTP) a reason is its text;
// on the wire it is the tagged enum.
impl Serialize for ExitReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            ExitReason::serialize(self, s)
        }
    }
}

impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            Ok(s.parse().unwrap_or_else(|e| match e {}))
        } else {
            ExitReason::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ExitReason> {
        vec![
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("x".into()),
            ExitReason::Killed,
            ExitReason::Kill,
            ExitReason::NoProc,
            ExitReason::NoConnection,
            ExitReason::Panic("boom".into()),
            ExitReason::Error("bad input".into()),
        ]
    }

    #[test]
    fn text_form_round_trips() {
        for r in all() {
            assert_eq!(r.to_string().parse::<ExitReason>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<ExitReason>(&json).unwrap(), r);
            let mp = rmp_serde::to_vec_named(&r).unwrap();
            assert_eq!(rmp_serde::from_slice::<ExitReason>(&mp).unwrap(), r);
        }
    }

    #[test]
    fn transient_clean_reasons_are_exactly_normal_and_shutdowns() {
        let clean: Vec<_> = all()
            .into_iter()
            .filter(ExitReason::is_clean_for_transient)
            .collect();
        assert_eq!(
            clean,
            vec![
                ExitReason::Normal,
                ExitReason::Shutdown,
                ExitReason::ShutdownWith("x".into())
            ]
        );
    }

    #[test]
    fn error_chain_is_kept() {
        let inner = std::io::Error::other("disk full");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("writing the log")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let r = ExitReason::from_error(&Outer(inner));
        assert_eq!(r.to_string(), "writing the log: disk full");
    }
}
