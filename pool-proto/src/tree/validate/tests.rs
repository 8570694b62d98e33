//! Unit tests of spec validation: one test per rule of OTP.md §1.1, §1.2
//! and §1.9 that a spec can break, and the field paths and messages of the
//! errors.

use serde_json::Value;

use super::*;
use crate::duration::Dur;

use Restart::{Temporary, Transient};

fn worker(id: &str) -> ChildSpecData {
    ChildSpecData::worker(id, "builtin.echo", Value::Null)
}

fn sup(strategy: Strategy, children: Vec<ChildSpecData>) -> SupervisorSpec {
    SupervisorSpec {
        children,
        ..SupervisorSpec::new("root", strategy)
    }
}

/// A correct tree with a nested supervisor and significant children passes.
#[test]
fn valid_tree_passes() {
    let mut inner = sup(Strategy::OneForAll, vec![worker("x")]);
    inner.id = String::new();
    inner.auto_shutdown = AutoShutdown::AllSignificant;
    inner.children[0].significant = true;
    inner.children[0].restart = Temporary;
    let tree = TreeSpec {
        supervisor: sup(
            Strategy::RestForOne,
            vec![worker("a"), ChildSpecData::supervisor("b", inner)],
        ),
    };
    assert_eq!(validate_tree(&tree), Ok(()));
}

/// The root needs an id.
#[test]
fn root_without_id_is_refused() {
    let mut tree = TreeSpec {
        supervisor: sup(Strategy::OneForOne, vec![worker("a")]),
    };
    tree.supervisor.id = " ".into();
    assert_eq!(validate_tree(&tree), Err(SpecError::MissingSupervisorId));
    assert_eq!(SpecError::MissingSupervisorId.field(), "id");
}

/// OTP `{invalid_period, 0}`.
#[test]
fn zero_period_is_refused() {
    let mut s = sup(Strategy::OneForOne, vec![]);
    s.period = Dur::from_millis(0);
    assert_eq!(validate_supervisor(&s), Err(SpecError::InvalidPeriod));
}

/// `{duplicate_child_name, Id}`, reported on the second child.
#[test]
fn duplicate_child_id_is_refused() {
    let s = sup(
        Strategy::OneForOne,
        vec![worker("a"), worker("b"), worker("a")],
    );
    let e = validate_supervisor(&s).unwrap_err();
    assert_eq!(
        e,
        SpecError::DuplicateChildId {
            index: 2,
            id: "a".into(),
            first: 0
        }
    );
    assert_eq!(e.field(), "children[2].id");
}

/// The same id in different supervisors is fine: ids are unique among
/// siblings only.
#[test]
fn same_id_in_different_supervisors_is_allowed() {
    let inner = sup(Strategy::OneForOne, vec![worker("a")]);
    let mut inner = inner;
    inner.id = String::new();
    let s = sup(
        Strategy::OneForOne,
        vec![worker("a"), ChildSpecData::supervisor("b", inner)],
    );
    assert_eq!(validate_supervisor(&s), Ok(()));
}

/// `missing_id`.
#[test]
fn child_without_id_is_refused() {
    let s = sup(Strategy::OneForOne, vec![worker("")]);
    assert_eq!(
        validate_supervisor(&s),
        Err(SpecError::MissingChildId { index: 0 })
    );
}

/// simple_one_for_one needs exactly one child spec (`bad_start_spec`).
#[test]
fn simple_one_for_one_needs_exactly_one_child() {
    for n in [0usize, 2] {
        let s = sup(
            Strategy::SimpleOneForOne,
            (0..n).map(|i| worker(&format!("w{i}"))).collect(),
        );
        assert_eq!(
            validate_supervisor(&s),
            Err(SpecError::SimpleOneForOneChildCount { count: n })
        );
    }
    assert_eq!(
        validate_supervisor(&sup(Strategy::SimpleOneForOne, vec![worker("w")])),
        Ok(())
    );
}

/// Current OTP rejects simple_one_for_one with auto_shutdown =/= never
/// (`suite:significant_simple`).
#[test]
fn simple_one_for_one_with_auto_shutdown_is_refused() {
    for a in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
        let mut s = sup(Strategy::SimpleOneForOne, vec![worker("w")]);
        s.auto_shutdown = a;
        let e = validate_supervisor(&s).unwrap_err();
        assert_eq!(
            e,
            SpecError::SimpleOneForOneAutoShutdown { auto_shutdown: a }
        );
        assert_eq!(e.field(), "auto_shutdown");
    }
}

