//! Unit tests of the failure detector, with time as an input.

use std::time::{Duration, Instant};

use pool_proto::{DownReason, NodeId};

use super::*;

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A silent node is declared down at exactly its deadline, once, with
/// reason Timeout.
#[test]
fn silent_node_times_out_once() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::default();
    assert_eq!(fd.node_timeout(), Duration::from_secs(3));
    assert!(fd.register(id(1), t0));
    assert_eq!(fd.next_deadline(), Some(t0 + ms(3000)));
    assert!(fd.tick(t0 + ms(2999)).is_empty());
    assert_eq!(
        fd.tick(t0 + ms(3000)),
        vec![DownEvent {
            node: id(1),
            reason: DownReason::Timeout
        }]
    );
    assert!(fd.tick(t0 + ms(10_000)).is_empty());
    assert!(!fd.contains(id(1)));
    assert_eq!(fd.next_deadline(), None);
    assert!(
        !fd.on_report(id(1), t0 + ms(10_001)),
        "a down node stays down"
    );
}

/// Each report pushes the deadline back.
#[test]
fn reports_postpone_the_deadline() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    fd.register(id(1), t0);
    for k in 1..=20 {
        let now = t0 + ms(500 * k);
        assert!(fd.tick(now).is_empty());
        assert!(fd.on_report(id(1), now));
    }
    assert_eq!(fd.last_heard(id(1)), Some(t0 + ms(10_000)));
    assert_eq!(fd.next_deadline(), Some(t0 + ms(11_000)));
}

/// A closed connection is down at once, reason ConnectionClosed, and is not
/// reported again by a later tick or disconnect.
#[test]
fn disconnect_is_down_at_once() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::default();
    fd.register(id(1), t0);
    fd.register(id(2), t0);
    assert_eq!(
        fd.on_disconnect(id(1)),
        Some(DownEvent {
            node: id(1),
            reason: DownReason::ConnectionClosed
        })
    );
    assert_eq!(fd.on_disconnect(id(1)), None);
    let later = fd.tick(t0 + ms(5000));
    assert_eq!(
        later.iter().map(|e| e.node).collect::<Vec<_>>(),
        vec![id(2)]
    );
    assert!(fd.is_empty());
}

/// The next deadline is the earliest of all nodes'; a tick reports every
/// expired node, oldest silence first, and leaves the others.
#[test]
fn next_deadline_is_the_earliest_and_tick_takes_all_expired() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    assert_eq!(fd.next_deadline(), None);
    fd.register(id(3), t0 + ms(200));
    fd.register(id(1), t0);
    fd.register(id(2), t0 + ms(100));
    fd.register(id(4), t0 + ms(900));
    assert_eq!(fd.len(), 4);
    assert_eq!(fd.next_deadline(), Some(t0 + ms(1000)));
    fd.on_report(id(1), t0 + ms(300));
    assert_eq!(fd.next_deadline(), Some(t0 + ms(1100)));
    let down: Vec<_> = fd.tick(t0 + ms(1300)).into_iter().map(|e| e.node).collect();
    assert_eq!(down, vec![id(2), id(3), id(1)]);
    assert_eq!(fd.next_deadline(), Some(t0 + ms(1900)));
}

/// Reports for unknown nodes are refused; an older timestamp does not move
/// a node's last-heard time back; re-registering counts as hearing from it.
#[test]
fn unknown_nodes_and_time_going_back() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    assert!(!fd.on_report(id(1), t0));
    assert_eq!(fd.on_disconnect(id(1)), None);
    fd.register(id(1), t0 + ms(500));
    fd.on_report(id(1), t0 + ms(100));
    assert_eq!(fd.last_heard(id(1)), Some(t0 + ms(500)));
    assert!(!fd.register(id(1), t0 + ms(800)));
    assert_eq!(fd.next_deadline(), Some(t0 + ms(1800)));
}

/// A node that leaves gracefully is forgotten without a down event.
#[test]
fn forget_emits_nothing() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    fd.register(id(1), t0);
    assert!(fd.forget(id(1)));
    assert!(!fd.forget(id(1)));
    assert!(fd.tick(t0 + ms(5000)).is_empty());
}

