//! The one wire enum, [`Msg`], and its payload structs.
//!
//! After the handshake every frame on a connection is one `Msg`. There are
//! three families:
//!
//! - **pushes** that expect no answer: the master's membership changes
//!   ([`Msg::NodeUp`], [`Msg::NodeDown`]), a worker's [`Msg::LoadReport`], and
//!   the node-to-node process signals ([`Msg::Send`], [`Msg::Link`],
//!   [`Msg::Exit`], [`Msg::Down`], ...);
//! - **requests** ([`Msg::Request`]) that carry a correlation id chosen by
//!   the sender, unique on that connection;
//! - **responses** ([`Msg::Response`]) that echo the id of their request.
//!
//! Which side sends what:
//!
//! | message | direction |
//! |---|---|
//! | `Request(Join)` → `Response(Welcome)` | node → master |
//! | `Request(Ready)` → `Response(Ok)` | node → master, after fencing |
//! | `Request(Leave)` → `Response(Ok)` | node → master, when stopping |
//! | `Members`, then `MembersDelta` (formerly `NodeUp`, `NodeDown`) | master → node |
//! | `Request(SyncMembers)` → `Response(Ok)` | node → master, after a gap in the deltas |
//! | `Request(WatchLoads)` → `Response(Loads)`, then `LoadUpdate` | node → master, the first time it places; again after a gap in the updates |
//! | `PlacedNotice` | node → master, after placing on its copy of the load table |
//! | `LoadReport`, `AppEvent`, `NameReleased` | node → master |
//! | `Request(Place / RegisterName / WhereIs / ListNames / ListNodes / ListProcesses / TreeStart / TreeList / TreeShow / TreeStop)` | node → master |
//! | `Request(PushModule / ListModules / FetchModule / ResolveFunction)` → `Response(Modules / ModuleBytes / Function)` | node → master |
//! | `Request(StartApp / StopApp / LocalProcesses / Inspect)` | master → node |
//! | `Request(Spawn / Inspect)` → `Response(Spawned / Tree)` | node → node |
//! | `Send`, `Link`, `Unlink`, `Monitor`, `Demonitor`, `Exit`, `Down` | node → node |
//!
//! Structs are encoded as maps (`rmp_serde::to_vec_named`), so a newer peer
//! may add fields that an older one ignores; optional fields carry
//! `#[serde(default)]`. The membership entries, [`NodeInfo`] and
//! [`MemberChange`], are positional instead (`members.rs`): a field added
//! to them needs a new protocol version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::exit::ExitReason;
use crate::id::{NodeId, Pid, Ref};
use crate::module::ModuleHash;
use crate::sandbox::Sandbox;
use crate::tree::{AppStatus, AppSummary, TreeSpec, TreeView};

/// Correlation id of a request, unique per connection and sender.
pub type ReqId = u64;

/// A trace id carried by spawns and messages across nodes, so one request's
/// path can be followed in every node's logs.
pub type TraceId = u64;

/// A [`TraceId`] as every log line and `poolctl --trace` write it: 16 hex
/// digits, so that `grep trace=<hex>` finds one request in every node's log
/// (log it as `trace = %TraceHex(id)`).
///
/// ```
/// assert_eq!(pool_proto::TraceHex(0xab).to_string(), "00000000000000ab");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceHex(pub TraceId);

