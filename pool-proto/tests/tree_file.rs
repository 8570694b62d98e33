//! Tree files (DESIGN.md "Supervision"): a valid file parses to the expected
//! `TreeSpec` and round-trips; every kind of bad file is refused with an
//! error that names the file, the line and column, and the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pool_proto::tree::{
    Position, Problem, SpecError, TreeFileError, parse_tree_file, parse_tree_str, tree_to_toml,
};
use pool_proto::{
    AutoShutdown, ChildSpecData, Dur, Placement, Restart, Shutdown, Strategy, SupervisorSpec,
    TreeSpec,
};
use serde_json::json;

/// The registry used by these tests: the stock worker's built-ins.
fn known(f: &str) -> bool {
    matches!(
        f,
        "builtin.echo" | "builtin.sleep" | "builtin.busy" | "builtin.crash" | "builtin.counter"
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Parses inline text that must be refused.
fn refuse(text: &str) -> TreeFileError {
    match parse_tree_str("tree.toml", text, known) {
        Ok(tree) => panic!("accepted a bad tree: {tree:#?}"),
        Err(e) => e,
    }
}

/// Line and column of an error.
fn at(e: &TreeFileError) -> (u32, u32) {
    let p = e.position.expect("error has a position");
    (p.line, p.column)
}

/// The spec error inside a refused tree.
fn spec_error(e: &TreeFileError) -> &SpecError {
    match &e.problem {
        Problem::Spec(s) => s,
        other => panic!("expected a spec error, got {other:?}"),
    }
}

fn full_spec() -> TreeSpec {
    let mut parser = ChildSpecData::worker(
        "parser",
        "builtin.echo",
        json!({"greeting": "hi", "n": 42, "ratio": 0.5, "on": true,
               "tags": ["a", "b"], "nested": {"deep": [1, 2]}}),
    );
    parser.shutdown = Some(Shutdown::Timeout(Duration::from_secs(5)));
    parser.placement = Some(Placement::LeastLoaded);

    let mut local = ChildSpecData::worker("local-one", "builtin.sleep", json!({"ms": 100}));
    local.restart = Restart::Transient;
    local.significant = true;
    local.shutdown = Some(Shutdown::BrutalKill);
    local.placement = Some(Placement::Local);

    let mut pinned = ChildSpecData::worker("pinned", "builtin.counter", json!(null));
    pinned.restart = Restart::Temporary;
    pinned.shutdown = Some(Shutdown::Infinity);
    pinned.placement = Some(Placement::Node("w2".into()));

    let mut keyed = ChildSpecData::worker("keyed", "builtin.echo", json!({}));
    keyed.shutdown = Some(Shutdown::Timeout(Duration::from_millis(250)));
    keyed.placement = Some(Placement::Key("user:42".into()));

    let mut labelled = ChildSpecData::worker("labelled", "builtin.busy", json!(null));
    labelled.placement = Some(Placement::Label("zone=a,disk=ssd".into()));

    let mut sinks_sup = SupervisorSpec::new("", Strategy::OneForAll);
    sinks_sup.intensity = 0;
    sinks_sup.period = Dur::from_secs(60);
    sinks_sup
        .children
        .push(ChildSpecData::worker("sink-a", "builtin.echo", json!(null)));
    let mut sink_b = ChildSpecData::worker("sink-b", "builtin.echo", json!(null));
    sink_b.restart = Restart::Temporary;
    sinks_sup.children.push(sink_b);
    let mut sinks = ChildSpecData::supervisor("sinks", sinks_sup);
    sinks.restart = Restart::Transient;

    let mut pool_sup = SupervisorSpec::new("pool", Strategy::SimpleOneForOne);
    let mut job = ChildSpecData::worker(
        "job",
        "builtin.crash",
        json!({"after_ms": 10, "reason": "boom"}),
    );
    job.restart = Restart::Transient;
    pool_sup.children.push(job);
    let mut pool = ChildSpecData::supervisor("pool", pool_sup);
    pool.shutdown = Some(Shutdown::Timeout(Duration::from_secs(30)));

    let mut root = SupervisorSpec::new("ingest", Strategy::RestForOne);
    root.intensity = 3;
    root.period = Dur::from_secs(10);
    root.auto_shutdown = AutoShutdown::AnySignificant;
    root.children = vec![parser, local, pinned, keyed, labelled, sinks, pool];
    TreeSpec { supervisor: root }
}

// ---- valid files --------------------------------------------------------------

/// A file using every field (nested supervisors inline and as sections,
/// every placement form, every shutdown form, args as an inline table)
/// parses to exactly the expected spec.
#[test]
fn full_file_parses_to_expected_spec() {
    let tree = parse_tree_file(&fixture("full.toml"), known).unwrap();
    assert_eq!(tree, full_spec());
}

/// The minimal file: only the root id; every flag takes OTP's default.
#[test]
fn minimal_file_takes_otp_defaults() {
    let tree = parse_tree_str("min.toml", "[supervisor]\nid = \"app\"\n", known).unwrap();
    assert_eq!(
        tree.supervisor,
        SupervisorSpec::new("app", Strategy::OneForOne)
    );
}

/// The children may also be written as an inline array of inline tables,
/// and dotted keys work as in any TOML.
#[test]
fn inline_children_and_dotted_keys_parse() {
    let text = r#"
supervisor.id = "app"
supervisor.children = [
  { id = "a", function = "builtin.echo", placement.node = "w1" },
]
"#;
    let tree = parse_tree_str("t.toml", text, known).unwrap();
    assert_eq!(
        tree.supervisor.children[0].placement,
        Some(Placement::Node("w1".into()))
    );
}

/// `tree_to_toml` writes what `parse_tree_str` reads back to the same tree.
#[test]
fn tree_to_toml_round_trips() {
    let tree = full_spec();
    let text = tree_to_toml(&tree).unwrap();
    assert_eq!(
        parse_tree_str("out.toml", &text, known).unwrap(),
        tree,
        "{text}"
    );
    // Placements and args stay inline on their child.
    assert!(text.contains("placement = { node = \"w2\" }"), "{text}");
    assert!(text.contains("args = { ms = 100 }"), "{text}");
}

/// TOML has no null: a null inside args cannot be written.
#[test]
fn tree_to_toml_refuses_null_inside_args() {
    let mut root = SupervisorSpec::new("app", Strategy::OneForOne);
    root.children.push(ChildSpecData::worker(
        "w",
        "builtin.echo",
        json!({"x": null}),
    ));
    assert!(tree_to_toml(&TreeSpec { supervisor: root }).is_err());
}

// ---- refused files ----------------------------------------------------------------

/// The printed form is one line: file, line, column, field, problem, and
/// what to do.
#[test]
fn error_message_names_file_line_field_and_fix() {
    let e = parse_tree_file(&fixture("bad_strategy.toml"), known).unwrap_err();
    let file = fixture("bad_strategy.toml").display().to_string();
    assert_eq!(
        e.to_string(),
        format!(
            "{file}:3:12: supervisor.strategy: unknown strategy \"one_for_some\": use \"one_for_one\", \"one_for_all\", \"rest_for_one\" or \"simple_one_for_one\""
        )
    );
    assert!(!e.to_string().contains('\n'));
}

/// An unknown strategy is refused at its value.
#[test]
fn unknown_strategy_is_refused() {
    let e = parse_tree_file(&fixture("bad_strategy.toml"), known).unwrap_err();
    assert!(e.file.ends_with("bad_strategy.toml"));
    assert_eq!(e.field, "supervisor.strategy");
    assert_eq!(at(&e), (3, 12));
    assert!(matches!(&e.problem, Problem::UnknownStrategy { value } if value == "one_for_some"));
}

/// Unknown restart and auto_shutdown values are refused too.
#[test]
fn unknown_restart_and_auto_shutdown_are_refused() {
    let e = refuse("[supervisor]\nid = \"a\"\nauto_shutdown = \"sometimes\"\n");
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.auto_shutdown", (3, 17))
    );
    assert!(matches!(e.problem, Problem::UnknownAutoShutdown { .. }));
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"c\"\nfunction = \"builtin.echo\"\nrestart = \"always\"\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].restart", (6, 11))
    );
    assert!(matches!(e.problem, Problem::UnknownRestart { .. }));
}

