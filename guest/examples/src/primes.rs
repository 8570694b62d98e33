//! `primes`: the prime search of the native `primes.search` (examples/),
//! as a module: the primes in `[from, to)`, their count and the largest.

use serde::{Deserialize, Serialize};

/// The range `[from, to)`.
#[derive(Deserialize)]
struct Range {
    /// First number searched.
    from: u64,
    /// One past the last number searched.
    to: u64,
}

/// The result, the same fields (and so the same map) as the native one.
#[derive(Serialize)]
struct Found {
    /// As asked.
    from: u64,
    /// As asked.
    to: u64,
    /// The largest prime in the range, if any.
    largest: Option<u64>,
    /// How many primes the range holds.
    count: u64,
}

/// Trial division: slow enough to be a workload, simple enough to trust.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// Counts the primes of the range and sets `{from, to, largest, count}`.
#[no_mangle]
pub extern "C" fn primes() {
    let range: Range = crate::args_or_exit();
    let mut found = Found {
        from: range.from,
        to: range.to,
        largest: None,
        count: 0,
    };
    for n in range.from..range.to {
        if is_prime(n) {
            found.count += 1;
            found.largest = Some(n);
        }
    }
    spawnpool_guest::set_result(&found).expect("the result encodes");
}
