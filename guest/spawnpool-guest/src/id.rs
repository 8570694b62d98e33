//! [`Pid`] and [`Ref`]: the same two numbers as the node's `pool_proto::Pid`
//! and `pool_proto::Ref`, in the same forms.
//!
//! - Text (and JSON, and any human-readable serde format): a pid is
//!   `<3f2a9c1e04d1b2aa.17>` (the node's 16 hex digits, a dot, the serial),
//!   a reference `#Ref<3f2a9c1e04d1b2aa.9>`.
//! - MessagePack: a 2-tuple of integers `[node, serial]`, so a pid inside a
//!   message means the same on both sides of the ABI.
//! - The host ABI: 16 bytes, node then serial, each a little-endian u64
//!   ([`Pid::to_bytes`]), or two `i64` arguments.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A process: the node it runs on and a serial number local to that node.
///
/// ```
/// use spawnpool_guest::Pid;
/// let pid: Pid = "<3f2a9c1e04d1b2aa.17>".parse().unwrap();
/// assert_eq!((pid.node(), pid.serial()), (0x3f2a9c1e04d1b2aa, 17));
/// assert_eq!(pid.to_string(), "<3f2a9c1e04d1b2aa.17>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid {
    node: u64,
    serial: u64,
}

/// A unique reference (of a monitor or a call): the node that made it and a
/// serial number local to that node.
///
/// ```
/// use spawnpool_guest::Ref;
/// let r: Ref = "#Ref<3f2a9c1e04d1b2aa.9>".parse().unwrap();
/// assert_eq!(r.serial(), 9);
/// assert_eq!(r.to_string(), "#Ref<3f2a9c1e04d1b2aa.9>");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    node: u64,
    serial: u64,
}

/// The methods both identities share (they differ only in text form).
macro_rules! pair_methods {
    ($t:ident, $what:literal) => {
        impl $t {
            #[doc = concat!("The ", $what, " with these two numbers.")]
            ///
            /// ```
            #[doc = concat!("let x = spawnpool_guest::", stringify!($t), "::new(0xab, 3);")]
            /// assert_eq!((x.node(), x.serial()), (0xab, 3));
            /// ```
            pub const fn new(node: u64, serial: u64) -> Self {
                $t { node, serial }
            }

            /// The node's incarnation (never zero for a real node).
            ///
            /// ```
            #[doc = concat!("assert_eq!(spawnpool_guest::", stringify!($t), "::new(7, 1).node(), 7);")]
            /// ```
            pub const fn node(self) -> u64 {
                self.node
            }

            /// The serial number, unique on its node.
            ///
            /// ```
            #[doc = concat!("assert_eq!(spawnpool_guest::", stringify!($t), "::new(7, 1).serial(), 1);")]
            /// ```
            pub const fn serial(self) -> u64 {
                self.serial
            }

            /// The 16 bytes the host ABI uses: node, then serial, each a
            /// little-endian u64.
            ///
            /// ```
            #[doc = concat!("let x = spawnpool_guest::", stringify!($t), "::new(1, 2);")]
            /// assert_eq!(x.to_bytes()[0], 1);
            /// assert_eq!(x.to_bytes()[8], 2);
            #[doc = concat!("assert_eq!(spawnpool_guest::", stringify!($t), "::from_bytes(x.to_bytes()), x);")]
            /// ```
            pub fn to_bytes(self) -> [u8; 16] {
                let mut out = [0u8; 16];
                out[..8].copy_from_slice(&self.node.to_le_bytes());
                out[8..].copy_from_slice(&self.serial.to_le_bytes());
                out
            }

            /// The inverse of [`to_bytes`](Self::to_bytes).
            ///
            /// ```
            #[doc = concat!("let x = spawnpool_guest::", stringify!($t), "::from_bytes([0; 16]);")]
            /// assert_eq!(x.node(), 0);
            /// ```
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                let mut node = [0u8; 8];
                let mut serial = [0u8; 8];
                node.copy_from_slice(&bytes[..8]);
                serial.copy_from_slice(&bytes[8..]);
                $t {
                    node: u64::from_le_bytes(node),
                    serial: u64::from_le_bytes(serial),
                }
            }

            /// The two numbers as the `i64` arguments of the host ABI (the
            /// same bits).
            pub(crate) fn abi(self) -> (i64, i64) {
                (self.node as i64, self.serial as i64)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    let mut t = s.serialize_tuple(2)?;
                    t.serialize_element(&self.node)?;
                    t.serialize_element(&self.serial)?;
                    t.end()
                }
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(de::Error::custom)
                } else {
                    let (node, serial) = d.deserialize_tuple(2, PairVisitor($what))?;
                    Ok($t { node, serial })
                }
            }
        }
    };
}

pair_methods!(Pid, "pid");
pair_methods!(Ref, "reference");

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{:016x}.{}>", self.node, self.serial)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{:016x}.{}>", self.node, self.serial)
    }
}

impl FromStr for Pid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse_pair(s, "")
            .map(|(node, serial)| Pid { node, serial })
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "invalid pid {s:?}: expected <node.serial>, e.g. <3f2a9c1e04d1b2aa.17>"
                ))
            })
    }
}

impl FromStr for Ref {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse_pair(s, "#Ref")
            .map(|(node, serial)| Ref { node, serial })
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "invalid reference {s:?}: expected #Ref<node.serial>, e.g. #Ref<3f2a9c1e04d1b2aa.9>"
                ))
            })
    }
}

/// Parses `<hex.serial>` (the brackets and `prefix` optional), as the node
/// does: 8 to 16 hex digits for the node, decimal digits for the serial.
fn parse_pair(s: &str, prefix: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let s = s.strip_prefix(prefix).unwrap_or(s);
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    let (node, serial) = s.split_once('.')?;
    if !(8..=16).contains(&node.len()) || !node.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((u64::from_str_radix(node, 16).ok()?, serial.parse().ok()?))
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

#[cfg(test)]
mod tests;
