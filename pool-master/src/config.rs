//! [`MasterConfig`]: everything the master library needs, as plain data with
//! defaults and [`MasterConfig::validate`]. Layering flags, environment and
//! the config file is the binary's job (STYLE.md point 9); the library never
//! reads argv or the environment.

use std::path::PathBuf;
use std::time::Duration;

use pool_place::load_table::LoadTableConfig;
use pool_place::placement::DEFAULT_STRATEGY;
use pool_proto::handshake::{Cookie, DEFAULT_HANDSHAKE_TIMEOUT};
use pool_proto::{MAX_FRAME_LEN, PlacementStrategy, TreeSpec};

use crate::error::{Error, Result};
use crate::failure::DEFAULT_NODE_TIMEOUT;

/// How often workers report by default (DESIGN.md "Load reports").
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// Connections the master accepts at once by default: the 10,000-node
/// capacity target of PERF.md with room for poolctl clients and reconnects.
/// Each connection costs two small tasks and a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// How long a node may take to answer a master request (StartApp, StopApp,
/// Inspect) by default: a root supervisor starts its children in order, and
/// a few seconds is plenty for any sane tree.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long each worker may take to list its processes for `ListProcesses`:
/// a worker that is slower than this is left out of the answer rather than
/// holding up `poolctl ps` for everyone.
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the ids of nodes declared down are remembered for fencing: a
/// worker cut off for longer than this and coming back with the same
/// incarnation is no longer fenced (a day covers any realistic partition).
pub const DEFAULT_DOWN_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long `TreeStop` waits for the root to stop in order: trees may have
/// `infinity` shutdowns, so this is generous.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The bearer token that guards the HTTP operations that change the pool
/// (spawn, kill, tree start and stop). Without one they are refused; the
/// read-only API, `/metrics` and the dashboard need none.
///
/// Its `Debug` shows no secret, so a logged config never leaks it, and
/// [`matches`](Self::matches) takes the same time wherever a guess differs.
///
/// ```
/// use pool_master::HttpToken;
///
/// let token = HttpToken::new(" s3cret-token\n").unwrap(); // trimmed, as read from a file
/// assert!(token.matches(b"s3cret-token"));
/// assert!(!token.matches(b"s3cret-tokem"));
/// assert!(!token.matches(b""));
/// assert_eq!(format!("{token:?}"), "HttpToken(<redacted>)");
/// assert!(HttpToken::new("  ").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HttpToken(Vec<u8>);

impl HttpToken {
    /// A token from its text (surrounding whitespace, such as the newline
    /// at the end of a file, is dropped). An empty token is refused: it
    /// would let anyone in.
    pub fn new(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::Config {
                field: "http_token",
                problem: "the HTTP token is empty: put a long random secret in the token file (e.g. `openssl rand -hex 32`)".to_owned(),
            });
        }
        Ok(HttpToken(t.as_bytes().to_vec()))
    }

    /// Its length in bytes (short tokens deserve a warning).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an empty token cannot be made.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is this token, in time that depends only on the
    /// length of `presented` (which the client knows anyway), never on
    /// where the first difference is.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = &self.0;
        // A length mismatch is a difference, folded in like any other.
        let mut diff = u8::from(presented.len() != expected.len());
        for (i, &b) in presented.iter().enumerate() {
            diff |= b ^ expected[i % expected.len()];
        }
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for HttpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpToken(<redacted>)")
    }
}

/// A tree handed to the master at boot (`pool-master --tree FILE`).
#[derive(Clone, Debug, PartialEq)]
pub struct BootTree {
    /// The tree.
    pub spec: TreeSpec,
    /// Where it came from (the file name), for messages.
    pub source: Option<String>,
}

