//! Unit tests of the membership frames: assembled from entries encoded once,
//! they are byte for byte the frames that encoding the whole message gives,
//! at every MessagePack array length marker, and respect the frame limit.

use bytes::BytesMut;

use super::*;
use crate::codec::decode_exact;
use crate::message::{DownReason, Fence, MemberChange, NodeInfo, NodeKind};
use crate::{MAX_FRAME_LEN, NodeId};

fn info(v: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::from_u64(v),
        name: format!("w{v}"),
        addr: format!("127.0.0.1:{}", 7000 + v),
        kind: if v.is_multiple_of(5) {
            NodeKind::Hidden
        } else {
            NodeKind::Worker
        },
        capacity: 1 + (v % 3) as u32,
        labels: [("zone".to_owned(), format!("z{}", v % 2))].into(),
    }
}

fn change(v: u64) -> MemberChange {
    if v.is_multiple_of(3) {
        MemberChange::Down {
            node: NodeId::from_u64(v),
            reason: DownReason::Timeout,
        }
    } else {
        MemberChange::Up(info(v))
    }
}

/// The frame that encoding `msg` whole gives.
fn whole(msg: &Msg) -> BytesMut {
    let mut b = BytesMut::new();
    encode_frame(msg, &mut b, usize::MAX).unwrap();
    b
}

/// A list and a delta assembled from encoded entries equal the whole
/// encodings (and decode back) for lengths on both sides of each array
/// marker size: fixarray (< 16), array16 (< 65,536) and array32.
#[test]
fn assembled_frames_equal_whole_encodings() {
    for n in [0u64, 1, 15, 16, 17, 65_535, 65_536] {
        let infos: Vec<NodeInfo> = (0..n).map(info).collect();
        let entries: Vec<Bytes> = infos.iter().map(|i| encode_entry(i).unwrap()).collect();
        let mut got = BytesMut::new();
        members_frame(n * 2, entries.iter(), &mut got, usize::MAX).unwrap();
        let msg = Msg::Members(MemberList {
            next: n * 2,
            members: infos,
        });
        assert_eq!(got, whole(&msg), "list of {n}");
        assert_eq!(decode_exact::<Msg>(&got[4..]).unwrap(), msg);

        let changes: Vec<MemberChange> = (0..n).map(change).collect();
        let entries: Vec<Bytes> = changes.iter().map(|c| encode_entry(c).unwrap()).collect();
        let mut got = BytesMut::new();
        delta_frame(u64::MAX - n, entries.iter(), &mut got, usize::MAX).unwrap();
        let msg = Msg::MembersDelta(MembersDelta {
            first: u64::MAX - n,
            changes,
        });
        assert_eq!(got, whole(&msg), "delta of {n}");
        assert_eq!(decode_exact::<Msg>(&got[4..]).unwrap(), msg);
    }
}

/// A frame is appended after what the buffer holds; one over the limit is
/// refused and leaves the buffer as it was.
#[test]
fn frames_append_and_respect_the_limit() {
    let entries: Vec<Bytes> = (0..100).map(|v| encode_entry(&info(v)).unwrap()).collect();
    let mut buf = BytesMut::from(&b"xyz"[..]);
    delta_frame(0, std::iter::empty::<&[u8]>(), &mut buf, MAX_FRAME_LEN).unwrap();
    assert_eq!(&buf[..3], b"xyz");
    assert_eq!(
        decode_exact::<Msg>(&buf[7..]).unwrap(),
        Msg::MembersDelta(MembersDelta {
            first: 0,
            changes: vec![]
        })
    );
    let before = buf.clone();
    let err = members_frame(1, entries.iter(), &mut buf, 1000).unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { max: 1000, .. }),
        "{err}"
    );
    assert_eq!(buf, before);
}

