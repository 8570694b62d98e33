//! The connection limits of the real binaries, each set by its flag:
//!
//! | limit | flag (env, config key) | default | test |
//! |---|---|---|---|
//! | handshake timeout | `--handshake-timeout` (`POOL_HANDSHAKE_TIMEOUT`, `handshake_timeout`) | 5s | [`a_stalled_handshake_is_cut_after_the_handshake_timeout`] |
//! | connections per listener | `--max-connections` (`POOL_MAX_CONNECTIONS`, `max_connections`) | master 16384, worker 1024 | [`the_connection_after_max_connections_is_refused`] |
//! | frame size | `--max-frame` (`POOL_MAX_FRAME`, `max_frame`) | 16MiB | [`an_oversize_frame_is_refused_and_other_traffic_goes_on`], [`the_master_closes_a_connection_that_sends_an_oversize_frame`] |
//! | queue for a slow peer | `--peer-queue` (`POOL_PEER_QUEUE`, `peer_queue`; workers) | 64MiB | [`a_peer_that_stops_reading_is_dropped_with_noconnection`] |
//!
//! Loopback only, ephemeral ports, a temporary directory per test, every
//! child killed when its test ends (also on a panic); bounded waits only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::BytesMut;
use pool_cluster_tests::{Cluster, wait_until};
use pool_proto::handshake::{HandshakeMsg, Initiator, Step};
use pool_proto::{Error, Identity, MAX_FRAME_LEN, NodeId, NodeKind};
use serde_json::{Value, json};

/// Writes one frame holding `msg`.
fn write_frame(s: &mut TcpStream, msg: &HandshakeMsg) -> Result<()> {
    let mut buf = BytesMut::new();
    pool_proto::codec::encode_frame(msg, &mut buf, MAX_FRAME_LEN)?;
    s.write_all(&buf)?;
    Ok(())
}

/// Reads one handshake frame.
fn read_frame(s: &mut TcpStream) -> Result<HandshakeMsg> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(pool_proto::codec::decode_exact(&body)?)
}

/// Runs the handshake with `addr` as a hidden node with the pool's
/// cookie: the open connection, or the handshake's error.
fn handshake(c: &Cluster, addr: &str) -> Result<Result<TcpStream, Error>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let me = Identity {
        node: NodeId::random(),
        name: "probe".into(),
        kind: NodeKind::Hidden,
    };
    let (mut init, hello) = Initiator::new(me, cookie);
    write_frame(&mut s, &hello)?;
    loop {
        match init.on_message(read_frame(&mut s)?) {
            Step::Send(m) => write_frame(&mut s, &m)?,
            Step::Done { send, .. } => {
                if let Some(m) = send {
                    write_frame(&mut s, &m)?;
                }
                return Ok(Ok(s));
            }
            Step::Failed { error, .. } => return Ok(Err(error)),
        }
    }
}

/// Waits up to `within` for the peer to close `s`; how long that took.
fn wait_closed(s: &mut TcpStream, within: Duration, what: &str) -> Result<Duration> {
    let start = Instant::now();
    let deadline = start + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{what}: the connection was still open after {within:?}");
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Ok(start.elapsed()), // reset: closed too
        }
    }
}

/// The peer address (`addr` of `poolctl nodes`) of the live worker `name`.
fn worker_addr(c: &Cluster, name: &str) -> Result<String> {
    let n = c
        .node(name)?
        .with_context(|| format!("{name} is not live"))?;
    n["addr"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no addr in {n}"))
}

/// The log so far of the worker process `name`.
fn worker_log(c: &Cluster, name: &str) -> String {
    c.workers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.log())
        .unwrap_or_default()
}

/// Waits until a line of `log()` has every one of `parts`; that line.
fn wait_log(what: &str, log: impl Fn() -> String, parts: &[&str]) -> Result<String> {
    wait_until(what, Duration::from_secs(10), || {
        log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
    })
    .map_err(|e| anyhow!("{e}; log:\n{}", log()))
}

