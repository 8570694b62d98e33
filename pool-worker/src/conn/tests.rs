use std::time::Duration;

use futures_util::FutureExt;
use pool_proto::{Dest, MAX_FRAME_LEN, MsgKind, NodeId, Payload, Pid, SendMsg};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio_util::codec::Decoder;
use tokio_util::codec::Framed;

use super::*;
use crate::tasks::Tasks;

fn message(bytes: usize) -> Msg {
    Msg::Send(SendMsg {
        to: Dest::Pid(Pid::new(NodeId::random(), 1)),
        from: None,
        kind: MsgKind::Plain,
        payload: Payload(vec![7; bytes]),
        trace: None,
    })
}

/// Runs a connection over an in-memory pipe of `pipe` bytes; returns
/// the sender, the far end and the close reason when it comes.
fn start(
    pipe: usize,
    limit: usize,
) -> (ConnTx, tokio::io::DuplexStream, oneshot::Receiver<String>) {
    let (near, far) = tokio::io::duplex(pipe);
    let (tx, crx) = ConnTx::pending(limit, MAX_FRAME_LEN, &CancellationToken::new());
    let (done_tx, done_rx) = oneshot::channel();
    run(
        &Tasks::new(tokio::runtime::Handle::current()),
        Framed::new(near, Codec::<Msg>::new()),
        crx,
        None,
        MAX_FRAME_LEN,
        |_| {},
        move |why| {
            let _ = done_tx.send(why.to_string());
        },
    );
    (tx, far, done_rx)
}

/// Reads message frames from `far` in order, each within 5 s (`what`
/// says what failed otherwise), and checks their payloads' sizes.
async fn expect_sizes(far: tokio::io::DuplexStream, sizes: &[usize], what: &str) {
    let mut reader = FramedRead::new(far, Codec::<Msg>::new());
    for &want in sizes {
        let Msg::Send(m) = tokio::time::timeout(Duration::from_secs(5), reader.next())
            .await
            .expect(what)
            .unwrap()
            .unwrap()
        else {
            panic!("not a Send frame");
        };
        assert_eq!(m.payload.0.len(), want);
    }
}

/// A peer that stops reading: the queue grows to the byte bound, then
/// the next send closes the connection, which reports why; the queue
/// never held more than the bound (plus the frame in hand).
#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_at_the_bound() {
    let limit = 256 * 1024;
    let (tx, _far, done) = start(8 * 1024, limit);
    let mut sent = 0;
    while tx.send(message(10_000)) {
        sent += 1;
        assert!(tx.queued_bytes() <= limit, "{} queued", tx.queued_bytes());
        assert!(sent < 1000, "the bound never closed the connection");
        // Let the writer run: it fills the pipe, then blocks.
        tokio::task::yield_now().await;
    }
    assert!(tx.is_closed());
    let why = tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .expect("the close is reported although the writer is blocked")
        .unwrap();
    assert!(
        why.contains("stopped reading") && why.contains("256KiB"),
        "{why}"
    );
}

/// A peer that reads gets everything, and the count returns to zero.
#[tokio::test]
async fn a_reading_peer_drains_the_queue() {
    let (tx, mut far, _done) = start(8 * 1024, 64 * 1024);
    let reader = tokio::spawn(async move {
        let mut total = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while total < 200 * 1_010 {
            let n = far.read(&mut buf).await.unwrap();
            assert!(n > 0);
            total += n;
        }
        far
    });
    for _ in 0..200 {
        // Waits for room like a well-behaved sender would not; here the
        // reader keeps up, so the bound is never reached.
        while tx.queued_bytes() > 32 * 1024 {
            tokio::task::yield_now().await;
        }
        assert!(tx.send(message(1000)));
    }
    let _far = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.queued_bytes(), 0);
    assert!(tx.is_empty());
    assert!(!tx.is_closed());
}

/// One frame larger than the bound still goes through an empty queue
/// (the bound is on what piles up, not on a single frame).
#[tokio::test]
async fn one_frame_always_fits() {
    let (tx, _far, _done) = start(1024 * 1024, 64 * 1024);
    assert!(tx.send(message(100 * 1024)));
    assert!(!tx.is_closed());
}

