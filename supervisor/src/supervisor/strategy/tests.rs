//! Unit tests of the supervisor decisions: one test per row or rule of
//! OTP.md §1.4 (restart type × exit reason), §1.5 (strategies and order),
//! §1.7 (start failure during a restart), §1.8 (shutdown order), §1.9
//! (auto_shutdown), with the probe orderings replayed as event logs. Spec
//! validation (§1.1/§1.2) lives in pool-proto and is tested there
//! (`pool-proto/src/tree/validate/tests.rs`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pool_proto::{AutoShutdown, ExitReason, Restart, Strategy};

use super::*;
use crate::supervisor::intensity::RestartIntensity;

use ChildState::{Restarting, Running, Stopped};
use Restart::{Permanent, Temporary, Transient};

fn v(restart: Restart, state: ChildState) -> ChildView {
    ChildView::new(restart, state)
}

fn sig(restart: Restart, state: ChildState) -> ChildView {
    ChildView {
        significant: true,
        ..ChildView::new(restart, state)
    }
}

fn clean_reasons() -> Vec<ExitReason> {
    vec![
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("done".into()),
    ]
}

fn abnormal_reasons() -> Vec<ExitReason> {
    vec![
        ExitReason::Killed,
        ExitReason::Kill,
        ExitReason::NoProc,
        ExitReason::NoConnection,
        ExitReason::Panic("boom".into()),
        ExitReason::Error("bad input".into()),
    ]
}

fn exit(restart: Restart, reason: &ExitReason) -> ExitDecision {
    on_child_exit(
        Strategy::OneForOne,
        AutoShutdown::Never,
        &[v(restart, Running)],
        0,
        reason,
    )
}

// ---- §1.4 restart type versus exit reason -------------------------------

/// §1.4, column permanent: restarted whatever the reason, and always
/// reported (OTP reports a permanent child's `normal` exit too).
#[test]
fn permanent_child_is_restarted_on_every_reason() {
    for r in clean_reasons().iter().chain(&abnormal_reasons()) {
        let d = exit(Permanent, r);
        assert_eq!(d.action, ExitAction::Restart, "{r}");
        assert!(d.report, "{r}");
        assert!(!d.auto_shutdown);
    }
}

/// §1.4 rows normal / shutdown / {shutdown, Term}, column transient: no
/// restart, spec kept with no process, nothing reported.
#[test]
fn transient_child_clean_exit_keeps_spec_stopped() {
    for r in clean_reasons() {
        let d = exit(Transient, &r);
        assert_eq!(d.action, ExitAction::KeepStopped, "{r}");
        assert!(!d.report, "{r}");
    }
}

/// §1.4 row "anything else", column transient: restarted and reported;
/// `noconnection` (the node went down) and `kill` are abnormal.
#[test]
fn transient_child_abnormal_exit_is_restarted() {
    for r in abnormal_reasons() {
        let d = exit(Transient, &r);
        assert_eq!(d.action, ExitAction::Restart, "{r}");
        assert!(d.report, "{r}");
    }
}

/// §1.4 column temporary: the spec is removed whatever the reason; only an
/// abnormal exit is reported.
#[test]
fn temporary_child_spec_is_removed_on_every_reason() {
    for r in clean_reasons() {
        let d = exit(Temporary, &r);
        assert_eq!((d.action, d.report), (ExitAction::Remove, false), "{r}");
    }
    for r in abnormal_reasons() {
        let d = exit(Temporary, &r);
        assert_eq!((d.action, d.report), (ExitAction::Remove, true), "{r}");
    }
}

/// §1.11: under simple_one_for_one, a transient child that exits normally is
/// removed (dynamic specs are never kept stopped); one that crashes is
/// restarted.
#[test]
fn simple_one_for_one_transient_clean_exit_removes_child() {
    let kids = [v(Transient, Running)];
    let sofo = |r: &ExitReason| {
        on_child_exit(Strategy::SimpleOneForOne, AutoShutdown::Never, &kids, 0, r).action
    };
    assert_eq!(sofo(&ExitReason::Normal), ExitAction::Remove);
    assert_eq!(sofo(&ExitReason::Killed), ExitAction::Restart);
}

