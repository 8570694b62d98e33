//! Hostile peers (issue "Security and hostile input"): clients that
//! complete the handshake with the pool's cookie and then lie. Each lie is
//! refused or ignored with a reason in the node's log; no node crashes; no
//! legitimate process is affected.
//!
//! Every test runs a real master and real `test-worker`s (the harness of
//! this crate) and a raw client built on pool-proto alone
//! (`hostile/raw.rs`): the handshake, then `Codec<Msg>` frames, with none
//! of pool-worker's rules. Before the attack it starts the legitimate
//! processes ([`raw::Legit`]: an echo on w1 and, on w2, a recorder that
//! traps exits, links to and monitors the echo) and at the end checks that
//! the live nodes, `poolctl ps`, the echo and the recorder are as before.
//!
//! What the design guarantees, and what it cannot: the cookie is shared by
//! every node, so the handshake authenticates "holds the cookie", and the
//! node id and name a peer announces are only bound to the connection (no
//! other connection can reuse that handshake). On that connection:
//! - the master takes a `Join` only for the identity of the handshake, and
//!   a live name only from its own id;
//! - a worker takes process signals only for processes of the node the
//!   handshake named (a `from`/`watcher`/`pid` of another node is dropped
//!   and logged), refuses a `Spawn` linked to or monitored from another
//!   node's process, takes an answer only to a request it sent to that
//!   node, answers requests on that node's stream, and takes membership
//!   changes from the master's connection only; the name a peer announces
//!   counts for nothing (a peer is its id);
//! - refused and ignored frames are logged at warn with the peer and the
//!   reason, rate-limited per peer, kind and reason, so a flood of them
//!   cannot flood the log;
//! - a cookie holder *can* claim the id of a live node. It then acts as
//!   that node could (see `an_impostor_of_a_live_worker_id_...`); telling
//!   them apart needs per-node credentials, which the protocol does not
//!   have.

