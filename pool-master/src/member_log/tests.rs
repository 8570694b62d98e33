//! Unit tests of the member log: what a joining connection and a lagging
//! one are sent, decoded back, and how the changes are numbered.

use bytes::{Buf, BytesMut};
use pool_proto::codec::decode_exact;
use pool_proto::{
    DownReason, MAX_FRAME_LEN, MemberChange, MemberList, MembersDelta, Msg, NodeId, NodeInfo,
    NodeKind, Response, Welcome,
};

use super::*;

fn worker(v: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::from_u64(v),
        name: format!("w{v}"),
        addr: format!("127.0.0.1:{}", 7000 + v),
        kind: NodeKind::Worker,
        capacity: 1,
        labels: Default::default(),
    }
}

fn down(v: u64) -> MemberChange {
    MemberChange::Down {
        node: NodeId::from_u64(v),
        reason: DownReason::Timeout,
    }
}

/// The frames in `buf`, decoded.
fn frames(mut buf: BytesMut) -> Vec<Msg> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = buf.get_u32() as usize;
        out.push(decode_exact(&buf[..len]).unwrap());
        buf.advance(len);
    }
    assert!(buf.is_empty());
    out
}

fn sorted(mut v: Vec<NodeInfo>) -> Vec<NodeInfo> {
    v.sort_by_key(|i| i.id);
    v
}

/// A joiner's Welcome lists every live member and itself once (also when
/// it is live already), numbered; catching up from there sends the later
/// changes as one delta, in order, and nothing when there is none.
#[test]
fn a_welcome_then_deltas_of_what_came_after() {
    let mut log = MemberLog::default();
    for v in 1..=3 {
        log.record(&MemberChange::Up(worker(v)));
    }
    log.record(&down(2));
    let head = Welcome {
        members: vec![worker(3)],
        report_interval_ms: 500,
        node_timeout_ms: 3000,
        fence: None,
        members_next: 0,
    };
    let mut buf = BytesMut::new();
    assert_eq!(log.welcome(7, &head, &mut buf, MAX_FRAME_LEN), Some(4));
    let [
        Msg::Response {
            id: 7,
            body: Response::Welcome(w),
        },
    ] = &frames(buf)[..]
    else {
        panic!("one Welcome")
    };
    assert_eq!(w.members_next, 4);
    assert_eq!(sorted(w.members.clone()), vec![worker(1), worker(3)]);

    let mut buf = BytesMut::new();
    assert_eq!(log.catch_up(4, &mut buf, MAX_FRAME_LEN), 4);
    assert!(buf.is_empty());
    log.record(&MemberChange::Up(worker(4)));
    log.record(&down(1));
    assert_eq!(log.catch_up(4, &mut buf, MAX_FRAME_LEN), 6);
    assert_eq!(
        frames(buf),
        vec![Msg::MembersDelta(MembersDelta {
            first: 4,
            changes: vec![MemberChange::Up(worker(4)), down(1)],
        })]
    );
}

/// A connection that lacks changes no longer kept gets the whole list,
/// numbered so that the next delta follows on from it.
#[test]
fn a_connection_too_far_behind_gets_the_list() {
    let mut log = MemberLog::default();
    log.record(&MemberChange::Up(worker(1)));
    for _ in 0..MIN_KEPT {
        log.record(&MemberChange::Up(worker(2)));
    }
    let mut buf = BytesMut::new();
    let next = log.catch_up(0, &mut buf, MAX_FRAME_LEN);
    assert_eq!(next, 1 + MIN_KEPT as u64);
    let [Msg::Members(MemberList { next: n, members })] = &frames(buf)[..] else {
        panic!("one list")
    };
    assert_eq!(*n, next);
    assert_eq!(sorted(members.clone()), vec![worker(1), worker(2)]);
    // One change later than that, a delta again.
    let mut buf = BytesMut::new();
    assert_eq!(log.catch_up(1, &mut buf, MAX_FRAME_LEN), next);
    assert!(
        matches!(&frames(buf)[..], [Msg::MembersDelta(d)] if d.first == 1 && d.changes.len() == MIN_KEPT)
    );
}

