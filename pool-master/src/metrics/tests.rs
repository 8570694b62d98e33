use pool_proto::{AppStatus, AppSummary, LoadReport, NodeId, NodeStatus, ProcessOutcomes};
use serde_json::json;

use super::*;

/// A status line built from JSON, so that fields added later with a
/// default do not touch this test.
fn status(n: u64, name: &str) -> NodeStatus {
    serde_json::from_value(json!({
        "name": name, "id": NodeId::from_u64(n), "addr": "127.0.0.1:1",
        "cpu": 42.5, "mem": 10.0, "procs": 7, "score": 0.5, "labels": {},
        "capacity": 2, "self_cpu": 3.5, "run_queue": 4, "report_age_ms": 1500,
    }))
    .expect("a status line")
}

fn row(n: u64, name: &str, report: Option<LoadReport>) -> NodeRow {
    NodeRow {
        status: status(n, name),
        load: 4.0,
        report,
    }
}

fn app(id: &str, status: AppStatus) -> AppSummary {
    AppSummary {
        id: id.to_owned(),
        root: None,
        node: None,
        status,
        reason: None,
    }
}

/// The lines of `text` that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// A live node is up (1); a node declared down stays at 0 until the master
/// forgets its id; a dead name that is live again shows 1, once.
#[test]
fn node_up_keeps_dead_nodes_until_forgotten() {
    let m = Metrics::new();
    let nodes = [row(1, "w1", None)];
    assert_eq!(
        lines(&m.render(&nodes, &[]), "pool_node_up{"),
        ["pool_node_up{node=\"w1\"} 1"]
    );
    m.node_dead(NodeId::from_u64(2), "w2");
    let text = m.render(&nodes, &[]);
    assert_eq!(
        lines(&text, "pool_node_up{"),
        ["pool_node_up{node=\"w1\"} 1", "pool_node_up{node=\"w2\"} 0"]
    );
    assert!(text.contains("# TYPE pool_node_up gauge"), "{text}");
    // The other per-node series are of live nodes only.
    assert!(lines(&text, "pool_node_run_queue{node=\"w2\"").is_empty());
    // Back under a new incarnation: 1, not both.
    let back = [row(1, "w1", None), row(3, "w2", None)];
    assert_eq!(
        lines(&m.render(&back, &[]), "pool_node_up{node=\"w2\"}"),
        ["pool_node_up{node=\"w2\"} 1"]
    );
    // The master still remembers id 2: kept; then forgotten: gone.
    m.forget_dead(|id| id == NodeId::from_u64(2));
    assert_eq!(
        lines(&m.render(&nodes, &[]), "pool_node_up{node=\"w2\"}"),
        ["pool_node_up{node=\"w2\"} 0"]
    );
    m.forget_dead(|_| false);
    assert!(lines(&m.render(&nodes, &[]), "pool_node_up{node=\"w2\"}").is_empty());
}

/// Each app has one series per status, 1 for its own and 0 for the
/// others; `pool_apps` still counts them.
#[test]
fn app_status_is_one_hot() {
    let m = Metrics::new();
    let apps = [
        app("ingest", AppStatus::Pending),
        app("web", AppStatus::Running),
    ];
    let text = m.render(&[], &apps);
    assert_eq!(
        lines(&text, "pool_app_status{app=\"ingest\""),
        [
            "pool_app_status{app=\"ingest\",status=\"running\"} 0",
            "pool_app_status{app=\"ingest\",status=\"pending\"} 1",
            "pool_app_status{app=\"ingest\",status=\"failed\"} 0",
            "pool_app_status{app=\"ingest\",status=\"stopped\"} 0",
        ]
    );
    assert!(text.contains("pool_app_status{app=\"web\",status=\"running\"} 1"));
    assert!(text.contains("pool_apps{status=\"pending\"} 1"));
    assert!(text.contains("pool_apps{status=\"running\"} 1"));
}

