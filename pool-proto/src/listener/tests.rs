use tokio::task::JoinSet;

use super::*;
use crate::handshake::{self, Cookie, HandshakeConfig, Identity};
use crate::transport::{MemNetwork, Transport};
use crate::{Error, NodeId, NodeKind};

fn identity(name: &str, kind: NodeKind) -> Identity {
    Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind,
    }
}

fn cookie() -> Cookie {
    Cookie::new("listener-test", "test").unwrap()
}

fn limits(max: usize) -> Limits {
    Limits {
        max_connections: max,
        max_handshaking: DEFAULT_MAX_HANDSHAKING,
        handshake_timeout: Duration::from_secs(5),
        tls: None,
        refusal: "too many connections: try again later".into(),
        refuse_timeout: Duration::from_secs(2),
    }
}

/// Serves one accepted connection: the cookie handshake, then holds its
/// slot until the peer closes.
async fn serve(conn: Accepted) {
    let me = identity("srv", NodeKind::Worker);
    let cfg = HandshakeConfig::default();
    let Accepted {
        io,
        slot,
        handshake: hs,
        ..
    } = conn;
    match hs.bound(handshake::respond(io, &me, &cookie(), &cfg)).await {
        Some(Ok((mut c, _))) => {
            hs.done();
            use futures_util::StreamExt;
            while let Some(Ok(_)) = c.next().await {}
        }
        Some(Err(e)) => hs.failed(&e),
        None => {}
    }
    drop(slot);
}

/// Up to the limit, connections are served; one more is refused with a
/// handshake `Refused` carrying the configured reason; once a served one
/// closes, its slot serves the next.
#[tokio::test(start_paused = true)]
async fn over_the_limit_is_refused_with_the_reason() {
    let net = MemNetwork::new();
    let listener = Listener::new(net.bind("srv:1").unwrap(), limits(1));
    let stop = CancellationToken::new();
    let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
    let spawner = tasks.clone();
    let run = tokio::spawn(listener.run(stop.clone(), serve, move |f| {
        spawner.lock().unwrap().spawn(f);
    }));
    let dial = net.dialer("cli:1");
    let cfg = HandshakeConfig::default();
    let me = identity("cli", NodeKind::Worker);
    let first = dial.connect("srv:1").await.unwrap();
    let (held, _) = handshake::initiate(first, &me, &cookie(), &cfg)
        .await
        .unwrap();
    let second = dial.connect("srv:1").await.unwrap();
    match handshake::initiate(second, &me, &cookie(), &cfg).await {
        Err(Error::Refused { reason }) => assert!(reason.contains("too many connections")),
        other => panic!("expected a refusal, got {:?}", other.map(|x| x.1)),
    }
    drop(held);
    // The slot comes back when the served connection ends.
    let third = async {
        loop {
            let io = dial.connect("srv:1").await.unwrap();
            match handshake::initiate(io, &me, &cookie(), &cfg).await {
                Ok(c) => return c,
                Err(Error::Refused { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("{e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("a freed slot serves again");
    stop.cancel();
    run.await.unwrap();
}

/// A listener whose accept fails backs off instead of spinning, and
/// returns as soon as `stop` fires, even in the middle of a back-off.
#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_and_stop_ends_the_wait() {
    #[derive(Debug)]
    struct Failing(Arc<std::sync::atomic::AtomicU32>);
    impl Listen for Failing {
        fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, String)>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async { Err(io::Error::other("out of descriptors")) })
        }
        fn local_addr(&self) -> io::Result<String> {
            Ok("failing".into())
        }
    }
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut listener = Listener::new(Failing(calls.clone()), limits(4));
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    let start = Instant::now();
    let accepting = async {
        listener
            .accept(&stop, |_| panic!("nothing to refuse"))
            .await
            .is_none()
    };
    let stopping = async {
        // 5 + 10 + 20 + 40 + 80 ms of back-off: five or six attempts in
        // 200 ms, not thousands.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stopper.cancel();
    };
    let (none, ()) = tokio::join!(accepting, stopping);
    assert!(none);
    let n = calls.load(std::sync::atomic::Ordering::Relaxed);
    assert!((5..=7).contains(&n), "{n} accept attempts");
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}

/// Runs a listener over `net` at `srv:1` with `limits`, serving with
/// [`serve`]; returns the stop token.
fn run_listener(net: &MemNetwork, limits: Limits) -> CancellationToken {
    let listener = Listener::new(net.bind("srv:1").unwrap(), limits);
    let stop = CancellationToken::new();
    let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
    tokio::spawn(listener.run(stop.clone(), serve, move |f| {
        tasks.lock().unwrap().spawn(f);
    }));
    stop
}

/// True once the server closed `io` (a read ends), within 1 s.
async fn closed_by_server(io: &mut BoxIo) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), io.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Idle unauthenticated connections hold at most `max_handshaking`
/// handshaking slots: each new one drops the oldest, so a flood of them
/// (ten here, as many as the connection slots; four handshaking slots; a
/// handshake timeout far away) never keeps a legitimate peer from
/// completing its handshake at once, and never holds more than four
/// connection slots.
#[tokio::test(start_paused = true)]
async fn idle_unauthenticated_connections_cannot_starve_a_handshake() {
    let net = MemNetwork::new();
    let stop = run_listener(
        &net,
        Limits {
            max_handshaking: 4,
            handshake_timeout: Duration::from_secs(600),
            ..limits(10)
        },
    );
    let dial = net.dialer("cli:1");
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(dial.connect("srv:1").await.unwrap());
        tokio::task::yield_now().await;
    }
    let me = identity("cli", NodeKind::Worker);
    let io = dial.connect("srv:1").await.unwrap();
    let (ck, cfg) = (cookie(), HandshakeConfig::default());
    let legit = handshake::initiate(io, &me, &ck, &cfg);
    tokio::time::timeout(Duration::from_secs(1), legit)
        .await
        .expect("the handshake is not starved")
        .expect("the handshake succeeds");
    let mut still_open = 0;
    for io in &mut idle {
        if !closed_by_server(io).await {
            still_open += 1;
        }
    }
    assert!(still_open <= 4, "{still_open} idle connections still open");
    stop.cancel();
}

