//! The worker's lease on its master session (docs/semantics.md, "The
//! worker's lease"): a worker whose reports the master stopped
//! acknowledging asks its peers whether they still hear the master; cut
//! off, it stops the supervised work it hosts before the master restarts
//! it elsewhere, and rejoins; with the master gone for everyone (or no
//! peer at all), it keeps everything running.

mod support;

use std::time::Duration;

use pool_proto::{AppEventKind, Request, Response};
use pool_worker::Spawn;
use support::{Cluster, Probe, Seen, addr_of, identity, raw_peer, wait_until};
use tokio::time::Instant;

/// The fake master's node timeout is 3 s: the lease is 1.5 s, and the
/// peers have one report interval (100 ms) to answer.
const LEASE: Duration = Duration::from_millis(1500);

/// True if the master heard that `app`'s root exited.
fn root_exit_reported(c: &Cluster, app: &str) -> bool {
    c.master.seen().iter().any(|s| {
        matches!(s, Seen::AppEvent { event, .. }
            if event.app == app && matches!(event.kind, AppEventKind::RootExited(_)))
    })
}

/// A worker whose reports the master no longer acknowledges while a peer
/// still hears the master is the one cut off: within the lease and one
/// interval it kills its application root (and the root's children, even
/// one that traps exits) and the child it hosts for a process elsewhere,
/// without reporting the root's end; then it drops the session and
/// rejoins (fenced: the master declared it down when it closed) with no
/// roots in its Join.
#[tokio::test(start_paused = true)]
async fn a_worker_cut_off_while_a_peer_hears_the_master_stops_its_work() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let root = support::start_app(
        &c.master,
        "w2",
        "shop",
        1,
        support::one_child_app("shop", "test.stubborn"),
    )
    .await;
    let stubborn = w[1]
        .runtime()
        .processes()
        .into_iter()
        .find(|p| p.function == "test.stubborn")
        .expect("the app's child runs on w2")
        .pid;
    let hosted = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w2"))
        .await
        .unwrap()
        .pid;
    let _link = Probe::spawn(w[0].runtime(), true, move |ctx| {
        ctx.link(hosted).unwrap();
    });
    let before = c.master.joins_of("w2").len();
    // The lease holds once the master acknowledged a report.
    wait_until("w2 reported", || c.master.reports_of("w2") >= 2).await;

    c.master.mute("w2", true);
    let muted = Instant::now();
    let rt = w[1].runtime();
    wait_until("w2 stopped its supervised work", || {
        !rt.is_alive(root) && !rt.is_alive(stubborn) && !rt.is_alive(hosted)
    })
    .await;
    let took = muted.elapsed();
    assert!(
        took <= LEASE + Duration::from_millis(300),
        "the work stopped {took:?} after the master fell silent"
    );
    c.master.mute("w2", false);
    wait_until("w2 rejoined", || {
        c.master.joins_of("w2").len() > before && c.master.is_live("w2")
    })
    .await;
    let (join, fenced) = c.master.joins_of("w2").pop().unwrap();
    assert!(join.rejoin && fenced && join.apps.is_empty(), "{join:?}");
    assert!(!root_exit_reported(&c, "shop"));
}

/// The master gone for everyone (away for 5 s, past the lease): every
/// worker's lease runs out, the peers say they lost it too, and nothing is
/// stopped; both rejoin with their roots.
#[tokio::test(start_paused = true)]
async fn a_master_gone_for_everyone_stops_nothing() {
    let mut c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let r1 = support::start_app(
        &c.master,
        "w1",
        "a",
        1,
        support::one_child_app("a", "builtin.echo"),
    )
    .await;
    let r2 = support::start_app(
        &c.master,
        "w2",
        "b",
        1,
        support::one_child_app("b", "builtin.echo"),
    )
    .await;
    wait_until("both reported", || {
        c.master.reports_of("w1") >= 2 && c.master.reports_of("w2") >= 2
    })
    .await;
    c.master.away(Duration::from_secs(5)).await;
    assert!(w[0].runtime().is_alive(r1) && w[1].runtime().is_alive(r2));
    wait_until("both rejoined", || {
        c.master.is_live("w1") && c.master.is_live("w2")
    })
    .await;
    assert!(w[0].runtime().is_alive(r1) && w[1].runtime().is_alive(r2));
    let apps: Vec<String> = ["w1", "w2"]
        .iter()
        .flat_map(|n| c.master.joins_of(n).pop().unwrap().0.apps)
        .map(|a| a.app)
        .collect();
    assert_eq!(apps, ["a", "b"]);
}

/// A worker with no peer at all whose master falls silent keeps its root
/// running (nobody to ask: it cannot tell it is the one cut off).
#[tokio::test(start_paused = true)]
async fn a_worker_without_peers_keeps_running() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let root = support::start_app(
        &c.master,
        "w1",
        "solo",
        1,
        support::one_child_app("solo", "builtin.echo"),
    )
    .await;
    wait_until("w1 reported", || c.master.reports_of("w1") >= 2).await;
    c.master.mute("w1", true);
    tokio::time::sleep(LEASE * 3).await;
    assert!(w1.runtime().is_alive(root));
    assert!(w1.is_connected());
}

/// A peer asking `MasterSeen` is told how long ago the master last
/// acknowledged a report (within a report interval or so while it does);
/// a node that lost its master session says `None`.
#[tokio::test(start_paused = true)]
async fn master_seen_says_how_long_ago_the_master_acknowledged_us() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let mut peer = raw_peer(&c.net, "asker:1", &addr_of("w1"), identity("asker"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = peer.request(Request::MasterSeen).await;
    match peer.response(id).await {
        Response::MasterSeen {
            heard_ms_ago: Some(ms),
        } => assert!(ms <= 250, "heard {ms} ms ago"),
        other => panic!("MasterSeen answered {other:?}"),
    }
    c.master.set_accepting(false);
    c.net.partition(&addr_of("w1"), support::MASTER_ADDR);
    let w1_lost = async {
        loop {
            let id = peer.request(Request::MasterSeen).await;
            if let Response::MasterSeen { heard_ms_ago: None } = peer.response(id).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(support::WAIT, w1_lost)
        .await
        .expect("w1 says it has no master session");
}
