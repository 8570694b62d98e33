use serde::{Deserialize, Serialize};

use super::*;

/// The shape of the native prime search's result: a struct.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Found {
    from: u64,
    to: u64,
    largest: Option<u64>,
    count: u64,
}

/// An enum with a unit and a newtype variant.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Op {
    Inc,
    Add(u32),
}

/// The bytes of `Found { from: 2, to: 10, largest: Some(7), count: 4 }`:
/// a map keyed by field name (tests/src/guests.rs holds the node to them).
const FOUND: &[u8] = &[
    0x84, 0xa4, b'f', b'r', b'o', b'm', 0x02, 0xa2, b't', b'o', 0x0a, 0xa7, b'l', b'a', b'r', b'g',
    b'e', b's', b't', 0x07, 0xa5, b'c', b'o', b'u', b'n', b't', 0x04,
];

/// Structs are maps keyed by field name, as `pool_proto::Payload` writes them.
#[test]
fn structs_are_maps() {
    let found = Found {
        from: 2,
        to: 10,
        largest: Some(7),
        count: 4,
    };
    assert_eq!(encode(&found).unwrap(), FOUND);
    assert_eq!(decode::<Found>(FOUND).unwrap(), found);
}

/// Enums are externally tagged: a unit variant is its name, another a
/// one-entry map.
#[test]
fn enums_are_externally_tagged() {
    assert_eq!(encode(&Op::Inc).unwrap(), [0xa3, b'I', b'n', b'c']);
    assert_eq!(
        encode(&Op::Add(5)).unwrap(),
        [0x81, 0xa3, b'A', b'd', b'd', 0x05]
    );
    assert_eq!(decode::<Op>(&[0xa3, b'I', b'n', b'c']).unwrap(), Op::Inc);
    assert_eq!(
        decode::<Op>(&[0x81, 0xa3, b'A', b'd', b'd', 0x05]).unwrap(),
        Op::Add(5)
    );
}

/// A body holds exactly one value: leftovers, truncation and the wrong
/// type are errors, never panics.
#[test]
fn decode_is_exact() {
    assert_eq!(decode::<u32>(&[0x07]).unwrap(), 7);
    assert!(
        matches!(decode::<u32>(&[0x07, 0x07]), Err(Error::Decode(e)) if e.contains("left over"))
    );
    assert!(decode::<String>(&[0xa4, b'p']).is_err());
    assert!(decode::<u32>(&[0xa1, b'x']).is_err());
    assert!(decode::<u32>(&[]).is_err());
}

/// Nesting past MAX_DEPTH is refused instead of exhausting the stack.
#[test]
fn deep_nesting_is_refused() {
    let deep = vec![0x91u8; MAX_DEPTH + 10];
    assert!(decode::<serde_json::Value>(&deep).is_err());
}
