//! Keyed placement's hash, side by side with the `hashring` crate: balance
//! (keys per node / mean), keys moved when a node leaves or joins, and
//! lookup cost. pool-master uses weighted rendezvous hashing
//! (`pool_master::placement::keyed`); `hashring` 0.3 with 100 virtual nodes
//! per node is what DEPS.md compared it with. `hashring` is a dependency of
//! this benchmark crate only.
//!
//! Run:
//!
//! ```text
//! cargo run --release -p pool-benches --bin hash_balance
//! cargo run --release -p pool-benches --bin hash_balance -- --keys 2000000 --seed 3
//! ```

use std::hash::Hash;
use std::time::Instant;

use hashring::HashRing;
use pool_benches::Flags;
use pool_master::placement::keyed;
use pool_proto::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USAGE: &str = "\
hash_balance: rendezvous hashing (pool-master) vs hashring 0.3 with 100 vnodes

usage: hash_balance [--seed N] [--keys N]
  --seed N   RNG seed for node ids (default 1)
  --keys N   keys for the 100-node case (default 1000000; the 8-node case uses 10000)";

/// Virtual nodes per node on the ring, as in DEPS.md.
const VNODES: u32 = 100;

/// A virtual node: the real node and its replica number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct VNode {
    node: NodeId,
    replica: u32,
}

/// A way to map keys to nodes.
trait Scheme {
    /// Name in the table.
    fn name(&self) -> &'static str;
    /// Builds the scheme over `nodes`.
    fn build(&self, nodes: &[NodeId]) -> Box<dyn Fn(&str) -> NodeId>;
}

/// pool-master's weighted rendezvous hashing, equal weights.
struct Hrw;

impl Scheme for Hrw {
    fn name(&self) -> &'static str {
        "HRW (pool-master, xxh3)"
    }
    fn build(&self, nodes: &[NodeId]) -> Box<dyn Fn(&str) -> NodeId> {
        let nodes: Vec<(NodeId, f64)> = nodes.iter().map(|&n| (n, 1.0)).collect();
        Box::new(move |key| keyed::pick(key.as_bytes(), nodes.iter().copied()).expect("nodes"))
    }
}

/// hashring 0.3 with [`VNODES`] virtual nodes per node.
struct Ring;

impl Scheme for Ring {
    fn name(&self) -> &'static str {
        "hashring 0.3, 100 vnodes"
    }
    fn build(&self, nodes: &[NodeId]) -> Box<dyn Fn(&str) -> NodeId> {
        let mut ring = HashRing::new();
        ring.batch_add(
            nodes
                .iter()
                .flat_map(|&node| (0..VNODES).map(move |replica| VNode { node, replica }))
                .collect(),
        );
        Box::new(move |key| ring.get(&key).expect("nodes").node)
    }
}

fn key(i: usize) -> String {
    format!("user:{i}")
}

/// Owners of keys `0..n`.
fn owners(lookup: &dyn Fn(&str) -> NodeId, n: usize) -> Vec<NodeId> {
    (0..n).map(|i| lookup(&key(i))).collect()
}

/// (min, max) of keys per node divided by the mean.
fn balance(nodes: &[NodeId], owners: &[NodeId]) -> (f64, f64) {
    let mean = owners.len() as f64 / nodes.len() as f64;
    let counts = nodes
        .iter()
        .map(|n| owners.iter().filter(|o| *o == n).count() as f64 / mean);
    counts.fold((f64::INFINITY, 0.0f64), |(lo, hi), c| {
        (lo.min(c), hi.max(c))
    })
}

/// Results of one scheme on one pool.
struct Row {
    min: f64,
    max: f64,
    leave_moved: f64,
    leave_only_its_keys: bool,
    join_moved: f64,
    join_only_to_new: bool,
    ns_per_lookup: f64,
}

