//! [`FakeMaster`]: a master speaking the real wire through pool-proto
//! (handshake as a master, Join -> Welcome, NodeUp/NodeDown pushes, the
//! node requests a Pool API uses), over an in-memory network. The mirror
//! of pool-master's simulated node (`pool-master/tests/support/mod.rs`
//! `SimNode`); it depends on pool-proto only, never on pool-master.
//!
//! It follows docs/protocol.md where a worker can tell: names are unique
//! among live nodes, the same id reconnecting replaces its session, a node
//! whose connection closes is declared down at once (and fenced when it
//! rejoins), a fenced node counts as live only after `Ready`, global
//! names of a node that goes down are dropped. Placement is deliberately
//! simple (named node, key hash, or round robin over the live workers).
//! Tests steer it: drop or declare down a node's connection, stop
//! accepting, plan a fence, restart it with its memory wiped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::{self, Cookie, HandshakeConfig, Identity};
use pool_proto::transport::{BoxIo, Listen, MemNetwork};
use pool_proto::{
    AppEvent, DownReason, ErrorCode, Fence, Join, LoadReport, MemberList, Msg, NodeId, NodeInfo,
    NodeKind, NodeStatus, Pid, PlaceQuery, Placed, RemoteError, ReqId, Request, Response, Welcome,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where the fake master listens.
pub const MASTER_ADDR: &str = "master:7400";

/// The report interval the fake master asks for.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// What the fake master saw, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// A Join it answered with a Welcome (`fenced`: with a fence).
    Joined {
        name: String,
        join: Join,
        fenced: bool,
    },
    /// A Join it refused.
    Refused { name: String, code: ErrorCode },
    /// `Ready` after a fence.
    Ready { name: String },
    /// `Leave`.
    Leave { name: String },
    /// A node it declared down, and why.
    Down { name: String, reason: DownReason },
    /// An application event.
    AppEvent { name: String, event: AppEvent },
    /// A global name released by its holder's node.
    NameReleased { name: String, pid: Pid },
    /// The holder's node answered `Ok` to the `WatchName` the master sent
    /// for a name another node registered.
    Watched { name: String, pid: Pid },
    /// Node `name` asked for the membership list again (`SyncMembers`).
    MembersSynced { name: String },
}

/// One node's session.
#[derive(Debug)]
struct Member {
    info: NodeInfo,
    /// Which connection (a reconnect replaces it).
    session: u64,
    /// Frames to the node.
    out: mpsc::UnboundedSender<Msg>,
    /// Ends the session's tasks (closes the connection).
    cut: CancellationToken,
    /// Counts as live (false while it fences).
    live: bool,
    /// Sent `Leave`.
    leaving: bool,
    /// Load reports received.
    reports: u64,
    /// The last one.
    last_report: Option<LoadReport>,
}

