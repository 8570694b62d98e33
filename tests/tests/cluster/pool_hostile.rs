//! Hostile peers (DESIGN.md "Wire protocol"): a wrong cookie is refused
//! with a message that names the cookie; random bytes, undecodable frames
//! and frames over the limit close that one connection, and the master and
//! the workers go on serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use pool_cluster_tests::Cluster;
use pool_proto::handshake::{HandshakeMsg, Initiator, Step};
use pool_proto::{Identity, MAX_FRAME_LEN, NodeId, NodeKind};
use serde_json::json;

use crate::support::last_line;

/// A worker and a poolctl with another cookie are refused: the worker
/// exits 1 and poolctl exits 1, each with a last line that names the
/// cookie (and how to set it); the master goes on with its one worker.
#[test]
fn a_wrong_cookie_is_refused_with_a_message_naming_the_cookie() -> Result<()> {
    let mut c = Cluster::start(1)?;
    let other = c.write_file("other-cookie", "not-the-pool-cookie\n")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600))?;
    }

    let mut cmd = c.command("pool-worker");
    cmd.args([
        "--master",
        &c.master_addr,
        "--name",
        "intruder",
        "--cookie-file",
    ])
    .arg(&other);
    c.add_worker("intruder", cmd)?;
    let status = c.worker("intruder").wait_exit(Duration::from_secs(20));
    let log = c.worker("intruder").log();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "log:\n{log}");
    assert!(
        last_line(&log).contains("cookie"),
        "the error should name the cookie: {}",
        last_line(&log)
    );

    let out = c
        .command("poolctl")
        .args(["--master", &c.master_addr, "--cookie-file"])
        .arg(&other)
        .arg("nodes")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cookie"), "{err}");

    assert_eq!(c.node_names()?, vec!["w1".to_owned()]);
    assert!(c.master_log().contains("cookie"), "the master logs why");
    Ok(())
}

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

/// Connects to `addr` and completes the handshake with the pool's cookie,
/// as a hidden node would.
fn authenticated(c: &Cluster, addr: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let me = Identity {
        node: NodeId::random(),
        name: "hostile".into(),
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
                return Ok(s);
            }
            Step::Failed { error, .. } => bail!("handshake with {addr}: {error}"),
        }
    }
}

/// Writes `bytes` (ignoring a peer that already closed) and waits up to
/// `within` for the peer to close the connection.
fn assert_closed(mut s: TcpStream, bytes: &[u8], within: Duration, what: &str) -> Result<()> {
    let _ = s.write_all(bytes);
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{what}: the connection was still open after {within:?}");
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue, // e.g. a Refused frame before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return Ok(()), // reset: closed too
        }
    }
}

/// Pseudo-random bytes (xorshift), deterministic per seed.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Random bytes, an undecodable frame and a length over the 16 MiB limit,
/// sent to the master's port and to a worker's port, before and after a
/// successful handshake, each close that one connection (at once, or
/// within the 5 s handshake timeout for bytes that never form a frame);
/// afterwards both still serve: `poolctl nodes` lists both workers, a spawn
/// on the attacked worker runs and answers a call.
#[test]
fn garbage_and_oversized_frames_leave_master_and_worker_serving() -> Result<()> {
    let c = Cluster::start(2)?;
    let w1 = c.node("w1")?.context("w1 is live")?;
    let worker_addr = w1["addr"].as_str().context("w1 has an address")?.to_owned();

    let over_limit = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
    let mut oversized = over_limit.to_vec();
    oversized.extend_from_slice(&junk(7, 64));
    let undecodable = [0, 0, 0, 8, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1];
    let quick = Duration::from_secs(3);
    // Longer than the 5 s handshake timeout: bytes that never complete a
    // frame are only dropped when it expires.
    let slow = Duration::from_secs(8);

    for (who, addr) in [
        ("master", c.master_addr.as_str()),
        ("worker", worker_addr.as_str()),
    ] {
        let mut random = junk(42, 64 * 1024);
        random[..4].copy_from_slice(&[0, 0, 0x10, 0]); // a 4 KiB frame of junk
        assert_closed(
            TcpStream::connect(addr)?,
            &random,
            slow,
            &format!("{who}: random bytes"),
        )?;
        assert_closed(
            TcpStream::connect(addr)?,
            &undecodable,
            quick,
            &format!("{who}: undecodable frame"),
        )?;
        assert_closed(
            TcpStream::connect(addr)?,
            &oversized,
            quick,
            &format!("{who}: over-limit frame"),
        )?;
        assert_closed(
            authenticated(&c, addr)?,
            &oversized,
            quick,
            &format!("{who}: over-limit frame after the handshake"),
        )?;
        assert_closed(
            authenticated(&c, addr)?,
            &undecodable,
            quick,
            &format!("{who}: undecodable frame after the handshake"),
        )?;
    }

    let mut names = c.node_names()?;
    names.sort();
    assert_eq!(names, vec!["w1", "w2"]);
    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    assert_eq!(c.call(&echo, &json!("fine"))?, json!("fine"));
    let (_, node) = c.spawn(&["builtin.echo", "--on", "w2"])?;
    assert_eq!(node, "w2");
    Ok(())
}