/// A connection that opens and says nothing — or only half a frame
/// header — is closed by the master and by a worker once
/// `--handshake-timeout` (here 500ms) has passed, not before and not much
/// later, with a logged reason; both go on serving.
#[test]
fn a_stalled_handshake_is_cut_after_the_handshake_timeout() -> Result<()> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--handshake-timeout".into(), "500ms".into()];
    c.start_master()?;
    c.start_worker("w1", &["--handshake-timeout", "500ms"])?;
    c.wait_nodes(1)?;
    let w1 = worker_addr(&c, "w1")?;

    for (who, addr) in [("master", c.master_addr.clone()), ("w1", w1)] {
        // Silent.
        let mut s = TcpStream::connect(&addr)?;
        let took = wait_closed(&mut s, Duration::from_secs(10), who)?;
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(5),
            "{who} closed a silent connection after {took:?}, expected about 500ms"
        );
        // Half a frame header, then nothing.
        let mut s = TcpStream::connect(&addr)?;
        s.write_all(&[0, 0])?;
        let took = wait_closed(&mut s, Duration::from_secs(10), who)?;
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(5),
            "{who} closed a half-sent handshake after {took:?}, expected about 500ms"
        );
    }
    wait_log(
        "the master's reason",
        || c.master_log(),
        &["handshake failed", "timed out after 500ms"],
    )?;
    wait_log(
        "w1's reason",
        || worker_log(&c, "w1"),
        &["refused a connection", "timed out after 500ms"],
    )?;
    assert_eq!(c.node_names()?, vec!["w1".to_owned()]);
    Ok(())
}

/// With `--max-connections N`, N connections are served (here: held open
/// without a handshake) and the next one is refused at once with a reason
/// that names the flag, on the master (poolctl says so in one line) and on
/// a worker; once one closes, a new connection is served again.
#[test]
fn the_connection_after_max_connections_is_refused() -> Result<()> {
    let mut c = Cluster::new()?;
    // w1's master link is one of the master's 3.
    c.master_args = vec![
        "--max-connections".into(),
        "3".into(),
        "--handshake-timeout".into(),
        "60s".into(),
    ];
    c.start_master()?;
    c.start_worker(
        "w1",
        &["--max-connections", "2", "--handshake-timeout", "60s"],
    )?;
    c.wait_nodes(1)?;
    let w1 = worker_addr(&c, "w1")?;

    // The master: two idle connections fill it.
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&c.master_addr))
        .collect::<std::io::Result<_>>()?;
    match handshake(&c, &c.master_addr)? {
        Err(Error::Refused { reason }) => assert!(
            reason.contains("too many connections") && reason.contains("--max-connections"),
            "{reason}"
        ),
        other => bail!("the 4th connection to the master was not refused: {other:?}"),
    }
    let (code, err) = c.poolctl_fail(&["nodes"])?;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("too many connections"), "{err}");
    wait_log(
        "the master's warning",
        || c.master_log(),
        &["refused a connection", "--max-connections"],
    )?;
    idle.pop();
    wait_until("the master to serve again", Duration::from_secs(10), || {
        c.node_names().ok()
    })?;
    drop(idle);

    // A worker: two idle connections fill it.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&w1))
        .collect::<std::io::Result<_>>()?;
    match handshake(&c, &w1)? {
        Err(Error::Refused { reason }) => assert!(
            reason.contains("too many connections") && reason.contains("w1"),
            "{reason}"
        ),
        other => bail!("the 3rd connection to w1 was not refused: {other:?}"),
    }
    drop(idle);
    wait_until("w1 to serve again", Duration::from_secs(10), || {
        handshake(&c, &w1).ok()?.ok()
    })?;
    Ok(())
}

/// `--max-frame` on the sending side: a node (a hidden one, here in the
/// test process, as poolctl is) with a 64KiB limit does not send a frame
/// over it — the call that needed it times out — while the frames queued
/// before and after it on the same connection arrive: a call right behind
/// it is answered, in the same write batch. On the receiving side, a worker
/// with `--max-frame 64KiB` closes the one connection that brings a larger
/// frame (poolctl's call fails) and goes on serving.
#[test]
fn an_oversize_frame_is_refused_and_other_traffic_goes_on() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_worker("w2", &["--max-frame", "64KiB"])?;
    c.wait_nodes(2)?;
    let (echo, _) = c.spawn(&["builtin.echo", "{}", "--on", "w1"])?;
    let echo: pool_proto::Pid = echo.parse()?;
    let big = "x".repeat(100 * 1024);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let mut config = pool_worker::NodeConfig::hidden("probe", c.master_addr.clone(), cookie);
    config.max_frame_len = 64 * 1024;
    rt.block_on(async {
        let node = pool_worker::Node::builder(config).start().await?;
        let pool = node.pool();
        let result = async {
            let call = |req: Value, ms: u64| pool.call(echo, req, Duration::from_millis(ms));
            let reply = call(json!("before"), 5000).await?;
            assert_eq!(reply.take::<Value>()?, json!("before"));
            // The big one and a small one right behind it.
            let (big_reply, after) =
                tokio::join!(call(json!(big), 1000), call(json!("after"), 5000));
            let e = big_reply.expect_err("a request over the sender's --max-frame is not sent");
            assert!(e.to_string().contains("no reply"), "{e}");
            assert_eq!(after?.take::<Value>()?, json!("after"));
            let reply = call(json!("later"), 5000).await?;
            assert_eq!(reply.take::<Value>()?, json!("later"));
            anyhow::Ok(())
        }
        .await;
        node.shutdown().await;
        result
    })?;
    let log = worker_log(&c, "w1");
    assert!(
        !log.contains("exceeds"),
        "w1 never saw the oversize frame:\n{log}"
    );

    // Receiving: poolctl (16MiB) sends w2 a 100KiB request.
    let (sink, _) = c.spawn(&["builtin.echo", "{}", "--on", "w2"])?;
    let (code, err) = c.poolctl_fail(&["call", &sink, &json!(big).to_string()])?;
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        c.call(&sink, &json!("still here"))?,
        json!("still here"),
        "w2 serves on"
    );
    assert_eq!(c.node_names()?.len(), 2);
    Ok(())
}

