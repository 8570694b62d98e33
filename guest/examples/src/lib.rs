//! The example module `demo.wasm`: every example process of the guest
//! library, one export each. Build it with `scripts/build-guests` (Debian's
//! toolchain) or `cargo build --release --target wasm32-wasip1` (rustup),
//! push it with `poolctl module push demo.wasm`, spawn an export with
//! `poolctl spawn demo.wasm:NAME 'ARGS' --wait`.
//!
//! | export | args | behaviour |
//! |---|---|---|
//! | `count` | `{"text": "..."}` | result: the number of whitespace-separated words |
//! | `primes` | `{"from": 2, "to": 100}` | result: `{from, to, largest, count}` of the primes in `[from, to)`, as the native `primes.search` |
//! | `echo` | none | answers every call with its request and sends plain messages back to their sender, forever (as `builtin.echo`) |
//! | `spin` | none | loops forever without a host call (preemption, `poolctl kill`, fuel) |
//! | `hog` | none | allocates 1 MiB after 1 MiB and keeps it, without end (the memory cap) |
//! | `trap` | none | executes `unreachable` at once (exit reason `wasm trap: ...`) |
//! | `pingpong` | `{"peer": "<pid>", "n": 10}` | calls `peer` n times with `["ping", i]`, checks each reply equals the request; result: n |
//! | `children` | `{"child": "FUNCTION", "name": "NAME"}` | spawns two `child` processes linked to it, registers as `name`, answers every call with the children's pids `[[node, serial], ...]`, forever |
//!
//! An export whose arguments do not decode exits at once with the reason
//! `bad args: ...`.

mod children;
mod count;
mod echo;
mod hog;
mod pingpong;
mod primes;
mod spin;
mod trap;

use serde::de::DeserializeOwned;

/// The spawn's arguments as a `T`, or the process ends with `bad args: ...`.
fn args_or_exit<T: DeserializeOwned>() -> T {
    spawnpool_guest::args()
        .unwrap_or_else(|e| spawnpool_guest::exit(&format!("bad args: {e}").into()))
}
