//! The pure decisions of a supervisor (OTP.md §1): what to do when a child
//! exits, which children a restart or a retry stops and starts and in what
//! order, and the shutdown order. No I/O and no clock: the
//! supervisor process feeds in the state of its children and applies the
//! answer.
//!
//! Children are described by a slice of [`ChildView`]s in **start order**
//! (index 0 was started first), and every answer names children by their
//! index in that slice. OTP stores children newest first; we keep start order
//! and reverse where OTP's order is "reverse start order".
//!
//! How the supervisor process uses this module, for a child that exits by
//! itself:
//!
//! 1. [`on_child_exit`] says whether to restart it, keep its spec stopped or
//!    remove it, whether to log an error report, and whether the exit
//!    triggers auto-shutdown.
//! 2. Before a restart, [`RestartIntensity::add_restart`] decides whether the
//!    supervisor gives up; if so, [`shutdown_plan`] gives the stop order and
//!    the supervisor exits `shutdown`.
//! 3. Otherwise [`restart_plan`] lists the children to terminate (one at a
//!    time, in order), the temporary bystanders to drop, and the children to
//!    start (in order, stopping at the first failure).
//! 4. If a start fails at child `j`: count it again with `add_restart` (give
//!    up if refused), then apply [`retry_plan`] — at once, with no backoff,
//!    but after serving the mailbox (OTP.md §1.7).
//!
//! [`RestartIntensity::add_restart`]: super::intensity::RestartIntensity::add_restart

use pool_proto::{AutoShutdown, ChildSpecData, ExitReason, Restart, Strategy};

/// Whether a child has a process, from the supervisor's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// A process runs for it (OTP: a pid).
    Running,
    /// Its restart failed and a retry is pending (OTP: `{restarting, Pid}`).
    /// There is no process to terminate, but for `all_significant` it still
    /// counts as present, as in OTP, where only a pid of `undefined` does not.
    Restarting,
    /// Its start failed for a reason that may pass (no node can take it
    /// now, its node was lost during the start), or it waits for an
    /// earlier sibling that is pending (one_for_all, rest_for_one start in
    /// order): retried with capped backoff and when the pool's membership
    /// changes, never counted against the intensity (`pending.*` in
    /// `docs/semantics.md`; OTP has no such state). No process to
    /// terminate; for `all_significant` it counts as present, as
    /// `Restarting` does, and a group restart starts it like any stopped
    /// child.
    Pending,
    /// No process and none pending: stopped by `terminate_child`, a transient
    /// clean exit, an `ignore` at start, or not yet started in a group restart
    /// that failed partway (OTP: `undefined`).
    Stopped,
}

/// What the decisions need to know about one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChildView {
    /// Its restart type.
    pub restart: Restart,
    /// Whether it is significant (auto-shutdown); only meaningful for a
    /// transient or temporary child.
    pub significant: bool,
    /// Whether it has a process.
    pub state: ChildState,
}

impl ChildView {
    /// A view of a child with the given restart type, not significant.
    pub fn new(restart: Restart, state: ChildState) -> Self {
        ChildView {
            restart,
            significant: false,
            state,
        }
    }

    /// The view of a child spec in the given state.
    ///
    /// ```
    /// use pool_proto::{ChildSpecData, Restart};
    /// use supervisor::supervisor::strategy::{ChildState, ChildView};
    ///
    /// let spec = ChildSpecData::worker("a", "builtin.echo", serde_json::Value::Null);
    /// let view = ChildView::of(&spec, ChildState::Running);
    /// assert_eq!(view.restart, Restart::Permanent);
    /// assert!(view.is_running());
    /// ```
    pub fn of(spec: &ChildSpecData, state: ChildState) -> Self {
        ChildView {
            restart: spec.restart,
            significant: spec.significant,
            state,
        }
    }

    /// True if a process runs for this child (one to terminate).
    pub fn is_running(&self) -> bool {
        self.state == ChildState::Running
    }
}

/// What happens to a child's spec after it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitAction {
    /// Restart it, after [`add_restart`] allowed it, following
    /// [`restart_plan`].
    ///
    /// [`add_restart`]: super::intensity::RestartIntensity::add_restart
    Restart,
    /// Keep the spec with no process (OTP: pid `undefined`). It stays in the
    /// child list, comes back in a group restart, and can be restarted with
    /// `restart_child` or deleted with `delete_child`.
    KeepStopped,
    /// Remove the spec: the child is gone from `which_children`.
    Remove,
}

