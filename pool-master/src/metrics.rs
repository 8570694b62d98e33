//! The master's metrics, rendered as Prometheus text by `GET /metrics`.
//!
//! Each master owns its own recorder (not the process-global one), so that
//! several masters in one process — as in the tests — keep apart, and the
//! library installs nothing global (STYLE.md point 8). Fixed series are
//! registered once and updated through their handles; per-node gauges
//! (load, score, processes, capacity) are written at scrape time from the
//! load table, so a node that left leaves no stale series behind.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `pool_nodes_up` | gauge | `kind` = worker / hidden |
//! | `pool_node_load`, `pool_node_score`, `pool_node_processes`, `pool_node_capacity` | gauge | `node` |
//! | `pool_node_frames_sent_total`, `pool_node_bytes_sent_total`, `pool_node_frames_received_total`, `pool_node_bytes_received_total` | counter | `node` (messages and signals routed to and from other nodes, as the node reports them) |
//! | `pool_placement_queries_total` | counter | |
//! | `pool_placements_total` | counter | `strategy` (least-loaded, two-choices, round-robin, random, keyed) |
//! | `pool_spawns_total` | counter | `strategy`: placements made for a spawn (Pool API, `poolctl spawn`, HTTP, application roots) |
//! | `pool_nodes_down_total` | counter | `reason` (connection_closed, timeout, left, replaced): workers only, not clients such as `poolctl` hanging up |
//! | `pool_reports_total` | counter | |
//! | `pool_report_latency_seconds` | histogram | (worker clock `sent_at_ms` to arrival) |
//! | `pool_tree_restarts_total` | counter | `tree` |
//! | `pool_apps` | gauge | `status` = running / pending / failed / stopped (all four always present; written at scrape time) |
//! | `pool_connections` | gauge | |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use pool_proto::{AppStatus, AppSummary, DownReason, NodeStatus, PlacementStrategy};

/// Buckets of the report-latency histogram, seconds: loopback is well under
/// a millisecond; a second or more means a clock skew or a stalled node.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The label value of a placement strategy (and `keyed`).
fn strategy_index(strategy: Option<PlacementStrategy>) -> usize {
    match strategy {
        Some(PlacementStrategy::LeastLoaded) => 0,
        Some(PlacementStrategy::TwoChoices) => 1,
        Some(PlacementStrategy::RoundRobin) => 2,
        Some(PlacementStrategy::Random) => 3,
        None => 4,
    }
}

/// Label values in [`strategy_index`] order.
const STRATEGIES: [&str; 5] = [
    "least-loaded",
    "two-choices",
    "round-robin",
    "random",
    "keyed",
];

/// Label values of down reasons, in [`down_index`] order.
const DOWN_REASONS: [&str; 4] = ["connection_closed", "timeout", "left", "replaced"];

fn down_index(reason: &DownReason) -> usize {
    match reason {
        DownReason::ConnectionClosed => 0,
        DownReason::Timeout => 1,
        DownReason::Left => 2,
        DownReason::Replaced => 3,
    }
}

