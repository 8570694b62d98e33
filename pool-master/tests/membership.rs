//! Joining the pool: the Welcome, membership pushes, refusals (duplicate
//! name, bad cookie, a master joining), hidden nodes and a node's session
//! being replaced by its own reconnect.

mod support;

use std::time::Duration;

use pool_proto::{Cookie, ErrorCode, NodeKind, Request, Response};
use support::*;

/// The Welcome lists every live node (the joiner included, hidden nodes with
/// kind Hidden and no address) and the timings; a later join is pushed to
/// every node already there as NodeUp.
#[tokio::test]
async fn join_welcomes_and_pushes_node_up() {
    let master = start_master(config(), false).await;
    let w1 = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    assert_eq!(w1.welcome.members.len(), 1);
    assert_eq!(w1.welcome.members[0].id, w1.id);
    assert_eq!(w1.welcome.report_interval_ms, 100);
    assert_eq!(w1.welcome.node_timeout_ms, 600);
    assert!(w1.welcome.fence.is_none());

    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let up = w1
        .expect_event(
            WAIT,
            "NodeUp(ctl)",
            |e| matches!(e, Event::NodeUp(i) if i.name == "ctl"),
        )
        .await;
    let Event::NodeUp(info) = up else {
        unreachable!()
    };
    assert_eq!(info.kind, NodeKind::Hidden);
    assert_eq!(info.addr, "");

    let w2 = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    let mut names: Vec<_> = w2.welcome.members.iter().map(|m| m.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["ctl", "w1", "w2"]);
    w1.expect_event(
        WAIT,
        "NodeUp(w2)",
        |e| matches!(e, Event::NodeUp(i) if i.name == "w2"),
    )
    .await;
    ctl.expect_event(
        WAIT,
        "NodeUp(w2)",
        |e| matches!(e, Event::NodeUp(i) if i.name == "w2"),
    )
    .await;
    master.shutdown().await;
}

/// A second live node with the same name and another id is refused with
/// DuplicateName and a message that says what to do; the first stays.
#[tokio::test]
async fn duplicate_name_is_refused_with_the_message() {
    let master = start_master(config(), false).await;
    let w1 = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let err = match SimNode::join(master.addr(), SimSpec::worker("w1")).await {
        Err(JoinError::Refused(e)) => e,
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|n| n.name.clone())
        ),
    };
    assert_eq!(err.code, ErrorCode::DuplicateName);
    assert_eq!(
        err.message,
        format!(
            "a live node named w1 ({}) exists: pick another --name or stop the other node",
            w1.id
        )
    );
    assert_eq!(w1.request(Request::Ping).await, Response::Pong);
    master.shutdown().await;
}

/// A node with another cookie fails the handshake, and the error names the
/// cookie; the master goes on serving.
#[tokio::test]
async fn bad_cookie_is_refused() {
    let master = start_master(config(), false).await;
    let mut spec = SimSpec::worker("intruder");
    spec.cookie = Cookie::new("not-the-cookie", "test").unwrap();
    let err = match SimNode::join(master.addr(), spec).await {
        Err(JoinError::Handshake(e)) => e,
        other => panic!(
            "expected a handshake failure, got {:?}",
            other.map(|n| n.name.clone())
        ),
    };
    assert!(err.to_string().contains("cookie"), "{err}");
    let ok = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    assert_eq!(ok.request(Request::Ping).await, Response::Pong);
    master.shutdown().await;
}

/// A node claiming to be a master in its Join is refused.
#[tokio::test]
async fn a_master_cannot_join() {
    let master = start_master(config(), false).await;
    let mut spec = SimSpec::worker("m2");
    spec.kind = NodeKind::Master;
    match SimNode::join(master.addr(), spec).await {
        Err(JoinError::Handshake(_)) | Err(JoinError::Closed) | Err(JoinError::Refused(_)) => {}
        Ok(_) => panic!("a master joined"),
    }
    master.shutdown().await;
}

/// The same id reconnecting replaces its old session: the old connection is
/// closed, the node is not declared down, and it stays a member.
#[tokio::test]
async fn same_id_reconnect_replaces_the_session() {
    let master = start_master(config(), false).await;
    let watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    let spec = SimSpec::worker("w1");
    let first = SimNode::join(master.addr(), spec.clone()).await.unwrap();
    watcher
        .expect_event(
            WAIT,
            "NodeUp(w1)",
            |e| matches!(e, Event::NodeUp(i) if i.name == "w1"),
        )
        .await;
    let second = SimNode::join(master.addr(), spec).await.unwrap();
    assert!(second.welcome.fence.is_none());
    first
        .expect_event(WAIT, "the old session closed", |e| *e == Event::Closed)
        .await;
    watcher
        .expect_no_event(
            Duration::from_millis(300),
            "NodeDown(w1)",
            |e| matches!(e, Event::NodeDown { node, .. } if *node == second.id),
        )
        .await;
    let Response::Nodes(nodes) = watcher.request(Request::ListNodes).await else {
        panic!()
    };
    assert!(nodes.iter().any(|n| n.name == "w1"));
    master.shutdown().await;
}

/// Requests the master does not serve are refused and the connection stays
/// open; requests before Join are refused too.
#[tokio::test]
async fn unserved_requests_are_refused() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let r = w.request(Request::LocalProcesses).await;
    assert!(matches!(r, Response::Error(e) if e.code == ErrorCode::Refused));
    let r = w
        .request(Request::Join(pool_proto::Join {
            info: w.welcome.members[0].clone(),
            functions: vec![],
            names: vec![],
            apps: vec![],
            rejoin: false,
            wasm: false,
        }))
        .await;
    assert!(matches!(r, Response::Error(e) if e.code == ErrorCode::Refused));
    assert_eq!(w.request(Request::Ping).await, Response::Pong);
    master.shutdown().await;
}