/// `{bad_combination, [{auto_shutdown, never}, {significant, true}]}`.
#[test]
fn significant_under_never_is_refused() {
    let mut c = worker("a");
    c.restart = Transient;
    c.significant = true;
    let e = validate_supervisor(&sup(Strategy::OneForOne, vec![c])).unwrap_err();
    assert_eq!(
        e,
        SpecError::SignificantWithoutAutoShutdown {
            index: 0,
            id: "a".into()
        }
    );
    assert_eq!(e.field(), "children[0].significant");
}

/// `{bad_combination, [{restart, permanent}, {significant, true}]}`.
#[test]
fn significant_permanent_is_refused() {
    let mut c = worker("a");
    c.significant = true;
    let mut s = sup(Strategy::OneForOne, vec![c]);
    s.auto_shutdown = AutoShutdown::AnySignificant;
    assert_eq!(
        validate_supervisor(&s),
        Err(SpecError::SignificantPermanent {
            index: 0,
            id: "a".into()
        })
    );
}

/// `missing_start`: a child needs a function or a supervisor; not both, and
/// not an empty function name.
#[test]
fn child_needs_exactly_one_of_function_and_supervisor() {
    let mut neither = worker("a");
    neither.function = None;
    let e = validate_child(AutoShutdown::Never, 3, &neither).unwrap_err();
    assert_eq!(
        e,
        SpecError::MissingStart {
            index: 3,
            id: "a".into()
        }
    );
    assert_eq!(e.field(), "children[3]");

    let mut both = worker("a");
    both.supervisor = Some(SupervisorSpec::new("", Strategy::OneForOne));
    let e = validate_child(AutoShutdown::Never, 0, &both).unwrap_err();
    assert_eq!(
        e,
        SpecError::FunctionAndSupervisor {
            index: 0,
            id: "a".into()
        }
    );

    let empty = ChildSpecData::worker("a", "", Value::Null);
    assert!(matches!(
        validate_child(AutoShutdown::Never, 0, &empty),
        Err(SpecError::EmptyFunction { .. })
    ));
}

/// A nested supervisor takes no args, and its own id, if given, must be its
/// child entry's.
#[test]
fn nested_supervisor_args_and_id_are_checked() {
    let mut c = ChildSpecData::supervisor("s", SupervisorSpec::new("", Strategy::OneForOne));
    c.args = serde_json::json!({"x": 1});
    assert!(matches!(
        validate_child(AutoShutdown::Never, 0, &c),
        Err(SpecError::ArgsOnSupervisor { .. })
    ));
    let c = ChildSpecData::supervisor("s", SupervisorSpec::new("other", Strategy::OneForOne));
    let e = validate_child(AutoShutdown::Never, 0, &c).unwrap_err();
    assert_eq!(e.field(), "children[0].supervisor.id");
    let c = ChildSpecData::supervisor("s", SupervisorSpec::new("s", Strategy::OneForOne));
    assert_eq!(validate_child(AutoShutdown::Never, 0, &c), Ok(()));
}

/// Errors inside nested supervisors carry the path down to the field, and
/// the message names the nested supervisor.
#[test]
fn nested_errors_carry_their_path() {
    let mut deep_child = worker("x");
    deep_child.significant = true;
    deep_child.restart = Transient;
    let deep = sup(Strategy::OneForOne, vec![worker("ok"), deep_child]);
    let mut deep = deep;
    deep.id = String::new();
    let mid = SupervisorSpec {
        id: String::new(),
        ..sup(
            Strategy::OneForAll,
            vec![ChildSpecData::supervisor("deep", deep)],
        )
    };
    let root = sup(
        Strategy::OneForOne,
        vec![worker("a"), ChildSpecData::supervisor("mid", mid)],
    );
    let e = validate_supervisor(&root).unwrap_err();
    assert_eq!(
        e.field(),
        "children[1].supervisor.children[0].supervisor.children[1].significant"
    );
    assert!(matches!(
        e.root_cause(),
        SpecError::SignificantWithoutAutoShutdown { .. }
    ));
    assert!(e.to_string().starts_with(
        "in nested supervisor \"mid\": in nested supervisor \"deep\": bad combination"
    ));
}

/// Messages say what is wrong and what to do.
#[test]
fn messages_say_what_to_do() {
    let e = SpecError::DuplicateChildId {
        index: 2,
        id: "a".into(),
        first: 0,
    };
    assert_eq!(
        e.to_string(),
        "duplicate child id \"a\": children[0] already uses it; ids must be unique among siblings, so rename one of them"
    );
    let e = SpecError::SimpleOneForOneAutoShutdown {
        auto_shutdown: AutoShutdown::AnySignificant,
    };
    assert!(
        e.to_string().contains("auto_shutdown = any_significant"),
        "{e}"
    );
}
