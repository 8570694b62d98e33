//! `pool-master`: the master daemon of a Spawnpool pool.
//!
//! A thin shell (STYLE.md point 8): it merges flags, environment and the
//! config file into a [`MasterConfig`] (flag > env > file > default, in
//! [`merge`]), installs the tracing subscriber, binds the listeners and
//! calls [`spawn_master`] with Ctrl-C / SIGTERM as the shutdown trigger.
//!
//! ```text
//! pool-master [--listen ADDR] [--http ADDR|off] [--state-dir DIR] [--config FILE]
//!             [--placement STRATEGY] [--node-timeout DUR] [--tree FILE]...
//!             [--report-interval DUR] [--cookie-file FILE] [--log-json]
//!             [--check-config] [--tls-cert FILE --tls-key FILE --tls-ca FILE]
//!             [--handshake-timeout DUR] [--max-connections N] [--max-frame BYTES]
//! ```
//!
//! | flag | env | config key | default |
//! |---|---|---|---|
//! | `--listen ADDR` | `POOL_LISTEN` | `listen` | `127.0.0.1:7400` |
//! | `--http ADDR\|off` | `POOL_HTTP` | `http` | `127.0.0.1:7401` |
//! | `--state-dir DIR` | `POOL_STATE_DIR` | `state_dir` | `~/.spawnpool/master` |
//! | `--config FILE` | `POOL_CONFIG` | — | none |
//! | `--placement STRATEGY` | `POOL_PLACEMENT` | `placement` | `least-loaded` |
//! | `--node-timeout DUR` | `POOL_NODE_TIMEOUT` | `node_timeout` | `3s` |
//! | `--report-interval DUR` | `POOL_REPORT_INTERVAL` | `report_interval` | `500ms` |
//! | `--tree FILE` (repeatable) | `POOL_TREE` (comma-separated) | `tree = [..]` | none |
//! | `--cookie-file FILE` | `POOL_COOKIE_FILE` | `cookie_file` | `~/.spawnpool/cookie` |
//! | `--cookie SECRET` | `POOL_COOKIE` | — | (the cookie file) |
//! | `--log-json` | `POOL_LOG_JSON` | `log_json` | off |
//! | `--http-token-file FILE` | `POOL_HTTP_TOKEN_FILE` | `http_token_file` | none |
//! | `--http-token SECRET` | `POOL_HTTP_TOKEN` | `http_token` | none |
//! | `--tls-cert FILE` | `POOL_TLS_CERT` | `tls_cert` | none (no TLS) |
//! | `--tls-key FILE` | `POOL_TLS_KEY` | `tls_key` | none |
//! | `--tls-ca FILE` | `POOL_TLS_CA` | `tls_ca` | none |
//! | `--handshake-timeout DUR` | `POOL_HANDSHAKE_TIMEOUT` | `handshake_timeout` | `5s` |
//! | `--max-connections N` | `POOL_MAX_CONNECTIONS` | `max_connections` | `16384` |
//! | `--max-frame BYTES` | `POOL_MAX_FRAME` | `max_frame` | `16MiB` |
//!
//! TLS (docs/tls.md) is on when all three `--tls-*` files are given: every
//! node and poolctl must then present a certificate signed by the CA, and
//! the cookie challenge runs inside TLS. `--handshake-timeout` bounds the
//! TLS and cookie handshakes together; the connection after
//! `--max-connections` is refused with a reason the peer logs; a frame over
//! `--max-frame` closes its connection (with a logged reason).
//!
//! The HTTP token guards the HTTP operations that change the pool (spawn,
//! kill, tree start and stop: `Authorization: Bearer <token>`); without one
//! they are refused and the HTTP side is read-only. The token file, like
//! the cookie file, must not be readable by other users; surrounding
//! whitespace is ignored. The command line and environment win over the
//! config file; at each level a file wins over a value. The token is never
//! logged.
//!
//! `--check-config` reads and checks everything (flags, environment, the
//! file, the cookie, the boot trees) and exits: 0 if the master would start
//! with it, 1 with the error if not; keys it does not use are reported.
//! `deploy/master.example.toml` lists every key with its default.
//!
//! Relative paths in the config file are relative to the file's directory.
//! Unknown keys in the config file are logged and ignored, so one file can
//! hold the settings of masters and workers. Logs go to stderr; `RUST_LOG`
//! filters them (default `info`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use clap::builder::BoolishValueParser;
use mimalloc::MiMalloc;
use pool_master::{BootTree, HttpToken, MasterConfig, spawn_master};
use pool_proto::{Dur, PlacementStrategy, parse_duration};
use serde::Deserialize;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Default address nodes connect to (DESIGN.md "Binaries").
const DEFAULT_LISTEN: &str = "127.0.0.1:7400";
/// Default HTTP address: loopback, so the API is not exposed by accident.
const DEFAULT_HTTP: &str = "127.0.0.1:7401";
/// Default state directory under the home directory.
const DEFAULT_STATE_DIR: &str = ".spawnpool/master";

