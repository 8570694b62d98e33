//! One node connection, from the handshake to its close: the master side
//! of docs/protocol.md, and the shell that applies the state's decisions
//! for it.
//!
//! ```text
//! session task (this module: handshake, then the reader loop)
//! ├── writer task        drains the link's outbox (outbox.rs); ends with the session
//! └── request tasks      ListProcesses / TreeStart / TreeShow / TreeStop /
//!                        TreeRestart / TreeRemove, which
//!                        wait on other nodes (node_requests.rs); they answer
//!                        through the outbox
//! ```
//!
//! The reader handles most frames inline — a load report or a placement
//! query is a short critical section on the pool state — and queues the
//! answers of a whole read batch as one chunk, so a client that pipelines
//! queries gets its answers in few writes. Requests that wait on other nodes
//! run as tasks, so a slow worker never stalls this connection. A `Join`,
//! a `Ready` or an `AppEvent` is a transition of the pool state
//! ([`Shared::transition`]): the state decides, and its effects (the
//! `Welcome`, `NodeUp` to the others, closing a replaced session, starting
//! roots) are carried out by the shell; this module only hands it the
//! frame and the time.
//!
//! The session ends on end of stream, on a frame that does not decode (that
//! connection only, with a logged reason), when the master stops, or when
//! the link is closed from elsewhere (declared down by timeout, replaced by
//! a newer session of the same node, too slow to read). If it was its
//! node's current session and the master is not stopping, the node is down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use pool_proto::codec::{HEADER_LEN, encode_frame};
use pool_proto::handshake::HandshakeConfig;
use pool_proto::{
    Codec, ErrorCode, Msg, NodeKind, RemoteError, ReqId, Request, Response, TraceHex, WasmName,
};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::clock::{Now, now_ms};
use crate::membership::Conn;
use crate::node_requests;
use crate::outbox::{NodeLink, run_writer};
use crate::shared::Shared;
use crate::state::Joined;

/// Answers gathered before they are handed to the writer in one chunk.
const MAX_BATCH: usize = 64 * 1024;

/// How long a connection may stay open after the handshake without
/// joining: a node joins at once; anything else holds a slot for nothing.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one connection to its end. Spawned by the accept loop on the
/// master's tracker, holding one connection slot until it returns.
pub(crate) async fn run(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    shared.metrics.connections.increment(1.0);
    // Every line this connection logs names its address, and its node once
    // the handshake told who it is.
    let span = info_span!("session", %addr, node = tracing::field::Empty);
    run_inner(shared.clone(), stream).instrument(span).await;
    shared.metrics.connections.decrement(1.0);
}

