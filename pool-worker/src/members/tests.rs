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

/// The name index follows the live set: a newer incarnation takes the
/// name, the old one's `Down` leaves it with the newer one, a renamed node
/// is found under its new name only, and a name whose node went down is
/// free.
#[test]
fn names_follow_incarnations_renames_and_downs() {
    let mut m = Members::default();
    let old = info("w1");
    let new = info("w1");
    m.up(old.clone());
    assert_eq!(m.up(new.clone()), vec![old.id]);
    m.down(old.id);
    assert_eq!(m.by_name("w1").map(|n| n.id), Some(new.id));
    let renamed = NodeInfo {
        name: "w2".into(),
        ..new.clone()
    };
    assert!(m.up(renamed).is_empty());
    assert!(m.by_name("w1").is_none());
    assert_eq!(m.by_name("w2").map(|n| n.id), Some(new.id));
    // A newcomer named w1 supersedes nobody: the name was free.
    assert!(m.up(info("w1")).is_empty());
    m.down(new.id);
    assert!(m.by_name("w2").is_none());
    assert!(m.by_name("w1").is_some());
}

fn up(i: &NodeInfo) -> MemberChange {
    MemberChange::Up(i.clone())
}

fn gone(i: &NodeInfo) -> MemberChange {
    MemberChange::Down {
        node: i.id,
        reason: DownReason::Timeout,
    }
}

/// Deltas that follow on from the Welcome are applied in order; one this
/// node already has is skipped, and one that overlaps is applied from its
/// first new change. News about this node itself is ignored.
#[test]
fn deltas_in_sequence_apply_and_repeats_are_skipped() {
    let me = info("me");
    let (w1, w2, w3) = (info("w1"), info("w2"), info("w3"));
    let mut m = Members::default();
    let c = m.welcome(&[me.clone(), w1.clone()], 10, me.id);
    assert_eq!(c.up, vec![w1.id]);
    assert_eq!(m.get(me.id), None);

    let Delta::Applied(c) = m.delta(10, vec![up(&w2), up(&me)], me.id) else {
        panic!("in sequence")
    };
    assert_eq!(c.up, vec![w2.id]);
    assert_eq!(m.delta(10, vec![up(&w2), up(&me)], me.id), Delta::Skipped);
    // 11 is already here, 12 is new.
    let Delta::Applied(c) = m.delta(11, vec![up(&me), gone(&w1)], me.id) else {
        panic!("overlapping")
    };
    assert!(c.up.is_empty());
    assert_eq!(
        c.down,
        vec![(w1.id, Some(w1.clone()), Some(DownReason::Timeout))]
    );
    assert_eq!(m.reach(w1.id), Reach::Down);
    let Delta::Applied(c) = m.delta(13, vec![up(&w3)], me.id) else {
        panic!("in sequence")
    };
    assert_eq!(c.up, vec![w3.id]);
}

/// A delta that skips changes is a gap: later deltas are dropped until the
/// list comes again; the list declares down the nodes this master session
/// announced and no longer lists (their Down was missed) but not those
/// learnt from an earlier master session; deltas then follow on from the
/// list's number.
#[test]
fn a_gap_waits_for_the_list_which_settles_what_was_missed() {
    let me = info("me");
    let (old, w1, w2, w3) = (info("old"), info("w1"), info("w2"), info("w3"));
    let mut m = Members::default();
    // A node from before a master restart, then the new master's session.
    m.welcome(std::slice::from_ref(&old), 0, me.id);
    m.welcome(&[w1.clone(), w2.clone()], 5, me.id);
    assert_eq!(
        m.delta(7, vec![up(&w3)], me.id),
        Delta::Gap {
            expected: 5,
            got: 7
        }
    );
    assert_eq!(m.get(w3.id), None);
    assert_eq!(m.delta(8, vec![gone(&w2)], me.id), Delta::Skipped);
    assert!(m.get(w2.id).is_some());

    // The list: w2 went down meanwhile (change 5 or 6), w3 came up.
    let c = m.list(&[w1.clone(), w3.clone(), me.clone()], 9, me.id);
    assert_eq!(c.down, vec![(w2.id, Some(w2.clone()), None)]);
    assert_eq!(c.up, vec![w1.id, w3.id]);
    assert_eq!(m.reach(w2.id), Reach::Down);
    assert_eq!(
        m.reach(old.id),
        Reach::Up,
        "an earlier session's node stays"
    );
    assert_eq!(m.reach(w3.id), Reach::Up);
    assert_eq!(m.delta(8, vec![gone(&w3)], me.id), Delta::Skipped);
    let Delta::Applied(c) = m.delta(9, vec![gone(&w3)], me.id) else {
        panic!("follows the list")
    };
    assert_eq!(c.down.len(), 1);
    assert_eq!(m.reach(w3.id), Reach::Down);
}

/// A delta keeps the order of its changes: a node declared down and back
/// with the same id (after fencing) is live; a newer incarnation of a name
/// supersedes the older one as a NodeUp does.
#[test]
fn a_delta_applies_its_changes_in_order() {
    let me = info("me");
    let w1 = info("w1");
    let mut w1_new = info("w1");
    w1_new.addr = "w1:7001".into();
    let mut m = Members::default();
    m.welcome(std::slice::from_ref(&w1), 0, me.id);
    let Delta::Applied(c) = m.delta(0, vec![gone(&w1), up(&w1)], me.id) else {
        panic!("in sequence")
    };
    assert_eq!(c.down.len(), 1);
    assert_eq!(c.up, vec![w1.id]);
    assert_eq!(m.reach(w1.id), Reach::Up);
    let Delta::Applied(c) = m.delta(2, vec![up(&w1_new)], me.id) else {
        panic!("in sequence")
    };
    assert_eq!(c.superseded, vec![w1.id]);
    assert_eq!(m.reach(w1.id), Reach::Unknown);
    assert_eq!(m.by_name("w1").map(|i| i.id), Some(w1_new.id));
}
