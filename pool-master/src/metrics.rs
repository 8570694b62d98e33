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
//! | `pool_app_status` | gauge | `app`, `status`: one-hot, 1 for the app's status and 0 for the other three |
//! | `pool_connections` | gauge | |
//! | `pool_node_up` | gauge | `node`: 1 while live; 0 once declared down, kept until the master forgets the dead id (down retention; a node that left cleanly is forgotten at once) |
//! | `pool_node_cpu_percent`, `pool_node_self_cpu_percent`, `pool_node_memory_used_bytes`, `pool_node_memory_total_bytes`, `pool_node_resident_memory_bytes`, `pool_node_run_queue`, `pool_node_report_age_seconds` | gauge | `node`: from its last load report |
//! | `pool_process_exits_total` | counter | `node`, `reason` (normal, shutdown, killed, error, noconnection, other): as the node counts them |
//! | `pool_node_spawn_failures_total` | counter | `node`, `reason` (unknown_function, bad_args, other): spawn requests the node refused |
//! | `pool_spawn_failures_total` | counter | `reason` (no_node, unknown_function, bad_args, unreachable, other): spawns the master saw fail — placements refused for a spawn, and HTTP spawns the chosen node refused or did not answer |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_start_time_seconds`, `process_open_fds`, `process_threads`, ... | | the master's own OS process (metrics-process) |
//! | `pool_build_info` | gauge | `version`, `protocol`: always 1 |

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use pool_proto::{
    AppStatus, AppSummary, DownReason, ErrorCode, LoadReport, NodeId, NodeStatus, PROTOCOL_VERSION,
    PlacementStrategy,
};

#[cfg(test)]
mod tests;

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

/// Why a spawn failed, as `pool_spawn_failures_total` labels it: a small
/// fixed set, never a free-form message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpawnFailure {
    /// No node could take it (placement refused).
    NoNode,
    /// No such function on the node(s).
    UnknownFunction,
    /// The arguments did not fit the function.
    BadArgs,
    /// The chosen node left or did not answer.
    Unreachable,
    /// Anything else.
    Other,
}

/// Label values of [`SpawnFailure`], in its order.
const SPAWN_FAILURES: [&str; 5] = [
    "no_node",
    "unknown_function",
    "bad_args",
    "unreachable",
    "other",
];