/// The master's metric handles.
pub(crate) struct Metrics {
    /// The recorder the handles below were registered with.
    recorder: PrometheusRecorder,
    /// Renders and maintains the recorder's state.
    handle: PrometheusHandle,
    /// Live worker nodes.
    pub(crate) workers_up: Gauge,
    /// Live hidden nodes.
    pub(crate) hidden_up: Gauge,
    /// Open node connections (handshaken or not).
    pub(crate) connections: Gauge,
    /// Placement queries answered.
    pub(crate) placement_queries: Counter,
    /// Placements made, by strategy.
    placements: [Counter; 5],
    /// Placements made for a spawn, by strategy.
    spawns: [Counter; 5],
    /// Nodes declared down, by reason.
    downs: [Counter; 4],
    /// Load reports received.
    pub(crate) reports: Counter,
    /// Report latency, seconds.
    pub(crate) report_latency: Histogram,
    /// Restarts per tree, registered on first use.
    restarts: Mutex<HashMap<String, Counter>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Metadata for our registrations.
const META: Metadata<'static> =
    Metadata::new("pool_master", metrics::Level::INFO, Some("pool_master"));

impl Metrics {
    /// A fresh set of metrics with its own recorder.
    pub(crate) fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("pool_report_latency_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str, kind: u8| {
            let k = KeyName::from_const_str(name);
            match kind {
                0 => recorder.describe_counter(k, unit, help.into()),
                1 => recorder.describe_gauge(k, unit, help.into()),
                _ => recorder.describe_histogram(k, unit, help.into()),
            }
        };
        describe("pool_nodes_up", None, "Live nodes, by kind.", 1);
        describe("pool_connections", None, "Open node connections.", 1);
        describe(
            "pool_placement_queries_total",
            None,
            "Placement queries answered.",
            0,
        );
        describe(
            "pool_placements_total",
            None,
            "Placements made, by strategy.",
            0,
        );
        describe(
            "pool_spawns_total",
            None,
            "Placements made for a spawn (committed), by strategy.",
            0,
        );
        describe(
            "pool_nodes_down_total",
            None,
            "Nodes declared down, by reason.",
            0,
        );
        describe("pool_reports_total", None, "Load reports received.", 0);
        describe(
            "pool_report_latency_seconds",
            Some(Unit::Seconds),
            "Time from a worker sampling its load (its clock) to the report's arrival.",
            2,
        );
        describe(
            "pool_tree_restarts_total",
            None,
            "Child restarts, by tree.",
            0,
        );
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &META)
        };
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &META)
        };
        let workers_up = gauge("pool_nodes_up", vec![Label::new("kind", "worker")]);
        let hidden_up = gauge("pool_nodes_up", vec![Label::new("kind", "hidden")]);
        let connections = gauge("pool_connections", vec![]);
        let placement_queries = counter("pool_placement_queries_total", vec![]);
        let placements =
            STRATEGIES.map(|s| counter("pool_placements_total", vec![Label::new("strategy", s)]));
        let spawns =
            STRATEGIES.map(|s| counter("pool_spawns_total", vec![Label::new("strategy", s)]));
        let downs =
            DOWN_REASONS.map(|r| counter("pool_nodes_down_total", vec![Label::new("reason", r)]));
        let reports = counter("pool_reports_total", vec![]);
        let report_latency =
            recorder.register_histogram(&Key::from_name("pool_report_latency_seconds"), &META);
        // Touch every fixed series so it shows (at zero) from the start.
        workers_up.set(0.0);
        hidden_up.set(0.0);
        connections.set(0.0);
        placement_queries.increment(0);
        for c in placements.iter().chain(&spawns).chain(&downs) {
            c.increment(0);
        }
        reports.increment(0);
        Metrics {
            recorder,
            handle,
            workers_up,
            hidden_up,
            connections,
            placement_queries,
            placements,
            spawns,
            downs,
            reports,
            report_latency,
            restarts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts `n` placements made by `strategy` (`None`: keyed).
    pub(crate) fn placed(&self, strategy: Option<PlacementStrategy>, n: u64) {
        self.placements[strategy_index(strategy)].increment(n);
    }

    /// Counts `n` placements made for a spawn by `strategy` (`None`: keyed).
    pub(crate) fn spawned(&self, strategy: Option<PlacementStrategy>, n: u64) {
        self.spawns[strategy_index(strategy)].increment(n);
    }

    /// Counts a node declared down.
    pub(crate) fn node_down(&self, reason: &DownReason) {
        self.downs[down_index(reason)].increment(1);
    }

    /// Counts a child restart in `tree`.
    pub(crate) fn restart(&self, tree: &str) {
        let mut map = self.restarts.lock().unwrap_or_else(|e| e.into_inner());
        let c = map.entry(tree.to_owned()).or_insert_with(|| {
            self.recorder.register_counter(
                &Key::from_parts(
                    "pool_tree_restarts_total",
                    vec![Label::new("tree", tree.to_owned())],
                ),
                &META,
            )
        });
        c.increment(1);
    }

    /// Drains histogram samples into their buckets (call periodically).
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text: the recorder's series, then the apps by
    /// status and the per-node series from `nodes` (written at scrape
    /// time, so a node that left leaves no stale series behind).
    pub(crate) fn render(&self, nodes: &[NodeRow], apps: &AppCounts) -> String {
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "# HELP pool_apps Pool applications (trees the master keeps), by status."
        );
        let _ = writeln!(out, "# TYPE pool_apps gauge");
        for (status, n) in [
            (AppStatus::Running, apps.running),
            (AppStatus::Pending, apps.pending),
            (AppStatus::Failed, apps.failed),
            (AppStatus::Stopped, apps.stopped),
        ] {
            let _ = writeln!(out, "pool_apps{{status=\"{}\"}} {n}", status.as_str());
        }
        let per_node: [PerNode<'_>; 8] = [
            (
                "pool_node_load",
                "gauge",
                "Runnable processes at the last report plus placements since.",
                &|n| n.load,
            ),
            (
                "pool_node_score",
                "gauge",
                "Placement score: load per unit of capacity.",
                &|n| n.status.score,
            ),
            (
                "pool_node_processes",
                "gauge",
                "Processes alive at the last report plus placements since.",
                &|n| n.status.procs as f64,
            ),
            (
                "pool_node_capacity",
                "gauge",
                "Capacity the node reported.",
                &|n| f64::from(n.status.capacity),
            ),
            (
                "pool_node_frames_sent_total",
                "counter",
                "Frames (messages and signals) the node sent to other nodes, as it last reported.",
                &|n| n.traffic[0] as f64,
            ),
            (
                "pool_node_bytes_sent_total",
                "counter",
                "Bytes of the frames the node sent to other nodes.",
                &|n| n.traffic[1] as f64,
            ),
            (
                "pool_node_frames_received_total",
                "counter",
                "Frames the node received from other nodes, as it last reported.",
                &|n| n.traffic[2] as f64,
            ),
            (
                "pool_node_bytes_received_total",
                "counter",
                "Bytes of the frames the node received from other nodes.",
                &|n| n.traffic[3] as f64,
            ),
        ];
        for (name, kind, help, value) in per_node {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for n in nodes {
                let _ = writeln!(
                    out,
                    "{name}{{node=\"{}\"}} {}",
                    escape_label(&n.status.name),
                    value(n)
                );
            }
        }
        out
    }
}

