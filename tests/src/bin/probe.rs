//! `probe`: asks one worker directly, without the master, which processes
//! it runs — the view of one side of a partition, run inside that side's
//! network namespace (`ip netns exec NS probe ADDR COOKIE_FILE`).
//!
//! It connects to the worker's peer address, does the pool-proto handshake
//! as a hidden node with the cookie, sends `Request::LocalProcesses` and
//! prints the answer (`Response::Processes`) as one JSON array of
//! `{pid, node, function, status, age_ms, owner, ...}` on stdout.
//!
//! ```text
//! probe ADDR COOKIE_FILE [--timeout DUR]    (default 5s)
//! ```
//!
//! Exit status: 0 with the array printed; 1 when the worker could not be
//! reached, refused the handshake or the request, or did not answer in
//! time (one line on stderr says which); 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::HandshakeConfig;
use pool_proto::{Identity, Msg, NodeId, NodeKind, Request, Response};
use tokio::net::TcpStream;

/// The request id of the one request a probe sends.
const REQUEST: u64 = 1;

/// What the command line says.
#[derive(Debug)]
struct Args {
    /// The worker's peer address.
    addr: String,
    /// The pool's cookie file.
    cookie: PathBuf,
    /// For connecting, the handshake and the answer together.
    timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut timeout = Duration::from_secs(5);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--timeout" {
            let v = it.next().context("--timeout needs a value, e.g. 5s")?;
            timeout = pool_proto::parse_duration(&v)?;
        } else {
            positional.push(a);
        }
    }
    let [addr, cookie] = <[String; 2]>::try_from(positional)
        .map_err(|_| anyhow::anyhow!("usage: probe ADDR COOKIE_FILE [--timeout DUR]"))?;
    Ok(Args {
        addr,
        cookie: cookie.into(),
        timeout,
    })
}

/// Connects, authenticates, asks, and returns the processes as JSON.
async fn probe(args: &Args) -> Result<serde_json::Value> {
    let cookie = pool_proto::cookie::read_cookie_file(&args.cookie)?;
    let me = Identity {
        node: NodeId::random(),
        name: format!("probe-{}", std::process::id()),
        kind: NodeKind::Hidden,
    };
    let tcp = TcpStream::connect(&args.addr)
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let config = HandshakeConfig {
        timeout: args.timeout,
        ..HandshakeConfig::default()
    };
    let (mut conn, peer) =
        pool_proto::tls::connect_handshake(None, tcp, &args.addr, &me, &cookie, &config)
            .await
            .with_context(|| format!("handshake with {}", args.addr))?;
    conn.send(Msg::Request {
        id: REQUEST,
        body: Request::LocalProcesses,
    })
    .await
    .context("sending LocalProcesses")?;
    while let Some(frame) = conn.next().await {
        match frame.context("reading the answer")? {
            Msg::Response { id, body } if id == REQUEST => {
                return match body {
                    Response::Processes(ps) => Ok(serde_json::to_value(ps)?),
                    Response::Error(e) => bail!(
                        "{} ({}) refused LocalProcesses: {:?}: {}",
                        peer.name,
                        args.addr,
                        e.code,
                        e.message
                    ),
                    other => bail!("{} answered LocalProcesses with {other:?}", peer.name),
                };
            }
            // Anything else a peer pushes is not our answer.
            _ => {}
        }
    }
    bail!(
        "{} ({}) closed the connection without answering",
        peer.name,
        args.addr
    )
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("probe: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("probe: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let timeout = args.timeout;
    match rt.block_on(async { tokio::time::timeout(timeout, probe(&args)).await }) {
        Ok(Ok(v)) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("probe: {e:#}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("probe: {} did not answer within {timeout:?}", args.addr);
            ExitCode::from(1)
        }
    }
}
