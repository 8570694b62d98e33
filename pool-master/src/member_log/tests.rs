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
