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
    if let Ok((mut c, _)) = handshake::respond(conn.io, &me, &cookie(), &cfg).await {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = c.next().await {}
    }
    drop(conn.slot);
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