#[derive(Debug)]
struct State {
    me: Identity,
    cookie: Cookie,
    /// False: connections are closed before the handshake.
    accepting: bool,
    members: HashMap<NodeId, Member>,
    /// Ids declared down (fenced if they come back).
    downs: HashSet<NodeId>,
    names: BTreeMap<String, Pid>,
    /// Nodes (by name) whose load reports are not acknowledged: their
    /// session is silent, as across a partition that drops packets.
    muted: HashSet<String>,
    /// Roots a node must stop on its next join (by node name).
    planned_stops: HashMap<String, Vec<String>>,
    /// Roots started on a node as soon as its `Ready` is handled, before
    /// the answer to `Ready` leaves (by node name), as the real master
    /// may: the answer to each `StartApp` goes to the receiver.
    start_on_ready: HashMap<String, (Request, oneshot::Sender<Response>)>,
    seen: Vec<Seen>,
    /// When each connection was accepted.
    attempts: Vec<Instant>,
    next_session: u64,
    next_req: ReqId,
    /// Our requests to nodes waiting for answers.
    pending: HashMap<ReqId, oneshot::Sender<Response>>,
    /// Round-robin position.
    rr: usize,
    /// The number a Welcome and a list sent again (`SyncMembers`) give as
    /// the next membership change; the tests push numbered deltas
    /// themselves ([`FakeMaster::push`]).
    members_next: u64,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake master on a [`MemNetwork`] (see the module docs). Dropping it
/// closes every connection and frees its address.
pub struct FakeMaster {
    pub addr: String,
    net: MemNetwork,
    state: Shared,
    /// Ends the accept loop and every session.
    stop: CancellationToken,
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeMaster {
    /// A master at [`MASTER_ADDR`] with `cookie`.
    pub fn start(net: &MemNetwork, cookie: Cookie) -> FakeMaster {
        FakeMaster::start_at(net, MASTER_ADDR, cookie)
    }

    /// A master at `addr`.
    pub fn start_at(net: &MemNetwork, addr: &str, cookie: Cookie) -> FakeMaster {
        let mut listener = net.bind(addr).expect("the master's address is free");
        let state: Shared = Arc::new(Mutex::new(State {
            me: Identity {
                node: NodeId::random(),
                name: "master".into(),
                kind: NodeKind::Master,
            },
            cookie,
            accepting: true,
            members: HashMap::new(),
            downs: HashSet::new(),
            names: BTreeMap::new(),
            muted: HashSet::new(),
            planned_stops: HashMap::new(),
            start_on_ready: HashMap::new(),
            seen: Vec::new(),
            attempts: Vec::new(),
            next_session: 1,
            next_req: 1,
            pending: HashMap::new(),
            rr: 0,
            members_next: 0,
        }));
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => break,
                    r = listener.accept() => r,
                };
                let Ok((io, _from)) = accepted else { break };
                let accepting = {
                    let mut s = lock(&st);
                    s.attempts.push(Instant::now());
                    s.accepting
                };
                if accepting {
                    tokio::spawn(session(st.clone(), io, token.child_token(), token.clone()));
                }
            }
            // The listener drops here: the address is free again.
        });
        FakeMaster {
            addr: addr.to_owned(),
            net: net.clone(),
            state,
            stop,
        }
    }

    /// Stops this master (every connection closes, the address is freed)
    /// and starts a new one at the same address that remembers nothing:
    /// a master restarted without its state directory.
    pub async fn restart(&mut self) {
        self.away(Duration::ZERO).await;
    }

    /// Stops this master, stays away for `away` (connections to its
    /// address are refused meanwhile), then starts a new one that
    /// remembers nothing.
    pub async fn away(&mut self, away: Duration) {
        self.stop.cancel();
        // The accept loop drops the listener once it sees the stop.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.net.bind(&self.addr) {
                Ok(l) => {
                    drop(l);
                    break;
                }
                Err(_) if Instant::now() < deadline => tokio::task::yield_now().await,
                Err(e) => panic!("the old master never freed {}: {e}", self.addr),
            }
        }
        tokio::time::sleep(away).await;
        let cookie = lock(&self.state).cookie.clone();
        *self = FakeMaster::start_at(&self.net, &self.addr, cookie);
    }

    /// True: node `name`'s load reports are no longer acknowledged (to
    /// its lease, the session is as silent as across a partition that
    /// drops packets, though it stays open); false: they are again.
    pub fn mute(&self, name: &str, on: bool) {
        let mut st = lock(&self.state);
        if on {
            st.muted.insert(name.to_owned());
        } else {
            st.muted.remove(name);
        }
    }

    /// False: every new connection is closed at once (the node's join
    /// fails and it retries); true: joins are served again.
    pub fn set_accepting(&self, on: bool) {
        lock(&self.state).accepting = on;
    }

    /// When each connection was accepted (served or not).
    pub fn attempts(&self) -> Vec<Instant> {
        lock(&self.state).attempts.clone()
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The Joins of node `name` it welcomed, with whether each was fenced.
    pub fn joins_of(&self, name: &str) -> Vec<(Join, bool)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Joined {
                    name: n,
                    join,
                    fenced,
                } if n == name => Some((join, fenced)),
                _ => None,
            })
            .collect()
    }

    /// True once `name` is a live member.
    pub fn is_live(&self, name: &str) -> bool {
        lock(&self.state)
            .members
            .values()
            .any(|m| m.info.name == name && m.live)
    }

    /// The id of member `name` (live or fencing).
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        lock(&self.state)
            .members
            .values()
            .find(|m| m.info.name == name)
            .map(|m| m.info.id)
    }

    /// Load reports received from `name` in its current session.
    pub fn reports_of(&self, name: &str) -> u64 {
        lock(&self.state)
            .members
            .values()
            .find(|m| m.info.name == name)
            .map_or(0, |m| m.reports)
    }

    /// The global names it holds.
    pub fn names(&self) -> BTreeMap<String, Pid> {
        lock(&self.state).names.clone()
    }

    /// Gives global name `name` to `pid` (as if another node registered
    /// it), so a node claiming it on rejoin loses it.
    pub fn set_name(&self, name: &str, pid: Pid) {
        lock(&self.state).names.insert(name.to_owned(), pid);
    }

    /// The next join of node `node` is fenced with these roots to stop.
    pub fn plan_stop_apps(&self, node: &str, apps: &[&str]) {
        lock(&self.state).planned_stops.insert(
            node.to_owned(),
            apps.iter().map(|a| (*a).to_owned()).collect(),
        );
    }

    /// When node `node` next sends `Ready`, the master sends it
    /// `StartApp { app, generation: 1, spec }` before it answers `Ready`;
    /// the receiver gets the node's answer to the start.
    pub fn start_on_ready(
        &self,
        node: &str,
        app: &str,
        spec: pool_proto::TreeSpec,
    ) -> oneshot::Receiver<Response> {
        let (tx, rx) = oneshot::channel();
        let body = Request::StartApp {
            app: app.to_owned(),
            generation: 1,
            spec,
        };
        lock(&self.state)
            .start_on_ready
            .insert(node.to_owned(), (body, tx));
        rx
    }

    /// Closes node `name`'s connection: the master declares it down
    /// (`connection_closed`), tells the others, and fences it when it
    /// rejoins.
    pub fn drop_node(&self, name: &str) {
        let mut st = lock(&self.state);
        if let Some(id) = find(&st, name) {
            declare_down(&mut st, id, DownReason::ConnectionClosed);
        }
    }

    /// Declares node `name` down as after a silence (`timeout`), and
    /// closes its connection.
    pub fn declare_down(&self, name: &str) {
        let mut st = lock(&self.state);
        if let Some(id) = find(&st, name) {
            declare_down(&mut st, id, DownReason::Timeout);
        }
    }

    /// Sends a request to node `name` and waits (5 s) for its answer.
    pub async fn request(&self, name: &str, body: Request) -> Response {
        let rx = {
            let mut st = lock(&self.state);
            let id = find(&st, name).unwrap_or_else(|| panic!("no member named {name}"));
            ask(&mut st, id, body)
        };
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the node answers in time")
            .expect("the node answers")
    }

    /// Sets the number of the next membership change that Welcomes and
    /// lists sent again (answering `SyncMembers`) give.
    pub fn set_members_next(&self, next: u64) {
        lock(&self.state).members_next = next;
    }

    /// Sends a frame to node `name`.
    pub fn push(&self, name: &str, msg: Msg) {
        let st = lock(&self.state);
        let id = find(&st, name).unwrap_or_else(|| panic!("no member named {name}"));
        let _ = st.members[&id].out.send(msg);
    }
}