/// Command line; every flag also reads its environment variable (clap gives
/// the flag precedence).
#[derive(Debug, Default, Parser)]
#[command(
    name = "pool-master",
    version,
    about = "The master of a Spawnpool pool: membership, placement, global names, pool applications and the HTTP API."
)]
struct Cli {
    /// Address nodes connect to [default: 127.0.0.1:7400]
    #[arg(long, env = "POOL_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// HTTP API address, or `off` [default: 127.0.0.1:7401]
    #[arg(long, env = "POOL_HTTP", value_name = "ADDR|off")]
    http: Option<String>,
    /// Where submitted trees and recently-down node ids are kept
    /// [default: ~/.spawnpool/master]
    #[arg(long, env = "POOL_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// TOML config file (keys: listen, http, state_dir, placement,
    /// node_timeout, report_interval, tree, cookie_file, log_json,
    /// http_token_file, http_token, tls_cert, tls_key, tls_ca,
    /// handshake_timeout, max_connections, max_frame)
    #[arg(long, env = "POOL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Default placement strategy: least-loaded, two-choices, round-robin or
    /// random [default: least-loaded]
    #[arg(long, env = "POOL_PLACEMENT", value_name = "STRATEGY", value_parser = parse_strategy)]
    placement: Option<PlacementStrategy>,
    /// A worker silent for this long is declared down, e.g. 3s [default: 3s]
    #[arg(long, env = "POOL_NODE_TIMEOUT", value_name = "DUR", value_parser = parse_dur)]
    node_timeout: Option<Duration>,
    /// How often workers are told to report, e.g. 500ms [default: 500ms]
    #[arg(long, env = "POOL_REPORT_INTERVAL", value_name = "DUR", value_parser = parse_dur)]
    report_interval: Option<Duration>,
    /// A tree file to keep running (repeatable; the env var takes a
    /// comma-separated list); skipped if a tree with its id is known
    #[arg(
        long = "tree",
        env = "POOL_TREE",
        value_name = "FILE",
        value_delimiter = ','
    )]
    trees: Vec<PathBuf>,
    /// File holding the cookie [default: ~/.spawnpool/cookie, created if
    /// missing]
    #[arg(long, env = "POOL_COOKIE_FILE", value_name = "FILE")]
    cookie_file: Option<PathBuf>,
    /// The cookie itself; prefer the environment variable or a file, since
    /// a flag shows in `ps`
    #[arg(
        long,
        env = "POOL_COOKIE",
        value_name = "SECRET",
        hide_env_values = true
    )]
    cookie: Option<String>,
    /// Logs as JSON lines instead of text
    #[arg(long, env = "POOL_LOG_JSON", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    log_json: Option<bool>,
    /// Check the settings (flags, environment, config file, cookie, boot
    /// trees) and exit: 0 if the master would start with them, 1 if not
    #[arg(long)]
    check_config: bool,
    /// File holding the token that HTTP operations changing the pool
    /// (spawn, kill, tree start/stop) require; without a token they are
    /// refused
    #[arg(long, env = "POOL_HTTP_TOKEN_FILE", value_name = "FILE")]
    http_token_file: Option<PathBuf>,
    /// The HTTP token itself; prefer the environment variable or a file,
    /// since a flag shows in `ps`
    #[arg(
        long,
        env = "POOL_HTTP_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    http_token: Option<String>,
    /// This node's TLS certificate (PEM), signed by the pool's CA; TLS is
    /// on when --tls-cert, --tls-key and --tls-ca are all given
    #[arg(long, env = "POOL_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, env = "POOL_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The pool's CA certificate (PEM): nodes must present a certificate
    /// signed by it
    #[arg(long, env = "POOL_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// How long a connection may take to finish its TLS and cookie
    /// handshakes, e.g. 5s [default: 5s]
    #[arg(long, env = "POOL_HANDSHAKE_TIMEOUT", value_name = "DUR", value_parser = parse_dur)]
    handshake_timeout: Option<Duration>,
    /// Connections served at once; one more is refused [default: 16384]
    #[arg(long, env = "POOL_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Largest frame sent or accepted, e.g. 16MiB [default: 16MiB]
    #[arg(long, env = "POOL_MAX_FRAME", value_name = "BYTES", value_parser = parse_size)]
    max_frame: Option<usize>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n = pool_proto::parse_size(s).map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|_| format!("{s} is too large for this machine"))
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn parse_strategy(s: &str) -> Result<PlacementStrategy, String> {
    s.parse().map_err(|e: pool_proto::Error| e.to_string())
}