/// §1.3 / §1.11: `ignore` at start keeps a permanent or transient spec
/// stopped, drops a temporary one, and stores nothing under
/// simple_one_for_one.
#[test]
fn start_ignored_keeps_or_drops_spec() {
    assert_eq!(
        on_start_ignored(Strategy::OneForOne, Permanent),
        ExitAction::KeepStopped
    );
    assert_eq!(
        on_start_ignored(Strategy::OneForAll, Transient),
        ExitAction::KeepStopped
    );
    assert_eq!(
        on_start_ignored(Strategy::RestForOne, Temporary),
        ExitAction::Remove
    );
    for r in [Permanent, Transient, Temporary] {
        assert_eq!(
            on_start_ignored(Strategy::SimpleOneForOne, r),
            ExitAction::Remove
        );
    }
}

/// §1.4 / §1.10: `terminate_child` keeps the spec except for a temporary
/// child (then `restart_child` gives not_found) and simple_one_for_one.
#[test]
fn terminate_child_keeps_spec_except_temporary() {
    assert_eq!(
        on_terminated_by_api(Strategy::OneForOne, Permanent),
        ExitAction::KeepStopped
    );
    assert_eq!(
        on_terminated_by_api(Strategy::OneForOne, Transient),
        ExitAction::KeepStopped
    );
    assert_eq!(
        on_terminated_by_api(Strategy::OneForOne, Temporary),
        ExitAction::Remove
    );
    assert_eq!(
        on_terminated_by_api(Strategy::SimpleOneForOne, Permanent),
        ExitAction::Remove
    );
}

// ---- §1.5 strategies and ordering ----------------------------------------

/// one_for_one: only the failed child is restarted; the others keep their
/// processes.
#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let kids = [v(Permanent, Running); 4];
    let plan = restart_plan(Strategy::OneForOne, &kids, 2);
    assert_eq!(
        plan,
        RestartPlan {
            terminate: vec![],
            remove: vec![],
            start: vec![2]
        }
    );
}

/// one_for_all probe: A, B, C started in that order, B crashing: stopped C,
/// stopped A, started A, started B, started C.
#[test]
fn one_for_all_probe_order() {
    let kids = [v(Permanent, Running); 3];
    let plan = restart_plan(Strategy::OneForAll, &kids, 1);
    assert_eq!(plan.terminate, [2, 0]);
    assert_eq!(plan.start, [0, 1, 2]);
    assert!(plan.remove.is_empty());
}

/// rest_for_one probe: A, B, C, D, B crashing: stopped D, stopped C, started
/// B, started C, started D; A untouched.
#[test]
fn rest_for_one_probe_order() {
    let kids = [v(Permanent, Running); 4];
    let plan = restart_plan(Strategy::RestForOne, &kids, 1);
    assert_eq!(plan.terminate, [3, 2]);
    assert_eq!(plan.start, [1, 2, 3]);
}

/// simple_one_for_one: a failed child is restarted; nothing happens to the
/// other children.
#[test]
fn simple_one_for_one_restarts_only_the_failed_child() {
    let kids = [v(Transient, Running); 3];
    let plan = restart_plan(Strategy::SimpleOneForOne, &kids, 0);
    assert_eq!(
        plan,
        RestartPlan {
            terminate: vec![],
            remove: vec![],
            start: vec![0]
        }
    );
}

/// Group restart probe: B stopped with terminate_child, then A crashed under
/// one_for_all: stop C, start A, start B, start C. Children stopped by the
/// API come back running.
#[test]
fn one_for_all_restarts_children_terminated_by_api() {
    let kids = [
        v(Permanent, Running),
        v(Permanent, Stopped),
        v(Permanent, Running),
    ];
    let plan = restart_plan(Strategy::OneForAll, &kids, 0);
    assert_eq!(plan.terminate, [2]);
    assert_eq!(plan.start, [0, 1, 2]);
}

/// `suite:tree`: a transient child stopped (by terminate_child, by a normal
/// exit, or by ignore) is started again by a group restart, under
/// one_for_all and in the tail of rest_for_one; a stopped child before the
/// failed one in rest_for_one stays stopped.
#[test]
fn group_restart_starts_every_non_temporary_child_of_the_group() {
    let kids = [
        v(Transient, Stopped),
        v(Permanent, Running),
        v(Transient, Stopped),
        v(Permanent, Running),
    ];
    let all = restart_plan(Strategy::OneForAll, &kids, 1);
    assert_eq!(all.terminate, [3]);
    assert_eq!(all.start, [0, 1, 2, 3]);
    let rest = restart_plan(Strategy::RestForOne, &kids, 1);
    assert_eq!(rest.terminate, [3]);
    assert_eq!(rest.start, [1, 2, 3]);
}

