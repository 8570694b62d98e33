//! Spec validation (OTP.md §1.1, §1.2, §1.9): whether a supervisor spec or
//! a child spec can be started at all, with an error that names the
//! offending field. Pure functions over the spec types: a tree file is
//! checked by the same rules ([`parse_tree_str`](super::parse_tree_str)) as a
//! spec built in code (the supervisor process, before it starts), and the
//! master checks submitted trees with them without any runtime.

use std::collections::HashMap;

use super::spec::{AutoShutdown, ChildSpecData, Restart, Strategy, SupervisorSpec, TreeSpec};

/// A supervisor spec or child spec that cannot be started (OTP.md §1.1,
/// §1.2, §1.9). Child variants carry the child's index among its siblings
/// and its id; [`field`](Self::field) gives the offending field's path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The root supervisor has no id.
    #[error("the root supervisor has no id: add `id = \"...\"`; it names the tree")]
    MissingSupervisorId,

    /// `period` is zero (OTP `{invalid_period, 0}`).
    #[error(
        "invalid period 0: the restart window must be longer than zero; use a duration such as \"5s\""
    )]
    InvalidPeriod,

    /// `simple_one_for_one` with other than one child spec (OTP
    /// `bad_start_spec`).
    #[error(
        "a simple_one_for_one supervisor needs exactly one child spec (the template of its dynamic children), found {count}: keep exactly one child, or use another strategy"
    )]
    SimpleOneForOneChildCount {
        /// How many child specs were given.
        count: usize,
    },

    /// `simple_one_for_one` with `auto_shutdown` other than `never` (current
    /// OTP `bad_combination`).
    #[error(
        "bad combination: strategy simple_one_for_one with auto_shutdown = {}: a simple_one_for_one supervisor cannot shut down automatically; set auto_shutdown = \"never\" or use another strategy",
        auto_shutdown_name(*.auto_shutdown)
    )]
    SimpleOneForOneAutoShutdown {
        /// The auto_shutdown given.
        auto_shutdown: AutoShutdown,
    },

    /// A child with an empty id (OTP `missing_id`).
    #[error("child {index} has no id: give every child an id, unique among its siblings")]
    MissingChildId {
        /// The child's index among its siblings.
        index: usize,
    },

    /// Two siblings with the same id (OTP `duplicate_child_name`).
    #[error(
        "duplicate child id {id:?}: children[{first}] already uses it; ids must be unique among siblings, so rename one of them"
    )]
    DuplicateChildId {
        /// The index of the second child with that id.
        index: usize,
        /// The id.
        id: String,
        /// The index of the first child with that id.
        first: usize,
    },

    /// A child with neither `function` nor `supervisor` (OTP
    /// `missing_start`).
    #[error(
        "child {id:?} has nothing to start: give it `function = \"...\"` (a worker) or a `supervisor` table (a nested supervisor)"
    )]
    MissingStart {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// A child with both `function` and `supervisor`.
    #[error(
        "child {id:?} has both `function` and `supervisor`: a child is either a worker or a nested supervisor; keep one of them"
    )]
    FunctionAndSupervisor {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// A worker child whose function name is empty.
    #[error(
        "child {id:?} has an empty function name: name a function registered on the worker nodes, e.g. \"builtin.echo\""
    )]
    EmptyFunction {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// A nested-supervisor child with `args`, which only a worker's function
    /// receives.
    #[error(
        "child {id:?} is a nested supervisor and cannot take `args`: remove `args` (they are handed to a worker's function)"
    )]
    ArgsOnSupervisor {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// A nested supervisor whose own id differs from its child entry's id.
    #[error(
        "child {id:?} holds a supervisor with id {nested:?}: a nested supervisor takes the id of its child entry; remove the nested `id` or make it {id:?}"
    )]
    NestedIdMismatch {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
        /// The id written inside the nested supervisor.
        nested: String,
    },

    /// `significant = true` under `auto_shutdown = never` (OTP
    /// `{bad_combination, [{auto_shutdown, never}, {significant, true}]}`).
    #[error(
        "bad combination for child {id:?}: significant = true while the supervisor's auto_shutdown is never; set the supervisor's auto_shutdown to \"any_significant\" or \"all_significant\", or remove `significant`"
    )]
    SignificantWithoutAutoShutdown {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// `significant = true` on a permanent child (OTP
    /// `{bad_combination, [{restart, permanent}, {significant, true}]}`).
    #[error(
        "bad combination for child {id:?}: significant = true with restart = permanent (a permanent child is always restarted, so it can never end the supervisor); make it \"transient\" or \"temporary\", or remove `significant`"
    )]
    SignificantPermanent {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
    },

    /// An error inside the nested supervisor of a child.
    #[error("in nested supervisor {id:?}: {error}")]
    InChild {
        /// The child's index among its siblings.
        index: usize,
        /// The child's id.
        id: String,
        /// What is wrong inside it.
        error: Box<SpecError>,
    },
}

