//! Unit tests of the dial-failure table and of the causes in words.

use std::io;

use pool_proto::NodeId;

use super::*;

/// A refused connection reads "cannot connect to ADDR: connection
/// refused", without the OS error number; other errors keep their text.
#[test]
fn causes_name_the_address_in_words() {
    let refused = crate::Error::Io {
        what: "connecting".into(),
        source: io::Error::from(io::ErrorKind::ConnectionRefused),
    };
    assert_eq!(
        describe("127.0.0.1:1", &refused),
        "cannot connect to 127.0.0.1:1: connection refused"
    );
    let other = crate::Error::Io {
        what: "connecting".into(),
        source: io::Error::other("no route in the test transport"),
    };
    assert_eq!(
        describe("mem:9", &other),
        "cannot connect to mem:9: no route in the test transport"
    );
    let slow = crate::Error::Unreachable {
        node: NodeId::from_u64(9),
    };
    assert_eq!(
        describe("127.0.0.1:9", &slow),
        "cannot connect to 127.0.0.1:9: no answer in time"
    );
}

/// A run of failures keeps the time of its first one and the latest
/// cause; a connection that opens (or the node leaving) clears it; the
/// list is in node order.
#[test]
fn failures_are_kept_until_a_connection_opens() {
    let t = DialFailures::default();
    let (a, b) = (NodeId::from_u64(2), NodeId::from_u64(1));
    t.failed(a, "first".into());
    let since = t.list()[0].since_ms;
    t.failed(a, "second".into());
    t.failed(b, "other".into());
    let list = t.list();
    assert_eq!(list.iter().map(|u| u.node).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(list[1].cause, "second");
    assert_eq!(list[1].since_ms, since);
    assert_eq!(t.cause(a).as_deref(), Some("second"));
    t.clear(a);
    assert_eq!(t.cause(a), None);
    assert_eq!(t.list().len(), 1);
}