/// Changes over the frame limit go as several deltas, numbered one after
/// the other. (The limit is 1,000 bytes since entries are positional:
/// about half their former size.)
#[test]
fn deltas_are_split_at_the_frame_limit() {
    let mut log = MemberLog::default();
    for v in 0..100 {
        log.record(&MemberChange::Up(worker(v)));
    }
    log.record(&down(5));
    let mut buf = BytesMut::new();
    assert_eq!(log.catch_up(0, &mut buf, 1000), 101);
    let deltas = frames(buf);
    assert!(deltas.len() > 3, "{} frames", deltas.len());
    let mut expected = 0;
    for d in deltas {
        let Msg::MembersDelta(d) = d else {
            panic!("a delta")
        };
        assert_eq!(d.first, expected);
        expected += d.changes.len() as u64;
    }
    assert_eq!(expected, 101);
}

/// The list a Welcome or `Members` carries stays exact through holes
/// (members gone, members relisted with new details) and the compaction
/// that closes them: every live member once, with its latest details, and
/// the joiner with the Welcome's.
#[test]
fn lists_stay_exact_through_downs_relists_and_compaction() {
    let mut log = MemberLog::default();
    let mut live = std::collections::BTreeMap::new();
    for round in 0..40u64 {
        for v in 0..100 {
            let mut w = worker(v);
            w.capacity = (round + v) as u32 % 7 + 1;
            if (v + round) % 3 == 0 {
                log.record(&down(v));
                live.remove(&v);
            } else {
                log.record(&MemberChange::Up(w.clone()));
                live.insert(v, w);
            }
        }
        let mut buf = BytesMut::new();
        log.list(&mut buf, MAX_FRAME_LEN).unwrap();
        let [Msg::Members(MemberList { members, .. })] = &frames(buf)[..] else {
            panic!("one list")
        };
        assert_eq!(
            sorted(members.clone()),
            live.values().cloned().collect::<Vec<_>>()
        );
        // A joiner listed with the Welcome's details, not the log's.
        let mut joiner = worker(1);
        joiner.addr = "127.0.0.1:1".into();
        let head = Welcome {
            members: vec![joiner.clone()],
            report_interval_ms: 500,
            node_timeout_ms: 3000,
            fence: None,
            members_next: 0,
        };
        let mut buf = BytesMut::new();
        log.welcome(1, &head, &mut buf, MAX_FRAME_LEN).unwrap();
        let [
            Msg::Response {
                body: Response::Welcome(w),
                ..
            },
        ] = &frames(buf)[..]
        else {
            panic!("one Welcome")
        };
        let mut expected = live.clone();
        expected.insert(1, joiner);
        assert_eq!(
            sorted(w.members.clone()),
            expected.into_values().collect::<Vec<_>>()
        );
    }
    assert!(log.live.hole_bytes < COMPACT_MIN.max(log.live.bytes.len() / 2) + 1);
}

fn head_of(joiner: NodeInfo) -> Welcome {
    Welcome {
        members: vec![joiner],
        report_interval_ms: 500,
        node_timeout_ms: 3000,
        fence: None,
        members_next: 0,
    }
}

/// What a node knows after applying the frames of `w` as a worker does —
/// the Welcome's list, then each delta numbered on from it (no gap) — and
/// the number it is at; also the Welcome's list as sent.
fn applied(w: &WelcomeOut) -> (Vec<NodeInfo>, u64, Vec<NodeInfo>) {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&w.head);
    buf.extend_from_slice(&w.entries);
    buf.extend_from_slice(&w.rest);
    let mut msgs = frames(buf).into_iter();
    let Some(Msg::Response {
        body: Response::Welcome(welcome),
        ..
    }) = msgs.next()
    else {
        panic!("a Welcome first")
    };
    let listed = welcome.members.clone();
    let mut known: std::collections::BTreeMap<NodeId, NodeInfo> =
        welcome.members.into_iter().map(|m| (m.id, m)).collect();
    let mut next = welcome.members_next;
    for msg in msgs {
        let Msg::MembersDelta(d) = msg else {
            panic!("deltas after the Welcome")
        };
        assert_eq!(d.first, next, "a gap after the Welcome");
        next += d.changes.len() as u64;
        for c in d.changes {
            match c {
                MemberChange::Up(i) => {
                    known.insert(i.id, i);
                }
                MemberChange::Down { node, .. } => {
                    known.remove(&node);
                }
            }
        }
    }
    (known.into_values().collect(), next, listed)
}