/// CPU, memory, run queue, processes and report age come from the node's
/// status and last report; exits and refused spawns by reason class.
#[test]
fn per_node_series_and_exit_counters() {
    let m = Metrics::new();
    let report = LoadReport {
        mem_used: 1024,
        mem_total: 4096,
        self_rss: 512,
        frames_out: 9,
        outcomes: ProcessOutcomes {
            exits_normal: 5,
            exits_error: 2,
            exits_noconnection: 1,
            spawn_bad_args: 3,
            ..ProcessOutcomes::default()
        },
        ..LoadReport::default()
    };
    let text = m.render(&[row(1, "w1", Some(report)), row(2, "w2", None)], &[]);
    for line in [
        "pool_node_cpu_percent{node=\"w1\"} 42.5",
        "pool_node_self_cpu_percent{node=\"w1\"} 3.5",
        "pool_node_memory_used_bytes{node=\"w1\"} 1024",
        "pool_node_memory_total_bytes{node=\"w1\"} 4096",
        "pool_node_resident_memory_bytes{node=\"w1\"} 512",
        "pool_node_run_queue{node=\"w1\"} 4",
        "pool_node_processes{node=\"w1\"} 7",
        "pool_node_report_age_seconds{node=\"w1\"} 1.5",
        "pool_node_frames_sent_total{node=\"w1\"} 9",
        "pool_process_exits_total{node=\"w1\",reason=\"normal\"} 5",
        "pool_process_exits_total{node=\"w1\",reason=\"error\"} 2",
        "pool_process_exits_total{node=\"w1\",reason=\"noconnection\"} 1",
        "pool_process_exits_total{node=\"w1\",reason=\"killed\"} 0",
        "pool_node_spawn_failures_total{node=\"w1\",reason=\"bad_args\"} 3",
        // A node without a report yet shows zeros, not nothing.
        "pool_process_exits_total{node=\"w2\",reason=\"normal\"} 0",
        "pool_node_memory_used_bytes{node=\"w2\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(
        lines(&text, "pool_process_exits_total{node=\"w1\"").len(),
        6,
        "six reason classes, no more"
    );
    assert!(text.contains("# TYPE pool_process_exits_total counter"));
}

/// The master's spawn failures by reason (all present from the start),
/// its build info, and its own process series.
#[test]
fn spawn_failures_build_info_and_process_series() {
    let m = Metrics::new();
    m.spawn_failed(SpawnFailure::NoNode);
    m.spawn_failed(SpawnFailure::NoNode);
    m.spawn_failed(SpawnFailure::of(ErrorCode::UnknownFunction));
    let text = m.render(&[], &[]);
    assert!(
        text.contains("pool_spawn_failures_total{reason=\"no_node\"} 2"),
        "{text}"
    );
    assert!(text.contains("pool_spawn_failures_total{reason=\"unknown_function\"} 1"));
    assert!(text.contains("pool_spawn_failures_total{reason=\"unreachable\"} 0"));
    let build = format!(
        "pool_build_info{{version=\"{}\",protocol=\"{PROTOCOL_VERSION}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.lines().any(|l| l == build),
        "missing {build:?} in\n{text}"
    );
    if cfg!(target_os = "linux") {
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_threads ",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"));
            let v: f64 = line[name.len()..].parse().expect("a number");
            assert!(v >= 0.0, "{line}");
        }
        let rss = lines(&text, "process_resident_memory_bytes ")[0];
        assert_ne!(
            rss, "process_resident_memory_bytes 0",
            "the master uses memory"
        );
    }
}

/// Label values are escaped: a node name cannot break the text format.
#[test]
fn labels_are_escaped() {
    let m = Metrics::new();
    let text = m.render(&[row(1, "a\"b\\c", None)], &[]);
    assert!(
        text.contains("pool_node_up{node=\"a\\\"b\\\\c\"} 1"),
        "{text}"
    );
}
