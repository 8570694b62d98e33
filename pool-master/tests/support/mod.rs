//! Test support: a master on loopback port 0, and [`SimNode`], a simulated
//! node speaking the real protocol with pool-proto (TCP, handshake, Join,
//! pushes (the changes of a delta as events), master requests answered with
//! canned data, load reports).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pool_master::{MasterConfig, MasterHandle, spawn_master};
use pool_proto::handshake::{Cookie, HandshakeConfig, Identity, initiate};
use pool_proto::{
    ChildStatus, DownReason, ErrorCode, Join, Labels, LoadReport, MemberChange, Msg, NodeId,
    NodeInfo, NodeKind, Pid, ProcStatus, ProcessInfo, RemoteError, ReqId, Request, Response,
    RunningApp, Strategy, TreeView, Welcome,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The cookie of every test pool.
pub const COOKIE: &str = "test-cookie";

/// Bound on every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn cookie() -> Cookie {
    Cookie::new(COOKIE, "tests").unwrap()
}

/// A config with the test cookie and short timeouts.
pub fn config() -> MasterConfig {
    let mut c = MasterConfig::new(cookie());
    c.node_timeout = Duration::from_millis(600);
    c.report_interval = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(2);
    c.list_timeout = Duration::from_millis(500);
    c
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Starts a master on 127.0.0.1:0 (HTTP too if `http`).
pub async fn start_master(config: MasterConfig, http: bool) -> MasterHandle {
    init_tracing();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = if http {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    spawn_master(config, listener, http, std::future::pending::<()>())
        .await
        .unwrap()
}

/// Polls `cond` until it holds or `deadline` passes.
pub async fn wait_until<F: FnMut() -> bool>(mut cond: F, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// What a simulated node saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    NodeUp(NodeInfo),
    NodeDown {
        node: NodeId,
        reason: DownReason,
    },
    /// A request from the master (already answered).
    Request(Request),
    /// A process signal from the master (an exit signal of `POST /api/kill`).
    Signal(Msg),
    /// The master acknowledged the load report of this seq.
    ReportAck(u64),
    /// The master closed the connection.
    Closed,
}

/// Canned answers to master requests.
#[derive(Debug, Default)]
pub struct Behavior {
    /// Answer to LocalProcesses.
    pub processes: Vec<ProcessInfo>,
    /// Roots started: app → (generation, pid).
    pub apps: HashMap<String, (u64, Pid)>,
    /// Answer StartApp with this error instead.
    pub start_error: Option<RemoteError>,
    /// Do not answer master requests at all.
    pub silent: bool,
    /// Answer WatchName with this error instead of Ok.
    pub watch_error: Option<RemoteError>,
    /// Serial of the next pid.
    pub next_serial: u64,
}

/// How a simulated node joins.
#[derive(Clone, Debug)]
pub struct SimSpec {
    pub name: String,
    pub id: NodeId,
    pub kind: NodeKind,
    pub capacity: u32,
    pub labels: Labels,
    pub functions: Vec<String>,
    pub names: Vec<(String, Pid)>,
    pub apps: Vec<RunningApp>,
    pub cookie: Cookie,
    /// Advertised as running WebAssembly functions (`Join.wasm`).
    pub wasm: bool,
}

impl SimSpec {
    pub fn worker(name: &str) -> Self {
        SimSpec {
            name: name.to_owned(),
            id: NodeId::random(),
            kind: NodeKind::Worker,
            capacity: 1,
            labels: Labels::new(),
            functions: vec!["builtin.echo".into(), "builtin.sleep".into()],
            names: Vec::new(),
            apps: Vec::new(),
            cookie: cookie(),
            wasm: false,
        }
    }

    pub fn hidden(name: &str) -> Self {
        SimSpec {
            kind: NodeKind::Hidden,
            functions: Vec::new(),
            ..SimSpec::worker(name)
        }
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
}

/// Why a simulated node could not join.
#[derive(Debug)]
pub enum JoinError {
    Handshake(pool_proto::Error),
    Refused(RemoteError),
    Closed,
}

type Pending = Arc<Mutex<HashMap<ReqId, oneshot::Sender<Response>>>>;

/// A node speaking the real protocol, with canned behaviour.
pub struct SimNode {
    pub id: NodeId,
    pub name: String,
    pub welcome: Welcome,
    pub behavior: Arc<Mutex<Behavior>>,
    out: mpsc::UnboundedSender<Msg>,
    pending: Pending,
    next: AtomicU64,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    tasks: Vec<JoinHandle<()>>,
    seq: AtomicU64,
}

impl Drop for SimNode {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SimNode {
    /// Connects, handshakes and joins.
    pub async fn join(addr: SocketAddr, spec: SimSpec) -> Result<SimNode, JoinError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| JoinError::Handshake(e.into()))?;
        stream.set_nodelay(true).unwrap();
        let me = Identity {
            node: spec.id,
            name: spec.name.clone(),
            kind: spec.kind,
        };
        let (conn, _master) = initiate(stream, &me, &spec.cookie, &HandshakeConfig::default())
            .await
            .map_err(JoinError::Handshake)?;
        let (mut sink, mut stream) = conn.split();
        let info = NodeInfo {
            id: spec.id,
            name: spec.name.clone(),
            addr: if spec.kind == NodeKind::Hidden {
                String::new()
            } else {
                format!("127.0.0.1:{}", 20000 + (spec.id.as_u64() % 10000))
            },
            kind: spec.kind,
            capacity: spec.capacity,
            labels: spec.labels.clone(),
        };
        let join = Join {
            info,
            functions: spec.functions.clone(),
            names: spec.names.clone(),
            apps: spec.apps.clone(),
            rejoin: false,
            wasm: spec.wasm,
        };
        sink.send(Msg::Request {
            id: 0,
            body: Request::Join(join),
        })
        .await
        .map_err(JoinError::Handshake)?;
        let welcome = loop {
            match tokio::time::timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Msg::Response { id: 0, body }))) => match body {
                    Response::Welcome(w) => break w,
                    Response::Error(e) => return Err(JoinError::Refused(e)),
                    other => panic!("unexpected answer to Join: {other:?}"),
                },
                Ok(Some(Ok(_))) => continue,
                _ => return Err(JoinError::Closed),
            }
        };
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Msg>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let behavior = Arc::new(Mutex::new(Behavior {
            next_serial: 1,
            ..Behavior::default()
        }));
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let reader = {
            let pending = pending.clone();
            let behavior = behavior.clone();
            let out = out_tx.clone();
            let me = spec.id;
            let name = spec.name.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    match msg {
                        Msg::Response { id, body } => {
                            if let Some(tx) = pending.lock().unwrap().remove(&id) {
                                let _ = tx.send(body);
                            }
                        }
                        Msg::NodeUp(info) => {
                            let _ = ev_tx.send(Event::NodeUp(info));
                        }
                        Msg::NodeDown { node, reason } => {
                            let _ = ev_tx.send(Event::NodeDown { node, reason });
                        }
                        // Each change of a delta is one event, in order
                        // (news about this node itself left out, as a
                        // worker ignores it).
                        Msg::MembersDelta(delta) => {
                            for change in delta.changes {
                                let event = match change {
                                    MemberChange::Up(info) if info.id != me => Event::NodeUp(info),
                                    MemberChange::Down { node, reason } if node != me => {
                                        Event::NodeDown { node, reason }
                                    }
                                    _ => continue,
                                };
                                let _ = ev_tx.send(event);
                            }
                        }
                        Msg::ReportAck { seq } => {
                            let _ = ev_tx.send(Event::ReportAck(seq));
                        }
                        signal @ Msg::Exit { .. } => {
                            let _ = ev_tx.send(Event::Signal(signal));
                        }
                        Msg::Request { id, body } => {
                            let answer = answer(&behavior, me, &name, &body);
                            let _ = ev_tx.send(Event::Request(body));
                            if let Some(body) = answer {
                                let _ = out.send(Msg::Response { id, body });
                            }
                        }
                        _ => {}
                    }
                }
                let _ = ev_tx.send(Event::Closed);
            })
        };
        Ok(SimNode {
            id: spec.id,
            name: spec.name,
            welcome,
            behavior,
            out: out_tx,
            pending,
            next: AtomicU64::new(1),
            events: tokio::sync::Mutex::new(ev_rx),
            tasks: vec![writer, reader],
            seq: AtomicU64::new(1),
        })
    }

    /// Sends a request and waits (bounded) for its answer.
    pub async fn request(&self, body: Request) -> Response {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.out.send(Msg::Request { id, body }).unwrap();
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("no answer from the master in time")
            .expect("connection closed before the answer")
    }

    /// Sends any message.
    pub fn send(&self, msg: Msg) {
        let _ = self.out.send(msg);
    }

    /// Sends a load report with this run queue and process count.
    pub fn report(&self, run_queue: u32, processes: u64) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.send(Msg::LoadReport(LoadReport {
            seq,
            sent_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            run_queue,
            processes,
            capacity: 1,
            mem_total: 1 << 30,
            mem_used: 1 << 28,
            ..LoadReport::default()
        }));
    }

    /// Reports every `every` (idle) until dropped.
    pub fn keep_reporting(&mut self, every: Duration) {
        let out = self.out.clone();
        let seq = Arc::new(AtomicU64::new(1_000_000));
        self.tasks.push(tokio::spawn(async move {
            loop {
                let s = seq.fetch_add(1, Ordering::Relaxed);
                let r = LoadReport {
                    seq: s,
                    capacity: 1,
                    ..LoadReport::default()
                };
                if out.send(Msg::LoadReport(r)).is_err() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        }));
    }

    /// The next event, within `within`.
    pub async fn next_event(&self, within: Duration) -> Option<Event> {
        let mut rx = self.events.lock().await;
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    /// Skips events until one matches; panics after `within`.
    pub async fn expect_event(
        &self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let end = tokio::time::Instant::now() + within;
        let mut rx = self.events.lock().await;
        loop {
            match tokio::time::timeout_at(end, rx.recv()).await {
                Ok(Some(ev)) if pred(&ev) => return ev,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{}: events ended while waiting for {what}", self.name),
                Err(_) => panic!("{}: no {what} within {within:?}", self.name),
            }
        }
    }

    /// Asserts no event matching `pred` arrives within `within`.
    pub async fn expect_no_event(
        &self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) {
        let end = tokio::time::Instant::now() + within;
        let mut rx = self.events.lock().await;
        loop {
            match tokio::time::timeout_at(end, rx.recv()).await {
                Ok(Some(ev)) if pred(&ev) => panic!("{}: unexpected {what}: {ev:?}", self.name),
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    }

    /// Closes the connection (as a crashed node's would).
    pub fn close(self) {
        drop(self);
    }
}

/// The canned answer to a master request.
fn answer(behavior: &Mutex<Behavior>, me: NodeId, name: &str, body: &Request) -> Option<Response> {
    let mut b = behavior.lock().unwrap();
    if b.silent {
        return None;
    }
    Some(match body {
        Request::LocalProcesses => Response::Processes(b.processes.clone()),
        Request::StartApp {
            app, generation, ..
        } => {
            if let Some(e) = b.start_error.clone() {
                return Some(Response::Error(e));
            }
            let pid = Pid::new(me, b.next_serial);
            b.next_serial += 1;
            b.apps.insert(app.clone(), (*generation, pid));
            Response::Spawned(pid)
        }
        Request::StopApp { app } => {
            b.apps.remove(app);
            Response::Ok
        }
        Request::Inspect { pid } => Response::Tree(Box::new(TreeView {
            reason: None,
            id: "root".into(),
            strategy: Some(Strategy::OneForOne),
            pid: Some(*pid),
            node: Some(me.to_string()),
            restarts: 2,
            status: ChildStatus::Running,
            children: Some(vec![TreeView {
                reason: None,
                id: "w".into(),
                strategy: None,
                pid: Some(Pid::new(me, 99)),
                node: Some(me.to_string()),
                restarts: 2,
                status: ChildStatus::Running,
                children: None,
            }]),
        })),
        Request::Spawn(_) => {
            let pid = Pid::new(me, b.next_serial);
            b.next_serial += 1;
            Response::Spawned(pid)
        }
        Request::Ping => Response::Pong,
        Request::WatchName { .. } => match b.watch_error.clone() {
            Some(e) => Response::Error(e),
            None => Response::Ok,
        },
        _ => Response::Error(RemoteError::new(
            ErrorCode::Refused,
            format!("{name} refuses"),
        )),
    })
}

/// A process listing line.
pub fn process(node: &SimNode, serial: u64, function: &str) -> ProcessInfo {
    ProcessInfo {
        pid: Pid::new(node.id, serial),
        node: node.name.clone(),
        function: function.into(),
        status: ProcStatus::Waiting,
        age_ms: 10,
        mailbox: 0,
        name: None,
        owner: None,
    }
}

/// `GET path` on the HTTP API: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