fn measure(scheme: &dyn Scheme, nodes: &[NodeId], new: NodeId, n_keys: usize) -> Row {
    let lookup = scheme.build(nodes);
    let t = Instant::now();
    let before = owners(&*lookup, n_keys);
    let ns_per_lookup = t.elapsed().as_nanos() as f64 / n_keys as f64;
    let (min, max) = balance(nodes, &before);

    let gone = nodes[nodes.len() / 2];
    let rest: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != gone).collect();
    let after = owners(&*scheme.build(&rest), n_keys);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let leave_only_its_keys = before.iter().zip(&after).all(|(b, a)| b == a || *b == gone);

    let mut more = nodes.to_vec();
    more.push(new);
    let joined = owners(&*scheme.build(&more), n_keys);
    let join_moved = before.iter().zip(&joined).filter(|(b, a)| b != a).count();
    let join_only_to_new = before.iter().zip(&joined).all(|(b, a)| b == a || *a == new);

    Row {
        min,
        max,
        leave_moved: moved as f64 / n_keys as f64,
        leave_only_its_keys,
        join_moved: join_moved as f64 / n_keys as f64,
        join_only_to_new,
        ns_per_lookup,
    }
}

fn main() {
    let flags = Flags::from_env(USAGE);
    let seed: u64 = flags.value("seed", 1);
    let big_keys: usize = flags.value("keys", 1_000_000usize).max(1000);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fresh = |n: usize| -> Vec<NodeId> {
        (0..n)
            .map(|_| NodeId::from_u64(rng.random::<u64>() | 1))
            .collect()
    };

    println!("Keyed placement: rendezvous hashing vs hashring (seed {seed})");
    println!(
        "balance = keys per node / mean (min..max); moved = share of keys whose node changed\n"
    );
    println!(
        "{:<26} {:>14} {:>16} {:>22} {:>22} {:>10}",
        "scheme", "pool", "balance", "1 node leaves: moved", "1 node joins: moved", "ns/lookup"
    );
    for (n_nodes, n_keys) in [(8usize, 10_000usize), (100, big_keys)] {
        let all = fresh(n_nodes + 1);
        let (nodes, new) = (&all[..n_nodes], all[n_nodes]);
        for scheme in [&Hrw as &dyn Scheme, &Ring] {
            let r = measure(scheme, nodes, new, n_keys);
            println!(
                "{:<26} {:>14} {:>16} {:>22} {:>22} {:>10.0}",
                scheme.name(),
                format!("{n_nodes} x {n_keys}"),
                format!("{:.3}..{:.3}", r.min, r.max),
                format!(
                    "{:.2}% ({})",
                    r.leave_moved * 100.0,
                    if r.leave_only_its_keys {
                        "its own"
                    } else {
                        "OTHERS TOO"
                    }
                ),
                format!(
                    "{:.2}% ({})",
                    r.join_moved * 100.0,
                    if r.join_only_to_new {
                        "to it"
                    } else {
                        "ELSEWHERE TOO"
                    }
                ),
                r.ns_per_lookup
            );
        }
        println!(
            "{:<26} {:>14} {:>16} {:>22} {:>22}",
            "ideal",
            "",
            "1.000..1.000",
            format!("{:.2}%", 100.0 / n_nodes as f64),
            format!("{:.2}%", 100.0 / (n_nodes + 1) as f64)
        );
    }

    // Weighted shares: capacities 1:2:3:4.
    let weighted: Vec<(NodeId, f64)> = fresh(4).into_iter().zip([1.0, 2.0, 3.0, 4.0]).collect();
    let n = 100_000;
    let mut counts = [0usize; 4];
    for i in 0..n {
        let k = key(i);
        counts[keyed::pick_index(k.as_bytes(), weighted.iter().copied()).expect("nodes")] += 1;
    }
    let shares: Vec<String> = counts
        .iter()
        .map(|&c| format!("{:.3}", c as f64 / n as f64))
        .collect();
    println!(
        "\nweighted HRW, capacities 1:2:3:4, {n} keys: shares {} (ideal 0.100/0.200/0.300/0.400)",
        shares.join("/")
    );
}
