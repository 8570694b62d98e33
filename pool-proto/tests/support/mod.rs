//! Shared helpers of pool-proto's integration tests: proptest strategies for
//! every wire type (with realistic nesting) and a few hand-made messages.
//!
//! Each test crate uses a different part of this module, hence the
//! `dead_code` allowance.

#![allow(dead_code)]

use std::time::Duration;

use bytes::BytesMut;
use pool_proto::handshake::{HandshakeMsg, Identity, NONCE_LEN, RefuseReason};
use pool_proto::{
    AppEvent, AppEventKind, AppStatus, AppSummary, AutoShutdown, ChildSpecData, ChildStatus, Codec,
    Dest, DirGrant, DownReason, Dur, ErrorCode, ExitReason, Fence, Join, LabelReq, Labels,
    LoadReport, LoadRow, LoadTableCopy, LoadUpdate, MemberChange, MemberList, MembersDelta,
    ModuleHash, ModuleInfo, Msg, MsgKind, NodeId, NodeInfo, NodeKind, NodeRow, NodeStatus,
    PROTOCOL_VERSION, Payload, Pid, PlaceQuery, Placed, PlacedNotice, Placement, PlacementStrategy,
    ProcStatus, ProcessInfo, Ref, RemoteError, Request, Response, Restart, RunningApp, Sandbox,
    SendMsg, Shutdown, SpawnMonitor, SpawnRequest, Strategy as SupStrategy, SupervisorSpec,
    TreeSpec, TreeView, Unreachable, UnreachableFrom, Welcome,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Leaves: ids, names, text, numbers.

/// Any node id.
pub(crate) fn node_id() -> impl Strategy<Value = NodeId> {
    any::<u64>().prop_map(NodeId::from_u64)
}

/// Any pid.
pub(crate) fn pid() -> impl Strategy<Value = Pid> {
    (node_id(), any::<u64>()).prop_map(|(n, s)| Pid::new(n, s))
}

/// Any reference.
pub(crate) fn mref() -> impl Strategy<Value = Ref> {
    (node_id(), any::<u64>()).prop_map(|(n, s)| Ref::new(n, s))
}

/// A node, application, child or function name as people write them.
pub(crate) fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,11}"
}

/// Free text (reasons, messages), including the awkward cases: empty,
/// whitespace, non-ASCII, NUL, and text that looks like another reason.
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9 _.:-]{0,24}",
        2 => "\\PC{0,24}",
        1 => select(vec![
            "",
            " ",
            "normal",
            "shutdown: x",
            "panic: boom",
            "  padded  ",
            "naïve ☃ 日本",
            "nul\u{0}inside",
        ])
        .prop_map(String::from),
    ]
}

/// A peer address (`host:port`).
pub(crate) fn addr() -> impl Strategy<Value = String> {
    "(127\\.0\\.0\\.1|10\\.0\\.[0-9]{1,3}\\.[0-9]{1,3}|worker-[0-9]\\.pool\\.internal):[1-9][0-9]{1,4}"
}

/// Node labels such as `zone=a`.
pub(crate) fn labels() -> impl Strategy<Value = Labels> {
    btree_map("[a-z]{1,6}", "[a-z0-9]{1,6}", 0..4)
}

/// A finite `f32` in `0..max` (load figures are never NaN).
pub(crate) fn load_f32(max: f32) -> impl Strategy<Value = f32> {
    (0.0f32..max).prop_map(|v| (v * 100.0).round() / 100.0)
}

/// Any finite `f64`.
pub(crate) fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64;
    f64::POSITIVE | f64::NEGATIVE | f64::NORMAL | f64::SUBNORMAL | f64::ZERO
}

/// Durations as configs and tree files hold them (whole milliseconds).
pub(crate) fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        select(vec![0u64, 1, 500, 1_000, 5_000, 60_000, 3_600_000]).prop_map(Duration::from_millis),
        (0u64..7 * 86_400_000).prop_map(Duration::from_millis),
    ]
}

/// A JSON value of any shape, nested a few levels (function arguments).
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An opaque payload: raw bytes of any length up to 2 KiB, or a real
/// MessagePack encoding of a JSON-like value.
pub(crate) fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..64).prop_map(Payload),
        1 => vec(any::<u8>(), 0..2048).prop_map(Payload),
        2 => json_value().prop_map(|v| Payload::encode(&v).expect("a JSON value always encodes")),
    ]
}

// ---------------------------------------------------------------------------
// Exit reasons.

