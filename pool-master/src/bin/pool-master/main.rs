//! `pool-master`: the master daemon of a Spawnpool pool.
//!
//! A thin shell (STYLE.md point 8): it merges flags, environment and the
//! config file into a [`MasterConfig`] (flag > env > file > default, in
//! [`settings::merge`]; the command line and the file are in `settings.rs`),
//! installs the tracing subscriber, binds the listeners and calls
//! [`spawn_master`] with Ctrl-C / SIGTERM as the shutdown trigger.
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

mod settings;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mimalloc::MiMalloc;
use pool_master::{BootTree, MasterConfig, spawn_master};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::settings::{Cli, FileConfig, TokenSource, load_file, merge};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line (`what: cause: what to do`), not anyhow's
            // `Caused by:` block: the message of each error already says
            // what to do.
            let text = format!("{e:#}");
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("pool-master: {}", line.join("; "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// A clap outcome: `--help` and `--version` as clap prints them (exit 0),
/// a usage error in one line without the usage block (exit 2).
fn usage_exit(e: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    eprintln!("pool-master: {}; see `pool-master --help`", parts.join(" "));
    std::process::ExitCode::from(2)
}

/// The master from `cli` until it stops.
fn run(cli: Cli) -> anyhow::Result<()> {
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