/// `suite:temporary_bystander`: a temporary child terminated as a bystander
/// in one_for_all or rest_for_one is not restarted; its spec is removed. A
/// temporary child before the failed one in rest_for_one is untouched.
#[test]
fn temporary_bystander_is_terminated_and_dropped() {
    let kids = [
        v(Temporary, Running),
        v(Permanent, Running),
        v(Temporary, Running),
        v(Permanent, Running),
    ];
    let all = restart_plan(Strategy::OneForAll, &kids, 1);
    assert_eq!(all.terminate, [3, 2, 0]);
    assert_eq!(all.remove, [2, 0]);
    assert_eq!(all.start, [1, 3]);

    let rest = restart_plan(Strategy::RestForOne, &kids, 1);
    assert_eq!(rest.terminate, [3, 2]);
    assert_eq!(rest.remove, [2]);
    assert_eq!(rest.start, [1, 3]);
}

/// Under one_for_all, a temporary child that exits, or a transient child that
/// exits normally, triggers no restart of its siblings and counts nothing
/// (probe with intensity 0: the supervisor survived).
#[test]
fn one_for_all_non_restarted_exit_touches_no_sibling() {
    let kids = [
        v(Permanent, Running),
        v(Temporary, Running),
        v(Transient, Running),
    ];
    let temp = on_child_exit(
        Strategy::OneForAll,
        AutoShutdown::Never,
        &kids,
        1,
        &ExitReason::Killed,
    );
    assert_eq!(temp.action, ExitAction::Remove);
    let trans = on_child_exit(
        Strategy::OneForAll,
        AutoShutdown::Never,
        &kids,
        2,
        &ExitReason::Normal,
    );
    assert_eq!(trans.action, ExitAction::KeepStopped);
    // Neither is a Restart, so the supervisor never calls add_restart: an
    // intensity-0 window is never consulted and the supervisor survives.
}

// ---- §1.8 shutdown order ---------------------------------------------------

/// The whole supervisor stops its running children in reverse start order,
/// sequentially (probe A, B, C, D: DOWNs of D, C, B, A); stopped and
/// restarting children have no process to stop.
#[test]
fn shutdown_is_reverse_start_order() {
    let kids = [
        v(Permanent, Running),
        v(Permanent, Running),
        v(Transient, Stopped),
        v(Permanent, Restarting),
        v(Temporary, Running),
    ];
    assert_eq!(
        shutdown_plan(Strategy::OneForOne, &kids),
        ShutdownPlan::Sequential(vec![4, 1, 0])
    );
    assert_eq!(
        shutdown_plan(Strategy::RestForOne, &kids).children(),
        [4, 1, 0]
    );
}

/// simple_one_for_one: all children are signalled at once.
#[test]
fn simple_one_for_one_shutdown_is_simultaneous() {
    let kids = [
        v(Transient, Running),
        v(Transient, Restarting),
        v(Transient, Running),
    ];
    assert_eq!(
        shutdown_plan(Strategy::SimpleOneForOne, &kids),
        ShutdownPlan::Simultaneous(vec![0, 2])
    );
}

/// §1.3: a start failure during init terminates the children already started
/// in reverse start order (probe: A and B started, C failed: B stopped, then
/// A; D never started).
#[test]
fn init_failure_stops_started_children_in_reverse() {
    let kids = [
        v(Permanent, Running),
        v(Permanent, Running),
        v(Permanent, Stopped),
        v(Permanent, Stopped),
    ];
    assert_eq!(
        shutdown_plan(Strategy::OneForOne, &kids),
        ShutdownPlan::Sequential(vec![1, 0])
    );
}

// ---- §1.6 / §1.7 replayed with a tiny driver --------------------------------