/// An exit reason of every kind, with any text.
pub(crate) fn exit_reason() -> impl Strategy<Value = ExitReason> {
    prop_oneof![
        Just(ExitReason::Normal),
        Just(ExitReason::Shutdown),
        text().prop_map(ExitReason::ShutdownWith),
        Just(ExitReason::Killed),
        Just(ExitReason::Kill),
        Just(ExitReason::NoProc),
        Just(ExitReason::NoConnection),
        text().prop_map(ExitReason::Panic),
        text().prop_map(ExitReason::Error),
    ]
}

/// Text whose human-readable form reads back as itself: no surrounding
/// whitespace, and (for an error) not a keyword or a `shutdown:`/`panic:`
/// prefix. JSON carries a reason as its `Display` text, so only these
/// round-trip there; the wire form carries any text.
fn canonical_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9 _.,:'()/-]{0,30}[a-zA-Z0-9)]|[a-zA-Z0-9]|"
}

/// An exit reason of every kind whose text form is canonical (see
/// [`canonical_text`]).
pub(crate) fn canonical_exit_reason() -> impl Strategy<Value = ExitReason> {
    const KEYWORDS: [&str; 6] = [
        "normal",
        "shutdown",
        "killed",
        "kill",
        "noproc",
        "noconnection",
    ];
    let error_text = canonical_text().prop_filter("reads back as another reason", |t| {
        !KEYWORDS.contains(&t.as_str()) && !t.starts_with("shutdown:") && !t.starts_with("panic:")
    });
    prop_oneof![
        Just(ExitReason::Normal),
        Just(ExitReason::Shutdown),
        canonical_text().prop_map(ExitReason::ShutdownWith),
        Just(ExitReason::Killed),
        Just(ExitReason::Kill),
        Just(ExitReason::NoProc),
        Just(ExitReason::NoConnection),
        canonical_text().prop_map(ExitReason::Panic),
        error_text.prop_map(ExitReason::Error),
    ]
}

// ---------------------------------------------------------------------------
// Tree specs and views.

/// Every supervisor strategy.
pub(crate) fn sup_strategy() -> impl Strategy<Value = SupStrategy> {
    select(vec![
        SupStrategy::OneForOne,
        SupStrategy::OneForAll,
        SupStrategy::RestForOne,
        SupStrategy::SimpleOneForOne,
    ])
}

/// Every restart type.
pub(crate) fn restart() -> impl Strategy<Value = Restart> {
    select(vec![
        Restart::Permanent,
        Restart::Transient,
        Restart::Temporary,
    ])
}

/// Every auto-shutdown setting.
pub(crate) fn auto_shutdown() -> impl Strategy<Value = AutoShutdown> {
    select(vec![
        AutoShutdown::Never,
        AutoShutdown::AnySignificant,
        AutoShutdown::AllSignificant,
    ])
}

/// Every shutdown kind.
pub(crate) fn shutdown() -> impl Strategy<Value = Shutdown> {
    prop_oneof![
        Just(Shutdown::BrutalKill),
        Just(Shutdown::Infinity),
        duration().prop_map(Shutdown::Timeout),
    ]
}

/// Every placement kind.
pub(crate) fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        Just(Placement::Local),
        Just(Placement::LeastLoaded),
        name().prop_map(Placement::Node),
        "user:[0-9]{1,5}".prop_map(Placement::Key),
        "zone=[a-c](,disk=(ssd|hdd))?".prop_map(Placement::Label),
    ]
}

prop_compose! {
    /// A worker child: a function, its JSON arguments and every option.
    pub(crate) fn worker_child()(
        id in name(),
        function in "builtin\\.(echo|sleep|busy|crash|counter)|app\\.[a-z]{1,8}",
        args in json_value(),
        restart in restart(),
        shutdown in option::of(shutdown()),
        significant in any::<bool>(),
        placement in option::of(placement()),
    ) -> ChildSpecData {
        ChildSpecData {
            id,
            function: Some(function),
            args,
            supervisor: None,
            restart,
            shutdown,
            significant,
            placement,
            sandbox: None,
        }
    }
}

/// A supervisor's flags over the given children.
fn supervisor_with(
    children: impl Strategy<Value = Vec<ChildSpecData>>,
) -> impl Strategy<Value = SupervisorSpec> {
    (
        name(),
        sup_strategy(),
        0u32..10,
        duration(),
        auto_shutdown(),
        children,
    )
        .prop_map(
            |(id, strategy, intensity, period, auto_shutdown, children)| SupervisorSpec {
                id,
                strategy,
                intensity,
                period: Dur(period),
                auto_shutdown,
                children,
            },
        )
}

