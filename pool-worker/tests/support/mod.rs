//! Test support: a pool in one process. A [`FakeMaster`] and worker nodes
//! on an in-memory network ([`MemNetwork`]), all on the test's own
//! `current_thread` runtime, so `#[tokio::test(start_paused = true)]`
//! drives every timer (reports, back-off, timeouts) in virtual time.
//!
//! - [`Cluster`]: the network, the master, and builders for nodes at
//!   `NAME:7000` that dial from that same address (so the network can
//!   partition them).
//! - [`Probe`]: a process that reports what it receives.
//! - [`wait_until`]: a bounded wait for a condition (virtual time).
//! - [`raw_peer`]: a hand-driven peer connection, for what a well-behaved
//!   node never sends.

#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub mod fake_master;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::{self, Connection, Cookie, HandshakeConfig, Identity};
use pool_proto::transport::{BoxIo, MemNetwork, Transport};
use pool_proto::{ExitReason, Msg, NodeId, NodeKind, Pid, ReqId, Request, Response};
use pool_worker::{Node, NodeBuilder, NodeConfig, NodeHandle};
use supervisor::{Ctx, Envelope, Functions, Message, Runtime};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use fake_master::{FakeMaster, MASTER_ADDR, REPORT_INTERVAL, Seen};

/// The cookie of every test pool.
pub fn cookie() -> Cookie {
    Cookie::new("in-process-test-cookie", "tests").unwrap()
}

/// Bound on every wait (virtual time: it costs nothing when the test
/// passes).
pub const WAIT: Duration = Duration::from_secs(60);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Waits until `cond` holds, polling every 5 ms of (virtual) time; fails
/// the test, naming `what`, after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The address node `name` listens at (and dials from).
pub fn addr_of(name: &str) -> String {
    format!("{name}:7000")
}

/// Functions of the test nodes, besides the built-ins.
pub fn test_functions() -> Functions {
    let mut f = Functions::new();
    // Traps exits and never ends on its own: only `kill` (or a supervisor's
    // shutdown timeout) stops it.
    f.register("test.stubborn", |ctx: Ctx, _: serde_json::Value| {
        stubborn(ctx)
    });
    f
}

async fn stubborn(mut ctx: Ctx) {
    ctx.trap_exit(true);
    loop {
        let _ = ctx.recv().await;
    }
}

/// A pool in one process: an in-memory network with a fake master on it.
pub struct Cluster {
    pub net: MemNetwork,
    pub master: FakeMaster,
}

impl Cluster {
    /// A network with a master at [`MASTER_ADDR`].
    pub fn new() -> Cluster {
        init_tracing();
        let net = MemNetwork::new();
        let master = FakeMaster::start(&net, cookie());
        Cluster { net, master }
    }

    /// A worker's config: the test cookie, the fake master.
    pub fn config(&self, name: &str) -> NodeConfig {
        let mut c = NodeConfig::worker(name, MASTER_ADDR, cookie());
        c.request_timeout = Duration::from_secs(5);
        c.stop_timeout = Duration::from_secs(10);
        c
    }

    /// A worker named `name`, not started.
    pub fn builder(&self, name: &str) -> NodeBuilder {
        self.builder_with(self.config(name))
    }

    /// A worker with `config`, not started: listening at
    /// [`addr_of`]`(name)`, dialing from there, on the test's runtime.
    pub fn builder_with(&self, config: NodeConfig) -> NodeBuilder {
        let addr = addr_of(&config.name);
        let listener = self.net.bind(&addr).expect("a free address per node");
        Node::builder(config)
            .functions(test_functions())
            .listen(listener)
            .transport(self.net.dialer(addr))
            .on_current_runtime()
    }

    /// A started worker.
    pub async fn worker(&self, name: &str) -> NodeHandle {
        self.builder(name).start().await.expect("the worker joins")
    }

    /// Started workers.
    pub async fn workers(&self, names: &[&str]) -> Vec<NodeHandle> {
        let mut v = Vec::new();
        for n in names {
            v.push(self.worker(n).await);
        }
        // Each knows the others (NodeUp pushes).
        for n in &v {
            let others: Vec<NodeId> = v.iter().map(|o| o.id()).filter(|o| *o != n.id()).collect();
            wait_until("every worker knows the others", || {
                others.iter().all(|o| n.pool().node_name_of(*o).is_some())
            })
            .await;
        }
        v
    }

    /// A started hidden node (a client such as poolctl).
    pub async fn hidden(&self, name: &str) -> NodeHandle {
        let config = NodeConfig::hidden(name, MASTER_ADDR, cookie());
        Node::builder(config)
            .transport(self.net.dialer(format!("{name}:client")))
            .on_current_runtime()
            .start()
            .await
            .expect("the client joins")
    }
}

/// What a [`Probe`] received.
#[derive(Debug)]
pub enum Got {
    /// A message.
    Msg { from: Option<Pid>, msg: Message },
    /// A call (answered with its own request).
    Call { from: Pid },
    /// An exit signal (the probe traps exits).
    Exit { from: Pid, reason: ExitReason },
    /// A monitor fired.
    Down { pid: Pid, reason: ExitReason },
}

/// A process that reports everything it receives to the test.
pub struct Probe {
    pub pid: Pid,
    rx: mpsc::UnboundedReceiver<Got>,
}

