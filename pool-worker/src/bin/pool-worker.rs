//! The stock worker: joins a pool and hosts processes, with the built-in
//! functions (`builtin.echo`, `builtin.sleep`, ...).
//!
//! This binary only turns flags, environment and the config file into a
//! `NodeConfig` (flag > env > file > default), installs logging, binds the
//! listener and runs the node until Ctrl-C or SIGTERM, then stops it
//! gracefully.
//!
//! ```text
//! pool-worker [--master ADDR] [--name NAME] [--listen ADDR] [--advertise ADDR]
//!             [--capacity N] [--label K=V]... [--report-interval DUR] [--config FILE]
//!             [--threads N] [--cookie-file FILE] [--log-json]
//!             [--tls-cert FILE --tls-key FILE --tls-ca FILE]
//!             [--handshake-timeout DUR] [--max-connections N] [--max-frame BYTES]
//!             [--peer-queue BYTES] [--max-mailbox N]
//! ```
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`), as text or
//! JSON lines (`--log-json`, `POOL_LOG_JSON=1`, or `log_json = true` in
//! the file). The config file refuses keys it does not know
//! (`deploy/worker.example.toml` lists every one).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use clap::builder::BoolishValueParser;
use pool_proto::{Labels, parse_duration};
use pool_worker::{Node, NodeConfig};
use serde::Deserialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line flags; every one also reads an environment variable.
#[derive(Debug, Parser)]
#[command(name = "pool-worker", version, about = "A Spawnpool worker node")]
struct Cli {
    /// The master's address.
    #[arg(long, env = "POOL_MASTER")]
    master: Option<String>,
    /// This node's name, unique in the pool (default: HOST-PID).
    #[arg(long, env = "POOL_NAME")]
    name: Option<String>,
    /// Where to listen for peers (default 127.0.0.1:0, an ephemeral port).
    #[arg(long, env = "POOL_LISTEN")]
    listen: Option<String>,
    /// The address peers should dial, if not the bound one (NAT, 0.0.0.0).
    #[arg(long, env = "POOL_ADVERTISE")]
    advertise: Option<String>,
    /// Capacity for placement (default: the CPU count).
    #[arg(long, env = "POOL_CAPACITY")]
    capacity: Option<u32>,
    /// A label for placement constraints, K=V (repeatable).
    #[arg(long = "label", env = "POOL_LABELS", value_delimiter = ',')]
    labels: Vec<String>,
    /// How often to report load, e.g. 500ms.
    #[arg(long, env = "POOL_REPORT_INTERVAL")]
    report_interval: Option<String>,
    /// Threads running processes (default: the CPU count).
    #[arg(long, env = "POOL_THREADS")]
    threads: Option<usize>,
    /// A TOML config file (keys as the flags, with underscores).
    #[arg(long, env = "POOL_CONFIG")]
    config: Option<PathBuf>,
    /// The cookie file (default ~/.spawnpool/cookie; POOL_COOKIE wins over
    /// the default file).
    #[arg(long, env = "POOL_COOKIE_FILE")]
    cookie_file: Option<PathBuf>,
    /// This node's TLS certificate (PEM), signed by the pool's CA; TLS is
    /// on when --tls-cert, --tls-key and --tls-ca are all given.
    #[arg(long, env = "POOL_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "POOL_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The pool's CA certificate (PEM): peers must present a certificate
    /// signed by it.
    #[arg(long, env = "POOL_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// How long a connection may take to finish its TLS and cookie
    /// handshakes, e.g. 5s [default: 5s].
    #[arg(long, env = "POOL_HANDSHAKE_TIMEOUT", value_name = "DUR", value_parser = parse_dur)]
    handshake_timeout: Option<std::time::Duration>,
    /// Inbound connections served at once; more are refused [default: 1024].
    #[arg(long, env = "POOL_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Largest frame sent or accepted, e.g. 16MiB [default: 16MiB].
    #[arg(long, env = "POOL_MAX_FRAME", value_name = "BYTES", value_parser = parse_size)]
    max_frame: Option<u64>,
    /// The most queued for one peer that does not read before its
    /// connection is dropped, e.g. 64MiB [default: 64MiB].
    #[arg(long, env = "POOL_PEER_QUEUE", value_name = "BYTES", value_parser = parse_size)]
    peer_queue: Option<u64>,
    /// The most messages a process may have waiting in its mailbox; a
    /// process past it dies with `mailbox overflow` (0: no limit)
    /// [default: 0].
    #[arg(long, env = "POOL_MAX_MAILBOX", value_name = "N")]
    max_mailbox: Option<usize>,
    /// Log as JSON lines (`--log-json`, or `--log-json=false` over the
    /// environment or the file).
    #[arg(long, env = "POOL_LOG_JSON", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new(),
          value_name = "BOOL")]
    log_json: Option<bool>,
    /// Check the settings (flags, environment, config file, cookie) and
    /// exit: 0 if the worker would start with them, 1 with the error if not.
    #[arg(long)]
    check_config: bool,
}

/// The config file: every key optional; flags and env win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    master: Option<String>,
    name: Option<String>,
    listen: Option<String>,
    advertise: Option<String>,
    capacity: Option<u32>,
    labels: Option<FileLabels>,
    report_interval: Option<String>,
    threads: Option<usize>,
    cookie_file: Option<PathBuf>,
    log_json: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    handshake_timeout: Option<pool_proto::Dur>,
    max_connections: Option<usize>,
    max_frame: Option<pool_proto::Size>,
    peer_queue: Option<pool_proto::Size>,
    max_mailbox: Option<usize>,
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> Result<u64, String> {
    pool_proto::parse_size(s).map_err(|e| e.to_string())
}

/// A size setting as `usize`, named in the error if it does not fit.
fn size_setting(name: &str, n: u64) -> anyhow::Result<usize> {
    usize::try_from(n).with_context(|| format!("{name} {n} is too large for this machine"))
}

/// Labels in the file: a table `{ zone = "a" }` or a list `["zone=a"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileLabels {
    Table(Labels),
    List(Vec<String>),
}

fn parse_labels(items: &[String]) -> anyhow::Result<Labels> {
    let mut labels = Labels::new();
    for item in items {
        let l = pool_proto::LabelReq::parse(item)?;
        labels.insert(l.key, l.value);
    }
    Ok(labels)
}

fn default_name() -> String {
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "worker".into());
    format!(
        "{}-{}",
        host.split('.').next().unwrap_or("worker"),
        std::process::id()
    )
}

