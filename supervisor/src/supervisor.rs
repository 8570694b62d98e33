//! Supervisors: processes that start, watch and restart children with
//! OTP's strategies (see `docs/semantics.md`).
//!
//! - [`spec`]: [`Spec`] and [`Child`], trees written in code.
//! - [`api`]: starting supervisors and the dynamic API.
//! - `request`: what a supervisor is asked and answers ([`SupRequest`],
//!   [`ChildInfo`], [`ChildCounts`]).
//! - [`strategy`]: pure decisions (what a child's exit means, restart and
//!   shutdown orders); spec validation is `pool_proto::tree`'s.
//! - [`intensity`]: the restart-intensity window and the reason of a
//!   supervisor that gave up.
//! - [`pending`]: what makes a failed start transient, and the backoff of
//!   pending children's retries.
//! - `server`: the supervisor process applying them.
//!
//! The crate root re-exports what writing a tree needs (`supervisor::Spec`,
//! `supervisor::start`, ...); this module keeps every name under one roof.

pub mod api;
pub mod intensity;
pub mod pending;
mod request;
mod server;
pub mod spec;
pub mod strategy;

pub use api::{
    count_children, delete_child, get_childspec, inspect, restart_child, start, start_child,
    start_dynamic_child, start_link, start_link_named, start_named, start_tree, stop,
    terminate_child, which_children,
};
pub use pool_proto::SUPERVISOR_FUNCTION;
pub use request::{
    CALL_TIMEOUT, ChildCounts, ChildInfo, ChildKey, ChildPid, INSPECT_TIMEOUT, SupRequest,
};
pub use server::SupervisorArgs;
pub use spec::{Child, ChildFn, CustomStart, Spec, Started};

pub use crate::error::{StartError, SupError};

use crate::runtime::{Functions, Runtime};

/// Registers [`SUPERVISOR_FUNCTION`]: the function by which another node
/// starts a supervisor here, from its data form ([`SupervisorArgs`]). A
/// supervisor whose child is a nested supervisor *placed on another node*
/// asks that node to spawn it; a node that should accept such children
/// registers this function (pool-worker's `NodeBuilder` does, for every
/// node of a pool). Supervisors started on this node, nested ones
/// included, need no registration.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Functions, RuntimeBuilder, SUPERVISOR_FUNCTION, register_supervisor_function};
/// let mut functions = Functions::new();
/// register_supervisor_function(&mut functions);
/// assert!(functions.contains(SUPERVISOR_FUNCTION));
/// let rt = RuntimeBuilder::new().functions(functions).build();
/// assert!(rt.functions().contains(SUPERVISOR_FUNCTION));
/// # }
/// ```
pub fn register_supervisor_function(functions: &mut Functions) -> &mut Functions {
    functions.register(
        SUPERVISOR_FUNCTION,
        |ctx, args: SupervisorArgs| async move {
            server::run(
                ctx,
                Spec::from_data(args.spec),
                args.parent,
                args.path,
                None,
                None,
            )
            .await
        },
    )
}

impl Runtime {
    /// Tells this node's supervisors that the pool's membership changed (a
    /// node joined or rejoined): every supervisor with pending children
    /// (`pending.*` in `docs/semantics.md`) retries them at once instead of
    /// at its next backoff step. pool-worker calls it on `NodeUp`. It goes
    /// through the placer's [`NodeChanges`](crate::remote::NodeChanges); a
    /// runtime without a placer (or whose placer has none) has nothing to
    /// wake, and this does nothing.
    pub fn nodes_changed(&self) {
        if let Some(changes) = self.placer().and_then(|p| p.node_changes()) {
            changes.notify();
        }
    }
}
