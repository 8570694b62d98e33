//! Helpers of the hostile-peer tests: a raw client built on pool-proto
//! (the handshake with the test's cookie, then `Codec<Msg>` frames, with
//! none of pool-worker's rules), a stream wrapper that records what a
//! client writes (to replay it), a snapshot of the legitimate processes
//! that every test checks again at its end, and log waits.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use pool_cluster_tests::{Cluster, Proc, wait_until};
use pool_proto::handshake::{Connection, HandshakeConfig, initiate};
use pool_proto::{
    Cookie, Identity, Join, Msg, NodeId, NodeInfo, NodeKind, Pid, ReqId, Request, Response,
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a frame that should come may take.
pub(crate) const ANSWER: Duration = Duration::from_secs(5);

/// The cluster's cookie.
pub(crate) fn cookie(c: &Cluster) -> Result<Cookie> {
    Ok(pool_proto::cookie::read_cookie_file(&c.cookie)?)
}

/// A fresh identity (random node id).
pub(crate) fn identity(name: &str, kind: NodeKind) -> Identity {
    Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind,
    }
}

/// A `Join` for `me`, as a node with `addr` would send it.
pub(crate) fn join_for(me: &Identity, addr: &str) -> Join {
    Join {
        info: NodeInfo {
            id: me.node,
            name: me.name.clone(),
            addr: addr.to_owned(),
            kind: me.kind,
            capacity: 1,
            labels: Default::default(),
        },
        functions: Vec::new(),
        names: Vec::new(),
        apps: Vec::new(),
        rejoin: false,
        wasm: false,
    }
}

/// A raw connection after the handshake.
pub(crate) struct Raw {
    conn: Connection<TcpStream>,
    /// Who we said we are.
    pub(crate) me: Identity,
    /// Who answered.
    pub(crate) peer: Identity,
    next_id: ReqId,
    /// Frames that arrived while a request waited for its answer.
    pub(crate) inbox: VecDeque<Msg>,
}

impl Raw {
    /// Connects to `addr` and completes the handshake as `me`.
    pub(crate) async fn connect(addr: &str, cookie: &Cookie, me: Identity) -> Result<Raw> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let (conn, peer) = initiate(stream, &me, cookie, &HandshakeConfig::default())
            .await
            .with_context(|| format!("handshake with {addr} as {me}"))?;
        Ok(Raw {
            conn,
            me,
            peer,
            next_id: 1,
            inbox: VecDeque::new(),
        })
    }

    /// Connects to the master and joins with `join` (its `info` is ours
    /// unless the test lies); the master's answer.
    pub(crate) async fn joined(
        addr: &str,
        cookie: &Cookie,
        me: Identity,
        join: Join,
    ) -> Result<(Raw, Response)> {
        let mut raw = Raw::connect(addr, cookie, me).await?;
        let answer = raw.request(Request::Join(join)).await?;
        Ok((raw, answer))
    }

    /// A pid of ours (the pids we claim to send from).
    pub(crate) fn pid(&self, serial: u64) -> Pid {
        Pid::new(self.me.node, serial)
    }

    /// Sends one frame.
    pub(crate) async fn send(&mut self, msg: Msg) -> Result<()> {
        self.conn.send(msg).await.context("sending a frame")
    }

    /// Queues frames and writes them together.
    pub(crate) async fn send_all(&mut self, msgs: impl IntoIterator<Item = Msg>) -> Result<()> {
        for m in msgs {
            self.conn.feed(m).await.context("queueing a frame")?;
        }
        SinkExt::<Msg>::flush(&mut self.conn)
            .await
            .context("writing frames")
    }

    /// Sends a request with a fresh id; returns the id.
    pub(crate) async fn send_request(&mut self, body: Request) -> Result<ReqId> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(Msg::Request { id, body }).await?;
        Ok(id)
    }

    /// Sends a request and waits for its answer; other frames go to the
    /// inbox.
    pub(crate) async fn request(&mut self, body: Request) -> Result<Response> {
        let id = self.send_request(body).await?;
        self.answer(id).await
    }

    /// Waits for the answer to request `id`; other frames go to the inbox.
    pub(crate) async fn answer(&mut self, id: ReqId) -> Result<Response> {
        let deadline = tokio::time::Instant::now() + ANSWER;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let next = tokio::time::timeout(left, self.conn.next()).await;
            match next {
                Err(_) => bail!(
                    "no answer to request {id} from {} within {ANSWER:?}",
                    self.peer
                ),
                Ok(None) => bail!("{} closed the connection before answering {id}", self.peer),
                Ok(Some(Err(e))) => bail!("reading from {}: {e}", self.peer),
                Ok(Some(Ok(Msg::Response { id: got, body }))) if got == id => return Ok(body),
                Ok(Some(Ok(other))) => self.inbox.push_back(other),
            }
        }
    }

    /// Every frame that arrives within `d` (the inbox first); stops early
    /// at the end of the stream.
    pub(crate) async fn drain(&mut self, d: Duration) -> Vec<Msg> {
        let mut out: Vec<Msg> = self.inbox.drain(..).collect();
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.conn.next()).await {
            out.push(m);
        }
        out
    }

    /// Waits up to `within` for the peer to close the connection; true if
    /// it did (frames before the close are dropped).
    pub(crate) async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// A `Ping` answered `Pong`: the connection is still served.
    pub(crate) async fn still_served(&mut self) -> Result<()> {
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => bail!("Ping answered {other:?}"),
        }
    }
}

