//! The stock worker: joins a pool and hosts processes, with the built-in
//! functions (`builtin.echo`, `builtin.sleep`, ...).
//!
//! Everything it does lives in the library (`pool_worker::cli::Worker`,
//! feature `cli`), so a worker of your own with its own functions keeps
//! every flag: it turns flags, environment and the config file into a
//! `NodeConfig` (flag > env > file > default), installs logging, binds the
//! listener and runs the node until Ctrl-C or SIGTERM, then stops it
//! gracefully. A fatal error is one line on stderr.
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

use std::process::ExitCode;

use pool_worker::cli::Worker;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    Worker::new().main()
}