fn find(st: &State, name: &str) -> Option<NodeId> {
    st.members
        .values()
        .find(|m| m.info.name == name)
        .map(|m| m.info.id)
}

/// Sends request `body` to member `id`; the answer comes on the receiver.
fn ask(st: &mut State, id: NodeId, body: Request) -> oneshot::Receiver<Response> {
    let req = st.next_req;
    st.next_req += 1;
    let (tx, rx) = oneshot::channel();
    st.pending.insert(req, tx);
    if let Some(m) = st.members.get(&id) {
        let _ = m.out.send(Msg::Request { id: req, body });
    }
    rx
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(RemoteError::new(code, message))
}

/// Tells every member but `except` (live ones only, if `live_only`).
fn broadcast(st: &State, msg: &Msg, except: Option<NodeId>, live_only: bool) {
    for m in st.members.values() {
        if Some(m.info.id) != except && (m.live || !live_only) {
            let _ = m.out.send(msg.clone());
        }
    }
}

fn make_live(st: &mut State, id: NodeId) {
    let Some(m) = st.members.get_mut(&id) else {
        return;
    };
    m.live = true;
    let info = m.info.clone();
    st.downs.remove(&id);
    broadcast(st, &Msg::NodeUp(info), Some(id), true);
}

/// Declares member `id` down: closes its connection, drops its names,
/// tells everyone, and remembers it (unless it left) so that it fences
/// if it comes back.
fn declare_down(st: &mut State, id: NodeId, reason: DownReason) {
    let Some(m) = st.members.remove(&id) else {
        return;
    };
    m.cut.cancel();
    if m.info.kind == NodeKind::Worker && reason != DownReason::Left {
        st.downs.insert(id);
    }
    st.names.retain(|_, p| p.node() != id);
    broadcast(
        st,
        &Msg::NodeDown {
            node: id,
            reason: reason.clone(),
        },
        None,
        false,
    );
    st.seen.push(Seen::Down {
        name: m.info.name,
        reason,
    });
}

