use pool_proto::{DownReason, LoadReport, NodeId, NodeInfo, NodeKind, NodeStatus};

use super::*;

fn info(n: u64, name: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId::from_u64(n),
        name: name.to_owned(),
        addr: format!("127.0.0.1:{}", 7500 + n),
        kind: NodeKind::Worker,
        capacity: 2,
        labels: [("zone".to_owned(), "a".to_owned())].into(),
    }
}

fn status(n: u64, name: &str, score: f64, procs: u64) -> NodeStatus {
    NodeStatus {
        name: name.to_owned(),
        id: NodeId::from_u64(n),
        addr: String::new(),
        cpu: 0.0,
        mem: 0.0,
        procs,
        score,
        labels: Default::default(),
        capacity: 2,
        self_cpu: 12.5,
        run_queue: 0,
        report_age_ms: 0,
        unreachable_from: Vec::new(),
    }
}

fn report(frames_out: u64, frames_in: u64) -> LoadReport {
    LoadReport {
        frames_out,
        frames_in,
        ..LoadReport::default()
    }
}

/// The history of a node is one sample a second, at most five minutes of
/// them; traffic counters become rates per second.
#[test]
fn history_is_bounded_and_traffic_becomes_rates() {
    let mut a = Activity::default();
    a.node_up(&info(1, "w1"), 0);
    let s = status(1, "w1", 0.5, 3);
    for i in 0..(HISTORY_LEN as u64 + 50) {
        let r = report(100 * i, 40 * i);
        a.sample([(&s, Some(&r))], 1_000 + i * HISTORY_STEP_MS);
    }
    let h = a.history_since(NodeId::from_u64(1), 0);
    assert_eq!(h.len(), HISTORY_LEN);
    let last = h.last().unwrap();
    assert_eq!((last.1, last.2, last.3), (0.5, 3, 12.5));
    assert_eq!((last.4, last.5), (100.0, 40.0), "frames per second");
    // Only newer samples after `since`.
    let t = h[h.len() - 3].t();
    assert_eq!(a.history_since(NodeId::from_u64(1), t).len(), 2);
}

/// Only so many nodes get a history: memory stays bounded in a huge pool.
#[test]
fn history_nodes_are_capped() {
    let mut a = Activity::default();
    let all: Vec<NodeStatus> = (0..MAX_HISTORY_NODES as u64 + 10)
        .map(|n| status(n, &format!("w{n}"), 0.0, 0))
        .collect();
    a.sample(all.iter().map(|s| (s, None)), 1_000);
    assert_eq!(a.history.len(), MAX_HISTORY_NODES);
}

/// A node that goes down keeps its card (with its reason and history) for
/// a while; a node of the same name coming back replaces it.
#[test]
fn down_nodes_stay_visible_for_a_while() {
    let mut a = Activity::default();
    a.node_up(&info(1, "w1"), 0);
    let s = status(1, "w1", 1.0, 7);
    a.sample([(&s, None)], 1_000);
    a.node_down(
        s.clone(),
        &DownReason::ConnectionClosed,
        &["web".into()],
        2_000,
    );
    let d: Vec<&DownNode> = a.down_nodes().collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason_code, "connection_closed");
    assert_eq!(d[0].history.len(), 1);
    assert!(a.history_since(s.id, 0).is_empty(), "no longer sampled");
    let e = a.events_after(0);
    let down = e.last().unwrap();
    assert_eq!(down.kind, EventKind::NodeDown);
    assert_eq!(
        down.text,
        "w1 is down: connection closed; restarting the root of web elsewhere"
    );
    // Still shown just before the window ends, gone after.
    a.sample(std::iter::empty(), 2_000 + DOWN_VISIBLE_MS - 1);
    assert_eq!(a.down_nodes().count(), 1);
    a.sample(std::iter::empty(), 2_000 + DOWN_VISIBLE_MS);
    assert_eq!(a.down_nodes().count(), 0);
    // Back as a new incarnation: the grey card goes at once.
    a.node_down(s, &DownReason::Timeout, &[], 3_000_000);
    a.node_up(&info(2, "w1"), 3_000_100);
    assert_eq!(a.down_nodes().count(), 0);
}