/// A child with neither function nor supervisor is refused at its entry.
#[test]
fn child_without_function_is_refused() {
    let e = refuse(
        r#"[supervisor]
id = "app"

[[supervisor.children]]
id = "a"
function = "builtin.echo"

[[supervisor.children]]
id = "b"
restart = "transient"
"#,
    );
    assert_eq!(e.field, "supervisor.children[1]");
    assert_eq!(at(&e), (8, 1));
    assert_eq!(
        spec_error(&e),
        &SpecError::MissingStart {
            index: 1,
            id: "b".into()
        }
    );
}

/// A function that no worker registers is refused at its name, after the
/// rest of the file was found correct.
#[test]
fn unknown_function_is_refused() {
    let e = parse_tree_file(&fixture("unknown_function.toml"), known).unwrap_err();
    assert_eq!(e.field, "supervisor.children[1].function");
    assert_eq!(at(&e), (10, 12));
    assert!(matches!(&e.problem, Problem::UnknownFunction { name } if name == "app.write_parquet"));
    assert!(e.to_string().contains("register it"), "{e}");
    // The same file is fine with a registry that knows the function.
    assert!(parse_tree_file(&fixture("unknown_function.toml"), |_| true).is_ok());
}

/// Functions inside nested supervisors are checked too.
#[test]
fn unknown_function_in_nested_supervisor_is_refused() {
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"s\"\nsupervisor = { children = [{ id = \"x\", function = \"nope\" }] }\n",
    );
    assert_eq!(
        e.field,
        "supervisor.children[0].supervisor.children[0].function"
    );
    assert_eq!(at(&e), (5, 51));
}

