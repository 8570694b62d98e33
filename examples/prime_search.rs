//! A distributed prime search: split `[2, N)` into parts, run each part on
//! the pool (placed by load), gather the results, and print the largest
//! prime below N and where each part ran.
//!
//! Needs a pool whose workers have `primes.search` (the `custom_worker`
//! example):
//!
//! ```sh
//! cargo run --release --bin pool-master &
//! cargo run --release -p pool-examples --example custom_worker -- --name w1 &
//! cargo run --release -p pool-examples --example custom_worker -- --name w2 &
//! cargo run --release -p pool-examples --example prime_search -- 20000000 --parts 16
//! ```

mod primes;

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Parser;
use pool_worker::prelude::*;

use primes::{Found, Range, SEARCH};

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// Search below this number.
    n: u64,
    /// Into how many parts to split the range.
    #[arg(long, default_value_t = 16)]
    parts: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A client (a hidden node): it spawns on the workers but never hosts
    // their work. The master, cookie and TLS files come from POOL_MASTER,
    // POOL_COOKIE / POOL_COOKIE_FILE / ~/.spawnpool/cookie and POOL_TLS_*.
    let node = Client::new().name_prefix("prime-search").connect().await?;
    let pool = node.pool();

    let t = Instant::now();
    let step = args.n.div_ceil(args.parts.max(1));
    let mut tasks = Vec::new();
    for i in 0..args.parts {
        let (from, to) = (2 + i * step, (2 + (i + 1) * step).min(args.n));
        if from >= to {
            break;
        }
        let pool = pool.clone();
        // Typed: the compiler checks the argument against the declaration;
        // `run_spec` (rather than `run`) because the report says where each
        // part ran.
        tasks.push(tokio::spawn(async move {
            pool.run_spec(Spawn::of(&SEARCH, Range { from, to })).await
        }));
    }

    let mut largest = None;
    let mut count = 0;
    let mut by_node: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let run = task.await??;
        let node = run.spawned.node.clone();
        // A part that crashed is an error naming its node and reason; a
        // result that is not a `Found` is one too.
        let found: Found = run.take()?;
        println!(
            "[{:>10}, {:>10}) on {:<6} {} primes, largest {:?}",
            found.from, found.to, node, found.count, found.largest
        );
        count += found.count;
        largest = largest.max(found.largest);
        *by_node.entry(node).or_default() += 1;
    }
    println!(
        "\n{count} primes below {}; the largest is {largest:?}",
        args.n
    );
    println!(
        "parts per node: {by_node:?}; {:.2} s",
        t.elapsed().as_secs_f64()
    );
    node.shutdown().await;
    Ok(())
}
