//! Failure detection (DESIGN.md "Failure detection"): a pure state machine
//! that owns, for each connected node, when the master last heard from it,
//! and decides when a node is down — at once when its connection closes, or
//! when it has been silent for `node-timeout` (default 3 s). Time is an
//! argument; the async shell feeds events in, sleeps until
//! [`FailureDetector::next_deadline`], calls [`FailureDetector::tick`], and
//! broadcasts the [`DownEvent`]s it gets back.
//!
//! A node declared down is forgotten, so it is reported exactly once; if the
//! same incarnation comes back it must register again.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use pool_proto::{DownReason, NodeId};

#[cfg(test)]
mod tests;

/// Default silence after which a node is declared down: six missed reports
/// at the default 500 ms interval, so a node that is merely busy (its
/// control plane runs apart from its processes) is not declared dead, while
/// a hung node is seen in seconds instead of OTP's 60 s `net_ticktime`.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// A node the detector declared down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownEvent {
    /// The node.
    pub node: NodeId,
    /// Why: `ConnectionClosed` or `Timeout`.
    pub reason: DownReason,
}

/// The failure detector: last-heard times and the deadlines they imply.
///
/// ```
/// use std::time::{Duration, Instant};
/// use pool_master::failure::FailureDetector;
/// use pool_proto::{DownReason, NodeId};
///
/// let t0 = Instant::now();
/// let mut fd = FailureDetector::new(Duration::from_secs(3));
/// let node = NodeId::from_u64(7);
/// fd.register(node, t0);
/// fd.on_report(node, t0 + Duration::from_secs(1));
/// assert_eq!(fd.next_deadline(), Some(t0 + Duration::from_secs(4)));
/// assert!(fd.tick(t0 + Duration::from_millis(3999)).is_empty());
/// let down = fd.tick(t0 + Duration::from_secs(4));
/// assert_eq!(down[0].node, node);
/// assert_eq!(down[0].reason, DownReason::Timeout);
/// assert!(fd.tick(t0 + Duration::from_secs(10)).is_empty()); // reported once
/// ```
#[derive(Clone, Debug)]
pub struct FailureDetector {
    /// Silence after which a node is down.
    timeout: Duration,
    /// When each live node was last heard from.
    last_heard: HashMap<NodeId, Instant>,
    /// The same, ordered by time, so the earliest deadline is found (and
    /// expired nodes are popped) in O(log n) even with thousands of nodes
    /// reporting every 500 ms.
    by_time: BTreeSet<(Instant, NodeId)>,
}

impl Default for FailureDetector {
    fn default() -> Self {
        FailureDetector::new(DEFAULT_NODE_TIMEOUT)
    }
}

impl FailureDetector {
    /// A detector that declares a node down after `node_timeout` of silence.
    pub fn new(node_timeout: Duration) -> Self {
        FailureDetector {
            timeout: node_timeout,
            last_heard: HashMap::new(),
            by_time: BTreeSet::new(),
        }
    }

    /// The silence after which a node is declared down.
    pub fn node_timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts watching a node that connected at `now` (its first deadline is
    /// `now + node_timeout`). Registering a node already watched just counts
    /// as hearing from it. Returns true if the node was new.
    pub fn register(&mut self, node: NodeId, now: Instant) -> bool {
        let new = !self.last_heard.contains_key(&node);
        self.heard(node, now);
        new
    }

    /// A report (or any sign of life) from `node` at `now`. Returns false if
    /// the node is not watched (never registered, or already declared down):
    /// the shell should then not treat it as live.
    pub fn on_report(&mut self, node: NodeId, now: Instant) -> bool {
        if !self.last_heard.contains_key(&node) {
            return false;
        }
        self.heard(node, now);
        true
    }

    /// Records `now` as the last time `node` was heard. Time never goes back
    /// for a node: an older `now` (events handled out of order) is ignored.
    fn heard(&mut self, node: NodeId, now: Instant) {
        if let Some(old) = self.last_heard.get(&node).copied() {
            if now <= old {
                return;
            }
            self.by_time.remove(&(old, node));
        }
        self.last_heard.insert(node, now);
        self.by_time.insert((now, node));
    }

    /// The node's connection to the master closed: it is down at once.
    /// `None` if it was not watched (already down, or never registered).
    pub fn on_disconnect(&mut self, node: NodeId) -> Option<DownEvent> {
        self.forget(node).then_some(DownEvent {
            node,
            reason: DownReason::ConnectionClosed,
        })
    }

    /// Stops watching a node without declaring it down (it left gracefully,
    /// or the shell removed it for another reason). Returns whether it was
    /// watched.
    pub fn forget(&mut self, node: NodeId) -> bool {
        match self.last_heard.remove(&node) {
            Some(t) => {
                self.by_time.remove(&(t, node));
                true
            }
            None => false,
        }
    }

    /// Declares down every node silent for `node_timeout` or more at `now`,
    /// oldest silence first, and stops watching them. A silence of exactly
    /// `node_timeout` counts, so that a shell waking at
    /// [`next_deadline`](Self::next_deadline) always makes progress.
    pub fn tick(&mut self, now: Instant) -> Vec<DownEvent> {
        let mut down = Vec::new();
        while let Some(&(t, node)) = self.by_time.first() {
            if t.checked_add(self.timeout).is_some_and(|d| d > now) {
                break;
            }
            self.by_time.pop_first();
            self.last_heard.remove(&node);
            down.push(DownEvent {
                node,
                reason: DownReason::Timeout,
            });
        }
        down
    }

    /// The earliest instant at which [`tick`](Self::tick) will declare a
    /// node down if nothing is heard before; `None` when no node is watched.
    pub fn next_deadline(&self) -> Option<Instant> {
        let &(t, _) = self.by_time.first()?;
        Some(t.checked_add(self.timeout).unwrap_or(t))
    }

    /// When `node` was last heard from, if it is watched.
    pub fn last_heard(&self, node: NodeId) -> Option<Instant> {
        self.last_heard.get(&node).copied()
    }

    /// Whether `node` is watched (registered and not declared down).
    pub fn contains(&self, node: NodeId) -> bool {
        self.last_heard.contains_key(&node)
    }

    /// Number of watched nodes.
    pub fn len(&self) -> usize {
        self.last_heard.len()
    }

    /// True when no node is watched.
    pub fn is_empty(&self) -> bool {
        self.last_heard.is_empty()
    }
}