/// The master's settings.
///
/// ```
/// use std::time::Duration;
/// use pool_master::MasterConfig;
/// use pool_proto::Cookie;
///
/// let mut config = MasterConfig::new(Cookie::new("secret", "test").unwrap());
/// config.node_timeout = Duration::from_secs(1);
/// config.validate().unwrap();
/// assert_eq!(config.app_grace(), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// The master's name in handshakes and logs.
    pub name: String,
    /// The shared secret every node must prove it knows.
    pub cookie: Cookie,
    /// The default placement strategy for queries that name none.
    pub placement: PlacementStrategy,
    /// Silence after which a worker is declared down.
    pub node_timeout: Duration,
    /// The report interval the master tells workers in `Welcome`.
    pub report_interval: Duration,
    /// Where apps and recently-down node ids are kept across restarts;
    /// `None` keeps them in memory only.
    pub state_dir: Option<PathBuf>,
    /// Trees to submit at boot unless an app with the same id is known.
    pub trees: Vec<BootTree>,
    /// How long a restarted master waits for the node of a running app to
    /// rejoin (and be adopted) before starting the app elsewhere; `None`
    /// means twice the node timeout.
    pub app_grace: Option<Duration>,
    /// The handshake must finish within this.
    pub handshake_timeout: Duration,
    /// Frame limit of every connection, bytes.
    pub max_frame_len: usize,
    /// Connections served at once (`--max-connections`): one more is
    /// refused with a handshake `Refused` that says why.
    pub max_connections: usize,
    /// TLS under every node connection (`--tls-cert`, `--tls-key`,
    /// `--tls-ca`): nodes must present a certificate signed by the CA,
    /// then pass the cookie challenge inside TLS. `None`: plaintext.
    pub tls: Option<pool_proto::tls::TlsConfig>,
    /// How long a node may take to answer StartApp / Inspect.
    pub request_timeout: Duration,
    /// Per-node timeout of the `ListProcesses` fan-out.
    pub list_timeout: Duration,
    /// How long `TreeStop` waits for the root to stop.
    pub stop_timeout: Duration,
    /// How long declared-down node ids are kept for fencing.
    pub down_retention: Duration,
    /// Scoring settings of the load table.
    pub load_table: LoadTableConfig,
    /// The token the HTTP operations that change the pool require
    /// (`Authorization: Bearer <token>`); `None` refuses them all.
    pub http_token: Option<HttpToken>,
}

impl Default for MasterConfig {
    /// Defaults with a fresh random cookie, so that no node can join until a
    /// real cookie is set: a forgotten cookie fails closed.
    fn default() -> Self {
        let cookie = Cookie::new(pool_proto::cookie::generate_cookie(), "a random default")
            .expect("a generated cookie is not empty");
        MasterConfig::new(cookie)
    }
}

impl MasterConfig {
    /// Defaults with this cookie.
    pub fn new(cookie: Cookie) -> Self {
        MasterConfig {
            name: "master".to_owned(),
            cookie,
            placement: DEFAULT_STRATEGY,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            report_interval: DEFAULT_REPORT_INTERVAL,
            state_dir: None,
            trees: Vec::new(),
            app_grace: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame_len: MAX_FRAME_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            list_timeout: DEFAULT_LIST_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            down_retention: DEFAULT_DOWN_RETENTION,
            load_table: LoadTableConfig::default(),
            http_token: None,
        }
    }

    /// The grace period of [`app_grace`](Self::app_grace), default filled in.
    pub fn app_grace(&self) -> Duration {
        self.app_grace.unwrap_or(self.node_timeout * 2)
    }

    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, problem: &str| {
            Err(Error::Config {
                field,
                problem: problem.to_owned(),
            })
        };
        if self.name.trim().is_empty() {
            return bad("name", "the master needs a name");
        }
        if self.report_interval.is_zero() {
            return bad("report_interval", "must be longer than zero, e.g. 500ms");
        }
        if self.node_timeout <= self.report_interval {
            return Err(Error::Config {
                field: "node_timeout",
                problem: format!(
                    "{:?} is not longer than report_interval {:?}: every node would be declared down between two reports; use at least 3 report intervals",
                    self.node_timeout, self.report_interval
                ),
            });
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake_timeout", "must be longer than zero, e.g. 5s");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_frame_len < 1024 {
            return bad("max_frame", "must be at least 1KiB (the default is 16MiB)");
        }
        if self.request_timeout.is_zero() || self.list_timeout.is_zero() {
            return bad("request_timeout", "timeouts must be longer than zero");
        }
        Ok(())
    }
}