/// Drives the decisions as the supervisor process would, recording events,
/// for a child `crashed` that crashes with `killed`. `fails` holds the
/// children whose start always fails. Returns the event log.
fn replay(
    strategy: Strategy,
    names: &[&str],
    intensity: u32,
    crashed: usize,
    fails: &HashSet<&str>,
) -> Vec<String> {
    let mut kids: Vec<ChildView> = names.iter().map(|_| v(Permanent, Running)).collect();
    let mut window = RestartIntensity::new(intensity, Duration::from_secs(5));
    let now = Instant::now();
    let mut log = Vec::new();

    kids[crashed].state = Stopped;
    let decision = on_child_exit(
        strategy,
        AutoShutdown::Never,
        &kids,
        crashed,
        &ExitReason::Killed,
    );
    assert_eq!(decision.action, ExitAction::Restart);
    let mut plan = restart_plan(strategy, &kids, crashed);
    loop {
        if !window.add_restart(now) {
            log.push("limit".to_owned());
            if let ShutdownPlan::Sequential(order) = shutdown_plan(strategy, &kids) {
                for i in order {
                    kids[i].state = Stopped;
                    log.push(format!("stop {}", names[i]));
                }
            }
            log.push("exit shutdown".to_owned());
            return log;
        }
        for &i in &plan.terminate {
            kids[i].state = Stopped;
            log.push(format!("stop {}", names[i]));
        }
        let mut failed = None;
        for &i in &plan.start {
            if fails.contains(names[i]) {
                kids[i].state = Restarting;
                log.push(format!("{} fails", names[i]));
                failed = Some(i);
                break;
            }
            kids[i].state = Running;
            log.push(format!("start {}", names[i]));
        }
        match failed {
            None => return log,
            Some(j) => plan = retry_plan(strategy, &kids, j),
        }
    }
}

/// §1.7 one_for_all probe: intensity 2, C crashing, B always failing to
/// start: stop B, stop A, start A, B fails; stop A, start A, B fails; limit
/// reached; stop A; exit shutdown.
#[test]
fn one_for_all_retry_terminates_restarted_siblings_and_starts_from_the_top() {
    let fails = HashSet::from(["B"]);
    let log = replay(Strategy::OneForAll, &["A", "B", "C"], 2, 2, &fails);
    assert_eq!(
        log,
        [
            "stop B",
            "stop A",
            "start A",
            "B fails", //
            "stop A",
            "start A",
            "B fails", //
            "limit",
            "stop A",
            "exit shutdown"
        ]
    );
}

/// §1.7 one_for_one: the retry restarts only the failed child, and counts:
/// with intensity 3, 1 crash and 3 failed attempts take the supervisor down.
#[test]
fn one_for_one_retry_restarts_only_the_failed_child_and_counts() {
    let fails = HashSet::from(["B"]);
    let log = replay(Strategy::OneForOne, &["A", "B", "C"], 3, 1, &fails);
    assert_eq!(
        log,
        [
            "B fails",
            "B fails",
            "B fails",
            "limit",
            "stop C",
            "stop A",
            "exit shutdown"
        ]
    );
}

/// §1.7 rest_for_one (`suite:rest_for_one_other_child_fails_restart`): the
/// retry restarts from the failed child onward; siblings restarted before it
/// in the same round are not restarted again.
#[test]
fn rest_for_one_retry_restarts_from_the_failed_child_onward() {
    let kids = [
        v(Permanent, Running),
        v(Permanent, Running),
        v(Permanent, Restarting),
        v(Permanent, Stopped),
    ];
    let plan = retry_plan(Strategy::RestForOne, &kids, 2);
    assert_eq!(
        plan,
        RestartPlan {
            terminate: vec![],
            remove: vec![],
            start: vec![2, 3]
        }
    );

    let fails = HashSet::from(["C"]);
    let log = replay(Strategy::RestForOne, &["A", "B", "C", "D"], 2, 1, &fails);
    assert_eq!(
        log,
        [
            "stop D",
            "stop C",
            "start B",
            "C fails", // first round
            "C fails", // retry from C: B kept
            "limit",
            "stop B",
            "stop A",
            "exit shutdown"
        ]
    );
}

/// §1.7 one_for_all retry plan from a state: the siblings running again are
/// terminated in reverse start order, stopped ones are not, and the whole
/// group starts from the top.
#[test]
fn one_for_all_retry_plan_from_state() {
    let kids = [
        v(Permanent, Running),
        v(Transient, Running),
        v(Permanent, Restarting),
        v(Permanent, Stopped),
    ];
    let plan = retry_plan(Strategy::OneForAll, &kids, 2);
    assert_eq!(plan.terminate, [1, 0]);
    assert_eq!(plan.start, [0, 1, 2, 3]);
}