/// A supervisor with workers and nested supervisors, up to 3 levels deep.
pub(crate) fn supervisor_spec() -> impl Strategy<Value = SupervisorSpec> {
    supervisor_with(vec(worker_child(), 0..4)).prop_recursive(3, 24, 4, |inner| {
        let nested = (
            name(),
            inner,
            restart(),
            option::of(shutdown()),
            option::of(placement()),
        )
            .prop_map(|(id, mut spec, restart, shutdown, placement)| {
                // A nested supervisor takes the id of its child entry.
                spec.id = String::new();
                ChildSpecData {
                    id,
                    function: None,
                    args: Value::Null,
                    supervisor: Some(spec),
                    restart,
                    shutdown,
                    significant: false,
                    placement,
                    sandbox: None,
                }
            });
        supervisor_with(vec(prop_oneof![2 => worker_child(), 1 => nested], 0..4))
    })
}

/// A whole tree file.
pub(crate) fn tree_spec() -> impl Strategy<Value = TreeSpec> {
    supervisor_spec().prop_map(|supervisor| TreeSpec { supervisor })
}

/// Every child status.
pub(crate) fn child_status() -> impl Strategy<Value = ChildStatus> {
    select(vec![
        ChildStatus::Running,
        ChildStatus::Restarting,
        ChildStatus::Stopped,
        ChildStatus::Pending,
        ChildStatus::Failed,
    ])
}

/// A `tree show` view: supervisors with children, up to 3 levels deep.
pub(crate) fn tree_view() -> impl Strategy<Value = TreeView> {
    let leaf = (
        name(),
        option::of(pid()),
        option::of(name()),
        0u64..1000,
        child_status(),
        option::of(text()),
    )
        .prop_map(|(id, pid, node, restarts, status, reason)| TreeView {
            reason,
            id,
            strategy: None,
            pid,
            node,
            restarts,
            status,
            children: None,
        });
    leaf.prop_recursive(3, 24, 4, |inner| {
        (
            name(),
            sup_strategy(),
            option::of(pid()),
            option::of(name()),
            0u64..1000,
            child_status(),
            vec(inner, 0..4),
        )
            .prop_map(
                |(id, strategy, pid, node, restarts, status, children)| TreeView {
                    reason: None,
                    id,
                    strategy: Some(strategy),
                    pid,
                    node,
                    restarts,
                    status,
                    children: Some(children),
                },
            )
    })
}

/// Every application status.
pub(crate) fn app_status() -> impl Strategy<Value = AppStatus> {
    select(vec![
        AppStatus::Running,
        AppStatus::Failed,
        AppStatus::Stopped,
        AppStatus::Pending,
    ])
}

prop_compose! {
    /// One line of `tree ls`.
    pub(crate) fn app_summary()(
        id in name(),
        root in option::of(pid()),
        node in option::of(name()),
        status in app_status(),
        reason in option::of(text()),
    ) -> AppSummary {
        AppSummary { id, root, node, status, reason }
    }
}

// ---------------------------------------------------------------------------
// Message payload structs.

/// Every node kind.
pub(crate) fn node_kind() -> impl Strategy<Value = NodeKind> {
    select(vec![NodeKind::Master, NodeKind::Worker, NodeKind::Hidden])
}

prop_compose! {
    /// A member of the pool.
    pub(crate) fn node_info()(
        id in node_id(),
        name in name(),
        addr in addr(),
        kind in node_kind(),
        capacity in 0u32..256,
        labels in labels(),
    ) -> NodeInfo {
        NodeInfo { id, name, addr, kind, capacity, labels }
    }
}

/// An application root a node runs.
pub(crate) fn running_app() -> impl Strategy<Value = RunningApp> {
    (name(), any::<u64>(), pid()).prop_map(|(app, generation, root)| RunningApp {
        app,
        generation,
        root,
    })
}

prop_compose! {
    /// A join request, possibly a rejoin carrying names and applications.
    pub(crate) fn join()(
        info in node_info(),
        functions in vec("builtin\\.[a-z]{1,8}", 0..6),
        names in vec((name(), pid()), 0..4),
        apps in vec(running_app(), 0..3),
        rejoin in any::<bool>(),
        wasm in any::<bool>(),
    ) -> Join {
        Join { info, functions, names, apps, rejoin, wasm }
    }
}

/// What a fenced node must stop.
pub(crate) fn fence() -> impl Strategy<Value = Fence> {
    (vec(name(), 0..4), vec(name(), 0..4)).prop_map(|(stop_apps, lost_names)| Fence {
        stop_apps,
        lost_names,
    })
}