impl Probe {
    /// A probe on `rt`, trapping exits if `trap`, that first runs
    /// `setup` (to link or monitor).
    pub fn spawn(rt: &Runtime, trap: bool, setup: impl FnOnce(&Ctx) + Send + 'static) -> Probe {
        let (tx, rx) = mpsc::unbounded_channel();
        let pid = rt.spawn(move |mut ctx: Ctx| async move {
            ctx.trap_exit(trap);
            setup(&ctx);
            loop {
                let got = match ctx.recv().await {
                    Envelope::Message { from, msg } => Got::Msg { from, msg },
                    Envelope::Call(c) => {
                        let from = c.from;
                        let echo = c.msg.peek::<serde_json::Value, _>(|v| v.clone());
                        ctx.reply(&c, &echo.unwrap_or(serde_json::Value::Null));
                        Got::Call { from }
                    }
                    Envelope::Exit { from, reason } => Got::Exit { from, reason },
                    Envelope::Down(d) => Got::Down {
                        pid: d.pid,
                        reason: d.reason,
                    },
                    Envelope::Reply { .. } => continue,
                };
                if tx.send(got).is_err() {
                    return;
                }
            }
        });
        Probe { pid, rx }
    }

    /// The next thing received (bounded wait).
    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("the probe receives something in time")
            .expect("the probe is alive")
    }

    /// Nothing received within `within` (virtual time).
    pub async fn nothing_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.rx.recv()).await.is_err()
    }

    /// The next message, decoded as `T`.
    pub async fn message<T: serde::de::DeserializeOwned + 'static>(&mut self) -> T {
        match self.next().await {
            Got::Msg { msg, .. } => msg.take::<T>().expect("a message of the expected type"),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next exit signal: who sent it and why.
    pub async fn exit(&mut self) -> (Pid, ExitReason) {
        match self.next().await {
            Got::Exit { from, reason } => (from, reason),
            other => panic!("expected an exit signal, got {other:?}"),
        }
    }

    /// The next monitor notification: who went down and why.
    pub async fn down(&mut self) -> (Pid, ExitReason) {
        match self.next().await {
            Got::Down { pid, reason } => (pid, reason),
            other => panic!("expected a down notification, got {other:?}"),
        }
    }
}

/// A hand-driven peer: a connection to node `to` (an address), handshaken
/// as `me`, whose frames the test writes and reads itself.
pub struct RawPeer {
    pub me: Identity,
    pub conn: Connection<BoxIo>,
    next: ReqId,
}

/// Dials `to` from `from` on `net` and handshakes as `me`.
pub async fn raw_peer(
    net: &MemNetwork,
    from: &str,
    to: &str,
    me: Identity,
) -> Result<RawPeer, pool_proto::Error> {
    let io = net.dialer(from).connect(to).await?;
    let (conn, _) = handshake::initiate(io, &me, &cookie(), &HandshakeConfig::default()).await?;
    Ok(RawPeer { me, conn, next: 1 })
}

/// An identity for a raw peer: a hidden node, so that the node answers on
/// the connection the peer opened (a worker's answers would go on a
/// connection the node opens to it).
pub fn identity(name: &str) -> Identity {
    Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind: NodeKind::Hidden,
    }
}

impl RawPeer {
    /// Sends a frame.
    pub async fn send(&mut self, msg: Msg) {
        self.conn.send(msg).await.expect("the frame is written");
    }

    /// Sends a request; returns its id.
    pub async fn request(&mut self, body: Request) -> ReqId {
        let id = self.next;
        self.next += 1;
        self.send(Msg::Request { id, body }).await;
        id
    }

    /// The next frame, or `None` once the node closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        match tokio::time::timeout(WAIT, self.conn.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(_) => None,
            Err(_) => panic!("no frame and no close from the node in time"),
        }
    }

    /// The answer to request `id` (other frames are skipped).
    pub async fn response(&mut self, id: ReqId) -> Response {
        loop {
            match self.recv().await {
                Some(Msg::Response { id: got, body }) if got == id => return body,
                Some(_) => continue,
                None => panic!("the node closed the connection before answering"),
            }
        }
    }

    /// A pid of this peer's node.
    pub fn pid(&self, serial: u64) -> Pid {
        Pid::new(self.me.node, serial)
    }
}

/// A tree spec from tree-file text (any function name is accepted).
pub fn tree(text: &str) -> pool_proto::TreeSpec {
    pool_proto::tree::parse_tree_str("test.toml", text, |_| true).expect("a valid tree")
}

/// A one-child application `app` whose child runs `function` on the
/// root's node.
pub fn one_child_app(app: &str, function: &str) -> pool_proto::TreeSpec {
    tree(&format!(
        "[supervisor]\nid = \"{app}\"\nstrategy = \"one_for_one\"\n\n\
         [[supervisor.children]]\nid = \"c\"\nfunction = \"{function}\"\nplacement = \"local\"\n"
    ))
}

/// Starts application `app` (generation `generation`) on node `node`
/// through the master, as its `StartApp` does; returns the root's pid.
pub async fn start_app(
    master: &FakeMaster,
    node: &str,
    app: &str,
    generation: u64,
    spec: pool_proto::TreeSpec,
) -> Pid {
    let body = Request::StartApp {
        app: app.to_owned(),
        generation,
        spec,
    };
    match master.request(node, body).await {
        Response::Spawned(root) => root,
        other => panic!("StartApp answered {other:?}"),
    }
}
