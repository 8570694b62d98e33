//! The module store over the wire: pushes checked (bytes, claimed hash,
//! file name), listed, fetched byte for byte and resolved; wasm functions
//! placed only on workers that run wasm, by their canonical name; the
//! store kept in the state directory across a restart; `GET /api/modules`.

mod support;

use pool_proto::{
    ErrorCode, ModuleHash, ModuleInfo, PlaceQuery, Placed, RemoteError, Request, Response,
};
use support::*;

/// The empty module plus a custom section named `tag`: a valid module
/// whose hash depends on `tag`.
fn module(tag: u8) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend_from_slice(&[0x00, 0x02, 0x01, tag]);
    m
}

async fn push(
    node: &SimNode,
    file: &str,
    bytes: Vec<u8>,
    hash: Option<ModuleHash>,
) -> Result<ModuleInfo, RemoteError> {
    let body = Request::PushModule {
        file: file.into(),
        bytes,
        hash,
    };
    match node.request(body).await {
        Response::Modules(mut m) if m.len() == 1 => Ok(m.remove(0)),
        Response::Error(e) => Err(e),
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn list(node: &SimNode) -> Vec<ModuleInfo> {
    match node.request(Request::ListModules).await {
        Response::Modules(m) => m,
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn place(node: &SimNode, function: &str, count: u32) -> Result<Vec<Placed>, RemoteError> {
    let q = PlaceQuery {
        count,
        commit: true,
        function: Some(function.into()),
        ..PlaceQuery::default()
    };
    match node.request(Request::Place(q)).await {
        Response::Placed(p) => Ok(p),
        Response::Error(e) => Err(e),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// A push is stored under the bytes' sha-256, listed, fetched back byte
/// for byte and resolved from its file name; bad bytes and a claimed hash
/// that is not the bytes' are refused with a clear error, and nothing of
/// them is stored.
#[tokio::test]
async fn pushes_are_checked_listed_fetched_and_resolved() {
    let master = start_master(config(), false).await;
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let bytes = module(1);
    let hash = ModuleHash::of(&bytes);
    let info = push(&ctl, "app.wasm", bytes.clone(), Some(hash))
        .await
        .unwrap();
    assert_eq!((info.hash, info.file.as_str()), (hash, "app.wasm"));
    assert_eq!(info.size, bytes.len() as u64);

    let e = push(&ctl, "app.wasm", module(2), Some(hash))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("is not the sha-256 of the bytes"), "{e}");
    let e = push(&ctl, "bad.wasm", b"MZ\x90\0 not wasm".to_vec(), None)
        .await
        .unwrap_err();
    assert!(e.message.contains("not a WebAssembly module"), "{e}");
    assert_eq!(list(&ctl).await, vec![info]);

    match ctl.request(Request::FetchModule { hash }).await {
        Response::ModuleBytes { bytes: got } => assert_eq!(got, bytes),
        other => panic!("unexpected answer {other:?}"),
    }
    let unknown = ModuleHash::of(b"never pushed");
    match ctl.request(Request::FetchModule { hash: unknown }).await {
        Response::Error(e) => assert!(e.message.contains(&format!("no module {unknown}")), "{e}"),
        other => panic!("unexpected answer {other:?}"),
    }
    let resolve = |function: &str| Request::ResolveFunction {
        function: function.into(),
    };
    assert_eq!(
        ctl.request(resolve("app.wasm:count")).await,
        Response::Function(format!("{hash}:count"))
    );
    assert_eq!(
        ctl.request(resolve("builtin.echo")).await,
        Response::Function("builtin.echo".into())
    );
    match ctl.request(resolve("other.wasm:count")).await {
        Response::Error(e) => assert!(e.message.contains("poolctl module push"), "{e}"),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// A wasm function is placed only on workers that run wasm, by the same
/// strategy as any function (a burst spreads over them), and the answer
/// carries its canonical name; an unknown module is refused naming it,
/// and with no wasm worker the error says so.
#[tokio::test]
async fn wasm_functions_go_to_wasm_workers_by_canonical_name() {
    let master = start_master(config(), false).await;
    let native = SimNode::join(master.addr(), SimSpec::worker("native"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let hash = push(&ctl, "app.wasm", module(3), None).await.unwrap().hash;
    let e = place(&ctl, "app.wasm:run", 1).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NoNode);
    assert!(e.message.contains("runs WebAssembly"), "{e}");

    let mut spec = SimSpec::worker("wa");
    spec.wasm = true;
    let wa = SimNode::join(master.addr(), spec).await.unwrap();
    let mut spec = SimSpec::worker("wb");
    spec.wasm = true;
    let wb = SimNode::join(master.addr(), spec).await.unwrap();
    for n in [&native, &wa, &wb] {
        n.report(0, 0);
    }
    let placed = place(&ctl, "app.wasm:run", 4).await.unwrap();
    let canonical = format!("{hash}:run");
    assert!(
        placed
            .iter()
            .all(|p| p.name != "native" && p.function.as_deref() == Some(canonical.as_str())),
        "{placed:?}"
    );
    let on_wa = placed.iter().filter(|p| p.name == "wa").count();
    assert_eq!(
        on_wa, 2,
        "a burst is water-filled over the wasm workers: {placed:?}"
    );
    // A native function still goes anywhere, with no canonical name.
    let placed = place(&ctl, "builtin.echo", 1).await.unwrap();
    assert_eq!(placed[0].function, None);

    let e = place(&ctl, "nope.wasm:run", 1).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    assert!(e.message.contains("nope.wasm"), "{e}");
    let missing = ModuleHash::of(b"missing");
    let e = place(&ctl, &format!("{missing}:run"), 1).await.unwrap_err();
    assert!(
        e.message
            .contains(&format!("no module {missing} in the pool")),
        "{e}"
    );
}

/// Modules are kept in the state directory: a master restarted on it
/// lists and serves them; `GET /api/modules` lists them too.
#[tokio::test]
async fn the_store_survives_a_master_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.state_dir = Some(dir.path().to_owned());
    let master = start_master(cfg.clone(), false).await;
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let info = push(&ctl, "keep.wasm", module(4), None).await.unwrap();
    drop(ctl);
    master.shutdown().await;

    let master = start_master(cfg, true).await;
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl2"))
        .await
        .unwrap();
    assert_eq!(list(&ctl).await, vec![info.clone()]);
    match ctl.request(Request::FetchModule { hash: info.hash }).await {
        Response::ModuleBytes { bytes } => assert_eq!(bytes, module(4)),
        other => panic!("unexpected answer {other:?}"),
    }
    let (status, body) = http_get(master.http_addr().unwrap(), "/api/modules").await;
    assert_eq!(status, 200);
    let listed: Vec<ModuleInfo> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed, vec![info]);
}

/// A tree that names a module never pushed is refused at `TreeStart`,
/// naming the field and saying how to push it; nothing is kept.
#[tokio::test]
async fn a_tree_naming_an_unknown_module_is_refused() {
    use pool_proto::{ChildSpecData, Strategy, SupervisorSpec, TreeSpec};
    let master = start_master(config(), false).await;
    let mut spec = SimSpec::worker("wa");
    spec.wasm = true;
    let _wa = SimNode::join(master.addr(), spec).await.unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let mut root = SupervisorSpec::new("app", Strategy::OneForOne);
    root.children.push(ChildSpecData::worker(
        "c",
        "nope.wasm:run",
        serde_json::Value::Null,
    ));
    let start = Request::TreeStart {
        spec: TreeSpec { supervisor: root },
        source: Some("app.toml".into()),
        text: None,
    };
    match ctl.request(start).await {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::BadSpec);
            assert!(
                e.message
                    .contains("app.toml: supervisor.children[0].function")
                    && e.message.contains("poolctl module push nope.wasm"),
                "{e}"
            );
        }
        other => panic!("unexpected answer {other:?}"),
    }
    match ctl.request(Request::TreeList).await {
        Response::Apps(apps) => assert!(apps.is_empty(), "{apps:?}"),
        other => panic!("unexpected answer {other:?}"),
    }
}
