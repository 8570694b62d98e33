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
