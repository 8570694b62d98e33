//! The HTTP API: the JSON shapes of `poolctl --json` (DESIGN.md
//! "Interfaces"), `/healthz`, and `/metrics` in the Prometheus text format.

mod support;

use pool_proto::{AppEvent, AppEventKind, ExitReason, Msg, Pid, Request, Response};
use serde_json::Value;
use support::*;

const TREE: &str = "[supervisor]\nid = \"web\"\n\n[[supervisor.children]]\nid = \"c\"\nfunction = \"builtin.echo\"\n";

/// Every route answers with the documented shape.
#[tokio::test]
async fn endpoints_return_the_documented_shapes() {
    let master = start_master(config(), true).await;
    let http = master.http_addr().unwrap();
    let w = SimNode::join(master.addr(), SimSpec::worker("w1").label("zone", "a"))
        .await
        .unwrap();
    w.report(1, 3);
    w.behavior.lock().unwrap().processes = vec![process(&w, 5, "builtin.echo")];
    let pid = Pid::new(w.id, 5);
    assert_eq!(
        w.request(Request::RegisterName {
            name: "db".into(),
            pid
        })
        .await,
        Response::Registered(true)
    );
    let spec = supervisor::tree_file::parse_tree_str("web.toml", TREE, |_| true).unwrap();
    assert!(matches!(
        w.request(Request::TreeStart {
            spec,
            source: None,
            text: None
        })
        .await,
        Response::Apps(_)
    ));

    let (status, body) = http_get(http, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));

    let (status, body) = http_get(http, "/api/nodes").await;
    assert_eq!(status, 200);
    let nodes: Value = serde_json::from_str(&body).unwrap();
    let n = &nodes.as_array().unwrap()[0];
    for key in [
        "name", "id", "addr", "cpu", "mem", "procs", "score", "labels",
    ] {
        assert!(n.get(key).is_some(), "nodes lacks {key}: {n}");
    }
    assert_eq!(n["name"], "w1");
    assert_eq!(n["id"], w.id.to_string());
    assert_eq!(n["labels"]["zone"], "a");

    let (status, body) = http_get(http, "/api/processes").await;
    assert_eq!(status, 200);
    let ps: Value = serde_json::from_str(&body).unwrap();
    let p = &ps.as_array().unwrap()[0];
    for key in ["pid", "node", "function", "status", "age_ms"] {
        assert!(p.get(key).is_some(), "ps lacks {key}: {p}");
    }
    assert_eq!(p["pid"], pid.to_string());
    let (status, _) = http_get(http, "/api/processes?node=nope").await;
    assert_eq!(status, 404);

    let (status, body) = http_get(http, "/api/names").await;
    assert_eq!(status, 200);
    let names: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(names["db"], pid.to_string());

    let (status, body) = http_get(http, "/api/trees").await;
    assert_eq!(status, 200);
    let trees: Value = serde_json::from_str(&body).unwrap();
    let t = &trees.as_array().unwrap()[0];
    for key in ["id", "root", "node", "status"] {
        assert!(t.get(key).is_some(), "tree ls lacks {key}: {t}");
    }
    assert_eq!(t["status"], "running");
    assert_eq!(t["node"], "w1");

    for path in ["/api/trees/web", "/api/trees?id=web"] {
        let (status, body) = http_get(http, path).await;
        assert_eq!(status, 200, "{path}");
        let v: Value = serde_json::from_str(&body).unwrap();
        for key in [
            "id", "strategy", "pid", "node", "restarts", "status", "children",
        ] {
            assert!(v.get(key).is_some(), "tree show lacks {key}: {v}");
        }
        assert_eq!(v["node"], "w1", "node ids are replaced by names");
        let c = &v["children"][0];
        for key in ["id", "pid", "node", "restarts", "status"] {
            assert!(c.get(key).is_some(), "child lacks {key}: {c}");
        }
    }
    let (status, body) = http_get(http, "/api/trees/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "{body}");

    // The dashboard slot is empty for now.
    let (status, _) = http_get(http, "/").await;
    assert_eq!(status, 404);
    master.shutdown().await;
}

/// /metrics is Prometheus text with the pool's series: nodes up, per-node
/// load and processes, placements by strategy, queries, downs by reason,
/// report latency and restarts by tree.
#[tokio::test]
async fn metrics_are_prometheus_text() {
    let master = start_master(config(), true).await;
    let http = master.http_addr().unwrap();
    let w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    w.report(2, 4);
    let _ = w
        .request(Request::Place(pool_proto::PlaceQuery {
            count: 3,
            commit: true,
            ..Default::default()
        }))
        .await;
    w.send(Msg::AppEvent(AppEvent {
        app: "web".into(),
        generation: 1,
        kind: AppEventKind::ChildRestarted {
            supervisor: "web".into(),
            child: "c".into(),
            pid: None,
            reason: ExitReason::Killed,
        },
    }));
    let gone = SimNode::join(master.addr(), SimSpec::worker("gone"))
        .await
        .unwrap();
    gone.close();
    assert_eq!(w.request(Request::Ping).await, Response::Pong);
    let mut body = String::new();
    let ok = wait_until_async(
        || async move { http_get(http, "/metrics").await.1 },
        |b| b.contains("pool_nodes_down_total{reason=\"connection_closed\"} 1"),
        &mut body,
    )
    .await;
    assert!(ok, "{body}");
    let (status, _) = http_get(http, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "# TYPE pool_nodes_up gauge",
        "pool_nodes_up{kind=\"worker\"} 1",
        "pool_node_load{node=\"w1\"} 5",
        "pool_node_processes{node=\"w1\"} 7",
        "pool_placement_queries_total 1",
        "pool_placements_total{strategy=\"least-loaded\"} 3",
        "pool_nodes_down_total{reason=\"timeout\"} 0",
        "pool_report_latency_seconds_bucket",
        "pool_tree_restarts_total{tree=\"web\"} 1",
    ] {
        assert!(body.contains(needle), "missing {needle:?} in\n{body}");
    }
    master.shutdown().await;
}

async fn wait_until_async<F, Fut>(
    mut f: F,
    mut done: impl FnMut(&str) -> bool,
    last: &mut String,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let end = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < end {
        *last = f().await;
        if done(last) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
