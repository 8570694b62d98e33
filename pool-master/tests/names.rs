//! Global names with OTP `global` semantics, over the wire, and the
//! ListProcesses fan-out.

mod support;

use pool_proto::{ErrorCode, Pid, Request, Response};
use support::*;

async fn register(n: &SimNode, name: &str, pid: Pid) -> bool {
    match n
        .request(Request::RegisterName {
            name: name.into(),
            pid,
        })
        .await
    {
        Response::Registered(b) => b,
        other => panic!("{other:?}"),
    }
}

async fn whereis(n: &SimNode, name: &str) -> Option<Pid> {
    match n.request(Request::WhereIs { name: name.into() }).await {
        Response::WhereIs(p) => p,
        other => panic!("{other:?}"),
    }
}

/// register / whereis / taken / one name per pid / unregister / list.
#[tokio::test]
async fn register_whereis_taken_and_one_name_per_pid() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let p1 = Pid::new(w.id, 1);
    let p2 = Pid::new(w.id, 2);
    assert!(register(&w, "db", p1).await);
    assert_eq!(whereis(&w, "db").await, Some(p1));
    assert!(!register(&w, "db", p2).await, "taken");
    assert!(!register(&w, "cache", p1).await, "one name per pid");
    assert!(register(&w, "cache", p2).await);
    let Response::Names(all) = w.request(Request::ListNames).await else {
        panic!()
    };
    assert_eq!(all.len(), 2);
    assert_eq!(
        w.request(Request::UnregisterName { name: "db".into() })
            .await,
        Response::Ok
    );
    assert_eq!(whereis(&w, "db").await, None);
    // A pid of a node that is not in the pool cannot take a name.
    assert!(!register(&w, "ghost", Pid::new(pool_proto::NodeId::random(), 1)).await);
    master.shutdown().await;
}

/// A name dies with its process (NameReleased from its node) and with its
/// node (node down).
#[tokio::test]
async fn names_die_with_process_and_node() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let other = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    let p1 = Pid::new(w.id, 1);
    assert!(register(&w, "a", p1).await);
    assert!(register(&w, "b", Pid::new(w.id, 2)).await);
    // A release by a stale holder is ignored; by the holder it removes.
    w.send(pool_proto::Msg::NameReleased {
        name: "a".into(),
        pid: Pid::new(w.id, 9),
    });
    assert_eq!(whereis(&w, "a").await, Some(p1));
    w.send(pool_proto::Msg::NameReleased {
        name: "a".into(),
        pid: p1,
    });
    assert_eq!(whereis(&w, "a").await, None);
    // The node goes: its names go.
    let id = w.id;
    w.close();
    other
        .expect_event(
            WAIT,
            "NodeDown(w1)",
            |e| matches!(e, Event::NodeDown { node, .. } if *node == id),
        )
        .await;
    assert_eq!(whereis(&other, "b").await, None);
    master.shutdown().await;
}

/// A rejoining node's names are registered again if free; one taken
/// meanwhile is listed in Fence.lost_names.
#[tokio::test]
async fn rejoin_reclaims_names_and_fences_lost_ones() {
    let master = start_master(config(), false).await;
    let holder = SimNode::join(master.addr(), SimSpec::worker("holder"))
        .await
        .unwrap();
    assert!(register(&holder, "taken", Pid::new(holder.id, 1)).await);
    let mut spec = SimSpec::worker("w1");
    spec.names = vec![
        ("free".into(), Pid::new(spec.id, 3)),
        ("taken".into(), Pid::new(spec.id, 4)),
    ];
    let w = SimNode::join(master.addr(), spec).await.unwrap();
    let fence = w.welcome.fence.clone().expect("fenced: a name was lost");
    assert_eq!(fence.lost_names, vec!["taken".to_owned()]);
    assert_eq!(whereis(&w, "free").await, Some(Pid::new(w.id, 3)));
    assert_eq!(w.request(Request::Ready).await, Response::Ok);
    master.shutdown().await;
}

/// ListProcesses asks every live worker and merges the answers; with a node
/// name, only that node's; an unknown node is an error; a worker that does
/// not answer in time is left out.
#[tokio::test]
async fn list_processes_fans_out_and_merges() {
    let master = start_master(config(), false).await;
    let a = SimNode::join(master.addr(), SimSpec::worker("a"))
        .await
        .unwrap();
    let b = SimNode::join(master.addr(), SimSpec::worker("b"))
        .await
        .unwrap();
    let slow = SimNode::join(master.addr(), SimSpec::worker("slow"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    a.behavior.lock().unwrap().processes = vec![
        process(&a, 1, "builtin.echo"),
        process(&a, 2, "builtin.sleep"),
    ];
    b.behavior.lock().unwrap().processes = vec![process(&b, 1, "builtin.echo")];
    slow.behavior.lock().unwrap().silent = true;
    let Response::Processes(all) = ctl.request(Request::ListProcesses { node: None }).await else {
        panic!()
    };
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|p| p.node == "a").count(), 2);
    let Response::Processes(only_b) = ctl
        .request(Request::ListProcesses {
            node: Some("b".into()),
        })
        .await
    else {
        panic!()
    };
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].node, "b");
    let r = ctl
        .request(Request::ListProcesses {
            node: Some("nope".into()),
        })
        .await;
    assert!(matches!(r, Response::Error(e) if e.code == ErrorCode::UnknownNode));
    master.shutdown().await;
}
