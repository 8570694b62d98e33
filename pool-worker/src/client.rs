//! [`Client`]: a program that uses the pool without hosting processes for
//! it (poolctl, a web front end, a batch job) joins as a hidden node in one
//! call, from the same sources the binaries read: `POOL_MASTER`, the cookie
//! (`POOL_COOKIE`, `POOL_COOKIE_FILE`, `~/.spawnpool/cookie`), the TLS files
//! (`POOL_TLS_CERT`, `POOL_TLS_KEY`, `POOL_TLS_CA`) and the limits
//! (`POOL_MAX_FRAME`, `POOL_HANDSHAKE_TIMEOUT`). Each client gets a unique
//! generated name, so two copies of one program run side by side.
//!
//! The standard sources themselves ([`standard_cookie`], [`standard_tls`],
//! [`host_name`]) are shared with the worker's command line (`cli`).
//! This module owns no tasks: the node it starts is the caller's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pool_proto::Cookie;
use pool_proto::tls::{TlsConfig, TlsFiles};

use crate::config::{DEFAULT_MASTER, NodeConfig};
use crate::error::Error;
use crate::node::{Node, NodeBuilder, NodeHandle};

/// The value of environment variable `name`, if set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The cookie from the standard sources, in the binaries' order: the
/// cookie file `file` (a flag or `POOL_COOKIE_FILE`), else `POOL_COOKIE`,
/// else `~/.spawnpool/cookie` (created if missing). The cookie remembers
/// where it came from, and a handshake refused over it names that source.
pub fn standard_cookie(file: Option<&Path>) -> Result<Cookie, Error> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    Ok(pool_proto::cookie::resolve_cookie(
        file,
        env_cookie.as_deref(),
        home.as_deref(),
    )?)
}

/// The TLS files of the environment (`POOL_TLS_CERT`, `POOL_TLS_KEY`,
/// `POOL_TLS_CA`), each unless set in `over`.
pub fn standard_tls(over: TlsFiles) -> TlsFiles {
    let path = |v: Option<PathBuf>, var: &str| v.or_else(|| env(var).map(PathBuf::from));
    TlsFiles {
        cert: path(over.cert, "POOL_TLS_CERT"),
        key: path(over.key, "POOL_TLS_KEY"),
        ca: path(over.ca, "POOL_TLS_CA"),
    }
}