#[path = "hostile/raw.rs"]
mod raw;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use pool_cluster_tests::wait_until;
use pool_proto::handshake::{HandshakeConfig, HandshakeMsg, RefuseReason, initiate, respond};
use pool_proto::{
    AppEvent, AppEventKind, Codec, Dest, DownReason, ErrorCode, ExitReason, LoadReport, Msg,
    MsgKind, NodeInfo, NodeKind, Payload, Pid, PlaceQuery, Ref, Request, Response, SendMsg,
    SpawnRequest, Strategy, SupervisorSpec, TreeSpec,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use raw::{
    ANSWER, Raw, Tape, cookie, events, identity, join_for, live, live_nodes, log_lines, runtime,
    split_frames, wait_log,
};

/// Asserts `r` is an error with `code` whose message contains `needle`.
fn assert_error(r: &Response, code: ErrorCode, needle: &str, what: &str) {
    match r {
        Response::Error(e) if e.code == code && e.message.contains(needle) => {}
        other => panic!("{what}: expected {code:?} naming {needle:?}, got {other:?}"),
    }
}

/// A spawn request for `function` with `args`, nothing attached.
fn spawn_req(function: &str, args: Value) -> SpawnRequest {
    SpawnRequest {
        function: function.to_owned(),
        args,
        link: None,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    }
}

/// A small tree, for the `StartApp` a node may not send.
fn tree() -> TreeSpec {
    let mut root = SupervisorSpec::new("hostile-app", Strategy::OneForOne);
    root.children.push(pool_proto::ChildSpecData::worker(
        "c",
        "builtin.echo",
        json!({}),
    ));
    TreeSpec { supervisor: root }
}

/// One request of every kind, in the order of `Request`; a new kind fails
/// to compile here until it is added.
fn every_request(me: &pool_proto::Identity, pid: Pid) -> Vec<Request> {
    let all = vec![
        Request::Join(join_for(me, "")),
        Request::Ready,
        Request::Place(PlaceQuery {
            count: 1,
            ..PlaceQuery::default()
        }),
        Request::RegisterName {
            name: "stolen".into(),
            pid,
        },
        Request::UnregisterName {
            name: "stolen".into(),
        },
        Request::WhereIs {
            name: "stolen".into(),
        },
        Request::ListNames,
        Request::ListNodes,
        Request::ListProcesses { node: None },
        Request::LocalProcesses,
        Request::TreeStart {
            spec: tree(),
            source: None,
            text: None,
        },
        Request::TreeList,
        Request::TreeShow {
            id: "hostile-app".into(),
        },
        Request::TreeStop {
            id: "hostile-app".into(),
        },
        Request::StartApp {
            app: "hostile-app".into(),
            generation: 1,
            spec: tree(),
        },
        Request::StopApp {
            app: "hostile-app".into(),
        },
        Request::Inspect { pid },
        Request::Spawn(spawn_req("builtin.echo", json!({}))),
        Request::Leave,
        Request::Ping,
        Request::TreeRestart {
            id: "hostile-app".into(),
        },
        Request::TreeRemove {
            id: "hostile-app".into(),
        },
        Request::MasterSeen,
        Request::WatchName {
            name: "hostile-name".into(),
            pid,
        },
        Request::PushModule {
            file: "hostile.wasm".into(),
            bytes: b"not a module".to_vec(),
            hash: None,
        },
        Request::ListModules,
        Request::FetchModule {
            hash: pool_proto::ModuleHash::of(b"hostile"),
        },
        Request::ResolveFunction {
            function: "hostile.wasm:run".into(),
        },
        Request::SyncMembers,
        Request::WatchLoads,
    ];
    for r in &all {
        match r {
            Request::Join(_)
            | Request::Ready
            | Request::Place(_)
            | Request::RegisterName { .. }
            | Request::UnregisterName { .. }
            | Request::WhereIs { .. }
            | Request::ListNames
            | Request::ListNodes
            | Request::ListProcesses { .. }
            | Request::LocalProcesses
            | Request::TreeStart { .. }
            | Request::TreeList
            | Request::TreeShow { .. }
            | Request::TreeStop { .. }
            | Request::StartApp { .. }
            | Request::StopApp { .. }
            | Request::Inspect { .. }
            | Request::Spawn(_)
            | Request::Leave
            | Request::Ping
            | Request::TreeRestart { .. }
            | Request::TreeRemove { .. }
            | Request::MasterSeen
            | Request::WatchName { .. }
            | Request::PushModule { .. }
            | Request::ListModules
            | Request::FetchModule { .. }
            | Request::ResolveFunction { .. }
            | Request::SyncMembers
            | Request::WatchLoads => {}
        }
    }
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(Request::name).collect();
    assert_eq!(kinds.len(), all.len(), "one request of each kind");
    all
}

/// A plain message from `from` to `to`.
fn send(from: Option<Pid>, to: Pid, value: &Value) -> Result<Msg> {
    Ok(Msg::Send(SendMsg {
        to: Dest::Pid(to),
        from,
        kind: MsgKind::Plain,
        payload: Payload::encode(value)?,
        trace: None,
    }))
}

/// A load report.
fn report(seq: u64, run_queue: u32, capacity: u32) -> LoadReport {
    LoadReport {
        seq,
        run_queue,
        processes: u64::from(run_queue),
        capacity,
        mem_used: 1,
        mem_total: 4,
        ..LoadReport::default()
    }
}

// ----- (a) lies about who we are ---------------------------------------------

/// A `Join` that claims a live node's name, or an identity other than the
/// one the handshake authenticated (another id, another name), or the
/// master kind, is refused with an error that says why, logged by the
/// master, and the connection closed; a request before `Join` is refused
/// and the connection stays usable.
#[test]
fn join_lies_are_refused() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let rt = runtime()?;
    rt.block_on(async {
        // Another live node's name, with our own id.
        let me = identity("w1", NodeKind::Worker);
        let join = join_for(&me, "127.0.0.1:9");
        let (mut r, answer) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        assert_error(
            &answer,
            ErrorCode::DuplicateName,
            "a live node named w1",
            "name of w1",
        );
        assert!(r.closed_within(ANSWER).await, "closed after the refusal");

        // The handshake said one id, the Join another.
        let me = identity("liar", NodeKind::Hidden);
        let other = identity("liar", NodeKind::Hidden);
        let join = join_for(&other, "");
        let (mut r, answer) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "the handshake authenticated",
            "another id",
        );
        assert!(r.closed_within(ANSWER).await, "closed after the refusal");

        // Same id, another name (a live one).
        let me = identity("liar2", NodeKind::Worker);
        let mut join = join_for(&me, "127.0.0.1:9");
        join.info.name = "w2".into();
        let (mut r, answer) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "the handshake authenticated",
            "another name",
        );
        assert!(r.closed_within(ANSWER).await, "closed after the refusal");

        // A master joining a master.
        let me = identity("liar3", NodeKind::Worker);
        let mut join = join_for(&me, "127.0.0.1:9");
        join.info.kind = NodeKind::Master;
        let (mut r, answer) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "a master cannot join",
            "kind master",
        );
        assert!(r.closed_within(ANSWER).await, "closed after the refusal");

        // Requests before Join: refused, the connection stays.
        let mut r =
            Raw::connect(&c.master_addr, &cookie, identity("early", NodeKind::Hidden)).await?;
        let answer = r
            .request(Request::Place(PlaceQuery {
                count: 1,
                ..PlaceQuery::default()
            }))
            .await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "send Join first",
            "Place before Join",
        );
        r.still_served().await?;
        anyhow::Ok(())
    })?;

    let m = c.master.as_ref().context("a master")?;
    for needle in [
        "a live node named w1",
        "the Join says liar",
        "the Join says w2",
        "a master cannot join",
        "send Join first",
    ] {
        wait_log(m, needle)?;
    }
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

/// A cookie holder that claims a live worker's id and name at the master
/// (the handshake cannot tell it from the worker: the cookie is shared) is
/// taken for that worker reconnecting, as the protocol says ("the same id
/// reconnecting replaces its old session"): its `Join` is welcomed and the
/// worker's session is closed without declaring it down. The worker then
/// reconnects and takes its session back, closing the impostor's. Nothing
/// is declared down, no process is lost, links between workers (peer
/// connections, not the master's) are untouched.
#[test]
fn an_impostor_of_a_live_node_at_the_master_only_bumps_its_session() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let w1 = live(&c, "w1")?;
    let rt = runtime()?;
    let took = rt.block_on(async {
        let me = pool_proto::Identity {
            node: w1.id,
            name: "w1".into(),
            kind: NodeKind::Worker,
        };
        let mut join = join_for(&me, &w1.addr);
        join.rejoin = true;
        let (mut r, answer) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        assert!(
            matches!(answer, Response::Welcome(_)),
            "the master cannot tell the impostor from w1: {answer:?}"
        );
        let start = Instant::now();
        // The real w1 reconnects and replaces the impostor's session.
        assert!(
            r.closed_within(Duration::from_secs(15)).await,
            "w1 did not take its session back"
        );
        anyhow::Ok(start.elapsed())
    })?;
    eprintln!("w1 took its session back after {took:?}");
    let w1p = &c.workers.iter().find(|(n, _)| n == "w1").context("w1")?.1;
    wait_log(w1p, "rejoined the pool")?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

