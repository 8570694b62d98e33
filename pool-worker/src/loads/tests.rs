//! Unit tests of the node's copy holder: it places only while the copy is
//! live, stops at a gap until the table comes again, and forgets the copy
//! with the connection.

use std::time::Instant;

use pool_place::LoadTable;
use pool_proto::{
    LoadTableCopy, LoadUpdate, NodeId, NodeInfo, NodeKind, PlaceQuery, PlacementStrategy,
};

use super::*;

fn table() -> LoadTableCopy {
    let mut t = LoadTable::default();
    for n in 1..=2 {
        let info = NodeInfo {
            id: NodeId::from_u64(n),
            name: format!("w{n}"),
            addr: format!("127.0.0.1:{}", 7500 + n),
            kind: NodeKind::Worker,
            capacity: 1,
            labels: Default::default(),
        };
        t.add_node(info, Instant::now());
    }
    LoadTableCopy {
        next: 3,
        notices: 0,
        strategy: PlacementStrategy::LeastLoaded,
        mem_refuse_above: None,
        nodes: t.node_rows(),
    }
}

fn spawn() -> PlaceQuery {
    PlaceQuery {
        count: 1,
        commit: true,
        ..Default::default()
    }
}

/// Without a copy nothing is placed here; with one, placements alternate
/// over the idle nodes and wait to be told; a gap stops placing here (and
/// asks for the table once) until the table arrives again; a lost
/// connection forgets the copy and the placements not told.
#[test]
fn places_only_while_the_copy_is_live() {
    let loads = Loads::default();
    assert!(loads.wants_copy());
    assert!(loads.place(&spawn()).is_none());

    loads.install(table());
    assert!(!loads.wants_copy());
    let a = loads.place(&spawn()).unwrap();
    let b = loads.place(&spawn()).unwrap();
    assert_ne!(a[0].id, b[0].id);
    assert_eq!(a[0].name, "w1");
    let notice = loads.take_notice().unwrap();
    assert_eq!(notice.placed.len(), 2);
    assert!(loads.take_notice().is_none());

    let gap = LoadUpdate {
        seq: 5,
        ..Default::default()
    };
    assert_eq!(
        loads.update(gap.clone()),
        AfterUpdate::Resync {
            expected: 3,
            got: 5
        }
    );
    assert_eq!(loads.update(gap), AfterUpdate::Nothing, "asked once");
    assert!(loads.place(&spawn()).is_none(), "a stale copy is not used");
    loads.install(table());
    assert!(loads.place(&spawn()).is_some());

    loads.clear();
    assert!(loads.wants_copy());
    assert!(loads.take_notice().is_none());
    assert!(loads.place(&spawn()).is_none());

    loads.refused();
    assert!(
        !loads.wants_copy(),
        "a master that refused is not asked again"
    );
}