/// The session proper: handshake, split, read, close, declare.
async fn run_inner(shared: Arc<Shared>, stream: TcpStream) {
    // Answers are small and latency-bound; the writer already coalesces.
    let _ = stream.set_nodelay(true);
    // 1. Handshake as responder: TLS first when configured (--tls-*), the
    // cookie challenge inside it, both within the handshake timeout.
    let hs = HandshakeConfig {
        timeout: shared.config.handshake_timeout,
        max_frame_len: shared.config.max_frame_len,
    };
    // A master that stops does not wait for half-done handshakes.
    let res = tokio::select! {
        _ = shared.token.cancelled() => return,
        res = pool_proto::tls::accept_handshake(
            shared.config.tls.as_ref(),
            stream,
            &shared.identity,
            &shared.config.cookie,
            &hs,
        ) => res,
    };
    // A failed handshake (wrong cookie, no TLS, too slow) costs this
    // connection only; nothing was registered yet, so nothing to undo.
    let (framed, who) = match res {
        Ok(ok) => ok,
        Err(e) => {
            warn!(cause = %e, "handshake failed; connection closed");
            return;
        }
    };
    tracing::Span::current().record("node", tracing::field::display(&who));
    if who.kind == NodeKind::Master {
        warn!("a master connected as a node; connection closed");
        return;
    }
    // 2. Split: this task reads, a writer task writes. The link (outbox,
    //    pending requests, close token) is registered with the shared state
    //    so that effects addressed to this session reach it.
    let parts = framed.into_parts();
    let (rd, wr) = parts.io.into_split();
    let mut reader = FramedRead::new(
        rd,
        Codec::<Msg>::with_max_frame_len(shared.config.max_frame_len),
    );
    // Frames the node sent right behind its handshake are already buffered.
    reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
    let conn = Conn {
        session: shared.next_session(),
        node: who.node,
        name: who.name.clone(),
    };
    let (link, rx) = NodeLink::new(
        conn,
        shared.config.max_frame_len,
        shared.feed.clone(),
        shared.token.child_token(),
    );
    let link = Arc::new(link);
    // The writer owns the write half and ends when the link's token is
    // cancelled (or after writing an `Out::Close`); it is awaited below.
    let writer = shared.tracker.spawn(run_writer(link.clone(), rx, wr));
    shared.lock().attach(link.clone());

    // 3. Read until the end.
    let mut session = Session {
        shared: shared.clone(),
        link: link.clone(),
        joined: false,
        refused: false,
        batch: BytesMut::new(),
        noted: Noted::default(),
    };
    let end = session.read_loop(&mut reader).await;
    session.flush();

    // 4. Close. A refused node gets its error before the socket closes
    //    (bounded: a node that does not read must not hold the slot);
    //    otherwise whatever is still queued is dropped with the socket.
    if session.refused {
        link.close_after_flush();
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    } else {
        link.closed.cancel();
        let _ = writer.await;
    }
    // Request tasks waiting on this node fail now (Closed) instead of at
    // their timeout.
    link.closed.cancel();
    link.fail_pending();
    debug!(end, "connection closed");

    // 5. Unregister the link and, if this was its node's current session
    //    and the master is not stopping, declare the node down (in one
    //    critical section, so no effect is addressed to a half-gone node).
    let conn = &link.conn;
    let requests = {
        let mut pool = shared.lock();
        pool.detach(conn.session);
        if session.joined && !shared.token.is_cancelled() {
            let effects = pool.session_closed(conn, Now::read());
            pool.apply(effects)
        } else {
            Vec::new()
        }
    };
    node_requests::spawn(&shared, requests);
}