prop_compose! {
    /// The master's welcome.
    pub(crate) fn welcome()(
        members in vec(node_info(), 0..5),
        report_interval_ms in 1u64..10_000,
        node_timeout_ms in 1u64..60_000,
        fence in option::of(fence()),
        members_next in any::<u64>(),
    ) -> Welcome {
        Welcome { members, report_interval_ms, node_timeout_ms, fence, members_next }
    }
}

prop_compose! {
    /// A worker's load report.
    pub(crate) fn load_report()(
        (seq, sent_at_ms, cpu_percent, self_cpu_percent) in
            (any::<u64>(), any::<u64>(), load_f32(100.0), load_f32(1600.0)),
        load_avg in [load_f32(64.0), load_f32(64.0), load_f32(64.0)],
        (mem_used, mem_total, self_rss) in (any::<u64>(), any::<u64>(), any::<u64>()),
        (processes, run_queue, busy_threads, capacity, spawns_received) in
            (any::<u64>(), any::<u32>(), load_f32(64.0), 0u32..256, any::<u64>()),
        (frames_out, bytes_out, frames_in, bytes_in) in
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        o in proptest::array::uniform9(any::<u64>()),
        unreachable in vec(unreachable(), 0..3),
    ) -> LoadReport {
        LoadReport {
            seq,
            sent_at_ms,
            cpu_percent,
            self_cpu_percent,
            load_avg,
            mem_used,
            mem_total,
            self_rss,
            processes,
            run_queue,
            busy_threads,
            capacity,
            spawns_received,
            frames_out,
            bytes_out,
            frames_in,
            bytes_in,
            outcomes: pool_proto::ProcessOutcomes {
                exits_normal: o[0],
                exits_shutdown: o[1],
                exits_killed: o[2],
                exits_error: o[3],
                exits_noconnection: o[4],
                exits_other: o[5],
                spawn_unknown_function: o[6],
                spawn_bad_args: o[7],
                spawn_other: o[8],
            },
            unreachable,
        }
    }
}

/// A peer a node could not reach.
pub(crate) fn unreachable() -> impl Strategy<Value = Unreachable> {
    (
        node_id(),
        "cannot connect to [0-9.:]{3,20}: [a-z ]{1,20}",
        any::<u64>(),
    )
        .prop_map(|(node, cause, since_ms)| Unreachable {
            node,
            cause,
            since_ms,
        })
}

/// Who could not reach a node.
pub(crate) fn unreachable_from() -> impl Strategy<Value = UnreachableFrom> {
    (name(), "[a-z0-9.: ]{0,30}", any::<u64>()).prop_map(|(from, cause, since_ms)| {
        UnreachableFrom {
            from,
            cause,
            since_ms,
        }
    })
}

/// Every kind of application event.
pub(crate) fn app_event() -> impl Strategy<Value = AppEvent> {
    let kind = prop_oneof![
        exit_reason().prop_map(AppEventKind::RootExited),
        (
            "[a-z]{1,8}(/[a-z]{1,8}){0,3}",
            name(),
            option::of(pid()),
            exit_reason()
        )
            .prop_map(|(supervisor, child, pid, reason)| {
                AppEventKind::ChildRestarted {
                    supervisor,
                    child,
                    pid,
                    reason,
                }
            }),
    ];
    (name(), any::<u64>(), kind).prop_map(|(app, generation, kind)| AppEvent {
        app,
        generation,
        kind,
    })
}

/// A label constraint.
pub(crate) fn label_req() -> impl Strategy<Value = LabelReq> {
    ("[a-z]{1,6}", "[a-z0-9]{0,6}").prop_map(|(key, value)| LabelReq { key, value })
}

prop_compose! {
    /// A placement query with every option.
    pub(crate) fn place_query()(
        count in 0u32..1000,
        strategy in option::of(select(PlacementStrategy::ALL.to_vec())),
        key in option::of("user:[0-9]{1,5}"),
        labels in vec(label_req(), 0..3),
        node in option::of(name()),
        exclude in vec(node_id(), 0..3),
        commit in any::<bool>(),
        trace in option::of(any::<u64>()),
        function in option::of(name()),
    ) -> PlaceQuery {
        PlaceQuery { count, strategy, key, labels, node, exclude, commit, trace, function }
    }
}

/// A monitor set up with a spawn.
pub(crate) fn spawn_monitor() -> impl Strategy<Value = SpawnMonitor> {
    (pid(), mref(), any::<bool>()).prop_map(|(watcher, mref, with_result)| SpawnMonitor {
        watcher,
        mref,
        with_result,
    })
}

