//! Unit tests of the function registry: typed declarations registered with
//! `add`, and the one place arguments are decoded.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::*;
use crate::envelope::Message;
use crate::runtime::RuntimeBuilder;
use crate::runtime::spawn::SpawnOpts;

#[derive(Debug, Serialize, Deserialize)]
struct Range {
    from: u64,
    to: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Found {
    count: u64,
}

const COUNT: Function<Range, Found> = Function::new("test.count");

/// Spawns `name` with `args` on a runtime holding `fns` and waits for its
/// exit reason and result; a refused spawn is the error.
async fn run_by_name(
    fns: Functions,
    name: &str,
    args: serde_json::Value,
) -> Result<(ExitReason, Option<Message>), Error> {
    let rt = RuntimeBuilder::new().functions(fns).build();
    let name = name.to_owned();
    let (_, result) = rt
        .run(move |mut ctx| async move {
            let mref = ctx.make_ref();
            let opts = SpawnOpts::new().monitor(ctx.pid(), mref, true);
            let spawned = ctx.runtime().spawn_function(&name, args, opts);
            let out = match spawned {
                Ok(_) => {
                    let d = ctx.wait_down(mref, None).await.expect("no timeout");
                    Ok((d.reason, d.result))
                }
                Err(e) => Err(e),
            };
            // The outcome travels out as a local-only value.
            (ExitReason::Normal, Some(Message::local(out)))
        })
        .await;
    result
        .expect("run returns the outcome")
        .downcast::<Result<(ExitReason, Option<Message>), Error>>()
        .expect("the outcome's type")
}

/// A function added from its typed declaration is registered under the
/// declared name, receives its argument decoded from JSON and returns its
/// typed result.
#[tokio::test]
async fn add_registers_a_typed_function_under_its_name() {
    let mut fns = Functions::new();
    fns.add(&COUNT, |_ctx, r| async move {
        Ok(Found {
            count: r.to - r.from,
        })
    });
    assert_eq!(fns.names(), vec!["test.count".to_owned()]);
    let (reason, result) = run_by_name(fns, "test.count", serde_json::json!({"from": 3, "to": 10}))
        .await
        .unwrap();
    assert!(reason.is_normal(), "{reason}");
    assert_eq!(result.unwrap().take::<Found>().unwrap(), Found { count: 7 });
}

/// A typed function's error becomes its exit reason, and `?` converts a
/// plain error text.
#[tokio::test]
async fn a_typed_function_error_is_its_exit_reason() {
    let mut fns = Functions::new();
    fns.add(&COUNT, |_ctx, r| async move {
        if r.to < r.from {
            Err("the range is reversed")?;
        }
        Ok(Found { count: 0 })
    });
    let (reason, result) = run_by_name(fns, "test.count", serde_json::json!({"from": 9, "to": 1}))
        .await
        .unwrap();
    assert_eq!(reason, ExitReason::Error("the range is reversed".into()));
    assert!(result.is_none());
}

/// Arguments of the wrong type are refused before any process starts, with
/// an error naming the function and the type it expected.
#[tokio::test]
async fn wrong_arguments_name_the_function_and_the_expected_type() {
    let mut fns = Functions::new();
    fns.add(&COUNT, |_ctx, _r| async move { Ok(Found { count: 0 }) });
    let e = run_by_name(
        fns,
        "test.count",
        serde_json::json!({"from": "one", "to": 2}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::BadArgs { function, .. } if function == "test.count"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("test.count"), "{text}");
    assert!(text.contains(type_name::<Range>()), "{text}");
    assert!(text.contains("invalid type"), "{text}");
}

/// A `()` argument accepts every spelling of "no arguments": `{}`
/// (`poolctl spawn`'s default), `null` and no value at all, for a typed
/// and an untyped function alike; anything else is refused.
#[test]
fn a_unit_argument_accepts_an_empty_object_and_null() {
    for args in [serde_json::json!({}), serde_json::Value::Null] {
        decode_args::<()>("test.unit", args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"));
    }
    let e = decode_args::<()>("test.unit", serde_json::json!({"x": 1})).unwrap_err();
    assert!(e.to_string().contains("test.unit"), "{e}");
    assert!(decode_args::<()>("test.unit", serde_json::json!(5)).is_err());
}

/// Through the registry: a typed `()` function and an untyped one both
/// start from `{}` and from `null`.
#[tokio::test]
async fn unit_functions_spawn_with_an_empty_object() {
    const TICK: Function<(), u32> = Function::new("test.tick");
    let calls = Arc::new(Mutex::new(0));
    let mut fns = Functions::new();
    fns.add(&TICK, |_ctx, ()| async move { Ok(1) });
    let seen = calls.clone();
    fns.register("test.untyped", move |_ctx, (): ()| {
        *seen.lock().unwrap() += 1;
        async {}
    });
    for args in [serde_json::json!({}), serde_json::Value::Null] {
        let (reason, result) = run_by_name(fns.clone(), "test.tick", args.clone())
            .await
            .unwrap();
        assert!(reason.is_normal(), "{args}: {reason}");
        assert_eq!(result.unwrap().take::<u32>().unwrap(), 1);
        let (reason, _) = run_by_name(fns.clone(), "test.untyped", args)
            .await
            .unwrap();
        assert!(reason.is_normal());
    }
    assert_eq!(*calls.lock().unwrap(), 2);
}

/// A struct whose fields all have defaults still starts from `null` (the
/// old rule), and one with a required field still says which is missing.
#[test]
fn null_stands_for_an_empty_object_and_missing_fields_are_named() {
    #[derive(Debug, Deserialize)]
    struct Opt {
        #[serde(default)]
        ms: u64,
    }
    assert_eq!(
        decode_args::<Opt>("t", serde_json::Value::Null).unwrap().ms,
        0
    );
    let e = decode_args::<Range>("t", serde_json::json!({})).unwrap_err();
    assert!(e.to_string().contains("missing field `from`"), "{e}");
}

/// A declaration is a name and two types: copied freely, printed with both
/// types.
#[test]
fn a_declaration_prints_its_name_and_types() {
    let copy = COUNT;
    assert_eq!(copy.name(), COUNT.name());
    let text = format!("{COUNT:?}");
    assert!(text.contains("test.count"), "{text}");
    assert!(text.contains("Range") && text.contains("Found"), "{text}");
}

/// A resolver that answers names starting with `r.` and records the
/// sandbox each spawn gave it; its bodies end normally with the name.
#[derive(Default)]
struct Recording {
    sandboxes: Mutex<Vec<Option<pool_proto::Sandbox>>>,
}

impl crate::Resolver for Recording {
    fn resolves(&self, name: &str) -> bool {
        name.starts_with("r.")
    }

    fn prepare(
        &self,
        name: &str,
        _args: serde_json::Value,
        sandbox: Option<&pool_proto::Sandbox>,
    ) -> Result<Prepared, Error> {
        self.sandboxes.lock().unwrap().push(sandbox.cloned());
        let name = name.to_owned();
        Ok(Box::new(move |_ctx| {
            async move { (ExitReason::Normal, Some(Message::new(name))) }.boxed()
        }))
    }
}

/// A spawn by name asks the resolver only for names no registered function
/// has, passes it the spawn's sandbox, and a name neither knows is
/// `UnknownFunction`; `contains` stays about registered functions.
#[tokio::test]
async fn the_resolver_serves_names_the_registry_lacks() {
    let resolver = Arc::new(Recording::default());
    let mut fns = Functions::new();
    fns.register("r.registered", |_ctx, _: ()| async {
        Ok::<_, String>("native")
    });
    let rt = RuntimeBuilder::new()
        .functions(fns)
        .resolver(resolver.clone())
        .build();
    assert!(!rt.functions().contains("r.resolved"));
    let sandbox = pool_proto::Sandbox {
        fuel: Some(5),
        ..Default::default()
    };
    let outcome = |name: &'static str, opts: SpawnOpts| {
        let rt = rt.clone();
        async move {
            let (_, result) = rt
                .run(move |mut ctx| async move {
                    let mref = ctx.make_ref();
                    let opts = opts.monitor(ctx.pid(), mref, true);
                    let out =
                        match ctx
                            .runtime()
                            .spawn_function(name, serde_json::Value::Null, opts)
                        {
                            Ok(_) => Ok(ctx
                                .wait_down(mref, None)
                                .await
                                .unwrap()
                                .result
                                .unwrap()
                                .take::<String>()
                                .unwrap()),
                            Err(e) => Err(e.to_string()),
                        };
                    Ok::<_, String>(out)
                })
                .await;
            result.unwrap().take::<Result<String, String>>().unwrap()
        }
    };
    assert_eq!(
        outcome("r.registered", SpawnOpts::new()).await,
        Ok("native".into())
    );
    assert_eq!(
        outcome("r.resolved", SpawnOpts::new().sandbox(sandbox.clone())).await,
        Ok("r.resolved".into())
    );
    assert!(
        outcome("other", SpawnOpts::new())
            .await
            .unwrap_err()
            .contains("no function")
    );
    assert_eq!(*resolver.sandboxes.lock().unwrap(), vec![Some(sandbox)]);
    assert!(rt.set_resolver(resolver).is_err());
}
