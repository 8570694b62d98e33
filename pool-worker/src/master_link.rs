//! The link to the master: join, fencing, load reports, membership pushes,
//! requests both ways, and reconnection.
//!
//! ```text
//! master link task (control runtime)
//!   loop:
//!     connect + handshake + Join -> Welcome      (retry: jittered, capped backoff)
//!     fenced? break remote links, stop stale apps, then Ready
//!     connected: report every interval until the connection closes
//!     disconnected: processes keep running, peers keep talking
//! ```
//!
//! Requests from the Pool API go through [`Shared::master_request`], which
//! waits (up to the request timeout) for the link to be up, so a short master
//! restart is invisible to callers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pool_proto::handshake::HandshakeConfig;
use pool_proto::{
    ErrorCode, Fence, Join, Msg, NodeKind, ProcessInfo, RemoteError, ReqId, Request, Response,
    SpawnRequest, Welcome,
};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use crate::config::{RECONNECT_MAX, RECONNECT_MIN};
use crate::conn::{self, CloseReason, ConnTx};
use crate::error::Error;
use crate::load::LoadSampler;
use crate::node::Shared;

/// How long the master may take to answer a Join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's side of the master connection.
#[derive(Debug)]
pub(crate) struct MasterClient {
    /// The current connection, if any.
    tx: std::sync::Mutex<Option<(u64, ConnTx)>>,
    /// Requests waiting for an answer.
    pending: std::sync::Mutex<HashMap<ReqId, oneshot::Sender<Response>>>,
    /// True while joined (and fenced, if needed).
    connected: watch::Sender<bool>,
    /// True while this node fences (the master declared it down while it
    /// was cut off). Requests fail at once meanwhile: a stale supervisor
    /// that asks the master to place a restart must not wait for a link
    /// that comes up only once that very supervisor has stopped.
    fencing: watch::Sender<bool>,
    /// Identifies connections, so a late close of an old one is ignored.
    generation: AtomicU64,
    /// The interval the master asked for.
    pub(crate) report_interval_ms: AtomicU64,
}

impl MasterClient {
    pub(crate) fn new(report_interval: Duration) -> Self {
        MasterClient {
            tx: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(HashMap::new()),
            connected: watch::channel(false).0,
            fencing: watch::channel(false).0,
            generation: AtomicU64::new(0),
            report_interval_ms: AtomicU64::new(report_interval.as_millis() as u64),
        }
    }