/// A cookie holder that connects to worker w2 as a peer claiming worker
/// w1's id (a live member; a different process) is taken for w1 on that
/// connection: what it sends counts as w1's, and the worker logs that a
/// second connection claims to be w1 while w1's own is open. What holds:
/// - answers go on w2's own stream to the real w1, never to the impostor
///   (w1 logs an answer to no request of its);
/// - it speaks only for w1's processes: a message claiming to come from a
///   process of w3 is dropped and logged;
/// - membership changes from it (a `NodeDown` of w3) are ignored and logged;
/// - its frames reach w2's processes as w1's would (a message to a victim
///   process arrives as from w1) — that is what the real w1 could do.
///
/// What does not: when the impostor's connection closes, w2 treats it as
/// a connection with w1 closing (DESIGN: "Peer connections that close do
/// the same at once") and fires `noconnection` on every link and monitor
/// between w2 and w1 — the legitimate echo on w1, linked to the recorder
/// on w2, dies. The test checks that this is all (no node down, nothing
/// else lost) and prints it; preventing it needs per-node credentials.
#[test]
fn an_impostor_of_a_live_worker_id_at_a_peer_acts_only_as_that_worker() -> Result<()> {
    let (c, legit) = raw::cluster(3)?;
    let cookie = cookie(&c)?;
    let (w1, w2, w3) = (live(&c, "w1")?, live(&c, "w2")?, live(&c, "w3")?);
    let (victim, on) = c.spawn(&["test.watch", "{}", "--on", "w2"])?;
    assert_eq!(on, "w2");
    let victim_pid: Pid = victim.parse()?;
    let rt = runtime()?;
    let r = rt.block_on(async {
        let me = pool_proto::Identity {
            node: w1.id,
            name: "w1".into(),
            kind: NodeKind::Worker,
        };
        let mut r = Raw::connect(&w2.addr, &cookie, me).await?;
        // A request: its answer goes to the real w1.
        r.send_request(Request::Ping).await?;
        // A message as from a process of w1: delivered, as w1's would be.
        r.send(send(
            Some(Pid::new(w1.id, 4242)),
            victim_pid,
            &json!("as w1"),
        )?)
        .await?;
        // A message claiming a process of w3: not ours to send.
        r.send(send(Some(Pid::new(w3.id, 7)), victim_pid, &json!("as w3"))?)
            .await?;
        // A membership change: only the master's connection carries those.
        r.send(Msg::NodeDown {
            node: w3.id,
            reason: DownReason::ConnectionClosed,
        })
        .await?;
        let got = r.drain(Duration::from_secs(1)).await;
        assert!(got.is_empty(), "the impostor received {got:?}");
        anyhow::Ok(r)
    })?;
    let ev = raw::events(&c, &victim)?;
    let values: Vec<&Value> = ev.iter().map(|e| &e["value"]).collect();
    assert_eq!(values, vec![&json!("as w1")], "victim saw {ev:?}");
    assert_eq!(
        ev[0]["from"],
        json!(Pid::new(w1.id, 4242).to_string()),
        "{ev:?}"
    );
    let w1p = &c.workers.iter().find(|(n, _)| n == "w1").context("w1")?.1;
    let w2p = &c.workers.iter().find(|(n, _)| n == "w2").context("w2")?.1;
    wait_log(w1p, "answer to no request")?;
    wait_log(w2p, "not a process of the sending node")?;
    wait_log(w2p, "a second connection claims to be this peer")?;
    wait_log(w2p, "ignored a NodeDown from a peer")?;
    // w2 still reaches w3: a call from w2 to a process on w3.
    let (echo3, _) = c.spawn(&["builtin.echo", "{}", "--on", "w3"])?;
    let out = c.poolctl_json(&[
        "spawn",
        "test.call",
        &json!({"pid": echo3, "req": "via w2"}).to_string(),
        "--on",
        "w2",
        "--wait",
    ])?;
    assert_eq!(out["result"], json!({"reply": "via w2"}), "{out}");

    // The impostor leaves: w2 takes it for its connection with w1 closing.
    rt.block_on(async move { drop(r) });
    let nodes: Vec<String> = live_nodes(&c)?.into_iter().map(|n| n.name).collect();
    assert_eq!(nodes, vec!["w1", "w2", "w3"], "no node is down");
    let seen = wait_until(
        "the effect of the impostor's close on the w1-w2 link",
        Duration::from_secs(3),
        || {
            let ev = events(&c, &legit.recorder).ok()?;
            (!ev.is_empty()).then_some(ev)
        },
    );
    match seen {
        Ok(ev) => {
            eprintln!(
                "KNOWN LIMITATION: the impostor's close fired noconnection between w2 and w1: recorder saw {ev:?}"
            );
            for e in &ev {
                assert_eq!(e["reason"], "noconnection", "only noconnection: {ev:?}");
            }
        }
        Err(_) => eprintln!("the impostor's close left the w1-w2 link alone"),
    }
    Ok(())
}

