//! Failure detection and fencing: silence past the node timeout and closed
//! connections are node downs pushed to every node; a node declared down
//! that comes back with the same id is fenced until Ready; garbage on the
//! port closes only that connection.

mod support;

use std::time::{Duration, Instant};

use pool_proto::{DownReason, Request, Response};
use support::*;
use tokio::io::AsyncWriteExt;

/// A worker that stops reporting is declared down (Timeout) and the other
/// nodes are told within node_timeout plus a small margin; one that keeps
/// reporting is not.
#[tokio::test]
async fn silent_worker_times_out() {
    let master = start_master(config(), false).await;
    let mut watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    watcher.keep_reporting(Duration::from_millis(100));
    let silent = SimNode::join(master.addr(), SimSpec::worker("silent"))
        .await
        .unwrap();
    let joined = Instant::now();
    let ev = watcher
        .expect_event(
            Duration::from_secs(3),
            "NodeDown(silent)",
            |e| matches!(e, Event::NodeDown { node, .. } if *node == silent.id),
        )
        .await;
    let took = joined.elapsed();
    assert_eq!(
        ev,
        Event::NodeDown {
            node: silent.id,
            reason: DownReason::Timeout
        }
    );
    // node_timeout is 600 ms: down no earlier, and promptly after.
    assert!(took >= Duration::from_millis(550), "too early: {took:?}");
    assert!(
        took < Duration::from_millis(600 + 400),
        "too late: {took:?}"
    );
    // The silent node's connection was closed by the master.
    silent
        .expect_event(WAIT, "its connection closed", |e| *e == Event::Closed)
        .await;
    // The reporting node is still there.
    let Response::Nodes(nodes) = watcher.request(Request::ListNodes).await else {
        panic!()
    };
    assert_eq!(nodes.len(), 1);
    master.shutdown().await;
}

/// A closed connection is a node down at once (ConnectionClosed).
#[tokio::test]
async fn closed_connection_is_down_at_once() {
    let master = start_master(config(), false).await;
    let watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let id = w.id;
    let t = Instant::now();
    w.close();
    watcher
        .expect_event(Duration::from_millis(400), "NodeDown(w1)", |e| {
            *e == Event::NodeDown {
                node: id,
                reason: DownReason::ConnectionClosed,
            }
        })
        .await;
    assert!(t.elapsed() < Duration::from_millis(400));
    master.shutdown().await;
}

/// A node declared down by timeout that reconnects with the same id gets
/// Welcome.fence and is announced to the others only after Ready.
#[tokio::test]
async fn declared_down_node_is_fenced_until_ready() {
    let master = start_master(config(), false).await;
    let mut watcher = SimNode::join(master.addr(), SimSpec::worker("watcher"))
        .await
        .unwrap();
    watcher.keep_reporting(Duration::from_millis(100));
    let spec = SimSpec::worker("w1");
    let first = SimNode::join(master.addr(), spec.clone()).await.unwrap();
    watcher
        .expect_event(WAIT, "NodeDown(w1)", |e| matches!(e, Event::NodeDown { node, reason: DownReason::Timeout } if *node == spec.id))
        .await;
    drop(first);

    let back = SimNode::join(master.addr(), spec.clone()).await.unwrap();
    let fence = back.welcome.fence.clone().expect("a fenced Welcome");
    assert!(fence.stop_apps.is_empty() && fence.lost_names.is_empty());
    watcher
        .expect_no_event(
            Duration::from_millis(300),
            "NodeUp(w1) before Ready",
            |e| matches!(e, Event::NodeUp(i) if i.id == spec.id),
        )
        .await;
    // Not live: not placed on.
    let Response::Nodes(nodes) = watcher.request(Request::ListNodes).await else {
        panic!()
    };
    assert!(nodes.iter().all(|n| n.id != spec.id));

    assert_eq!(back.request(Request::Ready).await, Response::Ok);
    watcher
        .expect_event(
            WAIT,
            "NodeUp(w1) after Ready",
            |e| matches!(e, Event::NodeUp(i) if i.id == spec.id),
        )
        .await;
    master.shutdown().await;
}

/// Random bytes, an over-limit length prefix and an undecodable frame
/// after a good handshake close those connections only; the master keeps
/// serving its nodes.
#[tokio::test]
async fn garbage_on_the_port_leaves_the_master_serving() {
    let mut cfg = config();
    cfg.handshake_timeout = Duration::from_secs(1);
    let master = start_master(cfg, false).await;
    let mut w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.keep_reporting(Duration::from_millis(100));

    // Random bytes where the handshake should be (a small length prefix,
    // then noise).
    let mut junk = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    let mut bytes: Vec<u8> = vec![0, 0, 0, 64];
    bytes.extend((0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    junk.write_all(&bytes).await.unwrap();
    // A 4 GiB length prefix.
    let mut huge = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    huge.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    // An undecodable frame after a successful handshake.
    let raw = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    let me = pool_proto::Identity {
        node: pool_proto::NodeId::random(),
        name: "raw".into(),
        kind: pool_proto::NodeKind::Worker,
    };
    let (conn, _) = pool_proto::handshake::initiate(raw, &me, &cookie(), &Default::default())
        .await
        .unwrap();
    let mut bad = conn.into_inner();
    bad.write_all(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1])
        .await
        .unwrap();

    // All three are closed by the master, promptly.
    for s in [&mut junk, &mut huge, &mut bad] {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match tokio::io::AsyncReadExt::read(s, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the master kept a garbage connection open");
    }
    // The master still serves the joined node and new ones.
    assert_eq!(w.request(Request::Ping).await, Response::Pong);
    let again = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    assert_eq!(again.request(Request::Ping).await, Response::Pong);
    master.shutdown().await;
}