    /// True while joined.
    pub(crate) fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    fn current(&self) -> Option<ConnTx> {
        lock(&self.tx).as_ref().map(|(_, t)| t.clone())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Is this join failure permanent (retrying cannot help)?
fn is_fatal(e: &Error) -> bool {
    match e {
        Error::Remote(r) => matches!(r.code, ErrorCode::DuplicateName | ErrorCode::Refused),
        Error::Proto(p) => matches!(
            p,
            pool_proto::Error::BadCookie { .. }
                | pool_proto::Error::VersionMismatch { .. }
                | pool_proto::Error::PeerSpeaksTls
                | pool_proto::Error::Tls {
                    permanent: true,
                    ..
                }
        ),
        _ => false,
    }
}

impl Shared {
    fn unreachable(&self, why: impl Into<String>) -> Error {
        Error::MasterUnreachable {
            addr: self.config.master.clone(),
            why: why.into(),
        }
    }

    /// Sends a request to the master and waits for its answer; waits for
    /// the link (up to the request timeout) if it is down.
    pub(crate) async fn master_request(&self, body: Request) -> Result<Response, Error> {
        let timeout = self.config.request_timeout;
        let mut rx = self.master.connected.subscribe();
        let mut fencing = self.master.fencing.subscribe();
        let up = async {
            tokio::select! {
                r = rx.wait_for(|c| *c) => r.is_ok(),
                _ = fencing.wait_for(|f| *f) => false,
            }
        };
        match tokio::time::timeout(timeout, up).await {
            Ok(true) => {}
            Ok(false) if *self.master.fencing.borrow() => {
                return Err(self.unreachable(
                    "this node is fencing: the master declared it down while it was cut off, and its stale processes are being stopped",
                ));
            }
            _ => return Err(self.unreachable("not connected")),
        }
        let tx = self
            .master
            .current()
            .ok_or_else(|| self.unreachable("not connected"))?;
        self.request_on(&tx, body, timeout).await
    }

    async fn request_on(
        &self,
        tx: &ConnTx,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let id = self.next_req();
        let name = body.name();
        let (otx, orx) = oneshot::channel();
        lock(&self.master.pending).insert(id, otx);
        if !tx.send(Msg::Request { id, body }) {
            lock(&self.master.pending).remove(&id);
            return Err(self.unreachable("connection closed"));
        }
        match tokio::time::timeout(timeout, orx).await {
            Ok(Ok(Response::Error(e))) => Err(Error::Remote(e)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => {
                Err(self.unreachable(format!("connection lost before it answered {name}")))
            }
            Err(_) => {
                lock(&self.master.pending).remove(&id);
                Err(Error::Timeout {
                    peer: format!("the master ({name})"),
                    after: timeout,
                })
            }
        }
    }

    /// Sends a push to the master if connected (dropped otherwise: reports
    /// and events are only meaningful now).
    pub(crate) fn master_push(&self, msg: Msg) {
        if let Some(tx) = self.master.current() {
            tx.send(msg);
        }
    }

    /// The master link task: joins, then keeps the link up until shutdown.
    /// `first` gets the result of the first join.
    pub(crate) async fn run_master_link(
        self: Arc<Self>,
        first: oneshot::Sender<Result<(), Error>>,
    ) {
        let mut first = Some(first);
        let mut backoff = RECONNECT_MIN;
        let mut joined_before = false;
        let mut sampler = LoadSampler::new(self.proc_handle.clone());
        loop {
            if self.token.is_cancelled() {
                return;
            }
            match self.connect_and_join(joined_before).await {
                Ok((generation, tx)) => {
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    if joined_before {
                        tracing::info!(master = %self.config.master, "rejoined the pool");
                    } else {
                        tracing::info!(master = %self.config.master, node = %self.id, name = %self.config.name, "joined the pool");
                    }
                    joined_before = true;
                    backoff = RECONNECT_MIN;
                    self.stay_connected(&tx, &mut sampler).await;
                    self.master_lost(generation);
                    if self.token.is_cancelled() {
                        return;
                    }
                    tracing::warn!(master = %self.config.master, "lost the master; processes keep running, reconnecting");
                }
                Err(e) => {
                    if is_fatal(&e) && !joined_before {
                        if let Some(f) = first.take() {
                            let _ = f.send(Err(e));
                        }
                        return;
                    }
                    if first.is_some() && self.config.kind == NodeKind::Hidden {
                        // A client (poolctl) does not wait for a master that
                        // is not there.
                        if let Some(f) = first.take() {
                            let _ = f.send(Err(e));
                        }
                        return;
                    }
                    tracing::warn!(master = %self.config.master, cause = %e, retry_in = ?backoff, "could not join the pool");
                }
            }
            // Jittered backoff: half to full of the current step.
            let jitter = rand::rng().random_range(0.5..=1.0);
            let wait = backoff.mul_f64(jitter);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.token.cancelled() => return,
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
    }

    async fn connect_and_join(self: &Arc<Self>, rejoin: bool) -> Result<(u64, ConnTx), Error> {
        let stream = tokio::time::timeout(
            self.config.handshake_timeout,
            TcpStream::connect(&self.config.master),
        )
        .await
        .map_err(|_| self.unreachable("connect timed out"))?
        .map_err(|e| self.unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let hcfg = HandshakeConfig {
            timeout: self.config.handshake_timeout,
            max_frame_len: self.config.max_frame_len,
        };
        // TLS first when configured (--tls-*), the cookie handshake inside.
        let (conn, peer) = pool_proto::tls::connect_handshake(
            self.config.tls.as_ref(),
            stream,
            &self.config.master,
            &self.identity,
            &self.config.cookie,
            &hcfg,
        )
        .await?;
        if peer.kind != NodeKind::Master {
            return Err(self.unreachable(format!(
                "{} is a {:?} node, not the master",
                self.config.master, peer.kind
            )));
        }
        let generation = self.master.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, crx) = ConnTx::pending(self.config.peer_queue, self.config.max_frame_len);
        let s1 = self.clone();
        let s2 = self.clone();
        conn::run(
            conn,
            crx,
            None,
            self.config.max_frame_len,
            move |msg| s1.on_master_frame(msg),
            move |why: CloseReason| {
                if !matches!(why, CloseReason::Local) {
                    tracing::debug!(reason = %why, "master connection closed");
                }
                s2.master_lost(generation);
            },
        );
        *lock(&self.master.tx) = Some((generation, tx.clone()));

        let join = Join {
            info: self.info(),
            functions: self.rt.functions().names(),
            names: lock(&self.globals)
                .iter()
                .map(|(n, p)| (n.clone(), *p))
                .collect(),
            apps: self.running_apps(),
            rejoin,
        };
        let welcome = match self
            .request_on(&tx, Request::Join(join), JOIN_TIMEOUT)
            .await
        {
            Ok(Response::Welcome(w)) => w,
            Ok(other) => {
                tx.close();
                return Err(Error::Unexpected {
                    peer: "the master".into(),
                    got: format!("{other:?}"),
                });
            }
            Err(e) => {
                tx.close();
                return Err(e);
            }
        };
        self.apply_welcome(&welcome, rejoin);
        if let Some(fence) = &welcome.fence {
            self.master.fencing.send_replace(true);
            self.fence(fence).await;
            let ready = self.request_on(&tx, Request::Ready, JOIN_TIMEOUT).await;
            self.master.fencing.send_replace(false);
            if let Err(e) = ready {
                tx.close();
                return Err(e);
            }
        }
        self.master.connected.send_replace(true);
        Ok((generation, tx))
    }

    fn apply_welcome(self: &Arc<Self>, w: &Welcome, rejoin: bool) {
        if self.config.report_interval.is_none() {
            self.master
                .report_interval_ms
                .store(w.report_interval_ms.max(50), Ordering::Relaxed);
        }
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        // After a master restart the new master may not know every node yet:
        // members are only added here; departures come as NodeDown.
        for info in &w.members {
            if info.id != self.id {
                members.up(info.clone());
            }
        }
        if !rejoin {
            tracing::debug!(members = w.members.len(), "membership received");
        }
    }

    /// Fencing (docs/protocol.md): this incarnation was declared down while
    /// cut off. Everything other nodes restarted must stop here first.
    async fn fence(self: &Arc<Self>, fence: &Fence) {
        tracing::warn!(
            stop_apps = ?fence.stop_apps,
            lost_names = ?fence.lost_names,
            "the master declared this node down while it was cut off: fencing before rejoining"
        );
        let peers: Vec<_> = self.members.read().map(|m| m.ids()).unwrap_or_default();
        self.close_all_peers();
        for node in peers {
            self.rt.node_down(node);
        }
        for app in &fence.stop_apps {
            self.stop_app(app).await;
        }
        {
            let mut globals = lock(&self.globals);
            for n in &fence.lost_names {
                globals.remove(n);
            }
        }
        // Wait until the processes that lost their links are gone.
        self.wait_remote_linked_gone(Duration::from_secs(5)).await;
    }

    async fn stay_connected(self: &Arc<Self>, tx: &ConnTx, sampler: &mut LoadSampler) {
        if self.config.kind != NodeKind::Worker {
            tokio::select! {
                _ = tx.closed() => {}
                _ = self.token.cancelled() => {}
            }
            return;
        }
        loop {
            let every =
                Duration::from_millis(self.master.report_interval_ms.load(Ordering::Relaxed));
            tokio::select! {
                _ = tx.closed() => return,
                _ = self.token.cancelled() => return,
                _ = tokio::time::sleep(every) => {
                    let mut report = sampler.sample(&self.rt, self.config.capacity);
                    let t = &self.traffic;
                    report.frames_out = t.frames_out.load(Ordering::Relaxed);
                    report.bytes_out = t.bytes_out.load(Ordering::Relaxed);
                    report.frames_in = t.frames_in.load(Ordering::Relaxed);
                    report.bytes_in = t.bytes_in.load(Ordering::Relaxed);
                    tx.send(Msg::LoadReport(report));
                }
            }
        }
    }

    fn master_lost(&self, generation: u64) {
        let was = {
            let mut cur = lock(&self.master.tx);
            match cur.as_ref() {
                Some((g, _)) if *g == generation => cur.take(),
                _ => None,
            }
        };
        if let Some((_, tx)) = was {
            tx.close();
            self.master.connected.send_replace(false);
            // Requests in flight get "connection lost".
            lock(&self.master.pending).clear();
        }
    }

    /// A frame from the master.
    fn on_master_frame(self: &Arc<Self>, msg: Msg) {
        match msg {
            Msg::Response { id, body } => {
                if let Some(tx) = lock(&self.master.pending).remove(&id) {
                    let _ = tx.send(body);
                }
            }
            Msg::NodeUp(info) => {
                if info.id != self.id {
                    tracing::debug!(node = %info.id, name = %info.name, "node up");
                    self.members
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .up(info);
                }
            }
            Msg::NodeDown { node, reason } => {
                if node == self.id {
                    return;
                }
                let info = self
                    .members
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .down(node);
                match &info {
                    // Clients such as poolctl come and go all the time.
                    Some(i) if i.kind == NodeKind::Hidden => {
                        tracing::debug!(%node, name = %i.name, %reason, "client left");
                    }
                    _ => {
                        tracing::info!(%node, name = info.as_ref().map_or("?", |i| i.name.as_str()), %reason, "node down")
                    }
                }
                self.close_peer(node);
                // Links and monitors towards it fire even if we never had a
                // connection with it.
                self.rt.node_down(node);
            }
            Msg::Request {
                id,
                body: Request::Spawn(req),
            } => self.serve_master_spawn(id, req),
            Msg::Request { id, body } => self.serve_master_request(id, body),
            // An exit signal from the master's system pid (`POST /api/kill`
            // on its HTTP API), applied as one from a peer would be.
            exit @ Msg::Exit { .. } => {
                if let Err(other) = self.rt.handle_remote(exit) {
                    tracing::debug!(frame = ?other, "ignored an exit signal the runtime refused");
                }
            }
            other => tracing::debug!(frame = ?other, "ignored a frame the master may not send"),
        }
    }

    /// `Spawn` from the master (`POST /api/spawn` on its HTTP API, after
    /// it placed the process here): served as a peer's spawn is, inline, so
    /// the answer is queued before the new process may run.
    fn serve_master_spawn(&self, id: ReqId, req: SpawnRequest) {
        let refuse = |code, message: &str| Response::Error(RemoteError::new(code, message));
        let body = if self.config.kind != NodeKind::Worker {
            refuse(
                ErrorCode::Refused,
                "a hidden node does not host processes for others",
            )
        } else if self.stopping.load(Ordering::Acquire) {
            refuse(
                ErrorCode::Overloaded,
                "the node is stopping: spawn elsewhere",
            )
        } else {
            match self.rt.handle_spawn(req) {
                Ok((pid, gate)) => {
                    self.master_push(Msg::Response {
                        id,
                        body: Response::Spawned(pid),
                    });
                    // Only now may the process run (and exit).
                    drop(gate);
                    return;
                }
                Err(e) => Response::Error(e),
            }
        };
        self.master_push(Msg::Response { id, body });
    }

    fn serve_master_request(self: &Arc<Self>, id: ReqId, body: Request) {
        let shared = self.clone();
        self.ctl.spawn(async move {
            let body = match body {
                Request::LocalProcesses => Response::Processes(shared.local_processes()),
                Request::StartApp {
                    app,
                    generation,
                    spec,
                } => shared.start_app(app, generation, spec).await,
                Request::StopApp { app } => {
                    shared.stop_app(&app).await;
                    Response::Ok
                }
                Request::Inspect { pid } => shared.inspect_local(pid).await,
                Request::Ping => Response::Pong,
                other => Response::Error(RemoteError::new(
                    ErrorCode::Refused,
                    format!("a node does not serve {} from the master", other.name()),
                )),
            };
            shared.master_push(Msg::Response { id, body });
        });
    }

    /// This node's processes, for `poolctl ps`.
    pub(crate) fn local_processes(&self) -> Vec<ProcessInfo> {
        let now = std::time::Instant::now();
        self.rt
            .processes()
            .into_iter()
            .filter(|p| p.function != "call" && p.function != "wait")
            .map(|p| ProcessInfo {
                pid: p.pid,
                node: self.config.name.clone(),
                function: p.function,
                status: p.status,
                age_ms: now.saturating_duration_since(p.started).as_millis() as u64,
                mailbox: p.mailbox as u64,
                name: p.name,
                owner: p.owner,
            })
            .collect()
    }
}
