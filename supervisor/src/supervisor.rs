//! Supervisors: processes that start, watch and restart children with
//! OTP's strategies (see `docs/semantics.md`).
//!
//! - [`spec`]: [`Spec`] and [`Child`], trees written in code.
//! - [`api`]: starting supervisors and the dynamic API.
//! - [`strategy`]: pure decisions (what a child's exit means, restart and
//!   shutdown orders); spec validation is `pool_proto::tree`'s.
//! - [`intensity`]: the restart-intensity window.
//! - `server`: the supervisor process applying them.

pub mod api;
pub mod intensity;
mod server;
pub mod spec;
pub mod strategy;

pub use api::{
    CALL_TIMEOUT, ChildCounts, ChildInfo, ChildKey, ChildPid, StartError, SupError, SupRequest,
    count_children, delete_child, get_childspec, inspect, restart_child, start, start_child,
    start_dynamic_child, start_link, start_tree, stop, terminate_child, which_children,
};
pub use pool_proto::SUPERVISOR_FUNCTION;
pub use server::SupervisorArgs;
pub use spec::{Child, ChildFn, CustomStart, Spec, Started};

use crate::functions::Functions;

/// Registers [`SUPERVISOR_FUNCTION`], which starts a supervisor from its
/// data form; every runtime has it, so a nested supervisor can be placed on
/// any node.
pub(crate) fn register_supervisor_function(functions: &mut Functions) {
    functions.register(
        SUPERVISOR_FUNCTION,
        |ctx, args: SupervisorArgs| async move {
            server::run(
                ctx,
                Spec::from_data(args.spec),
                args.parent,
                args.path,
                None,
            )
            .await
        },
    );
}
