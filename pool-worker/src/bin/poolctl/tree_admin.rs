//! `poolctl tree restart ID` and `poolctl tree rm ID`: the two tree
//! requests the Pool API of a hidden node does not offer (yet), sent on a
//! short connection of their own — the same handshake, cookie and TLS
//! files as the command's node, a `Join` as a hidden node, the one
//! request, its answer, close. When `Pool` gains `tree_restart` and
//! `tree_remove`, these two commands use them and this module goes.
//!
//! Owns nothing past the call: the connection is dropped when the answer
//! (or an error) is in, which the master sees as a client leaving.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::HandshakeConfig;
use pool_proto::{
    AppSummary, Identity, Join, Msg, NodeId, NodeInfo, NodeKind, ReqId, Request, Response,
};
use tokio::net::TcpStream;

use crate::Cli;
use crate::commands::Failure;

/// Sends `body` (`TreeRestart` or `TreeRemove`) to the master of `cli` and
/// returns the apps it answers.
pub(crate) async fn request(cli: &Cli, body: Request) -> Result<Vec<AppSummary>, Failure> {
    let failed = |msg: String| Failure::Failed(msg);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    let cookie = pool_proto::cookie::resolve_cookie(
        cli.cookie_file.as_deref(),
        env_cookie.as_deref(),
        home.as_deref(),
    )
    .map_err(|e| failed(e.to_string()))?;
    let tls = pool_proto::tls::TlsFiles {
        cert: cli.tls_cert.clone(),
        key: cli.tls_key.clone(),
        ca: cli.tls_ca.clone(),
    }
    .load()
    .map_err(|e| failed(e.to_string()))?;
    let me = Identity {
        node: NodeId::random(),
        name: format!(
            "poolctl-{}-{:04x}-tree",
            std::process::id(),
            rand::random::<u16>()
        ),
        kind: NodeKind::Hidden,
    };
    let hs = HandshakeConfig {
        timeout: cli.connect_timeout,
        max_frame_len: cli.max_frame,
    };
    let unreachable = |e: &dyn std::fmt::Display| {
        failed(format!(
            "cannot reach the master at {}: {e} (is pool-master running there? --master ADDR)",
            cli.master
        ))
    };
    let tcp = tokio::time::timeout(cli.connect_timeout, TcpStream::connect(&cli.master))
        .await
        .map_err(|_| unreachable(&"no answer in time"))?
        .map_err(|e| unreachable(&e))?;
    let (conn, _master) =
        pool_proto::tls::connect_handshake(tls.as_ref(), tcp, &cli.master, &me, &cookie, &hs)
            .await
            .map_err(|e| unreachable(&e))?;
    let (mut sink, mut stream) = conn.split();
    let join = Join {
        info: NodeInfo {
            id: me.node,
            name: me.name.clone(),
            addr: String::new(),
            kind: NodeKind::Hidden,
            capacity: 0,
            labels: Default::default(),
        },
        functions: Vec::new(),
        names: Vec::new(),
        apps: Vec::new(),
        rejoin: false,
    };
    let wait = cli.connect_timeout.max(Duration::from_secs(10));
    let mut ask = async |id: ReqId, body: Request| -> Result<Response, Failure> {
        sink.send(Msg::Request { id, body })
            .await
            .map_err(|e| failed(format!("the master's connection failed: {e}")))?;
        loop {
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(Ok(Msg::Response { id: got, body }))) if got == id => return Ok(body),
                // Membership pushes and the like: not for this command.
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => {
                    return Err(failed(format!("the master's connection failed: {e}")));
                }
                Ok(None) => return Err(failed("the master closed the connection".into())),
                Err(_) => {
                    return Err(failed(format!(
                        "the master did not answer within {wait:?}: try again"
                    )));
                }
            }
        }
    };
    match ask(0, Request::Join(join)).await? {
        Response::Welcome(_) => {}
        Response::Error(e) => return Err(failed(e.message)),
        other => return Err(failed(format!("the master answered Join with {other:?}"))),
    }
    match ask(1, body).await? {
        Response::Apps(apps) => Ok(apps),
        Response::Error(e) => Err(failed(e.message)),
        other => Err(failed(format!(
            "unexpected answer from the master: {other:?}"
        ))),
    }
}
