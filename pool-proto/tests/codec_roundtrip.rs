//! Every wire message round-trips: property tests over strategies that
//! generate every variant of `Msg` (each `Request` and `Response` included)
//! and of `HandshakeMsg`, plus the JSON forms of ids and exit reasons.

mod support;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use bytes::BytesMut;
use pool_proto::handshake::{HandshakeMsg, RefuseReason};
use pool_proto::{
    AppEventKind, Codec, ExitReason, Msg, NodeId, Pid, Placement, Ref, Request, Response, Shutdown,
    TreeView, format_duration, parse_duration,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tokio_util::codec::{Decoder, Encoder};

use support::{
    app_event, canonical_exit_reason, exit_reason, handshake_msg, msg, placement, shutdown,
    tree_view,
};

// ---------------------------------------------------------------------------
// Coverage tables.
//
// Each table is an exhaustive `match` and the list of its labels, written
// once: a new variant fails to compile until it gets an arm here, and then
// fails `strategies_generate_every_variant` until the strategy produces it.

/// Defines `fn $name(&$ty) -> &'static str` (an exhaustive match) and
/// `const $list`, the labels of its arms.
macro_rules! variant_table {
    (fn $name:ident($ty:ty) -> $list:ident { $($pat:pat => $label:literal,)+ }) => {
        fn $name(value: &$ty) -> &'static str {
            match value {
                $($pat => $label,)+
            }
        }

        const $list: &[&str] = &[$($label),+];
    };
}

variant_table! {
    fn msg_variant(Msg) -> MSG_VARIANTS {
        Msg::Request { body: Request::Join(_), .. } => "Request::Join",
        Msg::Request { body: Request::Ready, .. } => "Request::Ready",
        Msg::Request { body: Request::Place(_), .. } => "Request::Place",
        Msg::Request { body: Request::RegisterName { .. }, .. } => "Request::RegisterName",
        Msg::Request { body: Request::UnregisterName { .. }, .. } => "Request::UnregisterName",
        Msg::Request { body: Request::WhereIs { .. }, .. } => "Request::WhereIs",
        Msg::Request { body: Request::ListNames, .. } => "Request::ListNames",
        Msg::Request { body: Request::ListNodes, .. } => "Request::ListNodes",
        Msg::Request { body: Request::ListProcesses { .. }, .. } => "Request::ListProcesses",
        Msg::Request { body: Request::LocalProcesses, .. } => "Request::LocalProcesses",
        Msg::Request { body: Request::TreeStart { .. }, .. } => "Request::TreeStart",
        Msg::Request { body: Request::TreeList, .. } => "Request::TreeList",
        Msg::Request { body: Request::TreeShow { .. }, .. } => "Request::TreeShow",
        Msg::Request { body: Request::TreeStop { .. }, .. } => "Request::TreeStop",
        Msg::Request { body: Request::StartApp { .. }, .. } => "Request::StartApp",
        Msg::Request { body: Request::StopApp { .. }, .. } => "Request::StopApp",
        Msg::Request { body: Request::Inspect { .. }, .. } => "Request::Inspect",
        Msg::Request { body: Request::Spawn(_), .. } => "Request::Spawn",
        Msg::Request { body: Request::Ping, .. } => "Request::Ping",
        Msg::Request { body: Request::Leave, .. } => "Request::Leave",
        Msg::Request { body: Request::TreeRestart { .. }, .. } => "Request::TreeRestart",
        Msg::Request { body: Request::TreeRemove { .. }, .. } => "Request::TreeRemove",
        Msg::Request { body: Request::MasterSeen, .. } => "Request::MasterSeen",
        Msg::Request { body: Request::WatchName { .. }, .. } => "Request::WatchName",
        Msg::Request { body: Request::PushModule { .. }, .. } => "Request::PushModule",
        Msg::Request { body: Request::ListModules, .. } => "Request::ListModules",
        Msg::Request { body: Request::FetchModule { .. }, .. } => "Request::FetchModule",
        Msg::Request { body: Request::ResolveFunction { .. }, .. } => "Request::ResolveFunction",
        Msg::Request { body: Request::SyncMembers, .. } => "Request::SyncMembers",
        Msg::Request { body: Request::WatchLoads, .. } => "Request::WatchLoads",
        Msg::Response { body: Response::Ok, .. } => "Response::Ok",
        Msg::Response { body: Response::Error(_), .. } => "Response::Error",
        Msg::Response { body: Response::Welcome(_), .. } => "Response::Welcome",
        Msg::Response { body: Response::Placed(_), .. } => "Response::Placed",
        Msg::Response { body: Response::Registered(_), .. } => "Response::Registered",
        Msg::Response { body: Response::WhereIs(_), .. } => "Response::WhereIs",
        Msg::Response { body: Response::Names(_), .. } => "Response::Names",
        Msg::Response { body: Response::Nodes(_), .. } => "Response::Nodes",
        Msg::Response { body: Response::Processes(_), .. } => "Response::Processes",
        Msg::Response { body: Response::Apps(_), .. } => "Response::Apps",
        Msg::Response { body: Response::Tree(_), .. } => "Response::Tree",
        Msg::Response { body: Response::Spawned(_), .. } => "Response::Spawned",
        Msg::Response { body: Response::Pong, .. } => "Response::Pong",
        Msg::Response { body: Response::MasterSeen { .. }, .. } => "Response::MasterSeen",
        Msg::Response { body: Response::Modules(_), .. } => "Response::Modules",
        Msg::Response { body: Response::ModuleBytes { .. }, .. } => "Response::ModuleBytes",
        Msg::Response { body: Response::Function(_), .. } => "Response::Function",
        Msg::Response { body: Response::Loads(_), .. } => "Response::Loads",
        Msg::NodeUp(_) => "NodeUp",
        Msg::NodeDown { .. } => "NodeDown",
        Msg::LoadReport(_) => "LoadReport",
        Msg::ReportAck { .. } => "ReportAck",
        Msg::AppEvent(_) => "AppEvent",
        Msg::NameReleased { .. } => "NameReleased",
        Msg::Send(_) => "Send",
        Msg::Link { .. } => "Link",
        Msg::Unlink { .. } => "Unlink",
        Msg::Monitor { .. } => "Monitor",
        Msg::Demonitor { .. } => "Demonitor",
        Msg::Exit { .. } => "Exit",
        Msg::Down { .. } => "Down",
        Msg::Members(_) => "Members",
        Msg::MembersDelta(_) => "MembersDelta",
        Msg::LoadUpdate(_) => "LoadUpdate",
        Msg::PlacedNotice(_) => "PlacedNotice",
    }
}