/// The master with `--max-frame 64KiB` closes an authenticated connection
/// that announces a larger frame, logs why, and goes on serving.
#[test]
fn the_master_closes_a_connection_that_sends_an_oversize_frame() -> Result<()> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--max-frame".into(), "64KiB".into()];
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.wait_nodes(1)?;
    let mut s = handshake(&c, &c.master_addr)?.map_err(|e| anyhow!("handshake: {e}"))?;
    s.write_all(&(100 * 1024u32).to_be_bytes())?;
    s.write_all(&[0u8; 1024])?;
    wait_closed(&mut s, Duration::from_secs(10), "the master")?;
    wait_log(
        "the master's reason",
        || c.master_log(),
        &["bad frame", "65536"],
    )?;
    assert_eq!(c.node_names()?, vec!["w1".to_owned()]);
    Ok(())
}

/// The resident set of process `pid`, and its peak, in KiB
/// (`/proc/PID/status`).
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A peer that stops reading (SIGSTOP: its socket stays open, so only the
/// queue can tell) while w1 sends it a million messages: w1 drops the
/// connection once `--peer-queue` (64KiB here) is queued for it, logs why,
/// and the link and monitor from w1 to a process there fire
/// `noconnection` — long before the master would declare the peer down
/// (its `--node-timeout` is 60s here). w1's memory stays bounded: its peak
/// grows by far less than the messages would take.
#[test]
fn a_peer_that_stops_reading_is_dropped_with_noconnection() -> Result<()> {
    const MESSAGES: u32 = 1_000_000;
    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), "60s".into()];
    c.start_master()?;
    c.start_test_worker("w1", &["--peer-queue", "64KiB"])?;
    c.start_worker("w2", &[])?;
    c.wait_nodes(2)?;
    let (echo, _) = c.spawn(&["builtin.echo", "{}", "--on", "w2"])?;
    let args = json!({"pid": echo, "link": true, "monitor": true, "trap": true, "sync": true});
    let (watch, _) = c.spawn(&["test.watch", &args.to_string(), "--on", "w1"])?;
    let w1_pid = c.worker("w1").pid();
    let (_, peak_before) = rss_kib(w1_pid)?;

    c.worker("w2").signal(libc::SIGSTOP);
    let args = json!({"send_to": echo, "send_count": MESSAGES});
    c.spawn(&["test.watch", &args.to_string(), "--on", "w1"])?;

    let started = Instant::now();
    let events = wait_until(
        "noconnection on w1's link and monitor",
        Duration::from_secs(30),
        || {
            let v = c.call(&watch, &json!("events")).ok()?;
            let ev = v["events"].as_array()?.clone();
            let has = |kind: &str| {
                ev.iter()
                    .any(|e| e["kind"] == kind && e["reason"] == "noconnection")
            };
            (has("exit") && has("down")).then_some(ev)
        },
    )
    .map_err(|e| anyhow!("{e}; w1 log:\n{}", worker_log(&c, "w1")))?;
    assert!(started.elapsed() < Duration::from_secs(30), "{events:?}");
    wait_log(
        "w1's reason",
        || worker_log(&c, "w1"),
        &["peer that does not read", "--peer-queue"],
    )?;
    let (_, peak_after) = rss_kib(w1_pid)?;
    // A million queued messages would take well over 100 MiB.
    assert!(
        peak_after.saturating_sub(peak_before) < 48 * 1024,
        "w1's peak memory grew from {peak_before} KiB to {peak_after} KiB"
    );
    // The master did not declare w2 down: the queue did it.
    assert!(
        c.node("w2")?.is_some(),
        "w2 is still a member (stopped, not timed out)"
    );
    c.worker("w2").signal(libc::SIGCONT);
    Ok(())
}
