//! Global names through the Pool API: register, look up, send by name,
//! unregister; a name is released when its holder dies, and refused when
//! held by another process.

mod support;

use pool_proto::{ErrorCode, ExitReason};
use pool_worker::Spawn;
use support::{Cluster, Probe, Seen, wait_until};

/// A local process registered under a global name is found by any node,
/// reached by name, and gone once unregistered.
#[tokio::test(start_paused = true)]
async fn register_whereis_send_and_unregister() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut holder = Probe::spawn(w[0].runtime(), false, |_| {});
    assert!(
        w[0].pool()
            .register_global("svc", holder.pid)
            .await
            .unwrap()
    );
    let other = w[1].pool();
    assert_eq!(other.whereis("svc").await.unwrap(), Some(holder.pid));
    other.send_named("svc", 5u32).await.unwrap();
    assert_eq!(holder.message::<u32>().await, 5);
    assert_eq!(
        other.names().await.unwrap().into_iter().collect::<Vec<_>>(),
        [("svc".to_owned(), holder.pid)]
    );
    w[0].pool().unregister_global("svc").await.unwrap();
    assert_eq!(other.whereis("svc").await.unwrap(), None);
}

/// When the holder dies, its node releases the name (the master hears
/// `NameReleased`), and the name is free again.
#[tokio::test(start_paused = true)]
async fn a_name_is_released_when_its_holder_dies() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let holder = pool
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})).on("w1"))
        .await
        .unwrap()
        .pid;
    assert!(pool.register_global("svc", holder).await.unwrap());
    pool.exit(holder, ExitReason::Kill);
    wait_until("the name is released", || c.master.names().is_empty()).await;
    assert!(c.master.seen().contains(&Seen::NameReleased {
        name: "svc".into(),
        pid: holder
    }));
    let next = Probe::spawn(w1.runtime(), false, |_| {});
    assert!(pool.register_global("svc", next.pid).await.unwrap());
}

/// A name held by another process is refused (false, not an error); a
/// process of another node can hold a name too.
#[tokio::test(start_paused = true)]
async fn a_name_held_by_another_process_is_refused() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let a = Probe::spawn(w[0].runtime(), false, |_| {});
    let b = Probe::spawn(w[1].runtime(), false, |_| {});
    assert!(w[0].pool().register_global("svc", a.pid).await.unwrap());
    assert!(!w[1].pool().register_global("svc", b.pid).await.unwrap());
    // From w1, a name for w2's process (registered directly).
    assert!(w[0].pool().register_global("other", b.pid).await.unwrap());
    assert_eq!(w[0].pool().whereis("other").await.unwrap(), Some(b.pid));
}

/// Sending to a name nobody holds is an error that names the name.
#[tokio::test(start_paused = true)]
async fn sending_to_an_unknown_name_is_an_error() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let e = w1.pool().send_named("nobody", 1u32).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert!(e.to_string().contains("\"nobody\""), "{e}");
}

/// A holder that dies while its registration is on the way does not leave
/// a stale name: the release follows the registration.
#[tokio::test(start_paused = true)]
async fn a_holder_dying_during_registration_leaves_no_name() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let pool = w1.pool();
    let holder = pool
        .spawn(Spawn::new("builtin.sleep", serde_json::json!({"ms": 0})).on("w1"))
        .await
        .unwrap()
        .pid;
    let _ = pool.register_global("brief", holder).await;
    wait_until("no name is left", || c.master.names().is_empty()).await;
}

/// A name a client registered for a process of a worker is watched by
/// that worker (the master's `WatchName`): when the process dies, the
/// worker releases the name, as for a name its own process registered.
#[tokio::test(start_paused = true)]
async fn a_name_a_client_registered_for_a_workers_process_is_released_when_it_dies() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let holder = w1
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})))
        .await
        .unwrap()
        .pid;
    let client = c.hidden("ctl").await;
    assert!(client.pool().register_global("svc", holder).await.unwrap());
    w1.runtime().kill(holder);
    wait_until("the name is released", || {
        c.master.seen().contains(&Seen::NameReleased {
            name: "svc".into(),
            pid: holder,
        })
    })
    .await;
    assert_eq!(client.pool().whereis("svc").await.unwrap(), None);
}

/// A name another worker registered for one of our processes comes back
/// after a master restart: the holder's node lists it in its Join.
#[tokio::test(start_paused = true)]
async fn a_watched_name_is_listed_in_the_join_after_a_master_restart() {
    let mut c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let holder = w[0]
        .pool()
        .spawn(Spawn::new("builtin.echo", serde_json::json!({})))
        .await
        .unwrap()
        .pid;
    assert!(w[1].pool().register_global("svc", holder).await.unwrap());
    wait_until("w1 watches the name", || {
        c.master.seen().contains(&Seen::Watched {
            name: "svc".into(),
            pid: holder,
        })
    })
    .await;
    c.master.restart().await;
    wait_until("w1 rejoined", || c.master.is_live("w1")).await;
    let (join, _) = c.master.joins_of("w1").pop().unwrap();
    assert_eq!(join.names, [("svc".to_owned(), holder)]);
    assert_eq!(w[1].pool().whereis("svc").await.unwrap(), Some(holder));
}

/// A `WatchName` for a process that is already gone is answered `Ok`, and
/// the name is released at once.
#[tokio::test(start_paused = true)]
async fn watching_a_name_of_a_process_already_gone_releases_it_at_once() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let gone = w1
        .pool()
        .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 1})))
        .await
        .unwrap()
        .spawned;
    let body = pool_proto::Request::WatchName {
        name: "late".into(),
        pid: gone.pid,
    };
    assert_eq!(c.master.request("w1", body).await, pool_proto::Response::Ok);
    wait_until("the name is released", || {
        c.master.seen().contains(&Seen::NameReleased {
            name: "late".into(),
            pid: gone.pid,
        })
    })
    .await;
}
