//! Joining: a worker's Join and the Welcome, refusals that end the start
//! at once (a duplicate name, a wrong cookie), a master that is not there
//! yet, and the load reports that follow.

mod support;

use std::time::Duration;

use pool_proto::{ErrorCode, NodeKind};
use pool_worker::{Error, Node, NodeConfig};
use support::{Cluster, FakeMaster, MASTER_ADDR, REPORT_INTERVAL, cookie, wait_until};

/// A worker joins: its Join names it, lists its functions (the built-ins
/// and its own), claims nothing yet and is no rejoin; it counts as
/// connected, and the master counts it live.
#[tokio::test(start_paused = true)]
async fn a_worker_joins_and_is_welcomed() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    assert!(w1.is_connected());
    assert!(c.master.is_live("w1"));
    assert_eq!(c.master.id_of("w1"), Some(w1.id()));
    assert_eq!(w1.addr(), "w1:7000");
    let joins = c.master.joins_of("w1");
    assert_eq!(joins.len(), 1);
    let (join, fenced) = &joins[0];
    assert!(!fenced);
    assert!(!join.rejoin);
    assert_eq!(join.info.kind, NodeKind::Worker);
    assert_eq!(join.info.addr, "w1:7000");
    assert!(join.functions.iter().any(|f| f == "builtin.echo"));
    assert!(join.functions.iter().any(|f| f == "test.stubborn"));
    assert!(join.names.is_empty() && join.apps.is_empty());
}

/// A second live node with the same name is refused at once with
/// `DuplicateName` (no retry), and the first stays live.
#[tokio::test(start_paused = true)]
async fn a_duplicate_name_is_refused_at_once() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let listener = c.net.bind("other:7000").unwrap();
    let started = Node::builder(c.config("w1"))
        .listen(listener)
        .transport(c.net.dialer("other:7000"))
        .on_current_runtime()
        .start()
        .await;
    match started {
        Err(e) => {
            assert_eq!(e.code(), Some(ErrorCode::DuplicateName), "{e}");
            assert!(e.to_string().contains("pick another --name"), "{e}");
        }
        Ok(_) => panic!("a duplicate name joined"),
    }
    assert_eq!(c.master.attempts().len(), 2, "the refused node retried");
    assert!(c.master.is_live("w1"));
}

/// A node with the wrong cookie fails the handshake; that failure is
/// permanent, so the start fails at once instead of retrying.
#[tokio::test(start_paused = true)]
async fn a_wrong_cookie_is_refused_at_once() {
    let c = Cluster::new();
    let mut config = c.config("w1");
    config.cookie = pool_proto::Cookie::new("another-cookie", "test").unwrap();
    let started = c.builder_with(config).start().await;
    assert!(
        matches!(
            started,
            Err(Error::Proto(pool_proto::Error::BadCookie { .. }))
        ),
        "{:?}",
        started.err()
    );
    assert_eq!(c.master.attempts().len(), 1);
}

/// A worker started before its master keeps trying, and joins once the
/// master comes up; the start waits for it.
#[tokio::test(start_paused = true)]
async fn a_worker_waits_for_a_master_that_is_not_up_yet() {
    let net = pool_proto::transport::MemNetwork::new();
    let listener = net.bind("w1:7000").unwrap();
    let config = NodeConfig::worker("w1", MASTER_ADDR, cookie());
    let start = tokio::spawn(
        Node::builder(config)
            .listen(listener)
            .transport(net.dialer("w1:7000"))
            .on_current_runtime()
            .start(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !start.is_finished(),
        "the start gave up on a missing master"
    );
    let master = FakeMaster::start(&net, cookie());
    let w1 = tokio::time::timeout(Duration::from_secs(10), start)
        .await
        .expect("the worker joins within a back-off step of the master's start")
        .unwrap()
        .expect("the worker joins");
    assert!(w1.is_connected());
    assert!(master.is_live("w1"));
}

/// A hidden node (a client such as poolctl) does not wait for a master
/// that is not there: its start fails with the master unreachable.
#[tokio::test(start_paused = true)]
async fn a_client_gives_up_when_the_master_is_unreachable() {
    let net = pool_proto::transport::MemNetwork::new();
    let config = NodeConfig::hidden("ctl", MASTER_ADDR, cookie());
    let started = Node::builder(config)
        .transport(net.dialer("ctl"))
        .on_current_runtime()
        .start()
        .await;
    match started {
        Err(Error::MasterUnreachable { addr, .. }) => assert_eq!(addr, MASTER_ADDR),
        other => panic!("expected the master unreachable, got {:?}", other.err()),
    }
}

/// A worker needs a listener for its peers: without one the start fails
/// with a configuration error that says how to give it one.
#[tokio::test(start_paused = true)]
async fn a_worker_without_a_listener_is_a_configuration_error() {
    let c = Cluster::new();
    let started = Node::builder(c.config("w1"))
        .transport(c.net.dialer("w1"))
        .on_current_runtime()
        .start()
        .await;
    match started {
        Err(Error::Config(why)) => assert!(why.contains("NodeBuilder::listener"), "{why}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

/// Workers learn of each other from the Welcome (those before them) and
/// from NodeUp (those after): each resolves the other's id to its name.
#[tokio::test(start_paused = true)]
async fn workers_learn_of_each_other() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2", "w3"]).await;
    assert_eq!(w[0].pool().node_name_of(w[2].id()).as_deref(), Some("w3"));
    assert_eq!(w[2].pool().node_name_of(w[0].id()).as_deref(), Some("w1"));
    assert_eq!(w[1].pool().node_name_of(w[1].id()).as_deref(), Some("w2"));
}

/// A worker reports its load at the interval the master's Welcome asks
/// for (100 ms here): ten reports in a second of virtual time.
#[tokio::test(start_paused = true)]
async fn load_reports_follow_the_masters_interval() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let before = c.master.reports_of("w1");
    tokio::time::sleep(REPORT_INTERVAL * 10 + REPORT_INTERVAL / 2).await;
    assert_eq!(c.master.reports_of("w1") - before, 10);
}

/// An explicit `--report-interval` wins over the master's.
#[tokio::test(start_paused = true)]
async fn an_explicit_report_interval_wins() {
    let c = Cluster::new();
    let mut config = c.config("w1");
    config.report_interval = Some(Duration::from_millis(250));
    let _w1 = c.builder_with(config).start().await.unwrap();
    let before = c.master.reports_of("w1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(c.master.reports_of("w1") - before, 4);
}

/// A client joins as a hidden node: no address, no reports, and the
/// workers hear of it.
#[tokio::test(start_paused = true)]
async fn a_client_joins_as_a_hidden_node() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let ctl = c.hidden("ctl").await;
    assert!(ctl.addr().is_empty());
    let (join, _) = c.master.joins_of("ctl").remove(0);
    assert_eq!(join.info.kind, NodeKind::Hidden);
    wait_until("the worker knows the client", || {
        w1.pool().node_name_of(ctl.id()).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(c.master.reports_of("ctl"), 0);
}
