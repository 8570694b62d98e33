//! Identities: [`NodeId`] (a node's incarnation), [`Pid`] (a process on a
//! node) and [`Ref`] (a unique reference for monitors and calls).
//!
//! Text forms: a node id is 16 lowercase hex digits; a pid is
//! `<3f2a9c1e04d1b2aa.17>`; a reference is `#Ref<3f2a9c1e04d1b2aa.9>`. In
//! human-readable formats (JSON, TOML) they serialise as those strings; in
//! MessagePack as plain integers.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// A pid, node id or reference in text form that did not parse. The
/// crate's [`Error`](crate::Error) wraps it as `Error::InvalidId`.
///
/// ```
/// use pool_proto::Pid;
/// let err = "<nope>".parse::<Pid>().unwrap_err();
/// assert_eq!(err.kind, "pid");
/// assert!(err.to_string().contains("expected <node.serial>"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: expected {expected}")]
pub struct ParseIdError {
    /// Which kind of id.
    pub kind: &'static str,
    /// The text given.
    pub input: String,
    /// The expected form.
    pub expected: &'static str,
}

/// A node's incarnation: 64 random bits chosen when the node starts.
///
/// A restarted node gets a new id, so a pid of a process of the old
/// incarnation can never reach a process of the new one by accident.
///
/// ```
/// use pool_proto::NodeId;
/// let id: NodeId = "3f2a9c1e04d1b2aa".parse().unwrap();
/// assert_eq!(id.to_string(), "3f2a9c1e04d1b2aa");
/// assert_eq!(id.as_u64(), 0x3f2a9c1e04d1b2aa);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u64);

impl NodeId {
    /// A fresh random node id (never zero, so zero can mean "unset" in logs).
    pub fn random() -> Self {
        loop {
            let v: u64 = rand::random();
            if v != 0 {
                return NodeId(v);
            }
        }
    }

    /// The node id with this numeric value.
    pub const fn from_u64(v: u64) -> Self {
        NodeId(v)
    }

    /// The numeric value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:016x})", self.0)
    }
}

/// Parses 8 to 16 hex digits.
fn parse_node_hex(s: &str) -> Option<u64> {
    if !(8..=16).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl FromStr for NodeId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_node_hex(s.trim())
            .map(NodeId)
            .ok_or_else(|| ParseIdError {
                kind: "node id",
                input: s.to_owned(),
                expected: "8 to 16 hex digits, e.g. 3f2a9c1e04d1b2aa",
            })
    }
}

/// A process: the node it runs on and a serial number local to that node.
///
/// ```
/// use pool_proto::Pid;
/// let pid: Pid = "<3f2a9c1e04d1b2aa.17>".parse().unwrap();
/// assert_eq!(pid.serial(), 17);
/// assert_eq!(pid.to_string(), "<3f2a9c1e04d1b2aa.17>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid {
    node: NodeId,
    serial: u64,
}

impl Pid {
    /// The pid of process `serial` on `node`.
    pub const fn new(node: NodeId, serial: u64) -> Self {
        Pid { node, serial }
    }

    /// The node the process runs on.
    pub const fn node(self) -> NodeId {
        self.node
    }

    /// The serial number, unique on its node.
    pub const fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}>", self.node, self.serial)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `<hex.serial>` (the brackets are optional) into its two parts.
fn parse_pair(s: &str, prefix: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let s = s.strip_prefix(prefix).unwrap_or(s);
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    let (node, serial) = s.split_once('.')?;
    let node = parse_node_hex(node)?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((node, serial.parse().ok()?))
}

impl FromStr for Pid {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_pair(s, "")
            .map(|(n, s)| Pid::new(NodeId(n), s))
            .ok_or_else(|| ParseIdError {
                kind: "pid",
                input: s.to_owned(),
                expected: "<node.serial>, e.g. <3f2a9c1e04d1b2aa.17>",
            })
    }
}

/// A unique reference, for monitors and calls: the node that made it and a
/// serial number local to that node.
///
/// ```
/// use pool_proto::Ref;
/// let r: Ref = "#Ref<3f2a9c1e04d1b2aa.9>".parse().unwrap();
/// assert_eq!(r.to_string(), "#Ref<3f2a9c1e04d1b2aa.9>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    node: NodeId,
    serial: u64,
}

impl Ref {
    /// Reference `serial` made by `node`.
    pub const fn new(node: NodeId, serial: u64) -> Self {
        Ref { node, serial }
    }

    /// The node that made the reference.
    pub const fn node(self) -> NodeId {
        self.node
    }

    /// The serial number, unique on its node.
    pub const fn serial(self) -> u64 {
        self.serial
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}.{}>", self.node, self.serial)
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Ref {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_pair(s, "#Ref")
            .map(|(n, s)| Ref::new(NodeId(n), s))
            .ok_or_else(|| ParseIdError {
                kind: "reference",
                input: s.to_owned(),
                expected: "#Ref<node.serial>, e.g. #Ref<3f2a9c1e04d1b2aa.9>",
            })
    }
}

// ---------------------------------------------------------------------------
// serde: text in human-readable formats, integers in binary ones.

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            u64::deserialize(d).map(NodeId)
        }
    }
}

/// Serialises a (node, serial) pair: text if human-readable, else a 2-tuple.
fn serialize_pair<S: Serializer, T: fmt::Display>(
    s: S,
    text: &T,
    node: NodeId,
    serial: u64,
) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.collect_str(text)
    } else {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&node.0)?;
        t.serialize_element(&serial)?;
        t.end()
    }
}

/// Visitor for the binary 2-tuple form.
struct PairVisitor(&'static str);

impl<'de> Visitor<'de> for PairVisitor {
    type Value = (u64, u64);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as a (node, serial) pair", self.0)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let node = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let serial = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((node, serial))
    }
}

impl Serialize for Pid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pair(s, self, self.node, self.serial)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            let (n, s) = d.deserialize_tuple(2, PairVisitor("pid"))?;
            Ok(Pid::new(NodeId(n), s))
        }
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pair(s, self, self.node, self.serial)
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            let (n, s) = d.deserialize_tuple(2, PairVisitor("reference"))?;
            Ok(Ref::new(NodeId(n), s))
        }
    }
}

#[cfg(test)]
mod tests;