/// The config file's keys; all optional.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    listen: Option<String>,
    http: Option<String>,
    state_dir: Option<PathBuf>,
    placement: Option<String>,
    node_timeout: Option<Dur>,
    report_interval: Option<Dur>,
    #[serde(default)]
    tree: Vec<PathBuf>,
    cookie_file: Option<PathBuf>,
    log_json: Option<bool>,
    http_token_file: Option<PathBuf>,
    http_token: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    handshake_timeout: Option<Dur>,
    max_connections: Option<usize>,
    max_frame: Option<pool_proto::Size>,
}

/// Keys [`FileConfig`] knows.
const FILE_KEYS: &[&str] = &[
    "listen",
    "http",
    "state_dir",
    "placement",
    "node_timeout",
    "report_interval",
    "tree",
    "cookie_file",
    "log_json",
    "http_token_file",
    "http_token",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "handshake_timeout",
    "max_connections",
    "max_frame",
];

/// Reads the config file; returns it and the unknown keys it holds.
fn load_file(path: &Path) -> anyhow::Result<(FileConfig, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let unknown: Vec<String> = table
        .keys()
        .filter(|k| !FILE_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut known = table;
    known.retain(|k, _| FILE_KEYS.contains(&AsRef::<str>::as_ref(k)));
    let mut file: FileConfig = known
        .try_into()
        .with_context(|| format!("config file {}", path.display()))?;
    // Relative paths are relative to the file.
    let base = path.parent().unwrap_or(Path::new("."));
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    file.state_dir.iter_mut().for_each(rebase);
    file.cookie_file.iter_mut().for_each(rebase);
    file.http_token_file.iter_mut().for_each(rebase);
    file.tls_cert.iter_mut().for_each(rebase);
    file.tls_key.iter_mut().for_each(rebase);
    file.tls_ca.iter_mut().for_each(rebase);
    file.tree.iter_mut().for_each(rebase);
    Ok((file, unknown))
}

/// The merged settings.
#[derive(Debug, PartialEq)]
struct Settings {
    listen: String,
    http: Option<String>,
    state_dir: PathBuf,
    placement: PlacementStrategy,
    node_timeout: Duration,
    report_interval: Duration,
    trees: Vec<PathBuf>,
    cookie_file: Option<PathBuf>,
    cookie: Option<String>,
    log_json: bool,
    http_token: Option<TokenSource>,
    tls: pool_proto::tls::TlsFiles,
    handshake_timeout: Duration,
    max_connections: usize,
    max_frame: usize,
}

/// Where the HTTP token comes from.
#[derive(Debug, PartialEq)]
enum TokenSource {
    /// A file to read (its mode is checked).
    File(PathBuf),
    /// The token itself (from `POOL_HTTP_TOKEN`, the flag, or the config
    /// file's `http_token`).
    Value(HttpToken),
}

impl TokenSource {
    /// The command line (flag or environment) over the config file; at each
    /// level a file over a value.
    fn choose(
        cli_file: Option<PathBuf>,
        cli_value: Option<String>,
        file_file: Option<PathBuf>,
        file_value: Option<String>,
    ) -> anyhow::Result<Option<TokenSource>> {
        let value = |v: String, what: &str| {
            HttpToken::new(&v)
                .map(TokenSource::Value)
                .map_err(|e| anyhow::anyhow!("{what}: {e}"))
        };
        Ok(match (cli_file, cli_value, file_file, file_value) {
            (Some(f), ..) => Some(TokenSource::File(f)),
            (None, Some(v), ..) => Some(value(v, "--http-token / POOL_HTTP_TOKEN")?),
            (None, None, Some(f), _) => Some(TokenSource::File(f)),
            (None, None, None, Some(v)) => Some(value(v, "config key `http_token`")?),
            (None, None, None, None) => None,
        })
    }

    /// The token.
    fn read(self) -> anyhow::Result<HttpToken> {
        match self {
            TokenSource::Value(t) => Ok(t),
            TokenSource::File(path) => read_token_file(&path),
        }
    }
}

/// Reads the HTTP token file, refusing one that other users can read or
/// write (as the cookie file).
fn read_token_file(path: &Path) -> anyhow::Result<HttpToken> {
    use std::os::unix::fs::PermissionsExt as _;
    let what = || format!("HTTP token file {}", path.display());
    let meta = std::fs::metadata(path).with_context(what)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{}: mode {mode:o} lets other users read it; run `chmod 600 {}`",
            what(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(what)?;
    HttpToken::new(&text).with_context(what)
}

/// Layers the command line (flags, then environment, as clap resolved
/// them) over the config file over the defaults.
fn merge(cli: Cli, file: FileConfig, home: Option<&Path>) -> anyhow::Result<Settings> {
    let placement = match (cli.placement, file.placement) {
        (Some(p), _) => p,
        (None, Some(s)) => parse_strategy(&s)
            .map_err(anyhow::Error::msg)
            .context("config key `placement`")?,
        (None, None) => pool_master::placement::DEFAULT_STRATEGY,
    };
    let state_dir = match cli.state_dir.or(file.state_dir) {
        Some(d) => d,
        None => match home {
            Some(h) => h.join(DEFAULT_STATE_DIR),
            None => {
                bail!("no home directory for the default state directory: set HOME or --state-dir")
            }
        },
    };
    let http = cli
        .http
        .or(file.http)
        .unwrap_or_else(|| DEFAULT_HTTP.to_owned());
    let http = (!http.eq_ignore_ascii_case("off")).then_some(http);
    Ok(Settings {
        listen: cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        http,
        state_dir,
        placement,
        node_timeout: cli
            .node_timeout
            .or(file.node_timeout.map(|d| d.0))
            .unwrap_or(pool_master::failure::DEFAULT_NODE_TIMEOUT),
        report_interval: cli
            .report_interval
            .or(file.report_interval.map(|d| d.0))
            .unwrap_or(pool_master::config::DEFAULT_REPORT_INTERVAL),
        trees: if cli.trees.is_empty() {
            file.tree
        } else {
            cli.trees
        },
        cookie_file: cli.cookie_file.or(file.cookie_file),
        cookie: cli.cookie,
        log_json: cli.log_json.or(file.log_json).unwrap_or(false),
        http_token: TokenSource::choose(
            cli.http_token_file,
            cli.http_token,
            file.http_token_file,
            file.http_token,
        )?,
        tls: pool_proto::tls::TlsFiles {
            cert: cli.tls_cert.or(file.tls_cert),
            key: cli.tls_key.or(file.tls_key),
            ca: cli.tls_ca.or(file.tls_ca),
        },
        handshake_timeout: cli
            .handshake_timeout
            .or(file.handshake_timeout.map(|d| d.0))
            .unwrap_or(pool_proto::handshake::DEFAULT_HANDSHAKE_TIMEOUT),
        max_connections: cli
            .max_connections
            .or(file.max_connections)
            .unwrap_or(pool_master::config::DEFAULT_MAX_CONNECTIONS),
        max_frame: match (cli.max_frame, file.max_frame) {
            (Some(n), _) => n,
            (None, Some(n)) => usize::try_from(n.0).map_err(|_| {
                anyhow::anyhow!("config key `max_frame`: {n} is too large for this machine")
            })?,
            (None, None) => pool_proto::MAX_FRAME_LEN,
        },
    })
}

/// Installs the stderr subscriber: `RUST_LOG` (default `info`), text or
/// JSON.
fn init_tracing(json: bool) {
    // try_from_default_env: an invalid RUST_LOG is reported, not silently
    // turned into "errors only" (DEPS.md).
    let (filter, bad) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, None),
        Err(e) => (
            EnvFilter::new("info"),
            std::env::var("RUST_LOG").ok().map(|v| (v, e)),
        ),
    };
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    if let Some((value, e)) = bad {
        warn!(rust_log = %value, cause = %e, "RUST_LOG is invalid; logging at info");
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(cause = %e, "cannot listen for SIGTERM; only Ctrl-C stops the master");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("Ctrl-C received; stopping"),
        _ = term => info!("SIGTERM received; stopping"),
    }
}