/// Many nodes: the deadline index stays consistent with last-heard times
/// through reports, disconnects and ticks.
#[test]
fn index_stays_consistent_under_churn() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(3000));
    for n in 0..1000 {
        fd.register(id(n), t0 + ms(n));
    }
    for n in (0..1000).step_by(2) {
        fd.on_report(id(n), t0 + ms(2000 + n));
    }
    for n in (1..1000).step_by(10) {
        fd.on_disconnect(id(n));
    }
    let down = fd.tick(t0 + ms(4000));
    // Odd nodes not disconnected, heard at t0 + n < 1000 ms.
    assert_eq!(down.len(), 400);
    assert!(
        down.iter()
            .all(|e| e.node.as_u64() % 2 == 1 && e.node.as_u64() % 10 != 1)
    );
    assert_eq!(fd.len(), 500);
    assert_eq!(fd.next_deadline(), Some(t0 + ms(5000)));
}

// ----- the master's check: a paused master, a master in the minority -----

/// A gap between two checks longer than half the node timeout means the
/// master did not run: every node gets a fresh grace period (last heard
/// := now) and nobody is declared down, although every deadline passed;
/// a node that stays silent after it is declared down one timeout later.
#[test]
fn a_paused_master_gives_every_node_a_fresh_grace_period() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(2000));
    assert_eq!(fd.pause_threshold(), ms(1000));
    assert_eq!(fd.check_interval(), ms(500));
    for n in 1..=3 {
        fd.register(id(n), t0);
    }
    assert_eq!(fd.check(t0 + ms(500)), Verdict::Judged(vec![]));
    // SIGSTOP for 5 s: the next check comes 5 s after the last one.
    let resumed = t0 + ms(5500);
    assert_eq!(fd.check(resumed), Verdict::Paused { gap: ms(5000) });
    for n in 1..=3 {
        assert_eq!(fd.last_heard(id(n)), Some(resumed));
    }
    assert_eq!(fd.len(), 3);
    // Nodes 1 and 2 report after the pause; 3 stays silent and is judged
    // on a whole timeout the master was running for.
    let mut t = resumed;
    while t < resumed + ms(2000) {
        t += ms(400);
        fd.on_report(id(1), t);
        fd.on_report(id(2), t);
        if t < resumed + ms(2000) {
            assert_eq!(fd.check(t), Verdict::Judged(vec![]), "at {t:?}");
        }
    }
    assert_eq!(
        fd.check(t),
        Verdict::Judged(vec![DownEvent {
            node: id(3),
            reason: DownReason::Timeout
        }])
    );
}

/// A check that comes late by less than the threshold is no pause: a node
/// silent for the whole timeout is down.
#[test]
fn a_late_check_below_the_threshold_is_no_pause() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(2000));
    fd.register(id(1), t0);
    fd.register(id(2), t0);
    fd.check(t0 + ms(1500));
    fd.on_report(id(2), t0 + ms(1500));
    // 1000 ms later: exactly the threshold, not more.
    let down = fd.check(t0 + ms(2500));
    assert_eq!(
        down,
        Verdict::Judged(vec![DownEvent {
            node: id(1),
            reason: DownReason::Timeout
        }])
    );
}

/// A master that hears fewer than half of its live workers declares none
/// of the silent ones down; it judges them again once it hears a
/// majority. Exactly half heard is no minority.
#[test]
fn a_master_in_the_minority_declares_nobody_down() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    for n in 1..=4 {
        fd.register(id(n), t0);
    }
    // Only node 1 is heard: 1 of 4.
    let mut t = t0;
    for _ in 0..8 {
        t += ms(200);
        fd.on_report(id(1), t);
        let v = fd.check(t);
        if t >= t0 + ms(1000) {
            assert_eq!(
                v,
                Verdict::Minority {
                    heard: 1,
                    live: 4,
                    silent: 3
                }
            );
        }
    }
    assert_eq!(fd.len(), 4, "nobody was forgotten");
    // Node 2 comes back: 2 of 4 heard, half, no minority: 3 and 4 are down.
    t += ms(200);
    fd.on_report(id(1), t);
    fd.on_report(id(2), t);
    let Verdict::Judged(down) = fd.check(t) else {
        panic!("still a minority with half heard")
    };
    let mut nodes: Vec<NodeId> = down.iter().map(|d| d.node).collect();
    nodes.sort();
    assert_eq!(nodes, vec![id(3), id(4)]);
}

