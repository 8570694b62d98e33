//! `pool_worker::Client`: a client joins in one call, under a generated
//! name, so that copies of one program run side by side.

mod support;

use pool_worker::Client;
use pool_worker::prelude::*;
use support::*;

/// A client built the way a program builds it (same prefix, same
/// settings).
fn client() -> Client {
    Client::new()
        .master(MASTER_ADDR)
        .cookie(cookie())
        .name_prefix("app")
}

/// Two copies of one client program, built the same way, connect at the
/// same time: each gets its own generated name (the master refuses a
/// duplicate name), both are live, and both can use the pool.
#[tokio::test(start_paused = true)]
async fn two_clients_built_the_same_way_connect_at_the_same_time() {
    let c = Cluster::new();
    let _w = c.worker("w1").await;
    let (a, b) = (client().config().unwrap(), client().config().unwrap());
    assert_ne!(a.name, b.name, "generated names differ");
    assert!(a.name.starts_with("app-"), "{}", a.name);

    let start = |config: NodeConfig, from: &str| {
        Node::builder(config)
            .transport(c.net.dialer(format!("{from}:client")))
            .on_current_runtime()
            .start()
    };
    let (ra, rb) = tokio::join!(start(a.clone(), "a"), start(b.clone(), "b"));
    let (ca, cb) = (
        ra.expect("the first copy joins"),
        rb.expect("the second copy joins"),
    );
    assert!(c.master.is_live(&a.name) && c.master.is_live(&b.name));

    for client in [&ca, &cb] {
        let run = client
            .pool()
            .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 10})))
            .await
            .expect("the client spawns on the worker");
        assert!(run.reason.is_normal());
    }
    ca.shutdown().await;
    cb.shutdown().await;
}

/// The fixed-name escape hatch collides as documented: a second client
/// with the same fixed name is refused, so the generated name above is
/// what keeps copies apart.
#[tokio::test(start_paused = true)]
async fn two_clients_with_one_fixed_name_collide() {
    let c = Cluster::new();
    let start = |from: &str| {
        client()
            .name("fixed")
            .node_builder()
            .unwrap()
            .transport(c.net.dialer(format!("{from}:client")))
            .on_current_runtime()
            .start()
    };
    let first = start("a").await.expect("the first joins");
    let second = start("b").await;
    assert!(second.is_err(), "a duplicate name is refused");
    first.shutdown().await;
}