/// One connection: the handshake as the master, then frames until it
/// closes or `cut` fires. When the whole master stops (`master`), nobody
/// is declared down: a master that dies tells no one.
async fn session(st: Shared, io: BoxIo, cut: CancellationToken, master: CancellationToken) {
    let (me, cookie) = {
        let s = lock(&st);
        (s.me.clone(), s.cookie.clone())
    };
    let Ok((conn, peer)) = handshake::respond(io, &me, &cookie, &HandshakeConfig::default()).await
    else {
        return;
    };
    let (mut sink, mut stream) = conn.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Msg>();
    let session = {
        let mut s = lock(&st);
        s.next_session += 1;
        s.next_session
    };
    let writer_cut = cut.clone();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                biased;
                m = out_rx.recv() => m,
                _ = writer_cut.cancelled() => None,
            };
            let Some(msg) = msg else { break };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    loop {
        let next = tokio::select! {
            _ = cut.cancelled() => break,
            n = stream.next() => n,
        };
        let Some(Ok(msg)) = next else { break };
        match msg {
            Msg::Request { id, body } => match on_request(&st, session, &peer, &out, &cut, body) {
                Answer::Now(body) => {
                    let _ = out.send(Msg::Response { id, body });
                }
                Answer::Later(answer) => {
                    let out = out.clone();
                    tokio::spawn(async move {
                        let body = answer.await;
                        let _ = out.send(Msg::Response { id, body });
                    });
                }
            },
            Msg::Response { id, body } => {
                if let Some(tx) = lock(&st).pending.remove(&id) {
                    let _ = tx.send(body);
                }
            }
            Msg::LoadReport(r) => {
                let mut s = lock(&st);
                let muted = s.muted.contains(&peer.name);
                if let Some(m) = s.members.get_mut(&peer.node) {
                    m.reports += 1;
                    if !muted {
                        // Accepted: acknowledged at once (the worker's
                        // lease runs from it).
                        let _ = out.send(Msg::ReportAck { seq: r.seq });
                    }
                    m.last_report = Some(r);
                }
            }
            Msg::AppEvent(event) => lock(&st).seen.push(Seen::AppEvent {
                name: peer.name.clone(),
                event,
            }),
            Msg::NameReleased { name, pid } => {
                let mut s = lock(&st);
                if s.names.get(&name) == Some(&pid) {
                    s.names.remove(&name);
                }
                s.seen.push(Seen::NameReleased { name, pid });
            }
            _ => {}
        }
    }
    cut.cancel();
    if master.is_cancelled() {
        return;
    }
    // The session ended: a live member is declared down at once.
    let mut s = lock(&st);
    let ours = s
        .members
        .get(&peer.node)
        .filter(|m| m.session == session)
        .map(|m| (m.live, m.leaving));
    match ours {
        Some((_, true)) => declare_down(&mut s, peer.node, DownReason::Left),
        Some((true, false)) => declare_down(&mut s, peer.node, DownReason::ConnectionClosed),
        Some((false, false)) => {
            s.members.remove(&peer.node);
        }
        None => {}
    }
}