fn auto_shutdown_name(a: AutoShutdown) -> &'static str {
    match a {
        AutoShutdown::Never => "never",
        AutoShutdown::AnySignificant => "any_significant",
        AutoShutdown::AllSignificant => "all_significant",
    }
}

impl SpecError {
    /// The dotted path of the offending field, relative to the supervisor
    /// that was validated, in tree-file names: `period`,
    /// `children[1].significant`, `children[0].supervisor.children[2].id`.
    /// For a [`TreeSpec`] prefix it with `supervisor.`.
    ///
    /// ```
    /// use pool_proto::{ChildSpecData, Strategy, SupervisorSpec};
    /// use pool_proto::tree::validate_supervisor;
    ///
    /// let mut sup = SupervisorSpec::new("root", Strategy::OneForOne);
    /// sup.children.push(ChildSpecData::worker("a", "f", serde_json::Value::Null));
    /// sup.children.push(ChildSpecData::worker("a", "g", serde_json::Value::Null));
    /// let err = validate_supervisor(&sup).unwrap_err();
    /// assert_eq!(err.field(), "children[1].id");
    /// ```
    pub fn field(&self) -> String {
        let child = |index: &usize, rest: &str| format!("children[{index}]{rest}");
        match self {
            SpecError::MissingSupervisorId => "id".to_owned(),
            SpecError::InvalidPeriod => "period".to_owned(),
            SpecError::SimpleOneForOneChildCount { .. } => "children".to_owned(),
            SpecError::SimpleOneForOneAutoShutdown { .. } => "auto_shutdown".to_owned(),
            SpecError::MissingChildId { index } => child(index, ".id"),
            SpecError::DuplicateChildId { index, .. } => child(index, ".id"),
            SpecError::MissingStart { index, .. } => child(index, ""),
            SpecError::FunctionAndSupervisor { index, .. } => child(index, ".supervisor"),
            SpecError::EmptyFunction { index, .. } => child(index, ".function"),
            SpecError::ArgsOnSupervisor { index, .. } => child(index, ".args"),
            SpecError::NestedIdMismatch { index, .. } => child(index, ".supervisor.id"),
            SpecError::SignificantWithoutAutoShutdown { index, .. }
            | SpecError::SignificantPermanent { index, .. } => child(index, ".significant"),
            SpecError::InChild { index, error, .. } => {
                child(index, &format!(".supervisor.{}", error.field()))
            }
        }
    }

    /// The innermost error: through [`SpecError::InChild`] to what is wrong.
    pub fn root_cause(&self) -> &SpecError {
        match self {
            SpecError::InChild { error, .. } => error.root_cause(),
            other => other,
        }
    }
}

/// Validates a whole tree: the root must have an id, then
/// [`validate_supervisor`]. Field paths are relative to the root
/// supervisor (prefix them with `supervisor.` for the tree file).
pub fn validate_tree(tree: &TreeSpec) -> Result<(), SpecError> {
    if tree.supervisor.id.trim().is_empty() {
        return Err(SpecError::MissingSupervisorId);
    }
    validate_supervisor(&tree.supervisor)
}

