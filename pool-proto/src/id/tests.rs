//! Unit tests of the id text forms and their serde encodings.

use super::*;

#[test]
fn pid_text_round_trips_and_rejects_garbage() {
    let pid = Pid::new(NodeId::from_u64(0x3f2a9c1e04d1b2aa), 17);
    assert_eq!(pid.to_string(), "<3f2a9c1e04d1b2aa.17>");
    assert_eq!("<3f2a9c1e04d1b2aa.17>".parse::<Pid>().unwrap(), pid);
    assert_eq!("3f2a9c1e04d1b2aa.17".parse::<Pid>().unwrap(), pid);
    // Short node ids print padded to 16 digits and parse from 8.
    let small = Pid::new(NodeId::from_u64(0xabc), 1);
    assert_eq!(small.to_string(), "<0000000000000abc.1>");
    assert_eq!("<00000abc.1>".parse::<Pid>().unwrap(), small);
    for bad in [
        "",
        "<>",
        "<3f2a.17>",
        "<3f2a9c1e04d1b2aa>",
        "<3f2a9c1e04d1b2aa.>",
        "<3f2a9c1e04d1b2aa.-1>",
        "<zz2a9c1e04d1b2aa.1>",
        "<3f2a9c1e04d1b2aa00.1>",
        "<3f2a9c1e04d1b2aa.99999999999999999999999>",
    ] {
        assert!(bad.parse::<Pid>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn ids_are_text_in_json_and_integers_in_msgpack() {
    let pid = Pid::new(NodeId::from_u64(0x3f2a9c1e04d1b2aa), 17);
    let json = serde_json::to_string(&pid).unwrap();
    assert_eq!(json, "\"<3f2a9c1e04d1b2aa.17>\"");
    assert_eq!(serde_json::from_str::<Pid>(&json).unwrap(), pid);
    let mp = rmp_serde::to_vec_named(&pid).unwrap();
    assert!(mp.len() <= 12, "compact form is {} bytes", mp.len());
    assert_eq!(rmp_serde::from_slice::<Pid>(&mp).unwrap(), pid);
    let r = Ref::new(NodeId::from_u64(5), 9);
    let mp = rmp_serde::to_vec_named(&r).unwrap();
    assert_eq!(rmp_serde::from_slice::<Ref>(&mp).unwrap(), r);
    let n = NodeId::from_u64(u64::MAX);
    assert_eq!(serde_json::to_string(&n).unwrap(), "\"ffffffffffffffff\"");
}

#[test]
fn pids_order_by_node_then_serial() {
    let a = Pid::new(NodeId::from_u64(1), 9);
    let b = Pid::new(NodeId::from_u64(2), 1);
    let c = Pid::new(NodeId::from_u64(2), 3);
    assert!(a < b && b < c);
}
