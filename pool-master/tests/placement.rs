//! Placement over simulated workers, over the wire: it follows their load
//! reports, water-fills a burst, keeps keys sticky and explains a label
//! constraint no node meets.

mod support;

use std::collections::HashMap;

use pool_proto::{ErrorCode, LabelReq, PlaceQuery, Placed, PlacementStrategy, Request, Response};
use support::*;

async fn place(
    client: &SimNode,
    query: PlaceQuery,
) -> Result<Vec<Placed>, pool_proto::RemoteError> {
    match client.request(Request::Place(query)).await {
        Response::Placed(p) => Ok(p),
        Response::Error(e) => Err(e),
        other => panic!("unexpected answer {other:?}"),
    }
}

fn counts(placed: &[Placed]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for p in placed {
        *m.entry(p.name.clone()).or_default() += 1;
    }
    m
}

/// The master places on the node whose report shows the least load, and a
/// new report changes its answer.
#[tokio::test]
async fn placement_follows_reports() {
    let master = start_master(config(), false).await;
    let a = SimNode::join(master.addr(), SimSpec::worker("a"))
        .await
        .unwrap();
    let b = SimNode::join(master.addr(), SimSpec::worker("b"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    a.report(5, 5);
    b.report(0, 0);
    let one = PlaceQuery {
        count: 1,
        ..Default::default()
    };
    assert!(
        wait_until_async(|| async { place(&ctl, one.clone()).await.unwrap()[0].name == "b" }).await,
        "the idle node b is chosen"
    );
    a.report(0, 0);
    b.report(9, 9);
    assert!(
        wait_until_async(|| async { place(&ctl, one.clone()).await.unwrap()[0].name == "a" }).await,
        "after the new reports, a is chosen"
    );
    // A pure query does not count; the hidden node is never chosen.
    let p = place(
        &ctl,
        PlaceQuery {
            count: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(p.iter().all(|p| p.name != "ctl"));
    drop((a, b));
    master.shutdown().await;
}

async fn wait_until_async<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// A burst of 32 committed placements over 8 idle nodes puts exactly 4 on
/// each (water-filling), whether asked in one query or one at a time.
#[tokio::test]
async fn burst_water_fills_idle_nodes() {
    let master = start_master(config(), false).await;
    let mut nodes = Vec::new();
    for i in 0..8 {
        let n = SimNode::join(master.addr(), SimSpec::worker(&format!("w{i}")))
            .await
            .unwrap();
        n.report(0, 0);
        assert_eq!(n.request(Request::Ping).await, Response::Pong); // report handled
        nodes.push(n);
    }
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    let burst = PlaceQuery {
        count: 32,
        commit: true,
        ..Default::default()
    };
    let placed = place(&ctl, burst).await.unwrap();
    let c = counts(&placed);
    assert_eq!(c.len(), 8, "{c:?}");
    assert!(c.values().all(|&n| n == 4), "{c:?}");
    // One at a time: still 4 more each.
    let mut all = Vec::new();
    for _ in 0..32 {
        all.extend(
            place(
                &ctl,
                PlaceQuery {
                    count: 1,
                    commit: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let c = counts(&all);
    assert!(c.values().all(|&n| n == 4), "{c:?}");
    master.shutdown().await;
}

/// The same key goes to the same node, whatever the load.
#[tokio::test]
async fn keyed_placement_is_sticky() {
    let master = start_master(config(), false).await;
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(
            SimNode::join(master.addr(), SimSpec::worker(&format!("w{i}")))
                .await
                .unwrap(),
        );
    }
    let q = PlaceQuery {
        count: 1,
        key: Some("user:42".into()),
        commit: true,
        ..Default::default()
    };
    let first = place(&nodes[0], q.clone()).await.unwrap()[0].clone();
    for _ in 0..20 {
        assert_eq!(place(&nodes[1], q.clone()).await.unwrap()[0], first);
    }
    // Loading the key's node does not move the key.
    let owner = nodes.iter().find(|n| n.id == first.id).unwrap();
    owner.report(50, 50);
    assert_eq!(owner.request(Request::Ping).await, Response::Pong); // report handled
    assert_eq!(place(&nodes[2], q).await.unwrap()[0], first);
    master.shutdown().await;
}

/// Label constraints filter nodes; one no node meets is refused with an
/// error that names the label and lists the live nodes' labels.
#[tokio::test]
async fn labels_filter_with_a_clear_error() {
    let master = start_master(config(), false).await;
    let a = SimNode::join(master.addr(), SimSpec::worker("a").label("zone", "a"))
        .await
        .unwrap();
    let _b = SimNode::join(master.addr(), SimSpec::worker("b").label("zone", "b"))
        .await
        .unwrap();
    let q = PlaceQuery {
        count: 6,
        labels: vec![LabelReq::parse("zone=a").unwrap()],
        strategy: Some(PlacementStrategy::RoundRobin),
        ..Default::default()
    };
    let p = place(&a, q).await.unwrap();
    assert!(p.iter().all(|p| p.name == "a"));
    let q = PlaceQuery {
        count: 1,
        labels: vec![LabelReq::parse("zone=c").unwrap()],
        ..Default::default()
    };
    let e = place(&a, q).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NoNode);
    assert!(
        e.message.contains("no live node has label zone=c"),
        "{}",
        e.message
    );
    assert!(e.message.contains("zone=b"), "{}", e.message);
    // A named node that is not live.
    let q = PlaceQuery {
        count: 1,
        node: Some("zz".into()),
        ..Default::default()
    };
    let e = place(&a, q).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownNode);
    master.shutdown().await;
}

/// ListNodes shows the live workers with their reported load, hidden nodes
/// left out.
#[tokio::test]
async fn list_nodes_shows_workers_and_load() {
    let master = start_master(config(), false).await;
    let w = SimNode::join(master.addr(), SimSpec::worker("w1").label("zone", "a"))
        .await
        .unwrap();
    let ctl = SimNode::join(master.addr(), SimSpec::hidden("ctl"))
        .await
        .unwrap();
    w.report(2, 7);
    let ok = wait_until_async(|| async {
        match ctl.request(Request::ListNodes).await {
            Response::Nodes(n) => n.len() == 1 && n[0].procs == 7 && n[0].score == 2.0,
            _ => false,
        }
    })
    .await;
    assert!(ok);
    let Response::Nodes(n) = ctl.request(Request::ListNodes).await else {
        panic!()
    };
    assert_eq!(n[0].name, "w1");
    assert_eq!(n[0].labels.get("zone").map(String::as_str), Some("a"));
    assert!((n[0].mem - 25.0).abs() < 0.1);
    master.shutdown().await;
}