/// A period that is not a duration is refused; so is a bare number (OTP's
/// period is in seconds, ours needs a unit) and a zero period.
#[test]
fn bad_period_is_refused() {
    let e = refuse("[supervisor]\nid = \"a\"\nperiod = \"10 parsecs\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.period", (3, 10)));
    assert!(matches!(e.problem, Problem::BadDuration { .. }));

    let e = refuse("[supervisor]\nid = \"a\"\nperiod = 10\n");
    assert!(matches!(&e.problem, Problem::DurationWithoutUnit { value } if value == "10"));
    assert!(e.to_string().contains("\"10s\""), "{e}");

    let e = refuse("[supervisor]\nid = \"a\"\nperiod = \"0s\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.period", (3, 10)));
    assert_eq!(spec_error(&e), &SpecError::InvalidPeriod);
}

/// A shutdown that is neither brutal_kill, infinity nor a duration is
/// refused, including negative values (OTP `{invalid_shutdown, -10}`).
#[test]
fn bad_shutdown_is_refused() {
    let child = |shutdown: &str| {
        format!(
            "[supervisor]\nid = \"a\"\n\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nshutdown = {shutdown}\n"
        )
    };
    for bad in ["\"soon\"", "\"-10ms\"", "-10", "true"] {
        let e = refuse(&child(bad));
        assert_eq!(e.field, "supervisor.children[0].shutdown", "{bad}");
        assert_eq!(at(&e), (7, 12), "{bad}");
        assert!(
            matches!(e.problem, Problem::BadShutdown { .. }),
            "{bad}: {e}"
        );
    }
    let e = refuse(&child("5000"));
    assert!(matches!(e.problem, Problem::DurationWithoutUnit { .. }));
}

/// An unknown field is refused at its key, at every level: top level, root
/// supervisor, child, placement table, and nested supervisors written
/// inline or as sections. A close name is suggested.
#[test]
fn unknown_field_is_refused_everywhere() {
    let e = refuse("[supervisor]\nid = \"a\"\n\n[application]\nname = \"x\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("application", (4, 2)));

    let e = refuse("[supervisor]\nid = \"a\"\nintensty = 3\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.intensty", (3, 1)));
    assert!(e.to_string().contains("did you mean `intensity`?"), "{e}");

    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nplacement = { nodes = \"w2\" }\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].placement.nodes", (6, 15))
    );

    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"s\"\nsupervisor = { stratgy = \"one_for_all\" }\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].supervisor.stratgy", (5, 16))
    );

    let e = parse_tree_file(&fixture("nested_unknown_field.toml"), known).unwrap_err();
    assert_eq!(
        e.field,
        "supervisor.children[0].supervisor.children[0].restrat"
    );
    assert_eq!(at(&e), (13, 1));
    match &e.problem {
        Problem::UnknownField { name, expected } => {
            assert_eq!(name, "restrat");
            assert!(expected.contains(&"restart"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("did you mean `restart`?"), "{e}");
}

/// A child id used twice among siblings is refused at the second use; the
/// same id in a nested supervisor is fine.
#[test]
fn duplicate_child_id_is_refused() {
    let e = parse_tree_file(&fixture("duplicate_id.toml"), known).unwrap_err();
    assert_eq!(e.field, "supervisor.children[2].id");
    assert_eq!(at(&e), (14, 6));
    assert_eq!(
        spec_error(&e),
        &SpecError::DuplicateChildId {
            index: 2,
            id: "parser".into(),
            first: 0
        }
    );
}

/// The root supervisor must have an id: refused at the [supervisor] header
/// when it is missing, at the value when it is empty.
#[test]
fn missing_root_id_is_refused() {
    let e = refuse("# app\n[supervisor]\nstrategy = \"one_for_all\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.id", (2, 1)));
    assert_eq!(spec_error(&e), &SpecError::MissingSupervisorId);

    let e = refuse("[supervisor]\nid = \"\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.id", (2, 6)));
}