variant_table! {
    fn handshake_variant(HandshakeMsg) -> HANDSHAKE_VARIANTS {
        HandshakeMsg::Hello { .. } => "Hello",
        HandshakeMsg::Challenge { .. } => "Challenge",
        HandshakeMsg::Proof { .. } => "Proof",
        HandshakeMsg::Accepted => "Accepted",
        HandshakeMsg::Refused(RefuseReason::VersionMismatch { .. }) => "Refused::VersionMismatch",
        HandshakeMsg::Refused(RefuseReason::BadCookie) => "Refused::BadCookie",
        HandshakeMsg::Refused(RefuseReason::Other(_)) => "Refused::Other",
    }
}

variant_table! {
    fn exit_variant(ExitReason) -> EXIT_VARIANTS {
        ExitReason::Normal => "Normal",
        ExitReason::Shutdown => "Shutdown",
        ExitReason::ShutdownWith(_) => "ShutdownWith",
        ExitReason::Killed => "Killed",
        ExitReason::Kill => "Kill",
        ExitReason::NoProc => "NoProc",
        ExitReason::NoConnection => "NoConnection",
        ExitReason::Panic(_) => "Panic",
        ExitReason::Error(_) => "Error",
    }
}

variant_table! {
    fn app_event_variant(AppEventKind) -> APP_EVENT_VARIANTS {
        AppEventKind::RootExited(_) => "RootExited",
        AppEventKind::ChildRestarted { .. } => "ChildRestarted",
    }
}

variant_table! {
    fn placement_variant(Placement) -> PLACEMENT_VARIANTS {
        Placement::Local => "Local",
        Placement::LeastLoaded => "LeastLoaded",
        Placement::Node(_) => "Node",
        Placement::Key(_) => "Key",
        Placement::Label(_) => "Label",
    }
}

variant_table! {
    fn shutdown_variant(Shutdown) -> SHUTDOWN_VARIANTS {
        Shutdown::BrutalKill => "BrutalKill",
        Shutdown::Timeout(_) => "Timeout",
        Shutdown::Infinity => "Infinity",
    }
}