/// Whether `buf` holds at least one whole frame.
fn has_frame(buf: &BytesMut) -> bool {
    buf.len() >= HEADER_LEN
        && buf.len() >= HEADER_LEN + u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// The reader side of a connection. Owned by the session task; dropping
/// it (when the session ends) drops nothing that other tasks need: the
/// writer and the request tasks hold their own references to the link.
struct Session {
    /// The master: the pool state, the config, the tracker that request
    /// tasks are spawned on.
    shared: Arc<Shared>,
    /// This connection's outbox, pending requests and close token. Its
    /// token ends the read loop when the connection is closed from
    /// elsewhere.
    link: Arc<NodeLink>,
    /// The node's `Join` was welcomed: the session's end declares it down.
    joined: bool,
    /// The node's `Join` was refused: close after the error is written.
    refused: bool,
    /// Answers of the current read batch not yet handed to the writer;
    /// flushed before anything that queues on the link directly (a `Join`
    /// or `Ready` transition), so that answers keep their order.
    batch: BytesMut,
    /// Refused and ignored frames already logged.
    noted: Noted,
}

/// How often one connection may log a refused or ignored frame of one kind.
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Rate limit of the log lines about one connection's refused and ignored
/// frames: the first of each kind is logged, then at most one per
/// [`NOTE_EVERY`] with the number left out since, so a node that floods
/// wrong frames cannot flood the master's log.
#[derive(Debug, Default)]
struct Noted(std::collections::HashMap<&'static str, (Instant, u64)>);

impl Noted {
    /// One more frame of `kind`: `Some(left_out)` if it is to be logged.
    fn hit(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.0.get_mut(kind) {
            None => {
                self.0.insert(kind, (now, 0));
                Some(0)
            }
            Some((last, left_out)) if now.duration_since(*last) >= NOTE_EVERY => {
                *last = now;
                Some(std::mem::take(left_out))
            }
            Some((_, left_out)) => {
                *left_out += 1;
                None
            }
        }
    }
}

impl Session {
    /// Reads frames until the connection ends; returns why, for the log.
    async fn read_loop(
        &mut self,
        reader: &mut FramedRead<pool_proto::tls::ReadHalf, Codec<Msg>>,
    ) -> &'static str {
        let join_deadline = tokio::time::sleep(JOIN_TIMEOUT);
        tokio::pin!(join_deadline);
        // Made once: a `cancelled()` made anew for every frame costs each
        // load report a lock and a registration.
        let token = self.link.closed.clone();
        let closed = token.cancelled();
        tokio::pin!(closed);
        loop {
            // Biased: a close decided elsewhere (down, replaced, too slow)
            // wins over frames still arriving from the node.
            let next = tokio::select! {
                biased;
                _ = &mut closed => return "closed by the master",
                _ = &mut join_deadline, if !self.joined => {
                    warn!(after = ?JOIN_TIMEOUT, "no Join after the handshake; connection closed");
                    return "no join";
                }
                next = reader.next() => next,
            };
            match next {
                None => return "end of stream",
                // A frame that does not decode: the stream cannot be
                // resynchronised, so this connection ends (only this one).
                // A reset or an end of stream at a frame boundary is a
                // peer that exited (a poolctl run ends so): not a warning.
                Some(Err(e)) if pool_proto::listener::is_quiet_close(&e) => {
                    debug!(cause = %e, "the peer closed the connection");
                    return "closed by the peer";
                }
                Some(Err(e)) => {
                    warn!(cause = %e, "closing the connection: bad frame");
                    return "bad frame";
                }
                Some(Ok(msg)) => self.handle(msg),
            }
            if self.refused {
                return "join refused";
            }
            // Hand the batch over once no whole frame is left to handle.
            if !has_frame(reader.read_buffer()) || self.batch.len() >= MAX_BATCH {
                self.flush();
            }
        }
    }

    /// Sends the gathered answers: written to the socket here when the
    /// writer is idle (a load report's ack, the hot path, wakes no other
    /// task then), else handed to the writer ([`NodeLink::send_now`]).
    fn flush(&mut self) {
        self.link.send_now(&mut self.batch);
    }

    /// Queues an answer in the batch. An answer that cannot be encoded
    /// (over the frame limit: a huge listing) is replaced by an error
    /// saying so, so that the node's request does not wait for nothing.
    fn answer(&mut self, id: ReqId, body: Response) {
        let msg = Msg::Response { id, body };
        if let Err(e) = encode_frame(&msg, &mut self.batch, self.shared.config.max_frame_len) {
            warn!(cause = %e, "answer cannot be encoded");
            let err = Msg::Response {
                id,
                body: Response::Error(RemoteError::new(ErrorCode::Internal, e.to_string())),
            };
            let _ = encode_frame(&err, &mut self.batch, self.shared.config.max_frame_len);
        }
    }

    /// Queues a push (not an answer) in the batch; one that cannot be
    /// encoded is logged and dropped.
    fn push(&mut self, msg: &Msg) {
        if let Err(e) = encode_frame(msg, &mut self.batch, self.shared.config.max_frame_len) {
            warn!(cause = %e, kind = msg.name(), "push cannot be encoded");
        }
    }

    /// One frame from the node.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Request { id, body } => self.request(id, body),
            // An answer to one of the master's requests (StartApp,
            // LocalProcesses, ...): wakes the request task waiting for it.
            Msg::Response { id, body } => {
                if !self.link.complete(id, body) {
                    self.ignored(
                        "Response",
                        "it answers no pending request of the master (a late answer, or a made-up id)",
                    );
                }
            }
            // The hot path: 10,000 nodes report twice a second. One short
            // lock, no effects.
            Msg::LoadReport(report) if self.joined => {
                let sent = report.sent_at_ms;
                let seq = report.seq;
                let arrived = Instant::now();
                if self
                    .shared
                    .lock()
                    .report(self.link.conn.node, report, arrived)
                {
                    // The worker's lease on its master session runs from
                    // the reports acknowledged: the ack goes out with this
                    // batch, right away.
                    self.push(&Msg::ReportAck { seq });
                } else {
                    self.ignored(
                        "LoadReport",
                        "only a live worker reports its load (this is a hidden node, a node still fencing, or the report is older than the last)",
                    );
                }
                let m = &self.shared.metrics;
                m.reports.increment(1);
                if sent > 0 {
                    m.report_latency
                        .record(now_ms().saturating_sub(sent) as f64 / 1000.0);
                }
            }
            Msg::AppEvent(event) if self.joined => {
                let node = self.link.conn.node;
                let (ours, requests) = self
                    .shared
                    .transition(|s| s.app_event(node, event, Now::read()));
                node_requests::spawn(&self.shared, requests);
                if !ours {
                    self.ignored(
                        "AppEvent",
                        "the root of that application does not run on this node",
                    );
                }
            }
            // Placements the node made on its copy of the table: counted
            // as the master's own (and relayed to the other copies).
            Msg::PlacedNotice(notice) if self.joined => {
                self.shared
                    .lock()
                    .placed_notice(self.link.conn.session, &notice);
            }
            // A name's holder exited; a node may only release its own.
            Msg::NameReleased { name, pid } if self.joined => {
                if pid.node() == self.link.conn.node {
                    self.shared.lock().names.release(&name, pid);
                } else {
                    self.ignored(
                        "NameReleased",
                        "the process is not on this node: a node releases its own processes' names only",
                    );
                }
            }
            // Anything else is a node speaking out of turn: logged (rate
            // limited) and ignored, never fatal.
            other => {
                let why = match other {
                    Msg::LoadReport(_)
                    | Msg::AppEvent(_)
                    | Msg::NameReleased { .. }
                    | Msg::PlacedNotice(_) => {
                        "send Join first: the master serves joined nodes only"
                    }
                    Msg::NodeUp(_)
                    | Msg::NodeDown { .. }
                    | Msg::Members(_)
                    | Msg::MembersDelta(_) => "only the master sends membership changes",
                    Msg::LoadUpdate(_) => "only the master sends load table updates",
                    _ => {
                        "process signals go from node to node, never to the master (it hosts no processes)"
                    }
                };
                self.ignored(other.name(), why);
            }
        }
    }

    /// One request from the node.
    fn request(&mut self, id: ReqId, body: Request) {
        let name = body.name();
        // Before its Join a connection may only join (or ping): the state
        // knows nothing about it yet.
        if !self.joined {
            match body {
                Request::Join(join) => self.join(id, join),
                Request::Ping => self.answer(id, Response::Pong),
                _ => {
                    let resp =
                        self.refuse(name, "send Join first: the master serves joined nodes only");
                    self.answer(id, resp);
                }
            }
            return;
        }
        let now = Instant::now();
        // Short requests are answered inline, into the batch; the ones that
        // wait on other nodes return early and answer from their task.
        let resp = match body {
            Request::Ping => Response::Pong,
            // The node saw a gap in the deltas: the whole list goes out
            // ahead of this answer (the writer sends it from the feed).
            Request::SyncMembers => {
                self.flush();
                self.link.member_list();
                Response::Ok
            }
            Request::Place(query) => self.place(query),
            // The node places its spawns itself from now on: its copy of
            // the table goes out ahead of any update numbered after it
            // (queued under the lock, which the load push builds under).
            Request::WatchLoads => {
                self.flush();
                let mut pool = self.shared.lock();
                let copy = pool.watch_loads(self.link.conn.session);
                self.link.respond(id, Response::Loads(Box::new(copy)));
                return;
            }
            // OTP `global`: first come first served; `false` if taken.
            Request::RegisterName { name, pid } => {
                let from = self.link.conn.node;
                let (ok, requests) = self
                    .shared
                    .transition(|s| s.register_name_from(from, &name, pid));
                // A pid of another worker: that worker watches it.
                node_requests::spawn(&self.shared, requests);
                Response::Registered(ok)
            }
            Request::UnregisterName { name } => {
                self.shared.lock().names.unregister(&name);
                Response::Ok
            }
            Request::WhereIs { name } => Response::WhereIs(self.shared.lock().names.whereis(&name)),
            Request::ListNames => Response::Names(self.shared.lock().names.all()),
            Request::ListNodes => Response::Nodes(self.shared.lock().list_nodes(now)),
            Request::TreeList => Response::Apps(self.shared.lock().app_summaries()),
            Request::ListModules => Response::Modules(self.shared.modules.list()),
            Request::ResolveFunction { function } => {
                match self.shared.modules.resolve(&function) {
                    Ok(f) => Response::Function(f),
                    Err(e) => Response::Error(e),
                }
            }
            // Every session passed the cookie handshake (and TLS where it
            // is on): any joined node, poolctl included, may push. Hashing,
            // validating and writing a module take time: a task.
            Request::PushModule { file, bytes, hash } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    s.modules
                        .push(file, bytes, hash, now_ms())
                        .await
                        .map(|info| Response::Modules(vec![info]))
                });
            }
            Request::FetchModule { hash } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    s.modules
                        .fetch(hash)
                        .await
                        .map(|bytes| Response::ModuleBytes { bytes })
                });
            }
            Request::Ready => {
                // The NodeUp and the starts are queued on other links by
                // the transition; answers gathered so far go first.
                self.flush();
                let conn = &self.link.conn;
                let (res, requests) = self.shared.transition(|s| s.ready(conn, Now::read()));
                let resp = match res {
                    Ok(()) => {
                        // Its first report deadline may be the earliest.
                        self.shared.fd_wakeup.notify_one();
                        Response::Ok
                    }
                    Err(e) => Response::Error(e),
                };
                // The answer goes out before any root placed on this node
                // by the transition: the node ends its fencing when it
                // reads the answer, and a StartApp read before that would
                // be refused as "fencing".
                self.answer(id, resp);
                self.flush();
                node_requests::spawn(&self.shared, requests);
                return;
            }
            // Nothing to tell anyone yet: the node stays a member until its
            // connection closes, which is then a `Left` down (not fenced).
            Request::Leave => {
                self.shared.lock().leave(&self.link.conn);
                Response::Ok
            }
            // These wait on other nodes: each runs as a task on the
            // tracker and answers through the link when it is done, so the
            // reader goes on with the next frame.
            Request::ListProcesses { node } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::list_processes(&s, node.as_deref())
                        .await
                        .map(Response::Processes)
                });
            }
            Request::TreeStart { spec, source, text } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::tree_start(&s, spec, source, text).await.map(Response::Apps)
                });
            }
            Request::TreeShow { id: app } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::tree_show(&s, &app).await.map(|v| Response::Tree(Box::new(v)))
                });
            }
            Request::TreeStop { id: app } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::tree_stop(&s, &app).await.map(Response::Apps)
                });
            }
            Request::Join(_) => self.refuse(
                name,
                "this connection already joined: one Join per connection",
            ),
            Request::TreeRestart { id: app } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::tree_restart(&s, &app).await.map(Response::Apps)
                });
            }
            Request::TreeRemove { id: app } => {
                let s = self.shared.clone();
                return self.spawn_answer(id, async move {
                    node_requests::tree_remove(&s, &app).await.map(Response::Apps)
                });
            }
            Request::LocalProcesses
            | Request::StartApp { .. }
            | Request::MasterSeen
            | Request::WatchName { .. }
            | Request::StopApp { .. }
            | Request::Inspect { .. }
            | Request::Spawn(_) => self.refuse(
                name,
                "the master does not serve this request: send it to a worker (the master hosts no processes)",
            ),
        };
        self.answer(id, resp);
    }

    /// A placement query (Erlang's `get_node`). A traced one (a spawn
    /// followed with `poolctl --trace`) has its decision logged at info:
    /// the trace, the chosen node(s) and the strategy that chose them.
    fn place(&mut self, mut query: pool_proto::PlaceQuery) -> Response {
        // A wasm function is placed by its canonical name (a named form
        // resolved to the module last pushed under it), which the answer
        // carries so that the spawner sends it; a module not stored is
        // refused before any node is chosen.
        let canonical = match query.function.as_deref() {
            Some(f) if WasmName::is_wasm(f) => match self.shared.modules.resolve(f) {
                Ok(c) => {
                    query.function = Some(c.clone());
                    Some(c)
                }
                Err(e) => return Response::Error(e),
            },
            _ => None,
        };
        let (result, default) = {
            let mut pool = self.shared.lock();
            (pool.place(&query, now_ms()), pool.settings.placement)
        };
        // Logged outside the lock: the pool state is the master's hot path.
        // The session's span names the asking node.
        if let Some(trace) = query.trace {
            // What decided: a named node, the key's hash, or a strategy.
            let strategy = match (&query.node, &query.key) {
                (Some(_), _) => "named node".to_owned(),
                (None, Some(_)) => "keyed".to_owned(),
                (None, None) => query.strategy.unwrap_or(default).to_string(),
            };
            match &result {
                Ok(placed) => {
                    let nodes: Vec<&str> = placed.iter().map(|p| p.name.as_str()).collect();
                    info!(
                        trace = %TraceHex(trace),
                        nodes = %nodes.join(","),
                        %strategy,
                        key = query.key.as_deref(),
                        function = query.function.as_deref(),
                        "placed"
                    );
                }
                Err(e) => info!(
                    trace = %TraceHex(trace),
                    %strategy,
                    cause = %e,
                    "placement refused"
                ),
            }
        }
        match result {
            Ok(mut placed) => {
                if canonical.is_some() {
                    for p in &mut placed {
                        p.function.clone_from(&canonical);
                    }
                }
                Response::Placed(placed)
            }
            Err(e) => Response::Error(e.into()),
        }
    }

    /// Logs (rate-limited) a frame of `kind` that is ignored, and why.
    fn ignored(&mut self, kind: &'static str, why: &str) {
        if let Some(left_out) = self.noted.hit(kind, Instant::now()) {
            warn!(left_out, "ignored a {kind} from this node: {why}");
        }
    }

    /// Logs (rate-limited) a request of kind `name` that is refused, and
    /// returns the `Refused` answer saying why.
    fn refuse(&mut self, name: &'static str, why: &str) -> Response {
        if let Some(left_out) = self.noted.hit(name, Instant::now()) {
            warn!(left_out, "refused a request: {name}: {why}");
        }
        refused(why)
    }

    /// Runs a request that waits on other nodes as a task; its answer goes
    /// straight to the writer (out of order with the batch, which is fine:
    /// answers carry their request id). The task holds the link, not the
    /// session, so it may finish after the connection closed; its answer
    /// is then dropped.
    fn spawn_answer(
        &mut self,
        id: ReqId,
        work: impl Future<Output = Result<Response, RemoteError>> + Send + 'static,
    ) {
        let link = self.link.clone();
        self.shared.tracker.spawn(async move {
            let body = work.await.unwrap_or_else(Response::Error);
            link.respond(id, body);
        });
    }

    /// The node's `Join`: a transition of the pool state, whose first
    /// effect queues the `Welcome` on this link.
    fn join(&mut self, id: ReqId, join: pool_proto::Join) {
        // 1. Answers gathered before the Join go out before the Welcome.
        self.flush();
        // 2. Decide, and carry out the effects under the same lock: the
        //    Welcome here, NodeUp to the others, closing the node's previous
        //    session (it closes without declaring the node down: it is no
        //    longer the node's current session).
        let conn = &self.link.conn;
        let (joined, requests) = self
            .shared
            .transition(|s| s.join(conn, id, join, Now::read()));
        // 3. Roots placed on the newcomer (or on others) start as tasks.
        node_requests::spawn(&self.shared, requests);
        match joined {
            Joined::Refused(e) => {
                warn!(code = ?e.code, reason = %e.message, "join refused");
                self.answer(id, Response::Error(e));
                self.refused = true;
            }
            Joined::Welcomed { .. } => {
                self.joined = true;
                // Its first report deadline may be the earliest.
                self.shared.fd_wakeup.notify_one();
            }
        }
    }
}

/// A `Refused` error.
fn refused(message: &str) -> Response {
    Response::Error(RemoteError::new(ErrorCode::Refused, message))
}