/// Reads the boot trees. Workers are not connected yet, so functions are
/// checked later, when each root is placed; syntax and spec rules now.
fn read_trees(paths: &[PathBuf]) -> anyhow::Result<Vec<BootTree>> {
    paths
        .iter()
        .map(|path| {
            let spec =
                pool_proto::tree::parse_tree_file(path, |_| true).map_err(anyhow::Error::msg)?;
            Ok(BootTree {
                spec,
                source: Some(path.display().to_string()),
            })
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (file, unknown) = match &cli.config {
        Some(path) => load_file(path)?,
        None => (FileConfig::default(), Vec::new()),
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let check_config = cli.check_config;
    let mut settings = merge(cli, file, home.as_deref())?;
    init_tracing(settings.log_json);
    if !unknown.is_empty() {
        warn!(keys = ?unknown, "config file keys that pool-master does not use were ignored");
    }
    let cookie = pool_proto::cookie::resolve_cookie(
        settings.cookie_file.as_deref(),
        settings.cookie.as_deref(),
        home.as_deref(),
    )?;
    let mut config = MasterConfig::new(cookie);
    config.placement = settings.placement;
    config.node_timeout = settings.node_timeout;
    config.report_interval = settings.report_interval;
    config.state_dir = Some(settings.state_dir.clone());
    config.trees = read_trees(&settings.trees)?;
    config.handshake_timeout = settings.handshake_timeout;
    config.max_connections = settings.max_connections;
    config.max_frame_len = settings.max_frame;
    config.tls = settings.tls.load()?;
    config.http_token = settings
        .http_token
        .take()
        .map(TokenSource::read)
        .transpose()?;
    config.validate()?;
    if check_config {
        println!(
            "pool-master: configuration OK (listen {}, http {}, state dir {}, placement {}, tls {})",
            settings.listen,
            settings.http.as_deref().unwrap_or("off"),
            settings.state_dir.display(),
            settings.placement,
            if config.tls.is_some() { "on" } else { "off" },
        );
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pool-master")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", settings.listen))?;
        let http = match &settings.http {
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (--http; `off` disables it)")
                })?)
            }
            None => None,
        };
        match &config.tls {
            Some(tls) => info!(
                ?tls,
                "TLS on: nodes and poolctl must present a certificate signed by the CA"
            ),
            None => info!("TLS off: node connections are plaintext (see docs/tls.md)"),
        }
        let master = spawn_master(config, listener, http, shutdown_signal()).await?;
        master.wait().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.toml");
        std::fs::write(&path, text).unwrap();
        load_file(&path).unwrap().0
    }

    /// With nothing given, every default of DESIGN.md applies.
    #[test]
    fn defaults() {
        let s = merge(
            Cli::default(),
            FileConfig::default(),
            Some(Path::new("/home/u")),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:7400");
        assert_eq!(s.http.as_deref(), Some("127.0.0.1:7401"));
        assert_eq!(s.state_dir, Path::new("/home/u/.spawnpool/master"));
        assert_eq!(s.placement, PlacementStrategy::LeastLoaded);
        assert_eq!(s.node_timeout, Duration::from_secs(3));
        assert_eq!(s.report_interval, Duration::from_millis(500));
        assert!(!s.log_json);
    }

    /// The limits and TLS files: default, then the file (TLS paths relative
    /// to it), then the command line.
    #[test]
    fn limits_and_tls_flag_over_file_over_default() {
        let home = Some(Path::new("/home/u"));
        let s = merge(Cli::default(), FileConfig::default(), home).unwrap();
        assert_eq!(s.handshake_timeout, Duration::from_secs(5));
        assert_eq!(
            s.max_connections,
            pool_master::config::DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(s.max_frame, 16 << 20);
        assert_eq!(s.tls, pool_proto::tls::TlsFiles::default());

        let f = file(
            "handshake_timeout = \"2s\"\nmax_connections = 10\nmax_frame = \"1MiB\"\ntls_cert = \"n.pem\"\ntls_key = \"n.key\"\ntls_ca = \"ca.pem\"\n",
        );
        let s = merge(Cli::default(), f, home).unwrap();
        assert_eq!(s.handshake_timeout, Duration::from_secs(2));
        assert_eq!(s.max_connections, 10);
        assert_eq!(s.max_frame, 1 << 20);
        let cert = s.tls.cert.clone().unwrap();
        assert!(cert.is_absolute() && cert.ends_with("n.pem"), "{cert:?}");
        assert!(s.tls.key.unwrap().ends_with("n.key"));

        let cli = Cli::try_parse_from([
            "pool-master",
            "--handshake-timeout",
            "750ms",
            "--max-connections",
            "3",
            "--max-frame",
            "64KiB",
            "--tls-cert",
            "flag.pem",
        ])
        .unwrap();
        let f = file("max_connections = 10\ntls_cert = \"n.pem\"\ntls_ca = \"ca.pem\"\n");
        let s = merge(cli, f, home).unwrap();
        assert_eq!(s.handshake_timeout, Duration::from_millis(750));
        assert_eq!(s.max_connections, 3);
        assert_eq!(s.max_frame, 64 << 10);
        assert_eq!(s.tls.cert, Some(PathBuf::from("flag.pem")));
        assert!(s.tls.ca.as_ref().unwrap().ends_with("ca.pem"));
        let e = s.tls.load().map(drop).unwrap_err().to_string();
        assert!(e.contains("--tls-key missing"), "{e}");

        assert!(Cli::try_parse_from(["pool-master", "--max-frame", "lots"]).is_err());
    }

    /// The file overrides defaults; the command line (flag or env, as clap
    /// resolved it) overrides the file.
    #[test]
    fn flag_over_file_over_default() {
        let f = file(
            "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nreport_interval = \"200ms\"\ntree = [\"a.toml\"]\nlog_json = true\n",
        );
        let s = merge(Cli::default(), f, None).unwrap_err();
        assert!(s.to_string().contains("state-dir"), "{s}");

        let f = file(
            "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nstate_dir = \"st\"\ntree = [\"a.toml\"]\n",
        );
        let s = merge(Cli::default(), f, None).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.http, None);
        assert_eq!(s.placement, PlacementStrategy::Random);
        assert_eq!(s.node_timeout, Duration::from_secs(1));
        assert!(s.state_dir.ends_with("st") && s.state_dir.is_absolute());
        assert!(s.trees[0].ends_with("a.toml"));

        let cli = Cli::try_parse_from([
            "pool-master",
            "--listen",
            "127.0.0.1:1",
            "--http",
            "127.0.0.1:2",
            "--placement",
            "two-choices",
            "--node-timeout",
            "5s",
            "--tree",
            "x.toml",
            "--tree",
            "y.toml",
            "--log-json",
        ])
        .unwrap();
        let f = file(
            "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nstate_dir = \"st\"\ntree = [\"a.toml\"]\nlog_json = false\n",
        );
        let s = merge(cli, f, None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:1");
        assert_eq!(s.http.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(s.placement, PlacementStrategy::TwoChoices);
        assert_eq!(s.node_timeout, Duration::from_secs(5));
        assert_eq!(
            s.trees,
            vec![PathBuf::from("x.toml"), PathBuf::from("y.toml")]
        );
        assert!(s.log_json);
    }

    /// Bad values are refused with the flag or key named.
    #[test]
    fn bad_values_name_their_setting() {
        let e = Cli::try_parse_from(["pool-master", "--node-timeout", "3"]).unwrap_err();
        assert!(e.to_string().contains("--node-timeout"), "{e}");
        let e = Cli::try_parse_from(["pool-master", "--placement", "fastest"]).unwrap_err();
        assert!(e.to_string().contains("least-loaded"), "{e}");
        let f = file("placement = \"fastest\"\nstate_dir = \"/s\"\n");
        let e = merge(Cli::default(), f, None).unwrap_err();
        assert!(format!("{e:#}").contains("placement"), "{e:#}");
    }

    /// Keys the master does not use (a worker's, in a shared file) are
    /// reported, not fatal.
    #[test]
    fn unknown_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.toml");
        std::fs::write(&path, "name = \"w1\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let (f, unknown) = load_file(&path).unwrap();
        assert_eq!(f.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(unknown, vec!["name".to_owned()]);
    }
}
