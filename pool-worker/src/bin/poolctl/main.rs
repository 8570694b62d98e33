//! `poolctl`: the pool's command line. It joins as a hidden node (hosts no
//! processes for others, never chosen for placement) and uses the same Pool
//! API user code uses.
//!
//! ```text
//! poolctl [--master ADDR] [--json] COMMAND
//!   nodes | place | spawn | ps | send | call | kill | names | tree start|ls|show|stop
//! ```
//!
//! Exit status: 0 on success, 1 when the operation failed, 2 on a usage
//! error. Errors go to stderr as one line that says what to do.

mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Global flags and the command.
#[derive(Debug, Parser)]
#[command(
    name = "poolctl",
    version,
    about = "Operate a Spawnpool pool",
    propagate_version = true
)]
pub(crate) struct Cli {
    /// The master's address.
    #[arg(long, global = true, env = "POOL_MASTER", default_value = pool_worker::config::DEFAULT_MASTER)]
    pub(crate) master: String,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The cookie file (default ~/.spawnpool/cookie; POOL_COOKIE wins over
    /// the default file).
    #[arg(long, global = true, env = "POOL_COOKIE_FILE")]
    pub(crate) cookie_file: Option<PathBuf>,
    /// How long to wait for the master, e.g. 5s.
    #[arg(long = "connect-timeout", global = true, default_value = "5s", value_parser = parse_dur)]
    pub(crate) connect_timeout: std::time::Duration,
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    pool_proto::parse_duration(s).map_err(|e| e.to_string())
}

/// The commands of DESIGN.md "poolctl".
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Live nodes: name, id, addr, cpu, mem, procs, score, labels.
    Nodes,
    /// The node(s) the master would choose now.
    Place {
        /// How many placements.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Consistent-hash key.
        #[arg(long)]
        key: Option<String>,
        /// Label constraint K=V (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Spawn a function; prints the pid (with --wait, how it ended).
    Spawn {
        /// The registered function, e.g. builtin.sleep.
        function: String,
        /// Its argument as JSON (default {}).
        args: Option<String>,
        /// On this node.
        #[arg(long, conflicts_with = "key")]
        on: Option<String>,
        /// By consistent hashing on this key.
        #[arg(long)]
        key: Option<String>,
        /// Label constraint K=V (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Wait for the process to end and print its exit reason and result.
        #[arg(long)]
        wait: bool,
        /// Spawn this many (a progress bar on a terminal, then a summary).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Processes: pid, node, function, age, status.
    Ps {
        /// Only this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Send a JSON message to a pid.
    Send {
        /// The pid, e.g. <3f2a9c1e04d1b2aa.17>.
        pid: String,
        /// The message as JSON.
        #[arg(value_name = "JSON")]
        message: String,
    },
    /// Call a pid with a JSON request; prints the reply as JSON.
    Call {
        /// The pid.
        pid: String,
        /// The request as JSON.
        #[arg(value_name = "JSON")]
        request: String,
        /// How long to wait for the reply.
        #[arg(long, default_value = "5s", value_parser = parse_dur)]
        timeout: std::time::Duration,
    },
    /// Send an exit signal to a pid (default `kill`).
    Kill {
        /// The pid.
        pid: String,
        /// The reason (kill, shutdown, normal, or any text).
        #[arg(long, default_value = "kill")]
        reason: String,
    },
    /// Global names.
    Names,
    /// Pool applications: trees the master keeps alive.
    #[command(subcommand)]
    Tree(TreeCommand),
}

/// `poolctl tree ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TreeCommand {
    /// Hand a TOML tree file to the master.
    Start {
        /// The tree file.
        file: PathBuf,
    },
    /// The applications: id, root, node, status.
    Ls,
    /// One application's whole tree.
    Show {
        /// The application id.
        id: String,
    },
    /// Stop an application (children in reverse start order).
    Stop {
        /// The application id.
        id: String,
    },
}

/// A clap error as one line (DESIGN.md: errors go to stderr in one line
/// that says what to do): its message lines, without the usage block.
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut parts: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    format!("{}; see `poolctl --help`", parts.join(" "))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // --help and --version: printed as clap formats them, exit 0.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // Bare `poolctl`: the help is the answer, but it is still a
                // usage error.
                let _ = e.print();
                return ExitCode::from(2);
            }
            eprintln!("poolctl: {}", one_line_usage_error(&e));
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("poolctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::Usage(msg)) => {
            eprintln!("poolctl: {msg}");
            ExitCode::from(2)
        }
        Err(commands::Failure::Failed(msg)) => {
            eprintln!("poolctl: {msg}");
            ExitCode::FAILURE
        }
    }
}
