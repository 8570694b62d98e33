//! What a supervisor is asked, and what it answers: [`SupRequest`], the
//! child entries of `which_children` and `count_children`, and the
//! timeouts of these calls. Plain data (a supervisor on another node is
//! asked the same way), except [`StartChildCode`], which carries closures
//! and so only reaches a supervisor on this node. Both the calling side
//! (`api.rs`) and the supervisor process (`server/`) name these.

use std::fmt;
use std::time::Duration;

use pool_proto::{ChildSpecData, Pid};
use serde::{Deserialize, Serialize};

use super::spec::Child;

/// Supervisor calls wait this long: OTP's supervisor calls wait forever,
/// and a call blocks while a slow child shuts down; an hour stands for
/// "forever" without leaking a caller for good.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long `inspect` waits for each nested supervisor.
pub const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A child named by id, or (simple_one_for_one) by pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKey {
    /// By id.
    Id(String),
    /// By pid.
    Pid(Pid),
}

impl From<&str> for ChildKey {
    fn from(id: &str) -> Self {
        ChildKey::Id(id.to_owned())
    }
}

impl From<Pid> for ChildKey {
    fn from(pid: Pid) -> Self {
        ChildKey::Pid(pid)
    }
}

/// A child's process in `which_children`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildPid {
    /// Running.
    Pid(Pid),
    /// A failed restart is being retried.
    Restarting,
    /// Not running (`undefined`).
    Undefined,
}

/// One entry of `which_children`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// Its id (`None` for simple_one_for_one children: OTP's `undefined`).
    pub id: Option<String>,
    /// Its process.
    pub pid: ChildPid,
    /// A supervisor (true) or a worker.
    pub supervisor: bool,
    /// Times it was restarted.
    pub restarts: u64,
}

/// `count_children`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// Child specs (1 for simple_one_for_one).
    pub specs: u64,
    /// Children with a live process.
    pub active: u64,
    /// Supervisor children (running or not).
    pub supervisors: u64,
    /// Worker children (running or not).
    pub workers: u64,
}

/// The data requests a supervisor serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SupRequest {
    /// `which_children`.
    WhichChildren,
    /// `count_children`.
    CountChildren,
    /// `start_child` with a data spec.
    StartChild(ChildSpecData),
    /// `start_child` of a simple_one_for_one supervisor.
    StartDynamic(serde_json::Value),
    /// `terminate_child`.
    TerminateChild(ChildKey),
    /// `restart_child`.
    RestartChild(String),
    /// `delete_child`.
    DeleteChild(String),
    /// `get_childspec`.
    GetChildSpec(ChildKey),
    /// The tree below the supervisor.
    Inspect,
    /// Stop the supervisor (children first, in order).
    Stop,
}

/// `start_child` with a code child (local only).
pub(crate) struct StartChildCode(pub(crate) Child);

impl fmt::Display for ChildPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildPid::Pid(p) => write!(f, "{p}"),
            ChildPid::Restarting => f.write_str("restarting"),
            ChildPid::Undefined => f.write_str("undefined"),
        }
    }
}
