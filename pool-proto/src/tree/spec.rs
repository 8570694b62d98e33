//! The shapes of supervision trees as data: [`TreeSpec`], [`SupervisorSpec`]
//! and [`ChildSpecData`] with their enums, in the field names of tree files
//! (the same in code and in TOML), and the views `poolctl tree ls` /
//! `tree show` print.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{Dur, format_duration, parse_duration};
use crate::id::Pid;

/// The function name under which every worker node can start a supervisor
/// from its data form: a supervisor places a nested supervisor on another
/// node by asking it to spawn this function, with the nested spec as its
/// arguments. The master counts it as registered on every worker. (The
/// `supervisor` crate registers it with `register_supervisor_function`.)
pub const SUPERVISOR_FUNCTION: &str = "supervisor";

/// A whole tree file: one root supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeSpec {
    /// The root supervisor; its `id` names the tree (the application).
    pub supervisor: SupervisorSpec,
}

/// A supervisor: flags and an ordered list of children.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorSpec {
    /// The supervisor's id. Required for the root; a nested supervisor takes
    /// the id of the child entry that holds it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// How a child's exit affects its siblings.
    #[serde(default)]
    pub strategy: Strategy,
    /// More than `intensity` restarts within `period` makes the supervisor
    /// give up (OTP default 1).
    #[serde(default = "default_intensity")]
    pub intensity: u32,
    /// The window for `intensity` (OTP default 5 s).
    #[serde(default = "default_period")]
    pub period: Dur,
    /// Whether the exit of significant children stops the supervisor.
    #[serde(default)]
    pub auto_shutdown: AutoShutdown,
    /// The children, in start order.
    #[serde(default)]
    pub children: Vec<ChildSpecData>,
}

/// OTP's default restart intensity.
pub const DEFAULT_INTENSITY: u32 = 1;
/// OTP's default restart period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);
/// OTP's default shutdown timeout for a worker child.
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

fn default_intensity() -> u32 {
    DEFAULT_INTENSITY
}

fn default_period() -> Dur {
    Dur(DEFAULT_PERIOD)
}

impl SupervisorSpec {
    /// A supervisor with OTP's default flags and no children.
    pub fn new(id: impl Into<String>, strategy: Strategy) -> Self {
        SupervisorSpec {
            id: id.into(),
            strategy,
            intensity: DEFAULT_INTENSITY,
            period: Dur(DEFAULT_PERIOD),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
        }
    }
}

/// One child entry: a worker (`function` + `args`) or a nested supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildSpecData {
    /// Unique among its siblings.
    pub id: String,
    /// The registered function a worker child runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The value handed to the function (a JSON/TOML value).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub args: serde_json::Value,
    /// A nested supervisor, instead of `function`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<SupervisorSpec>,
    /// When the child is restarted.
    #[serde(default)]
    pub restart: Restart,
    /// How the child is stopped; `None` means OTP's default (5 s for a
    /// worker, infinity for a supervisor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<Shutdown>,
    /// A significant child's exit can stop the supervisor (auto_shutdown).
    #[serde(default, skip_serializing_if = "is_false")]
    pub significant: bool,
    /// Where the child runs; `None` is the supervisor's own node when used
    /// alone, and the pool's default placement in a pool application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Limits and grants of a wasm child (fuel, memory, directories,
    /// environment); a native function ignores them. Boxed: most children
    /// have none, and a spec travels inside small messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Box<crate::sandbox::Sandbox>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ChildSpecData {
    /// A worker child running `function` with `args`, other fields default.
    pub fn worker(
        id: impl Into<String>,
        function: impl Into<String>,
        args: serde_json::Value,
    ) -> Self {
        ChildSpecData {
            id: id.into(),
            function: Some(function.into()),
            args,
            supervisor: None,
            restart: Restart::Permanent,
            shutdown: None,
            significant: false,
            placement: None,
            sandbox: None,
        }
    }

    /// A nested supervisor child.
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> Self {
        ChildSpecData {
            id: id.into(),
            function: None,
            args: serde_json::Value::Null,
            supervisor: Some(spec),
            restart: Restart::Permanent,
            shutdown: None,
            significant: false,
            placement: None,
            sandbox: None,
        }
    }

    /// The shutdown spec with OTP's default filled in.
    pub fn effective_shutdown(&self) -> Shutdown {
        self.shutdown.unwrap_or(if self.supervisor.is_some() {
            Shutdown::Infinity
        } else {
            Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN)
        })
    }
}