prop_compose! {
    /// A spawn request with JSON arguments.
    pub(crate) fn spawn_request()(
        function in "builtin\\.(echo|sleep|busy|crash|counter)|app\\.[a-z]{1,8}",
        args in json_value(),
        link in option::of(pid()),
        monitor in option::of(spawn_monitor()),
        owner in option::of("[a-z]{1,8}(/[a-z]{1,8}){0,3}"),
        trace in option::of(any::<u64>()),
        sandbox in option::of(sandbox()),
    ) -> SpawnRequest {
        SpawnRequest { function, args, link, monitor, owner, trace, sandbox }
    }
}

/// Every process status.
pub(crate) fn proc_status() -> impl Strategy<Value = ProcStatus> {
    select(vec![
        ProcStatus::Running,
        ProcStatus::Waiting,
        ProcStatus::Exiting,
    ])
}

prop_compose! {
    /// One line of `ps`.
    pub(crate) fn process_info()(
        pid in pid(),
        node in name(),
        function in "builtin\\.[a-z]{1,8}",
        status in proc_status(),
        age_ms in any::<u64>(),
        mailbox in any::<u64>(),
        name in option::of(name()),
        owner in option::of("[a-z]{1,8}(/[a-z]{1,8}){0,3}"),
    ) -> ProcessInfo {
        ProcessInfo { pid, node, function, status, age_ms, mailbox, name, owner }
    }
}

prop_compose! {
    /// One line of `nodes`.
    pub(crate) fn node_status()(
        (name, id, addr) in (name(), node_id(), addr()),
        (cpu, mem, procs, score) in
            (load_f32(100.0), load_f32(100.0), any::<u64>(), finite_f64()),
        labels in labels(),
        (capacity, self_cpu, run_queue, report_age_ms) in
            (0u32..256, load_f32(1600.0), any::<u32>(), any::<u64>()),
        unreachable_from in vec(unreachable_from(), 0..3),
    ) -> NodeStatus {
        NodeStatus {
            name,
            id,
            addr,
            cpu,
            mem,
            procs,
            score,
            labels,
            capacity,
            self_cpu,
            run_queue,
            report_age_ms,
            unreachable_from,
        }
    }
}

/// A node chosen by placement.
pub(crate) fn placed() -> impl Strategy<Value = Placed> {
    (node_id(), name(), addr(), option::of(name())).prop_map(|(id, name, addr, function)| Placed {
        id,
        name,
        addr,
        function,
    })
}

/// A module hash.
pub(crate) fn module_hash() -> impl Strategy<Value = ModuleHash> {
    any::<[u8; 32]>().prop_map(ModuleHash::from)
}

prop_compose! {
    /// A wasm spawn's limits and grants.
    pub(crate) fn sandbox()(
        fuel in option::of(any::<u64>()),
        memory in option::of(any::<u64>()),
        dirs in vec(("/[a-z]{1,8}", "/[a-z]{1,8}", any::<bool>()), 0..3),
        env in vec(("[A-Z]{1,6}", "\\PC{0,8}"), 0..3),
    ) -> Sandbox {
        Sandbox {
            fuel,
            memory,
            dirs: dirs
                .into_iter()
                .map(|(host, guest, write)| DirGrant { host, guest, write })
                .collect(),
            env,
        }
    }
}

prop_compose! {
    /// One module of `ListModules`.
    pub(crate) fn module_info()(
        hash in module_hash(),
        file in "[a-z]{1,8}\\.wasm",
        size in any::<u64>(),
        pushed_at in any::<u64>(),
    ) -> ModuleInfo {
        ModuleInfo { hash, file, size, pushed_at }
    }
}

/// Every remote error code.
pub(crate) fn error_code() -> impl Strategy<Value = ErrorCode> {
    select(vec![
        ErrorCode::DuplicateName,
        ErrorCode::NoNode,
        ErrorCode::UnknownNode,
        ErrorCode::UnknownFunction,
        ErrorCode::BadArgs,
        ErrorCode::NotFound,
        ErrorCode::AlreadyRunning,
        ErrorCode::BadSpec,
        ErrorCode::Overloaded,
        ErrorCode::Refused,
        ErrorCode::BadRequest,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ])
}

/// Every message destination.
pub(crate) fn dest() -> impl Strategy<Value = Dest> {
    prop_oneof![pid().prop_map(Dest::Pid), name().prop_map(Dest::Name)]
}

/// Every message kind.
pub(crate) fn msg_kind() -> impl Strategy<Value = MsgKind> {
    prop_oneof![
        Just(MsgKind::Plain),
        mref().prop_map(MsgKind::Call),
        mref().prop_map(MsgKind::Reply),
    ]
}