impl fmt::Display for TraceHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One frame's body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    // ----- requests and responses ------------------------------------------
    /// A request; the receiver answers with a `Response` carrying `id`.
    Request {
        /// Correlation id chosen by the sender.
        id: ReqId,
        /// What is asked.
        body: Request,
    },
    /// The answer to the request with the same `id`.
    Response {
        /// The id of the request answered.
        id: ReqId,
        /// The answer.
        body: Response,
    },

    // ----- master -> node pushes -------------------------------------------
    /// A node joined the pool (or finished fencing and is live).
    NodeUp(NodeInfo),
    /// A node left the pool or was declared down; every node fires
    /// `noconnection` on links and monitors towards it.
    NodeDown {
        /// The node that is gone.
        node: NodeId,
        /// Why the master declared it down.
        reason: DownReason,
    },
    /// The master accepted the load report `seq` of this incarnation. A
    /// worker's lease on its master session runs from the time it sent the
    /// last acknowledged report (docs/semantics.md, "Partitions").
    ReportAck {
        /// The `seq` of the report accepted.
        seq: u64,
    },
    // ----- node -> master pushes -------------------------------------------
    /// Periodic load report; also the worker's heartbeat.
    LoadReport(LoadReport),
    /// Something happened to an application root this node runs.
    AppEvent(AppEvent),
    /// A globally registered process died; its name is released.
    NameReleased {
        /// The name.
        name: String,
        /// The process that held it (a newer holder is left alone).
        pid: Pid,
    },

    // ----- node <-> node process signals -----------------------------------
    /// A message to a process.
    Send(SendMsg),
    /// Create a link between `from` (on the sender) and `to` (on the receiver).
    Link {
        /// The process asking for the link.
        from: Pid,
        /// The process to link to.
        to: Pid,
    },
    /// Remove the link between `from` and `to`.
    Unlink {
        /// The process removing the link.
        from: Pid,
        /// The other end.
        to: Pid,
    },
    /// `watcher` monitors `target`; the receiver answers with a `Down` once
    /// `target` exits (at once, `noproc`, if it does not exist).
    Monitor {
        /// The watching process (on the sender).
        watcher: Pid,
        /// The watched process (on the receiver).
        target: Pid,
        /// The monitor's reference.
        mref: Ref,
        /// Whether the `Down` should carry the process's result value.
        #[serde(default)]
        with_result: bool,
    },
    /// Remove a monitor.
    Demonitor {
        /// The watching process.
        watcher: Pid,
        /// The watched process.
        target: Pid,
        /// The monitor's reference.
        mref: Ref,
    },
    /// An exit signal from `from` to `to`.
    Exit {
        /// The sender of the signal.
        from: Pid,
        /// The receiver.
        to: Pid,
        /// The reason carried.
        reason: ExitReason,
        /// True for `exit(to, reason)` sent explicitly; false for a signal
        /// caused by the exit of a linked process. An explicit `kill` is
        /// untrappable; a linked process's `kill` reason is trappable.
        #[serde(default)]
        explicit: bool,
    },
    /// A monitored process exited.
    Down {
        /// The watching process.
        watcher: Pid,
        /// The monitor's reference.
        mref: Ref,
        /// The process that exited.
        pid: Pid,
        /// Its exit reason.
        reason: ExitReason,
        /// Its result value, when the monitor asked for it and it ended
        /// normally with one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Payload>,
    },

    // ----- master -> node membership, as a list and as deltas ---------------
    /// Every live node: sent right after a `Welcome`, and again when the node
    /// asks (`Request::SyncMembers`) because it saw a gap in the deltas.
    /// The node replaces what it knew from this master with it.
    Members(MemberList),
    /// Membership changes since the last list or delta, in the order the
    /// master decided them (docs/protocol.md, "Membership").
    MembersDelta(MembersDelta),

    // ----- load table copies (docs/protocol.md, "Placement on a node") ----
    /// Master → a node that watches the loads (`Request::WatchLoads`): the
    /// rows that changed since the last update, numbered.
    LoadUpdate(LoadUpdate),
    /// Node → master: placements this node made on its copy of the load
    /// table, for the master's accounting (and, through it, the other
    /// copies). No answer.
    PlacedNotice(PlacedNotice),
}

/// One node's load as placement reads it: a row of the master's load table
/// (`pool-place`'s `LoadTable`) as a copy needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadRow {
    /// The node.
    pub node: NodeId,
    /// `max(run_queue, busy_threads)` at its last report (0 before one).
    pub base_load: f64,
    /// Processes at its last report.
    pub processes: u64,
    /// Placements counted on it since that report (the master's own, and
    /// those every copy told it of).
    pub pending: u32,
    /// Its capacity (the last report's, else the one it joined with).
    pub capacity: u32,
    /// Machine memory in use at its last report, bytes (0: not reported).
    pub mem_used: u64,
    /// Machine memory in total, bytes (0: not reported).
    pub mem_total: u64,
}

/// A node as a copy of the load table needs it: what the membership says,
/// what it can spawn, and its load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The node as the membership describes it.
    pub info: NodeInfo,
    /// The functions it registers (`Join.functions`).
    #[serde(default)]
    pub functions: Vec<String>,
    /// It runs WebAssembly functions (`Join.wasm`).
    #[serde(default)]
    pub wasm: bool,
    /// Its load.
    pub load: LoadRow,
}

/// The answer to `Request::WatchLoads`: the whole load table, and how the
/// master places, so that the node can place as the master would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadTableCopy {
    /// The number of the first [`LoadUpdate`] this copy does not include:
    /// the next one on this connection has it.
    pub next: u64,
    /// How many of the receiving node's [`PlacedNotice`]s the rows count
    /// (as [`LoadUpdate::notices`]).
    #[serde(default)]
    pub notices: u64,
    /// The master's default strategy (`--placement`).
    pub strategy: PlacementStrategy,
    /// Memory use (0.0–1.0) above which a node refuses placements; `None`
    /// never refuses.
    pub mem_refuse_above: Option<f64>,
    /// Every node of the table, in id order.
    pub nodes: Vec<NodeRow>,
}

/// Rows of the load table that changed ([`Msg::LoadUpdate`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadUpdate {
    /// Its number: one more than the previous update's (the first after a
    /// [`LoadTableCopy`] has its `next`); anything else is a gap.
    pub seq: u64,
    /// How many of the receiving node's [`PlacedNotice`]s the master had
    /// applied when it made this update: the rows already count those.
    pub notices: u64,
    /// Nodes that joined or changed what they are (name, labels,
    /// functions).
    #[serde(default)]
    pub nodes: Vec<NodeRow>,
    /// Nodes whose load changed (a report, placements).
    #[serde(default)]
    pub loads: Vec<LoadRow>,
    /// Nodes that left or were declared down.
    #[serde(default)]
    pub gone: Vec<NodeId>,
}

/// Placements a node made on its copy of the load table ([`Msg::PlacedNotice`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacedNotice {
    /// Its number on this connection, from 1: echoed as
    /// [`LoadUpdate::notices`] once applied.
    pub seq: u64,
    /// How many placements on each node.
    pub placed: Vec<(NodeId, u32)>,
}

/// The master's membership as a whole ([`Msg::Members`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberList {
    /// The number of the first change the list does not include: the
    /// next [`MembersDelta`] on this connection starts there.
    pub next: u64,
    /// Every live node (hidden ones too, with an empty `addr`). Last field:
    /// the master appends the entries to an encoded head
    /// (`pool_proto::members`).
    pub members: Vec<NodeInfo>,
}