/// The Welcomes of a burst of joins share one copy of the list (the same
/// buffer, not a copy each); a Welcome made from it after more changes
/// carries those as deltas numbered on from its list, so the node ends up
/// knowing exactly the live members and the joiner, at the log's next
/// number.
#[test]
fn welcomes_of_a_burst_share_one_list_and_carry_the_changes_since() {
    let mut log = MemberLog::default();
    for v in 1..=200 {
        log.record(&MemberChange::Up(worker(v)));
    }
    let first = log
        .welcome_out(1, &head_of(worker(200)), MAX_FRAME_LEN)
        .unwrap();
    assert_eq!(first.next, 200);
    let (known, next, listed) = applied(&first);
    assert_eq!((known, next), ((1..=200).map(worker).collect(), 200));
    assert_eq!(listed.len(), 200, "the joiner listed once");

    log.record(&MemberChange::Up(worker(201)));
    log.record(&down(7));
    let second = log
        .welcome_out(2, &head_of(worker(201)), MAX_FRAME_LEN)
        .unwrap();
    assert_eq!(
        second.entries.as_ptr(),
        first.entries.as_ptr(),
        "the list was copied again"
    );
    let mut expected: Vec<NodeInfo> = (1..=201).filter(|&v| v != 7).map(worker).collect();
    expected.sort_by_key(|i| i.id);
    let (known, next, listed) = applied(&second);
    assert_eq!((known, next), (expected, 202));
    assert_eq!(listed.len(), 201, "the list of 200 and the joiner");
}

/// Once the changes since the shared list take more than a sixteenth of
/// its bytes, the next Welcome takes the list anew, and carries no deltas.
#[test]
fn a_stale_list_is_taken_anew() {
    let mut log = MemberLog::default();
    for v in 1..=64 {
        log.record(&MemberChange::Up(worker(v)));
    }
    let first = log
        .welcome_out(1, &head_of(worker(64)), MAX_FRAME_LEN)
        .unwrap();
    for v in 65..=80 {
        log.record(&MemberChange::Up(worker(v)));
    }
    let second = log
        .welcome_out(2, &head_of(worker(80)), MAX_FRAME_LEN)
        .unwrap();
    assert_ne!(second.entries.as_ptr(), first.entries.as_ptr());
    let (known, next, listed) = applied(&second);
    let all: Vec<NodeInfo> = (1..=80).map(worker).collect();
    assert_eq!((known, next), (all.clone(), 80));
    assert_eq!(
        sorted(listed),
        all,
        "a list of every member as of now, no delta"
    );
}

/// A joiner in the shared list with other details than its Welcome's (a
/// node relisted, or joining with new ones) is listed once, with the
/// Welcome's details: its Welcome gets a list of its own.
#[test]
fn a_joiner_listed_with_other_details_gets_a_list_of_its_own() {
    let mut log = MemberLog::default();
    for v in 1..=100 {
        log.record(&MemberChange::Up(worker(v)));
    }
    let shared = log
        .welcome_out(1, &head_of(worker(100)), MAX_FRAME_LEN)
        .unwrap();
    let mut joiner = worker(5);
    joiner.capacity = 9;
    let own = log
        .welcome_out(2, &head_of(joiner.clone()), MAX_FRAME_LEN)
        .unwrap();
    assert!(own.entries.is_empty() && shared.entries.len() > 1000);
    let (known, next, listed) = applied(&own);
    assert_eq!((known.len(), next), (100, 100));
    let mine: Vec<&NodeInfo> = listed.iter().filter(|i| i.id == joiner.id).collect();
    assert_eq!(mine, vec![&joiner]);
}
