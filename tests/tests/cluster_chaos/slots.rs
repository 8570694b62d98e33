//! Issue point 8: connection slots for nodes that have not finished the
//! handshake are limited apart from those of authenticated peers, so a
//! flood of idle or bad connections cannot starve a legitimate client;
//! warnings about refused handshakes are rate-limited; a peer that closes
//! after a normal exit is not a warning.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::BytesMut;
use pool_cluster_tests::{Cluster, Ctl, wait_until};
use pool_proto::handshake::{HandshakeMsg, Initiator, Step};
use pool_proto::{Cookie, Identity, MAX_FRAME_LEN, NodeId, NodeKind};
use serde_json::json;

use super::common::{start_cluster, warn_lines, worker_log};

/// Idle connections in the flood: the worker's default `--max-connections`
/// (1024) and more.
const IDLE: usize = 1100;

/// Bad handshakes of each kind (wrong cookie, garbage, silent close).
const BAD_EACH: usize = 100;

/// The most WARN lines the whole flood may cause.
const WARN_BOUND: usize = 20;

/// Raises this process's open-file limit (inherited by the worker it
/// starts) to hold the flood and the worker's side of it.
fn raise_fd_limit(want: u64) -> Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    if lim.rlim_max < want {
        bail!(
            "the open-file limit is {} (hard {}); this test needs {want}: raise `ulimit -Hn`",
            lim.rlim_cur,
            lim.rlim_max
        );
    }
    lim.rlim_cur = want;
    // SAFETY: setrlimit(2) reads the struct we own; raising the soft limit
    // up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes one handshake frame.
fn write_frame(s: &mut TcpStream, msg: &HandshakeMsg) -> Result<()> {
    let mut buf = BytesMut::new();
    pool_proto::codec::encode_frame(msg, &mut buf, MAX_FRAME_LEN)?;
    s.write_all(&buf)?;
    Ok(())
}

/// Reads until the worker closes `s` (or 10 s pass).
fn until_closed(s: &mut TcpStream) -> Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("the worker kept a bad handshake open for 10 s")
            }
            Err(_) => return Ok(()), // reset: closed too
        }
    }
}

/// A few hundred bad handshakes, one after the other, each until the
/// worker is done with it: a wrong cookie, a garbage frame, or a close
/// before saying anything.
fn bad_handshakes(addr: &str) -> Result<()> {
    let wrong = Cookie::new("not-the-pool-cookie", "the test")?;
    for i in 0..BAD_EACH * 3 {
        let mut s = TcpStream::connect(addr)?;
        match i % 3 {
            0 => {
                drop(s);
                if handshake(addr, wrong.clone(), &format!("intruder-{i}"))?.is_ok() {
                    bail!("the worker accepted a wrong cookie");
                }
            }
            1 => {
                s.write_all(&[0, 0, 0, 8, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])?;
                until_closed(&mut s)?;
            }
            _ => drop(s),
        }
    }
    Ok(())
}

/// Runs the handshake with `addr` as a hidden node with `cookie`: `Ok` if
/// the worker accepted it, the reason if it refused or closed.
fn handshake(addr: &str, cookie: Cookie, name: &str) -> Result<Result<(), String>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let me = Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind: NodeKind::Hidden,
    };
    let (mut init, hello) = Initiator::new(me, cookie);
    write_frame(&mut s, &hello)?;
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = s.read_exact(&mut len) {
            return Ok(Err(format!("the worker closed the handshake: {e}")));
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body)?;
        match init.on_message(pool_proto::codec::decode_exact(&body)?) {
            Step::Send(m) => write_frame(&mut s, &m)?,
            Step::Done { send, .. } => {
                if let Some(m) = send {
                    write_frame(&mut s, &m)?;
                }
                return Ok(Ok(()));
            }
            Step::Failed { send, error } => {
                // Tell the worker why (it may be waiting for our proof),
                // and read its close: it is done with us then.
                if let Some(m) = send {
                    write_frame(&mut s, &m)?;
                }
                until_closed(&mut s)?;
                return Ok(Err(error.to_string()));
            }
        }
    }
}

