//! Keyed placement: weighted rendezvous (highest-random-weight, HRW) hashing
//! of a key over the live nodes. It owns the hash: the same key goes to the
//! same node while that node lives; when a node leaves only its keys move,
//! and when one joins only the keys it now wins (about 1/n of them) move to
//! it. Shares follow capacity.
//!
//! Why HRW and not a ring (DEPS.md, "Consistent hashing"): no ring to
//! rebuild on a membership change, weights come natively, and balance is far
//! better than a 100-vnode ring at a cost that does not matter for a few
//! hundred nodes.
//!
//! The hash is xxh3 over canonical bytes — the node id as 8 big-endian bytes
//! followed by the key's bytes — never a `std::hash::Hash` impl, so the
//! mapping is the same on every platform, Rust version and master restart.
//! Each node's score is `-w / ln(u)`, with `w` its capacity and `u` the hash
//! mapped into (0, 1); the highest score wins. That is the exponential-race
//! form of weighted HRW: node i wins with probability `w_i / Σ w`.

use pool_proto::NodeId;
use xxhash_rust::xxh3::xxh3_64;

#[cfg(test)]
mod tests;

/// Keys up to this length are hashed from a stack buffer.
const STACK_KEY: usize = 120;

/// The canonical bytes of (node, key): 8 bytes of node id, big-endian,
/// then the key. Built once per lookup; only the node part changes between
/// nodes.
struct Canonical {
    /// Short keys: no allocation.
    stack: [u8; 8 + STACK_KEY],
    /// Long keys.
    heap: Vec<u8>,
    /// Bytes in use.
    len: usize,
}

impl Canonical {
    fn new(key: &[u8]) -> Self {
        let len = 8 + key.len();
        let mut c = Canonical {
            stack: [0u8; 8 + STACK_KEY],
            heap: Vec::new(),
            len,
        };
        if key.len() <= STACK_KEY {
            c.stack[8..len].copy_from_slice(key);
        } else {
            c.heap = vec![0u8; len];
            c.heap[8..].copy_from_slice(key);
        }
        c
    }

    /// xxh3 of the bytes with `node` in front.
    fn hash(&mut self, node: NodeId) -> u64 {
        let buf: &mut [u8] = if self.heap.is_empty() {
            &mut self.stack[..self.len]
        } else {
            &mut self.heap
        };
        buf[..8].copy_from_slice(&node.as_u64().to_be_bytes());
        xxh3_64(buf)
    }
}

/// The hash of (`node`, `key`): xxh3 of the node id's 8 big-endian bytes
/// followed by the key.
///
/// ```
/// use pool_place::placement::keyed::node_key_hash;
/// use pool_proto::NodeId;
/// let h = node_key_hash(NodeId::from_u64(1), b"user:42");
/// assert_eq!(h, node_key_hash(NodeId::from_u64(1), b"user:42"));
/// assert_ne!(h, node_key_hash(NodeId::from_u64(2), b"user:42"));
/// ```
pub fn node_key_hash(node: NodeId, key: &[u8]) -> u64 {
    Canonical::new(key).hash(node)
}

/// Maps a 64-bit hash to a float strictly inside (0, 1): the top 53 bits,
/// centred in their interval, so `ln(u)` is finite and negative.
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// The rendezvous score of `node` with `weight` for `key`: `-weight / ln(u)`.
/// Higher wins. A weight that is not positive scores 0 (never wins against a
/// positive weight).
pub fn score(node: NodeId, weight: f64, key: &[u8]) -> f64 {
    score_of_hash(weight, node_key_hash(node, key))
}

/// [`score`] from the (node, key) hash.
fn score_of_hash(weight: f64, h: u64) -> f64 {
    if weight <= 0.0 || weight.is_nan() {
        return 0.0;
    }
    -weight / unit(h).ln()
}

/// The position in `nodes` of the node that `key` maps to, or `None` if
/// `nodes` is empty. Ties (astronomically rare) go to the higher node id, so
/// the answer does not depend on the order of `nodes`.
pub fn pick_index(key: &[u8], nodes: impl IntoIterator<Item = (NodeId, f64)>) -> Option<usize> {
    best(key, nodes).map(|(i, _)| i)
}

/// The node that `key` maps to among `nodes` (each with its weight, e.g. its
/// capacity), or `None` if there is none.
///
/// ```
/// use pool_place::placement::keyed::pick;
/// use pool_proto::NodeId;
/// let nodes: Vec<(NodeId, f64)> = (1..=4).map(|n| (NodeId::from_u64(n), 1.0)).collect();
/// let owner = pick(b"user:42", nodes.clone()).unwrap();
/// // Another node leaving does not move the key.
/// let leaving = nodes.iter().find(|&&(n, _)| n != owner).unwrap().0;
/// let rest = nodes.iter().copied().filter(|&(n, _)| n != leaving);
/// assert_eq!(pick(b"user:42", rest), Some(owner));
/// ```
pub fn pick(key: &[u8], nodes: impl IntoIterator<Item = (NodeId, f64)>) -> Option<NodeId> {
    best(key, nodes).map(|(_, n)| n)
}

/// Position and id of the highest-scoring node.
fn best(key: &[u8], nodes: impl IntoIterator<Item = (NodeId, f64)>) -> Option<(usize, NodeId)> {
    let mut bytes = Canonical::new(key);
    let mut best: Option<(usize, f64, NodeId)> = None;
    for (i, (node, weight)) in nodes.into_iter().enumerate() {
        let s = score_of_hash(weight, bytes.hash(node));
        let better = match best {
            None => true,
            Some((_, bs, bn)) => s.total_cmp(&bs).then(node.cmp(&bn)).is_gt(),
        };
        if better {
            best = Some((i, s, node));
        }
    }
    best.map(|(i, _, n)| (i, n))
}
