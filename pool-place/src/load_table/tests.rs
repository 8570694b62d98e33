//! Unit tests of the load table: the score from each node's own signals,
//! placement accounting, memory pressure and the `poolctl nodes` view.

use std::time::{Duration, Instant};

use pool_proto::{LoadReport, NodeId, NodeInfo, NodeKind};

use super::*;

/// A worker `w<n>` with id `n`.
fn worker(n: u64, capacity: u32) -> NodeInfo {
    NodeInfo {
        id: NodeId::from_u64(n),
        name: format!("w{n}"),
        addr: format!("127.0.0.1:{}", 7500 + n),
        kind: NodeKind::Worker,
        capacity,
        labels: Default::default(),
    }
}

/// A report with this run queue and busy threads.
fn report(seq: u64, run_queue: u32, busy_threads: f32) -> LoadReport {
    LoadReport {
        seq,
        run_queue,
        busy_threads,
        ..Default::default()
    }
}

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

/// Two nodes on one machine report the same machine CPU and memory but
/// different run queues: the score tells them apart, machine CPU plays no
/// part.
#[test]
fn score_comes_from_the_nodes_own_signals_not_machine_cpu() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 2), now);
    t.add_node(worker(2, 2), now);
    let shared = LoadReport {
        cpu_percent: 97.0,
        mem_used: 4,
        mem_total: 16,
        ..Default::default()
    };
    t.on_report(
        id(1),
        LoadReport {
            run_queue: 6,
            ..shared.clone()
        },
        now,
    );
    t.on_report(
        id(2),
        LoadReport {
            run_queue: 1,
            ..shared
        },
        now,
    );
    assert_eq!(t.score(id(1)), Some(3.0));
    assert_eq!(t.score(id(2)), Some(0.5));
}

/// Load is the larger of the run queue and the busy threads.
#[test]
fn load_is_max_of_run_queue_and_busy_threads() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 4), now);
    t.on_report(id(1), report(1, 1, 3.0), now);
    assert_eq!(t.load(id(1)), Some(3.0));
    assert_eq!(t.score(id(1)), Some(0.75));
    t.on_report(id(1), report(2, 5, 3.0), now);
    assert_eq!(t.load(id(1)), Some(5.0));
    // A NaN from a broken sampler does not poison the score.
    t.on_report(id(1), report(3, 2, f32::NAN), now);
    assert_eq!(t.load(id(1)), Some(2.0));
}

/// Before its first report a node is load 0 plus its placements.
#[test]
fn unreported_node_counts_its_placements() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 2), now);
    assert_eq!(t.load(id(1)), Some(0.0));
    assert!(t.record_placement(id(1)));
    assert!(t.record_placement(id(1)));
    assert_eq!(t.load(id(1)), Some(2.0));
    assert_eq!(t.score(id(1)), Some(1.0));
    assert!(!t.record_placement(id(9)), "unknown node");
}

/// A report replaces the placements counted since the previous one.
#[test]
fn report_replaces_placements_since_the_last_one() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 1), now);
    t.on_report(id(1), report(1, 2, 0.0), now);
    t.record_placement(id(1));
    t.record_placement(id(1));
    assert_eq!((t.load(id(1)), t.pending(id(1))), (Some(4.0), Some(2)));
    t.on_report(id(1), report(2, 3, 0.0), now + Duration::from_secs(1));
    assert_eq!((t.load(id(1)), t.pending(id(1))), (Some(3.0), Some(0)));
}

/// Without accounting (the simulation's "stale" mode) placements are still
/// counted but do not change the score.
#[test]
fn accounting_off_scores_the_report_alone() {
    let now = Instant::now();
    let mut t = LoadTable::new(LoadTableConfig {
        accounting: false,
        ..Default::default()
    });
    t.add_node(worker(1, 1), now);
    t.record_placement(id(1));
    assert_eq!((t.score(id(1)), t.pending(id(1))), (Some(0.0), Some(1)));
}

/// An out-of-date report (lower seq) is ignored; reports for unknown nodes
/// are refused.
#[test]
fn older_report_and_unknown_node_are_ignored() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 1), now);
    assert!(t.on_report(id(1), report(5, 2, 0.0), now));
    assert!(!t.on_report(id(1), report(4, 9, 0.0), now));
    assert_eq!(t.load(id(1)), Some(2.0));
    assert!(
        t.on_report(id(1), report(5, 1, 0.0), now),
        "same seq is fine"
    );
    assert!(!t.on_report(id(2), report(1, 0, 0.0), now));
}

/// A report's non-zero capacity replaces the joined one; capacity 0 scores
/// as 1 instead of dividing by zero.
#[test]
fn capacity_follows_reports_and_zero_is_one() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    t.add_node(worker(1, 0), now);
    t.record_placement(id(1));
    assert_eq!(t.score(id(1)), Some(1.0));
    t.on_report(
        id(1),
        LoadReport {
            run_queue: 8,
            capacity: 4,
            ..Default::default()
        },
        now,
    );
    assert_eq!(t.score(id(1)), Some(2.0));
    assert_eq!(t.info(id(1)).unwrap().capacity, 4);
}

