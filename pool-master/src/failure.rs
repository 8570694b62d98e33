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
//!
//! Silence is only evidence if the master could have heard. [`check`]
//! (what the master runs, where [`tick`] only applies deadlines) adds two
//! rules (docs/semantics.md, "Partitions and a paused master"):
//!
//! - **A paused master** (SIGSTOP, a VM stall): the shell checks at least
//!   every [`check_interval`] (node-timeout / 4); a gap between two checks
//!   longer than [`pause_threshold`] (node-timeout / 2) means the master
//!   did not run, and reports may sit unread in its sockets. Every node
//!   gets a fresh grace period (last heard := now) instead of a verdict.
//!   `Instant` is `CLOCK_MONOTONIC` on Linux, which keeps counting while
//!   the process is stopped, so the gap is visible.
//! - **A master in the minority**: when a node's silence expires while
//!   fewer than half of the live workers (at least two) were heard
//!   *recently* (within [`recent_window`]), the master is the one cut off;
//!   it declares none of the silent ones down by timeout (a closed
//!   connection still counts) until it hears a majority again. Recently,
//!   not within node-timeout: a partition silences the nodes it cuts off
//!   at the same moment, but their deadlines expire one by one (their last
//!   reports were a few ms apart), and judged against the whole
//!   node-timeout the first to expire would find the others still
//!   "heard" and be declared down alone, then the next, and so on.
//!
//! [`check`]: FailureDetector::check
//! [`tick`]: FailureDetector::tick
//! [`check_interval`]: FailureDetector::check_interval
//! [`pause_threshold`]: FailureDetector::pause_threshold
//! [`recent_window`]: FailureDetector::recent_window

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

