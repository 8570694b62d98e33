//! What a program that uses the pool needs, in one `use`:
//! `use pool_worker::prelude::*;`. The nodes and the Pool API, the client,
//! the worker command line (feature `cli`), and from the supervisor crate
//! the process context, messages, functions and supervision trees.

#[cfg(feature = "cli")]
pub use crate::cli::Worker;
pub use crate::client::Client;
pub use crate::config::NodeConfig;
pub use crate::error::Error;
pub use crate::node::{Node, NodeBuilder, NodeHandle};
pub use crate::pool::{Pool, Run, Spawn, SpawnProblem, Spawned, Target};

pub use supervisor::{
    AutoShutdown, Child, Ctx, Envelope, ExitReason, Function, Functions, Message, NodeId, Pid,
    Restart, Runtime, Shutdown, Spec, Strategy,
};
