//! Unit tests of the load watch: rows are marked only while someone
//! watches, updates are numbered from the copy's `next`, and each watcher
//! gets its own notices count.

use std::time::Instant;

use pool_proto::{LoadReport, NodeId, NodeInfo, NodeKind, PlacementStrategy};

use super::*;

fn table(n: u64) -> LoadTable {
    let now = Instant::now();
    let mut t = LoadTable::default();
    for i in 1..=n {
        let info = NodeInfo {
            id: NodeId::from_u64(i),
            name: format!("w{i}"),
            addr: String::new(),
            kind: NodeKind::Worker,
            capacity: 1,
            labels: Default::default(),
        };
        t.add_node(info, now);
    }
    t
}

/// Nothing is marked, and no update is due, while nobody watches: a pool
/// whose nodes never place pays nothing.
#[test]
fn nothing_is_due_without_watchers() {
    let t = table(2);
    let mut w = LoadWatch::default();
    w.load_changed(NodeId::from_u64(1));
    w.node_changed(NodeId::from_u64(2));
    assert!(!w.due());
    let copy = w.watch(SessionId(1), &t, PlacementStrategy::LeastLoaded);
    assert_eq!(copy.nodes.len(), 2);
    // The marks made before the watch are not carried.
    assert!(w.take_update(&t).is_none());
}

/// Updates are numbered from the `next` of the copy; a node sent whole
/// has no load row too; a node gone is listed; each watcher gets its own
/// notices count; after the last watcher leaves nothing is due.
#[test]
fn updates_are_numbered_and_carry_each_watchers_notices() {
    let now = Instant::now();
    let mut t = table(3);
    let mut w = LoadWatch::default();
    let a = w.watch(SessionId(1), &t, PlacementStrategy::LeastLoaded);
    let b = w.watch(SessionId(2), &t, PlacementStrategy::LeastLoaded);
    assert_eq!((a.next, b.next), (0, 0));

    t.on_report(
        NodeId::from_u64(1),
        LoadReport {
            seq: 1,
            run_queue: 2,
            capacity: 1,
            ..Default::default()
        },
        now,
    );
    w.load_changed(NodeId::from_u64(1));
    w.load_changed(NodeId::from_u64(2));
    w.node_changed(NodeId::from_u64(2));
    t.remove_node(NodeId::from_u64(3));
    w.gone(NodeId::from_u64(3));
    t.record_placements(NodeId::from_u64(1), 3);
    assert!(w.noticed(SessionId(2), 1));
    assert!(!w.noticed(SessionId(9), 1));

    let (update, to) = w.take_update(&t).unwrap();
    assert_eq!(update.seq, 0);
    assert_eq!(update.loads.len(), 1);
    assert_eq!(update.loads[0].pending, 3);
    assert_eq!(update.loads[0].base_load, 2.0);
    assert_eq!(update.nodes.len(), 1);
    assert_eq!(update.gone, vec![NodeId::from_u64(3)]);
    let mut to = to;
    to.sort();
    assert_eq!(to, vec![(SessionId(1), 0), (SessionId(2), 1)]);
    assert!(w.take_update(&t).is_none());

    // A notice alone (its nodes gone) still makes an update: the watcher
    // learns it was applied.
    assert!(w.noticed(SessionId(1), 4));
    let (update, _) = w.take_update(&t).unwrap();
    assert_eq!(update.seq, 1);
    // A copy asked for again goes on from there.
    assert_eq!(
        w.watch(SessionId(1), &t, PlacementStrategy::LeastLoaded)
            .next,
        2
    );
    assert_eq!(
        w.watch(SessionId(1), &t, PlacementStrategy::LeastLoaded)
            .notices,
        4
    );

    w.unwatch(SessionId(1));
    w.unwatch(SessionId(2));
    w.load_changed(NodeId::from_u64(1));
    assert!(!w.due());
    assert_eq!(w.watchers(), 0);
}