/// A cookie holder that connects to worker w2 as a peer with a fresh id
/// and the *name* of live worker w1 is that fresh id and nothing more (a
/// worker goes by the id the handshake named, never by the name): every
/// process signal it sends as one of w1's processes, or of w2's own, is
/// refused and logged, and a `Spawn` that would link the
/// new process to w2's recorder or monitor it from there is refused. So
/// the recorder (which traps exits and records every message, exit signal
/// and `Down`) sees nothing, while a message from the impostor's own pid is
/// delivered as from that pid. A flood of 10 000 forged messages logs a
/// few rate-limited lines. When it leaves, nothing else changes.
#[test]
fn a_peer_claiming_a_live_workers_name_speaks_only_for_its_own_id() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let w2 = live(&c, "w2")?;
    let echo: Pid = legit.echo.parse()?;
    let recorder: Pid = legit.recorder.parse()?;
    let (victim, on) = c.spawn(&["test.watch", "{}", "--on", "w2"])?;
    assert_eq!(on, "w2");
    let victim_pid: Pid = victim.parse()?;
    let rt = runtime()?;
    // Hidden, so that w2 answers on this connection (it answers a worker
    // on its own connection to it, which it opens to members only).
    let me = identity("w1", NodeKind::Hidden);
    rt.block_on(async {
        let mut r = Raw::connect(&w2.addr, &cookie, me.clone()).await?;
        // A guess at the recorder's monitor reference: a forged `Down`
        // would reach the recorder whatever its reference.
        let mref = Ref::new(w2.id, 1);
        r.send_all([
            send(Some(echo), recorder, &json!("as the echo"))?,
            Msg::Link {
                from: echo,
                to: recorder,
            },
            Msg::Unlink {
                from: echo,
                to: recorder,
            },
            Msg::Monitor {
                watcher: echo,
                target: recorder,
                mref,
                with_result: false,
            },
            Msg::Demonitor {
                watcher: echo,
                target: recorder,
                mref,
            },
            Msg::Exit {
                from: echo,
                to: recorder,
                reason: ExitReason::Killed,
                explicit: false,
            },
            Msg::Down {
                watcher: recorder,
                mref,
                pid: echo,
                reason: ExitReason::Killed,
                result: None,
            },
            // As w2's own recorder, to itself.
            Msg::Exit {
                from: recorder,
                to: recorder,
                reason: ExitReason::Killed,
                explicit: true,
            },
            // Its own pid: delivered.
            send(Some(r.pid(7)), victim_pid, &json!("as myself"))?,
        ])
        .await?;
        let mut req = spawn_req("builtin.echo", json!({}));
        req.link = Some(recorder);
        let answer = r.request(Request::Spawn(req)).await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "link",
            "a spawn linked to w2's recorder",
        );
        let mut req = spawn_req("builtin.echo", json!({}));
        req.monitor = Some(pool_proto::SpawnMonitor {
            watcher: recorder,
            mref,
            with_result: true,
        });
        let answer = r.request(Request::Spawn(req)).await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "monitor",
            "a spawn monitored from w2",
        );
        r.still_served().await?;
        // A flood of forged messages: all dropped, a few log lines.
        for _ in 0..10 {
            let forged = (0..1000)
                .map(|_| send(Some(echo), recorder, &json!("flood")))
                .collect::<Result<Vec<_>>>()?;
            r.send_all(forged).await?;
        }
        r.still_served().await?;
        anyhow::Ok(())
    })?;
    let ev = wait_until(
        "the victim to get one message",
        Duration::from_secs(5),
        || {
            let ev = events(&c, &victim).ok()?;
            (!ev.is_empty()).then_some(ev)
        },
    )?;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["value"], json!("as myself"), "{ev:?}");
    assert_eq!(
        ev[0]["from"],
        json!(Pid::new(me.node, 7).to_string()),
        "{ev:?}"
    );
    let w2p = &c.workers.iter().find(|(n, _)| n == "w2").context("w2")?.1;
    for kind in [
        "Send",
        "Link",
        "Unlink",
        "Monitor",
        "Demonitor",
        "Exit",
        "Down",
        "Spawn",
    ] {
        wait_log(w2p, &format!("refused a {kind} from a peer"))?;
    }
    let lines = log_lines(
        w2p,
        &[
            "refused a Exit from a peer",
            "not a process of the sending node",
        ],
    );
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains(&me.node.to_string())),
        "the line names the peer: {lines:?}"
    );
    let lines = log_lines(w2p, &["refused a Send from a peer", &me.node.to_string()]);
    assert!(
        lines.len() < 20,
        "10 001 refused messages should log a few lines, not {}",
        lines.len()
    );
    legit.assert_unaffected(&c, false)?;
    Ok(())
}

// ----- (b) spawn of an unregistered function ---------------------------------

/// `Spawn` of a function the worker does not register is answered with
/// `UnknownFunction` naming it (and bad arguments with `BadArgs`); the
/// worker logs the refusal, the connection stays usable and nothing runs.
/// The master, which hosts nothing, refuses `Spawn` outright.
#[test]
fn a_spawn_of_an_unregistered_function_is_an_error_naming_it() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let w1 = live(&c, "w1")?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut r = Raw::connect(&w1.addr, &cookie, identity("spawner", NodeKind::Hidden)).await?;
        let answer = r
            .request(Request::Spawn(spawn_req("no.such.function", json!({}))))
            .await?;
        assert_error(
            &answer,
            ErrorCode::UnknownFunction,
            "no.such.function",
            "unknown function",
        );
        let answer = r
            .request(Request::Spawn(spawn_req(
                "builtin.sleep",
                json!({"ms": "soon"}),
            )))
            .await?;
        assert_error(&answer, ErrorCode::BadArgs, "builtin.sleep", "bad args");
        r.still_served().await?;

        let me = identity("spawner2", NodeKind::Hidden);
        let (mut m, welcome) =
            Raw::joined(&c.master_addr, &cookie, me.clone(), join_for(&me, "")).await?;
        assert!(matches!(welcome, Response::Welcome(_)), "{welcome:?}");
        let answer = m
            .request(Request::Spawn(spawn_req("no.such.function", json!({}))))
            .await?;
        assert_error(
            &answer,
            ErrorCode::Refused,
            "send it to a worker",
            "spawn at master",
        );
        m.still_served().await?;
        anyhow::Ok(())
    })?;
    let w1p = &c.workers.iter().find(|(n, _)| n == "w1").context("w1")?.1;
    wait_log(w1p, "no.such.function")?;
    wait_log(w1p, "builtin.sleep")?;
    wait_log(c.master.as_ref().context("master")?, "Spawn")?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