impl SpawnFailure {
    /// The class of a spawn refused with `code`.
    pub(crate) fn of(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NoNode | ErrorCode::UnknownNode | ErrorCode::Overloaded => {
                SpawnFailure::NoNode
            }
            ErrorCode::UnknownFunction => SpawnFailure::UnknownFunction,
            ErrorCode::BadArgs | ErrorCode::BadSpec => SpawnFailure::BadArgs,
            ErrorCode::Unavailable => SpawnFailure::Unreachable,
            _ => SpawnFailure::Other,
        }
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
    /// Spawns the master saw fail, by [`SpawnFailure`].
    spawn_failures: [Counter; 5],
    /// Workers declared down and not yet forgotten, by name (the latest
    /// dead incarnation of each): their `pool_node_up` is 0.
    dead: Mutex<BTreeMap<String, NodeId>>,
    /// Reads the master's own OS process for the `process_*` series.
    process: metrics_process::Collector,
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
        describe(
            "pool_spawn_failures_total",
            None,
            "Spawns the master saw fail (placement refused, or the chosen node refused or did not answer an HTTP spawn), by reason.",
            0,
        );
        describe(
            "pool_build_info",
            None,
            "The master's version and wire protocol version; always 1.",
            1,
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
        let spawn_failures = SPAWN_FAILURES
            .map(|r| counter("pool_spawn_failures_total", vec![Label::new("reason", r)]));
        gauge(
            "pool_build_info",
            vec![
                Label::new("version", env!("CARGO_PKG_VERSION")),
                Label::new("protocol", PROTOCOL_VERSION.to_string()),
            ],
        )
        .set(1.0);
        let process = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || process.describe());
        // Touch every fixed series so it shows (at zero) from the start.
        workers_up.set(0.0);
        hidden_up.set(0.0);
        connections.set(0.0);
        placement_queries.increment(0);
        for c in placements
            .iter()
            .chain(&spawns)
            .chain(&downs)
            .chain(&spawn_failures)
        {
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
            spawn_failures,
            dead: Mutex::new(BTreeMap::new()),
            process,
        }
    }

    /// Counts a spawn that failed for `why`.
    pub(crate) fn spawn_failed(&self, why: SpawnFailure) {
        self.spawn_failures[why as usize].increment(1);
    }

    /// Worker `name` (incarnation `id`) was declared down: its
    /// `pool_node_up` shows 0 until [`forget_dead`](Self::forget_dead)
    /// drops it (or it is live again).
    pub(crate) fn node_dead(&self, id: NodeId, name: &str) {
        lock(&self.dead).insert(name.to_owned(), id);
    }

    /// Keeps the dead nodes whose id `remembered` still holds: the master
    /// forgets a dead id after its down retention (or when it is live
    /// again), and its series goes with it.
    pub(crate) fn forget_dead(&self, remembered: impl Fn(NodeId) -> bool) {
        lock(&self.dead).retain(|_, id| remembered(*id));
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
        let mut map = lock(&self.restarts);
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

    /// The Prometheus text: the recorder's series (the `process_*` ones
    /// read now), then the apps by status and the per-node series from
    /// `nodes` (written at scrape time, so a node that left leaves no stale
    /// series behind — except `pool_node_up`, 0 for the dead ones).
    pub(crate) fn render(&self, nodes: &[NodeRow], apps: &[AppSummary]) -> String {
        metrics::with_local_recorder(&self.recorder, || self.process.collect());
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let counts = AppCounts::of(apps);
        let _ = writeln!(
            out,
            "# HELP pool_apps Pool applications (trees the master keeps), by status."
        );
        let _ = writeln!(out, "# TYPE pool_apps gauge");
        for (status, n) in [
            (AppStatus::Running, counts.running),
            (AppStatus::Pending, counts.pending),
            (AppStatus::Failed, counts.failed),
            (AppStatus::Stopped, counts.stopped),
        ] {
            let _ = writeln!(out, "pool_apps{{status=\"{}\"}} {n}", status.as_str());
        }
        let _ = writeln!(
            out,
            "# HELP pool_app_status Each application's status, one-hot: 1 for its status, 0 for the others."
        );
        let _ = writeln!(out, "# TYPE pool_app_status gauge");
        for a in apps {
            let app = escape_label(&a.id);
            for status in APP_STATUSES {
                let on = u8::from(a.status == status);
                let _ = writeln!(
                    out,
                    "pool_app_status{{app=\"{app}\",status=\"{}\"}} {on}",
                    status.as_str()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pool_node_up Whether a worker is live (1), or declared down and not yet forgotten by the master (0)."
        );
        let _ = writeln!(out, "# TYPE pool_node_up gauge");
        let mut up: BTreeMap<&str, u8> =
            nodes.iter().map(|n| (n.status.name.as_str(), 1)).collect();
        let dead = lock(&self.dead);
        for name in dead.keys() {
            up.entry(name.as_str()).or_insert(0);
        }
        for (name, v) in up {
            let _ = writeln!(out, "pool_node_up{{node=\"{}\"}} {v}", escape_label(name));
        }
        drop(dead);
        let per_node: [PerNode<'_>; 15] = [
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
                "pool_node_cpu_percent",
                "gauge",
                "CPU use of the node's machine, percent of all cores, at its last report.",
                &|n| f64::from(n.status.cpu),
            ),
            (
                "pool_node_self_cpu_percent",
                "gauge",
                "CPU use of the node's own OS process, percent of one core, at its last report.",
                &|n| f64::from(n.status.self_cpu),
            ),
            (
                "pool_node_memory_used_bytes",
                "gauge",
                "Memory in use on the node's machine at its last report.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.mem_used as f64),
            ),
            (
                "pool_node_memory_total_bytes",
                "gauge",
                "Memory of the node's machine.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.mem_total as f64),
            ),
            (
                "pool_node_resident_memory_bytes",
                "gauge",
                "Resident memory of the node's own OS process at its last report.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.self_rss as f64),
            ),
            (
                "pool_node_run_queue",
                "gauge",
                "Runnable processes (running or waiting for a thread) at the last report.",
                &|n| f64::from(n.status.run_queue),
            ),
            (
                "pool_node_report_age_seconds",
                "gauge",
                "Seconds since the node's last load report.",
                &|n| n.status.report_age_ms as f64 / 1000.0,
            ),
            (
                "pool_node_frames_sent_total",
                "counter",
                "Frames (messages and signals) the node sent to other nodes, as it last reported.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.frames_out as f64),
            ),
            (
                "pool_node_bytes_sent_total",
                "counter",
                "Bytes of the frames the node sent to other nodes.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.bytes_out as f64),
            ),
            (
                "pool_node_frames_received_total",
                "counter",
                "Frames the node received from other nodes, as it last reported.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.frames_in as f64),
            ),
            (
                "pool_node_bytes_received_total",
                "counter",
                "Bytes of the frames the node received from other nodes.",
                &|n| n.report.as_ref().map_or(0.0, |r| r.bytes_in as f64),
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
        let _ = writeln!(
            out,
            "# HELP pool_process_exits_total Process exits on the node, by reason class, as it last reported."
        );
        let _ = writeln!(out, "# TYPE pool_process_exits_total counter");
        for n in nodes {
            let node = escape_label(&n.status.name);
            let o = n.report.as_ref().map(|r| r.outcomes).unwrap_or_default();
            for (reason, v) in o.exits() {
                let _ = writeln!(
                    out,
                    "pool_process_exits_total{{node=\"{node}\",reason=\"{reason}\"}} {v}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pool_node_spawn_failures_total Spawn requests the node refused, by reason, as it last reported."
        );
        let _ = writeln!(out, "# TYPE pool_node_spawn_failures_total counter");
        for n in nodes {
            let node = escape_label(&n.status.name);
            let o = n.report.as_ref().map(|r| r.outcomes).unwrap_or_default();
            for (reason, v) in o.spawn_failures() {
                let _ = writeln!(
                    out,
                    "pool_node_spawn_failures_total{{node=\"{node}\",reason=\"{reason}\"}} {v}"
                );
            }
        }
        out
    }
}

/// Every app status, in the order `pool_app_status` lists them.
const APP_STATUSES: [AppStatus; 4] = [
    AppStatus::Running,
    AppStatus::Pending,
    AppStatus::Failed,
    AppStatus::Stopped,
];

/// Locks `m`, going on through poison: every critical section here leaves
/// its map whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Its last load report (`None` before the first).
    pub(crate) report: Option<LoadReport>,
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
