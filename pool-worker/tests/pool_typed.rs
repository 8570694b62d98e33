//! Typed functions across a pool in one process: a function declared once
//! (`supervisor::Function`), registered on the workers with `add`, run from
//! another node with `Pool::run`, and spawned by name with JSON as
//! `poolctl` does.

mod support;

use pool_proto::ExitReason;
use pool_worker::{Error, NodeHandle, Spawn};
use serde::{Deserialize, Serialize};
use supervisor::{Function, Functions};
use support::{Cluster, test_functions};

#[derive(Debug, Serialize, Deserialize)]
struct Range {
    from: u64,
    to: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Found {
    count: u64,
    largest: Option<u64>,
}

/// Counts the odd numbers of a range; a reversed range is an error.
const ODDS: Function<Range, Found> = Function::new("typed.odds");
/// Takes no arguments.
const TICK: Function<(), u32> = Function::new("typed.tick");
/// Panics, as a buggy function does.
const PANIC: Function<(), u32> = Function::new("typed.panic");

fn functions() -> Functions {
    let mut f = test_functions();
    f.add(&ODDS, |_ctx, r| async move {
        if r.to < r.from {
            return Err(ExitReason::Error(format!(
                "reversed range {}..{}",
                r.from, r.to
            )));
        }
        let odds: Vec<u64> = (r.from..r.to).filter(|n| n % 2 == 1).collect();
        Ok(Found {
            count: odds.len() as u64,
            largest: odds.last().copied(),
        })
    });
    f.add(&TICK, |_ctx, ()| async move { Ok(7) });
    f.add(&PANIC, |_ctx, ()| async move {
        if std::hint::black_box(true) {
            panic!("deliberate test panic");
        }
        Ok(0)
    });
    f
}

/// Two workers with the typed functions; `w1`'s pool is the caller.
async fn pool_of_two(c: &Cluster) -> Vec<NodeHandle> {
    let mut v = Vec::new();
    for name in ["w1", "w2"] {
        let node = c.builder(name).functions(functions()).start().await;
        v.push(node.expect("the worker joins"));
    }
    v
}

/// `pool.run(&F, args)` returns the function's result as its declared type,
/// and the argument travels as the declared type too.
#[tokio::test(start_paused = true)]
async fn run_returns_the_typed_result() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let found = w[0]
        .pool()
        .run(&ODDS, Range { from: 1, to: 10 })
        .await
        .unwrap();
    assert_eq!(
        found,
        Found {
            count: 5,
            largest: Some(9)
        }
    );
}

/// A typed spawn chains like any other (`on`, `label`), and its result,
/// encoded on another node, decodes as the declared type.
#[tokio::test(start_paused = true)]
async fn a_typed_spawn_on_another_node_decodes_its_result() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let run = w[0]
        .pool()
        .run_spec(Spawn::of(&ODDS, &Range { from: 4, to: 8 }).on("w2"))
        .await
        .unwrap();
    assert_eq!(run.spawned.node, "w2");
    assert!(run.reason.is_normal(), "{}", run.reason);
    assert_eq!(
        run.take::<Found>().unwrap(),
        Found {
            count: 2,
            largest: Some(7)
        }
    );
}

/// A function that fails or panics makes `run` an error carrying its exit
/// reason, the function's name and where it ran.
#[tokio::test(start_paused = true)]
async fn a_failed_run_is_an_error_with_the_reason() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let pool = w[0].pool();
    let e = pool.run(&ODDS, Range { from: 9, to: 1 }).await.unwrap_err();
    match &e {
        Error::Exited {
            function, reason, ..
        } => {
            assert_eq!(function, "typed.odds");
            assert_eq!(reason, &ExitReason::Error("reversed range 9..1".into()));
        }
        other => panic!("not an exit: {other:?}"),
    }
    assert!(e.to_string().contains("reversed range 9..1"), "{e}");

    let e = pool.run(&PANIC, ()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Exited { reason: ExitReason::Panic(t), .. } if t.contains("deliberate test panic")),
        "{e:?}"
    );
    assert!(e.to_string().contains("typed.panic"), "{e}");
}

/// A function whose argument is `()` starts from `poolctl`'s default `{}`
/// (and from `null`), spawned by name with JSON; typed, it takes `()`.
#[tokio::test(start_paused = true)]
async fn a_unit_argument_function_accepts_an_empty_object() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let pool = w[0].pool();
    for args in [serde_json::json!({}), serde_json::Value::Null] {
        let run = pool
            .run_spec(Spawn::new(TICK.name(), args.clone()).on("w2"))
            .await
            .unwrap_or_else(|e| panic!("{args}: {e}"));
        assert_eq!(run.take::<u32>().unwrap(), 7);
    }
    assert_eq!(pool.run(&TICK, ()).await.unwrap(), 7);
}

/// Arguments that do not fit the registered type are refused by the node
/// that was asked, naming the function and the type it expected.
#[tokio::test(start_paused = true)]
async fn wrong_json_arguments_name_the_function_and_the_type() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let e = w[0]
        .pool()
        .spawn(Spawn::new(ODDS.name(), serde_json::json!({"from": "one", "to": 3})).on("w2"))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("typed.odds"), "{text}");
    assert!(text.contains(std::any::type_name::<Range>()), "{text}");
}

/// A caller that declares another result type than the worker gets an
/// error naming the type it expected, not a panic or a default.
#[tokio::test(start_paused = true)]
async fn a_result_of_another_type_is_an_error() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    const ODDS_AS_TEXT: Function<Range, String> = Function::new("typed.odds");
    let e = w[0]
        .pool()
        .run(&ODDS_AS_TEXT, Range { from: 1, to: 3 })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::BadResult { function, expected, .. } if function == "typed.odds" && expected.contains("String")),
        "{e:?}"
    );
}

/// A label that does not parse does not break the builder chain: the
/// spawn (and the run) is refused with an error naming the label.
#[tokio::test(start_paused = true)]
async fn a_bad_label_is_refused_at_spawn() {
    let c = Cluster::new();
    let w = pool_of_two(&c).await;
    let spec = Spawn::of(&TICK, ()).label("zone").on("w2");
    let e = w[0].pool().spawn(spec.clone()).await.unwrap_err();
    assert!(e.to_string().contains("\"zone\""), "{e}");
    let e = w[0].pool().run_spec(spec).await.unwrap_err();
    assert!(e.to_string().contains("\"zone\""), "{e}");
}
