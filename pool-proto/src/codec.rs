//! Framing: a 4-byte big-endian length, then a MessagePack body.
//!
//! [`Codec`] is a tokio-util [`Decoder`]/[`Encoder`]: it splits the byte
//! stream into frames by their length prefix and decodes each body where it
//! lies in the read buffer. Three failures are kept apart, because each
//! calls for a different log line but all close the connection:
//!
//! - the length prefix announces more than the limit: [`Error::FrameTooLarge`],
//!   detected from the 4 header bytes before anything of that size is
//!   allocated;
//! - the body does not decode to the expected type, or leaves bytes over:
//!   [`Error::Decode`] / [`Error::TrailingBytes`];
//! - the stream ends inside a frame: [`Error::Truncated`].
//!
//! "Need more bytes" is `Ok(None)`, a clean end of stream is `Ok(None)` from
//! `decode_eof`. After any error the connection must be dropped: the decoder
//! does not resynchronise.
//!
//! Encoding writes the header and the body straight into the output buffer
//! (no intermediate copy), with the same header format and limit.

use std::fmt;
use std::io::{self, Write};
use std::marker::PhantomData;

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::Error;

/// The default frame limit: 16 MiB. Large enough for any tree spec or
/// process listing we send; small enough that a hostile length prefix
/// cannot make a node reserve much memory.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Nesting limit for decoding a body. Our messages nest a few levels; user
/// payloads travel as opaque bytes and are decoded separately.
pub const MAX_DEPTH: usize = 128;

/// Length-prefixed MessagePack codec for frames of type `T`.
///
/// ```
/// use bytes::BytesMut;
/// use tokio_util::codec::{Decoder, Encoder};
/// use pool_proto::{Codec, Msg};
///
/// let mut codec = Codec::<Msg>::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Msg::Request { id: 7, body: pool_proto::Request::Ping }, &mut buf).unwrap();
/// let back = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(back, Msg::Request { id: 7, body: pool_proto::Request::Ping });
/// ```
#[derive(Debug)]
pub struct Codec<T> {
    /// The frame limit, checked on both sides.
    max_frame_len: usize,
    _frames: PhantomData<fn() -> T>,
}

impl<T> Codec<T> {
    /// A codec with the default 16 MiB limit.
    pub fn new() -> Self {
        Self::with_max_frame_len(MAX_FRAME_LEN)
    }

    /// A codec refusing frames over `max` bytes (body length).
    pub fn with_max_frame_len(max: usize) -> Self {
        // The prefix is a u32, so a limit above u32::MAX means "no limit".
        let max = max.min(u32::MAX as usize);
        Codec {
            max_frame_len: max,
            _frames: PhantomData,
        }
    }

    /// The frame limit in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The same limit for frames of another type (to switch a connection
    /// from the handshake to the message phase).
    pub fn retype<U>(&self) -> Codec<U> {
        Codec::with_max_frame_len(self.max_frame_len)
    }
}

impl<T> Default for Codec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Codec<T> {
    fn clone(&self) -> Self {
        Codec::with_max_frame_len(self.max_frame_len)
    }
}

impl<T: Serialize> Codec<T> {
    /// Appends one frame for `item` to `dst`. On error `dst` is unchanged.
    pub fn encode_into(&self, item: &T, dst: &mut BytesMut) -> Result<(), Error> {
        encode_frame(item, dst, self.max_frame_len)
    }
}

/// Appends a frame holding `item` to `dst`, refusing bodies over `max`.
pub fn encode_frame<T: Serialize + ?Sized>(
    item: &T,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), Error> {
    let start = dst.len();
    dst.put_u32(0);
    let mut w = dst.writer();
    let res = rmp_serde::encode::write_named(&mut w, item);
    let dst = w.into_inner();
    if let Err(e) = res {
        dst.truncate(start);
        return Err(Error::Encode {
            reason: e.to_string(),
        });
    }
    let len = dst.len() - start - HEADER_LEN;
    if len > max {
        dst.truncate(start);
        return Err(Error::FrameTooLarge {
            len: len as u64,
            max,
        });
    }
    dst[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Decodes a whole MessagePack body into `T`, refusing leftover bytes and
/// nesting deeper than [`MAX_DEPTH`].
pub fn decode_exact<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    // Fast path: read the slice in place (`from_read_ref` hands strings and
    // byte strings to serde without copying them through a scratch buffer).
    // That reader does not tell how far it got, so ask for one more marker
    // byte: running out of input right there means the body held exactly
    // one value.
    let mut de = rmp_serde::Deserializer::from_read_ref(body);
    de.set_max_depth(MAX_DEPTH);
    if let Ok(value) = T::deserialize(&mut de) {
        match de.deserialize_option(NextByte) {
            Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
                if e.kind() == io::ErrorKind::UnexpectedEof =>
            {
                return Ok(value);
            }
            _ => {}
        }
    }
    // Anything else (an error, or bytes left over) takes the counting path,
    // which gives the error with its details.
    decode_exact_counting(body)
}

/// Reads one marker and nothing more: `deserialize_option` fails at once
/// when the input is used up, and otherwise hands over (`visit_none` for a
/// nil marker, `visit_some` for any other) without reading the value.
struct NextByte;

impl<'de> Visitor<'de> for NextByte {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the end of the frame body")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Ok(())
    }
}

/// [`decode_exact`] through a reader that counts what it consumed.
fn decode_exact_counting<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let mut rest: &[u8] = body;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| Error::Decode {
        reason: e.to_string(),
        len: body.len(),
    })?;
    drop(de);
    if !rest.is_empty() {
        return Err(Error::TrailingBytes {
            extra: rest.len(),
            len: body.len(),
        });
    }
    Ok(value)
}

/// Writes a MessagePack body for `item` to `w` (no header).
pub fn encode_body<T: Serialize + ?Sized, W: Write>(item: &T, w: &mut W) -> Result<(), Error> {
    rmp_serde::encode::write_named(w, item).map_err(|e| Error::Encode {
        reason: e.to_string(),
    })
}

impl<T: DeserializeOwned> Decoder for Codec<T> {
    type Item = T;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<T>, Error> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        // Check the announced length before reserving room for it, so that
        // a hostile prefix allocates nothing and the error says how big it
        // claimed.
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as u64;
        if len > self.max_frame_len as u64 {
            return Err(Error::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        // Consume whole frames only, so that `decode_eof` can still see a
        // frame that was cut short.
        let frame_len = HEADER_LEN + len as usize;
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            return Ok(None);
        }
        // Decode the body where it lies and drop the frame's bytes from the
        // buffer: no per-frame buffer is split off (that showed in
        // profiles of a reader of small frames).
        let item = decode_exact(&src[HEADER_LEN..frame_len]);
        src.advance(frame_len);
        item.map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<T>, Error> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            None => {
                let expected = if src.len() >= HEADER_LEN {
                    Some(u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize + HEADER_LEN)
                } else {
                    None
                };
                Err(Error::Truncated {
                    buffered: src.len(),
                    expected,
                })
            }
        }
    }
}

impl<T: Serialize> Encoder<T> for Codec<T> {
    type Error = Error;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), Error> {
        encode_frame(&item, dst, self.max_frame_len)
    }
}

impl<T: Serialize> Encoder<&T> for Codec<T> {
    type Error = Error;

    fn encode(&mut self, item: &T, dst: &mut BytesMut) -> Result<(), Error> {
        encode_frame(item, dst, self.max_frame_len)
    }
}
