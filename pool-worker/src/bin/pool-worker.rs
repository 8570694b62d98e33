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
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
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
    /// Log as JSON lines.
    #[arg(long, env = "POOL_LOG_JSON")]
    log_json: bool,
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

/// The layered settings: flag/env (clap) > file > default.
fn layered(cli: &Cli) -> anyhow::Result<(NodeConfig, String)> {
    let file: FileConfig = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (config, listen) = layered(&cli)?;
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
    init_logging(cli.log_json);
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
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
