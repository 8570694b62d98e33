//! Membership frames ([`Msg::Members`], [`Msg::MembersDelta`], and the
//! `Welcome` answer with its list) assembled from entries encoded once.
//!
//! A master tells thousands of nodes the same list and the same changes.
//! Encoding every entry again for every node would cost it O(n) encodings
//! per node; instead each entry (a [`NodeInfo`](crate::NodeInfo) or a
//! [`MemberChange`]) is encoded once with [`encode_entry`], and a frame is
//! the encoded head of the message with its empty list replaced by the
//! entries, copied. A MessagePack array is its length marker followed by
//! its elements, so the result is byte for byte what encoding the whole
//! message gives (the tests check it).
//!
//! It also owns how an entry is serialized: positionally, as an array of
//! its fields, in MessagePack (the `Serialize` impls of `NodeInfo` and
//! `MemberChange` below). The whole list goes to every node, so an
//! entry's field names were half the bytes a join storm moves; the
//! derived `Deserialize` reads an entry from an array or a map, so a peer
//! of the same protocol version decodes either form.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::ser::{SerializeStruct, SerializeStructVariant, SerializeTuple, SerializeTupleVariant};

use crate::codec::{HEADER_LEN, encode_frame};
use crate::error::Error;
use crate::message::{
    MemberChange, MemberList, MembersDelta, Msg, NodeInfo, ReqId, Response, Welcome,
};

/// The fields of a [`NodeInfo`], in the order of its array.
const NODE_INFO_FIELDS: usize = 6;

impl Serialize for NodeInfo {
    /// An array of every field in declaration order in binary formats
    /// (MessagePack), a map by name in human-readable ones (JSON). Every
    /// field is written, defaults included: a position left out would
    /// shift the ones after it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Destructured so that a new field does not compile until it is
        // written here (and last: see `NodeInfo`).
        let NodeInfo {
            id,
            name,
            addr,
            kind,
            capacity,
            labels,
        } = self;
        if s.is_human_readable() {
            let mut m = s.serialize_struct("NodeInfo", NODE_INFO_FIELDS)?;
            m.serialize_field("id", id)?;
            m.serialize_field("name", name)?;
            m.serialize_field("addr", addr)?;
            m.serialize_field("kind", kind)?;
            m.serialize_field("capacity", capacity)?;
            m.serialize_field("labels", labels)?;
            m.end()
        } else {
            let mut t = s.serialize_tuple(NODE_INFO_FIELDS)?;
            t.serialize_element(id)?;
            t.serialize_element(name)?;
            t.serialize_element(addr)?;
            t.serialize_element(kind)?;
            t.serialize_element(capacity)?;
            t.serialize_element(labels)?;
            t.end()
        }
    }
}

impl Serialize for MemberChange {
    /// As the derived form (`{"Up": info}`, `{"Down": ...}`), with `Down`'s
    /// fields an array in binary formats, a map in human-readable ones.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MemberChange::Up(info) => s.serialize_newtype_variant("MemberChange", 0, "Up", info),
            MemberChange::Down { node, reason } if s.is_human_readable() => {
                let mut v = s.serialize_struct_variant("MemberChange", 1, "Down", 2)?;
                v.serialize_field("node", node)?;
                v.serialize_field("reason", reason)?;
                v.end()
            }
            MemberChange::Down { node, reason } => {
                let mut v = s.serialize_tuple_variant("MemberChange", 1, "Down", 2)?;
                v.serialize_field(node)?;
                v.serialize_field(reason)?;
                v.end()
            }
        }
    }
}

/// The MessagePack marker of an empty array (fixarray of length 0): what
/// the head of a message ends with, its list left empty.
const EMPTY_ARRAY: u8 = 0x90;