/// What one [`FailureDetector::check`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deadlines applied as they are: these nodes are down (maybe none).
    Judged(Vec<DownEvent>),
    /// The master itself did not run for `gap` (more than the pause
    /// threshold): every node got a fresh grace period; none is down.
    Paused {
        /// Time between this check and the one before.
        gap: Duration,
    },
    /// Only `heard` of the `live` watched workers were heard within the
    /// recent window, fewer than half: the master is the one cut off. The
    /// `silent` ones stay watched, not declared down.
    Minority {
        /// Workers heard within the recent window.
        heard: usize,
        /// Workers watched.
        live: usize,
        /// Workers past their deadline.
        silent: usize,
    },
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
    /// How often nodes report (their `Welcome` says so): the recent window
    /// is at least two of these.
    report_interval: Duration,
    /// When each live node was last heard from.
    last_heard: HashMap<NodeId, Instant>,
    /// The same, ordered by time, so the earliest deadline is found (and
    /// expired nodes are popped) in O(log n) even with thousands of nodes
    /// reporting every 500 ms.
    by_time: BTreeSet<(Instant, NodeId)>,
    /// When [`check`](Self::check) last ran while a node was watched: the
    /// gap to the next check tells whether the master itself ran.
    last_check: Option<Instant>,
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
            report_interval: node_timeout / 6,
            last_heard: HashMap::new(),
            by_time: BTreeSet::new(),
            last_check: None,
        }
    }

    /// The same detector for nodes that report every `interval` (the
    /// default assumes six reports per node timeout, as 500 ms and 3 s).
    pub fn with_report_interval(mut self, interval: Duration) -> Self {
        self.report_interval = interval;
        self
    }

    /// A worker heard within this window is one the master hears *now*:
    /// half the node timeout, but at least two report intervals (one late
    /// report is no silence) and at most the node timeout. A worker
    /// outside it has missed at least two reports in a row.
    pub fn recent_window(&self) -> Duration {
        (self.timeout / 2)
            .max(self.report_interval * 2)
            .min(self.timeout)
    }

    /// How often the shell must [`check`](Self::check) while nodes are
    /// watched: a quarter of the node timeout, so that a check that comes
    /// a whole interval late is still no pause.
    pub fn check_interval(&self) -> Duration {
        self.timeout / 4
    }

    /// A gap between two checks longer than this (half the node timeout)
    /// means the master did not run. Why half: a node is judged on the
    /// last node-timeout; when the master missed more than half of that
    /// window, more than half of the evidence may be unread in its
    /// sockets. Below it, a node declared down was silent for at least
    /// half the timeout while the master ran (three report intervals at
    /// the defaults).
    pub fn pause_threshold(&self) -> Duration {
        self.timeout / 2
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

    /// The master's check at `now`: [`tick`](Self::tick) with the two
    /// rules of the module doc. First, a gap since the last check longer
    /// than [`pause_threshold`](Self::pause_threshold) gives every node a
    /// fresh grace period ([`Verdict::Paused`]). Then, if a node is past
    /// its deadline while fewer than half of the watched workers (two or
    /// more) were heard within the [`recent_window`](Self::recent_window),
    /// nobody is declared down ([`Verdict::Minority`]): the
    /// master is the one cut off. With one worker there is no majority to
    /// measure: its silence is judged as usual. Otherwise the expired nodes
    /// are down ([`Verdict::Judged`]).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use pool_master::failure::{FailureDetector, Verdict};
    /// use pool_proto::NodeId;
    ///
    /// let t0 = Instant::now();
    /// let mut fd = FailureDetector::new(Duration::from_secs(2));
    /// fd.register(NodeId::from_u64(1), t0);
    /// assert_eq!(fd.check(t0), Verdict::Judged(vec![]));
    /// // The master was stopped for 5 s: no verdict, a fresh grace period.
    /// let later = t0 + Duration::from_secs(5);
    /// assert_eq!(fd.check(later), Verdict::Paused { gap: Duration::from_secs(5) });
    /// assert_eq!(fd.last_heard(NodeId::from_u64(1)), Some(later));
    /// ```
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.last_heard.is_empty() {
            // Nothing watched: a long sleep of the shell is no pause.
            self.last_check = None;
            return Verdict::Judged(Vec::new());
        }
        let before = self.last_check.replace(match self.last_check {
            Some(t) if t > now => t,
            _ => now,
        });
        if let Some(gap) = before.map(|t| now.saturating_duration_since(t))
            && gap > self.pause_threshold()
        {
            self.refresh_all(now);
            return Verdict::Paused { gap };
        }
        let silent = self
            .by_time
            .iter()
            .take_while(|(t, _)| self.expired(*t, now))
            .count();
        let live = self.last_heard.len();
        if silent > 0 && live >= 2 {
            let recent = now.checked_sub(self.recent_window());
            let heard = self
                .by_time
                .iter()
                .rev()
                .take_while(|(t, _)| recent.is_none_or(|r| *t >= r))
                .count();
            if heard * 2 < live {
                return Verdict::Minority {
                    heard,
                    live,
                    silent,
                };
            }
        }
        Verdict::Judged(self.tick(now))
    }

    /// Whether a node last heard at `t` is past its deadline at `now`.
    fn expired(&self, t: Instant, now: Instant) -> bool {
        t.checked_add(self.timeout).is_none_or(|d| d <= now)
    }

    /// Counts every watched node as heard at `now` (a fresh grace period).
    fn refresh_all(&mut self, now: Instant) {
        let nodes: Vec<NodeId> = self.last_heard.keys().copied().collect();
        for node in nodes {
            self.heard(node, now);
        }
    }

    /// When the shell should check next, at `now`: the earliest deadline,
    /// but no later than [`check_interval`](Self::check_interval) after the
    /// last check (the pause rule needs regular checks), and never a
    /// deadline already past (a minority keeps silent nodes watched);
    /// `None` when no node is watched.
    pub fn next_check(&self, now: Instant) -> Option<Instant> {
        let deadline = self.next_deadline()?;
        let regular = self.last_check.unwrap_or(now) + self.check_interval();
        Some(if deadline > now {
            deadline.min(regular)
        } else {
            regular.max(now)
        })
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
