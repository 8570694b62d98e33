//! Unit tests of messages: local values moved, remote ones decoded, and
//! the two read through one API.

use super::*;
use serde::Deserialize;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[test]
fn local_value_is_moved_not_encoded() {
    let m = Message::new(Point { x: 1, y: 2 });
    assert!(m.is::<Point>());
    assert!(!m.is_remote());
    assert_eq!(m.take::<Point>().unwrap(), Point { x: 1, y: 2 });
}

#[test]
fn local_value_decodes_into_a_compatible_type() {
    let m = Message::new(Point { x: 1, y: 2 });
    let v: serde_json::Value = m.take().unwrap();
    assert_eq!(v, serde_json::json!({"x": 1, "y": 2}));
}

#[test]
fn remote_value_decodes_or_says_why_not() {
    let p = Payload::encode(&Point { x: 3, y: 4 }).unwrap();
    let m = Message::from_payload(p.clone());
    assert_eq!(m.peek(|p: &Point| p.x), Some(3));
    assert_eq!(m.take::<Point>().unwrap(), Point { x: 3, y: 4 });
    let err = Message::from_payload(p).take::<String>().unwrap_err();
    assert!(err.to_string().contains("String"), "{err}");
}

#[test]
fn local_only_values_refuse_to_leave_the_node() {
    let (tx, _rx) = std::sync::mpsc::channel::<u8>();
    let m = Message::local(tx);
    assert!(m.encode().is_err());
    assert!(m.downcast::<std::sync::mpsc::Sender<u8>>().is_ok());
}