/// A burst of placements is one event, with the spread per node.
#[test]
fn placements_are_summarised_per_window() {
    let mut a = Activity::default();
    let nodes = ["w1", "w2", "w1", "w3", "w1"];
    a.placed("least-loaded", nodes, 10_000);
    a.placed("least-loaded", ["w2"], 10_500);
    assert!(a.events_after(0).is_empty(), "the window is still open");
    a.sample(std::iter::empty(), 11_000);
    let e = a.events_after(0);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, EventKind::Placement);
    assert_eq!(e[0].t_ms, 10_000);
    assert_eq!(
        e[0].text,
        "placed 6 spawns (least-loaded): w1 3 · w2 2 · w3 1"
    );
    assert_eq!(a.placements_last_minute(11_000), 6);
    assert_eq!(a.placements_last_minute(71_000), 0);
    // Another event closes the window first, so the feed stays in order.
    a.placed("keyed", ["w3"], 20_000);
    a.app_started("web", 2, "w3", 20_100);
    let e = a.events_after(1);
    assert_eq!(e[0].text, "placed 1 spawn on w3 (keyed)");
    assert_eq!(e[1].text, "tree web root started on w3 (generation 2)");
}

/// Restarts are events and are counted over the last minute; the event log
/// keeps the newest [`MAX_EVENTS`].
#[test]
fn restarts_are_counted_and_the_log_is_bounded() {
    let mut a = Activity::default();
    for i in 0..(MAX_EVENTS as u64 + 20) {
        a.child_restarted("web", "web", "c", Some("w2"), "killed", 1_000 + i);
    }
    assert_eq!(a.restarts_last_minute(2_000), MAX_EVENTS as u64 + 20);
    assert_eq!(a.restarts_last_minute(1_000 + MINUTE_MS + 1_000), 0);
    let e = a.events_after(0);
    assert_eq!(e.len(), MAX_EVENTS);
    assert_eq!(e.last().unwrap().seq, a.last_seq());
    assert_eq!(e[0].seq, 21);
    assert_eq!(e[0].text, "web/c restarted on w2 (was: killed)");
    a.child_restarted("web", "web/sinks", "s1", None, "noconnection", 5_000);
    assert_eq!(
        a.events_after(a.last_seq() - 1)[0].text,
        "web/sinks/s1 could not be restarted (was: noconnection)"
    );
}

/// A node-down and an app failure stay in the feed after 1,000 placement
/// summaries (and as many restarts): each class of events has its own
/// bounded buffer.
#[test]
fn alerts_survive_a_storm_of_placements_and_restarts() {
    let mut a = Activity::default();
    a.node_up(&info(2, "w2"), 0);
    a.node_down(status(2, "w2", 0.0, 0), &DownReason::Timeout, &[], 1_000);
    a.app_failed("web", "root gave up", 1_500);
    for i in 0..1_000u64 {
        // One window a second: each call closes the previous summary.
        a.placed("least-loaded", ["w1"], 2_000 + i * PLACEMENT_WINDOW_MS);
        a.child_restarted(
            "ingest",
            "ingest",
            "c",
            Some("w1"),
            "killed",
            2_000 + i * PLACEMENT_WINDOW_MS,
        );
    }
    let all = a.events_after(0);
    let kinds = |k: EventKind| all.iter().filter(|e| e.kind == k).count();
    assert_eq!(kinds(EventKind::NodeDown), 1, "the node-down is kept");
    assert_eq!(kinds(EventKind::AppFailed), 1, "the app failure is kept");
    assert_eq!(kinds(EventKind::Placement), MAX_PLACEMENT_EVENTS);
    assert_eq!(
        kinds(EventKind::ChildRestarted),
        MAX_EVENTS,
        "the newest restarts"
    );
    assert_eq!(kinds(EventKind::NodeUp), 0, "pushed out by the restarts");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    assert!(
        all.iter()
            .any(|e| e.text == "w2 is down: timed out" || e.text.starts_with("w2 is down"))
    );
    // Asked by kind: only those.
    let alerts = a.events_of(0, &[EventKind::NodeDown, EventKind::AppFailed]);
    assert_eq!(
        alerts.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::NodeDown, EventKind::AppFailed]
    );
    // Newer than the last one seen: nothing old comes back.
    assert!(a.events_of(a.last_seq(), &EventKind::ALL).is_empty());
}

/// Every kind's wire name parses back to it, and nothing else does.
#[test]
fn event_kind_names_round_trip() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse(k.as_str()), Some(k));
        assert_eq!(
            serde_json::to_value(k).unwrap(),
            serde_json::Value::String(k.as_str().to_owned())
        );
    }
    assert_eq!(EventKind::parse("nope"), None);
}