/// A connection that does not finish its handshake within the listener's
/// handshake timeout is closed, and its slot serves again.
#[tokio::test(start_paused = true)]
async fn a_handshake_that_takes_too_long_is_closed() {
    let net = MemNetwork::new();
    let stop = run_listener(
        &net,
        Limits {
            handshake_timeout: Duration::from_secs(3),
            ..limits(1)
        },
    );
    let dial = net.dialer("cli:1");
    let mut idle = dial.connect("srv:1").await.unwrap();
    let start = Instant::now();
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed in time");
    assert!(matches!(n, Ok(0) | Err(_)));
    assert!(start.elapsed() >= Duration::from_secs(3));
    let me = identity("cli", NodeKind::Worker);
    let io = dial.connect("srv:1").await.unwrap();
    handshake::initiate(io, &me, &cookie(), &HandshakeConfig::default())
        .await
        .expect("its slot serves again");
    stop.cancel();
}

/// A close or a reset before or during the hello is quiet (debug); a
/// wrong cookie or garbage is not.
#[test]
fn a_close_during_the_hello_is_quiet() {
    assert!(is_quiet_close(&Error::HandshakeClosed {
        stage: "waiting for Hello"
    }));
    assert!(is_quiet_close(&Error::Io(io::Error::from(
        io::ErrorKind::ConnectionReset
    ))));
    assert!(!is_quiet_close(&Error::HandshakeProtocol {
        expected: "Hello",
        got: "garbage".into()
    }));
    assert!(!is_quiet_close(&Error::HandshakeTimeout {
        after: Duration::from_secs(1),
        stage: "waiting for Hello"
    }));
}
