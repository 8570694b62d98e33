//! The state directory: apps and recently-down node ids survive a master
//! restart; a rejoining worker's running root is adopted (never a second
//! root); apps whose node does not come back start elsewhere after the
//! grace period; fencing works across the restart.

mod support;

use std::time::Duration;

use pool_master::{BootTree, Error, MasterConfig};
use pool_proto::{AppStatus, AppSummary, DownReason, Request, Response, RunningApp, TreeSpec};
use support::*;

const TREE: &str = "[supervisor]\nid = \"app\"\n\n[[supervisor.children]]\nid = \"c\"\nfunction = \"builtin.echo\"\n";

fn spec() -> TreeSpec {
    pool_proto::tree::parse_tree_str("app.toml", TREE, |_| true).unwrap()
}

fn cfg(dir: &std::path::Path) -> MasterConfig {
    let mut c = config();
    c.state_dir = Some(dir.to_owned());
    c
}

async fn list(n: &SimNode) -> Vec<AppSummary> {
    match n.request(Request::TreeList).await {
        Response::Apps(a) => a,
        other => panic!("{other:?}"),
    }
}

async fn start_app_on(n: &SimNode) -> u64 {
    match n
        .expect_event(WAIT, "StartApp", |e| {
            matches!(e, Event::Request(Request::StartApp { .. }))
        })
        .await
    {
        Event::Request(Request::StartApp { generation, .. }) => generation,
        _ => unreachable!(),
    }
}

/// After a master restart on the same state directory the app is still
/// known; its worker rejoins listing the root and is adopted: no second
/// StartApp, to it or to another worker, and the app shows running there.
#[tokio::test]
async fn restart_adopts_the_running_root() {
    let dir = tempfile::tempdir().unwrap();
    let master = start_master(cfg(dir.path()), false).await;
    let spec_w1 = SimSpec::worker("w1");
    let w1 = SimNode::join(master.addr(), spec_w1.clone()).await.unwrap();
    let r = w1
        .request(Request::TreeStart {
            spec: spec(),
            source: None,
            text: None,
        })
        .await;
    assert!(matches!(r, Response::Apps(_)), "{r:?}");
    let generation = start_app_on(&w1).await;
    let (_, root) = w1.behavior.lock().unwrap().apps["app"];
    master.shutdown().await;
    drop(w1);

    let master = start_master(cfg(dir.path()), false).await;
    let mut other = SimNode::join(master.addr(), SimSpec::worker("other"))
        .await
        .unwrap();
    other.keep_reporting(Duration::from_millis(100));
    let apps = list(&other).await;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].status, AppStatus::Running);
    let mut back = spec_w1.clone();
    back.apps = vec![RunningApp {
        app: "app".into(),
        generation,
        root,
    }];
    let mut w1 = SimNode::join(master.addr(), back).await.unwrap();
    w1.keep_reporting(Duration::from_millis(100));
    assert!(w1.welcome.fence.is_none(), "adopted, nothing to stop");
    let apps = list(&w1).await;
    assert_eq!(apps[0].root, Some(root));
    assert_eq!(apps[0].node.as_deref(), Some("w1"));
    // Past the grace period (2 × 600 ms), still no second root anywhere.
    for n in [&w1, &other] {
        n.expect_no_event(Duration::from_millis(1500), "a second StartApp", |e| {
            matches!(e, Event::Request(Request::StartApp { .. }))
        })
        .await;
    }
    master.shutdown().await;
}

/// A running app whose node does not rejoin within the grace period is
/// started on another worker with the next generation; when the old node
/// comes back listing the old root, it is told to stop it.
#[tokio::test]
async fn grace_expiry_restarts_elsewhere_and_fences_the_stale_root() {
    let dir = tempfile::tempdir().unwrap();
    let master = start_master(cfg(dir.path()), false).await;
    let spec_w1 = SimSpec::worker("w1");
    let w1 = SimNode::join(master.addr(), spec_w1.clone()).await.unwrap();
    w1.request(Request::TreeStart {
        spec: spec(),
        source: None,
        text: None,
    })
    .await;
    let generation = start_app_on(&w1).await;
    let (_, root) = w1.behavior.lock().unwrap().apps["app"];
    master.shutdown().await;
    drop(w1);

    let master = start_master(cfg(dir.path()), false).await;
    let mut w2 = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    w2.keep_reporting(Duration::from_millis(100));
    assert_eq!(start_app_on(&w2).await, generation + 1);
    let mut back = spec_w1;
    back.apps = vec![RunningApp {
        app: "app".into(),
        generation,
        root,
    }];
    let w1 = SimNode::join(master.addr(), back).await.unwrap();
    let fence = w1.welcome.fence.clone().expect("the stale root is fenced");
    assert_eq!(fence.stop_apps, vec!["app".to_owned()]);
    master.shutdown().await;
}

/// A node declared down before the master restarted is still fenced when
/// it reconnects with the same id afterwards.
#[tokio::test]
async fn fencing_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let master = start_master(cfg(dir.path()), false).await;
    let mut watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    watcher.keep_reporting(Duration::from_millis(100));
    let spec = SimSpec::worker("w1");
    let _w1 = SimNode::join(master.addr(), spec.clone()).await.unwrap();
    watcher
        .expect_event(WAIT, "NodeDown(w1)", |e| {
            matches!(e, Event::NodeDown { node, reason: DownReason::Timeout } if *node == spec.id)
        })
        .await;
    master.shutdown().await;

    let master = start_master(cfg(dir.path()), false).await;
    let back = SimNode::join(master.addr(), spec).await.unwrap();
    assert!(back.welcome.fence.is_some());
    assert_eq!(back.request(Request::Ready).await, Response::Ok);
    master.shutdown().await;
}

/// Trees given at boot are submitted unless already known, and a second
/// master cannot use a state directory in use.
#[tokio::test]
async fn boot_trees_and_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.trees = vec![BootTree {
        spec: spec(),
        source: Some("app.toml".into()),
    }];
    let master = start_master(c.clone(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    assert_eq!(start_app_on(&w).await, 1);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = pool_master::spawn_master(c.clone(), listener, None, std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateDirLocked { .. }), "{err}");
    master.shutdown().await;
    drop(w);

    // Known by now: the saved app (generation 1) is kept, not resubmitted.
    let master = start_master(c, false).await;
    let mut w = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    w.keep_reporting(Duration::from_millis(100));
    assert_eq!(
        start_app_on(&w).await,
        2,
        "restarted after the grace, next generation"
    );
    master.shutdown().await;
}

/// A crash (abort) keeps what was already written: a tree answered to the
/// client is on disk.
#[tokio::test]
async fn acknowledged_tree_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let master = start_master(cfg(dir.path()), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.request(Request::TreeStart {
        spec: spec(),
        source: None,
        text: None,
    })
    .await;
    master.abort();
    drop(w);
    // The lock is released once the aborted writer has ended.
    let mut master = None;
    for _ in 0..100 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        match pool_master::spawn_master(
            cfg(dir.path()),
            listener,
            None,
            std::future::pending::<()>(),
        )
        .await
        {
            Ok(m) => {
                master = Some(m);
                break;
            }
            Err(Error::StateDirLocked { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    let master = master.expect("the state directory is released after an abort");
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    assert_eq!(list(&ctl).await.len(), 1);
    master.shutdown().await;
}
