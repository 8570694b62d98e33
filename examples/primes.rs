//! The declaration of `primes.search`, shared by the worker that registers
//! it (`custom_worker`) and the client that runs it (`prime_search`): one
//! name, one argument type, one result type, checked by the compiler at
//! both ends. (`poolctl spawn primes.search '{"from":2,"to":100}'` reaches
//! it too: on the wire it is a name and JSON.)

use serde::{Deserialize, Serialize};
use supervisor::Function;

/// Arguments of `primes.search`: the range `[from, to)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Range {
    pub(crate) from: u64,
    pub(crate) to: u64,
}

/// Result of `primes.search`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Found {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) largest: Option<u64>,
    pub(crate) count: u64,
}

/// `primes.search`: the largest prime in a range and how many primes it
/// holds.
pub(crate) const SEARCH: Function<Range, Found> = Function::new("primes.search");
