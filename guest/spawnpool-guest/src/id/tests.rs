use super::*;

/// The ABI's 16 bytes are node then serial, each little endian.
#[test]
fn byte_layout_is_node_then_serial_little_endian() {
    let pid = Pid::new(0x0102030405060708, 0x1112131415161718);
    let bytes = pid.to_bytes();
    assert_eq!(bytes[..8], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(bytes[8..], [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
    assert_eq!(Pid::from_bytes(bytes), pid);
    let r = Ref::new(u64::MAX, 0);
    assert_eq!(Ref::from_bytes(r.to_bytes()), r);
    // The i64 arguments carry the same bits, also past i64::MAX.
    assert_eq!(r.abi(), (-1, 0));
}

/// Text forms are the node's: 16 hex digits, brackets, `#Ref` for refs.
#[test]
fn text_forms_match_the_node() {
    let pid = Pid::new(0xab, 17);
    assert_eq!(pid.to_string(), "<00000000000000ab.17>");
    assert_eq!("<00000000000000ab.17>".parse::<Pid>().unwrap(), pid);
    assert_eq!("000000ab.17".parse::<Pid>().unwrap(), pid);
    let r = Ref::new(0xab, 9);
    assert_eq!(r.to_string(), "#Ref<00000000000000ab.9>");
    assert_eq!("#Ref<00000000000000ab.9>".parse::<Ref>().unwrap(), r);
    for bad in [
        "",
        "<ab.1>",
        "<00000000000000ab.>",
        "<00000000000000ab.x>",
        "<zz000000.1>",
    ] {
        assert!(bad.parse::<Pid>().is_err(), "{bad:?} parsed");
    }
}

/// In MessagePack a pid is the 2-tuple `[node, serial]`, the bytes the
/// node's `pool_proto::Pid` writes (tests/src/guests.rs checks the node's
/// side against the same bytes).
#[test]
fn msgpack_is_a_pair_of_integers() {
    let pid = Pid::new(0x3f2a9c1e04d1b2aa, 17);
    let bytes = crate::encode(&pid).unwrap();
    assert_eq!(
        bytes,
        [0x92, 0xcf, 0x3f, 0x2a, 0x9c, 0x1e, 0x04, 0xd1, 0xb2, 0xaa, 0x11]
    );
    assert_eq!(crate::decode::<Pid>(&bytes).unwrap(), pid);
    let r = Ref::new(1, 2);
    assert_eq!(crate::encode(&r).unwrap(), [0x92, 0x01, 0x02]);
    assert_eq!(crate::decode::<Ref>(&[0x92, 0x01, 0x02]).unwrap(), r);
    assert!(crate::decode::<Pid>(&[0x91, 0x01]).is_err());
}

/// In JSON (spawn arguments) a pid is its text.
#[test]
fn json_is_the_text_form() {
    let pid = Pid::new(0x3f2a9c1e04d1b2aa, 17);
    let json = serde_json::to_string(&pid).unwrap();
    assert_eq!(json, "\"<3f2a9c1e04d1b2aa.17>\"");
    assert_eq!(serde_json::from_str::<Pid>(&json).unwrap(), pid);
    assert!(serde_json::from_str::<Pid>("\"nope\"").is_err());
}
