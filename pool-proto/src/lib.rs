//! Spawnpool's wire crate: the identities, the one message enum, the frame
//! codec, the connection handshake and the supervision-tree specs that nodes
//! exchange, with the pure functions over them (tree files, spec
//! validation). It holds no runtime and no I/O policy; the daemons depend on
//! it and it depends on nothing of ours.
//!
//! # Layout
//!
//! - [`id`]: [`NodeId`], [`Pid`], [`Ref`] and their text forms.
//! - [`exit`]: [`ExitReason`], why a process ended.
//! - [`message`]: [`Msg`], every frame's body, with its requests and responses.
//! - [`members`]: membership frames assembled from entries encoded once, so
//!   that a master sends one list to many nodes without encoding it again.
//! - [`module`]: WebAssembly modules: [`module::ModuleHash`] and wasm
//!   function names ([`module::WasmName`]).
//! - [`sandbox`]: [`Sandbox`], a wasm spawn's limits and grants.
//! - [`tree`]: [`TreeSpec`] (tree files as data), their validation, tree
//!   files parsed from TOML ([`tree::parse_tree_str`]), and the tree views.
//! - [`codec`]: [`Codec`], length-prefixed MessagePack with a frame limit.
//! - [`handshake`]: version exchange and cookie challenge-response.
//! - [`cookie`]: where the cookie comes from.
//! - [`duration`]: `500ms` / `3s` / `1m` durations.
//! - [`size`]: `64KiB` / `16MiB` byte sizes.
//! - [`module`]: wasm module hashes and `MODULE:EXPORT` function names.
//! - [`sandbox`]: [`Sandbox`], the per-spawn limits and grants of a wasm process.
//! - `tls` (feature `tls`): TLS under the handshake, and `tls::Stream`,
//!   plain or TLS behind one type.
//! - `transport` (feature `net`): the transport seam, dialing and
//!   accepting over TCP or an in-memory network (tests).
//! - `listener` (feature `tls`): the bounded accept loop of the daemons.
//! - [`error`]: [`Error`], every failure of the above.
//!
//! # Example
//!
//! A frame encoded by one node and decoded by another:
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use pool_proto::{Codec, Dest, Msg, MsgKind, NodeId, Payload, Pid, SendMsg};
//!
//! let to = Pid::new(NodeId::random(), 17);
//! let msg = Msg::Send(SendMsg {
//!     to: Dest::Pid(to),
//!     from: None,
//!     kind: MsgKind::Plain,
//!     payload: Payload::encode("hello").unwrap(),
//!     trace: None,
//! });
//! let mut codec = Codec::<Msg>::new();
//! let mut wire = BytesMut::new();
//! codec.encode(msg.clone(), &mut wire).unwrap();
//! assert_eq!(codec.decode(&mut wire).unwrap(), Some(msg));
//! ```

pub mod codec;
pub mod cookie;
pub mod duration;
pub mod error;
pub mod exit;
pub mod handshake;
pub mod id;
#[cfg(feature = "tls")]
pub mod listener;
pub mod members;
pub mod message;
pub mod module;
pub mod sandbox;
pub mod size;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "net")]
pub mod transport;
pub mod tree;

pub use codec::{Codec, MAX_FRAME_LEN};
pub use duration::{Dur, format_duration, parse_duration};
pub use error::{Error, Result};
pub use exit::ExitReason;
pub use handshake::{Cookie, HandshakeConfig, Identity, PROTOCOL_VERSION};
pub use id::{NodeId, ParseIdError, Pid, Ref};
pub use message::{
    AppEvent, AppEventKind, Dest, DownReason, ErrorCode, Fence, Join, LabelReq, Labels, LoadReport,
    LoadRow, LoadTableCopy, LoadUpdate, MemberChange, MemberList, MembersDelta, ModuleInfo, Msg,
    MsgKind, NodeInfo, NodeKind, NodeRow, NodeStatus, Payload, PlaceQuery, Placed, PlacedNotice,
    PlacementStrategy, ProcStatus, ProcessInfo, ProcessOutcomes, RemoteError, ReqId, Request,
    Response, RunningApp, SendMsg, SpawnMonitor, SpawnRequest, TraceHex, TraceId, Unreachable,
    UnreachableFrom, Welcome,
};
pub use module::{ModuleHash, WasmName};
pub use sandbox::{DirGrant, Sandbox};
pub use size::{Size, format_size, parse_size};
pub use tree::{
    AppStatus, AppSummary, AutoShutdown, ChildSpecData, ChildStatus, Placement, Restart,
    SUPERVISOR_FUNCTION, Shutdown, SpecError, Strategy, SupervisorSpec, TreeFileError, TreeSpec,
    TreeView,
};
