//! Pool applications over the wire: TreeStart places the root with
//! StartApp, a dead root node gets the root started elsewhere with the next
//! generation, a root that exits by itself fails the app, TreeStop stops it,
//! and bad or duplicate trees are refused.

mod support;

use pool_proto::{
    AppEvent, AppEventKind, AppStatus, AppSummary, ErrorCode, ExitReason, Msg, Request, Response,
    TreeSpec,
};
use support::*;

const TREE: &str = r#"[supervisor]
id = "ingest"
strategy = "one_for_one"

[[supervisor.children]]
id = "parser"
function = "builtin.echo"
"#;

fn spec(text: &str) -> TreeSpec {
    pool_proto::tree::parse_tree_str("ingest.toml", text, |_| true).unwrap()
}

fn start(text: &str) -> Request {
    Request::TreeStart {
        spec: spec(text),
        source: Some("ingest.toml".into()),
        text: Some(text.into()),
    }
}

async fn apps(n: &SimNode, req: Request) -> Result<Vec<AppSummary>, pool_proto::RemoteError> {
    match n.request(req).await {
        Response::Apps(a) => Ok(a),
        Response::Error(e) => Err(e),
        other => panic!("{other:?}"),
    }
}

async fn start_app_on(n: &SimNode) -> (String, u64) {
    match n
        .expect_event(WAIT, "StartApp", |e| {
            matches!(e, Event::Request(Request::StartApp { .. }))
        })
        .await
    {
        Event::Request(Request::StartApp {
            app, generation, ..
        }) => (app, generation),
        _ => unreachable!(),
    }
}

/// TreeStart sends StartApp (generation 1) to a worker and answers with the
/// running app; when that worker dies the root is started on the other one
/// with generation 2.
#[tokio::test]
async fn root_restarts_elsewhere_with_next_generation() {
    let master = start_master(config(), false).await;
    let w1 = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w1.report(0, 0);
    let w2 = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    w2.report(5, 5);
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    assert_eq!(w2.request(Request::Ping).await, Response::Pong);
    assert_eq!(w1.request(Request::Ping).await, Response::Pong);

    let started = apps(&ctl, start(TREE)).await.unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].id, "ingest");
    assert_eq!(started[0].status, AppStatus::Running);
    assert_eq!(
        started[0].node.as_deref(),
        Some("w1"),
        "the least-loaded worker"
    );
    assert_eq!(started[0].root.map(|p| p.node()), Some(w1.id));
    assert_eq!(start_app_on(&w1).await, ("ingest".into(), 1));

    // A second TreeStart of a running id is refused.
    let e = apps(&ctl, start(TREE)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyRunning);
    assert!(
        e.message.contains("poolctl tree stop ingest"),
        "{}",
        e.message
    );

    // TreeShow asks the root's node and names nodes.
    let Response::Tree(view) = ctl
        .request(Request::TreeShow {
            id: "ingest".into(),
        })
        .await
    else {
        panic!()
    };
    assert_eq!(view.node.as_deref(), Some("w1"));
    assert_eq!(view.children.unwrap()[0].node.as_deref(), Some("w1"));

    w1.close();
    assert_eq!(start_app_on(&w2).await, ("ingest".into(), 2));
    let list = apps(&ctl, Request::TreeList).await.unwrap();
    assert_eq!(list[0].status, AppStatus::Running);
    assert!(
        wait_until_async(&ctl, |l| l[0].node.as_deref() == Some("w2")
            && l[0].root.is_some())
        .await
    );
    master.shutdown().await;
}

