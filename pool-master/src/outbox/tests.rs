//! Tests of a connection's writer task against an in-memory socket, on
//! paused time: when the membership changes reach the node.

use pool_proto::codec::decode_exact;
use pool_proto::{DownReason, MAX_FRAME_LEN, MembersDelta, NodeId, NodeInfo, NodeKind};
use tokio::io::{AsyncReadExt, DuplexStream};

use super::*;
use crate::membership::SessionId;

fn worker(v: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::from_u64(v),
        name: format!("w{v}"),
        addr: format!("127.0.0.1:{}", 7000 + v),
        kind: NodeKind::Worker,
        capacity: 1,
        labels: Default::default(),
    }
}

/// The next frame the node reads, decoded.
async fn read(node: &mut DuplexStream) -> Msg {
    let len = node.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len];
    node.read_exact(&mut body).await.unwrap();
    decode_exact(&body).unwrap()
}

fn delta(msg: Msg) -> MembersDelta {
    match msg {
        Msg::MembersDelta(d) => d,
        other => panic!("a delta, not {other:?}"),
    }
}

/// Node w1 joined over an in-memory socket of `pipe` bytes: its link, the
/// node's end of the socket (the Welcome not read yet) and the writer task.
fn joined(
    feed: &Arc<MemberFeed>,
    pipe: usize,
) -> (Arc<NodeLink>, DuplexStream, tokio::task::JoinHandle<()>) {
    let conn = Conn {
        session: SessionId(1),
        node: NodeId::from_u64(1),
        name: "w1".into(),
    };
    let (link, rx) = NodeLink::new(conn, MAX_FRAME_LEN, feed.clone(), CancellationToken::new());
    let link = Arc::new(link);
    let (socket, node) = tokio::io::duplex(pipe);
    let writer = tokio::spawn(run_writer(link.clone(), rx, socket));
    link.welcome(
        0,
        Welcome {
            members: vec![worker(1)],
            report_interval_ms: 500,
            node_timeout_ms: 3000,
            fence: None,
            members_next: 0,
        },
    );
    (link, node, writer)
}

/// A lone change reaches a joined node at once (the paused clock does not
/// move: the writer never waited); changes right after it gather into one
/// delta sent when the wait ends; a `Down` during a wait goes at once,
/// with the changes gathered before it, in order and numbered on.
#[tokio::test(start_paused = true)]
async fn a_lone_change_goes_at_once_and_a_burst_gathers() {
    let feed = Arc::new(MemberFeed::default());
    feed.record(&MemberChange::Up(worker(1)));
    let (link, mut node, writer) = joined(&feed, 1 << 20);
    let Msg::Response {
        body: Response::Welcome(w),
        ..
    } = read(&mut node).await
    else {
        panic!("a Welcome first")
    };
    assert_eq!(w.members_next, 1);

    let t0 = Instant::now();
    feed.record(&MemberChange::Up(worker(2)));
    let d = delta(read(&mut node).await);
    assert_eq!((d.first, d.changes.len()), (1, 1));
    assert_eq!(Instant::now(), t0, "a lone change waited");

    feed.record(&MemberChange::Up(worker(3)));
    feed.record(&MemberChange::Up(worker(4)));
    let d = delta(read(&mut node).await);
    assert_eq!(
        d.changes,
        vec![MemberChange::Up(worker(3)), MemberChange::Up(worker(4))]
    );
    assert_eq!(d.first, 2);
    assert_eq!(Instant::now() - t0, linger::PUSH_LINGER);

    let t1 = Instant::now();
    feed.record(&MemberChange::Up(worker(5)));
    let down = MemberChange::Down {
        node: NodeId::from_u64(3),
        reason: DownReason::Left,
    };
    feed.record(&down);
    let d = delta(read(&mut node).await);
    assert_eq!(d.first, 4);
    assert_eq!(d.changes, vec![MemberChange::Up(worker(5)), down]);
    assert_eq!(Instant::now(), t1, "a Down waited");

    link.closed.cancel();
    writer.await.unwrap();
}

/// During a wait, changes that reach the size cap's step go out at once
/// rather than at the wait's end.
#[tokio::test(start_paused = true)]
async fn a_storm_is_sent_once_it_reaches_the_cap() {
    let feed = Arc::new(MemberFeed::default());
    let (link, mut node, writer) = joined(&feed, 1 << 22);
    read(&mut node).await;
    feed.record(&MemberChange::Up(worker(2)));
    assert_eq!(delta(read(&mut node).await).first, 0);
    // Now in a wait: a storm of joins, well past the cap's step.
    let t0 = Instant::now();
    let mut v = 3;
    while feed.read_log().bytes() < 3 * linger::CAP_STEP {
        feed.record(&MemberChange::Up(worker(v)));
        v += 1;
    }
    let d = delta(read(&mut node).await);
    assert_eq!(d.first, 1);
    assert_eq!(Instant::now(), t0, "waited for the wait's end");
    link.closed.cancel();
    writer.await.unwrap();
}