/// Consecutive membership changes ([`Msg::MembersDelta`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MembersDelta {
    /// The number of the first change; the others follow one by one. The
    /// first delta after a [`MemberList`] starts at its `next`, every other
    /// one where the previous one ended: anything else is a gap.
    pub first: u64,
    /// The changes, oldest first. Last field (see [`MemberList::members`]).
    pub changes: Vec<MemberChange>,
}

/// One membership change.
///
/// Serialized by hand (`members.rs`): in MessagePack its `Down` is
/// positional (`{"Down": [node, reason]}`), named in human-readable
/// formats; it decodes from either.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub enum MemberChange {
    /// A node is live (joined, finished fencing, or reconnected with new
    /// details): as [`Msg::NodeUp`].
    Up(NodeInfo),
    /// A live node is gone: as [`Msg::NodeDown`].
    Down {
        /// The node that is gone.
        node: NodeId,
        /// Why the master declared it down.
        reason: DownReason,
    },
}

/// The addressee of a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dest {
    /// A process.
    Pid(Pid),
    /// A locally registered name on the receiving node (`{Name, Node} ! M`).
    Name(String),
}

/// What a message is, for the receiving mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MsgKind {
    /// An ordinary message.
    Plain,
    /// A call: the receiver answers with `Reply` to `from` with this ref.
    Call(Ref),
    /// The reply to the call with this ref.
    Reply(Ref),
}

/// A message between processes on different nodes.
///
/// This is the hot frame of the protocol, so it has a compact wire form of
/// its own: an array `[to, from, kind, payload]` (plus `trace` when set)
/// instead of a map with field names; a pid is `[node, serial]`, a plain
/// message kind is `0`, a call `[1, node, serial]`, a reply
/// `[2, node, serial]`. Decoding accepts (and ignores) extra trailing
/// elements, so fields can still be added at the end.
#[derive(Clone, Debug, PartialEq)]
pub struct SendMsg {
    /// The addressee.
    pub to: Dest,
    /// The sending process, if the sender is a process.
    pub from: Option<Pid>,
    /// Plain message, call or reply.
    pub kind: MsgKind,
    /// The message value, MessagePack-encoded.
    pub payload: Payload,
    /// Trace id, when the sender is tracing.
    pub trace: Option<TraceId>,
}

impl Serialize for SendMsg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let len = if self.trace.is_some() { 5 } else { 4 };
        let mut t = s.serialize_tuple(len)?;
        t.serialize_element(&CompactDest(&self.to))?;
        t.serialize_element(&self.from)?;
        t.serialize_element(&CompactKind(self.kind))?;
        t.serialize_element(&self.payload)?;
        if let Some(trace) = self.trace {
            t.serialize_element(&trace)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for SendMsg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SendMsg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Send frame [to, from, kind, payload, trace?]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SendMsg, A::Error> {
                use serde::de::Error;
                let to = seq
                    .next_element::<CompactDestOwned>()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?
                    .0;
                let from = seq
                    .next_element::<Option<Pid>>()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let kind = seq
                    .next_element::<CompactKindOwned>()?
                    .ok_or_else(|| A::Error::invalid_length(2, &self))?
                    .0;
                let payload = seq
                    .next_element::<Payload>()?
                    .ok_or_else(|| A::Error::invalid_length(3, &self))?;
                let trace = seq.next_element::<Option<TraceId>>()?.flatten();
                // Fields a newer peer added after these.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(SendMsg {
                    to,
                    from,
                    kind,
                    payload,
                    trace,
                })
            }
        }
        d.deserialize_seq(V)
    }
}

/// [`Dest`] on the wire: a pid as `[node, serial]`, a name as a string.
struct CompactDest<'a>(&'a Dest);

impl Serialize for CompactDest<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Dest::Pid(p) => p.serialize(s),
            Dest::Name(n) => s.serialize_str(n),
        }
    }
}

struct CompactDestOwned(Dest);

impl<'de> Deserialize<'de> for CompactDestOwned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CompactDestOwned;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pid [node, serial] or a registered name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CompactDestOwned(Dest::Name(v.to_owned())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let node: u64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let serial: u64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(CompactDestOwned(Dest::Pid(Pid::new(
                    NodeId::from_u64(node),
                    serial,
                ))))
            }
        }
        d.deserialize_any(V)
    }
}

/// [`MsgKind`] on the wire: `0`, `[1, node, serial]` or `[2, node, serial]`.
struct CompactKind(MsgKind);

impl Serialize for CompactKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let (tag, r) = match self.0 {
            MsgKind::Plain => return s.serialize_u8(0),
            MsgKind::Call(r) => (1u8, r),
            MsgKind::Reply(r) => (2u8, r),
        };
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&tag)?;
        t.serialize_element(&r.node().as_u64())?;
        t.serialize_element(&r.serial())?;
        t.end()
    }
}

struct CompactKindOwned(MsgKind);

