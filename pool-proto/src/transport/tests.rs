use std::io::ErrorKind;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Reads one byte, or the error that ended the stream.
async fn read_byte(io: &mut BoxIo) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match io.read(&mut b).await? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// A listener hands out every connection made to its address, in order,
/// with the dialer's address; bytes flow both ways.
#[tokio::test]
async fn connections_reach_the_listener_with_their_origin() {
    let net = MemNetwork::new();
    let mut l = net.bind("a:1").unwrap();
    assert_eq!(l.local_addr().unwrap(), "a:1");
    let mut out = net.dialer("b:1").connect("a:1").await.unwrap();
    let mut out2 = net.dialer("c:1").connect("a:1").await.unwrap();
    let (mut inc, from) = l.accept().await.unwrap();
    assert_eq!(from, "b:1");
    let (_inc2, from2) = l.accept().await.unwrap();
    assert_eq!(from2, "c:1");
    out.write_all(&[7]).await.unwrap();
    assert_eq!(read_byte(&mut inc).await.unwrap(), Some(7));
    inc.write_all(&[8]).await.unwrap();
    assert_eq!(read_byte(&mut out).await.unwrap(), Some(8));
    // A clean close is an EOF, not an error.
    drop(out);
    assert_eq!(read_byte(&mut inc).await.unwrap(), None);
    out2.shutdown().await.unwrap();
}

/// An address is bound once; it can be bound again after its listener is
/// dropped, and connections to a dropped listener are refused.
#[tokio::test]
async fn an_address_is_bound_once_until_its_listener_drops() {
    let net = MemNetwork::new();
    let l = net.bind("a:1").unwrap();
    assert_eq!(net.bind("a:1").unwrap_err().kind(), ErrorKind::AddrInUse);
    drop(l);
    let e = net.dialer("b:1").connect("a:1").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let _again = net.bind("a:1").unwrap();
    assert!(net.dialer("b:1").connect("a:1").await.is_ok());
}

/// A connection queued at a listener that is dropped before accepting it
/// sees its peer close.
#[tokio::test]
async fn a_dropped_listener_closes_what_it_did_not_accept() {
    let net = MemNetwork::new();
    let l = net.bind("a:1").unwrap();
    let mut out = net.dialer("b:1").connect("a:1").await.unwrap();
    drop(l);
    assert_eq!(read_byte(&mut out).await.unwrap(), None);
}

/// `refuse` refuses new connections to one address (live ones go on);
/// `allow` undoes it.
#[tokio::test]
async fn refuse_and_allow() {
    let net = MemNetwork::new();
    let mut l = net.bind("a:1").unwrap();
    let mut live = net.dialer("b:1").connect("a:1").await.unwrap();
    let (mut inc, _) = l.accept().await.unwrap();
    net.refuse("a:1");
    let e = net.dialer("b:1").connect("a:1").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    live.write_all(&[1]).await.unwrap();
    assert_eq!(read_byte(&mut inc).await.unwrap(), Some(1));
    net.allow("a:1");
    assert!(net.dialer("b:1").connect("a:1").await.is_ok());
}

/// A partition cuts the live connections between two addresses (a read
/// waiting on either end fails at once) and refuses new ones both ways,
/// leaving other pairs alone; `heal` lets them connect again.
#[tokio::test]
async fn a_partition_cuts_and_refuses_one_pair() {
    let net = MemNetwork::new();
    let mut la = net.bind("a:1").unwrap();
    let _lb = net.bind("b:1").unwrap();
    let mut ab = net.dialer("b:1").connect("a:1").await.unwrap();
    let (mut ba, _) = la.accept().await.unwrap();
    let mut ca = net.dialer("c:1").connect("a:1").await.unwrap();
    let (mut ac, _) = la.accept().await.unwrap();
    let waiting = tokio::spawn(async move { read_byte(&mut ba).await });
    tokio::task::yield_now().await;
    net.partition("a:1", "b:1");
    let e = waiting.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert!(ab.write_all(&[1]).await.is_err());
    for (from, to) in [("a:1", "b:1"), ("b:1", "a:1")] {
        let e = net.dialer(from).connect(to).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{from} -> {to}");
    }
    ca.write_all(&[2]).await.unwrap();
    assert_eq!(read_byte(&mut ac).await.unwrap(), Some(2));
    net.heal("b:1", "a:1");
    assert!(net.dialer("b:1").connect("a:1").await.is_ok());
}

/// `cut` resets every live connection to or from one address and says how
/// many; new connections are still accepted.
#[tokio::test]
async fn cut_resets_the_live_connections_of_one_address() {
    let net = MemNetwork::new();
    let mut la = net.bind("a:1").unwrap();
    let mut lb = net.bind("b:1").unwrap();
    let mut to_a = net.dialer("x:1").connect("a:1").await.unwrap();
    let (_a_in, _) = la.accept().await.unwrap();
    let mut from_a = net.dialer("a:1").connect("b:1").await.unwrap();
    let (_b_in, _) = lb.accept().await.unwrap();
    let mut other = net.dialer("x:1").connect("b:1").await.unwrap();
    let (mut b_other, _) = lb.accept().await.unwrap();
    assert_eq!(net.cut("a:1"), 2);
    assert_eq!(net.cut("a:1"), 0);
    assert!(read_byte(&mut to_a).await.is_err());
    assert!(from_a.write_all(&[1]).await.is_err());
    other.write_all(&[3]).await.unwrap();
    assert_eq!(read_byte(&mut b_other).await.unwrap(), Some(3));
    assert!(net.dialer("x:1").connect("a:1").await.is_ok());
}