/// A message between processes.
pub(crate) fn send_msg() -> impl Strategy<Value = SendMsg> {
    (
        dest(),
        option::of(pid()),
        msg_kind(),
        payload(),
        option::of(any::<u64>()),
    )
        .prop_map(|(to, from, kind, payload, trace)| SendMsg {
            to,
            from,
            kind,
            payload,
            trace,
        })
}

/// Every reason a node is declared down.
pub(crate) fn down_reason() -> impl Strategy<Value = DownReason> {
    select(vec![
        DownReason::ConnectionClosed,
        DownReason::Timeout,
        DownReason::Left,
        DownReason::Replaced,
    ])
}

// ---------------------------------------------------------------------------
// The three enums of the message phase.

/// Every [`Request`] variant, equally often.
pub(crate) fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        join().prop_map(Request::Join),
        Just(Request::Ready),
        place_query().prop_map(Request::Place),
        (name(), pid()).prop_map(|(name, pid)| Request::RegisterName { name, pid }),
        name().prop_map(|name| Request::UnregisterName { name }),
        name().prop_map(|name| Request::WhereIs { name }),
        Just(Request::ListNames),
        Just(Request::ListNodes),
        option::of(name()).prop_map(|node| Request::ListProcesses { node }),
        Just(Request::LocalProcesses),
        (
            tree_spec(),
            option::of("[a-z/]{1,20}\\.toml"),
            option::of("\\[supervisor\\]\nid = \"[a-z]{1,8}\"\n(# \\PC{0,20}\n)?"),
        )
            .prop_map(|(spec, source, text)| Request::TreeStart { spec, source, text }),
        Just(Request::TreeList),
        name().prop_map(|id| Request::TreeShow { id }),
        name().prop_map(|id| Request::TreeStop { id }),
        name().prop_map(|id| Request::TreeRestart { id }),
        name().prop_map(|id| Request::TreeRemove { id }),
        (name(), any::<u64>(), tree_spec()).prop_map(|(app, generation, spec)| {
            Request::StartApp {
                app,
                generation,
                spec,
            }
        }),
        name().prop_map(|app| Request::StopApp { app }),
        pid().prop_map(|pid| Request::Inspect { pid }),
        spawn_request().prop_map(Request::Spawn),
        Just(Request::Ping),
        Just(Request::MasterSeen),
        (name(), pid()).prop_map(|(name, pid)| Request::WatchName { name, pid }),
        Just(Request::Leave),
        (
            "[a-z]{1,8}\\.wasm",
            vec(any::<u8>(), 0..64),
            option::of(module_hash())
        )
            .prop_map(|(file, bytes, hash)| Request::PushModule { file, bytes, hash }),
        Just(Request::ListModules),
        module_hash().prop_map(|hash| Request::FetchModule { hash }),
        name().prop_map(|function| Request::ResolveFunction { function }),
        Just(Request::SyncMembers),
        Just(Request::WatchLoads),
    ]
}

/// The number of [`Request`] variants `request()` chooses from.
const REQUEST_ARMS: u32 = 30;

/// Every [`Response`] variant, equally often.
pub(crate) fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Ok),
        (error_code(), text())
            .prop_map(|(code, message)| Response::Error(RemoteError::new(code, message))),
        welcome().prop_map(Response::Welcome),
        vec(placed(), 0..5).prop_map(Response::Placed),
        any::<bool>().prop_map(Response::Registered),
        option::of(pid()).prop_map(Response::WhereIs),
        btree_map(name(), pid(), 0..5).prop_map(Response::Names),
        vec(node_status(), 0..4).prop_map(Response::Nodes),
        vec(process_info(), 0..5).prop_map(Response::Processes),
        vec(app_summary(), 0..4).prop_map(Response::Apps),
        tree_view().prop_map(|v| Response::Tree(Box::new(v))),
        pid().prop_map(Response::Spawned),
        Just(Response::Pong),
        option::of(any::<u64>()).prop_map(|heard_ms_ago| Response::MasterSeen { heard_ms_ago }),
        vec(module_info(), 0..4).prop_map(Response::Modules),
        vec(any::<u8>(), 0..64).prop_map(|bytes| Response::ModuleBytes { bytes }),
        name().prop_map(Response::Function),
        load_table_copy().prop_map(|c| Response::Loads(Box::new(c))),
    ]
}

/// The number of [`Response`] variants `response()` chooses from.
const RESPONSE_ARMS: u32 = 18;

/// One node's load in a copy of the load table (finite numbers: they
/// compare equal after the round trip).
pub(crate) fn load_row() -> impl Strategy<Value = LoadRow> {
    (
        node_id(),
        0.0f64..1e6,
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(node, base_load, processes, pending, capacity, mem_used, mem_total)| LoadRow {
                node,
                base_load,
                processes,
                pending,
                capacity,
                mem_used,
                mem_total,
            },
        )
}