/// A stream that keeps a copy of every byte written to it.
pub(crate) struct Tape<S> {
    inner: S,
    /// What was written so far.
    pub(crate) written: Arc<Mutex<Vec<u8>>>,
}

impl<S> Tape<S> {
    /// Records what is written to `inner`.
    pub(crate) fn new(inner: S) -> (Tape<S>, Arc<Mutex<Vec<u8>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        (
            Tape {
                inner,
                written: written.clone(),
            },
            written,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tape<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tape<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&buf[..*n]);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Splits a byte stream into its frames (each with its 4-byte header).
pub(crate) fn split_frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + len {
            break;
        }
        out.push(bytes[..4 + len].to_vec());
        bytes = &bytes[4 + len..];
    }
    out
}

/// A live node as `poolctl nodes` shows it.
#[derive(Debug, Clone)]
pub(crate) struct LiveNode {
    /// Its name.
    pub(crate) name: String,
    /// Its incarnation.
    pub(crate) id: NodeId,
    /// Its peer address.
    pub(crate) addr: String,
}

/// The live workers, by name.
pub(crate) fn live_nodes(c: &Cluster) -> Result<Vec<LiveNode>> {
    let mut v: Vec<LiveNode> = c
        .nodes()?
        .into_iter()
        .map(|n| {
            Ok(LiveNode {
                name: n["name"].as_str().context("a name")?.to_owned(),
                id: n["id"]
                    .as_str()
                    .context("an id")?
                    .parse()
                    .map_err(|e| anyhow!("node id: {e}"))?,
                addr: n["addr"].as_str().context("an addr")?.to_owned(),
            })
        })
        .collect::<Result<_>>()?;
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// The live worker `name`.
pub(crate) fn live(c: &Cluster, name: &str) -> Result<LiveNode> {
    live_nodes(c)?
        .into_iter()
        .find(|n| n.name == name)
        .with_context(|| format!("{name} is not live"))
}

/// The legitimate processes a test must leave alone: an echo on w1, and a
/// recorder on w2 that traps exits, links to and monitors the echo (so an
/// exit signal, a `Down` or a `noconnection` between w1 and w2 shows in
/// its events), plus what `poolctl nodes` and `ps` said before the attack.
#[derive(Debug)]
pub(crate) struct Legit {
    /// `builtin.echo` on w1.
    pub(crate) echo: String,
    /// `test.watch` on w2, linked to and monitoring `echo`.
    pub(crate) recorder: String,
    /// Live nodes (name and id) before.
    nodes: Vec<(String, NodeId)>,
    /// Every pid of `poolctl ps` before.
    pids: BTreeSet<String>,
}

/// A master and test-workers w1..wn (n ≥ 2) with the [`Legit`] processes.
pub(crate) fn cluster(n: usize) -> Result<(Cluster, Legit)> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    for i in 1..=n {
        c.start_test_worker(&format!("w{i}"), &[])?;
    }
    c.wait_nodes(n)?;
    let legit = legit(&c)?;
    Ok((c, legit))
}