// ----- (c) links and monitors to pids that do not exist -----------------------

/// `Link` and `Monitor` to a pid that does not exist (on the worker, or of
/// another node) answer `Exit noproc` and `Down noproc` to the raw client,
/// and nothing else happens.
#[test]
fn a_link_or_monitor_to_a_missing_pid_answers_noproc() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let (w1, w2) = (live(&c, "w1")?, live(&c, "w2")?);
    let rt = runtime()?;
    rt.block_on(async {
        let mut r = Raw::connect(&w1.addr, &cookie, identity("linker", NodeKind::Hidden)).await?;
        let missing = Pid::new(w1.id, 9_999_999);
        let elsewhere = Pid::new(w2.id, 9_999_999);
        let mref = Ref::new(r.me.node, 1);
        r.send_all([
            Msg::Link {
                from: r.pid(1),
                to: missing,
            },
            Msg::Monitor {
                watcher: r.pid(2),
                target: missing,
                mref,
                with_result: false,
            },
            Msg::Link {
                from: r.pid(3),
                to: elsewhere,
            },
        ])
        .await?;
        let got = r.drain(Duration::from_secs(2)).await;
        let want = vec![
            Msg::Exit {
                from: missing,
                to: r.pid(1),
                reason: ExitReason::NoProc,
                explicit: false,
            },
            Msg::Down {
                watcher: r.pid(2),
                mref,
                pid: missing,
                reason: ExitReason::NoProc,
                result: None,
            },
            Msg::Exit {
                from: elsewhere,
                to: r.pid(3),
                reason: ExitReason::NoProc,
                explicit: false,
            },
        ];
        assert_eq!(got, want, "exactly one noproc answer each");
        r.still_served().await?;
        anyhow::Ok(())
    })?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

// ----- (d) a flood of load reports -------------------------------------------

/// A joined node floods 100 000 load reports as fast as it can. The master
/// keeps serving (`poolctl nodes` during the flood answers, the honest
/// workers' reports keep arriving, none is declared down); placement reads
/// each node's own reports only, so the flood moves placements only
/// to or from the flooding node: claiming a heavy load, it gets none;
/// claiming an empty node with a big capacity, it gets them (a joined
/// node's reports are trusted). A hidden node's reports are ignored, with
/// a rate-limited log line.
#[test]
fn a_load_report_flood_leaves_the_master_serving() -> Result<()> {
    const FLOOD: u64 = 100_000;
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let rt = runtime()?;
    let me = identity("flooder", NodeKind::Worker);
    let (mut r, welcome) = rt.block_on(Raw::joined(
        &c.master_addr,
        &cookie,
        me.clone(),
        join_for(&me, "127.0.0.1:9"),
    ))?;
    assert!(matches!(welcome, Response::Welcome(_)), "{welcome:?}");

    // The flood, heavy load, in the background.
    let flood = rt.spawn(async move {
        let start = Instant::now();
        for batch in 0..FLOOD / 1000 {
            let reports = (0..1000).map(|i| Msg::LoadReport(report(batch * 1000 + i + 1, 1000, 1)));
            r.send_all(reports).await?;
        }
        let sent = start.elapsed();
        // Answered after every report before it was handled.
        r.still_served().await?;
        anyhow::Ok((r, sent, start.elapsed()))
    });
    // Meanwhile: the master answers, and the honest workers stay fresh.
    let mut during = Vec::new();
    while !flood.is_finished() {
        let t = Instant::now();
        let nodes = c.nodes()?;
        during.push(t.elapsed());
        for n in nodes.iter().filter(|n| n["name"] != "flooder") {
            let age = n["report_age_ms"].as_u64().unwrap_or(u64::MAX);
            assert!(age < 2000, "{} has not reported for {age} ms", n["name"]);
        }
    }
    let (mut r, sent, handled) = rt.block_on(flood)??;
    eprintln!(
        "flood: {FLOOD} reports written in {sent:?}, handled in {handled:?} ({:.0}/s); poolctl nodes during it: {during:?}",
        FLOOD as f64 / handled.as_secs_f64()
    );
    assert!(!during.is_empty());

    let placed = |c: &pool_cluster_tests::Cluster| -> Result<Vec<String>> {
        let v = c.poolctl_json(&["place", "--count", "30"])?;
        Ok(v["nodes"]
            .as_array()
            .context("nodes")?
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect())
    };
    let heavy = placed(&c)?;
    assert!(
        heavy.iter().all(|n| n == "w1" || n == "w2"),
        "a node reporting 1000 runnable processes got placements: {heavy:?}"
    );
    // Now claim an empty 64-core node.
    rt.block_on(async {
        let reports = (0..1000).map(|i| Msg::LoadReport(report(FLOOD + i + 1, 0, 64)));
        r.send_all(reports).await?;
        r.still_served().await
    })?;
    let light = placed(&c)?;
    let to_flooder = light.iter().filter(|n| *n == "flooder").count();
    eprintln!("placements of 30 with the flooder claiming 64 idle cores: {to_flooder} to it");
    for n in c.nodes()? {
        if n["name"] != "flooder" {
            assert!(n["score"].as_f64().unwrap_or(1.0) < 1.0, "{n}");
        }
    }

    // A hidden node's reports are ignored, logged once a second at most.
    let hidden = identity("hidden-flooder", NodeKind::Hidden);
    rt.block_on(async {
        let (mut h, _) = Raw::joined(
            &c.master_addr,
            &cookie,
            hidden.clone(),
            join_for(&hidden, ""),
        )
        .await?;
        for batch in 0..10u64 {
            let reports = (0..1000).map(|i| Msg::LoadReport(report(batch * 1000 + i + 1, 0, 64)));
            h.send_all(reports).await?;
        }
        h.still_served().await
    })?;
    let m = c.master.as_ref().context("master")?;
    wait_log(m, "ignored a LoadReport")?;
    let lines = log_lines(m, &["ignored a LoadReport", "hidden-flooder"]);
    assert!(
        !lines.is_empty() && lines.len() < 20,
        "10 000 ignored reports should log a few lines, not {}",
        lines.len()
    );

    drop(r);
    c.wait_node_gone("flooder", Duration::from_secs(10))?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

// ----- (e) a replayed handshake ----------------------------------------------

/// Runs a handshake as `me` over `io`, recording what we write; returns
/// the recorded bytes once the handshake (and a `Join`, if given) is done.
async fn record<S>(
    io: S,
    me: &pool_proto::Identity,
    cookie: &pool_proto::Cookie,
    join: Option<pool_proto::Join>,
) -> Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (tape, written) = Tape::new(io);
    let (mut conn, _) = initiate(tape, me, cookie, &HandshakeConfig::default()).await?;
    if let Some(join) = join {
        conn.send(Msg::Request {
            id: 1,
            body: Request::Join(join),
        })
        .await?;
        match conn.next().await {
            Some(Ok(Msg::Response {
                body: Response::Welcome(_),
                ..
            })) => {}
            other => bail!("the recorded Join got {other:?}"),
        }
    }
    let bytes = written.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(bytes)
}