/// Pieces and the buffer behind them reach the socket whole and in order,
/// even when the socket takes a few bytes at a time (partial vectored
/// writes resume where they stopped).
#[tokio::test]
async fn pieces_are_written_whole_and_in_order() {
    let (mut socket, mut node) = tokio::io::duplex(7);
    let pieces = vec![
        Bytes::from_static(b"head-"),
        Bytes::new(),
        Bytes::from((0..200u8).collect::<Vec<u8>>()),
    ];
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        node.read_to_end(&mut got).await.unwrap();
        got
    });
    write_pieces(&mut socket, &pieces, b"-rest").await.unwrap();
    drop(socket);
    let mut expected = b"head-".to_vec();
    expected.extend(0..200u8);
    expected.extend_from_slice(b"-rest");
    assert_eq!(reader.await.unwrap(), expected);
}

/// A write buffer given back is lent again, emptied; one grown past
/// `KEEP_BUF` is freed rather than kept.
#[test]
fn write_buffers_are_reused_unless_too_large() {
    let pool = BufPool {
        free: Mutex::new(Vec::new()),
    };
    let mut buf = pool.take();
    buf.extend_from_slice(b"frame");
    let at = buf.as_ptr();
    pool.give(buf);
    let again = pool.take();
    assert_eq!((again.as_ptr(), again.len()), (at, 0));
    let mut big = BytesMut::with_capacity(KEEP_BUF + 1);
    big.extend_from_slice(b"x");
    pool.give(big);
    pool.give(again);
    assert_eq!(pool.lock().len(), 1);
}

/// Frame bytes of `msg`.
fn framed(msg: &Msg) -> BytesMut {
    let mut b = BytesMut::new();
    encode_frame(msg, &mut b, MAX_FRAME_LEN).unwrap();
    b
}

/// The bytes the node can read right now, without waiting.
fn readable_now(node: &mut DuplexStream) -> Vec<u8> {
    use futures_util::FutureExt;
    let mut got = vec![0; 4096];
    match node.read(&mut got).now_or_never() {
        Some(Ok(n)) => got.truncate(n),
        _ => got.clear(),
    }
    got
}

/// On an idle link, `send_now` writes the frames itself: the node can
/// read them before the writer task ran at all (one thread, no yield),
/// and the buffer is left empty for the next ones.
#[tokio::test(flavor = "current_thread")]
async fn an_idle_link_is_written_by_the_sender_itself() {
    let feed = Arc::new(MemberFeed::default());
    let (link, mut node, writer) = joined(&feed, 1 << 20);
    read(&mut node).await;
    // Let the writer finish its round after the Welcome.
    while link.unwritten.load(Ordering::SeqCst) != 0 {
        tokio::task::yield_now().await;
    }
    let ack = framed(&Msg::ReportAck { seq: 7 });
    let mut batch = ack.clone();
    link.send_now(&mut batch);
    assert!(batch.is_empty());
    assert_eq!(readable_now(&mut node), ack.to_vec());
    link.closed.cancel();
    writer.await.unwrap();
}

/// `send_now` never overtakes: not frames queued before it, not the
/// membership changes its node lacks.
#[tokio::test(flavor = "current_thread")]
async fn a_direct_write_waits_behind_queued_frames_and_changes() {
    let feed = Arc::new(MemberFeed::default());
    let (link, mut node, writer) = joined(&feed, 1 << 20);
    read(&mut node).await;
    while link.unwritten.load(Ordering::SeqCst) != 0 {
        tokio::task::yield_now().await;
    }
    // Queued, the writer not run yet: the ack goes behind the Pong.
    link.respond(3, Response::Pong);
    link.send_now(&mut framed(&Msg::ReportAck { seq: 1 }));
    assert!(matches!(read(&mut node).await, Msg::Response { id: 3, .. }));
    assert!(matches!(read(&mut node).await, Msg::ReportAck { seq: 1 }));
    while link.unwritten.load(Ordering::SeqCst) != 0 {
        tokio::task::yield_now().await;
    }
    // A change the node lacks goes ahead of the ack.
    feed.record(&MemberChange::Up(worker(2)));
    link.send_now(&mut framed(&Msg::ReportAck { seq: 2 }));
    assert_eq!(delta(read(&mut node).await).first, 0);
    assert!(matches!(read(&mut node).await, Msg::ReportAck { seq: 2 }));
    link.closed.cancel();
    writer.await.unwrap();
}

/// What a direct write could not put into a full socket reaches the node
/// whole, before the frames sent after it.
#[tokio::test]
async fn the_rest_of_a_direct_write_goes_before_later_frames() {
    let feed = Arc::new(MemberFeed::default());
    let (link, mut node, writer) = joined(&feed, 64);
    read(&mut node).await;
    while link.unwritten.load(Ordering::SeqCst) != 0 {
        tokio::task::yield_now().await;
    }
    let mut batch = BytesMut::new();
    for seq in 0..20 {
        batch.extend_from_slice(&framed(&Msg::ReportAck { seq }));
    }
    link.send_now(&mut batch);
    link.respond(9, Response::Pong);
    for seq in 0..20 {
        assert!(matches!(read(&mut node).await, Msg::ReportAck { seq: s } if s == seq));
    }
    assert!(matches!(read(&mut node).await, Msg::Response { id: 9, .. }));
    link.closed.cancel();
    writer.await.unwrap();
}