/// With a single worker there is no majority to measure: its silence is
/// judged as usual. A closed connection counts in the minority too.
#[test]
fn one_worker_is_judged_and_disconnects_always_count() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(1000));
    fd.register(id(1), t0);
    fd.check(t0 + ms(250));
    fd.check(t0 + ms(500));
    fd.check(t0 + ms(750));
    assert_eq!(
        fd.check(t0 + ms(1000)),
        Verdict::Judged(vec![DownEvent {
            node: id(1),
            reason: DownReason::Timeout
        }])
    );
    let mut fd = FailureDetector::new(ms(1000));
    for n in 1..=3 {
        fd.register(id(n), t0);
    }
    fd.check(t0 + ms(500));
    assert!(fd.on_disconnect(id(2)).is_some());
}

/// The shell checks at least every check interval, never at a deadline
/// already past (a minority keeps expired nodes watched), and not at all
/// with nothing watched; a long idle time with nothing watched is no
/// pause.
#[test]
fn next_check_is_regular_and_never_in_the_past() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(2000));
    assert_eq!(fd.next_check(t0), None);
    fd.register(id(1), t0);
    fd.register(id(2), t0);
    fd.register(id(3), t0);
    fd.check(t0);
    assert_eq!(fd.next_check(t0), Some(t0 + ms(500)));
    fd.on_report(id(1), t0 + ms(1900));
    for k in 1..=4 {
        fd.check(t0 + ms(500 * k));
    }
    let at = t0 + ms(2100);
    assert!(matches!(fd.check(at), Verdict::Minority { .. }));
    assert_eq!(fd.next_check(at), Some(at + ms(500)));

    let mut fd = FailureDetector::new(ms(2000));
    fd.check(t0);
    fd.register(id(1), t0 + ms(60_000));
    assert_eq!(fd.check(t0 + ms(60_000)), Verdict::Judged(vec![]));
}

/// A partition silences three of four workers at once, but their
/// deadlines expire a few ms apart: the first to expire must not be
/// judged against the others' reports from just before the cut. Nobody is
/// declared down, one check after another; a single worker that goes
/// silent while the others keep reporting is still declared down.
#[test]
fn a_partition_whose_deadlines_expire_one_by_one_is_a_minority() {
    let t0 = Instant::now();
    let mut fd = FailureDetector::new(ms(2000)).with_report_interval(ms(200));
    assert_eq!(fd.recent_window(), ms(1000));
    for n in 1..=4 {
        fd.register(id(n), t0);
    }
    // Everyone reports every 200 ms, nodes 2, 3, 4 a little apart, until
    // the cut at 1 s; only node 1 is heard after it.
    let mut t = t0;
    while t < t0 + ms(1000) {
        t += ms(200);
        fd.on_report(id(1), t);
        fd.on_report(id(2), t);
        fd.on_report(id(3), t + ms(30));
        fd.on_report(id(4), t + ms(60));
        assert_eq!(fd.check(t + ms(60)), Verdict::Judged(vec![]));
    }
    // Checks every 10 ms through the moments each deadline expires.
    let cut = t;
    let mut at = cut + ms(60);
    while at < cut + ms(3000) {
        at += ms(10);
        fd.on_report(id(1), at);
        let v = fd.check(at);
        let fine = match &v {
            Verdict::Minority { heard, live, .. } => (*heard, *live) == (1, 4),
            Verdict::Judged(down) => down.is_empty(),
            Verdict::Paused { .. } => false,
        };
        assert!(fine, "at {:?} after the cut: {v:?}", at - cut);
    }
    assert_eq!(fd.len(), 4, "nobody was declared down");

    // A healthy pool: node 4 alone goes silent, the rest keep reporting.
    let mut fd = FailureDetector::new(ms(2000)).with_report_interval(ms(200));
    for n in 1..=4 {
        fd.register(id(n), t0);
    }
    let mut t = t0;
    let mut down = Vec::new();
    while t < t0 + ms(3000) {
        t += ms(100);
        for n in 1..=3 {
            fd.on_report(id(n), t);
        }
        if let Verdict::Judged(d) = fd.check(t) {
            down.extend(d.into_iter().map(|d| d.node));
        }
    }
    assert_eq!(down, vec![id(4)]);
}

/// The recent window is half the node timeout, at least two report
/// intervals, at most the node timeout.
#[test]
fn the_recent_window_covers_two_reports() {
    let fd = FailureDetector::new(ms(3000));
    assert_eq!(fd.recent_window(), ms(1500));
    let fd = FailureDetector::new(ms(3000)).with_report_interval(ms(1000));
    assert_eq!(fd.recent_window(), ms(2000));
    let fd = FailureDetector::new(ms(3000)).with_report_interval(ms(2000));
    assert_eq!(fd.recent_window(), ms(3000));
}