impl<'de> Deserialize<'de> for CompactKindOwned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CompactKindOwned;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message kind: 0, [1, node, serial] or [2, node, serial]")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match v {
                    0 => Ok(CompactKindOwned(MsgKind::Plain)),
                    other => Err(E::invalid_value(
                        serde::de::Unexpected::Unsigned(other),
                        &self,
                    )),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let tag: u8 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let node: u64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let serial: u64 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(2, &self))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(4, &self));
                }
                let r = Ref::new(NodeId::from_u64(node), serial);
                match tag {
                    1 => Ok(CompactKindOwned(MsgKind::Call(r))),
                    2 => Ok(CompactKindOwned(MsgKind::Reply(r))),
                    other => Err(A::Error::invalid_value(
                        serde::de::Unexpected::Unsigned(other.into()),
                        &"1 (call) or 2 (reply)",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A value encoded as MessagePack: message bodies, results and arguments.
///
/// ```
/// use pool_proto::Payload;
/// let p = Payload::encode(&("ping", 42u32)).unwrap();
/// let back: (String, u32) = p.decode().unwrap();
/// assert_eq!(back, ("ping".to_string(), 42));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Payload(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl Payload {
    /// Encodes a value (structs as maps, so fields can be added later).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, crate::Error> {
        rmp_serde::to_vec_named(value)
            .map(Payload)
            .map_err(|e| crate::Error::Encode {
                reason: e.to_string(),
            })
    }

    /// Decodes into `T`; the whole payload must be consumed.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        crate::codec::decode_exact(&self.0)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

/// What kind of node is on the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The master.
    Master,
    /// A worker: hosts processes and may be chosen for placement.
    Worker,
    /// A hidden node (poolctl): hosts only its own processes, never chosen.
    Hidden,
}

/// Labels of a node, e.g. `zone=a`.
pub type Labels = BTreeMap<String, String>;

/// A node as the membership describes it.
///
/// Serialized by hand (`members.rs`): positional in MessagePack (an
/// array of every field, in this order: the master sends each member to
/// every node, and field names were half its bytes), named in
/// human-readable formats. It decodes from an array or a map. A field
/// added here must go last, and needs a new protocol version: an older
/// peer refuses an array longer than it knows (docs/protocol.md,
/// "Versioning").
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct NodeInfo {
    /// Its incarnation.
    pub id: NodeId,
    /// Its name, unique among live nodes.
    pub name: String,
    /// Where peers connect to it (`host:port`); empty for a hidden node.
    pub addr: String,
    /// Worker or hidden.
    pub kind: NodeKind,
    /// Its capacity (default: its CPU count).
    pub capacity: u32,
    /// Its labels.
    #[serde(default)]
    pub labels: Labels,
}

/// Why the master declared a node down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// Its connection to the master closed.
    ConnectionClosed,
    /// No load report arrived within the node timeout.
    Timeout,
    /// It left gracefully.
    Left,
    /// It was replaced by a node claiming the same name after it was gone.
    Replaced,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DownReason::ConnectionClosed => "connection closed",
            DownReason::Timeout => "no report within the node timeout",
            DownReason::Left => "left",
            DownReason::Replaced => "replaced",
        })
    }
}

/// A node's first request to the master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Join {
    /// The node as it wants to be known.
    pub info: NodeInfo,
    /// Names of the functions it can spawn.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Global names its processes hold (re-registered after a reconnect).
    #[serde(default)]
    pub names: Vec<(String, Pid)>,
    /// Application roots it runs (re-registered after a reconnect).
    #[serde(default)]
    pub apps: Vec<RunningApp>,
    /// True when this is a reconnect of an incarnation that was live before.
    #[serde(default)]
    pub rejoin: bool,
    /// True when the node runs WebAssembly functions (it has the wasm
    /// backend): wasm functions are placed on such nodes only.
    #[serde(default)]
    pub wasm: bool,
}

/// An application root a node runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningApp {
    /// The application id.
    pub app: String,
    /// The generation it was started as.
    pub generation: u64,
    /// The root supervisor's pid.
    pub root: Pid,
}

/// The master's answer to a `Join`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Every live node, the joining one included. First field: the master
    /// puts the entries, encoded once, into an encoded head
    /// (`pool_proto::members`).
    pub members: Vec<NodeInfo>,
    /// How often the node should report.
    pub report_interval_ms: u64,
    /// After how long without a report the master declares a node down.
    pub node_timeout_ms: u64,
    /// Set when the master declared this incarnation down while it was cut
    /// off: before it counts as live again the node must break every link
    /// and monitor towards other nodes (firing `noconnection`), stop the
    /// listed application roots, and then send `Request::Ready`.
    #[serde(default)]
    pub fence: Option<Fence>,
    /// The number of the first membership change `members` does not
    /// include: the master's [`MembersDelta`]s on this connection start
    /// there. (0 from a master that pushes `NodeUp`/`NodeDown` instead.)
    #[serde(default)]
    pub members_next: u64,
}

/// What a node declared down must stop before it is live again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// Application roots that now run elsewhere (or are stopped).
    pub stop_apps: Vec<String>,
    /// Global names it held that now belong to other processes.
    pub lost_names: Vec<String>,
}