/// A child without an id is refused at its entry.
#[test]
fn missing_child_id_is_refused() {
    let e = refuse(
        "[supervisor]\nid = \"a\"\n\n[[supervisor.children]]\nfunction = \"builtin.echo\"\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].id", (4, 1))
    );
    assert_eq!(spec_error(&e), &SpecError::MissingChildId { index: 0 });
}

/// A file with no [supervisor] table (or an empty file) is refused.
#[test]
fn missing_supervisor_table_is_refused() {
    for text in ["", "# nothing here\n"] {
        let e = refuse(text);
        assert_eq!((e.field.as_str(), at(&e)), ("supervisor", (1, 1)));
        assert!(matches!(e.problem, Problem::MissingSupervisor));
    }
}

/// A child with both function and supervisor is refused.
#[test]
fn function_and_supervisor_together_are_refused() {
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"x\"\nfunction = \"builtin.echo\"\nsupervisor = { strategy = \"one_for_one\" }\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].supervisor", (6, 14))
    );
    assert!(matches!(
        spec_error(&e),
        SpecError::FunctionAndSupervisor { .. }
    ));
}

/// Every malformed placement is refused with the forms that are allowed.
#[test]
fn bad_placement_is_refused() {
    let child = |placement: &str| {
        format!(
            "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nplacement = {placement}\n"
        )
    };
    let cases = [
        ("\"somewhere\"", "supervisor.children[0].placement", 13),
        ("\"least_loaded\"", "supervisor.children[0].placement", 13),
        ("5", "supervisor.children[0].placement", 13),
        ("{}", "supervisor.children[0].placement", 13),
        (
            "{ node = \"w1\", key = \"k\" }",
            "supervisor.children[0].placement",
            13,
        ),
        (
            "{ node = \"\" }",
            "supervisor.children[0].placement.node",
            22,
        ),
        (
            "{ label = \"zone\" }",
            "supervisor.children[0].placement.label",
            23,
        ),
    ];
    for (placement, field, column) in cases {
        let e = refuse(&child(placement));
        assert_eq!(
            (e.field.as_str(), at(&e)),
            (field, (6, column)),
            "{placement}"
        );
        assert!(
            matches!(e.problem, Problem::BadPlacement { .. }),
            "{placement}: {e}"
        );
        assert!(e.to_string().contains("{ node = \"w2\" }"), "{e}");
    }
    let e = refuse(&child("{ node = 7 }"));
    assert!(matches!(e.problem, Problem::WrongType { .. }));
}

/// simple_one_for_one needs exactly one child spec, at any depth.
#[test]
fn simple_one_for_one_with_other_than_one_child_is_refused() {
    let e = refuse(
        r#"[supervisor]
id = "pool"
strategy = "simple_one_for_one"

[[supervisor.children]]
id = "a"
function = "builtin.echo"

[[supervisor.children]]
id = "b"
function = "builtin.echo"
"#,
    );
    assert_eq!(e.field, "supervisor.children");
    assert_eq!(at(&e), (5, 1));
    assert_eq!(
        spec_error(&e),
        &SpecError::SimpleOneForOneChildCount { count: 2 }
    );

    let e = refuse("[supervisor]\nid = \"pool\"\nstrategy = \"simple_one_for_one\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor.children", (1, 1)));

    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"p\"\nsupervisor = { strategy = \"simple_one_for_one\", children = [] }\n",
    );
    assert_eq!(e.field, "supervisor.children[0].supervisor.children");
    assert_eq!(at(&e), (5, 60));
}

/// Bad significant combinations (OTP bad_combination): significant under
/// auto_shutdown never, significant permanent, and simple_one_for_one with
/// an auto_shutdown.
#[test]
fn bad_significant_combinations_are_refused() {
    let child = |flags: &str, restart: &str| {
        format!(
            "[supervisor]\nid = \"a\"\n{flags}\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nrestart = \"{restart}\"\nsignificant = true\n"
        )
    };
    let e = refuse(&child("", "transient"));
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].significant", (8, 15))
    );
    assert!(matches!(
        spec_error(&e),
        SpecError::SignificantWithoutAutoShutdown { .. }
    ));

    let e = refuse(&child("auto_shutdown = \"all_significant\"", "permanent"));
    assert_eq!(e.field, "supervisor.children[0].significant");
    assert!(matches!(
        spec_error(&e),
        SpecError::SignificantPermanent { .. }
    ));

    assert!(
        parse_tree_str(
            "ok.toml",
            &child("auto_shutdown = \"any_significant\"", "temporary"),
            known
        )
        .is_ok()
    );

    let e = refuse(
        "[supervisor]\nid = \"a\"\nstrategy = \"simple_one_for_one\"\nauto_shutdown = \"any_significant\"\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.auto_shutdown", (4, 17))
    );
    assert!(matches!(
        spec_error(&e),
        SpecError::SimpleOneForOneAutoShutdown { .. }
    ));
}

