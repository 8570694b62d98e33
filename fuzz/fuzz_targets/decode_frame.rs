//! Arbitrary bytes into `Codec<Msg>`: `decode` until it wants more bytes or
//! fails, then `decode_eof` until the buffer is used up or it fails, as
//! `FramedRead` drives a connection. Nothing may panic, and every outcome
//! must be a message, "need more bytes" or a bad-input error. Each complete
//! frame's outcome must also match a plain reference decoder (rmp-serde
//! through a counting reader), which guards the codec's in-place fast path.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pool_proto::codec::{HEADER_LEN, MAX_DEPTH};
use pool_proto::{Codec, Error, Msg};
use serde::Deserialize;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the frame limit, so the small-limit paths (and
    // the boundary between them) get fuzzed too.
    let (limit, data) = match data.split_first() {
        Some((&b, rest)) if b & 0x80 != 0 => (usize::from(b & 0x7f) * 8, rest),
        _ => (pool_proto::MAX_FRAME_LEN, data),
    };
    let mut codec = Codec::<Msg>::with_max_frame_len(limit);
    let mut buf = BytesMut::from(data);
    let start_capacity = buf.capacity();
    let result = (|| {
        loop {
            let expected = whole_frame_body(&buf, limit).map(reference_decode);
            let got = codec.decode(&mut buf);
            if let Some(expected) = expected {
                assert_eq!(outcome(&got), expected, "codec and reference disagree");
            }
            match got? {
                Some(msg) => check(msg),
                None => break,
            }
        }
        while let Some(msg) = codec.decode_eof(&mut buf)? {
            check(msg);
        }
        Ok::<(), pool_proto::Error>(())
    })();
    if let Err(e) = result {
        assert!(e.is_bad_input(), "decoder gave a non-input error: {e:?}");
    } else {
        assert!(buf.is_empty(), "decode_eof returned None with bytes left");
    }
    // A legal frame's header may reserve room for its body (and the buffer
    // grows by doubling, as a Vec does); a length prefix over the limit must
    // not make the decoder reserve what it claims.
    assert!(
        buf.capacity() <= (2 * start_capacity).max(limit + HEADER_LEN),
        "buffer grew from {start_capacity} to {} with a limit of {limit}",
        buf.capacity()
    );
});

/// A decoded message re-encodes and decodes to itself. (Under the default
/// limit: the input may have used a shorter form, e.g. structs as arrays or
/// omitted defaults, so the re-encoding can exceed a small limit.)
fn check(msg: Msg) {
    let mut codec = Codec::<Msg>::new();
    let mut again = BytesMut::new();
    codec
        .encode_into(&msg, &mut again)
        .expect("a decoded message re-encodes");
    let back = codec
        .decode(&mut again)
        .expect("a re-encoded message decodes")
        .expect("a re-encoded message is a whole frame");
    assert!(again.is_empty());
    // Floats: NaN != NaN, so compare the encodings instead of the values.
    let mut first = BytesMut::new();
    let mut second = BytesMut::new();
    codec.encode_into(&msg, &mut first).expect("re-encodes");
    codec.encode_into(&back, &mut second).expect("re-encodes");
    assert_eq!(first, second, "decode(encode(m)) differs from m");
}

/// The body of the frame at the front of `buf`, if it is all there and
/// within the limit.
fn whole_frame_body(buf: &[u8], limit: usize) -> Option<&[u8]> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return None;
    }
    buf.get(HEADER_LEN..HEADER_LEN + len)
}

/// A decode outcome in comparable form: a message by its encoding (a
/// float may be NaN), an error by its kind and fields.
#[derive(Debug, PartialEq)]
enum Outcome {
    Msg(Vec<u8>),
    Decode(String, usize),
    Trailing(usize, usize),
    Other(String),
}

fn encoding(msg: &Msg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Codec::<Msg>::new()
        .encode_into(msg, &mut buf)
        .expect("a decoded message re-encodes");
    buf.to_vec()
}

fn outcome(result: &Result<Option<Msg>, Error>) -> Outcome {
    match result {
        Ok(Some(msg)) => Outcome::Msg(encoding(msg)),
        Err(Error::Decode { reason, len }) => Outcome::Decode(reason.clone(), *len),
        Err(Error::TrailingBytes { extra, len }) => Outcome::Trailing(*extra, *len),
        other => Outcome::Other(format!("{other:?}")),
    }
}

/// rmp-serde through a counting reader: the obvious implementation of
/// "exactly one message per body".
fn reference_decode(body: &[u8]) -> Outcome {
    let mut rest = body;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    match Msg::deserialize(&mut de) {
        Err(e) => Outcome::Decode(e.to_string(), body.len()),
        Ok(_) if !rest.is_empty() => Outcome::Trailing(rest.len(), body.len()),
        Ok(msg) => Outcome::Msg(encoding(&msg)),
    }
}