/// The answer to a node's request.
enum Answer {
    /// Now.
    Now(Response),
    /// Once other nodes answered (sent by a task).
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
}

/// A request from a node.
fn on_request(
    st: &Shared,
    session: u64,
    peer: &Identity,
    out: &mpsc::UnboundedSender<Msg>,
    cut: &CancellationToken,
    body: Request,
) -> Answer {
    let mut s = lock(st);
    let joined = s
        .members
        .get(&peer.node)
        .is_some_and(|m| m.session == session);
    if !joined && !matches!(body, Request::Join(_)) {
        return Answer::Now(refuse(ErrorCode::Refused, "join first"));
    }
    Answer::Now(match body {
        Request::Join(join) => join_node(&mut s, session, peer, out, cut, join),
        Request::Ready => {
            make_live(&mut s, peer.node);
            s.seen.push(Seen::Ready {
                name: peer.name.clone(),
            });
            if let Some((body, answer)) = s.start_on_ready.remove(&peer.name) {
                // Sent before the answer to Ready, which comes 200 ms
                // later: a master that starts roots while handling Ready
                // does so, and its answer may be slow to arrive.
                let rx = ask(&mut s, peer.node, body);
                tokio::spawn(async move {
                    if let Ok(r) = rx.await {
                        let _ = answer.send(r);
                    }
                });
                return Answer::Later(Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Response::Ok
                }));
            }
            Response::Ok
        }
        Request::Leave => {
            if let Some(m) = s.members.get_mut(&peer.node) {
                m.leaving = true;
            }
            s.seen.push(Seen::Leave {
                name: peer.name.clone(),
            });
            Response::Ok
        }
        Request::Place(q) => place(&mut s, &q),
        Request::RegisterName { name, pid } => {
            let taken = s.names.get(&name).is_some_and(|p| *p != pid);
            let has_other = s.names.iter().any(|(n, p)| *p == pid && *n != name);
            let ok = !taken && !has_other;
            if ok {
                s.names.insert(name.clone(), pid);
                // A holder on another live worker than the registering
                // node: that worker watches it (as the real master asks).
                let holder = pid.node();
                let worker = s
                    .members
                    .get(&holder)
                    .is_some_and(|m| m.live && m.info.kind == NodeKind::Worker);
                if holder != peer.node && worker {
                    let body = Request::WatchName {
                        name: name.clone(),
                        pid,
                    };
                    let rx = ask(&mut s, holder, body);
                    let st = st.clone();
                    tokio::spawn(async move {
                        if let Ok(Response::Ok) = rx.await {
                            lock(&st).seen.push(Seen::Watched { name, pid });
                        }
                    });
                }
            }
            Response::Registered(ok)
        }
        Request::UnregisterName { name } => {
            s.names.remove(&name);
            Response::Ok
        }
        Request::WhereIs { name } => Response::WhereIs(s.names.get(&name).copied()),
        Request::ListNames => Response::Names(s.names.clone()),
        Request::ListNodes => Response::Nodes(
            s.members
                .values()
                .filter(|m| m.live && m.info.kind == NodeKind::Worker)
                .map(|m| NodeStatus {
                    name: m.info.name.clone(),
                    id: m.info.id,
                    addr: m.info.addr.clone(),
                    cpu: 0.0,
                    mem: 0.0,
                    procs: m.last_report.as_ref().map_or(0, |r| r.processes),
                    score: 0.0,
                    labels: m.info.labels.clone(),
                    capacity: m.info.capacity,
                    self_cpu: 0.0,
                    run_queue: 0,
                    report_age_ms: 0,
                    unreachable_from: Vec::new(),
                })
                .collect(),
        ),
        Request::ListProcesses { node } => {
            // Ask every live worker (or the one named), answer later.
            let targets: Vec<NodeId> = s
                .members
                .values()
                .filter(|m| m.live && m.info.kind == NodeKind::Worker)
                .filter(|m| node.as_ref().is_none_or(|n| *n == m.info.name))
                .map(|m| m.info.id)
                .collect();
            let asks: Vec<_> = targets
                .into_iter()
                .map(|id| ask(&mut s, id, Request::LocalProcesses))
                .collect();
            return Answer::Later(Box::pin(async move {
                let mut all = Vec::new();
                for rx in asks {
                    if let Ok(Ok(Response::Processes(p))) =
                        tokio::time::timeout(Duration::from_secs(5), rx).await
                    {
                        all.extend(p);
                    }
                }
                Response::Processes(all)
            }));
        }
        // The live members as a list, ahead of the answer.
        Request::SyncMembers => {
            let members = s
                .members
                .values()
                .filter(|m| m.live)
                .map(|m| m.info.clone())
                .collect();
            let next = s.members_next;
            let _ = out.send(Msg::Members(MemberList { next, members }));
            s.seen.push(Seen::MembersSynced {
                name: peer.name.clone(),
            });
            Response::Ok
        }
        other => refuse(
            ErrorCode::Refused,
            format!("the fake master does not serve {}", other.name()),
        ),
    })
}