/// The answer of [`on_child_exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitDecision {
    /// What to do with the child.
    pub action: ExitAction,
    /// Log a `child_terminated` error report: always for a permanent child,
    /// and for any other child whose reason is not `normal`, `shutdown` or
    /// `{shutdown, _}` (OTP `do_restart/3`).
    pub report: bool,
    /// The exit triggers auto-shutdown: after applying `action`, terminate
    /// the remaining children in reverse start order ([`shutdown_plan`]) and
    /// exit `shutdown` (OTP.md §1.9). Never true together with
    /// [`ExitAction::Restart`].
    pub auto_shutdown: bool,
}

/// Decides what to do when `children[index]` exited **by itself** with
/// `reason` (OTP.md §1.4, §1.9, §1.11).
///
/// Not for children the supervisor itself terminated (a restart's group, a
/// shutdown, `terminate_child`): those are never restarted, counted, or a
/// trigger for auto-shutdown.
///
/// | reason | permanent | transient | temporary |
/// |---|---|---|---|
/// | `normal`, `shutdown`, `{shutdown, _}` | restart | keep stopped | remove |
/// | anything else | restart | restart | remove |
///
/// Under `simple_one_for_one`, "keep stopped" becomes "remove": a dynamic
/// child's spec is never kept without a process.
///
/// For `all_significant`, a child of `children` other than `index` counts as
/// still present unless its state is [`ChildState::Stopped`]; the state of
/// `children[index]` itself is ignored.
///
/// # Panics
///
/// If `index` is out of bounds.
///
/// ```
/// use pool_proto::{AutoShutdown, ExitReason, Restart, Strategy};
/// use supervisor::supervisor::strategy::{on_child_exit, ChildState, ChildView, ExitAction};
///
/// let children = [ChildView::new(Restart::Transient, ChildState::Running)];
/// let d = on_child_exit(Strategy::OneForOne, AutoShutdown::Never, &children, 0, &ExitReason::Normal);
/// assert_eq!(d.action, ExitAction::KeepStopped);
/// let d = on_child_exit(Strategy::OneForOne, AutoShutdown::Never, &children, 0, &ExitReason::Killed);
/// assert_eq!(d.action, ExitAction::Restart);
/// ```
pub fn on_child_exit(
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
    children: &[ChildView],
    index: usize,
    reason: &ExitReason,
) -> ExitDecision {
    let child = children[index];
    let clean = reason.is_clean_for_transient();
    let action = match (child.restart, clean) {
        (Restart::Permanent, _) | (Restart::Transient, false) => ExitAction::Restart,
        (Restart::Transient, true) => stopped_spec_action(strategy, child.restart),
        (Restart::Temporary, _) => ExitAction::Remove,
    };
    // OTP reports every permanent exit, even `normal`, and the abnormal exits
    // of the others.
    let report = child.restart == Restart::Permanent || !clean;
    // Only a significant child terminating by itself and *not* restarted is a
    // trigger. Significance of a permanent child is refused by validation;
    // it could never trigger anyway since it is always restarted.
    let trigger = child.significant && action != ExitAction::Restart;
    let auto_shutdown = trigger
        && match auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !children
                .iter()
                .enumerate()
                .any(|(i, c)| i != index && c.significant && c.state != ChildState::Stopped),
        };
    ExitDecision {
        action,
        report,
        auto_shutdown,
    }
}

/// What happens to a child's spec when its start function returned `ignore`
/// (OTP.md §1.3, §1.11): a temporary child's spec is dropped, and under
/// `simple_one_for_one` nothing is stored whatever the restart type;
/// otherwise the spec is kept stopped. Never [`ExitAction::Restart`].
///
/// ```
/// use pool_proto::{Restart, Strategy};
/// use supervisor::supervisor::strategy::{on_start_ignored, ExitAction};
///
/// assert_eq!(on_start_ignored(Strategy::OneForOne, Restart::Permanent), ExitAction::KeepStopped);
/// assert_eq!(on_start_ignored(Strategy::OneForOne, Restart::Temporary), ExitAction::Remove);
/// ```
pub fn on_start_ignored(strategy: Strategy, restart: Restart) -> ExitAction {
    stopped_spec_action(strategy, restart)
}

