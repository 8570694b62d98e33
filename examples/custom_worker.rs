//! A worker binary of your own: the stock built-ins plus functions this
//! file registers, joining a running pool. `Worker` gives it every flag,
//! `POOL_*` variable and config key of the stock `pool-worker` (cookie,
//! TLS, labels, limits, logging, Ctrl-C / SIGTERM): see `--help`.
//!
//! - `primes.search {from, to}`: the largest prime in `[from, to)` and how
//!   many primes there are (used by `prime_search`).
//! - `session.user {user}`: a per-user session holding a visit counter;
//!   call it with `"visit"` (used by `web_sessions`).
//!
//! Start a master, then a few of these:
//!
//! ```sh
//! cargo run --release --bin pool-master &
//! cargo run --release -p pool-examples --example custom_worker -- --name w1 &
//! cargo run --release -p pool-examples --example custom_worker -- --name w2 --label zone=b &
//! ```

mod primes;

use std::process::ExitCode;

use pool_worker::prelude::*;
use serde::{Deserialize, Serialize};

use primes::{Found, Range, SEARCH};

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Counts primes in a range, yielding now and then so the node stays
/// responsive and its load report counts this process as busy.
async fn search(ctx: Ctx, r: Range) -> Result<Found, ExitReason> {
    let mut found = Found {
        from: r.from,
        to: r.to,
        largest: None,
        count: 0,
    };
    for (i, n) in (r.from..r.to).enumerate() {
        if is_prime(n) {
            found.count += 1;
            found.largest = Some(n);
        }
        if i % 20_000 == 0 {
            ctx.yield_now().await;
        }
    }
    Ok(found)
}

/// Arguments of `session.user`.
#[derive(Debug, Deserialize)]
struct SessionArgs {
    user: String,
}

/// A visit as the session answers it.
#[derive(Debug, Serialize, Deserialize)]
struct Visit {
    user: String,
    visits: u64,
    pid: String,
}

async fn session(mut ctx: Ctx, args: SessionArgs) {
    let mut visits = 0;
    while let Envelope::Call(call) = ctx.recv().await {
        visits += 1;
        let answer = Visit {
            user: args.user.clone(),
            visits,
            pid: ctx.pid().to_string(),
        };
        ctx.reply(&call, &answer);
    }
}

fn functions() -> Functions {
    let mut f = Functions::new();
    f.add(&SEARCH, search);
    f.register("session.user", session);
    f
}

fn main() -> ExitCode {
    Worker::new().functions(functions()).main()
}
