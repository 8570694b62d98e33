//! Supervision trees as data: the TOML tree-file format of DESIGN.md
//! ("Supervision"), which also travels on the wire (poolctl → master → the
//! worker running the root).
//!
//! - `spec`: the shapes ([`TreeSpec`], [`SupervisorSpec`], [`ChildSpecData`]
//!   and their enums), the tree views, and [`SUPERVISOR_FUNCTION`].
//! - `validate`: whether a spec can be started ([`validate_tree`],
//!   [`SpecError`]), OTP's rules, with the offending field's path.
//! - `file`: tree files parsed from TOML ([`parse_tree_file`],
//!   [`parse_tree_str`]) with errors that name the file, line and field, and
//!   written back ([`tree_to_toml`]).
//!
//! All of it is pure: no runtime, no I/O but reading the file. The master
//! checks submitted trees with it; a supervisor validates its spec with it
//! before it starts.

mod file;
mod spec;
mod validate;

pub use file::{Position, Problem, TreeFileError, parse_tree_file, parse_tree_str, tree_to_toml};
pub use spec::{
    AppStatus, AppSummary, AutoShutdown, ChildSpecData, ChildStatus, DEFAULT_INTENSITY,
    DEFAULT_PERIOD, DEFAULT_WORKER_SHUTDOWN, Placement, Restart, SUPERVISOR_FUNCTION, Shutdown,
    Strategy, SupervisorSpec, TreeSpec, TreeView,
};
pub use validate::{SpecError, validate_child, validate_flags, validate_supervisor, validate_tree};
