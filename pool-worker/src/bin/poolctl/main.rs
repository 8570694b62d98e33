//! `poolctl`: the pool's command line. It joins as a hidden node (hosts no
//! processes for others, never chosen for placement) and uses the same Pool
//! API user code uses.
//!
//! ```text
//! poolctl [--master ADDR] [--json] COMMAND
//!   nodes | place | spawn | ps | send | call | kill | names | tree start|ls|show|stop
//!   | module push FILE | module ls
//! ```
//!
//! Exit status: 0 on success, 1 when the operation failed, 2 on a usage
//! error. Errors go to stderr as one line that says what to do.
//!
//! Logs go to stderr too, filtered by `RUST_LOG` (default `error`), as
//! text or, with `--log-json` / `POOL_LOG_JSON`, JSON lines.
//!
//! **Tracing.** `spawn`, `call` and `send` take `--trace[=ID]` (ID: up to
//! 16 hex digits; without `=ID`, a random one). The id is printed to stderr
//! as `trace=<16 hex digits>` and travels with the request: the master logs
//! its placement decision, the worker the spawn (both at info) and every
//! traced message where it arrives (at debug), and poolctl logs the spawn,
//! the call and the reply (at info, with `RUST_LOG=info`), each line with
//! the field `trace=<hex>`, so `grep trace=<hex>` over the logs of every
//! node shows the request's path.

mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, Subcommand};
use pool_proto::TraceId;

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
    /// This client's TLS certificate (PEM), signed by the pool's CA (for a
    /// pool whose nodes run with --tls-*; all three files or none).
    #[arg(long, global = true, env = "POOL_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, global = true, env = "POOL_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The pool's CA certificate (PEM).
    #[arg(long, global = true, env = "POOL_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// Largest frame sent or accepted, e.g. 16MiB (as the pool's nodes).
    #[arg(long, global = true, env = "POOL_MAX_FRAME", value_name = "BYTES",
          default_value = "16MiB", value_parser = parse_size)]
    pub(crate) max_frame: usize,
    /// Logs (stderr, filtered by RUST_LOG, default `error`) as JSON lines.
    #[arg(long, global = true, env = "POOL_LOG_JSON", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub(crate) log_json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    pool_proto::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_size_u64(s: &str) -> Result<u64, String> {
    pool_proto::parse_size(s).map_err(|e| e.to_string())
}

fn parse_grant(s: &str) -> Result<pool_proto::DirGrant, String> {
    pool_proto::DirGrant::parse(s)
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n = pool_proto::parse_size(s).map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|_| format!("{s} is too large for this machine"))
}

/// A trace id: 1 to 16 hex digits, `0x` allowed, not zero.
fn parse_trace(s: &str) -> Result<TraceId, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    match u64::from_str_radix(digits, 16) {
        Ok(0) => Err("a trace id is not zero".to_owned()),
        Ok(id) if !digits.starts_with('+') => Ok(id),
        _ => Err(format!(
            "{s:?} is not a trace id: give 1 to 16 hex digits, e.g. --trace=3f2a9c1e04d1b2aa, or --trace alone for a random one"
        )),
    }
}

/// The trace id of a `--trace[=ID]` option: none, the given one, or a
/// random one (never zero).
pub(crate) fn trace_id(opt: Option<Option<TraceId>>) -> Option<TraceId> {
    opt.map(|id| id.unwrap_or_else(|| rand::random::<u64>().max(1)))
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
        /// Only nodes that register this function (as a spawn of it is
        /// placed).
        #[arg(long)]
        function: Option<String>,
    },
    /// Spawn a function; prints the pid (with --wait, how it ended).
    Spawn {
        /// The registered function, e.g. builtin.sleep, or a WebAssembly
        /// function MODULE:EXPORT (app.wasm:count, or HASH:count).
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
        /// With --wait: give up after this long, e.g. 30s (exit 1; the
        /// process goes on running).
        #[arg(long, value_name = "DUR", requires = "wait", value_parser = parse_dur)]
        timeout: Option<std::time::Duration>,
        /// Spawn this many (a progress bar on a terminal, then the pids and
        /// a summary).
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Trace this request across nodes (`trace=<hex>` in every log);
        /// ID is hex, random if omitted.
        #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, value_parser = parse_trace)]
        trace: Option<Option<TraceId>>,
        /// WebAssembly only: CPU budget in fuel units; the process ends
        /// with `out of fuel` when it is spent.
        #[arg(long, value_name = "N")]
        fuel: Option<u64>,
        /// WebAssembly only: memory cap, e.g. 64MiB.
        #[arg(long, value_name = "SIZE", value_parser = parse_size_u64)]
        memory: Option<u64>,
        /// WebAssembly only: show the worker's directory HOST to the module
        /// as GUEST, read-only unless :rw (repeatable).
        #[arg(long = "grant-dir", value_name = "HOST:GUEST[:rw]", value_parser = parse_grant)]
        grant_dirs: Vec<pool_proto::DirGrant>,
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
        /// Trace this request across nodes (`trace=<hex>` in every log);
        /// ID is hex, random if omitted.
        #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, value_parser = parse_trace)]
        trace: Option<Option<TraceId>>,
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
        /// Trace this request across nodes (`trace=<hex>` in every log);
        /// ID is hex, random if omitted.
        #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, value_parser = parse_trace)]
        trace: Option<Option<TraceId>>,
    },
    /// Send an exit signal to a pid (default `kill`). A process that must
    /// die but is computing without reaching an await point cannot be
    /// stopped before it does (scheduling is cooperative): then this prints
    /// "pending: ..." and `ps` shows it as `exiting`.
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
    /// WebAssembly modules stored in the pool.
    #[command(subcommand)]
    Module(ModuleCommand),
}

/// `poolctl module ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ModuleCommand {
    /// Store a .wasm file in the pool; prints its hash (spawn its
    /// functions as FILE:EXPORT or HASH:EXPORT).
    Push {
        /// The module file (its name must end in .wasm).
        file: PathBuf,
    },
    /// The modules stored: hash, file, size, pushed.
    Ls,
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
    /// Start a failed or stopped application again (restart counts kept).
    Restart {
        /// The application id.
        id: String,
    },
    /// Forget a stopped or failed application.
    Rm {
        /// The application id.
        id: String,
    },
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
            eprintln!(
                "poolctl: {}",
                pool_worker::cli::one_line_usage_error(&e, "poolctl")
            );
            return ExitCode::from(2);
        }
    };
    pool_worker::cli::init_logging("error", cli.log_json);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("poolctl: cannot start the async runtime: {e}; check the process limits");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::Usage(msg)) => {
            eprintln!("poolctl: {}", pool_worker::cli::one_line(&msg));
            ExitCode::from(2)
        }
        Err(commands::Failure::Failed(msg)) => {
            eprintln!("poolctl: {}", pool_worker::cli::one_line(&msg));
            ExitCode::FAILURE
        }
    }
}
