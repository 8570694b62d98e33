//! What a peer may not send (docs/protocol.md "What a peer may not
//! send"), over a hand-driven connection: a connection speaks for its own
//! node only, a worker serves only spawns, pings and tree views to peers,
//! membership comes only from the master, and who may connect at all.

mod support;

use std::time::Duration;

use pool_proto::{
    Dest, DownReason, ErrorCode, Msg, MsgKind, NodeId, NodeKind, Payload, Pid, Request, Response,
    SendMsg, SpawnRequest,
};
use support::{Cluster, Got, Probe, addr_of, identity, raw_peer};

/// A message to `to` from `from`.
fn send(to: Pid, from: Pid, value: u32) -> Msg {
    Msg::Send(SendMsg {
        to: Dest::Pid(to),
        from: Some(from),
        kind: MsgKind::Plain,
        payload: Payload::encode(&value).unwrap(),
        trace: None,
    })
}

/// A spawn of `builtin.echo` linked to `link`.
fn spawn_linked(link: Option<Pid>) -> Request {
    Request::Spawn(SpawnRequest {
        function: "builtin.echo".into(),
        args: serde_json::json!({}),
        link,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    })
}

/// Signals sent as another node's process are dropped: only the frame
/// that names the peer's own process gets through.
#[tokio::test(start_paused = true)]
async fn a_peer_speaks_for_its_own_node_only() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let mut probe = Probe::spawn(w1.runtime(), true, |_| {});
    let mut raw = raw_peer(&c.net, "x:1", &addr_of("w1"), identity("x"))
        .await
        .unwrap();
    let foreign = Pid::new(NodeId::random(), 5);
    raw.send(send(probe.pid, foreign, 1)).await;
    raw.send(Msg::Exit {
        from: foreign,
        to: probe.pid,
        reason: pool_proto::ExitReason::Error("lie".into()),
        explicit: true,
    })
    .await;
    raw.send(Msg::Link {
        from: foreign,
        to: probe.pid,
    })
    .await;
    let mine = raw.pid(1);
    raw.send(send(probe.pid, mine, 2)).await;
    match probe.next().await {
        Got::Msg { from, msg } => {
            assert_eq!(from, Some(mine));
            assert_eq!(msg.take::<u32>().unwrap(), 2);
        }
        other => panic!("a lie got through: {other:?}"),
    }
    assert!(probe.nothing_within(Duration::from_millis(100)).await);
}

/// A spawn that would link the new process to another node's process is
/// refused with an error that says why; one linked to the peer's own
/// process runs.
#[tokio::test(start_paused = true)]
async fn a_spawn_for_another_nodes_process_is_refused() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let mut raw = raw_peer(&c.net, "x:1", &addr_of("w1"), identity("x"))
        .await
        .unwrap();
    let foreign = Pid::new(NodeId::random(), 5);
    let id = raw.request(spawn_linked(Some(foreign))).await;
    match raw.response(id).await {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Refused);
            assert!(
                e.message.contains("not a process of the requesting node"),
                "{e}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mine = raw.pid(1);
    let id = raw.request(spawn_linked(Some(mine))).await;
    match raw.response(id).await {
        Response::Spawned(pid) => {
            assert_eq!(pid.node(), w1.id());
            assert!(w1.runtime().is_alive(pid));
        }
        other => panic!("expected a spawn, got {other:?}"),
    }
}

/// A worker answers a peer's Ping, and refuses the requests only the
/// master may ask (naming the request).
#[tokio::test(start_paused = true)]
async fn a_worker_serves_peers_only_what_peers_may_ask() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let mut raw = raw_peer(&c.net, "x:1", &addr_of("w1"), identity("x"))
        .await
        .unwrap();
    let id = raw.request(Request::Ping).await;
    assert_eq!(raw.response(id).await, Response::Pong);
    let id = raw.request(Request::ListNames).await;
    match raw.response(id).await {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Refused);
            assert!(
                e.message.contains("does not serve ListNames from a peer"),
                "{e}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// An answer to no request of ours is ignored, and the connection goes
/// on serving.
#[tokio::test(start_paused = true)]
async fn an_answer_to_no_request_is_ignored() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let mut raw = raw_peer(&c.net, "x:1", &addr_of("w1"), identity("x"))
        .await
        .unwrap();
    raw.send(Msg::Response {
        id: 4242,
        body: Response::Pong,
    })
    .await;
    let id = raw.request(Request::Ping).await;
    assert_eq!(raw.response(id).await, Response::Pong);
}