/// Fails unless `samples` values drawn from `strategy` (with a fixed seed,
/// so the outcome is the same in every run) cover every label of `all`.
fn assert_covers<T: Debug>(
    what: &str,
    strategy: impl Strategy<Value = T>,
    samples: usize,
    label: fn(&T) -> &'static str,
    all: &[&'static str],
) {
    let mut runner = TestRunner::deterministic();
    let seen: BTreeSet<&str> = (0..samples)
        .map(|_| {
            let tree = strategy
                .new_tree(&mut runner)
                .unwrap_or_else(|e| panic!("the {what} strategy gave up: {e}"));
            label(&tree.current())
        })
        .collect();
    let missing: Vec<&str> = all.iter().copied().filter(|l| !seen.contains(l)).collect();
    assert!(
        missing.is_empty(),
        "the {what} strategy never generated {missing:?} in {samples} samples"
    );
}

/// The strategies generate every variant of every wire enum (so the round
/// trips below cover the whole protocol, not a convenient subset).
#[test]
fn strategies_generate_every_variant() {
    assert_covers("Msg", msg(), 1500, msg_variant, MSG_VARIANTS);
    assert_covers(
        "HandshakeMsg",
        handshake_msg(),
        300,
        handshake_variant,
        HANDSHAKE_VARIANTS,
    );
    assert_covers(
        "ExitReason",
        exit_reason(),
        300,
        exit_variant,
        EXIT_VARIANTS,
    );
    assert_covers(
        "canonical ExitReason",
        canonical_exit_reason(),
        300,
        exit_variant,
        EXIT_VARIANTS,
    );
    assert_covers(
        "AppEvent",
        app_event().prop_map(|e| e.kind),
        100,
        app_event_variant,
        APP_EVENT_VARIANTS,
    );
    assert_covers(
        "Placement",
        placement(),
        200,
        placement_variant,
        PLACEMENT_VARIANTS,
    );
    assert_covers(
        "Shutdown",
        shutdown(),
        100,
        shutdown_variant,
        SHUTDOWN_VARIANTS,
    );
}

/// The nested strategies really nest: trees with supervisors inside
/// supervisors and tree views with grandchildren are generated.
#[test]
fn tree_strategies_generate_nested_supervisors() {
    fn spec_depth(spec: &pool_proto::SupervisorSpec) -> usize {
        1 + spec
            .children
            .iter()
            .filter_map(|c| c.supervisor.as_ref())
            .map(spec_depth)
            .max()
            .unwrap_or(0)
    }
    fn view_depth(view: &TreeView) -> usize {
        1 + view
            .children
            .iter()
            .flatten()
            .map(view_depth)
            .max()
            .unwrap_or(0)
    }
    let mut runner = TestRunner::deterministic();
    let specs = support::supervisor_spec();
    let views = tree_view();
    let mut deepest = (0, 0);
    for _ in 0..200 {
        let spec = specs
            .new_tree(&mut runner)
            .expect("spec strategy")
            .current();
        let view = views
            .new_tree(&mut runner)
            .expect("view strategy")
            .current();
        deepest = (
            deepest.0.max(spec_depth(&spec)),
            deepest.1.max(view_depth(&view)),
        );
    }
    assert!(
        deepest.0 >= 3,
        "deepest generated supervisor nesting: {}",
        deepest.0
    );
    assert!(
        deepest.1 >= 3,
        "deepest generated tree view nesting: {}",
        deepest.1
    );
}

// ---------------------------------------------------------------------------
// Round trips through the codec.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every message survives encode → decode unchanged; the frame's header
    /// holds the body length and decoding consumes exactly one frame.
    #[test]
    fn every_msg_round_trips_through_the_codec(msg in msg()) {
        let mut codec = Codec::<Msg>::new();
        let mut buf = BytesMut::new();
        codec.encode_into(&msg, &mut buf)?;
        let announced = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        prop_assert_eq!(announced, buf.len() - 4);
        prop_assert_eq!(codec.decode(&mut buf)?, Some(msg));
        prop_assert!(buf.is_empty(), "{} bytes left after one frame", buf.len());
    }

    /// The `Encoder` impls (by value and by reference) write the same bytes
    /// as `encode_into`, after whatever the buffer already holds.
    #[test]
    fn encoder_impls_agree_with_encode_into(msg in msg()) {
        let mut codec = Codec::<Msg>::new();
        let mut by_ref = BytesMut::from(&b"prefix"[..]);
        let mut by_value = BytesMut::from(&b"prefix"[..]);
        let mut direct = BytesMut::from(&b"prefix"[..]);
        Encoder::<&Msg>::encode(&mut codec, &msg, &mut by_ref)?;
        Encoder::<Msg>::encode(&mut codec, msg.clone(), &mut by_value)?;
        codec.encode_into(&msg, &mut direct)?;
        prop_assert_eq!(&by_ref, &direct);
        prop_assert_eq!(&by_value, &direct);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A stream of frames cut into chunks at arbitrary points (as reads from
    /// a socket cut it) decodes to the same messages in the same order, and
    /// ends cleanly at EOF.
    #[test]
    fn a_stream_cut_anywhere_decodes_to_the_same_messages(
        msgs in vec(msg(), 1..5),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut codec = Codec::<Msg>::new();
        let mut wire = BytesMut::new();
        for m in &msgs {
            codec.encode_into(m, &mut wire)?;
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for to in cuts {
            buf.extend_from_slice(&wire[from..to]);
            from = to;
            while let Some(m) = codec.decode(&mut buf)? {
                decoded.push(m);
            }
        }
        prop_assert_eq!(codec.decode_eof(&mut buf)?, None);
        prop_assert_eq!(decoded, msgs);
    }

    /// Every handshake message round-trips through `Codec<HandshakeMsg>`.
    #[test]
    fn every_handshake_msg_round_trips_through_the_codec(msg in handshake_msg()) {
        let mut codec = Codec::<HandshakeMsg>::new();
        let mut buf = BytesMut::new();
        codec.encode_into(&msg, &mut buf)?;
        prop_assert_eq!(codec.decode(&mut buf)?, Some(msg));
        prop_assert!(buf.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Human-readable forms.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Node ids, pids and references are their text form in JSON
    /// (`"3f2a9c1e04d1b2aa"`, `"<3f2a9c1e04d1b2aa.17>"`,
    /// `"#Ref<3f2a9c1e04d1b2aa.9>"`) and read back to the same value, from
    /// JSON and from the text itself.
    #[test]
    fn ids_round_trip_through_json_and_text(node in any::<u64>(), serial in any::<u64>()) {
        let node = NodeId::from_u64(node);
        let json = serde_json::to_string(&node)?;
        prop_assert_eq!(&json, &format!("\"{node:016x}\"", node = node.as_u64()));
        prop_assert_eq!(serde_json::from_str::<NodeId>(&json)?, node);
        prop_assert_eq!(node.to_string().parse::<NodeId>()?, node);

        let pid = Pid::new(node, serial);
        let json = serde_json::to_string(&pid)?;
        prop_assert_eq!(&json, &format!("\"<{node}.{serial}>\""));
        prop_assert_eq!(serde_json::from_str::<Pid>(&json)?, pid);
        prop_assert_eq!(pid.to_string().parse::<Pid>()?, pid);

        let r = Ref::new(node, serial);
        let json = serde_json::to_string(&r)?;
        prop_assert_eq!(&json, &format!("\"#Ref<{node}.{serial}>\""));
        prop_assert_eq!(serde_json::from_str::<Ref>(&json)?, r);
        prop_assert_eq!(r.to_string().parse::<Ref>()?, r);
    }

    /// An exit reason is its `Display` text in JSON (`"normal"`,
    /// `"panic: boom"`, ...) and reads back to the same reason, for every
    /// kind.
    #[test]
    fn exit_reasons_round_trip_through_json(reason in canonical_exit_reason()) {
        let json = serde_json::to_string(&reason)?;
        prop_assert_eq!(&json, &serde_json::to_string(&reason.to_string())?);
        prop_assert_eq!(serde_json::from_str::<ExitReason>(&json)?, reason.clone());
        let parsed: ExitReason = reason.to_string().parse().unwrap_or_else(|e| match e {});
        prop_assert_eq!(parsed, reason);
    }

    /// A `tree show` view, the JSON shape poolctl prints, round-trips through
    /// JSON with its pids as text.
    #[test]
    fn tree_views_round_trip_through_json(view in tree_view()) {
        let json = serde_json::to_string(&view)?;
        prop_assert_eq!(serde_json::from_str::<TreeView>(&json)?, view);
    }

    /// Durations as tree files hold them (whole milliseconds) survive their
    /// text form (`format_duration` then `parse_duration`) exactly, so a
    /// `period` or `shutdown` read back from the wire is the one sent.
    #[test]
    fn millisecond_durations_survive_their_text_form(ms in 0u64..10 * 365 * 86_400_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d))?, d);
    }

    /// Any duration at all, up to `Duration::MAX`, survives its text form
    /// exactly.
    #[test]
    fn any_duration_survives_its_text_form(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        prop_assert_eq!(parse_duration(&format_duration(d))?, d);
    }
}
