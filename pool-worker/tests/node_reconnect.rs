//! Reconnecting: the master goes away (restarts, drops the connection,
//! refuses to serve); processes keep running, the node dials again with a
//! capped, jittered, doubling back-off, rejoins as the same incarnation,
//! and re-registers its global names and application roots.

mod support;

use std::time::Duration;

use pool_proto::RunningApp;
use pool_worker::Error;
use support::{Cluster, wait_until};
use tokio::time::Instant;

/// While the master restarts, processes keep running; the node rejoins
/// as the same incarnation (a rejoin, not fenced: the new master does not
/// remember it), and counts as connected again.
#[tokio::test(start_paused = true)]
async fn processes_keep_running_and_the_node_rejoins_after_a_master_restart() {
    let mut c = Cluster::new();
    let w1 = c.worker("w1").await;
    let s = w1
        .pool()
        .spawn(pool_worker::Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap();
    c.master.restart().await;
    wait_until("the node sees the master gone", || !w1.is_connected()).await;
    assert!(w1.runtime().is_alive(s.pid));
    wait_until("the node rejoins", || c.master.is_live("w1")).await;
    wait_until("the node is connected", || w1.is_connected()).await;
    assert!(w1.runtime().is_alive(s.pid));
    let (join, fenced) = c.master.joins_of("w1").remove(0);
    assert!(join.rejoin && !fenced);
    assert_eq!(join.info.id, w1.id());
}

/// A restarted master learns the global names again from the nodes'
/// Joins: a name held before the restart resolves after it.
#[tokio::test(start_paused = true)]
async fn global_names_are_registered_again_after_a_master_restart() {
    let mut c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let holder = pool
        .spawn(pool_worker::Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap()
        .pid;
    assert!(pool.register_global("svc", holder).await.unwrap());
    c.master.restart().await;
    wait_until("the node rejoins", || c.master.is_live("w1")).await;
    let (join, _) = c.master.joins_of("w1").remove(0);
    assert_eq!(join.names, vec![("svc".to_owned(), holder)]);
    wait_until("the node is connected", || w1.is_connected()).await;
    assert_eq!(pool.whereis("svc").await.unwrap(), Some(holder));
}

/// Application roots the node runs are listed in its Join after a master
/// restart, with their generation and root pid, so the master adopts
/// them instead of starting them again.
#[tokio::test(start_paused = true)]
async fn application_roots_are_listed_again_after_a_master_restart() {
    let mut c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let spec = support::one_child_app("shop", "builtin.echo");
    let root = support::start_app(&c.master, "w1", "shop", 3, spec).await;
    c.master.restart().await;
    wait_until("the node rejoins", || c.master.is_live("w1")).await;
    let (join, _) = c.master.joins_of("w1").remove(0);
    assert_eq!(
        join.apps,
        vec![RunningApp {
            app: "shop".into(),
            generation: 3,
            root
        }]
    );
}

/// While the master refuses to serve, the node dials again and again:
/// each wait is half to all of a step that doubles from 100 ms and is
/// capped at 5 s.
#[tokio::test(start_paused = true)]
async fn the_node_backs_off_doubling_with_jitter_up_to_the_cap() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    c.master.set_accepting(false);
    let lost = Instant::now();
    c.master.drop_node("w1");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let attempts: Vec<Instant> = c.master.attempts().into_iter().skip(1).collect();
    assert!(attempts.len() >= 10, "{} attempts", attempts.len());
    let mut prev = lost;
    let mut step = Duration::from_millis(100);
    for (i, at) in attempts.iter().take(10).enumerate() {
        let gap = *at - prev;
        assert!(
            gap >= step / 2 && gap <= step,
            "wait {i} was {gap:?}, not within half to all of {step:?}"
        );
        prev = *at;
        step = (step * 2).min(Duration::from_secs(5));
    }
}

/// Once the master serves again, the node rejoins (fenced: the master
/// declared it down when the connection dropped) within one capped step.
#[tokio::test(start_paused = true)]
async fn the_node_rejoins_once_the_master_serves_again() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    c.master.set_accepting(false);
    c.master.drop_node("w1");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!w1.is_connected());
    let back = Instant::now();
    c.master.set_accepting(true);
    wait_until("the node rejoins", || w1.is_connected()).await;
    assert!(back.elapsed() <= Duration::from_secs(5));
    let (join, fenced) = c.master.joins_of("w1").pop().unwrap();
    assert!(join.rejoin && fenced);
}

/// A request made while the master restarts waits for the link instead of
/// failing: a short restart is invisible to the caller.
#[tokio::test(start_paused = true)]
async fn a_request_waits_for_the_link_across_a_short_master_restart() {
    let mut c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let asked = tokio::spawn(async move {
        // Let the master go first.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let t = Instant::now();
        (pool.whereis("nobody").await, t.elapsed())
    });
    c.master.away(Duration::from_secs(1)).await;
    let (answer, took) = asked.await.unwrap();
    assert_eq!(answer.unwrap(), None);
    assert!(
        took >= Duration::from_millis(990),
        "answered after {took:?}"
    );
}

/// When the master stays away, a request fails after the request timeout
/// with an error that names the master's address.
#[tokio::test(start_paused = true)]
async fn a_request_fails_when_the_master_stays_away() {
    let mut c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let away = tokio::spawn(async move { c.master.away(Duration::from_secs(60)).await });
    wait_until("the node sees the master gone", || !w1.is_connected()).await;
    let t = Instant::now();
    let e = pool.whereis("nobody").await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_secs(5));
    match &e {
        Error::MasterUnreachable { addr, why } => {
            assert_eq!(addr, support::MASTER_ADDR);
            assert!(why.contains("not connected"), "{why}");
        }
        other => panic!("expected the master unreachable, got {other}"),
    }
    away.abort();
}

/// Reports resume on the new connection after a rejoin.
#[tokio::test(start_paused = true)]
async fn reports_resume_after_a_rejoin() {
    let mut c = Cluster::new();
    let _w1 = c.worker("w1").await;
    c.master.restart().await;
    wait_until("the node rejoins", || c.master.is_live("w1")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(c.master.reports_of("w1") >= 9);
}