/// A Welcome assembled from encoded entries equals the whole encoding, with
/// and without a fence (whose strings could spell `members`), across the
/// array marker sizes, whatever the request id.
#[test]
fn assembled_welcome_equals_whole_encoding() {
    for (n, id) in [(0u64, 0u64), (1, 1), (15, 300), (16, u64::MAX), (70_000, 7)] {
        let infos: Vec<NodeInfo> = (0..n).map(info).collect();
        let entries: Vec<Bytes> = infos.iter().map(|i| encode_entry(i).unwrap()).collect();
        for fence in [
            None,
            Some(Fence {
                stop_apps: vec!["members".into()],
                lost_names: vec!["members".into(), String::new()],
            }),
        ] {
            let head = Welcome {
                members: vec![info(99)],
                report_interval_ms: 500,
                node_timeout_ms: 3000,
                fence,
                members_next: n + 1,
            };
            let mut got = BytesMut::new();
            welcome_frame(id, &head, entries.iter(), &mut got, usize::MAX).unwrap();
            let msg = Msg::Response {
                id,
                body: Response::Welcome(Welcome {
                    members: infos.clone(),
                    ..head
                }),
            };
            assert_eq!(got, whole(&msg), "welcome of {n}");
            assert_eq!(decode_exact::<Msg>(&got[4..]).unwrap(), msg);
        }
    }
}

/// A Welcome sent in parts — the head, the entries from a buffer of the
/// caller's, the tail — is byte for byte the assembled one, across the
/// array marker sizes; parts over the frame limit are refused.
#[test]
fn welcome_parts_around_the_entries_equal_the_assembled_frame() {
    for n in [0u64, 1, 15, 16, 17, 65_536] {
        let infos: Vec<NodeInfo> = (0..n).map(info).collect();
        let entries: Vec<u8> = infos
            .iter()
            .flat_map(|i| encode_entry(i).unwrap())
            .collect();
        let head = Welcome {
            members: vec![],
            report_interval_ms: 500,
            node_timeout_ms: 3000,
            fence: None,
            members_next: n,
        };
        let parts = welcome_frame_parts(9, &head, n as usize, entries.len(), usize::MAX).unwrap();
        let mut assembled = BytesMut::new();
        welcome_frame_runs(
            9,
            &head,
            n as usize,
            [&entries].into_iter(),
            &mut assembled,
            usize::MAX,
        )
        .unwrap();
        assert_eq!(
            [&parts.head[..], &entries[..], &parts.tail[..]].concat(),
            assembled,
            "welcome of {n}"
        );
        let whole_len = assembled.len() - HEADER_LEN;
        assert!(matches!(
            welcome_frame_parts(9, &head, n as usize, entries.len(), whole_len - 1),
            Err(Error::FrameTooLarge { .. })
        ));
    }
}

/// A `NodeInfo` as peers before positional entries derived it: named.
#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
struct NamedInfo {
    id: NodeId,
    name: String,
    addr: String,
    kind: NodeKind,
    capacity: u32,
    #[serde(default)]
    labels: crate::message::Labels,
}

/// A `MemberChange` as peers before positional entries derived it.
#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
enum NamedChange {
    Up(NamedInfo),
    Down { node: NodeId, reason: DownReason },
}

fn named(i: &NodeInfo) -> NamedInfo {
    NamedInfo {
        id: i.id,
        name: i.name.clone(),
        addr: i.addr.clone(),
        kind: i.kind,
        capacity: i.capacity,
        labels: i.labels.clone(),
    }
}

/// An entry is a MessagePack array of every field, defaults included (an
/// empty `addr`, no labels, capacity 0), and decodes back to itself.
#[test]
fn entries_are_positional_and_round_trip() {
    let bare = NodeInfo {
        id: NodeId::from_u64(0),
        name: String::new(),
        addr: String::new(),
        kind: NodeKind::Hidden,
        capacity: 0,
        labels: Default::default(),
    };
    for i in [bare, info(1), info(5), info(u64::MAX - 7000)] {
        let e = encode_entry(&i).unwrap();
        assert_eq!(e[0], 0x96, "a fixarray of 6 fields: {e:?}");
        assert_eq!(decode_exact::<NodeInfo>(&e).unwrap(), i);
        let c = MemberChange::Up(i.clone());
        assert_eq!(
            decode_exact::<MemberChange>(&encode_entry(&c).unwrap()).unwrap(),
            c
        );
    }
    let down = MemberChange::Down {
        node: NodeId::from_u64(9),
        reason: DownReason::Replaced,
    };
    let e = encode_entry(&down).unwrap();
    // {"Down": [9, "replaced"]}
    assert_eq!(&e[..7], b"\x81\xa4Down\x92");
    assert_eq!(decode_exact::<MemberChange>(&e).unwrap(), down);
}