/// Over the busy limit the queue says so, and `drained` waits until
/// the writer has taken the bytes; a reading peer lets it through.
#[tokio::test]
async fn a_busy_queue_drains_when_the_peer_reads() {
    let (tx, mut far, _done) = start(64 * 1024, 64 * 1024 * 1024);
    // Twice: the writer takes the first busy batch (and blocks writing
    // it into the full pipe); the second stays queued behind it.
    for _ in 0..2 {
        while !tx.is_busy() {
            assert!(tx.send(message(10_000)));
            assert!(tx.queued_bytes() <= BUSY_LIMIT + 11_000);
        }
        if tx.queued_bytes() > 0 {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
    }
    assert!(tx.is_busy());
    // The writer is blocked on the full pipe: the queue stays busy.
    let mut drained = Box::pin(tx.drained());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut drained)
            .await
            .is_err(),
        "drained while the peer reads nothing"
    );
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if far.read(&mut buf).await.unwrap_or(0) == 0 {
                break;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("drained once the peer reads");
    assert!(!tx.is_busy());
    assert!(!tx.is_closed());
    tx.close();
    // Closed: nothing to wait for.
    tokio::time::timeout(Duration::from_secs(1), tx.drained())
        .await
        .unwrap();
    reader.abort();
}

/// Frames from several sending threads arrive whole, each sender's in
/// its order; a frame over the frame limit is dropped alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_whole_and_in_order() {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let (tx, crx) = ConnTx::pending(1 << 30, 4096, &CancellationToken::new());
    run(
        &Tasks::new(tokio::runtime::Handle::current()),
        Framed::new(near, Codec::<Msg>::new()),
        crx,
        None,
        MAX_FRAME_LEN,
        |_| {},
        |_| {},
    );
    const SENDERS: u64 = 4;
    const EACH: u64 = 2000;
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let mut m = message(8);
                    if let Msg::Send(sm) = &mut m {
                        sm.to = Dest::Pid(Pid::new(NodeId::from_u64(1), s));
                        sm.payload = Payload(i.to_be_bytes().to_vec());
                    }
                    assert!(tx.send(m));
                    if i == EACH / 2 {
                        // Over the 4 KiB frame limit: dropped alone.
                        assert!(tx.send(message(8000)));
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let mut reader = FramedRead::new(far, Codec::<Msg>::new());
    let mut next = [0u64; SENDERS as usize];
    let read_all = async {
        for _ in 0..SENDERS * EACH {
            let Msg::Send(m) = reader.next().await.unwrap().unwrap() else {
                panic!("not a Send frame");
            };
            let Dest::Pid(to) = m.to else {
                panic!("not a pid")
            };
            let s = to.serial() as usize;
            let i = u64::from_be_bytes(m.payload.0.as_slice().try_into().unwrap());
            assert_eq!(i, next[s], "sender {s} out of order");
            next[s] += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("every frame arrives");
    assert_eq!(next, [EACH; SENDERS as usize]);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !tx.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the writer counts what it wrote");
    assert!(!tx.is_closed());
}

/// One hop: on an idle connection a send writes its frame to the stream
/// itself, so the bytes are there when `send` returns, before the writer
/// task has run once (this runtime has one thread and is not yielded to).
/// The next frame, sent while the pipe is full, waits for the writer and
/// still arrives after the first.
#[tokio::test(flavor = "current_thread")]
async fn an_idle_connection_is_written_by_the_sender_itself() {
    let (tx, mut far, _done) = start(64 * 1024, 1 << 20);
    assert!(tx.send(message(100)));
    let mut got = vec![0u8; 64 * 1024];
    let n = far
        .read(&mut got)
        .now_or_never()
        .expect("the frame is in the pipe without the writer running")
        .unwrap();
    assert!(n > 100, "the whole frame was written: {n} bytes");
    assert!(tx.is_empty(), "nothing is left for the writer");

    // Fill the pipe: what does not fit waits for the writer, in order.
    assert!(tx.send(message(60_000)));
    assert!(tx.send(message(60_000)));
    assert!(!tx.is_empty(), "the rest waits for the writer");
    expect_sizes(far, &[60_000, 60_000], "the writer sends the rest").await;
}

/// Inside a batch (a process's poll) the sends to an idle connection are
/// held and leave together, in order, with one direct write when the
/// batch ends, still without the writer task (which never runs here).
#[tokio::test(flavor = "current_thread")]
async fn a_batch_of_sends_leaves_in_one_write_when_it_ends() {
    let (tx, mut far, _done) = start(64 * 1024, 1 << 20);
    let mut got = vec![0u8; 64 * 1024];
    supervisor::remote::batch_sends(|| {
        for len in [10, 20, 30] {
            assert!(tx.send(message(len)));
        }
        assert!(
            far.read(&mut got).now_or_never().is_none(),
            "a frame left before the batch ended"
        );
        assert!(!tx.is_empty(), "the held frames count as unwritten");
    });
    assert!(tx.is_empty(), "the batch's flush wrote every frame");
    let n = far
        .read(&mut got)
        .now_or_never()
        .expect("the frames are in the pipe without the writer running")
        .unwrap();
    let mut buf = BytesMut::from(&got[..n]);
    let mut codec = Codec::<Msg>::new();
    for want in [10, 20, 30] {
        let Some(Msg::Send(m)) = codec.decode(&mut buf).unwrap() else {
            panic!("not the next Send frame");
        };
        assert_eq!(m.payload.0.len(), want);
    }
    assert!(buf.is_empty(), "one write held exactly the three frames");
}

/// A batch that sends more than it may hold hands its bytes to the writer
/// without waiting for the batch to end, and every frame still arrives in
/// order.
#[tokio::test(flavor = "current_thread")]
async fn a_batch_that_outgrows_its_bound_streams_through_the_writer() {
    let (tx, far, _done) = start(64 * 1024, 1 << 20);
    let sizes: Vec<usize> = (0..40).map(|i| 4_000 + i).collect();
    supervisor::remote::batch_sends(|| {
        for &len in &sizes {
            assert!(tx.send(message(len)));
        }
        assert!(
            lock(&tx.queue.out).woken,
            "the writer was not woken for the batch's bytes"
        );
    });
    expect_sizes(far, &sizes, "every frame arrives").await;
}

/// The first payload byte of a message frame.
fn tag(msg: &Msg) -> u8 {
    match msg {
        Msg::Send(m) => m.payload.0[0],
        other => panic!("not a message: {other:?}"),
    }
}

/// Writes a one-byte message tagged `t` to `far`.
async fn send_tagged(far: &mut tokio::net::TcpStream, t: u8) {
    use tokio::io::AsyncWriteExt;
    let mut buf = BytesMut::new();
    let mut msg = message(1);
    if let Msg::Send(m) = &mut msg {
        m.payload.0[0] = t;
    }
    encode_frame(&msg, &mut buf, MAX_FRAME_LEN).unwrap();
    far.write_all(&buf).await.unwrap();
}

/// A connection read on a runtime whose only thread is held by a task that
/// does not await: its reader cannot run, and [`Stalls`] reads the frame
/// from the socket on another thread; once the runtime runs again, its
/// reader still gets the frames after it, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_for_a_stalled_runtime_are_read_past_its_reactor() {
    let held = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut far = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (near, _) = listener.accept().await.unwrap();
    let near = pool_proto::transport::rebind(Box::new(near), held.handle()).unwrap();

    let got = Arc::new(Mutex::new(Vec::new()));
    let stalls = crate::stalls::Stalls::default();
    let (_tx, crx) = ConnTx::pending(1 << 20, MAX_FRAME_LEN, &CancellationToken::new());
    let g = got.clone();
    run(
        RunOn {
            tasks: &Tasks::new(held.handle().clone()),
            stalls: Some(&stalls),
        },
        Framed::new(near, Codec::<Msg>::new()),
        crx,
        None,
        MAX_FRAME_LEN,
        move |m| g.lock().unwrap().push(tag(&m)),
        |_| {},
    );
    let until = |what: &str, want: &[u8], mut step: Box<dyn FnMut() + '_>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().as_slice() != want {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: got {:?}",
                got.lock().unwrap()
            );
            step();
            std::thread::sleep(Duration::from_millis(1));
        }
    };

    // Read by the runtime's own reader.
    send_tagged(&mut far, 1).await;
    until("the first frame, by the reader", &[1], Box::new(|| {}));

    // Its only thread held: the reader cannot run.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    held.spawn(async move {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    started_rx.recv().unwrap();
    send_tagged(&mut far, 2).await;
    until(
        "the second frame, read past the stalled runtime",
        &[1, 2],
        Box::new(|| stalls.read_past()),
    );

    // Running again, the reader is woken for the frames after it.
    release_tx.send(()).unwrap();
    send_tagged(&mut far, 3).await;
    until(
        "the third frame, by the reader again",
        &[1, 2, 3],
        Box::new(|| {}),
    );
    held.shutdown_background();
}
