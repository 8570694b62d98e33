//! Membership as numbered deltas: a worker applies the master's deltas in
//! sequence, and one that misses a delta asks for the whole list again.

mod support;

use pool_proto::{DownReason, MemberChange, MembersDelta, Msg, NodeId, NodeInfo, NodeKind};
use support::{Cluster, Seen, wait_until};

/// A node of the pool that only the deltas tell of.
fn ghost(name: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId::random(),
        name: name.to_owned(),
        addr: format!("{name}:7000"),
        kind: NodeKind::Worker,
        capacity: 1,
        labels: Default::default(),
    }
}

fn delta(first: u64, changes: Vec<MemberChange>) -> Msg {
    Msg::MembersDelta(MembersDelta { first, changes })
}

/// A worker that misses a delta (it gets change 12 after 10) asks the
/// master for the list again (`SyncMembers`), drops the deltas that come
/// meanwhile, and takes the list: a node announced earlier in this
/// session that the list leaves out is gone (its `Down` was in the missed
/// delta), the others stay; deltas then follow on from the list's number,
/// and an old one is skipped.
#[tokio::test(start_paused = true)]
async fn a_worker_missing_a_delta_resyncs_from_the_list() {
    let c = Cluster::new();
    c.master.set_members_next(10);
    let w1 = c.worker("w1").await;
    let w2 = c.worker("w2").await;
    let pool = w1.pool();
    wait_until("w1 knows w2", || pool.node_name_of(w2.id()).is_some()).await;

    // Change 10: a node comes up.
    let a = ghost("a");
    c.master
        .push("w1", delta(10, vec![MemberChange::Up(a.clone())]));
    wait_until("w1 knows a", || pool.node_name_of(a.id).is_some()).await;

    // Change 11 (a goes down) never arrives; 12 and 13 do.
    let (b, d) = (ghost("b"), ghost("d"));
    c.master.set_members_next(13);
    c.master
        .push("w1", delta(12, vec![MemberChange::Up(b.clone())]));
    c.master
        .push("w1", delta(13, vec![MemberChange::Up(d.clone())]));
    let synced = |c: &Cluster| {
        c.master
            .seen()
            .iter()
            .filter(|s| matches!(s, Seen::MembersSynced { name } if name == "w1"))
            .count()
    };
    wait_until("w1 asks for the list", || synced(&c) == 1).await;
    // The list (w1 and w2, next 13) settles it: a is gone, w2 stays, and
    // the deltas that came before the list were dropped.
    wait_until("a is gone", || pool.node_name_of(a.id).is_none()).await;
    assert_eq!(pool.node_name_of(w2.id()).as_deref(), Some("w2"));
    assert_eq!(pool.node_name_of(b.id), None);
    assert_eq!(pool.node_name_of(d.id), None);

    // An old delta is skipped; the next one in sequence applies.
    c.master.push(
        "w1",
        delta(
            12,
            vec![MemberChange::Down {
                node: w2.id(),
                reason: DownReason::Timeout,
            }],
        ),
    );
    c.master
        .push("w1", delta(13, vec![MemberChange::Up(d.clone())]));
    wait_until("w1 knows d", || pool.node_name_of(d.id).is_some()).await;
    assert_eq!(pool.node_name_of(w2.id()).as_deref(), Some("w2"));
    assert_eq!(synced(&c), 1, "asked for the list once");
}