/// Compact entries are about half the named ones (field names were half
/// the bytes), the saving the join storm's traffic depends on.
#[test]
fn positional_entries_are_about_half_the_named_ones() {
    let i = NodeInfo {
        labels: Default::default(),
        ..info(4321)
    };
    let compact = encode_entry(&MemberChange::Up(i.clone())).unwrap().len();
    let named = rmp_serde::to_vec_named(&NamedChange::Up(named(&i)))
        .unwrap()
        .len();
    assert!(compact * 10 <= named * 6, "{compact} vs {named} bytes");
}

/// Both forms decode: entries named as older peers sent them decode to
/// the same values, and the decoder an older peer derived reads the
/// positional ones.
#[test]
fn decoders_accept_named_and_positional_entries() {
    for v in [0u64, 3, 4, 5, 17] {
        let i = info(v);
        let old = rmp_serde::to_vec_named(&named(&i)).unwrap();
        assert_eq!(old[0] & 0xf0, 0x80, "named: a map");
        assert_eq!(decode_exact::<NodeInfo>(&old).unwrap(), i);
        let new = encode_entry(&i).unwrap();
        assert_eq!(decode_exact::<NamedInfo>(&new).unwrap(), named(&i));

        let (c, o) = match change(v) {
            MemberChange::Up(i) => (MemberChange::Up(i.clone()), NamedChange::Up(named(&i))),
            MemberChange::Down { node, reason } => (
                MemberChange::Down {
                    node,
                    reason: reason.clone(),
                },
                NamedChange::Down { node, reason },
            ),
        };
        let old = rmp_serde::to_vec_named(&o).unwrap();
        assert_eq!(decode_exact::<MemberChange>(&old).unwrap(), c);
        assert_eq!(
            decode_exact::<NamedChange>(&encode_entry(&c).unwrap()).unwrap(),
            o
        );
    }
    // Without labels, as a peer that predates them may send a map.
    let mut map = Vec::new();
    #[derive(Serialize)]
    struct NoLabels<'a> {
        id: NodeId,
        name: &'a str,
        addr: &'a str,
        kind: NodeKind,
        capacity: u32,
    }
    let i = info(2);
    rmp_serde::encode::write_named(
        &mut map,
        &NoLabels {
            id: i.id,
            name: &i.name,
            addr: &i.addr,
            kind: i.kind,
            capacity: i.capacity,
        },
    )
    .unwrap();
    let back = decode_exact::<NodeInfo>(&map).unwrap();
    assert!(back.labels.is_empty());
}

/// A frame assembled from positional entries decodes to the message, and
/// a list whose entries came named (as an older master sent them) to the
/// same one: a node reads both.
#[test]
fn frames_of_either_form_decode_to_the_same_message() {
    let infos: Vec<NodeInfo> = (0..40).map(info).collect();
    let compact: Vec<Bytes> = infos.iter().map(|i| encode_entry(i).unwrap()).collect();
    let old: Vec<Vec<u8>> = infos
        .iter()
        .map(|i| rmp_serde::to_vec_named(&named(i)).unwrap())
        .collect();
    let msg = Msg::Members(MemberList {
        next: 3,
        members: infos,
    });
    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
    members_frame(3, compact.iter(), &mut a, MAX_FRAME_LEN).unwrap();
    members_frame(3, old.iter(), &mut b, MAX_FRAME_LEN).unwrap();
    assert!(a.len() < b.len());
    assert_eq!(decode_exact::<Msg>(&a[4..]).unwrap(), msg);
    assert_eq!(decode_exact::<Msg>(&b[4..]).unwrap(), msg);
}

/// Human-readable formats (the HTTP API's JSON) keep the field names.
#[test]
fn json_keeps_the_field_names() {
    let v = serde_json::to_value(info(1)).unwrap();
    assert_eq!(v["name"], "w1");
    assert_eq!(v["capacity"], 2);
    let d = MemberChange::Down {
        node: NodeId::from_u64(1),
        reason: DownReason::Left,
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["Down"]["reason"], "left");
    assert_eq!(serde_json::from_value::<MemberChange>(v).unwrap(), d);
    let i = info(3);
    assert_eq!(
        serde_json::from_value::<NodeInfo>(serde_json::to_value(&i).unwrap()).unwrap(),
        i
    );
}