/// Validates a supervisor's flags ([`validate_flags`]), the
/// `simple_one_for_one` child count, and every child in start order
/// ([`validate_child`], then the duplicate-id check), recursing into nested
/// supervisors. The first problem found is returned. The supervisor's own
/// id may be empty (a nested supervisor takes its child entry's id).
///
/// ```
/// use pool_proto::{ChildSpecData, Strategy, SupervisorSpec};
/// use pool_proto::tree::{SpecError, validate_supervisor};
///
/// let sup = SupervisorSpec::new("pool", Strategy::SimpleOneForOne);
/// assert_eq!(
///     validate_supervisor(&sup),
///     Err(SpecError::SimpleOneForOneChildCount { count: 0 })
/// );
/// ```
pub fn validate_supervisor(spec: &SupervisorSpec) -> Result<(), SpecError> {
    validate_flags(spec)?;
    if spec.strategy == Strategy::SimpleOneForOne && spec.children.len() != 1 {
        return Err(SpecError::SimpleOneForOneChildCount {
            count: spec.children.len(),
        });
    }
    // OTP checks each child, then its id against those before it.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, child) in spec.children.iter().enumerate() {
        validate_child(spec.auto_shutdown, index, child)?;
        if let Some(&first) = seen.get(child.id.as_str()) {
            return Err(SpecError::DuplicateChildId {
                index,
                id: child.id.clone(),
                first,
            });
        }
        seen.insert(&child.id, index);
    }
    Ok(())
}

/// Validates a supervisor's flags alone (OTP `check_flags`): `period` must
/// be longer than zero, and `simple_one_for_one` cannot have an
/// `auto_shutdown` (current OTP). Intensity is a `u32`, so always valid.
pub fn validate_flags(spec: &SupervisorSpec) -> Result<(), SpecError> {
    if spec.period.0.is_zero() {
        return Err(SpecError::InvalidPeriod);
    }
    if spec.strategy == Strategy::SimpleOneForOne && spec.auto_shutdown != AutoShutdown::Never {
        return Err(SpecError::SimpleOneForOneAutoShutdown {
            auto_shutdown: spec.auto_shutdown,
        });
    }
    Ok(())
}

/// Validates one child spec for a supervisor whose `auto_shutdown` is given
/// (OTP `check_childspec`), including its nested supervisor if it has one.
/// `index` is its position among its siblings, used in the error. For
/// `start_child`, pass the index the child will take; the duplicate-id check
/// is the caller's (`already_started` / `already_present`).
///
/// ```
/// use pool_proto::{AutoShutdown, ChildSpecData, Restart};
/// use pool_proto::tree::{SpecError, validate_child};
///
/// let mut c = ChildSpecData::worker("w", "builtin.echo", serde_json::Value::Null);
/// c.significant = true;
/// c.restart = Restart::Transient;
/// assert!(validate_child(AutoShutdown::AnySignificant, 0, &c).is_ok());
/// assert!(matches!(
///     validate_child(AutoShutdown::Never, 0, &c),
///     Err(SpecError::SignificantWithoutAutoShutdown { .. })
/// ));
/// ```
pub fn validate_child(
    auto_shutdown: AutoShutdown,
    index: usize,
    child: &ChildSpecData,
) -> Result<(), SpecError> {
    let id = || child.id.clone();
    if child.id.trim().is_empty() {
        return Err(SpecError::MissingChildId { index });
    }
    match (&child.function, &child.supervisor) {
        (None, None) => return Err(SpecError::MissingStart { index, id: id() }),
        (Some(_), Some(_)) => return Err(SpecError::FunctionAndSupervisor { index, id: id() }),
        (Some(f), None) if f.trim().is_empty() => {
            return Err(SpecError::EmptyFunction { index, id: id() });
        }
        _ => {}
    }
    if child.significant {
        if auto_shutdown == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown { index, id: id() });
        }
        if child.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent { index, id: id() });
        }
    }
    if let Some(nested) = &child.supervisor {
        if !child.args.is_null() {
            return Err(SpecError::ArgsOnSupervisor { index, id: id() });
        }
        if !nested.id.is_empty() && nested.id != child.id {
            return Err(SpecError::NestedIdMismatch {
                index,
                id: id(),
                nested: nested.id.clone(),
            });
        }
        validate_supervisor(nested).map_err(|error| SpecError::InChild {
            index,
            id: id(),
            error: Box::new(error),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