/// A worker's periodic load report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Sequence number, increasing per incarnation.
    pub seq: u64,
    /// The worker's wall clock when it sampled, in ms since the Unix epoch.
    pub sent_at_ms: u64,
    /// CPU use of the whole machine, percent of all cores (0-100).
    pub cpu_percent: f32,
    /// CPU use of this node's OS process, percent of one core.
    pub self_cpu_percent: f32,
    /// Machine load average over 1, 5 and 15 minutes.
    pub load_avg: [f32; 3],
    /// Machine memory in use, bytes.
    pub mem_used: u64,
    /// Machine memory in total, bytes.
    pub mem_total: u64,
    /// Resident memory of this node, bytes.
    #[serde(default)]
    pub self_rss: u64,
    /// Processes alive on the node.
    pub processes: u64,
    /// Runnable processes: those currently running or waiting for a thread.
    pub run_queue: u32,
    /// Time the node's process threads were busy since the last report,
    /// divided by the interval: the number of threads kept busy (0..threads).
    #[serde(default)]
    pub busy_threads: f32,
    /// The node's capacity.
    pub capacity: u32,
    /// Spawn requests this node has received so far; lets the master tell
    /// which of its placements the report already reflects.
    #[serde(default)]
    pub spawns_received: u64,
    /// Frames this node has sent to other nodes so far (messages and
    /// signals; not counting the master link).
    #[serde(default)]
    pub frames_out: u64,
    /// Bytes of those frames.
    #[serde(default)]
    pub bytes_out: u64,
    /// Frames this node has received from other nodes so far.
    #[serde(default)]
    pub frames_in: u64,
    /// Bytes of those frames.
    #[serde(default)]
    pub bytes_in: u64,
    /// Process exits and refused spawn requests on this node so far, by
    /// reason class (cumulative, for the master's counters). Absent from
    /// older nodes: all zero.
    #[serde(default)]
    pub outcomes: ProcessOutcomes,
    /// Peers this node tried to connect to and could not, with why (the
    /// last failure of each; a peer leaves the list once a connection to it
    /// opens, or when it leaves the pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<Unreachable>,
}

/// A peer a node could not connect to (in its [`LoadReport`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The peer it tried.
    pub node: NodeId,
    /// Why, in words, naming the address dialled: `cannot connect to
    /// 127.0.0.1:1: connection refused`, or the TLS error.
    pub cause: String,
    /// When the first failure of this run of failures happened, in ms since
    /// the Unix epoch (the reporting node's clock).
    pub since_ms: u64,
}

/// Who cannot reach a node (in its [`NodeStatus`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreachableFrom {
    /// The node that could not connect.
    pub from: String,
    /// Why, as that node reported it.
    pub cause: String,
    /// Since when, in ms since the Unix epoch (that node's clock).
    pub since_ms: u64,
}

/// Cumulative counts of how processes ended on a node and of the spawn
/// requests it refused, by a small fixed set of reason classes (so that
/// metrics built from them have bounded label values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessOutcomes {
    /// Exits with reason `normal`.
    pub exits_normal: u64,
    /// Exits with `shutdown` or `{shutdown, Term}`.
    pub exits_shutdown: u64,
    /// Exits with `killed` (the untrappable signal) or `kill`.
    pub exits_killed: u64,
    /// Exits by a panic or an error reason: crashes.
    pub exits_error: u64,
    /// Exits with `noconnection` (a linked node was lost).
    pub exits_noconnection: u64,
    /// Other exits (`noproc`).
    pub exits_other: u64,
    /// Spawn requests refused: no such function.
    pub spawn_unknown_function: u64,
    /// Spawn requests refused: the arguments did not fit.
    pub spawn_bad_args: u64,
    /// Spawn requests refused for another reason.
    pub spawn_other: u64,
}

impl ProcessOutcomes {
    /// The exit counts with their reason label (`normal`, `shutdown`,
    /// `killed`, `error`, `noconnection`, `other`).
    pub fn exits(&self) -> [(&'static str, u64); 6] {
        [
            ("normal", self.exits_normal),
            ("shutdown", self.exits_shutdown),
            ("killed", self.exits_killed),
            ("error", self.exits_error),
            ("noconnection", self.exits_noconnection),
            ("other", self.exits_other),
        ]
    }

    /// The refused spawn requests with their reason label
    /// (`unknown_function`, `bad_args`, `other`).
    pub fn spawn_failures(&self) -> [(&'static str, u64); 3] {
        [
            ("unknown_function", self.spawn_unknown_function),
            ("bad_args", self.spawn_bad_args),
            ("other", self.spawn_other),
        ]
    }
}

/// Something that happened to an application root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppEvent {
    /// The application id.
    pub app: String,
    /// The generation concerned.
    pub generation: u64,
    /// What happened.
    pub kind: AppEventKind,
}

/// Kinds of [`AppEvent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AppEventKind {
    /// The root exited with this reason (`shutdown` after giving up means
    /// the application failed).
    RootExited(ExitReason),
    /// A child of the tree was restarted (for metrics and the dashboard).
    ChildRestarted {
        /// The supervisor's id path, e.g. `ingest/sinks`.
        supervisor: String,
        /// The child id.
        child: String,
        /// The new pid, if the restart succeeded.
        pid: Option<Pid>,
        /// Why the old one exited.
        reason: ExitReason,
    },
}

/// A label constraint `key=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LabelReq {
    /// The label key.
    pub key: String,
    /// The required value.
    pub value: String,
}

