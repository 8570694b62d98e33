//! [`NodeConfig`]: everything a node needs, validated. Layering flags,
//! environment and config file is the binaries' job; the library receives
//! the result.

use std::time::Duration;

use pool_proto::{Cookie, Labels, MAX_FRAME_LEN, NodeKind};

use crate::error::Error;

/// The default master address.
pub const DEFAULT_MASTER: &str = "127.0.0.1:7400";

/// The default report interval (DESIGN.md).
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// The first reconnect delay after losing the master.
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);

/// The longest reconnect delay: a restarted master is found within this.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Inbound connections a worker serves at once by default
/// (`--max-connections`): one per other worker that sends to it and per
/// client (poolctl); beyond it new connections are refused.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The most a node queues for one peer that does not read, by default
/// (`--peer-queue`): past it the connection is closed and links and
/// monitors towards the peer fire `noconnection`.
pub const DEFAULT_PEER_QUEUE: usize = 64 * 1024 * 1024;

/// How a node is configured.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The master's address (`host:port`).
    pub master: String,
    /// This node's name, unique among live nodes.
    pub name: String,
    /// Worker (hosts processes, placeable) or hidden (a client such as
    /// poolctl).
    pub kind: NodeKind,
    /// The address peers connect to, if it differs from the bound one
    /// (behind NAT, or when listening on 0.0.0.0).
    pub advertise: Option<String>,
    /// Capacity for placement; default: the CPU count.
    pub capacity: u32,
    /// Labels for placement constraints.
    pub labels: Labels,
    /// How often to report load; `None` follows the master (its Welcome
    /// says, 500 ms by default). An explicit value wins over the master's.
    pub report_interval: Option<Duration>,
    /// The shared secret.
    pub cookie: Cookie,
    /// Bound on the handshake.
    pub handshake_timeout: Duration,
    /// Frame limit (`--max-frame`): larger frames are refused, sent or
    /// received.
    pub max_frame_len: usize,
    /// Inbound connections served at once (`--max-connections`); more are
    /// refused.
    pub max_connections: usize,
    /// Bytes queued for one peer before its connection is dropped
    /// (`--peer-queue`).
    pub peer_queue: usize,
    /// TLS under every connection (`--tls-cert`, `--tls-key`, `--tls-ca`);
    /// `None` for plaintext.
    pub tls: Option<pool_proto::tls::TlsConfig>,
    /// Threads running processes; default: the CPU count.
    pub process_threads: usize,
    /// How long a request to the master waits (also for a reconnect).
    pub request_timeout: Duration,
    /// How long a graceful stop may take before the rest is killed.
    pub stop_timeout: Duration,
    /// The mailbox limit of this node's processes (0: none): a process with
    /// more messages waiting dies with `mailbox overflow`.
    pub max_mailbox: usize,
    /// The node runs WebAssembly functions: set by whoever installs a wasm
    /// backend as the runtime's resolver. A worker advertises it in its
    /// `Join` (`Join.wasm`), and the master places wasm functions
    /// (`MODULE:EXPORT`) only on such workers. Default false.
    pub wasm_backend: bool,
}

/// The CPU count, at least 1.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl NodeConfig {
    /// A worker named `name` joining the master at `master`, everything
    /// else default.
    pub fn worker(name: impl Into<String>, master: impl Into<String>, cookie: Cookie) -> Self {
        NodeConfig {
            master: master.into(),
            name: name.into(),
            kind: NodeKind::Worker,
            advertise: None,
            capacity: cpu_count() as u32,
            labels: Labels::new(),
            report_interval: None,
            cookie,
            handshake_timeout: pool_proto::handshake::DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame_len: MAX_FRAME_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            peer_queue: DEFAULT_PEER_QUEUE,
            tls: None,
            process_threads: cpu_count(),
            request_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(30),
            max_mailbox: 0,
            wasm_backend: false,
        }
    }

    /// A hidden node (a client such as poolctl): hosts only its own
    /// helper processes, is never chosen for placement, does not listen.
    pub fn hidden(name: impl Into<String>, master: impl Into<String>, cookie: Cookie) -> Self {
        NodeConfig {
            kind: NodeKind::Hidden,
            capacity: 0,
            process_threads: 1,
            ..Self::worker(name, master, cookie)
        }
    }

    /// Checks the settings; the error says which and why.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::Config("the node name is empty: set --name".into()));
        }
        if self
            .name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::Config(format!(
                "the node name {:?} contains whitespace: use letters, digits, '-', '_' or '.'",
                self.name
            )));
        }
        if self.master.trim().is_empty() {
            return Err(Error::Config(
                "the master address is empty: set --master".into(),
            ));
        }
        if self.kind == NodeKind::Worker && self.capacity == 0 {
            return Err(Error::Config("--capacity must be at least 1".into()));
        }
        if self
            .report_interval
            .is_some_and(|r| r < Duration::from_millis(50))
        {
            return Err(Error::Config(
                "--report-interval below 50ms would flood the master: use e.g. 500ms".into(),
            ));
        }
        if self.process_threads == 0 {
            return Err(Error::Config("process threads must be at least 1".into()));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::Config(
                "--handshake-timeout must be longer than zero, e.g. 5s".into(),
            ));
        }
        if self.max_frame_len < 1024 {
            return Err(Error::Config(
                "--max-frame must be at least 1KiB (the default is 16MiB)".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("--max-connections must be at least 1".into()));
        }
        if self.peer_queue < 64 * 1024 {
            return Err(Error::Config(
                "--peer-queue must be at least 64KiB (the default is 64MiB)".into(),
            ));
        }
        Ok(())
    }
}
