//! The worker's command line as a library (feature `cli`): [`Worker`] gives
//! a binary of your own everything the stock `pool-worker` has — its
//! flags, `POOL_*` variables and config file (`settings`), the cookie, TLS,
//! labels and limits, logging, Ctrl-C / SIGTERM and the graceful stop, a
//! fatal error in one line — plus your functions. The stock binary is
//! `Worker::new().main()`.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use pool_worker::prelude::*;
//!
//! fn main() -> ExitCode {
//!     let mut functions = Functions::new();
//!     functions.register("square", |_ctx, n: i64| async move { Ok::<_, String>(n * n) });
//!     Worker::new().functions(functions).main()
//! }
//! ```
//!
//! Ownership: [`Worker::main`] owns the tokio runtime and the node it
//! starts; the node stops (gracefully) before `main` returns. The helpers
//! [`init_logging`] and [`one_line_usage_error`] are shared with `poolctl`.

mod settings;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::node::{Node, NodeHandle};
use crate::pool::Pool;
use supervisor::Functions;

use settings::{Flags, layered, load_file};

/// What runs once the node has joined, with its Pool API.
type OnStart = Box<dyn FnOnce(Pool) + Send>;

/// A worker binary: the stock worker's command line, plus the functions
/// given here (next to the built-ins, unless
/// [`without_builtins`](Self::without_builtins)).
#[must_use = "a Worker does nothing until `main`"]
pub struct Worker {
    program: Option<String>,
    about: Option<String>,
    functions: Functions,
    builtins: bool,
    on_start: Option<OnStart>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("program", &self.program)
            .field("builtins", &self.builtins)
            .finish_non_exhaustive()
    }
}

impl Default for Worker {
    fn default() -> Self {
        Worker::new()
    }
}

impl Worker {
    /// The stock worker: built-ins only, named after its executable.
    pub fn new() -> Self {
        Worker {
            program: None,
            about: None,
            functions: Functions::new(),
            builtins: true,
            on_start: None,
        }
    }

    /// The functions this worker hosts besides the built-ins (a later call
    /// replaces an earlier one).
    pub fn functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// Hosts only the functions given, not `builtin.*`.
    pub fn without_builtins(mut self) -> Self {
        self.builtins = false;
        self
    }

    /// The program name in `--help`, `--version` and error lines (default:
    /// the executable's file name).
    pub fn program(mut self, name: impl Into<String>) -> Self {
        self.program = Some(name.into());
        self
    }

    /// The one-line description `--help` shows.
    pub fn about(mut self, text: impl Into<String>) -> Self {
        self.about = Some(text.into());
        self
    }

    /// Runs `f` with the node's Pool API once it has joined (e.g. to keep
    /// it for functions that use the pool).
    pub fn on_start(mut self, f: impl FnOnce(Pool) + Send + 'static) -> Self {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Parses the process's arguments and runs the worker until Ctrl-C or
    /// SIGTERM: exit 0 after a graceful stop, 1 with one line on stderr
    /// when it cannot run, 2 on a usage error.
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// [`main`](Self::main) with these arguments (the first is the program).
    pub fn main_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let program = self.program.clone().unwrap_or_else(|| {
            args.first()
                .and_then(|a| std::path::Path::new(a).file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pool-worker".to_owned())
        });
        if args.is_empty() {
            args.push(program.clone().into());
        }
        // clap names commands with `&'static str` (without its `string`
        // feature): one name per process, leaked once.
        let name: &'static str = Box::leak(program.clone().into_boxed_str());
        let mut command = Flags::command().name(name).bin_name(name);
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        let flags = match command
            .try_get_matches_from(args)
            .and_then(|m| Flags::from_arg_matches(&m))
        {
            Ok(flags) => flags,
            Err(e) => return usage_exit(&program, e),
        };
        // The file first: it may ask for JSON logs.
        let file = match load_file(flags.config.as_deref()) {
            Ok(f) => f,
            Err(e) => return fatal(&program, &e),
        };
        init_logging("info", flags.log_json.or(file.log_json).unwrap_or(false));
        let (config, listen) = match layered(&flags, file) {
            Ok(settings) => settings,
            Err(e) => return fatal(&program, &e),
        };
        if flags.check_config {
            println!(
                "{program}: configuration OK (name {}, master {}, listen {listen})",
                config.name, config.master
            );
            return ExitCode::SUCCESS;
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!(
                    "{program}: cannot start the async runtime: {e}; check the process limits"
                );
                return ExitCode::FAILURE;
            }
        };
        let Worker {
            functions,
            builtins,
            on_start,
            ..
        } = self;
        let run = async move {
            let listener =
                std::net::TcpListener::bind(&listen).map_err(|source| crate::Error::Io {
                    what: format!(
                        "binding the peer listener on {listen}: use a free address in --listen"
                    ),
                    source,
                })?;
            let name = config.name.clone();
            let mut builder = Node::builder(config)
                .functions(functions)
                .listener(listener);
            if !builtins {
                builder = builder.without_builtins();
            }
            let node: NodeHandle = builder.start().await?;
            tracing::info!(%name, addr = %node.addr(), id = %node.id(), "worker running");
            if let Some(f) = on_start {
                f(node.pool());
            }
            shutdown_signal().await;
            tracing::info!("stopping gracefully");
            node.shutdown().await;
            Ok::<(), crate::Error>(())
        };
        match rt.block_on(run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fatal(&program, &e),
        }
    }
}

/// Prints `e` as the one line of a fatal error and returns exit status 1.
fn fatal(program: &str, e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {}", one_line(&e.to_string()));
    ExitCode::FAILURE
}

/// A clap outcome: `--help` and `--version` print as clap formats them
/// (exit 0); a usage error is one line (exit 2).
fn usage_exit(program: &str, e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{program}: {}", one_line_usage_error(&e, program));
            ExitCode::from(2)
        }
    }
}

/// Text on one line: line breaks (and the indentation after them) become
/// "; ".
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A clap error as one line (errors go to stderr in one line that says
/// what to do): its message lines, without the usage block.
pub fn one_line_usage_error(e: &clap::Error, program: &str) -> String {
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
    format!("{}; see `{program} --help`", parts.join(" "))
}

/// Installs the stderr log subscriber: filtered by `RUST_LOG` (else
/// `default_level`), text or JSON lines; colours only on a terminal, so
/// that a log file or journald gets plain `trace=<hex>` fields that grep
/// finds.
pub fn init_logging(default_level: &str, json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // `try_init`: a program that installed its own subscriber keeps it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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