impl LabelReq {
    /// Parses `key=value`.
    ///
    /// ```
    /// use pool_proto::LabelReq;
    /// let l = LabelReq::parse("zone=a").unwrap();
    /// assert_eq!((l.key.as_str(), l.value.as_str()), ("zone", "a"));
    /// assert!(LabelReq::parse("zone").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(LabelReq {
                key: k.trim().to_owned(),
                value: v.trim().to_owned(),
            }),
            _ => Err(crate::Error::InvalidLabel {
                input: s.to_owned(),
            }),
        }
    }

    /// Parses a comma-separated list, `zone=a,disk=ssd`.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, crate::Error> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(LabelReq::parse)
            .collect()
    }

    /// Whether `labels` satisfy this constraint.
    pub fn matches(&self, labels: &Labels) -> bool {
        labels.get(&self.key) == Some(&self.value)
    }
}

impl fmt::Display for LabelReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Placement strategies of the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementStrategy {
    /// Lowest load per unit of capacity, counting placements since the last
    /// report (water-filling).
    LeastLoaded,
    /// Sample two nodes, take the less loaded.
    TwoChoices,
    /// Rotate through the nodes.
    RoundRobin,
    /// Uniformly at random.
    Random,
}

impl PlacementStrategy {
    /// Every strategy, in documentation order.
    pub const ALL: [PlacementStrategy; 4] = [
        PlacementStrategy::LeastLoaded,
        PlacementStrategy::TwoChoices,
        PlacementStrategy::RoundRobin,
        PlacementStrategy::Random,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementStrategy::LeastLoaded => "least-loaded",
            PlacementStrategy::TwoChoices => "two-choices",
            PlacementStrategy::RoundRobin => "round-robin",
            PlacementStrategy::Random => "random",
        }
    }
}

impl fmt::Display for PlacementStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PlacementStrategy {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, crate::Error> {
        PlacementStrategy::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| crate::Error::InvalidStrategy {
                input: s.to_owned(),
            })
    }
}

/// A placement query (Erlang's `get_node`, for `count` processes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaceQuery {
    /// How many placements (a node may appear several times).
    pub count: u32,
    /// Override of the master's default strategy.
    #[serde(default)]
    pub strategy: Option<PlacementStrategy>,
    /// Consistent-hash key: the same key goes to the same live node.
    #[serde(default)]
    pub key: Option<String>,
    /// Only nodes with all these labels.
    #[serde(default)]
    pub labels: Vec<LabelReq>,
    /// The named node only (checked to be live and to match the labels).
    #[serde(default)]
    pub node: Option<String>,
    /// Never these nodes (e.g. one that just failed).
    #[serde(default)]
    pub exclude: Vec<NodeId>,
    /// True when the caller will spawn there: the master counts these
    /// placements on top of each node's last report. False for a pure query.
    #[serde(default)]
    pub commit: bool,
    /// Trace id of the request this placement serves, for the master's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceId>,
    /// The function the caller will spawn there: only nodes that register
    /// it (`Join.functions`) are chosen. `None` (and an older peer's query,
    /// which has no such field) places without looking at functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// A spawn request from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpawnRequest {
    /// The registered function to run.
    pub function: String,
    /// Its argument (a JSON value).
    #[serde(default)]
    pub args: serde_json::Value,
    /// Link the new process to this process (of the requesting node).
    #[serde(default)]
    pub link: Option<Pid>,
    /// Monitor the new process from this process, with this reference.
    #[serde(default)]
    pub monitor: Option<SpawnMonitor>,
    /// What the process belongs to, for listings and fencing.
    #[serde(default)]
    pub owner: Option<String>,
    /// Trace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceId>,
    /// Limits and grants of a wasm process (a native function ignores
    /// them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
}

/// A monitor set up atomically with a spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnMonitor {
    /// The watching process.
    pub watcher: Pid,
    /// The monitor's reference.
    pub mref: Ref,
    /// Whether the `Down` carries the result value.
    #[serde(default)]
    pub with_result: bool,
}

/// Status of a process in listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcStatus {
    /// Being polled or queued to run.
    Running,
    /// Waiting for a message or a timer.
    Waiting,
    /// Ending (links and monitors being notified).
    Exiting,
}

impl fmt::Display for ProcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcStatus::Running => "running",
            ProcStatus::Waiting => "waiting",
            ProcStatus::Exiting => "exiting",
        })
    }
}

/// One process in `poolctl ps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: Pid,
    /// The name of the node it runs on.
    pub node: String,
    /// The function it runs.
    pub function: String,
    /// Its status.
    pub status: ProcStatus,
    /// Milliseconds since it started.
    pub age_ms: u64,
    /// Messages waiting in its mailbox.
    #[serde(default)]
    pub mailbox: u64,
    /// Its locally registered name, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// What it belongs to (e.g. `app/supervisor/child`), if anything.
    #[serde(default)]
    pub owner: Option<String>,
}

/// One line of `poolctl nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Name.
    pub name: String,
    /// Incarnation.
    pub id: NodeId,
    /// Peer address.
    pub addr: String,
    /// Machine CPU use, percent.
    pub cpu: f32,
    /// Machine memory use, percent.
    pub mem: f32,
    /// Processes alive.
    pub procs: u64,
    /// Placement score (load per unit of capacity, placements since the last
    /// report included).
    pub score: f64,
    /// Labels.
    pub labels: Labels,
    /// Capacity.
    pub capacity: u32,
    /// The node's own CPU use, percent of one core.
    #[serde(default)]
    pub self_cpu: f32,
    /// Runnable processes at the last report.
    #[serde(default)]
    pub run_queue: u32,
    /// Milliseconds since the last report.
    #[serde(default)]
    pub report_age_ms: u64,
    /// Live nodes that tried to connect to this one and could not (empty
    /// when every peer that tried got through), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable_from: Vec<UnreachableFrom>,
}