/// Memory use above the threshold makes a node refuse placement; `None`
/// disables it.
#[test]
fn memory_pressure_threshold() {
    let now = Instant::now();
    let full = LoadReport {
        mem_used: 97,
        mem_total: 100,
        ..Default::default()
    };
    let mut t = LoadTable::default();
    t.add_node(worker(1, 1), now);
    assert_eq!(t.memory_pressure(id(1)), None, "no report yet");
    t.on_report(id(1), full.clone(), now);
    assert_eq!(t.memory_pressure(id(1)), Some(0.97));
    let mut relaxed = LoadTable::new(LoadTableConfig {
        mem_refuse_above: None,
        ..Default::default()
    });
    relaxed.add_node(worker(1, 1), now);
    relaxed.on_report(id(1), full, now);
    assert_eq!(relaxed.memory_pressure(id(1)), None);
}

/// The `poolctl nodes` view: machine cpu/mem for display, procs and score
/// with placements since the report, report age from `now`.
#[test]
fn status_view() {
    let t0 = Instant::now();
    let mut t = LoadTable::default();
    let mut info = worker(1, 2);
    info.labels.insert("zone".into(), "a".into());
    t.add_node(info, t0);
    t.add_node(worker(2, 1), t0);
    t.on_report(
        id(1),
        LoadReport {
            seq: 1,
            cpu_percent: 40.0,
            self_cpu_percent: 150.0,
            mem_used: 1,
            mem_total: 4,
            processes: 10,
            run_queue: 3,
            capacity: 2,
            ..Default::default()
        },
        t0 + Duration::from_millis(100),
    );
    t.record_placement(id(1));
    let s = t.status(t0 + Duration::from_millis(350));
    assert_eq!(s.len(), 2);
    let w1 = &s[0];
    assert_eq!(
        (w1.name.as_str(), w1.id, w1.addr.as_str()),
        ("w1", id(1), "127.0.0.1:7501")
    );
    assert_eq!((w1.cpu, w1.mem, w1.self_cpu), (40.0, 25.0, 150.0));
    assert_eq!((w1.procs, w1.run_queue, w1.capacity), (11, 3, 2));
    assert_eq!(w1.score, 2.0);
    assert_eq!(w1.report_age_ms, 250);
    assert_eq!(w1.labels.get("zone").map(String::as_str), Some("a"));
    let w2 = &s[1];
    assert_eq!((w2.score, w2.procs, w2.report_age_ms), (0.0, 0, 350));
}

/// Re-adding a node updates its info and keeps its load; removing returns
/// its info and forgets it.
#[test]
fn add_and_remove() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    assert!(t.is_empty());
    assert!(t.add_node(worker(2, 1), now));
    assert!(t.add_node(worker(1, 1), now));
    t.on_report(id(2), report(1, 3, 0.0), now);
    let mut renamed = worker(2, 1);
    renamed.name = "w2b".into();
    assert!(!t.add_node(renamed, now));
    assert_eq!(t.load(id(2)), Some(3.0));
    assert_eq!(t.find_by_name("w2b"), Some(id(2)));
    assert_eq!(t.node_ids().collect::<Vec<_>>(), vec![id(1), id(2)]);
    assert_eq!(t.remove_node(id(2)).map(|i| i.name), Some("w2b".to_owned()));
    assert_eq!(t.remove_node(id(2)), None);
    assert_eq!(t.len(), 1);
    assert_eq!(t.placed(id(1)).unwrap().addr, "127.0.0.1:7501");
}

/// Rows added in any order and removed from the middle are still found by
/// id, each with its own report: the ids searched stay in step with the
/// rows.
#[test]
fn rows_are_found_by_id_after_adds_and_removes() {
    let now = Instant::now();
    let mut table = LoadTable::default();
    for n in [5, 1, 9, 3, 7, 2, 8] {
        assert!(table.add_node(worker(n, 1), now));
    }
    assert!(!table.add_node(worker(3, 2), now));
    assert_eq!(table.remove_node(id(7)).map(|i| i.id), Some(id(7)));
    assert_eq!(table.remove_node(id(1)).map(|i| i.id), Some(id(1)));
    assert!(table.remove_node(id(7)).is_none());
    for n in [2, 3, 5, 8, 9] {
        assert!(table.on_report(id(n), report(1, n as u32, 0.0), now));
    }
    for n in [1, 7, 4] {
        assert!(!table.on_report(id(n), report(1, 0, 0.0), now));
    }
    for n in [2, 5, 8, 9] {
        assert_eq!(table.score(id(n)), Some(n as f64), "w{n}");
    }
    assert_eq!(table.score(id(3)), Some(1.5), "w3 with capacity 2");
}