/// Invalid TOML is refused with the parser's message and position, and no
/// field.
#[test]
fn invalid_toml_syntax_is_refused() {
    let e = parse_tree_file(&fixture("syntax_error.toml"), known).unwrap_err();
    assert_eq!(at(&e), (3, 12));
    assert_eq!(e.field, "");
    assert!(matches!(e.problem, Problem::Syntax { .. }));
    let file = fixture("syntax_error.toml").display().to_string();
    assert!(
        e.to_string()
            .starts_with(&format!("{file}:3:12: invalid TOML: ")),
        "{e}"
    );

    let e = refuse("[supervisor]\nid = \"a\"\nid = \"b\"\n");
    assert_eq!(at(&e), (3, 1));
    assert!(matches!(e.problem, Problem::Syntax { .. }));
}

/// Values of the wrong type are refused with what was expected.
#[test]
fn wrong_types_are_refused() {
    let e = refuse("[supervisor]\nid = 7\n");
    assert!(matches!(
        e.problem,
        Problem::WrongType {
            expected: "a string",
            found: "an integer"
        }
    ));
    let e = refuse("supervisor = \"app\"\n");
    assert_eq!((e.field.as_str(), at(&e)), ("supervisor", (1, 14)));
    let e = refuse("[supervisor]\nid = \"a\"\nchildren = \"x\"\n");
    assert_eq!(e.field, "supervisor.children");
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nsignificant = \"yes\"\n",
    );
    assert_eq!(e.field, "supervisor.children[0].significant");
    assert!(
        e.to_string()
            .contains("expected true or false, found a string"),
        "{e}"
    );
}

/// Intensity must be a whole number >= 0 (OTP `invalid_intensity`,
/// including negative values and infinity).
#[test]
fn bad_intensity_is_refused() {
    for bad in ["-1", "\"infinity\"", "1.5", "4294967296"] {
        let e = refuse(&format!("[supervisor]\nid = \"a\"\nintensity = {bad}\n"));
        assert_eq!(
            (e.field.as_str(), at(&e)),
            ("supervisor.intensity", (3, 13)),
            "{bad}"
        );
        assert!(matches!(e.problem, Problem::BadIntensity { .. }), "{bad}");
    }
}

/// args that JSON cannot carry are refused at the value.
#[test]
fn args_json_cannot_carry_are_refused() {
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\nargs = { x = [1, nan] }\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].args.x[1]", (6, 18))
    );
    assert!(matches!(e.problem, Problem::BadArgs { .. }));
}

/// A nested supervisor takes its child entry's id and no args.
#[test]
fn nested_supervisor_id_and_args_are_checked() {
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"s\"\nsupervisor = { id = \"t\" }\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].supervisor.id", (5, 21))
    );
    let e = refuse(
        "[supervisor]\nid = \"a\"\n[[supervisor.children]]\nid = \"s\"\nargs = 1\nsupervisor = {}\n",
    );
    assert_eq!(
        (e.field.as_str(), at(&e)),
        ("supervisor.children[0].args", (5, 8))
    );
}

/// Columns count characters, not bytes.
#[test]
fn columns_count_characters() {
    let e = refuse("[supervisor]\nid = \"ünïcødé\"\nstrategy = \"ønë\"\n");
    assert_eq!(
        e.position,
        Some(Position {
            line: 3,
            column: 12
        })
    );
    let e = refuse("[supervisor]\nid = \"ü\"; strategy = 1\n");
    assert_eq!(at(&e).0, 2);
}

/// A file that cannot be read is refused with its path and no position.
#[test]
fn unreadable_file_is_refused() {
    let path = fixture("no_such_file.toml");
    let e = parse_tree_file(&path, known).unwrap_err();
    assert_eq!(e.position, None);
    assert!(matches!(e.problem, Problem::Unreadable(_)));
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("check the path"), "{e}");
}