/// What happens to a child's spec after `terminate_child` (OTP.md §1.4,
/// §1.10, §1.11): kept stopped, except a temporary child's spec and any
/// `simple_one_for_one` child, which are removed. Not counted against the
/// intensity and never an auto-shutdown trigger.
///
/// ```
/// use pool_proto::{Restart, Strategy};
/// use supervisor::supervisor::strategy::{on_terminated_by_api, ExitAction};
///
/// assert_eq!(on_terminated_by_api(Strategy::RestForOne, Restart::Transient), ExitAction::KeepStopped);
/// assert_eq!(on_terminated_by_api(Strategy::SimpleOneForOne, Restart::Permanent), ExitAction::Remove);
/// ```
pub fn on_terminated_by_api(strategy: Strategy, restart: Restart) -> ExitAction {
    stopped_spec_action(strategy, restart)
}

/// The fate of a spec whose child stopped and is not restarted: OTP's
/// `del_child` keeps it unless the child is temporary or dynamic.
fn stopped_spec_action(strategy: Strategy, restart: Restart) -> ExitAction {
    if restart == Restart::Temporary || strategy == Strategy::SimpleOneForOne {
        ExitAction::Remove
    } else {
        ExitAction::KeepStopped
    }
}

/// The steps of a restart (or of a retry), as indices into the children
/// slice it was computed from. Apply them in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RestartPlan {
    /// Running children to terminate, **one at a time in this order**
    /// (reverse start order): each with its shutdown spec, its DOWN seen
    /// before the next one is signalled (OTP.md §1.5, §1.8).
    pub terminate: Vec<usize>,
    /// Temporary children of the group: never restarted, their specs are
    /// dropped once they are terminated (OTP `suite:temporary_bystander`).
    /// A running one is also in `terminate`. Descending index order, so
    /// removing them one by one from a `Vec` keeps the other indices valid;
    /// remove them only after using `start`'s indices, or map indices to ids
    /// first.
    pub remove: Vec<usize>,
    /// Children to start, **in this order** (start order). Every
    /// non-temporary child of the group is here, stopped ones included
    /// (OTP.md §1.5). A start returning `ignore` leaves that child stopped
    /// ([`on_start_ignored`]) and the next one is started; a start that fails
    /// ends the round: the children after it are not started, and the
    /// supervisor counts a retry and applies [`retry_plan`].
    pub start: Vec<usize>,
}

/// The plan after `children[failed]` exited and [`on_child_exit`] said
/// [`ExitAction::Restart`] (OTP.md §1.5):
///
/// - `one_for_one`, `simple_one_for_one`: start `failed`; nothing else.
/// - `one_for_all`: terminate every other running child in reverse start
///   order, then start the whole group in start order.
/// - `rest_for_one`: terminate the running children after `failed` in
///   reverse start order, then start `failed` and those after it. Those
///   before it keep their processes.
///
/// `children[failed]` is already dead and is never in `terminate`, whatever
/// its state says. Temporary children of the group are dropped, not started
/// (`children[failed]` itself cannot be temporary: a temporary exit is never
/// restarted).
///
/// # Panics
///
/// If `failed` is out of bounds.
///
/// ```
/// use pool_proto::{Restart, Strategy};
/// use supervisor::supervisor::strategy::{restart_plan, ChildState, ChildView};
///
/// // A, B, C started in that order; B crashed (OTP.md §1.5 probe).
/// let run = ChildView::new(Restart::Permanent, ChildState::Running);
/// let plan = restart_plan(Strategy::OneForAll, &[run, run, run], 1);
/// assert_eq!(plan.terminate, [2, 0]); // stopped C, stopped A
/// assert_eq!(plan.start, [0, 1, 2]); // started A, B, C
/// ```
pub fn restart_plan(strategy: Strategy, children: &[ChildView], failed: usize) -> RestartPlan {
    assert!(
        failed < children.len(),
        "restart_plan: child index {failed} out of bounds ({} children)",
        children.len()
    );
    let group = match strategy {
        Strategy::OneForOne | Strategy::SimpleOneForOne => failed..failed + 1,
        Strategy::OneForAll => 0..children.len(),
        Strategy::RestForOne => failed..children.len(),
    };
    let terminate = group
        .clone()
        .rev()
        .filter(|&i| i != failed && children[i].is_running())
        .collect();
    let remove = group
        .clone()
        .rev()
        .filter(|&i| children[i].restart == Restart::Temporary)
        .collect();
    let start = group
        .filter(|&i| children[i].restart != Restart::Temporary)
        .collect();
    RestartPlan {
        terminate,
        remove,
        start,
    }
}

