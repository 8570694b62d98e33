//! The worker's settings: its flags (each also an environment variable),
//! its config file, and the layering of both into a [`NodeConfig`] plus
//! the listen address (flag > env > file > default). DESIGN.md
//! "Interfaces" lists every flag, variable and key; this file is where
//! they are spelled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::BoolishValueParser;
use pool_proto::{Labels, parse_duration};
use serde::Deserialize;

use crate::client::{host_name, standard_cookie};
use crate::config::{DEFAULT_MASTER, NodeConfig};
use crate::error::Error;

/// Command-line flags; every one also reads an environment variable.
#[derive(Debug, clap::Parser)]
#[command(version, about = "A Spawnpool worker node")]
pub(crate) struct Flags {
    /// The master's address.
    #[arg(long, env = "POOL_MASTER")]
    pub(crate) master: Option<String>,
    /// This node's name, unique in the pool (default: HOST-PID).
    #[arg(long, env = "POOL_NAME")]
    pub(crate) name: Option<String>,
    /// Where to listen for peers (default 127.0.0.1:0, an ephemeral port).
    #[arg(long, env = "POOL_LISTEN")]
    pub(crate) listen: Option<String>,
    /// The address peers should dial, if not the bound one (NAT, 0.0.0.0).
    #[arg(long, env = "POOL_ADVERTISE")]
    pub(crate) advertise: Option<String>,
    /// Capacity for placement (default: the CPU count).
    #[arg(long, env = "POOL_CAPACITY")]
    pub(crate) capacity: Option<u32>,
    /// A label for placement constraints, K=V (repeatable).
    #[arg(long = "label", env = "POOL_LABELS", value_delimiter = ',')]
    pub(crate) labels: Vec<String>,
    /// How often to report load, e.g. 500ms.
    #[arg(long, env = "POOL_REPORT_INTERVAL")]
    pub(crate) report_interval: Option<String>,
    /// Threads running processes (default: the CPU count).
    #[arg(long, env = "POOL_THREADS")]
    pub(crate) threads: Option<usize>,
    /// A TOML config file (keys as the flags, with underscores).
    #[arg(long, env = "POOL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The cookie file (default ~/.spawnpool/cookie; POOL_COOKIE wins over
    /// the default file).
    #[arg(long, env = "POOL_COOKIE_FILE")]
    pub(crate) cookie_file: Option<PathBuf>,
    /// This node's TLS certificate (PEM), signed by the pool's CA; TLS is
    /// on when --tls-cert, --tls-key and --tls-ca are all given.
    #[arg(long, env = "POOL_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "POOL_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The pool's CA certificate (PEM): peers must present a certificate
    /// signed by it.
    #[arg(long, env = "POOL_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// How long a connection may take to finish its TLS and cookie
    /// handshakes, e.g. 5s [default: 5s].
    #[arg(long, env = "POOL_HANDSHAKE_TIMEOUT", value_name = "DUR", value_parser = parse_dur)]
    pub(crate) handshake_timeout: Option<Duration>,
    /// Inbound connections served at once; more are refused [default: 1024].
    #[arg(long, env = "POOL_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Largest frame sent or accepted, e.g. 16MiB [default: 16MiB].
    #[arg(long, env = "POOL_MAX_FRAME", value_name = "BYTES", value_parser = parse_size)]
    pub(crate) max_frame: Option<u64>,
    /// The most queued for one peer that does not read before its
    /// connection is dropped, e.g. 64MiB [default: 64MiB].
    #[arg(long, env = "POOL_PEER_QUEUE", value_name = "BYTES", value_parser = parse_size)]
    pub(crate) peer_queue: Option<u64>,
    /// The most messages a process may have waiting in its mailbox; a
    /// process past it dies with `mailbox overflow` (0: no limit)
    /// [default: 0].
    #[arg(long, env = "POOL_MAX_MAILBOX", value_name = "N")]
    pub(crate) max_mailbox: Option<usize>,
    /// Log as JSON lines (`--log-json`, or `--log-json=false` over the
    /// environment or the file).
    #[arg(long, env = "POOL_LOG_JSON", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new(),
          value_name = "BOOL")]
    pub(crate) log_json: Option<bool>,
    /// Check the settings (flags, environment, config file, cookie) and
    /// exit: 0 if the worker would start with them, 1 with the error if not.
    #[arg(long)]
    pub(crate) check_config: bool,
}

