//! simple_one_for_one supervisors (docs/semantics.md "simple_one_for_one"):
//! every row of OTP.md §1.11 — dynamic children with arguments, identified
//! by pid, restarted with the same arguments, and the API's answers.

mod support;

use pool_proto::{ExitReason, Restart, Strategy};
use serde_json::json;
use supervisor::supervisor::{self as sup, Child, ChildCounts, ChildPid, Spec, SupError};
use supervisor::{Functions, NodeId, Pid, Runtime};
use support::*;

/// A simple_one_for_one supervisor over named test workers: the dynamic
/// argument is the worker's name.
async fn named(rt: &Runtime, log: &Log, restart: Restart) -> Pid {
    let l = log.clone();
    let template = Child::worker_with_args("w", move |ctx, name: String| {
        body(ctx, l.clone(), name, Mode::Plain)
    })
    .restart(restart);
    let spec = Spec::new("s", Strategy::SimpleOneForOne)
        .intensity(10)
        .child(template);
    sup::start(rt, spec).await.unwrap()
}

async fn add(rt: &Runtime, s: Pid, name: &str) -> Pid {
    sup::start_dynamic_child(rt, s, json!(name))
        .await
        .unwrap()
        .unwrap()
}

/// sofo.args: a dynamic child runs the template with the template's
/// arguments extended by its own (objects merge, arrays append).
#[tokio::test]
async fn a_dynamic_child_gets_the_template_args_and_its_own() {
    let seen = Log::new();
    let s2 = seen.clone();
    let mut fns = Functions::new();
    fns.register("test.args", move |mut ctx, args: serde_json::Value| {
        s2.push(args.to_string());
        async move {
            ctx.recv().await;
        }
    });
    let rt = Runtime::builder(NodeId::random()).functions(fns).build();
    for (template, extra, want) in [
        (json!({"a": 1}), json!({"b": 2}), json!({"a": 1, "b": 2})),
        (json!(["x"]), json!(["y", "z"]), json!(["x", "y", "z"])),
        (json!(["x"]), json!("y"), json!(["x", "y"])),
    ] {
        let spec = Spec::new("s", Strategy::SimpleOneForOne).child(Child::function(
            "t",
            "test.args",
            template,
        ));
        let s = sup::start(&rt, spec).await.unwrap();
        sup::start_dynamic_child(&rt, s, extra)
            .await
            .unwrap()
            .unwrap();
        wait_until("the child ran", DEADLINE, || seen.len() == 1).await;
        assert_eq!(seen.take(), [want.to_string()]);
        sup::stop(&rt, s).await.unwrap();
    }
}

/// sofo.by-pid: dynamic children have no id (`undefined`); they are
/// known by pid. (Their order in `which_children` is not specified: OTP
/// keeps them in a map.)
#[tokio::test]
async fn dynamic_children_have_no_id() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Permanent).await;
    let a = add(&rt, s, "a").await;
    let b = add(&rt, s, "b").await;
    let mut now = children(&rt, s).await;
    now.sort_by_key(|(_, p)| match p {
        ChildPid::Pid(p) => *p,
        other => panic!("{other}"),
    });
    assert_eq!(now, [(None, ChildPid::Pid(a)), (None, ChildPid::Pid(b))]);
}

/// sofo.restart: a crashed dynamic child is restarted with the same
/// arguments; nothing happens to the other children.
#[tokio::test]
async fn a_crashed_child_is_restarted_with_the_same_args() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Permanent).await;
    let a = add(&rt, s, "a").await;
    let b = add(&rt, s, "b").await;
    wait_until("both ran", DEADLINE, || log.len() == 2).await;
    log.take();
    crash_child(&rt, a).await;
    let now: Vec<ChildPid> = children(&rt, s).await.into_iter().map(|(_, p)| p).collect();
    assert_eq!(now.len(), 2);
    assert!(now.contains(&ChildPid::Pid(b)), "b is untouched");
    assert!(!now.contains(&ChildPid::Pid(a)), "a was replaced");
    wait_until("a ran again", DEADLINE, || log.len() == 1).await;
    assert_eq!(log.take(), ["started a"]);
}

/// sofo.transient: a transient dynamic child that exits normally is
/// removed; one that crashes is restarted.
#[tokio::test]
async fn a_transient_dynamic_child_is_removed_on_normal_exit() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Transient).await;
    let a = add(&rt, s, "a").await;
    let b = add(&rt, s, "b").await;
    end_child(&rt, a, Why::Exit(ExitReason::Normal)).await;
    assert_eq!(children(&rt, s).await, [(None, ChildPid::Pid(b))]);
    crash_child(&rt, b).await;
    let now = children(&rt, s).await;
    assert_eq!(now.len(), 1);
    assert!(matches!(now[0].1, ChildPid::Pid(p) if p != b));
}

/// sofo.terminate: `terminate_child(pid)` stops the child and removes it;
/// it is `ok` again for a pid that is already dead, and `not_found` for a
/// live pid that is not a child.
#[tokio::test]
async fn terminate_child_by_pid() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Permanent).await;
    let a = add(&rt, s, "a").await;
    sup::terminate_child(&rt, s, a).await.unwrap();
    assert!(!rt.is_alive(a));
    assert!(children(&rt, s).await.is_empty());
    sup::terminate_child(&rt, s, a).await.unwrap();
    let stranger = rt.spawn(|mut ctx| async move {
        ctx.recv().await;
    });
    assert_eq!(
        sup_err(sup::terminate_child(&rt, s, stranger).await),
        SupError::NotFound
    );
    assert!(rt.is_alive(stranger));
}