/// Encodes one list entry (a [`NodeInfo`] for [`members_frame`], a
/// [`MemberChange`] for [`delta_frame`]) as it appears inside a frame:
/// positionally (MessagePack arrays, see the module docs).
///
/// ```
/// use pool_proto::members::encode_entry;
/// use pool_proto::{DownReason, MemberChange, NodeId};
///
/// let change = MemberChange::Down { node: NodeId::from_u64(7), reason: DownReason::Timeout };
/// assert!(!encode_entry(&change).unwrap().is_empty());
/// ```
pub fn encode_entry<T: Serialize>(entry: &T) -> Result<Bytes, Error> {
    let mut w = BytesMut::new().writer();
    rmp_serde::encode::write(&mut w, entry).map_err(|e| Error::Encode {
        reason: e.to_string(),
    })?;
    Ok(w.into_inner().freeze())
}

/// [`encode_entry`] appending to `dst` instead: entries encoded one after
/// another into one buffer lie side by side in memory, which a master
/// that copies thousands of them per write reads much faster than as many
/// separate allocations. On error `dst` is unchanged.
pub fn encode_entry_into<T: Serialize>(entry: &T, dst: &mut BytesMut) -> Result<(), Error> {
    let start = dst.len();
    let res = rmp_serde::encode::write(&mut (&mut *dst).writer(), entry);
    if let Err(e) = res {
        dst.truncate(start);
        return Err(Error::Encode {
            reason: e.to_string(),
        });
    }
    Ok(())
}

/// Appends a [`Msg::Members`] frame to `dst`: the list whose next change is
/// `next`, made of `members`, each encoded by [`encode_entry`] from a
/// [`NodeInfo`](crate::NodeInfo). On error (a frame over `max` bytes)
/// `dst` is unchanged.
///
/// ```
/// use bytes::BytesMut;
/// use pool_proto::members::{encode_entry, members_frame};
/// use pool_proto::codec::decode_exact;
/// use pool_proto::{MemberList, Msg, NodeId, NodeInfo, NodeKind, MAX_FRAME_LEN};
///
/// let info = NodeInfo {
///     id: NodeId::from_u64(1),
///     name: "w1".into(),
///     addr: "127.0.0.1:7001".into(),
///     kind: NodeKind::Worker,
///     capacity: 2,
///     labels: Default::default(),
/// };
/// let entry = encode_entry(&info).unwrap();
/// let mut frame = BytesMut::new();
/// members_frame(5, [&entry].into_iter(), &mut frame, MAX_FRAME_LEN).unwrap();
/// let back: Msg = decode_exact(&frame[4..]).unwrap();
/// assert_eq!(back, Msg::Members(MemberList { next: 5, members: vec![info] }));
/// ```
pub fn members_frame<E: AsRef<[u8]>>(
    next: u64,
    members: impl ExactSizeIterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    members_frame_runs(next, members.len(), members, dst, max)
}

/// [`members_frame`] from runs of entries: `count` entries, one after
/// another, in any number of slices (a block that holds many entries is
/// copied at once).
pub fn members_frame_runs<E: AsRef<[u8]>>(
    next: u64,
    count: usize,
    runs: impl Iterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    let head = Msg::Members(MemberList {
        next,
        members: Vec::new(),
    });
    splice(&head, None, count, runs, dst, max)
}

/// Appends a [`Msg::MembersDelta`] frame to `dst`: the changes numbered
/// from `first`, each encoded by [`encode_entry`] from a [`MemberChange`].
/// On error (a frame over `max` bytes) `dst` is unchanged.
///
/// ```
/// use bytes::BytesMut;
/// use pool_proto::members::{delta_frame, encode_entry};
/// use pool_proto::codec::decode_exact;
/// use pool_proto::{DownReason, MemberChange, MembersDelta, Msg, NodeId, MAX_FRAME_LEN};
///
/// let change = MemberChange::Down { node: NodeId::from_u64(7), reason: DownReason::Left };
/// let mut frame = BytesMut::new();
/// delta_frame(9, [encode_entry(&change).unwrap()].iter(), &mut frame, MAX_FRAME_LEN).unwrap();
/// let back: Msg = decode_exact(&frame[4..]).unwrap();
/// assert_eq!(back, Msg::MembersDelta(MembersDelta { first: 9, changes: vec![change] }));
/// ```
pub fn delta_frame<E: AsRef<[u8]>>(
    first: u64,
    changes: impl ExactSizeIterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    let head = Msg::MembersDelta(MembersDelta {
        first,
        changes: Vec::<MemberChange>::new(),
    });
    splice(&head, None, changes.len(), changes, dst, max)
}