/// Replays `frames` (whole frames as recorded) to `addr`: the first, then
/// reads one frame, then the rest. Returns what the master sent.
async fn replay_stepwise(addr: &str, frames: &[Vec<u8>]) -> Result<Vec<HandshakeMsg>> {
    let s = TcpStream::connect(addr).await?;
    let mut f = Framed::new(s, Codec::<HandshakeMsg>::new());
    f.get_mut().write_all(&frames[0]).await?;
    let mut got = Vec::new();
    if let Some(m) = tokio::time::timeout(ANSWER, f.next()).await? {
        got.push(m?);
    }
    for fr in &frames[1..] {
        let _ = f.get_mut().write_all(fr).await;
    }
    while let Ok(Some(Ok(m))) = tokio::time::timeout(ANSWER, f.next()).await {
        got.push(m);
    }
    Ok(got)
}

/// A handshake recorded from a real client (with the master, and between
/// two of our own nodes), replayed verbatim against the master or a
/// worker, is refused: the responder's challenge carries a fresh nonce, so
/// the recorded proof does not match; it says why (`Refused`) and logs a
/// line per replay that names the claimed peer and a possible replay (a
/// replay and a wrong cookie cannot be told apart), and nothing joins.
#[test]
fn a_replayed_handshake_is_refused() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let w1 = live(&c, "w1")?;
    let rt = runtime()?;
    rt.block_on(async {
        // 1. A real client's handshake and Join with the master.
        let me = identity("recorded", NodeKind::Hidden);
        let s = TcpStream::connect(&c.master_addr).await?;
        let tape = record(s, &me, &cookie, Some(join_for(&me, ""))).await?;
        let frames = split_frames(&tape);
        assert_eq!(frames.len(), 3, "Hello, Proof, Join");

        // Replayed step by step: Hello, (Challenge), Proof, Join.
        let got = replay_stepwise(&c.master_addr, &frames).await?;
        assert!(
            matches!(got.first(), Some(HandshakeMsg::Challenge { .. })),
            "{got:?}"
        );
        assert!(
            matches!(
                got.get(1),
                Some(HandshakeMsg::Refused(RefuseReason::BadCookie))
            ),
            "the replayed proof is refused: {got:?}"
        );
        assert_eq!(got.len(), 2, "{got:?}");
        // Replayed at once, without reading.
        let mut s = TcpStream::connect(&c.master_addr).await?;
        s.write_all(&tape).await?;
        let mut f = Framed::new(s, Codec::<HandshakeMsg>::new());
        let mut got = Vec::new();
        while let Ok(Some(Ok(m))) = tokio::time::timeout(ANSWER, f.next()).await {
            got.push(m);
        }
        assert!(
            matches!(
                got.last(),
                Some(HandshakeMsg::Refused(RefuseReason::BadCookie))
            ),
            "{got:?}"
        );

        // 2. A handshake between two of our own nodes, replayed to the master.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let at = listener.local_addr()?;
        let them = identity("recorder-responder", NodeKind::Worker);
        let (ck, them2) = (cookie.clone(), them.clone());
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await?;
            let (_conn, peer) = respond(s, &them2, &ck, &HandshakeConfig::default()).await?;
            anyhow::Ok(peer)
        });
        let me = identity("recorder-initiator", NodeKind::Hidden);
        let tape = record(TcpStream::connect(at).await?, &me, &cookie, None).await?;
        assert_eq!(server.await??, me, "the recorded handshake succeeded");
        let frames = split_frames(&tape);
        assert_eq!(frames.len(), 2, "Hello, Proof");
        let got = replay_stepwise(&c.master_addr, &frames).await?;
        assert!(
            matches!(
                got.get(1),
                Some(HandshakeMsg::Refused(RefuseReason::BadCookie))
            ),
            "{got:?}"
        );

        // 3. The same, replayed to a worker's peer listener.
        let got = replay_stepwise(&w1.addr, &frames).await?;
        assert!(
            matches!(got.first(), Some(HandshakeMsg::Challenge { .. })),
            "{got:?}"
        );
        assert!(
            matches!(
                got.get(1),
                Some(HandshakeMsg::Refused(RefuseReason::BadCookie))
            ),
            "{got:?}"
        );
        anyhow::Ok(())
    })?;
    let m = c.master.as_ref().context("master")?;
    wait_log(m, "handshake failed")?;
    let lines = log_lines(m, &["handshake failed", "replayed"]);
    assert!(lines.len() >= 3, "one line per replay naming it: {lines:?}");
    let w1p = &c.workers.iter().find(|(n, _)| n == "w1").context("w1")?.1;
    wait_log(w1p, "refused a connection")?;
    let lines = log_lines(
        w1p,
        &["refused a connection", "recorder-initiator", "replayed"],
    );
    assert_eq!(lines.len(), 1, "one line naming the replay: {lines:?}");
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