/// §1.7 one_for_one / simple_one_for_one: retry just that child.
#[test]
fn one_for_one_retry_plan_is_just_the_child() {
    let kids = [v(Permanent, Running), v(Permanent, Restarting)];
    for s in [Strategy::OneForOne, Strategy::SimpleOneForOne] {
        assert_eq!(retry_plan(s, &kids, 1).start, [1]);
        assert!(retry_plan(s, &kids, 1).terminate.is_empty());
    }
}

// ---- §1.9 auto_shutdown ------------------------------------------------------

fn auto(a: AutoShutdown, kids: &[ChildView], i: usize, r: ExitReason) -> ExitDecision {
    on_child_exit(Strategy::OneForOne, a, kids, i, &r)
}

/// any_significant: a significant transient child exiting normal, shutdown
/// or {shutdown, _} triggers (`suite:significant_transient`).
#[test]
fn any_significant_transient_clean_exit_triggers() {
    let kids = [v(Permanent, Running), sig(Transient, Running)];
    for r in clean_reasons() {
        let d = auto(AutoShutdown::AnySignificant, &kids, 1, r);
        assert_eq!((d.action, d.auto_shutdown), (ExitAction::KeepStopped, true));
    }
}

/// any_significant: a significant temporary child exiting for any reason
/// triggers (`suite:significant_temporary`).
#[test]
fn any_significant_temporary_any_exit_triggers() {
    let kids = [sig(Temporary, Running)];
    for r in clean_reasons().into_iter().chain(abnormal_reasons()) {
        let d = auto(AutoShutdown::AnySignificant, &kids, 0, r);
        assert_eq!((d.action, d.auto_shutdown), (ExitAction::Remove, true));
    }
}

/// Not a trigger: a significant transient child that crashes is restarted.
#[test]
fn significant_transient_crash_restarts_without_trigger() {
    let kids = [sig(Transient, Running)];
    for a in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
        let d = auto(a, &kids, 0, ExitReason::Killed);
        assert_eq!((d.action, d.auto_shutdown), (ExitAction::Restart, false));
    }
}

/// Not a trigger: a non-significant child, or any child under
/// auto_shutdown = never.
#[test]
fn non_significant_or_never_does_not_trigger() {
    let kids = [v(Transient, Running), v(Temporary, Running)];
    assert!(!auto(AutoShutdown::AnySignificant, &kids, 0, ExitReason::Normal).auto_shutdown);
    assert!(!auto(AutoShutdown::AllSignificant, &kids, 1, ExitReason::Normal).auto_shutdown);
    let kids = [sig(Transient, Running)];
    assert!(!auto(AutoShutdown::Never, &kids, 0, ExitReason::Normal).auto_shutdown);
}

/// all_significant: the supervisor shuts down only when the trigger leaves
/// no significant child running; non-significant children do not matter.
#[test]
fn all_significant_waits_for_the_last_significant_child() {
    let kids = [
        sig(Transient, Running),
        v(Permanent, Running),
        sig(Temporary, Running),
    ];
    assert!(!auto(AutoShutdown::AllSignificant, &kids, 0, ExitReason::Normal).auto_shutdown);
    let kids = [
        sig(Transient, Stopped),
        v(Permanent, Running),
        sig(Temporary, Running),
    ];
    assert!(auto(AutoShutdown::AllSignificant, &kids, 2, ExitReason::Normal).auto_shutdown);
}

/// all_significant: a significant child whose restart is pending still
/// counts as present (OTP only skips pid `undefined`).
#[test]
fn all_significant_counts_restarting_children_as_present() {
    let kids = [sig(Transient, Restarting), sig(Transient, Running)];
    assert!(!auto(AutoShutdown::AllSignificant, &kids, 1, ExitReason::Normal).auto_shutdown);
}

/// Not a trigger: significant children terminated as bystanders or by
/// terminate_child. Those paths never go through `on_child_exit`; the plans
/// and the API decision carry no trigger at all.
#[test]
fn bystanders_and_terminate_child_are_not_triggers() {
    let kids = [sig(Transient, Running), v(Permanent, Running)];
    let plan = restart_plan(Strategy::OneForAll, &kids, 1);
    assert_eq!(plan.terminate, [0]);
    assert_eq!(plan.start, [0, 1]);
    assert_eq!(
        on_terminated_by_api(Strategy::OneForAll, Transient),
        ExitAction::KeepStopped
    );
}