/// A node chosen by placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// The node's incarnation.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its peer address.
    pub addr: String,
    /// The canonical name of the function to spawn there, when the query
    /// named a wasm function (`app.wasm:count` → `<hash>:count`): the
    /// spawner sends this one, so a worker only ever sees canonical names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// One module stored in the pool (`poolctl module ls`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// The sha-256 of its bytes.
    pub hash: ModuleHash,
    /// The file name it was pushed under.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was pushed (under this file name), ms since the Unix epoch
    /// (the master's clock).
    pub pushed_at: u64,
}

/// What a request asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Join the pool (node → master); answered with `Welcome`.
    Join(Join),
    /// Fencing is done; count the node as live (node → master).
    Ready,
    /// Where should `count` processes go (node → master).
    Place(PlaceQuery),
    /// Register a global name (node → master); answered with `Registered`.
    RegisterName {
        /// The name.
        name: String,
        /// The process.
        pid: Pid,
    },
    /// Remove a global name if `pid` holds it (node → master).
    UnregisterName {
        /// The name.
        name: String,
    },
    /// Look up a global name (node → master); answered with `WhereIs`.
    WhereIs {
        /// The name.
        name: String,
    },
    /// All global names (node → master).
    ListNames,
    /// Live nodes with their load (node → master).
    ListNodes,
    /// Processes of the pool, or of one node (node → master).
    ListProcesses {
        /// Only this node, by name.
        #[serde(default)]
        node: Option<String>,
    },
    /// Processes of the receiving node (master → node).
    LocalProcesses,
    /// Hand a tree to the master to keep alive (node → master).
    TreeStart {
        /// The tree.
        spec: TreeSpec,
        /// Where it came from (a file name), for messages.
        #[serde(default)]
        source: Option<String>,
        /// The file's text, so the master can name the line of an error it
        /// finds (e.g. a function no live worker has).
        #[serde(default)]
        text: Option<String>,
    },
    /// Applications the master keeps (node → master).
    TreeList,
    /// The whole tree of one application (node → master).
    TreeShow {
        /// Application id.
        id: String,
    },
    /// Stop an application in order (node → master).
    TreeStop {
        /// Application id.
        id: String,
    },
    /// Start a failed or stopped application again, with its restart
    /// history cleared (node → master); answered with `Apps`.
    TreeRestart {
        /// Application id.
        id: String,
    },
    /// Forget a stopped or failed application (node → master); a running
    /// or pending one must be stopped first. Answered with `Apps` (what is
    /// left).
    TreeRemove {
        /// Application id.
        id: String,
    },
    /// Start an application root here (master → node).
    StartApp {
        /// Application id.
        app: String,
        /// Generation, increasing with every (re)start.
        generation: u64,
        /// The tree.
        spec: TreeSpec,
    },
    /// Stop an application root here, in order (master → node).
    StopApp {
        /// Application id.
        app: String,
    },
    /// The tree view of the supervisor `pid` on the receiving node (master →
    /// node, node → node for nested supervisors elsewhere).
    Inspect {
        /// The supervisor.
        pid: Pid,
    },
    /// Spawn a process on the receiving node (node → node).
    Spawn(SpawnRequest),
    /// The node is stopping: place nothing more on it (node → master).
    /// It disconnects after its hosted children have stopped.
    Leave,
    /// Liveness and round-trip probe (any direction).
    Ping,
    /// How long ago did you last hear the master (node → node)? Asked by a
    /// worker whose master lease ran out, to tell whether it is the one cut
    /// off; answered with `MasterSeen`.
    MasterSeen,
    /// Watch `pid`, a process of the receiving node that holds the global
    /// name `name` registered by someone else (master → node): the node
    /// pushes `NameReleased` when it dies (at once if it is gone) and lists
    /// the name in its `Join.names` after a master restart.
    WatchName {
        /// The name.
        name: String,
        /// Its holder, on the receiving node.
        pid: Pid,
    },
    /// Store a WebAssembly module in the pool under its content hash
    /// (node → master); answered with `Modules` (the one entry stored).
    /// Refused when `hash` is given and is not the bytes' sha-256, when the
    /// bytes are not a core wasm module, or when `file` does not end in
    /// `.wasm`.
    PushModule {
        /// The file name it is pushed under (`app.wasm`): `app.wasm:EXPORT`
        /// names its functions until another module is pushed under it.
        file: String,
        /// The module's bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// The hash the sender computed, checked by the master.
        #[serde(default)]
        hash: Option<ModuleHash>,
    },
    /// The modules stored (node → master); answered with `Modules`.
    ListModules,
    /// The bytes of the module `hash` (node → master); answered with
    /// `ModuleBytes`, or `NotFound`.
    FetchModule {
        /// The module.
        hash: ModuleHash,
    },
    /// The canonical name of a function (node → master): a named wasm form
    /// (`app.wasm:count`) becomes `<hash>:count`; a canonical one is
    /// checked to be stored; any other name is answered unchanged.
    /// Answered with `Function`.
    ResolveFunction {
        /// The function name.
        function: String,
    },
    /// Node → master: the node saw a gap in the membership deltas; the
    /// master sends the whole list again (`Msg::Members`, queued before
    /// the answer `Ok`).
    SyncMembers,
    /// Node → master: send me the load table and then its changes
    /// (`Msg::LoadUpdate`), so that I place my pool spawns myself;
    /// answered with `Loads`. Asked again after a gap in the updates.
    WatchLoads,
}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to return.
    Ok,
    /// The request failed.
    Error(RemoteError),
    /// Answer to `Join`.
    Welcome(Welcome),
    /// Answer to `Place`: one entry per placement.
    Placed(Vec<Placed>),
    /// Answer to `RegisterName`: false if the name is taken or the pid
    /// already has a name (OTP's `no`).
    Registered(bool),
    /// Answer to `WhereIs`.
    WhereIs(Option<Pid>),
    /// Answer to `ListNames`.
    Names(BTreeMap<String, Pid>),
    /// Answer to `ListNodes`.
    Nodes(Vec<NodeStatus>),
    /// Answer to `ListProcesses` and `LocalProcesses`.
    Processes(Vec<ProcessInfo>),
    /// Answer to `TreeStart`, `TreeList`, `TreeStop`.
    Apps(Vec<AppSummary>),
    /// Answer to `TreeShow` and `Inspect`.
    Tree(Box<TreeView>),
    /// Answer to `Spawn` and `StartApp`.
    Spawned(Pid),
    /// Answer to `Ping`.
    Pong,
    /// Answer to `MasterSeen`: how many ms ago the answering node last had
    /// a report acknowledged by the master, or `None` if it has no master
    /// session.
    MasterSeen {
        /// Milliseconds since the last acknowledged report.
        heard_ms_ago: Option<u64>,
    },
    /// Answer to `ListModules` (every module, by file name) and
    /// `PushModule` (the entry stored).
    Modules(Vec<ModuleInfo>),
    /// Answer to `FetchModule`: the module's bytes.
    ModuleBytes {
        /// The bytes, whose sha-256 is the hash asked for.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Answer to `ResolveFunction`: the canonical name.
    Function(String),
    /// Answer to `WatchLoads`: the whole load table.
    Loads(Box<LoadTableCopy>),
}

