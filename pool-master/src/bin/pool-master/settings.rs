//! The settings of `pool-master`: the command line ([`Cli`], every flag
//! with its `POOL_*` environment variable), the config file
//! ([`FileConfig`], [`load_file`]), and [`merge`], which layers them — flag
//! over environment over file over default — into [`Settings`]. Nothing
//! here starts anything; `main.rs` turns the settings into a
//! `MasterConfig`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use clap::builder::BoolishValueParser;
use pool_master::HttpToken;
use pool_proto::{Dur, PlacementStrategy, parse_duration};
use serde::Deserialize;

#[cfg(test)]
mod tests;

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
pub(crate) struct Cli {
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
    pub(crate) config: Option<PathBuf>,
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
    pub(crate) check_config: bool,
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
pub(crate) struct FileConfig {
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
pub(crate) fn load_file(path: &Path) -> anyhow::Result<(FileConfig, Vec<String>)> {
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
pub(crate) struct Settings {
    pub(crate) listen: String,
    pub(crate) http: Option<String>,
    pub(crate) state_dir: PathBuf,
    pub(crate) placement: PlacementStrategy,
    pub(crate) node_timeout: Duration,
    pub(crate) report_interval: Duration,
    pub(crate) trees: Vec<PathBuf>,
    pub(crate) cookie_file: Option<PathBuf>,
    pub(crate) cookie: Option<String>,
    pub(crate) log_json: bool,
    pub(crate) http_token: Option<TokenSource>,
    pub(crate) tls: pool_proto::tls::TlsFiles,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_frame: usize,
}

/// Where the HTTP token comes from.
#[derive(Debug, PartialEq)]
pub(crate) enum TokenSource {
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
    pub(crate) fn read(self) -> anyhow::Result<HttpToken> {
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
pub(crate) fn merge(cli: Cli, file: FileConfig, home: Option<&Path>) -> anyhow::Result<Settings> {
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