/// Reads the config file of `--config`, if any.
fn load_file(cli: &Cli) -> anyhow::Result<FileConfig> {
    Ok(match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
        }
        None => FileConfig::default(),
    })
}

/// The layered settings: flag/env (clap) > file > default.
fn layered(cli: &Cli, file: FileConfig) -> anyhow::Result<(NodeConfig, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cookie_file = cli.cookie_file.clone().or(file.cookie_file);
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    let cookie = pool_proto::cookie::resolve_cookie(
        cookie_file.as_deref(),
        env_cookie.as_deref(),
        home.as_deref(),
    )?;

    let master = cli
        .master
        .clone()
        .or(file.master)
        .unwrap_or_else(|| pool_worker::config::DEFAULT_MASTER.to_owned());
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

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald gets plain
    // `trace=<hex>` fields that grep finds.
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn run(cli: Cli, file: FileConfig) -> anyhow::Result<()> {
    let (config, listen) = layered(&cli, file)?;
    let listener = std::net::TcpListener::bind(&listen)
        .with_context(|| format!("binding the peer listener on {listen}"))?;
    let name = config.name.clone();
    let node = Node::builder(config).listener(listener).start().await?;
    tracing::info!(%name, addr = %node.addr(), id = %node.id(), "worker running");
    shutdown_signal().await;
    tracing::info!("stopping gracefully");
    node.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The file first: it may ask for JSON logs.
    let file = match load_file(&cli) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pool-worker: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(cli.log_json.or(file.log_json).unwrap_or(false));
    if cli.check_config {
        return match layered(&cli, file) {
            Ok((config, listen)) => {
                println!(
                    "pool-worker: configuration OK (name {}, master {}, listen {listen})",
                    config.name, config.master
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pool-worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pool-worker: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