/// The plan after a (re)start attempt failed at `children[failed_start]`
/// during a restart, once [`add_restart`] allowed the retry (OTP.md §1.7).
/// `children` is the state after the failed round: the children restarted
/// earlier in the round are `Running`, the rest of the group `Stopped` (or
/// `Restarting`).
///
/// - `one_for_one`, `simple_one_for_one`: start `failed_start` again.
/// - `one_for_all`: terminate the siblings that are running again, in reverse
///   start order, and start the whole group from the top.
/// - `rest_for_one`: start from `failed_start` onward; the siblings restarted
///   before it in this round keep running.
///
/// While a retry is pending, the supervisor serves its mailbox and shows the
/// failed child as [`ChildState::Restarting`].
///
/// These are the rules of [`restart_plan`] applied to `failed_start` (OTP
/// itself retries by re-running `restart/3` on the child that failed); this
/// function exists so that the call site names the situation.
///
/// # Panics
///
/// If `failed_start` is out of bounds.
///
/// ```
/// use pool_proto::{Restart, Strategy};
/// use supervisor::supervisor::strategy::{retry_plan, ChildState, ChildView};
///
/// // one_for_all A, B, C: the restart started A, then B failed to start.
/// let children = [
///     ChildView::new(Restart::Permanent, ChildState::Running),
///     ChildView::new(Restart::Permanent, ChildState::Restarting),
///     ChildView::new(Restart::Permanent, ChildState::Stopped),
/// ];
/// let plan = retry_plan(Strategy::OneForAll, &children, 1);
/// assert_eq!(plan.terminate, [0]);
/// assert_eq!(plan.start, [0, 1, 2]);
/// ```
///
/// [`add_restart`]: super::intensity::RestartIntensity::add_restart
pub fn retry_plan(strategy: Strategy, children: &[ChildView], failed_start: usize) -> RestartPlan {
    restart_plan(strategy, children, failed_start)
}

/// How a whole supervisor stops its children: on shutdown, on giving up
/// (intensity exceeded), on auto-shutdown, and when `init` fails partway
/// (then only the children started so far are `Running`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ShutdownPlan {
    /// Terminate these running children one at a time, in this order
    /// (reverse start order), each with its own shutdown spec and its own
    /// timeout, its DOWN seen before the next one is signalled (OTP.md
    /// §1.8).
    Sequential(Vec<usize>),
    /// `simple_one_for_one`: signal all these running children at once
    /// (`kill` if the template is `brutal_kill`, otherwise `shutdown`), then
    /// one timer of the template's timeout kills the stragglers.
    Simultaneous(Vec<usize>),
}

impl ShutdownPlan {
    /// The children to terminate, whatever the order.
    pub fn children(&self) -> &[usize] {
        match self {
            ShutdownPlan::Sequential(v) | ShutdownPlan::Simultaneous(v) => v,
        }
    }
}

/// The shutdown order of a whole supervisor: its running children in reverse
/// start order, or all at once under `simple_one_for_one`. Children with no
/// process (stopped, or a pending retry, which the supervisor cancels) are
/// not in the plan.
///
/// ```
/// use pool_proto::{Restart, Strategy};
/// use supervisor::supervisor::strategy::{shutdown_plan, ChildState, ChildView, ShutdownPlan};
///
/// let run = ChildView::new(Restart::Permanent, ChildState::Running);
/// let stopped = ChildView::new(Restart::Permanent, ChildState::Stopped);
/// assert_eq!(
///     shutdown_plan(Strategy::OneForOne, &[run, stopped, run, run]),
///     ShutdownPlan::Sequential(vec![3, 2, 0])
/// );
/// ```
pub fn shutdown_plan(strategy: Strategy, children: &[ChildView]) -> ShutdownPlan {
    let running = children
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, c)| c.is_running())
        .map(|(i, _)| i);
    match strategy {
        Strategy::SimpleOneForOne => ShutdownPlan::Simultaneous(running.rev().collect()),
        _ => ShutdownPlan::Sequential(running.collect()),
    }
}

#[cfg(test)]
mod tests;