/// A failed request, with a machine-readable code and a message for people
/// that says what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl RemoteError {
    /// A failure of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RemoteError {
            code,
            message: message.into(),
        }
    }
}

/// Machine-readable failure kinds of [`RemoteError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Another live node has this name.
    DuplicateName,
    /// No live node satisfies the placement constraints.
    NoNode,
    /// The named node is not live.
    UnknownNode,
    /// The function is not registered on the target node.
    UnknownFunction,
    /// The function's arguments do not fit.
    BadArgs,
    /// No such process, application or name.
    NotFound,
    /// The application is already running.
    AlreadyRunning,
    /// The tree spec is invalid.
    BadSpec,
    /// The node refuses spawns (e.g. memory pressure, shutting down).
    Overloaded,
    /// The request is not allowed from this peer or in this direction.
    Refused,
    /// The request was malformed.
    BadRequest,
    /// It could not be done now, for a reason that may pass (a node lost
    /// during a start, no live node able to take a child yet); try again
    /// later. A start that fails so is pending, not failed.
    Unavailable,
    /// Anything else.
    Internal,
}

impl AppStatus {
    /// The status name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Running => "running",
            AppStatus::Failed => "failed",
            AppStatus::Stopped => "stopped",
            AppStatus::Pending => "pending",
        }
    }
}

impl Msg {
    /// The variant's name (`Send`, `NodeDown`, ...), for log lines about a
    /// frame without printing the frame.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Request { .. } => "Request",
            Msg::Response { .. } => "Response",
            Msg::NodeUp(_) => "NodeUp",
            Msg::NodeDown { .. } => "NodeDown",
            Msg::ReportAck { .. } => "ReportAck",
            Msg::LoadReport(_) => "LoadReport",
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
}

impl Request {
    /// The variant's name (`Join`, `Place`, ...), for log lines and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Join(_) => "Join",
            Request::Ready => "Ready",
            Request::Place(_) => "Place",
            Request::RegisterName { .. } => "RegisterName",
            Request::UnregisterName { .. } => "UnregisterName",
            Request::WhereIs { .. } => "WhereIs",
            Request::ListNames => "ListNames",
            Request::ListNodes => "ListNodes",
            Request::ListProcesses { .. } => "ListProcesses",
            Request::LocalProcesses => "LocalProcesses",
            Request::TreeStart { .. } => "TreeStart",
            Request::TreeList => "TreeList",
            Request::TreeShow { .. } => "TreeShow",
            Request::TreeStop { .. } => "TreeStop",
            Request::TreeRestart { .. } => "TreeRestart",
            Request::TreeRemove { .. } => "TreeRemove",
            Request::StartApp { .. } => "StartApp",
            Request::StopApp { .. } => "StopApp",
            Request::Inspect { .. } => "Inspect",
            Request::Spawn(_) => "Spawn",
            Request::Leave => "Leave",
            Request::Ping => "Ping",
            Request::MasterSeen => "MasterSeen",
            Request::WatchName { .. } => "WatchName",
            Request::PushModule { .. } => "PushModule",
            Request::ListModules => "ListModules",
            Request::FetchModule { .. } => "FetchModule",
            Request::ResolveFunction { .. } => "ResolveFunction",
            Request::SyncMembers => "SyncMembers",
            Request::WatchLoads => "WatchLoads",
        }
    }
}