/// Starts the [`Legit`] processes on w1 and w2.
pub(crate) fn legit(c: &Cluster) -> Result<Legit> {
    let (echo, on) = c.spawn(&["builtin.echo", "{}", "--on", "w1"])?;
    assert_eq!(on, "w1");
    let args = json!({"pid": echo, "link": true, "monitor": true, "trap": true, "sync": true});
    let (recorder, on) = c.spawn(&["test.watch", &args.to_string(), "--on", "w2"])?;
    assert_eq!(on, "w2");
    // The link and monitor are in place once the recorder answers.
    let ev = events(c, &recorder)?;
    assert!(ev.is_empty(), "a fresh recorder saw {ev:?}");
    let nodes = live_nodes(c)?.into_iter().map(|n| (n.name, n.id)).collect();
    let pids = c.ps()?.into_iter().map(|p| p.pid.to_string()).collect();
    Ok(Legit {
        echo,
        recorder,
        nodes,
        pids,
    })
}

/// The events the recorder `pid` saw.
pub(crate) fn events(c: &Cluster, pid: &str) -> Result<Vec<Value>> {
    let v = c.call(pid, &json!("events"))?;
    v["events"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("recorder {pid} answered {v}"))
}

impl Legit {
    /// Asserts nothing legitimate changed: the same live nodes (names and
    /// ids), every process of before still listed, the echo answers, the
    /// recorder saw no exit signal, `Down` or message. With `same_ps`,
    /// `ps` lists exactly the processes of before.
    pub(crate) fn assert_unaffected(&self, c: &Cluster, same_ps: bool) -> Result<()> {
        let nodes: Vec<(String, NodeId)> =
            live_nodes(c)?.into_iter().map(|n| (n.name, n.id)).collect();
        assert_eq!(nodes, self.nodes, "the live nodes changed");
        let pids: BTreeSet<String> = c.ps()?.into_iter().map(|p| p.pid.to_string()).collect();
        let lost: Vec<&String> = self.pids.difference(&pids).collect();
        assert!(lost.is_empty(), "processes lost: {lost:?}");
        if same_ps {
            let new: Vec<&String> = pids.difference(&self.pids).collect();
            assert!(new.is_empty(), "processes appeared: {new:?}");
        }
        assert_eq!(
            c.call(&self.echo, &json!("still there?"))?,
            json!("still there?")
        );
        let ev = events(c, &self.recorder)?;
        assert!(ev.is_empty(), "the recorder saw {ev:?}");
        Ok(())
    }
}

/// Waits until `p`'s log contains `needle`; the error shows the log's end.
pub(crate) fn wait_log(p: &Proc, needle: &str) -> Result<()> {
    wait_until(
        &format!("{} to log {needle:?}", p.label),
        Duration::from_secs(10),
        || p.log().contains(needle).then_some(()),
    )
    .map_err(|e| {
        let log = p.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow!("{e}; last lines:\n{}", tail.join("\n"))
    })
}

/// The lines of `p`'s log that contain every one of `needles`.
pub(crate) fn log_lines(p: &Proc, needles: &[&str]) -> Vec<String> {
    p.log()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// A tokio runtime for the raw clients (the cluster helpers block, so the
/// tests are plain `#[test]`s that enter it for the async parts).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