/// How many apps are in each status, as `/metrics` and the dashboard
/// count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AppCounts {
    /// Running apps.
    pub(crate) running: usize,
    /// Pending apps (waiting for a node, retried).
    pub(crate) pending: usize,
    /// Failed apps.
    pub(crate) failed: usize,
    /// Stopped apps.
    pub(crate) stopped: usize,
}

impl AppCounts {
    /// Counts the statuses of `apps`.
    pub(crate) fn of<'a>(apps: impl IntoIterator<Item = &'a AppSummary>) -> Self {
        let mut c = AppCounts::default();
        for a in apps {
            match a.status {
                AppStatus::Running => c.running += 1,
                AppStatus::Pending => c.pending += 1,
                AppStatus::Failed => c.failed += 1,
                AppStatus::Stopped => c.stopped += 1,
            }
        }
        c
    }
}

/// One live node as `/metrics` shows it.
#[derive(Debug)]
pub(crate) struct NodeRow {
    /// Its `poolctl nodes` line.
    pub(crate) status: NodeStatus,
    /// Its load (runnable processes plus placements since the report).
    pub(crate) load: f64,
    /// Frames sent, bytes sent, frames received, bytes received: the
    /// cumulative counters of its last report (zero before the first).
    pub(crate) traffic: [u64; 4],
}

/// A per-node series: name, type, help text, value of a node.
type PerNode<'a> = (
    &'static str,
    &'static str,
    &'static str,
    &'a dyn Fn(&NodeRow) -> f64,
);

/// Escapes a label value for the Prometheus text format.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}