/// Restart strategy of a supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the failed child is restarted.
    #[default]
    OneForOne,
    /// All children are stopped and restarted.
    OneForAll,
    /// The failed child and those started after it are restarted.
    RestForOne,
    /// One template; children are added dynamically and restarted singly.
    SimpleOneForOne,
}

impl Strategy {
    /// The name used in tree files.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::SimpleOneForOne => "simple_one_for_one",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a child is restarted (OTP restart types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit.
    Transient,
    /// Never restarted.
    Temporary,
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        })
    }
}

/// When the exit of significant children stops a supervisor (OTP 24+).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Significant children have no effect.
    #[default]
    Never,
    /// The first significant child to exit stops the supervisor.
    AnySignificant,
    /// The supervisor stops when no significant child is left running.
    AllSignificant,
}

/// How a supervisor stops a child.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Kill at once (untrappable).
    BrutalKill,
    /// Send `shutdown`, wait this long, then kill.
    Timeout(Duration),
    /// Send `shutdown` and wait for as long as it takes.
    Infinity,
}

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shutdown::BrutalKill => f.write_str("brutal_kill"),
            Shutdown::Infinity => f.write_str("infinity"),
            Shutdown::Timeout(d) => f.write_str(&format_duration(*d)),
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shutdown({self})")
    }
}

impl FromStr for Shutdown {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "brutal_kill" => Ok(Shutdown::BrutalKill),
            "infinity" => Ok(Shutdown::Infinity),
            other => parse_duration(other).map(Shutdown::Timeout),
        }
    }
}

impl Serialize for Shutdown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shutdown {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Shutdown;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"brutal_kill\", \"infinity\" or a duration such as \"5s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Shutdown, E> {
                v.parse().map_err(|_| {
                    E::custom(format!(
                        "invalid shutdown {v:?}: expected \"brutal_kill\", \"infinity\" or a duration such as \"5s\""
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Shutdown, E> {
                Ok(Shutdown::Timeout(Duration::from_millis(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Shutdown, E> {
                u64::try_from(v)
                    .map(|v| Shutdown::Timeout(Duration::from_millis(v)))
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid shutdown {v}: a timeout cannot be negative"
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the pool runs a child (or a spawned process).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// On the supervisor's own node.
    Local,
    /// On the node the master's placement strategy picks.
    LeastLoaded,
    /// On the named node.
    Node(String),
    /// On the node a consistent hash of the key picks.
    Key(String),
    /// On the least-loaded node whose labels match, e.g. `zone=a` or
    /// `zone=a,disk=ssd`.
    Label(String),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Local => f.write_str("local"),
            Placement::LeastLoaded => f.write_str("least-loaded"),
            Placement::Node(n) => write!(f, "node={n}"),
            Placement::Key(k) => write!(f, "key={k}"),
            Placement::Label(l) => write!(f, "label={l}"),
        }
    }
}

/// Status of a pool application (`poolctl tree ls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// The root supervisor runs (or is being started on a node).
    Running,
    /// The root gave up (restart intensity exceeded); left stopped.
    Failed,
    /// Waiting to start: no live node can take the root now, or its start
    /// failed for a reason that may pass. Retried with capped backoff.
    Pending,
    /// Stopped on request.
    Stopped,
}

/// Status of one child in a tree view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    /// A process runs for it.
    Running,
    /// It is being restarted.
    Restarting,
    /// Not running and not to be restarted.
    Stopped,
    /// Waiting for a node that can take it; retried with capped backoff
    /// (the reason says why it waits).
    Pending,
    /// A supervisor that gave up (restart intensity exceeded); at the top
    /// of `tree show`, a failed application.
    Failed,
}

/// One line of `poolctl tree ls`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The tree's id (its root supervisor's id).
    pub id: String,
    /// The root supervisor's pid, if it runs.
    pub root: Option<Pid>,
    /// The name of the node running the root, if any.
    pub node: Option<String>,
    /// The application's status.
    pub status: AppStatus,
    /// Why it failed or stopped, if it did.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A supervisor or child in `poolctl tree show` (the JSON shape of DESIGN.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeView {
    /// The child (or supervisor) id.
    pub id: String,
    /// For a supervisor: its strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// The running process, if any.
    pub pid: Option<Pid>,
    /// The name of the node it runs on, if it runs.
    pub node: Option<String>,
    /// Restarts of this child; for a supervisor, all restarts it made.
    pub restarts: u64,
    /// Its status.
    pub status: ChildStatus,
    /// Why it is pending or failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a supervisor: its children, in start order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<TreeView>>,
}

#[cfg(test)]
mod tests;