/// One node's whole row in a copy of the load table.
pub(crate) fn node_row() -> impl Strategy<Value = NodeRow> {
    (node_info(), vec(name(), 0..4), any::<bool>(), load_row()).prop_map(
        |(info, functions, wasm, load)| NodeRow {
            info,
            functions,
            wasm,
            load,
        },
    )
}

/// The answer to `WatchLoads`.
pub(crate) fn load_table_copy() -> impl Strategy<Value = LoadTableCopy> {
    (
        any::<u64>(),
        any::<u64>(),
        select(PlacementStrategy::ALL.to_vec()),
        option::of(0.0f64..1.0),
        vec(node_row(), 0..4),
    )
        .prop_map(
            |(next, notices, strategy, mem_refuse_above, nodes)| LoadTableCopy {
                next,
                notices,
                strategy,
                mem_refuse_above,
                nodes,
            },
        )
}

/// A load table update.
pub(crate) fn load_update() -> impl Strategy<Value = LoadUpdate> {
    (
        any::<u64>(),
        any::<u64>(),
        vec(node_row(), 0..3),
        vec(load_row(), 0..4),
        vec(node_id(), 0..3),
    )
        .prop_map(|(seq, notices, nodes, loads, gone)| LoadUpdate {
            seq,
            notices,
            nodes,
            loads,
            gone,
        })
}

/// One membership change, either kind.
pub(crate) fn member_change() -> impl Strategy<Value = MemberChange> {
    prop_oneof![
        node_info().prop_map(MemberChange::Up),
        (node_id(), down_reason()).prop_map(|(node, reason)| MemberChange::Down { node, reason }),
    ]
}

/// Every [`Msg`] variant, with each request and response variant as likely
/// as each other message.
pub(crate) fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        REQUEST_ARMS => (any::<u64>(), request()).prop_map(|(id, body)| Msg::Request { id, body }),
        RESPONSE_ARMS => (any::<u64>(), response()).prop_map(|(id, body)| Msg::Response { id, body }),
        1 => node_info().prop_map(Msg::NodeUp),
        1 => (node_id(), down_reason()).prop_map(|(node, reason)| Msg::NodeDown { node, reason }),
        1 => load_report().prop_map(Msg::LoadReport),
        1 => any::<u64>().prop_map(|seq| Msg::ReportAck { seq }),
        1 => app_event().prop_map(Msg::AppEvent),
        1 => (name(), pid()).prop_map(|(name, pid)| Msg::NameReleased { name, pid }),
        1 => send_msg().prop_map(Msg::Send),
        1 => (pid(), pid()).prop_map(|(from, to)| Msg::Link { from, to }),
        1 => (pid(), pid()).prop_map(|(from, to)| Msg::Unlink { from, to }),
        1 => (pid(), pid(), mref(), any::<bool>()).prop_map(|(watcher, target, mref, with_result)| {
            Msg::Monitor { watcher, target, mref, with_result }
        }),
        1 => (pid(), pid(), mref())
            .prop_map(|(watcher, target, mref)| Msg::Demonitor { watcher, target, mref }),
        1 => (pid(), pid(), exit_reason(), any::<bool>()).prop_map(|(from, to, reason, explicit)| {
            Msg::Exit { from, to, reason, explicit }
        }),
        1 => (pid(), mref(), pid(), exit_reason(), option::of(payload())).prop_map(
            |(watcher, mref, pid, reason, result)| Msg::Down { watcher, mref, pid, reason, result }
        ),
        1 => (any::<u64>(), vec(node_info(), 0..5))
            .prop_map(|(next, members)| Msg::Members(MemberList { next, members })),
        1 => (any::<u64>(), vec(member_change(), 0..5))
            .prop_map(|(first, changes)| Msg::MembersDelta(MembersDelta { first, changes })),
        1 => load_update().prop_map(Msg::LoadUpdate),
        1 => (any::<u64>(), vec((node_id(), any::<u32>()), 0..5))
            .prop_map(|(seq, placed)| Msg::PlacedNotice(PlacedNotice { seq, placed })),
    ]
}

// ---------------------------------------------------------------------------
// The handshake phase.

/// A node's identity.
pub(crate) fn identity() -> impl Strategy<Value = Identity> {
    (node_id(), name(), node_kind()).prop_map(|(node, name, kind)| Identity { node, name, kind })
}

/// A nonce or proof: usually the right length, sometimes not.
fn nonce_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), NONCE_LEN),
        1 => vec(any::<u8>(), 0..80),
    ]
}

