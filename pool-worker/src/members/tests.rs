use super::*;

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId::random(),
        name: name.to_owned(),
        addr: format!("{name}:7000"),
        kind: NodeKind::Worker,
        capacity: 1,
        labels: Default::default(),
    }
}

/// A node id this node has never heard of is `Down` (noconnection: its
/// processes may be alive on a node that has not rejoined yet), not
/// `Unknown`.
#[test]
fn an_id_never_seen_is_down() {
    let m = Members::default();
    assert_eq!(m.reach(NodeId::random()), Reach::Down);
}

/// A live node is `Up`; declared down, `Down`.
#[test]
fn live_is_up_and_declared_down_is_down() {
    let mut m = Members::default();
    let w1 = info("w1");
    let id = w1.id;
    m.up(w1);
    assert_eq!(m.reach(id), Reach::Up);
    m.down(id);
    assert_eq!(m.reach(id), Reach::Down);
}

/// An old incarnation of a node whose name is live now under a newer id
/// (and that was never declared down here, e.g. after a master restart)
/// is `Unknown`: its processes are gone for good (noproc).
#[test]
fn an_old_incarnation_of_a_live_name_is_unknown() {
    let mut m = Members::default();
    let old = info("w1");
    let old_id = old.id;
    m.up(old);
    // The membership forgets it without a NodeDown (a restarted master
    // never heard of it), and the name comes back under a new id.
    m.live.remove(&old_id);
    assert_eq!(m.reach(old_id), Reach::Down);
    m.up(info("w1"));
    assert_eq!(m.reach(old_id), Reach::Unknown);
}

/// A newer incarnation of a live name supersedes the old one: `up` hands
/// the old id back (its links must fire), which then reads as noproc.
#[test]
fn a_newer_incarnation_supersedes_the_old_one() {
    let mut m = Members::default();
    let old = info("w1");
    let old_id = old.id;
    assert!(m.up(old).is_empty());
    let new = info("w1");
    let new_id = new.id;
    assert_eq!(m.up(new), vec![old_id]);
    assert_eq!(m.reach(old_id), Reach::Unknown);
    assert_eq!(m.reach(new_id), Reach::Up);
    assert_eq!(m.ids(), vec![new_id]);
}
