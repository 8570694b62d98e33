use super::*;
use pool_proto::{Dest, MsgKind, Payload, Ref, SendMsg, SpawnMonitor};

fn node(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

/// A signal or spawn naming a process of another node as its sender is
/// caught; one naming the sending node's own process is not.
#[test]
fn a_signal_speaks_for_its_own_node_only() {
    let (a, b) = (node(0xa), node(0xb));
    let (pa, pb) = (Pid::new(a, 1), Pid::new(b, 1));
    let mref = Ref::new(a, 1);
    let send = |from| {
        Msg::Send(SendMsg {
            to: Dest::Pid(pb),
            from,
            kind: MsgKind::Plain,
            payload: Payload::encode(&1).unwrap(),
            trace: None,
        })
    };
    assert_eq!(foreign_sender(&send(Some(pa)), a), None);
    assert_eq!(foreign_sender(&send(None), a), None);
    assert_eq!(foreign_sender(&send(Some(pb)), a), Some(("from", pb)));
    let link = Msg::Link { from: pb, to: pa };
    assert_eq!(foreign_sender(&link, a), Some(("from", pb)));
    assert_eq!(foreign_sender(&link, b), None);
    let mon = Msg::Demonitor {
        watcher: pb,
        target: pa,
        mref,
    };
    assert_eq!(foreign_sender(&mon, a), Some(("watcher", pb)));
    let down = Msg::Down {
        watcher: pa,
        mref,
        pid: pb,
        reason: pool_proto::ExitReason::Normal,
        result: None,
    };
    assert_eq!(foreign_sender(&down, a), Some(("pid", pb)));
    assert_eq!(foreign_sender(&down, b), None);
    let req = |link, watcher: Option<Pid>| SpawnRequest {
        function: "f".into(),
        args: serde_json::Value::Null,
        link,
        monitor: watcher.map(|watcher| SpawnMonitor {
            watcher,
            mref,
            with_result: false,
        }),
        owner: None,
        trace: None,
        sandbox: None,
    };
    assert_eq!(foreign_spawn(&req(Some(pa), Some(pa)), a), None);
    assert_eq!(foreign_spawn(&req(Some(pb), None), a), Some(("link", pb)));
    assert_eq!(
        foreign_spawn(&req(None, Some(pb)), a),
        Some(("monitor", pb))
    );
}

/// The log rate limit: once per second per (peer, kind, reason), with the
/// count left out, and a bounded table.
#[test]
fn a_flood_of_one_kind_logs_once_a_second() {
    let noted = Noted::default();
    let t0 = Instant::now();
    assert_eq!(noted.hit(node(1), "Link", "r", t0), Some(0));
    for _ in 0..10 {
        assert_eq!(noted.hit(node(1), "Link", "r", t0), None);
    }
    assert_eq!(noted.hit(node(1), "Send", "r", t0), Some(0));
    assert_eq!(noted.hit(node(1), "Link", "other", t0), Some(0));
    assert_eq!(noted.hit(node(2), "Link", "r", t0), Some(0));
    assert_eq!(noted.hit(node(1), "Link", "r", t0 + NOTE_EVERY), Some(10));
    for n in 0..2 * MAX_NOTED as u64 {
        noted.hit(node(100 + n), "Link", "r", t0 + 2 * NOTE_EVERY);
    }
    assert!(noted.0.lock().unwrap().len() <= MAX_NOTED);
}
