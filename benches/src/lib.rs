//! Internal crate: Spawnpool's benchmarks and simulations, the project's own
//! counterparts of the reference figures in PERF.md. Each is a binary under
//! `src/bin/` whose `//!` says what it measures and how to run it:
//!
//! - `placement_sim`: placement quality (PERF.md "Placement quality"), the
//!   burst and steady-state experiments driven through pool-master's real
//!   `LoadTable::place`.
//! - `hash_balance`: keyed placement's rendezvous hash against the
//!   `hashring` crate (balance, keys moved on leave/join, lookup cost).
//! - `tcp_floor`: the loopback TCP round trip between two processes with
//!   no runtime at all, blocking and spinning: the floor under
//!   `dist_bench`'s remote ping-pong on this machine.
//!
//! This library holds what the binaries share: [`Flags`], and
//! [`figure`] for the side-by-side benchmarks (`local_bench`, `dist_bench`).

pub mod figure;

use std::str::FromStr;

/// Command-line flags of the form `--name value` (and bare `--flag`), parsed
/// without clap so the benchmarks build in seconds.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// The arguments after the program name.
    args: Vec<String>,
}

impl Flags {
    /// The process's arguments. `--help` prints `usage` and exits.
    pub fn from_env(usage: &str) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        Flags { args }
    }

    /// Flags from a list (for tests).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        Flags {
            args: args.into_iter().collect(),
        }
    }

    /// The value after `--name`, parsed, or `default` if absent. Exits with
    /// status 2 and a message if the value does not parse.
    ///
    /// ```
    /// use pool_benches::Flags;
    /// let f = Flags::from_args(["--seed".to_string(), "9".to_string()]);
    /// assert_eq!(f.value("seed", 1u64), 9);
    /// assert_eq!(f.value("trials", 100u32), 100);
    /// ```
    pub fn value<T: FromStr>(&self, name: &str, default: T) -> T {
        let flag = format!("--{name}");
        match self.args.iter().position(|a| *a == flag) {
            None => default,
            Some(i) => match self.args.get(i + 1).map(|v| v.parse::<T>()) {
                Some(Ok(v)) => v,
                _ => {
                    eprintln!("{flag} needs a number; see --help");
                    std::process::exit(2);
                }
            },
        }
    }

    /// Whether the bare flag `--name` is present.
    pub fn has(&self, name: &str) -> bool {
        let flag = format!("--{name}");
        self.args.contains(&flag)
    }
}
