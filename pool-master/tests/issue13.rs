//! Issue 13, the master's side, over the wire with simulated nodes: report
//! acks, pending apps, `TreeRestart` / `TreeRemove`, names watched by the
//! node of their process, and a timed-out node told nothing more.

mod support;

use std::time::Duration;

use pool_proto::{
    AppEvent, AppEventKind, AppStatus, ErrorCode, ExitReason, Msg, Pid, RemoteError, Request,
    Response, TreeSpec,
};
use support::*;

const TREE: &str = "[supervisor]\nid = \"ingest\"\n\n[[supervisor.children]]\nid = \"w\"\nfunction = \"builtin.echo\"\n";

fn start() -> Request {
    let spec: TreeSpec = pool_proto::tree::parse_tree_str("t.toml", TREE, |_| true).unwrap();
    Request::TreeStart {
        spec,
        source: Some("t.toml".into()),
        text: Some(TREE.into()),
    }
}

async fn apps(n: &SimNode, body: Request) -> Result<Vec<pool_proto::AppSummary>, RemoteError> {
    match n.request(body).await {
        Response::Apps(a) => Ok(a),
        Response::Error(e) => Err(e),
        other => panic!("{other:?}"),
    }
}

/// Polls `TreeList` until `pred` holds (bounded).
async fn wait_apps(n: &SimNode, pred: impl Fn(&[pool_proto::AppSummary]) -> bool) -> bool {
    for _ in 0..300 {
        if pred(&apps(n, Request::TreeList).await.unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A worker whose StartApp answers `Unavailable` leaves the app `pending`
/// with the reason (TreeStart answers it pending, not an error); when the
/// worker can start it, the retry makes it `running`, with a new
/// generation.
#[tokio::test]
async fn an_unavailable_start_is_pending_then_retried() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.behavior.lock().unwrap().start_error = Some(RemoteError::new(
        ErrorCode::Unavailable,
        "no live node has label zone=c",
    ));
    let started = apps(&w, start()).await.unwrap();
    assert_eq!(started[0].status, AppStatus::Pending);
    assert!(
        started[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("zone=c"))
    );
    w.behavior.lock().unwrap().start_error = None;
    assert!(wait_apps(&w, |l| l[0].status == AppStatus::Running).await);
    let generation = w.behavior.lock().unwrap().apps["ingest"].0;
    assert!(generation >= 2, "generation {generation}");
    master.shutdown().await;
}

/// Every load report the master accepts is acknowledged with its seq, on
/// the same connection, right away; once the node was declared down by
/// timeout (its connection still open on its side), it is told nothing
/// more: its connection is closed and no report of it is acknowledged.
#[tokio::test]
async fn accepted_reports_are_acked_and_a_timed_out_node_hears_nothing_more() {
    let master = start_master(config(), false).await;
    let mut watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    watcher.keep_reporting(Duration::from_millis(100));
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.report(0, 0);
    w.expect_event(WAIT, "ReportAck(1)", |e| *e == Event::ReportAck(1))
        .await;
    // Silent past the node timeout (600 ms): down, and closed.
    w.expect_event(WAIT, "its connection closed", |e| *e == Event::Closed)
        .await;
    w.report(0, 0);
    w.expect_no_event(Duration::from_millis(200), "an ack after the down", |e| {
        matches!(e, Event::ReportAck(_))
    })
    .await;
    master.shutdown().await;
}

/// A failed app comes back with TreeRestart (running again, a new
/// generation); TreeRemove refuses it while it runs, and forgets it once
/// stopped; both answer NotFound for an unknown id.
#[tokio::test]
async fn tree_restart_and_tree_remove_over_the_wire() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    apps(&w, start()).await.unwrap();
    assert!(wait_apps(&w, |l| l[0].root.is_some()).await);
    let generation = w.behavior.lock().unwrap().apps["ingest"].0;
    w.send(Msg::AppEvent(AppEvent {
        app: "ingest".into(),
        generation,
        kind: AppEventKind::RootExited(ExitReason::ShutdownWith(
            "restart intensity exceeded: 2 restarts in 5 s, intensity 1".into(),
        )),
    }));
    assert!(wait_apps(&w, |l| l[0].status == AppStatus::Failed).await);
    let again = apps(
        &w,
        Request::TreeRestart {
            id: "ingest".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again[0].status, AppStatus::Running);
    assert_eq!(again[0].reason, None);
    assert!(w.behavior.lock().unwrap().apps["ingest"].0 > generation);
    let e = apps(
        &w,
        Request::TreeRemove {
            id: "ingest".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyRunning);
    apps(
        &w,
        Request::TreeStop {
            id: "ingest".into(),
        },
    )
    .await
    .unwrap();
    let left = apps(
        &w,
        Request::TreeRemove {
            id: "ingest".into(),
        },
    )
    .await
    .unwrap();
    assert!(left.is_empty());
    for body in [
        Request::TreeRestart {
            id: "ingest".into(),
        },
        Request::TreeRemove {
            id: "ingest".into(),
        },
    ] {
        assert_eq!(apps(&w, body).await.unwrap_err().code, ErrorCode::NotFound);
    }
    master.shutdown().await;
}

/// A name a client registers for a process of a worker is watched by that
/// worker (WatchName); when the worker refuses to watch it, the name is
/// released.
#[tokio::test]
async fn a_name_for_a_remote_process_is_watched_by_its_node() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let pid = Pid::new(w.id, 5);
    let body = Request::RegisterName {
        name: "remote".into(),
        pid,
    };
    assert_eq!(ctl.request(body).await, Response::Registered(true));
    w.expect_event(WAIT, "WatchName", |e| {
        matches!(e, Event::Request(Request::WatchName { name, pid: p }) if name == "remote" && *p == pid)
    })
    .await;
    // Watched: the name stays.
    assert_eq!(
        ctl.request(Request::WhereIs {
            name: "remote".into()
        })
        .await,
        Response::WhereIs(Some(pid))
    );

    w.behavior.lock().unwrap().watch_error =
        Some(RemoteError::new(ErrorCode::NotFound, "no such process"));
    let other = Pid::new(w.id, 6);
    let body = Request::RegisterName {
        name: "ghost".into(),
        pid: other,
    };
    assert_eq!(ctl.request(body).await, Response::Registered(true));
    let mut released = false;
    for _ in 0..200 {
        if ctl
            .request(Request::WhereIs {
                name: "ghost".into(),
            })
            .await
            == Response::WhereIs(None)
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "a name its node would not watch was kept");
    master.shutdown().await;
}
