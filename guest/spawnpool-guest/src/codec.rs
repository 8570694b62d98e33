//! The message encoding: MessagePack, exactly as the node's
//! `pool_proto::Payload` writes and reads it, so that a native process and
//! a module exchange the same bytes.
//!
//! The rule: **structs are maps** keyed by field name
//! (`rmp_serde::to_vec_named`), tuples and `Vec`s are arrays, enums are
//! externally tagged (a unit variant is its name as a string), a pid or a
//! reference is a 2-tuple `[node, serial]`. A body holds exactly one value:
//! bytes left over after it are an error, as on the node.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

/// How deep a decoded value may nest (the node's limit too), so that a
/// hostile message cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Encodes `value` as MessagePack, structs as maps.
///
/// ```
/// let bytes = spawnpool_guest::encode(&("ping", 7u32)).unwrap();
/// assert_eq!(bytes, [0x92, 0xa4, b'p', b'i', b'n', b'g', 0x07]);
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes one MessagePack value that fills `bytes` exactly.
///
/// ```
/// let v: (String, u32) = spawnpool_guest::decode(&[0x92, 0xa4, b'p', b'i', b'n', b'g', 0x07]).unwrap();
/// assert_eq!(v, ("ping".to_string(), 7));
/// assert!(spawnpool_guest::decode::<u32>(&[0x07, 0x07]).is_err());
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut rest: &[u8] = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| Error::Decode(e.to_string()))?;
    drop(de);
    if !rest.is_empty() {
        return Err(Error::Decode(format!(
            "{} bytes left over after the value (of {})",
            rest.len(),
            bytes.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