// ----- (f) frames in the wrong direction -------------------------------------

/// A joined client sends the master what only the master sends, or what
/// only goes between nodes: requests the master does not serve are
/// answered `Refused`; pushes (process signals, membership changes, an
/// answer to nothing, a hidden node's load report, an event about an app
/// it does not run, a name it does not hold) are ignored. Each is logged;
/// the connection stays usable; nothing legitimate is touched (the exit
/// signal `kill` aimed at the echo through the master does not reach it,
/// the `NodeDown` of w1 does not take it down).
#[test]
fn worker_messages_to_the_master_are_refused_or_ignored() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let w1 = live(&c, "w1")?;
    let echo: Pid = legit.echo.parse()?;
    let recorder: Pid = legit.recorder.parse()?;
    let rt = runtime()?;
    rt.block_on(async {
        let me = identity("wrongway", NodeKind::Hidden);
        let (mut r, welcome) =
            Raw::joined(&c.master_addr, &cookie, me.clone(), join_for(&me, "")).await?;
        assert!(matches!(welcome, Response::Welcome(_)), "{welcome:?}");
        for body in [
            Request::StartApp {
                app: "hostile-app".into(),
                generation: 1,
                spec: tree(),
            },
            Request::StopApp {
                app: "hostile-app".into(),
            },
            Request::LocalProcesses,
            Request::Inspect { pid: echo },
            Request::Spawn(spawn_req("builtin.echo", json!({}))),
            Request::Join(join_for(&me, "")),
        ] {
            let what = format!("{body:?}");
            let answer = r.request(body).await?;
            assert_error(&answer, ErrorCode::Refused, "", &what);
        }
        let mref = Ref::new(r.me.node, 1);
        r.send_all([
            send(Some(r.pid(1)), echo, &json!("via the master"))?,
            Msg::Link {
                from: r.pid(1),
                to: echo,
            },
            Msg::Unlink {
                from: r.pid(1),
                to: echo,
            },
            Msg::Monitor {
                watcher: r.pid(1),
                target: echo,
                mref,
                with_result: false,
            },
            Msg::Demonitor {
                watcher: r.pid(1),
                target: echo,
                mref,
            },
            Msg::Exit {
                from: r.pid(1),
                to: echo,
                reason: ExitReason::Killed,
                explicit: true,
            },
            Msg::Down {
                watcher: recorder,
                mref,
                pid: echo,
                reason: ExitReason::Killed,
                result: None,
            },
            Msg::NodeUp(NodeInfo {
                id: pool_proto::NodeId::random(),
                name: "ghost".into(),
                addr: "127.0.0.1:9".into(),
                kind: NodeKind::Worker,
                capacity: 64,
                labels: Default::default(),
            }),
            Msg::NodeDown {
                node: w1.id,
                reason: DownReason::Timeout,
            },
            Msg::Response {
                id: 4242,
                body: Response::Pong,
            },
            Msg::LoadReport(report(1, 0, 64)),
            Msg::AppEvent(AppEvent {
                app: "no-such-app".into(),
                generation: 1,
                kind: AppEventKind::RootExited(ExitReason::Killed),
            }),
            Msg::NameReleased {
                name: "not-mine".into(),
                pid: echo,
            },
        ])
        .await?;
        r.still_served().await?;
        let got = r.drain(Duration::from_millis(500)).await;
        assert!(got.is_empty(), "the master answered pushes with {got:?}");
        anyhow::Ok(())
    })?;
    let m = c.master.as_ref().context("master")?;
    for needle in [
        "refused a request",
        "ignored a Send",
        "ignored a Link",
        "ignored a Unlink",
        "ignored a Monitor",
        "ignored a Demonitor",
        "ignored a Exit",
        "ignored a Down",
        "ignored a NodeUp",
        "ignored a NodeDown",
        "ignored a Response",
        "ignored a LoadReport",
        "ignored a AppEvent",
        "ignored a NameReleased",
    ] {
        wait_log(m, needle)?;
    }
    for req in [
        "StartApp",
        "StopApp",
        "LocalProcesses",
        "Inspect",
        "Spawn",
        "Join",
    ] {
        assert!(
            !log_lines(m, &["refused a request", req]).is_empty(),
            "no log line for the refused {req}"
        );
    }
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