async fn wait_until_async(ctl: &SimNode, mut f: impl FnMut(&[AppSummary]) -> bool) -> bool {
    let end = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < end {
        if f(&apps(ctl, Request::TreeList).await.unwrap()) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// A root that exits by itself (RootExited) fails the app with the reason
/// and it is not restarted; TreeStop of a running app sends StopApp and
/// ends stopped.
#[tokio::test]
async fn root_exit_fails_and_tree_stop_stops() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    apps(&ctl, start(TREE)).await.unwrap();
    let (_, generation) = start_app_on(&w).await;
    w.send(Msg::AppEvent(AppEvent {
        app: "ingest".into(),
        generation,
        kind: AppEventKind::RootExited(ExitReason::Shutdown),
    }));
    assert!(wait_until_async(&ctl, |l| l[0].status == AppStatus::Failed).await);
    let l = apps(&ctl, Request::TreeList).await.unwrap();
    assert_eq!(l[0].reason.as_deref(), Some("shutdown"));
    assert_eq!(l[0].root, None);
    w.expect_no_event(std::time::Duration::from_millis(200), "a restart", |e| {
        matches!(e, Event::Request(Request::StartApp { .. }))
    })
    .await;

    // A failed app may be submitted again (next generation).
    apps(&ctl, start(TREE)).await.unwrap();
    assert_eq!(start_app_on(&w).await.1, generation + 1);
    let stopped = apps(
        &ctl,
        Request::TreeStop {
            id: "ingest".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(stopped[0].status, AppStatus::Stopped);
    w.expect_event(
        WAIT,
        "StopApp",
        |e| matches!(e, Event::Request(Request::StopApp { app }) if app == "ingest"),
    )
    .await;
    assert!(w.behavior.lock().unwrap().apps.is_empty());
    let e = apps(&ctl, Request::TreeStop { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    master.shutdown().await;
}

/// A tree whose text has an error is refused with the file, the line and
/// the field named; so is a function no live worker registers; nothing
/// starts.
#[tokio::test]
async fn bad_trees_are_refused_with_file_line_and_field() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();

    let bad = TREE.replace("builtin.echo", "builtin.ecoh");
    let e = apps(&ctl, start(&bad)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSpec);
    assert!(e.message.starts_with("ingest.toml:7:"), "{}", e.message);
    assert!(
        e.message.contains("supervisor.children[0].function"),
        "{}",
        e.message
    );
    assert!(e.message.contains("builtin.ecoh"), "{}", e.message);

    let bad = TREE.replace("one_for_one", "one_for_none");
    let e = apps(
        &ctl,
        Request::TreeStart {
            spec: spec(TREE),
            source: Some("ingest.toml".into()),
            text: Some(bad),
        },
    )
    .await
    .unwrap_err();
    assert!(e.message.starts_with("ingest.toml:3:"), "{}", e.message);
    assert!(e.message.contains("supervisor.strategy"), "{}", e.message);

    // Without text: validated from the spec, the field still named.
    let mut s = spec(TREE);
    s.supervisor.children[0].function = Some("custom.missing".into());
    let e = apps(
        &ctl,
        Request::TreeStart {
            spec: s,
            source: None,
            text: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSpec);
    assert!(
        e.message.contains("supervisor.children[0].function"),
        "{}",
        e.message
    );

    assert!(apps(&ctl, Request::TreeList).await.unwrap().is_empty());
    w.expect_no_event(std::time::Duration::from_millis(100), "StartApp", |e| {
        matches!(e, Event::Request(Request::StartApp { .. }))
    })
    .await;
    master.shutdown().await;
}

/// A worker that refuses StartApp fails the app with its reason.
#[tokio::test]
async fn refused_start_fails_the_app() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.behavior.lock().unwrap().start_error = Some(pool_proto::RemoteError::new(
        ErrorCode::UnknownFunction,
        "no builtin.echo here",
    ));
    let e = apps(&w, start(TREE)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    assert!(e.message.contains("no builtin.echo here"), "{}", e.message);
    let l = apps(&w, Request::TreeList).await.unwrap();
    assert_eq!(l[0].status, AppStatus::Failed);
    master.shutdown().await;
}

/// With no worker in the pool, TreeStart answers NoNode.
#[tokio::test]
async fn no_worker_no_tree() {
    let master = start_master(config(), false).await;
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let empty = "[supervisor]\nid = \"empty\"\n";
    let e = apps(&ctl, start(empty)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NoNode);
    master.shutdown().await;
}