/// The config file: every key optional; flags and env win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    master: Option<String>,
    name: Option<String>,
    listen: Option<String>,
    advertise: Option<String>,
    capacity: Option<u32>,
    labels: Option<FileLabels>,
    report_interval: Option<String>,
    threads: Option<usize>,
    cookie_file: Option<PathBuf>,
    pub(crate) log_json: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    handshake_timeout: Option<pool_proto::Dur>,
    max_connections: Option<usize>,
    max_frame: Option<pool_proto::Size>,
    peer_queue: Option<pool_proto::Size>,
    max_mailbox: Option<usize>,
}

/// Labels in the file: a table `{ zone = "a" }` or a list `["zone=a"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileLabels {
    Table(Labels),
    List(Vec<String>),
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> Result<u64, String> {
    pool_proto::parse_size(s).map_err(|e| e.to_string())
}

/// A size setting as `usize`, named in the error if it does not fit.
fn size_setting(name: &str, n: u64) -> Result<usize, Error> {
    usize::try_from(n)
        .map_err(|_| Error::Config(format!("{name} {n} is too large for this machine")))
}

fn parse_labels(items: &[String]) -> Result<Labels, Error> {
    let mut labels = Labels::new();
    for item in items {
        let l = pool_proto::LabelReq::parse(item)?;
        labels.insert(l.key, l.value);
    }
    Ok(labels)
}

/// The default node name: HOST-PID.
fn default_name() -> String {
    format!("{}-{}", host_name("worker"), std::process::id())
}

/// Reads the config file at `path`, if any.
pub(crate) fn load_file(path: Option<&Path>) -> Result<FileConfig, Error> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading config file {}", path.display()),
        source,
    })?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans lines (the offending line and a caret):
        // the fatal error is one line.
        let what = e.message().trim_end_matches('.');
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        Error::Config(match line {
            Some(line) => format!("config file {} line {line}: {what}", path.display()),
            None => format!("config file {}: {what}", path.display()),
        })
    })
}

/// The layered settings: flag/env (clap) > file > default. Returns the
/// node's settings and the address to listen on.
pub(crate) fn layered(cli: &Flags, file: FileConfig) -> Result<(NodeConfig, String), Error> {
    let cookie_file = cli.cookie_file.clone().or(file.cookie_file);
    let cookie = standard_cookie(cookie_file.as_deref())?;

    let master = cli
        .master
        .clone()
        .or(file.master)
        .unwrap_or_else(|| DEFAULT_MASTER.to_owned());
    let name = cli.name.clone().or(file.name).unwrap_or_else(default_name);
    let mut config = NodeConfig::worker(name, master, cookie);
    config.advertise = cli.advertise.clone().or(file.advertise);
    if let Some(c) = cli.capacity.or(file.capacity) {
        config.capacity = c;
    }
    config.labels = if !cli.labels.is_empty() {
        parse_labels(&cli.labels)?
    } else {
        match file.labels {
            Some(FileLabels::Table(t)) => t,
            Some(FileLabels::List(l)) => parse_labels(&l)?,
            None => Labels::new(),
        }
    };
    if let Some(r) = cli.report_interval.clone().or(file.report_interval) {
        config.report_interval = Some(parse_duration(&r)?);
    }
    if let Some(t) = cli.threads.or(file.threads) {
        config.process_threads = t;
    }
    if let Some(t) = cli
        .handshake_timeout
        .or(file.handshake_timeout.map(|d| d.0))
    {
        config.handshake_timeout = t;
    }
    if let Some(n) = cli.max_connections.or(file.max_connections) {
        config.max_connections = n;
    }
    if let Some(n) = cli.max_frame.or(file.max_frame.map(|s| s.0)) {
        config.max_frame_len = size_setting("--max-frame", n)?;
    }
    if let Some(n) = cli.peer_queue.or(file.peer_queue.map(|s| s.0)) {
        config.peer_queue = size_setting("--peer-queue", n)?;
    }
    if let Some(n) = cli.max_mailbox.or(file.max_mailbox) {
        config.max_mailbox = n;
    }
    config.tls = pool_proto::tls::TlsFiles {
        cert: cli.tls_cert.clone().or(file.tls_cert),
        key: cli.tls_key.clone().or(file.tls_key),
        ca: cli.tls_ca.clone().or(file.tls_ca),
    }
    .load()?;
    let listen = cli
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    config.validate()?;
    Ok((config, listen))
}