/// Makes w1 log a line we can find (a traced spawn, logged at info with
/// its trace id) and waits until it is in the log and the log has stopped
/// growing: everything w1 logged before is then in. Returns the number of
/// lines up to there.
fn mark(c: &Cluster, ctl: &Ctl<'_>, n: u32) -> Result<usize> {
    let id = format!("{:016x}", 0x5107_0000_0000_0000u64 + u64::from(n));
    let out = ctl.raw(&[
        "spawn",
        "builtin.echo",
        "{}",
        "--on",
        "w1",
        &format!("--trace={id}"),
    ])?;
    ensure!(
        out.status.success(),
        "the marker spawn failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut last = 0;
    let mut still = 0;
    wait_until(
        "w1's log to settle after the marker",
        Duration::from_secs(15),
        || {
            let log = worker_log(c, "w1");
            let lines = log.lines().count();
            if !log.contains(&format!("trace={id}")) {
                return None;
            }
            still = if lines == last { still + 1 } else { 0 };
            last = lines;
            (still >= 10).then_some(lines)
        },
    )
}

/// The WARN lines of w1's log between line `from` and line `to`.
fn warns_between(c: &Cluster, from: usize, to: usize) -> Vec<String> {
    let log = worker_log(c, "w1");
    let part: Vec<&str> = log.lines().skip(from).take(to - from).collect();
    warn_lines(&part.join("\n"))
}

/// A worker (default `--max-connections` 1024; a 60 s handshake timeout so
/// that the idle connections hold their slots for the whole test, as a
/// flood that keeps reconnecting would) gets 300 bad handshakes, then
/// 1,100 idle connections that never say anything. While they are open,
/// a `poolctl call` to a process on that worker is answered and a
/// handshake with the cookie succeeds. Everything the flood caused (up to
/// the idle connections closing) is at most 20 WARN lines in the worker's
/// log. Then a normal `poolctl call` and its exit cause no WARN line at
/// all.
#[test]
fn a_flood_of_idle_and_bad_connections_starves_no_peer_and_barely_logs() -> Result<()> {
    raise_fd_limit(4096)?;
    let c = start_cluster(&[("w1", &["--handshake-timeout", "60s"])])?;
    let ctl = c.ctl();
    let addr = ctl
        .nodes()?
        .iter()
        .find(|n| n["name"] == "w1")
        .and_then(|n| n["addr"].as_str().map(str::to_owned))
        .context("w1's address")?;
    let v = ctl.json(&["spawn", "builtin.echo", "{}", "--on", "w1"])?;
    let pid = v["pid"]
        .as_str()
        .context("spawn printed no pid")?
        .to_owned();
    let request = json!({"ping": 1}).to_string();
    let from = mark(&c, &ctl, 0)?;

    let mut wrong = Vec::new();
    bad_handshakes(&addr)?;
    let flood_started = Instant::now();
    let sa: std::net::SocketAddr = addr.parse().context("w1's address")?;
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect_timeout(&sa, Duration::from_secs(10)))
        .collect::<std::io::Result<_>>()
        .context("opening the idle connections")?;
    let call = ctl.raw(&["--json", "call", &pid, &request, "--timeout", "5s"])?;
    if !call.status.success() {
        wrong.push(format!(
            "poolctl call during the flood exited {} ({:?} after the flood began): {}",
            call.status,
            flood_started.elapsed(),
            String::from_utf8_lossy(&call.stderr).trim()
        ));
    }
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    if let Err(e) = handshake(&addr, cookie, "legit")? {
        wrong.push(format!("a handshake with the cookie during the flood: {e}"));
    }
    drop(idle);
    let to = mark(&c, &ctl, 1)?;
    let warns = warns_between(&c, from, to);
    if warns.len() > WARN_BOUND {
        wrong.push(format!(
            "the flood caused {} WARN lines (at most {WARN_BOUND}), e.g.:\n{}",
            warns.len(),
            warns.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
        ));
    }

    let call = ctl.raw(&["--json", "call", &pid, &request])?;
    if !call.status.success() {
        wrong.push(format!(
            "poolctl call after the flood failed: {}",
            String::from_utf8_lossy(&call.stderr).trim()
        ));
    }
    let end = mark(&c, &ctl, 2)?;
    let warns = warns_between(&c, to, end);
    if !warns.is_empty() {
        wrong.push(format!(
            "a normal poolctl call and exit caused WARN lines:\n{}",
            warns.join("\n")
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{}", wrong.join("\n")))
    }
}