/// sofo.by-id-refused: `terminate_child`, `restart_child` and
/// `delete_child` by id give `simple_one_for_one`; so does `start_child`
/// with a child spec, and a simple_one_for_one-only call on another
/// supervisor is refused.
#[tokio::test]
async fn calls_by_id_are_refused() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Permanent).await;
    add(&rt, s, "a").await;
    assert_eq!(
        sup_err(sup::terminate_child(&rt, s, "w").await),
        SupError::SimpleOneForOne
    );
    assert_eq!(
        sup_err(sup::restart_child(&rt, s, "w").await),
        SupError::SimpleOneForOne
    );
    assert_eq!(
        sup_err(sup::delete_child(&rt, s, "w").await),
        SupError::SimpleOneForOne
    );
    assert_eq!(
        sup_err(sup::start_child(&rt, s, plain(&log, "x")).await),
        SupError::SimpleOneForOne
    );
    let other = sup::start(&rt, Spec::new("o", Strategy::OneForOne))
        .await
        .unwrap();
    assert_eq!(
        sup_err(sup::start_dynamic_child(&rt, other, json!("x")).await),
        SupError::NotSimpleOneForOne
    );
}

/// sofo.count: `count_children` reports one spec and as many active
/// children as are alive.
#[tokio::test]
async fn count_children_reports_one_spec() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Temporary).await;
    assert_eq!(
        sup::count_children(&rt, s).await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 0,
            supervisors: 0,
            workers: 0
        }
    );
    for n in ["a", "b", "c"] {
        add(&rt, s, n).await;
    }
    assert_eq!(
        sup::count_children(&rt, s).await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 3,
            supervisors: 0,
            workers: 3
        }
    );
}

/// sofo.ignore: a start returning `ignore` gives `Ok(None)` and stores
/// nothing, whatever the restart type.
#[tokio::test]
async fn an_ignored_start_stores_nothing() {
    let rt = node();
    let log = Log::new();
    let template = scripted(&log, "w", Mode::Plain, script([], Attempt::Ignore));
    let spec = Spec::new("s", Strategy::SimpleOneForOne).child(template);
    let s = sup::start(&rt, spec).await.unwrap();
    assert_eq!(
        sup::start_dynamic_child(&rt, s, json!(null)).await.unwrap(),
        None
    );
    assert!(children(&rt, s).await.is_empty());
}

/// sofo.start-failure: a failed start gives the reason itself (not wrapped
/// with a child record) and stores nothing.
#[tokio::test]
async fn a_failed_start_gives_the_bare_reason() {
    let rt = node();
    let log = Log::new();
    let nope = ExitReason::Error("nope".into());
    let template = scripted(
        &log,
        "w",
        Mode::Plain,
        script([], Attempt::Fail(nope.clone())),
    );
    let spec = Spec::new("s", Strategy::SimpleOneForOne).child(template);
    let s = sup::start(&rt, spec).await.unwrap();
    assert_eq!(
        sup_err(sup::start_dynamic_child(&rt, s, json!(null)).await),
        SupError::StartFailed(nope)
    );
    assert!(children(&rt, s).await.is_empty());
}

/// sofo.bad-args: arguments that do not fit the template are a start
/// failure (OTP: a wrong arity), for a closure template as for a
/// registered function; nothing is started or stored.
#[tokio::test]
async fn arguments_that_do_not_fit_are_a_start_failure() {
    let mut fns = Functions::new();
    fns.register("test.pair", |mut ctx, _args: (u32, u32)| async move {
        ctx.recv().await;
    });
    let rt = Runtime::builder(NodeId::random()).functions(fns).build();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Permanent).await;
    let e = sup_err(sup::start_dynamic_child(&rt, s, json!({"not": "a name"})).await);
    assert!(
        matches!(&e, SupError::StartFailed(ExitReason::Error(t)) if t.contains("bad child arguments")),
        "{e:?}"
    );
    assert!(children(&rt, s).await.is_empty());

    let spec = Spec::new("f", Strategy::SimpleOneForOne).child(Child::function(
        "t",
        "test.pair",
        json!([1]),
    ));
    let f = sup::start(&rt, spec).await.unwrap();
    let e = sup_err(sup::start_dynamic_child(&rt, f, json!(["two", "three"])).await);
    assert!(
        matches!(&e, SupError::StartFailed(ExitReason::Error(t)) if t.contains("do not fit")),
        "{e:?}"
    );
    assert!(
        sup::start_dynamic_child(&rt, f, json!(2))
            .await
            .unwrap()
            .is_some()
    );
}

/// sofo.get-childspec: `get_childspec(pid)` of a dynamic child gives the
/// template.
#[tokio::test]
async fn get_childspec_of_a_dynamic_child_is_the_template() {
    let rt = node();
    let log = Log::new();
    let s = named(&rt, &log, Restart::Transient).await;
    let a = add(&rt, s, "a").await;
    let spec = sup::get_childspec(&rt, s, a).await.unwrap();
    assert_eq!((spec.id.as_str(), spec.restart), ("w", Restart::Transient));
}
