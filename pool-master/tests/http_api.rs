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
    let spec = pool_proto::tree::parse_tree_str("web.toml", TREE, |_| true).unwrap();
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

    master.shutdown().await;
}

/// The dashboard is served by the master itself: the page, its script and
/// stylesheet (no CDN), with a policy that runs no inline or foreign code.
#[tokio::test]
async fn dashboard_page_and_assets_are_served_by_the_master() {
    let master = start_master(config(), true).await;
    let http = master.http_addr().unwrap();
    let (status, head, body) = http_send(http, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(body.contains("<title>Spawnpool</title>"), "{body}");
    for asset in [
        "/assets/dashboard.js",
        "/assets/dashboard.css",
        "/assets/favicon.svg",
    ] {
        assert!(body.contains(asset), "the page links {asset}");
        let (status, _, text) = http_send(http, "GET", asset, &[], "").await;
        assert_eq!(status, 200, "{asset}");
        assert!(text.len() > 100, "{asset}: {text}");
    }
    // Nothing is fetched from elsewhere.
    for path in ["/", "/assets/dashboard.js", "/assets/dashboard.css"] {
        let (_, _, text) = http_send(http, "GET", path, &[], "").await;
        // The SVG namespace is a name, not a fetch.
        let text = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path} links outside"
        );
    }
    let (_, head, js) = http_send(http, "GET", "/assets/dashboard.js", &[], "").await;
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(
        js.contains("/api/dashboard"),
        "the script polls the dashboard endpoint"
    );
    let (status, _, body) = http_send(http, "GET", "/nope", &[], "").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""), "{body}");
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
    // The traffic counters a worker reports (cumulative).
    w.send(Msg::LoadReport(pool_proto::LoadReport {
        seq: 99,
        run_queue: 2,
        processes: 4,
        capacity: 1,
        frames_out: 11,
        bytes_out: 1100,
        frames_in: 7,
        bytes_in: 700,
        ..Default::default()
    }));
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
    // A client (poolctl is a hidden node) that hangs up is no node down.
    let client = SimNode::join(master.addr(), SimSpec::hidden("poolctl-1"))
        .await
        .unwrap();
    client.close();
    let gone = SimNode::join(master.addr(), SimSpec::worker("gone"))
        .await
        .unwrap();
    gone.close();
    assert_eq!(w.request(Request::Ping).await, Response::Pong);
    let mut body = String::new();
    let ok = wait_until_async(
        || async move { http_get(http, "/metrics").await.1 },
        // Both hung up (only w1 is connected), and one node went down.
        |b| {
            b.contains("pool_connections 1\n")
                && b.contains("pool_nodes_down_total{reason=\"connection_closed\"} 1\n")
        },
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
        "pool_spawns_total{strategy=\"least-loaded\"} 3",
        "pool_spawns_total{strategy=\"keyed\"} 0",
        "# TYPE pool_node_frames_sent_total counter",
        "pool_node_frames_sent_total{node=\"w1\"} 11",
        "pool_node_bytes_sent_total{node=\"w1\"} 1100",
        "pool_node_frames_received_total{node=\"w1\"} 7",
        "pool_node_bytes_received_total{node=\"w1\"} 700",
        "pool_nodes_down_total{reason=\"timeout\"} 0",
        "# TYPE pool_report_latency_seconds histogram",
        "pool_report_latency_seconds_count",
        "# TYPE pool_tree_restarts_total counter",
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

/// `/api/dashboard` has what the page draws: live and recently-down nodes
/// with their load history, trees with their live view, recent events, and
/// a summary; `since` and `after` send only what is new.
#[tokio::test]
async fn dashboard_data_has_history_trees_events_and_down_nodes() {
    let master = start_master(config(), true).await;
    let http = master.http_addr().unwrap();
    let mut w1 = SimNode::join(master.addr(), SimSpec::worker("w1").label("zone", "a"))
        .await
        .unwrap();
    w1.keep_reporting(std::time::Duration::from_millis(100));
    let mut w2 = SimNode::join(master.addr(), SimSpec::worker("w2"))
        .await
        .unwrap();
    w2.keep_reporting(std::time::Duration::from_millis(100));
    let spec = pool_proto::tree::parse_tree_str("web.toml", TREE, |_| true).unwrap();
    assert!(matches!(
        w1.request(Request::TreeStart {
            spec,
            source: None,
            text: None
        })
        .await,
        Response::Apps(_)
    ));
    let placed = w1
        .request(Request::Place(pool_proto::PlaceQuery {
            count: 4,
            commit: true,
            ..Default::default()
        }))
        .await;
    assert!(
        matches!(placed, Response::Placed(ref p) if p.len() == 4),
        "{placed:?}"
    );
    w1.send(Msg::AppEvent(AppEvent {
        app: "web".into(),
        generation: 1,
        kind: AppEventKind::ChildRestarted {
            supervisor: "web".into(),
            child: "c".into(),
            pid: Some(Pid::new(w1.id, 42)),
            reason: ExitReason::Killed,
        },
    }));
    // w2 dies; the sampler takes a sample a second.
    let mut dash = Value::Null;
    let ok = wait_until_async(
        || async move { http_get(http, "/api/dashboard").await.1 },
        |b| {
            dash = serde_json::from_str(b).unwrap();
            dash["nodes"].as_array().is_some_and(|n| {
                n.iter().any(|n| {
                    n["name"] == "w1" && n["history"].as_array().is_some_and(|h| !h.is_empty())
                })
            })
        },
        &mut String::new(),
    )
    .await;
    assert!(ok, "no history sample for w1: {dash}");
    w2.close();
    let mut body = String::new();
    let ok = wait_until_async(
        || async move { http_get(http, "/api/dashboard").await.1 },
        |b| b.contains("\"state\":\"down\"") && b.contains("placed 4 spawns"),
        &mut body,
    )
    .await;
    assert!(ok, "{body}");
    let dash: Value = serde_json::from_str(&body).unwrap();
    for key in [
        "now_ms",
        "step_ms",
        "window_ms",
        "master",
        "summary",
        "nodes",
        "trees",
        "events",
        "last_seq",
    ] {
        assert!(dash.get(key).is_some(), "dashboard lacks {key}");
    }
    let nodes = dash["nodes"].as_array().unwrap();
    let w1v = nodes.iter().find(|n| n["name"] == "w1").unwrap();
    assert_eq!(w1v["state"], "up");
    assert_eq!(w1v["labels"]["zone"], "a");
    for key in [
        "score",
        "procs",
        "load",
        "traffic",
        "capacity",
        "report_age_ms",
    ] {
        assert!(w1v.get(key).is_some(), "node lacks {key}: {w1v}");
    }
    let sample = &w1v["history"][0];
    assert_eq!(
        sample.as_array().unwrap().len(),
        6,
        "[t, score, procs, cpu, out, in]: {sample}"
    );
    let w2v = nodes.iter().find(|n| n["name"] == "w2").unwrap();
    assert_eq!(w2v["state"], "down");
    assert_eq!(w2v["reason"], "connection closed");
    assert_eq!(w2v["reason_code"], "connection_closed");
    assert!(w2v["down_at_ms"].as_u64().unwrap() > 0);

    let s = &dash["summary"];
    assert_eq!(
        (s["nodes_up"].as_u64(), s["nodes_down"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["restarts_1m"], 1);
    assert!(s["spawns_1m"].as_u64().unwrap() >= 4, "{s}");
    assert_eq!(s["trees_running"], 1);
    assert_eq!(dash["master"]["operations"], false);

    let tree = &dash["trees"][0];
    assert_eq!(tree["id"], "web");
    assert_eq!(tree["status"], "running");
    assert_eq!(
        tree["view"]["children"][0]["restarts"], 2,
        "the live view: {tree}"
    );
    assert_eq!(tree["view"]["node"], "w1", "node names, not ids");

    let kinds: Vec<&str> = dash["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "node_up",
        "app_started",
        "placement",
        "child_restarted",
        "node_down",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    let texts: Vec<&str> = dash["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"web/c restarted on w1 (was: killed)"),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("w2 is down: connection closed")),
        "{texts:?}"
    );

    // Only what is new: no event after the last, no sample after now.
    let path = format!(
        "/api/dashboard?since={}&after={}",
        dash["now_ms"].as_u64().unwrap() + 60_000,
        dash["last_seq"]
    );
    let (status, body) = http_get(http, &path).await;
    assert_eq!(status, 200);
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["events"].as_array().unwrap().len(), 0, "{again}");
    for n in again["nodes"].as_array().unwrap() {
        assert_eq!(n["history"].as_array().unwrap().len(), 0, "{n}");
    }
    master.shutdown().await;
}

/// Without a configured token every operation that changes the pool is
/// refused (403, saying how to enable it), while reading stays open.
#[tokio::test]
async fn operations_are_refused_without_a_configured_token() {
    let master = start_master(config(), true).await;
    let http = master.http_addr().unwrap();
    let _w = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let auth = [("Authorization", "Bearer anything")];
    for (method, path, body) in [
        ("POST", "/api/spawn", r#"{"function": "builtin.echo"}"#),
        ("POST", "/api/kill", r#"{"pid": "<00000000000000aa.1>"}"#),
        ("POST", "/api/trees", TREE),
        ("DELETE", "/api/trees/web", ""),
    ] {
        let (status, _, text) = http_send(http, method, path, &auth, body).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        assert!(
            text.contains("--http-token-file"),
            "{method} {path}: {text}"
        );
    }
    let (status, _) = http_get(http, "/api/nodes").await;
    assert_eq!(status, 200);
    master.shutdown().await;
}

/// With a token: no or a wrong token is 401; the right one spawns through
/// placement on the worker that has the function, kills with an explicit
/// exit signal from the master, and starts and stops trees.
#[tokio::test]
async fn operations_with_the_token_spawn_kill_and_manage_trees() {
    let mut cfg = config();
    cfg.http_token = Some(pool_master::HttpToken::new("correct-horse-battery-staple").unwrap());
    let master = start_master(cfg, true).await;
    let http = master.http_addr().unwrap();
    let w1 = SimNode::join(master.addr(), SimSpec::worker("w1"))
        .await
        .unwrap();
    let mut only_w2 = SimSpec::worker("w2");
    only_w2.functions.push("app.special".into());
    let w2 = SimNode::join(master.addr(), only_w2).await.unwrap();
    w1.report(0, 0);
    w2.report(0, 0);
    let spawn = r#"{"function": "app.special", "args": {"n": 1}}"#;

    let (status, head, text) = http_send(http, "POST", "/api/spawn", &[], spawn).await;
    assert_eq!(status, 401, "{text}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let wrong = [("Authorization", "Bearer correct-horse-battery-stapl")];
    let (status, _, _) = http_send(http, "POST", "/api/spawn", &wrong, spawn).await;
    assert_eq!(status, 401);

    let auth = [("Authorization", "Bearer correct-horse-battery-staple")];
    let (status, _, text) = http_send(http, "POST", "/api/spawn", &auth, spawn).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["node"], "w2", "only w2 has the function: {v}");
    let pid: Pid = v["pid"].as_str().unwrap().parse().unwrap();
    assert_eq!(pid.node(), w2.id);
    w2.expect_event(WAIT, "a Spawn request", |e| {
        matches!(e, Event::Request(Request::Spawn(r)) if r.function == "app.special" && r.args["n"] == 1)
    })
    .await;

    // Bad requests are JSON errors.
    for (body, code) in [
        (r#"{"function": "nope.none"}"#, 400),
        (r#"{"function": "builtin.echo", "node": "w9"}"#, 404),
        (r#"{"function": 3}"#, 400),
        (r#"{"function": "builtin.echo", "colour": "red"}"#, 400),
    ] {
        let (status, _, text) = http_send(http, "POST", "/api/spawn", &auth, body).await;
        assert_eq!(status, code, "{body}: {text}");
        assert!(text.contains("\"error\""), "{text}");
    }

    let kill = format!(r#"{{"pid": "{pid}"}}"#);
    let (status, _, text) = http_send(http, "POST", "/api/kill", &auth, &kill).await;
    assert_eq!(status, 200, "{text}");
    let ev = w2
        .expect_event(WAIT, "an exit signal", |e| matches!(e, Event::Signal(_)))
        .await;
    let Event::Signal(Msg::Exit {
        from,
        to,
        reason,
        explicit,
    }) = ev
    else {
        panic!("{ev:?}")
    };
    assert_eq!((to, reason, explicit), (pid, ExitReason::Kill, true));
    assert_eq!(
        from,
        Pid::new(master.id(), 0),
        "from the master's system pid"
    );
    let nobody = r#"{"pid": "<00000000000000ab.3>", "reason": "shutdown"}"#;
    let (status, _, _) = http_send(http, "POST", "/api/kill", &auth, nobody).await;
    assert_eq!(status, 404);

    let (status, _, text) =
        http_send(http, "POST", "/api/trees?source=web.toml", &auth, TREE).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["id"], "web");
    assert_eq!(v[0]["status"], "running");
    let (status, _, text) = http_send(http, "POST", "/api/trees", &auth, TREE).await;
    assert_eq!(status, 409, "already running: {text}");
    let bad = "[supervisor]\nid = \"x\"\nstrategy = \"one_for_none\"\n";
    let (status, _, text) = http_send(http, "POST", "/api/trees?source=x.toml", &auth, bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("x.toml") && text.contains("strategy"),
        "{text}"
    );

    let (status, _, text) = http_send(http, "DELETE", "/api/trees/web", &auth, "").await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0]["status"], "stopped");
    let (status, _, _) = http_send(http, "DELETE", "/api/trees/nope", &auth, "").await;
    assert_eq!(status, 404);

    // Every operation shows in the events feed.
    let (_, body) = http_get(http, "/api/dashboard").await;
    let dash: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dash["master"]["operations"], true);
    let api: Vec<&str> = dash["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "api")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(api.len(), 4, "{api:?}");
    assert!(!body.contains("correct-horse"), "the token never shows");
    master.shutdown().await;
}

/// One HTTP/1.1 request: (status, lower-cased head, body).
async fn http_send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    (status, head, body)
}