/// Appends the answer to a `Join` to `dst`: `welcome` (whose own
/// `members` is ignored) listing `members`, each encoded by
/// [`encode_entry`] from a [`NodeInfo`](crate::NodeInfo). On error (a frame
/// over `max` bytes) `dst` is unchanged.
///
/// ```
/// use bytes::BytesMut;
/// use pool_proto::members::{encode_entry, welcome_frame};
/// use pool_proto::codec::decode_exact;
/// use pool_proto::{Msg, NodeId, NodeInfo, NodeKind, Response, Welcome, MAX_FRAME_LEN};
///
/// let info = NodeInfo {
///     id: NodeId::from_u64(1),
///     name: "w1".into(),
///     addr: "127.0.0.1:7001".into(),
///     kind: NodeKind::Worker,
///     capacity: 2,
///     labels: Default::default(),
/// };
/// let mut welcome = Welcome {
///     members: vec![],
///     report_interval_ms: 500,
///     node_timeout_ms: 3000,
///     fence: None,
///     members_next: 4,
/// };
/// let mut frame = BytesMut::new();
/// welcome_frame(3, &welcome, [encode_entry(&info).unwrap()].iter(), &mut frame, MAX_FRAME_LEN)
///     .unwrap();
/// welcome.members = vec![info];
/// let back: Msg = decode_exact(&frame[4..]).unwrap();
/// assert_eq!(back, Msg::Response { id: 3, body: Response::Welcome(welcome) });
/// ```
pub fn welcome_frame<E: AsRef<[u8]>>(
    id: ReqId,
    welcome: &Welcome,
    members: impl ExactSizeIterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    welcome_frame_runs(id, welcome, members.len(), members, dst, max)
}

/// [`welcome_frame`] from runs of entries: `count` entries, one after
/// another, in any number of slices (see [`members_frame_runs`]).
pub fn welcome_frame_runs<E: AsRef<[u8]>>(
    id: ReqId,
    welcome: &Welcome,
    count: usize,
    runs: impl Iterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    let head = Msg::Response {
        id,
        body: Response::Welcome(Welcome {
            members: Vec::new(),
            ..welcome.clone()
        }),
    };
    // `members` is the Welcome's first field: the first `members` key of
    // the encoding (nothing before it is a string of user data).
    splice(&head, WELCOME_LIST, count, runs, dst, max)
}

/// How the empty list to fill is found in the encoded head: the key that
/// comes right before it (`None`: the list ends the head).
type ListKey = Option<&'static [u8]>;

/// The Welcome's list: after the key `members` (fixstr of 7 bytes).
const WELCOME_LIST: ListKey = Some(b"\xa7members");

/// The bytes of a frame around its list, for a caller that sends the
/// entries from buffers of its own (a `Welcome` listing the same members
/// as every other join of a storm, from one shared copy, with vectored
/// writes): the frame is `head`, then the entries, then `tail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameParts {
    /// The frame's length header, the message up to its list, and the
    /// list's length marker.
    pub head: BytesMut,
    /// The rest of the message after the list.
    pub tail: Bytes,
}