/// A peer cannot tell a worker that a node is down: membership comes from
/// the master's connection only, so routing to that node goes on.
#[tokio::test(start_paused = true)]
async fn membership_from_a_peer_is_ignored() {
    let c = Cluster::new();
    let w = c.workers(&["w1", "w2"]).await;
    let mut probe = Probe::spawn(w[1].runtime(), false, |_| {});
    let mut raw = raw_peer(&c.net, "x:1", &addr_of("w1"), identity("x"))
        .await
        .unwrap();
    raw.send(Msg::NodeDown {
        node: w[1].id(),
        reason: DownReason::Timeout,
    })
    .await;
    let id = raw.request(Request::Ping).await;
    raw.response(id).await;
    assert_eq!(w[0].pool().node_name_of(w[1].id()).as_deref(), Some("w2"));
    w[0].pool().send(probe.pid, 7u32);
    assert_eq!(probe.message::<u32>().await, 7);
}

/// A connection from a node the master declared down, or one claiming to
/// be the master, is closed right after the handshake.
#[tokio::test(start_paused = true)]
async fn connections_from_the_dead_or_a_fake_master_are_closed() {
    let c = Cluster::new();
    let _w1 = c.worker("w1").await;
    let ghost = identity("ghost");
    c.master.push(
        "w1",
        Msg::NodeDown {
            node: ghost.node,
            reason: DownReason::Timeout,
        },
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut raw = raw_peer(&c.net, "ghost:1", &addr_of("w1"), ghost)
        .await
        .unwrap();
    assert!(
        raw.recv().await.is_none(),
        "a dead node's connection stayed open"
    );
    let mut master = identity("impostor");
    master.kind = NodeKind::Master;
    let mut raw = raw_peer(&c.net, "impostor:1", &addr_of("w1"), master)
        .await
        .unwrap();
    assert!(
        raw.recv().await.is_none(),
        "a second master's connection stayed open"
    );
}

/// Over `--max-connections`, a connection is refused in the handshake
/// with a reason that names the node and the limit; once one closes,
/// another is served.
#[tokio::test(start_paused = true)]
async fn connections_over_the_limit_are_refused_with_the_reason() {
    let c = Cluster::new();
    let mut config = c.config("w1");
    config.max_connections = 1;
    let _w1 = c.builder_with(config).start().await.unwrap();
    let held = raw_peer(&c.net, "a:1", &addr_of("w1"), identity("a"))
        .await
        .unwrap();
    match raw_peer(&c.net, "b:1", &addr_of("w1"), identity("b")).await {
        Err(pool_proto::Error::Refused { reason }) => assert!(
            reason.contains("too many connections: node w1 serves at most 1"),
            "{reason}"
        ),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a connection over the limit was served"),
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut again = raw_peer(&c.net, "b:1", &addr_of("w1"), identity("b"))
        .await
        .unwrap();
    let id = again.request(Request::Ping).await;
    assert_eq!(again.response(id).await, Response::Pong);
}

/// Any authenticated peer may ask a worker which processes it runs
/// (`LocalProcesses`, as the partition probe does): the answer lists them,
/// named after the worker.
#[tokio::test(start_paused = true)]
async fn a_peer_may_ask_which_processes_a_worker_runs() {
    let c = Cluster::new();
    let w1 = c.worker("w1").await;
    let echo = w1
        .pool()
        .spawn(pool_worker::Spawn::new(
            "builtin.echo",
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .pid;
    let mut peer = raw_peer(&c.net, "probe:1", &addr_of("w1"), identity("probe"))
        .await
        .unwrap();
    let id = peer.request(Request::LocalProcesses).await;
    match peer.response(id).await {
        Response::Processes(ps) => {
            let row = ps
                .iter()
                .find(|p| p.pid == echo)
                .expect("the echo is listed");
            assert_eq!(row.node, "w1");
            assert_eq!(row.function, "builtin.echo");
        }
        other => panic!("LocalProcesses answered {other:?}"),
    }
}