/// A peer sends a worker what only the master sends (membership pushes,
/// `Place`, `StartApp`, `StopApp`, `Join`, ...), an
/// answer to no request, and node-to-master pushes: requests are answered
/// `Refused`, pushes ignored, each with a line in the worker's log; the
/// connection stays usable and nothing legitimate is touched (the
/// `NodeDown` of w2 sent to w1 would otherwise cut the echo's link to the
/// recorder on w2).
#[test]
fn master_messages_to_a_worker_are_refused_or_ignored() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let (w1, w2) = (live(&c, "w1")?, live(&c, "w2")?);
    let echo: Pid = legit.echo.parse()?;
    let rt = runtime()?;
    rt.block_on(async {
        let me = identity("wrongway", NodeKind::Hidden);
        let mut r = Raw::connect(&w1.addr, &cookie, me.clone()).await?;
        for body in every_request(&me, echo) {
            let name = body.name();
            if matches!(
                body,
                Request::Spawn(_)
                    | Request::Inspect { .. }
                    | Request::Ping
                    | Request::LocalProcesses
                    | Request::MasterSeen
            ) {
                // What a worker serves from a peer (issue 13: any
                // authenticated peer may ask LocalProcesses and
                // MasterSeen).
                continue;
            }
            let answer = r.request(body).await?;
            assert_error(&answer, ErrorCode::Refused, name, name);
        }
        r.send_all([
            Msg::NodeUp(NodeInfo {
                id: pool_proto::NodeId::random(),
                name: "ghost".into(),
                addr: "127.0.0.1:9".into(),
                kind: NodeKind::Worker,
                capacity: 64,
                labels: Default::default(),
            }),
            Msg::NodeDown {
                node: w2.id,
                reason: DownReason::Timeout,
            },
            Msg::Response {
                id: 4242,
                body: Response::Spawned(echo),
            },
            Msg::LoadReport(report(1, 0, 64)),
            Msg::AppEvent(AppEvent {
                app: "no-such-app".into(),
                generation: 1,
                kind: AppEventKind::RootExited(ExitReason::Killed),
            }),
            Msg::NameReleased {
                name: "not-mine".into(),
                pid: echo,
            },
        ])
        .await?;
        r.still_served().await?;
        let got = r.drain(Duration::from_millis(500)).await;
        assert!(got.is_empty(), "the worker answered pushes with {got:?}");
        anyhow::Ok(())
    })?;
    let w1p = &c.workers.iter().find(|(n, _)| n == "w1").context("w1")?.1;
    let me = identity("any", NodeKind::Hidden);
    for req in every_request(&me, echo) {
        if !matches!(
            req,
            Request::Spawn(_)
                | Request::Inspect { .. }
                | Request::Ping
                | Request::LocalProcesses
                | Request::MasterSeen
        ) {
            wait_log(w1p, &format!("refused a {} from a peer", req.name()))?;
        }
    }
    for kind in [
        "NodeUp",
        "NodeDown",
        "LoadReport",
        "AppEvent",
        "NameReleased",
    ] {
        wait_log(w1p, &format!("ignored a {kind}"))?;
    }
    wait_log(w1p, "answer to no request")?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

/// Sanity check of the raw client itself: it joins the master as a hidden
/// node and is answered like poolctl would be.
#[test]
fn the_raw_client_speaks_the_protocol() -> Result<()> {
    let (c, legit) = raw::cluster(2)?;
    let cookie = cookie(&c)?;
    let rt = runtime()?;
    rt.block_on(async {
        let me = identity("honest", NodeKind::Hidden);
        let (mut r, welcome) =
            Raw::joined(&c.master_addr, &cookie, me.clone(), join_for(&me, "")).await?;
        let Response::Welcome(w) = welcome else {
            bail!("not welcomed: {welcome:?}")
        };
        let mut names: Vec<String> = w.members.iter().map(|m| m.name.clone()).collect();
        names.sort();
        assert!(
            names.contains(&"w1".to_owned()) && names.contains(&"honest".to_owned()),
            "{names:?}"
        );
        match r.request(Request::ListNodes).await? {
            Response::Nodes(n) => assert_eq!(n.len(), 2, "{n:?}"),
            other => bail!("ListNodes answered {other:?}"),
        }
        anyhow::Ok(())
    })?;
    legit.assert_unaffected(&c, true)?;
    Ok(())
}

// ----- modules -----------------------------------------------------------------

/// A push whose claimed hash is not the sha-256 of its bytes (damaged or
/// forged on the way) is refused with an error that says so, and nothing
/// of it is stored; the connection stays usable.
#[test]
fn a_push_with_a_hash_that_is_not_its_bytes_is_refused() -> Result<()> {
    let c = pool_cluster_tests::Cluster::start(1)?;
    let cookie = cookie(&c)?;
    let rt = runtime()?;
    rt.block_on(async {
        let me = identity("pusher", NodeKind::Hidden);
        let join = join_for(&me, "");
        let (mut r, _) = Raw::joined(&c.master_addr, &cookie, me, join).await?;
        let answer = r
            .request(Request::PushModule {
                file: "forged.wasm".into(),
                bytes: b"\0asm\x01\0\0\0".to_vec(),
                hash: Some(pool_proto::ModuleHash::of(b"something else")),
            })
            .await?;
        assert_error(
            &answer,
            ErrorCode::BadRequest,
            "is not the sha-256 of the bytes",
            "a forged hash",
        );
        match r.request(Request::ListModules).await? {
            Response::Modules(m) => assert!(m.is_empty(), "nothing stored: {m:?}"),
            other => bail!("ListModules answered {other:?}"),
        }
        anyhow::Ok(())
    })
}