/// Every refusal reason.
pub(crate) fn refuse_reason() -> impl Strategy<Value = RefuseReason> {
    prop_oneof![
        any::<u32>().prop_map(|version| RefuseReason::VersionMismatch { version }),
        Just(RefuseReason::BadCookie),
        text().prop_map(RefuseReason::Other),
    ]
}

/// Every handshake message, any version number included.
pub(crate) fn handshake_msg() -> impl Strategy<Value = HandshakeMsg> {
    let version = prop_oneof![3 => Just(PROTOCOL_VERSION), 1 => any::<u32>()];
    prop_oneof![
        (version.clone(), identity(), nonce_bytes())
            .prop_map(|(version, id, nonce)| HandshakeMsg::Hello { version, id, nonce }),
        (version, identity(), nonce_bytes(), nonce_bytes()).prop_map(
            |(version, id, nonce, proof)| HandshakeMsg::Challenge {
                version,
                id,
                nonce,
                proof
            }
        ),
        nonce_bytes().prop_map(|proof| HandshakeMsg::Proof { proof }),
        Just(HandshakeMsg::Accepted),
        refuse_reason().prop_map(HandshakeMsg::Refused),
    ]
}

// ---------------------------------------------------------------------------
// Fixed samples, for exhaustive (non-random) loops.

/// A fixed node id, so that sample frames are the same in every run.
pub(crate) const SAMPLE_NODE: NodeId = NodeId::from_u64(0x3f2a_9c1e_04d1_b2aa);

/// A plain message between processes with a payload of `len` bytes: the
/// hot-path frame.
pub(crate) fn sample_send(len: usize) -> Msg {
    Msg::Send(SendMsg {
        to: Dest::Pid(Pid::new(SAMPLE_NODE, 17)),
        from: Some(Pid::new(NodeId::from_u64(0x0102_0304_0506_0708), 99)),
        kind: MsgKind::Plain,
        payload: Payload((0..len).map(|i| (i * 7) as u8).collect()),
        trace: None,
    })
}

/// A tree submission with a nested supervisor, arguments and every option.
pub(crate) fn sample_tree_start() -> Msg {
    let mut sinks = SupervisorSpec::new("", SupStrategy::RestForOne);
    sinks.children.push(ChildSpecData::worker(
        "disk",
        "builtin.echo",
        serde_json::json!({"path": "/var/log/x", "rotate": [1, 2.5, null, true]}),
    ));
    let mut root = SupervisorSpec::new("ingest", SupStrategy::OneForOne);
    root.intensity = 3;
    root.period = Dur::from_secs(10);
    let mut parser = ChildSpecData::worker("parser", "builtin.echo", serde_json::json!({}));
    parser.shutdown = Some(Shutdown::Timeout(Duration::from_secs(5)));
    parser.placement = Some(Placement::Label("zone=a".into()));
    root.children.push(parser);
    root.children
        .push(ChildSpecData::supervisor("sinks", sinks));
    Msg::Request {
        id: 7,
        body: Request::TreeStart {
            spec: TreeSpec { supervisor: root },
            source: Some("ingest.toml".into()),
            text: Some("[supervisor]\nid = \"ingest\"\n".into()),
        },
    }
}

/// A monitor notification carrying a result value.
pub(crate) fn sample_down() -> Msg {
    Msg::Down {
        watcher: Pid::new(SAMPLE_NODE, 1),
        mref: Ref::new(SAMPLE_NODE, 2),
        pid: Pid::new(NodeId::from_u64(5), 3),
        reason: ExitReason::Panic("index out of bounds".into()),
        result: Some(Payload(vec![0xc3])),
    }
}

/// One of each family: a push, a request with nesting, a signal with a
/// result, a load report.
pub(crate) fn sample_messages() -> Vec<Msg> {
    vec![
        sample_send(32),
        sample_tree_start(),
        sample_down(),
        Msg::LoadReport(LoadReport {
            seq: 9,
            cpu_percent: 12.5,
            load_avg: [0.5, 0.25, 0.125],
            capacity: 4,
            ..LoadReport::default()
        }),
        Msg::Response {
            id: 7,
            body: Response::Pong,
        },
    ]
}

/// `msg` as one frame (header and body).
pub(crate) fn frame_of(msg: &Msg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Codec::<Msg>::new()
        .encode_into(msg, &mut buf)
        .expect("sample messages encode");
    buf.to_vec()
}

/// A frame with this body: the 4-byte big-endian length, then the body.
pub(crate) fn frame_with_body(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("test bodies are under 4 GiB");
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}