/// [`welcome_frame_runs`] without the entries: the [`FrameParts`] of the
/// answer to a `Join` whose list holds `count` entries of `entries_len`
/// bytes in all. Sending `head`, the entries and `tail` one after another
/// is the frame [`welcome_frame_runs`] makes. Fails if the frame would be
/// over `max` bytes.
///
/// ```
/// use bytes::BytesMut;
/// use pool_proto::members::{encode_entry, welcome_frame, welcome_frame_parts};
/// use pool_proto::{NodeId, NodeInfo, NodeKind, Welcome, MAX_FRAME_LEN};
///
/// let info = NodeInfo {
///     id: NodeId::from_u64(1),
///     name: "w1".into(),
///     addr: "127.0.0.1:7001".into(),
///     kind: NodeKind::Worker,
///     capacity: 2,
///     labels: Default::default(),
/// };
/// let welcome = Welcome {
///     members: vec![],
///     report_interval_ms: 500,
///     node_timeout_ms: 3000,
///     fence: None,
///     members_next: 4,
/// };
/// let entry = encode_entry(&info).unwrap();
/// let parts = welcome_frame_parts(3, &welcome, 1, entry.len(), MAX_FRAME_LEN).unwrap();
/// let mut whole = BytesMut::new();
/// welcome_frame(3, &welcome, [&entry].into_iter(), &mut whole, MAX_FRAME_LEN).unwrap();
/// assert_eq!([&parts.head[..], &entry[..], &parts.tail[..]].concat(), whole);
/// ```
pub fn welcome_frame_parts(
    id: ReqId,
    welcome: &Welcome,
    count: usize,
    entries_len: usize,
    max: usize,
) -> Result<FrameParts, Error> {
    let head = Msg::Response {
        id,
        body: Response::Welcome(Welcome {
            members: Vec::new(),
            ..welcome.clone()
        }),
    };
    splice_parts(&head, WELCOME_LIST, count, entries_len, max)
}

/// Encodes `head` as a frame and cuts it at its empty list (found by
/// `key`), which becomes the marker of a list of `count` entries: returns
/// the bytes before the entries (the length header not yet set) and after.
fn cut(head: &Msg, key: ListKey, count: usize, max: usize) -> Result<(BytesMut, Bytes), Error> {
    let mut encoded = BytesMut::new();
    encode_frame(head, &mut encoded, max)?;
    let at = match key {
        None => encoded.len().checked_sub(1),
        Some(key) => encoded
            .windows(key.len() + 1)
            .position(|w| w[..key.len()] == *key && w[key.len()] == EMPTY_ARRAY)
            .map(|p| p + key.len()),
    };
    let Some(at) = at.filter(|&at| encoded[at] == EMPTY_ARRAY) else {
        // Only if the message's fields changed: a bug, not bad input.
        return Err(Error::Encode {
            reason: format!("the {} head has no empty list to fill", head.name()),
        });
    };
    let tail = encoded.split_off(at + 1).freeze();
    encoded.truncate(at);
    match u16::try_from(count) {
        Ok(n) if n < 16 => encoded.put_u8(EMPTY_ARRAY | n as u8),
        Ok(n) => {
            encoded.put_u8(0xdc);
            encoded.put_u16(n);
        }
        Err(_) => {
            encoded.put_u8(0xdd);
            encoded.put_u32(u32::try_from(count).unwrap_or(u32::MAX));
        }
    }
    Ok((encoded, tail))
}

/// Writes the length header of the frame of `len` bytes (header left out)
/// that starts `frame`; fails if it is over `max`.
fn set_len(frame: &mut [u8], len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max,
        });
    }
    frame[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// [`cut`], with the length header set for entries of `entries_len` bytes.
fn splice_parts(
    head: &Msg,
    key: ListKey,
    count: usize,
    entries_len: usize,
    max: usize,
) -> Result<FrameParts, Error> {
    let (mut head, tail) = cut(head, key, count, max)?;
    let len = head.len() - HEADER_LEN + entries_len + tail.len();
    set_len(&mut head, len, max)?;
    Ok(FrameParts { head, tail })
}

/// Encodes `head` as a frame, then replaces its empty list (found by
/// `key`) by `count` entries, given as `runs` of entries one after another.
fn splice<E: AsRef<[u8]>>(
    head: &Msg,
    key: ListKey,
    count: usize,
    runs: impl Iterator<Item = E>,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    let (before, after) = cut(head, key, count, max)?;
    let start = dst.len();
    dst.extend_from_slice(&before);
    for run in runs {
        dst.extend_from_slice(run.as_ref());
    }
    dst.extend_from_slice(&after);
    let len = dst.len() - start - HEADER_LEN;
    if let Err(e) = set_len(&mut dst[start..], len, max) {
        dst.truncate(start);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
