//! Writes seed inputs for the fuzz targets: valid frames of many kinds, so
//! the fuzzer starts from inputs that get past the framing and the variant
//! names.
//!
//! Run from `fuzz/`: `cargo run --example seed_corpus`; it fills
//! `corpus/decode_frame/`, `corpus/handshake/` and `corpus/tree_file/` (the
//! tree files of `pool-proto/tests/fixtures/` and `examples/trees/`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use pool_proto::handshake::{HandshakeMsg, Identity, Initiator, RefuseReason, Responder, Step};
use pool_proto::*;
use serde::Serialize;

fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Codec::<T>::new()
        .encode_into(msg, &mut buf)
        .expect("seed messages encode");
    buf.to_vec()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write a seed file");
}

fn main() {
    let node = NodeId::from_u64(0x3f2a_9c1e_04d1_b2aa);
    let pid = Pid::new(node, 17);
    let mref = Ref::new(node, 9);
    let info = NodeInfo {
        id: node,
        name: "w1".into(),
        addr: "127.0.0.1:7402".into(),
        kind: NodeKind::Worker,
        capacity: 4,
        labels: [("zone".to_string(), "a".to_string())].into(),
    };
    let mut sinks = SupervisorSpec::new("", Strategy::RestForOne);
    sinks.children.push(ChildSpecData::worker(
        "disk",
        "builtin.echo",
        serde_json::json!([1, "x", null]),
    ));
    let mut root = SupervisorSpec::new("ingest", Strategy::OneForOne);
    let mut parser = ChildSpecData::worker("parser", "builtin.echo", serde_json::json!({"n": 1.5}));
    parser.shutdown = Some(Shutdown::Timeout(Duration::from_secs(5)));
    parser.placement = Some(Placement::Key("user:42".into()));
    root.children.push(parser);
    root.children
        .push(ChildSpecData::supervisor("sinks", sinks));
    let spec = TreeSpec { supervisor: root };
    let view = TreeView {
        reason: None,
        id: "ingest".into(),
        strategy: Some(Strategy::OneForOne),
        pid: Some(pid),
        node: Some("w1".into()),
        restarts: 2,
        status: ChildStatus::Running,
        children: Some(vec![TreeView {
            reason: None,
            id: "parser".into(),
            strategy: None,
            pid: None,
            node: None,
            restarts: 0,
            status: ChildStatus::Restarting,
            children: None,
        }]),
    };
    let req = |id, body| Msg::Request { id, body };
    let resp = |id, body| Msg::Response { id, body };
    let msgs = vec![
        req(
            1,
            Request::Join(Join {
                info: info.clone(),
                functions: vec!["builtin.echo".into()],
                names: vec![("db".into(), pid)],
                apps: vec![],
                rejoin: false,
                wasm: false,
            }),
        ),
        req(2, Request::Ready),
        req(
            3,
            Request::Place(PlaceQuery {
                count: 3,
                key: Some("k".into()),
                labels: vec![LabelReq {
                    key: "zone".into(),
                    value: "a".into(),
                }],
                commit: true,
                ..PlaceQuery::default()
            }),
        ),
        req(
            4,
            Request::RegisterName {
                name: "db".into(),
                pid,
            },
        ),
        req(5, Request::WhereIs { name: "db".into() }),
        req(
            6,
            Request::ListProcesses {
                node: Some("w1".into()),
            },
        ),
        req(
            7,
            Request::TreeStart {
                spec: spec.clone(),
                source: Some("ingest.toml".into()),
                text: Some("[supervisor]\nid = \"ingest\"\n".into()),
            },
        ),
        req(12, Request::Leave),
        req(
            8,
            Request::StartApp {
                app: "ingest".into(),
                generation: 2,
                spec,
            },
        ),
        req(9, Request::Inspect { pid }),
        req(
            10,
            Request::Spawn(SpawnRequest {
                function: "builtin.echo".into(),
                args: serde_json::json!({"a": [1, 2]}),
                link: Some(pid),
                monitor: Some(SpawnMonitor {
                    watcher: pid,
                    mref,
                    with_result: true,
                }),
                owner: None,
                trace: Some(5),
                sandbox: None,
            }),
        ),
        req(11, Request::Ping),
        resp(
            1,
            Response::Welcome(Welcome {
                members: vec![info.clone()],
                report_interval_ms: 500,
                node_timeout_ms: 3000,
                fence: Some(Fence::default()),
                members_next: 0,
            }),
        ),
        resp(
            2,
            Response::Error(RemoteError::new(ErrorCode::NoNode, "no node")),
        ),
        resp(
            3,
            Response::Placed(vec![Placed {
                id: node,
                name: "w1".into(),
                addr: "127.0.0.1:1".into(),
                function: None,
            }]),
        ),
        resp(4, Response::Names([("db".to_string(), pid)].into())),
        resp(5, Response::Tree(Box::new(view))),
        resp(
            6,
            Response::Apps(vec![AppSummary {
                id: "ingest".into(),
                root: Some(pid),
                node: None,
                status: AppStatus::Failed,
                reason: Some("shutdown".into()),
            }]),
        ),
        resp(7, Response::Spawned(pid)),
        Msg::NodeUp(info),
        Msg::NodeDown {
            node,
            reason: DownReason::Timeout,
        },
        Msg::LoadReport(LoadReport {
            seq: 1,
            cpu_percent: 3.5,
            capacity: 4,
            ..LoadReport::default()
        }),
        Msg::AppEvent(AppEvent {
            app: "ingest".into(),
            generation: 1,
            kind: AppEventKind::ChildRestarted {
                supervisor: "ingest".into(),
                child: "parser".into(),
                pid: Some(pid),
                reason: ExitReason::Panic("boom".into()),
            },
        }),
        Msg::Send(SendMsg {
            to: Dest::Pid(pid),
            from: Some(pid),
            kind: MsgKind::Call(mref),
            payload: Payload(vec![0xa2, b'h', b'i']),
            trace: None,
        }),
        Msg::Send(SendMsg {
            to: Dest::Name("db".into()),
            from: None,
            kind: MsgKind::Plain,
            payload: Payload(vec![7; 32]),
            trace: Some(1),
        }),
        Msg::Link { from: pid, to: pid },
        Msg::Monitor {
            watcher: pid,
            target: pid,
            mref,
            with_result: false,
        },
        Msg::Exit {
            from: pid,
            to: pid,
            reason: ExitReason::ShutdownWith("x".into()),
            explicit: true,
        },
        Msg::Down {
            watcher: pid,
            mref,
            pid,
            reason: ExitReason::NoConnection,
            result: Some(Payload(vec![0xc0])),
        },
    ];

    let decode_dir = Path::new("corpus/decode_frame");
    fs::create_dir_all(decode_dir).expect("create corpus/decode_frame");
    for (i, msg) in msgs.iter().enumerate() {
        write(decode_dir, &format!("msg-{i:02}"), &frame(msg));
    }
    // Two frames back to back, and a frame cut short.
    let two = [frame(&msgs[0]), frame(&msgs[10])].concat();
    write(decode_dir, "two-frames", &two);
    let cut = frame(&msgs[6]);
    write(decode_dir, "cut-frame", &cut[..cut.len() / 2]);

    // Handshake seeds: an honest exchange's messages, one per file and all
    // together, behind each mode byte.
    let cookie = Cookie::new("fuzz cookie", "fuzz").expect("not empty");
    let a = Identity {
        node: NodeId::from_u64(0x5555_6666_7777_8888),
        name: "them".into(),
        kind: NodeKind::Master,
    };
    let b = Identity {
        node: NodeId::from_u64(0x1111_2222_3333_4444),
        name: "us".into(),
        kind: NodeKind::Worker,
    };
    let (mut init, hello) = Initiator::new(a, cookie.clone());
    let mut resp_m = Responder::new(b, cookie);
    let Step::Send(challenge) = resp_m.on_message(hello.clone()) else {
        panic!("honest hello refused")
    };
    let Step::Send(proof) = init.on_message(challenge.clone()) else {
        panic!("honest challenge refused")
    };
    let hs = [
        hello,
        challenge,
        proof,
        HandshakeMsg::Accepted,
        HandshakeMsg::Refused(RefuseReason::VersionMismatch { version: 2 }),
        HandshakeMsg::Refused(RefuseReason::BadCookie),
        HandshakeMsg::Refused(RefuseReason::Other("no".into())),
    ];
    let hs_dir = Path::new("corpus/handshake");
    fs::create_dir_all(hs_dir).expect("create corpus/handshake");
    for mode in 0u8..3 {
        for (i, msg) in hs.iter().enumerate() {
            let mut bytes = vec![mode];
            bytes.extend(frame(msg));
            write(hs_dir, &format!("mode{mode}-{i}"), &bytes);
        }
        let mut all = vec![mode];
        for msg in &hs {
            all.extend(frame(msg));
        }
        write(hs_dir, &format!("mode{mode}-all"), &all);
    }

    // Tree files: the parser's test fixtures and the example trees.
    let tree_dir = Path::new("corpus/tree_file");
    fs::create_dir_all(tree_dir).expect("create corpus/tree_file");
    let mut trees = 0;
    for src in ["../pool-proto/tests/fixtures", "../examples/trees"] {
        let Ok(entries) = fs::read_dir(src) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path.file_name().expect("a file name").to_string_lossy();
                let text = fs::read(&path).expect("read a tree file");
                write(tree_dir, &name, &text);
                trees += 1;
            }
        }
    }
    println!(
        "wrote {} decode_frame seeds, {} handshake seeds and {trees} tree_file seeds",
        msgs.len() + 2,
        3 * (hs.len() + 1)
    );
}
