//! Unit tests of the copy: it places as the master does, follows numbered
//! updates (a gap is reported, an old update skipped), and counts its own
//! placements until the master's rows do — never twice.

use std::time::Instant;

use pool_proto::{
    LoadReport, LoadTableCopy, LoadUpdate, NodeId, NodeInfo, NodeKind, PlaceQuery,
    PlacementStrategy,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

/// The master's table: workers `w1..=wn` of capacity 1, `w<n>` with a run
/// queue of `queues[n-1]`.
fn master(queues: &[u32], now: Instant) -> LoadTable {
    let mut t = LoadTable::default();
    for (i, &run_queue) in queues.iter().enumerate() {
        let n = i as u64 + 1;
        let info = NodeInfo {
            id: id(n),
            name: format!("w{n}"),
            addr: format!("127.0.0.1:{}", 7500 + n),
            kind: NodeKind::Worker,
            capacity: 1,
            labels: Default::default(),
        };
        t.add_node(info, now);
        t.set_functions(id(n), ["f".to_owned()]);
        let report = LoadReport {
            seq: 1,
            run_queue,
            processes: u64::from(run_queue),
            capacity: 1,
            ..Default::default()
        };
        t.on_report(id(n), report, now);
    }
    t
}

/// What `WatchLoads` answers for `table`.
fn snapshot(table: &LoadTable, next: u64, notices: u64) -> LoadTableCopy {
    LoadTableCopy {
        next,
        notices,
        strategy: PlacementStrategy::LeastLoaded,
        mem_refuse_above: table.config().mem_refuse_above,
        nodes: table.node_rows(),
    }
}

/// A `LoadUpdate` numbered `seq`, acknowledging `notices` notices, with
/// `table`'s rows of the nodes `nodes`.
fn rows_update(
    table: &LoadTable,
    seq: u64,
    notices: u64,
    nodes: std::ops::RangeInclusive<u64>,
) -> LoadUpdate {
    LoadUpdate {
        seq,
        notices,
        loads: nodes.map(|n| table.load_row(id(n)).unwrap()).collect(),
        ..Default::default()
    }
}

fn one() -> PlaceQuery {
    PlaceQuery {
        count: 1,
        commit: true,
        function: Some("f".into()),
        ..Default::default()
    }
}

/// A burst placed one spawn at a time on a copy chooses the very nodes,
/// in the very order, that the master's table chooses for the same burst:
/// same water-filling, same tie rotation, same function filter.
#[test]
fn a_burst_on_the_copy_matches_the_master_choice_for_choice() {
    let now = Instant::now();
    let mut table = master(&[3, 0, 1, 0, 2, 0, 0, 5], now);
    let mut copy = LoadCopy::new(snapshot(&table, 1, 0), now);
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..40 {
        let ours = copy.place(&one(), &mut rng).unwrap();
        let theirs = table
            .place(&one(), PlacementStrategy::LeastLoaded, &mut rng)
            .unwrap();
        assert_eq!(ours, theirs, "placement {i}");
    }
    // And their scores agree at the end.
    for n in 1..=8 {
        assert_eq!(copy.table().score(id(n)), table.score(id(n)), "w{n}");
    }
}

/// Two-choices and keyed placement on the copy also match the master's,
/// given the same random numbers.
#[test]
fn two_choices_and_keyed_match_the_master() {
    let now = Instant::now();
    let mut table = master(&[2, 0, 1, 0, 4], now);
    let mut snap = snapshot(&table, 1, 0);
    snap.strategy = PlacementStrategy::TwoChoices;
    let mut copy = LoadCopy::new(snap, now);
    let (mut a, mut b) = (StdRng::seed_from_u64(3), StdRng::seed_from_u64(3));
    for i in 0..30 {
        let mut q = one();
        if i % 3 == 0 {
            q.key = Some(format!("user-{i}"));
        }
        assert!(copy.answers(&q));
        let ours = copy.place(&q, &mut a).unwrap();
        let theirs = table
            .place(&q, PlacementStrategy::TwoChoices, &mut b)
            .unwrap();
        assert_eq!(ours, theirs, "placement {i}");
    }
}

/// What the copy cannot answer exactly goes to the master: a named node,
/// round-robin (the master's rotation), another strategy than the
/// master's, a wasm function, a query that does not commit.
#[test]
fn the_copy_declines_what_only_the_master_answers() {
    let now = Instant::now();
    let table = master(&[0, 0], now);
    let copy = LoadCopy::new(snapshot(&table, 1, 0), now);
    assert!(copy.answers(&one()));
    let named = PlaceQuery {
        node: Some("w1".into()),
        ..one()
    };
    let other = PlaceQuery {
        strategy: Some(PlacementStrategy::Random),
        ..one()
    };
    let wasm = PlaceQuery {
        function: Some("app.wasm:run".into()),
        ..one()
    };
    let dry = PlaceQuery {
        commit: false,
        ..one()
    };
    for q in [named, other, wasm, dry] {
        assert!(!copy.answers(&q), "{q:?}");
    }
    let mut snap = snapshot(&table, 1, 0);
    snap.strategy = PlacementStrategy::RoundRobin;
    assert!(!LoadCopy::new(snap, now).answers(&one()));
}

/// Updates apply in turn; an old one is skipped, a missing one is a gap
/// (the copy is left as it was); a node gone is never chosen again; a
/// resync after the gap takes the master's table whole.
#[test]
fn updates_apply_in_turn_and_a_gap_is_reported() {
    let now = Instant::now();
    let mut table = master(&[0, 0, 0], now);
    let mut copy = LoadCopy::new(snapshot(&table, 5, 0), now);
    assert_eq!(copy.next(), 5);

    // w1 reports a long run queue; w3 is gone.
    table.on_report(
        id(1),
        LoadReport {
            seq: 2,
            run_queue: 9,
            capacity: 1,
            ..Default::default()
        },
        now,
    );
    let update = LoadUpdate {
        seq: 5,
        notices: 0,
        loads: vec![table.load_row(id(1)).unwrap()],
        gone: vec![id(3)],
        ..Default::default()
    };
    assert_eq!(copy.apply(update.clone(), now), Applied::Applied);
    assert_eq!(copy.table().score(id(1)), Some(9.0));
    assert!(copy.table().info(id(3)).is_none());
    assert_eq!(copy.apply(update, now), Applied::Skipped);
    for _ in 0..5 {
        assert_eq!(copy.place(&one(), &mut rand::rng()).unwrap(), vec![id(2)]);
    }

    let late = LoadUpdate {
        seq: 7,
        ..Default::default()
    };
    assert_eq!(
        copy.apply(late, now),
        Applied::Gap {
            expected: 6,
            got: 7
        }
    );
    assert_eq!(copy.next(), 6);

    // The table again: w3 is back, and the five placements on w2 not
    // told to the master yet still count on top of its rows.
    let fresh = master(&[9, 0, 0], now);
    copy.resync(snapshot(&fresh, 8, 0), now);
    assert_eq!(copy.next(), 8);
    assert_eq!(copy.table().pending(id(2)), Some(5));
    assert_eq!(copy.table().pending(id(3)), Some(0));
}

/// The copy's own placements count on top of the master's rows until an
/// update acknowledges their notice, then the rows alone count them: a
/// placement is never forgotten in between, nor counted twice after.
#[test]
fn own_placements_count_until_acknowledged_and_never_twice() {
    let now = Instant::now();
    let mut table = master(&[0, 0], now);
    let mut copy = LoadCopy::new(snapshot(&table, 1, 0), now);
    let mut rng = rand::rng();
    for _ in 0..4 {
        copy.place(&one(), &mut rng).unwrap();
    }
    assert_eq!(copy.table().pending(id(1)), Some(2));
    let notice = copy.take_notice().unwrap();
    assert_eq!(notice.seq, 1);
    assert_eq!(notice.placed, vec![(id(1), 2), (id(2), 2)]);
    assert!(copy.take_notice().is_none());

    // Two more, not told yet.
    copy.place(&one(), &mut rng).unwrap();
    copy.place(&one(), &mut rng).unwrap();
    assert!(copy.has_unsent());

    // An update made before the master applied the notice: its rows do
    // not count them, the copy still does.
    let update = rows_update(&table, 1, 0, 1..=2);
    assert_eq!(copy.apply(update, now), Applied::Applied);
    assert_eq!(copy.table().pending(id(1)), Some(3));
    assert_eq!(copy.table().pending(id(2)), Some(3));

    // The master applies the notice; its next update says so, and its rows
    // count the first four: the copy adds only the two not told.
    for (node, n) in &notice.placed {
        table.record_placements(*node, *n);
    }
    let update = rows_update(&table, 2, 1, 1..=2);
    assert_eq!(copy.apply(update, now), Applied::Applied);
    assert_eq!(copy.table().pending(id(1)), Some(3));
    assert_eq!(copy.table().pending(id(2)), Some(3));
    let second = copy.take_notice().unwrap();
    assert_eq!(second.seq, 2);
    assert_eq!(second.placed, vec![(id(1), 1), (id(2), 1)]);
}

/// Two clients bursting at the same moment on identical copies, before
/// either hears of the other: each water-fills its copy evenly, so the
/// sum over both is the ideal on every node (a burst of a multiple of the
/// node count each); and once the master relays the notices, a third
/// burst on either copy sees both.
#[test]
fn two_copies_bursting_at_once_sum_to_the_ideal() {
    let now = Instant::now();
    let mut table = master(&[0; 8], now);
    let mut a = LoadCopy::new(snapshot(&table, 1, 0), now);
    let mut b = LoadCopy::new(snapshot(&table, 1, 0), now);
    let mut per_node = std::collections::BTreeMap::<NodeId, u32>::new();
    let mut rng = rand::rng();
    for _ in 0..16 {
        for copy in [&mut a, &mut b] {
            for n in copy.place(&one(), &mut rng).unwrap() {
                *per_node.entry(n).or_default() += 1;
            }
        }
    }
    assert_eq!(per_node.len(), 8);
    assert!(per_node.values().all(|&n| n == 4), "{per_node:?}");

    // The master applies both notices and sends its rows to both (with
    // each copy's own notice count).
    let na = a.take_notice().unwrap();
    let nb = b.take_notice().unwrap();
    for (node, n) in na.placed.iter().chain(&nb.placed) {
        table.record_placements(*node, *n);
    }
    for copy in [&mut a, &mut b] {
        assert_eq!(
            copy.apply(rows_update(&table, 1, 1, 1..=8), now),
            Applied::Applied
        );
        for n in 1..=8 {
            assert_eq!(copy.table().pending(id(n)), Some(4));
        }
    }
}