/// A Join (docs/protocol.md "Joining").
fn join_node(
    st: &mut State,
    session: u64,
    peer: &Identity,
    out: &mpsc::UnboundedSender<Msg>,
    cut: &CancellationToken,
    join: Join,
) -> Response {
    let recorded = join.clone();
    let Join {
        mut info, names, ..
    } = join;
    let refused = |st: &mut State, code: ErrorCode, msg: String| {
        st.seen.push(Seen::Refused {
            name: peer.name.clone(),
            code,
        });
        refuse(code, msg)
    };
    // 1. The joiner is who the handshake authenticated, and not a master.
    if info.kind == NodeKind::Master {
        return refused(
            st,
            ErrorCode::Refused,
            "a master cannot join a master".into(),
        );
    }
    if info.id != peer.node || info.name != peer.name {
        return refused(
            st,
            ErrorCode::Refused,
            "the Join and the handshake name different nodes".into(),
        );
    }
    if info.kind == NodeKind::Hidden {
        info.addr.clear();
    }
    let id = info.id;
    // 2. Names are unique among live nodes; a fencing one is replaced.
    let other = st
        .members
        .values()
        .find(|m| m.info.name == info.name && m.info.id != id)
        .map(|m| (m.info.id, m.live));
    match other {
        Some((other, true)) => {
            return refused(
                st,
                ErrorCode::DuplicateName,
                format!(
                    "a live node named {} ({other}) exists: pick another --name or stop the other node",
                    info.name
                ),
            );
        }
        Some((other, false)) => declare_down(st, other, DownReason::Replaced),
        None => {}
    }
    // 3. The same id reconnecting replaces its old session.
    let previous = st.members.remove(&id);
    if let Some(p) = &previous {
        p.cut.cancel();
    }
    let was_live = previous.as_ref().is_some_and(|p| p.live);
    // 4. Fencing: declared down earlier, names lost, or roots to stop.
    let was_down = !was_live && st.downs.contains(&id);
    let claimed: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let stale: Vec<String> = st
        .names
        .iter()
        .filter(|(n, p)| p.node() == id && !claimed.contains(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    for n in stale {
        st.names.remove(&n);
    }
    let mut lost_names = Vec::new();
    for (name, pid) in &names {
        match st.names.get(name) {
            Some(p) if p != pid => lost_names.push(name.clone()),
            _ if pid.node() != id => lost_names.push(name.clone()),
            _ => {
                st.names.insert(name.clone(), *pid);
            }
        }
    }
    let stop_apps = st.planned_stops.remove(&info.name).unwrap_or_default();
    let fenced = was_down || !stop_apps.is_empty() || !lost_names.is_empty();
    let fence = fenced.then_some(Fence {
        stop_apps,
        lost_names,
    });
    let live = was_live || fence.is_none();
    // 5. Welcome: every live node, the joiner included.
    let mut members: Vec<NodeInfo> = st
        .members
        .values()
        .filter(|m| m.live)
        .map(|m| m.info.clone())
        .collect();
    members.push(info.clone());
    let welcome = Welcome {
        members,
        report_interval_ms: REPORT_INTERVAL.as_millis() as u64,
        node_timeout_ms: 3000,
        fence: fence.clone(),
        members_next: st.members_next,
    };
    st.members.insert(
        id,
        Member {
            info,
            session,
            out: out.clone(),
            cut: cut.clone(),
            live: was_live,
            leaving: false,
            reports: 0,
            last_report: None,
        },
    );
    st.seen.push(Seen::Joined {
        name: peer.name.clone(),
        join: recorded,
        fenced: fence.is_some(),
    });
    // 6. Announce it, or wait for Ready.
    if live && !was_live {
        make_live(st, id);
    }
    Response::Welcome(welcome)
}

/// Placement: the named node, the key's node, or round robin over the
/// live workers that match the labels.
fn place(st: &mut State, q: &PlaceQuery) -> Response {
    let mut workers: Vec<&Member> = st
        .members
        .values()
        .filter(|m| m.live && !m.leaving && m.info.kind == NodeKind::Worker)
        .collect();
    workers.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let fits = |m: &Member| q.labels.iter().all(|l| l.matches(&m.info.labels));
    let placed = |m: &Member| Placed {
        id: m.info.id,
        name: m.info.name.clone(),
        addr: m.info.addr.clone(),
        function: None,
    };
    let count = q.count.max(1) as usize;
    if let Some(n) = &q.node {
        return match workers.iter().find(|m| m.info.name == *n) {
            None => refuse(
                ErrorCode::UnknownNode,
                format!("no live worker is named {n}"),
            ),
            Some(m) if !fits(m) => refuse(
                ErrorCode::NoNode,
                format!("node {n} does not have the labels asked for"),
            ),
            Some(m) => Response::Placed(vec![placed(m); count]),
        };
    }
    workers.retain(|m| !q.exclude.contains(&m.info.id) && fits(m));
    if workers.is_empty() {
        return refuse(ErrorCode::NoNode, "no live worker matches");
    }
    let picks: Vec<Placed> = match &q.key {
        Some(key) => {
            // FNV-1a: stable across runs, unlike the std hasher.
            let h = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            vec![placed(workers[(h % workers.len() as u64) as usize]); count]
        }
        None => (0..count)
            .map(|i| placed(workers[(st.rr + i) % workers.len()]))
            .collect(),
    };
    if q.key.is_none() {
        st.rr += count;
    }
    Response::Placed(picks)
}