/// This machine's host name up to the first dot, or `fallback`.
pub fn host_name(fallback: &str) -> String {
    let host = sysinfo::System::host_name().unwrap_or_default();
    match host.split('.').next() {
        Some(h) if !h.is_empty() && !h.chars().any(char::is_whitespace) => h.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// A fresh client name: `PREFIX-HOST-PID-RANDOM` (8 hex digits), unique
/// among the live nodes even for two copies of one program on one host.
pub fn client_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{:08x}",
        host_name("host"),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A hidden node joining the pool from the standard sources; every
/// builder method overrides one source.
///
/// ```no_run
/// # async fn f() -> Result<(), pool_worker::Error> {
/// use pool_worker::prelude::*;
///
/// let client = Client::new().connect().await?;
/// let run = client
///     .pool()
///     .run_spec(Spawn::new("builtin.sleep", serde_json::json!({"ms": 50})))
///     .await?;
/// println!("{} ended: {}", run.spawned.pid, run.reason);
/// client.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a Client does nothing until `connect`"]
pub struct Client {
    master: Option<String>,
    cookie: Option<Cookie>,
    cookie_file: Option<PathBuf>,
    tls_files: TlsFiles,
    tls: Option<Option<TlsConfig>>,
    prefix: Option<String>,
    name: Option<String>,
    max_frame: Option<usize>,
    connect_timeout: Option<Duration>,
}

impl Client {
    /// A client from the standard sources.
    pub fn new() -> Self {
        Client::default()
    }

    /// The master's address, over `POOL_MASTER` (default
    /// [`DEFAULT_MASTER`]).
    pub fn master(mut self, addr: impl Into<String>) -> Self {
        self.master = Some(addr.into());
        self
    }

    /// The cookie itself, over every cookie source.
    pub fn cookie(mut self, cookie: Cookie) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// The cookie file, over `POOL_COOKIE_FILE` and `POOL_COOKIE`.
    pub fn cookie_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cookie_file = Some(path.into());
        self
    }

    /// TLS files, each over its `POOL_TLS_*` variable (all three or none
    /// must be set in the end).
    pub fn tls_files(mut self, files: TlsFiles) -> Self {
        self.tls_files = files;
        self
    }

    /// TLS as loaded (`None`: plaintext), over every TLS file and variable.
    pub fn tls(mut self, tls: Option<TlsConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The first part of the generated name (default `client`): names
    /// are `PREFIX-HOST-PID-RANDOM`.
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// A fixed name instead of a generated one (then two copies collide:
    /// the second is refused as a duplicate name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The frame limit, over `POOL_MAX_FRAME` (default 16 MiB; as the
    /// pool's nodes).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes);
        self
    }

    /// How long to wait for the master's handshake and first answer, over
    /// `POOL_HANDSHAKE_TIMEOUT` (default 5 s).
    pub fn connect_timeout(mut self, after: Duration) -> Self {
        self.connect_timeout = Some(after);
        self
    }

    /// The hidden node's settings: every source read, the name generated.
    pub fn config(&self) -> Result<NodeConfig, Error> {
        let cookie = match &self.cookie {
            Some(c) => c.clone(),
            None => {
                let file = self
                    .cookie_file
                    .clone()
                    .or_else(|| env("POOL_COOKIE_FILE").map(PathBuf::from));
                standard_cookie(file.as_deref())?
            }
        };
        let master = self
            .master
            .clone()
            .or_else(|| env("POOL_MASTER"))
            .unwrap_or_else(|| DEFAULT_MASTER.to_owned());
        let name = match &self.name {
            Some(n) => n.clone(),
            None => client_name(self.prefix.as_deref().unwrap_or("client")),
        };
        let mut config = NodeConfig::hidden(name, master, cookie);
        config.tls = match &self.tls {
            Some(tls) => tls.clone(),
            None => standard_tls(self.tls_files.clone()).load()?,
        };
        if let Some(n) = self.max_frame {
            config.max_frame_len = n;
        } else if let Some(text) = env("POOL_MAX_FRAME") {
            let n = pool_proto::parse_size(&text)?;
            config.max_frame_len = usize::try_from(n).map_err(|_| {
                Error::Config(format!(
                    "POOL_MAX_FRAME {text} is too large for this machine"
                ))
            })?;
        }
        let timeout = match self.connect_timeout {
            Some(t) => Some(t),
            None => env("POOL_HANDSHAKE_TIMEOUT")
                .map(|t| pool_proto::parse_duration(&t))
                .transpose()?,
        };
        if let Some(t) = timeout {
            config.handshake_timeout = t;
            config.request_timeout = t.max(Duration::from_secs(10));
        }
        config.stop_timeout = Duration::from_secs(5);
        config.validate()?;
        Ok(config)
    }

    /// The node builder of [`config`](Self::config), for what the client
    /// settings do not cover (another transport, the caller's runtime).
    pub fn node_builder(&self) -> Result<NodeBuilder, Error> {
        Ok(Node::builder(self.config()?))
    }

    /// Joins the pool; the handle's [`pool`](NodeHandle::pool) is the Pool
    /// API, and [`shutdown`](NodeHandle::shutdown) leaves.
    pub async fn connect(self) -> Result<NodeHandle, Error> {
        self.node_builder()?.start().await
    }
}

/// [`Client::new().connect()`](Client::connect): joins the pool as a
/// client from the standard sources.
pub async fn connect() -> Result<NodeHandle, Error> {
    Client::new().connect().await
}
