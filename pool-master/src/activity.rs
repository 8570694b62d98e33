//! What the dashboard shows over time: a short load history per node (one
//! sample a second, in a ring buffer), nodes that went down lately (greyed
//! out with their reason), and a bounded log of recent events — nodes up and
//! down, application starts and failures, child restarts, placements
//! summarised per second, and operations made over HTTP. Events are kept in
//! three bounded buffers — alerts (nodes down, apps failed or pending),
//! placement summaries, and the rest — so that chatter never pushes out
//! what an operator must see.
//!
//! Plain data like the rest of the pool state: time is an argument (wall
//! clock milliseconds, since the dashboard shows clock times), nothing here
//! does I/O, and every collection is bounded, so a pool that runs for months
//! or a burst of a million spawns costs the same memory as a quiet one.

use std::collections::{BTreeMap, HashMap, VecDeque};

use pool_proto::{DownReason, LoadReport, NodeId, NodeInfo, NodeStatus};
use serde::Serialize;

#[cfg(test)]
mod tests;

/// Milliseconds between two history samples: the dashboard redraws once a
/// second, so finer samples would never be seen.
pub(crate) const HISTORY_STEP_MS: u64 = 1000;

/// Samples kept per node: five minutes at one a second, the "last minutes"
/// an operator compares a node against (10 KB per node).
pub(crate) const HISTORY_LEN: usize = 300;

/// Nodes that get a history at most: 5 MB of samples. A pool larger than
/// this cannot be read card by card anyway; its other nodes show their
/// current load without a chart.
pub(crate) const MAX_HISTORY_NODES: usize = 512;

/// Events kept of each class but placements: more than a screen of the
/// events feed; older ones are in the logs. Alerts (nodes down, apps
/// failed or pending) have a buffer of their own, so that no amount of
/// other events pushes them out.
pub(crate) const MAX_EVENTS: usize = 200;

/// Placement summaries kept: at most one a second, so a minute of
/// chatter, in a buffer of their own, so that a spawn storm never pushes
/// the events that matter out.
pub(crate) const MAX_PLACEMENT_EVENTS: usize = 60;

/// How long a node that went down stays on the dashboard: as long as its
/// history would have stayed on the chart.
pub(crate) const DOWN_VISIBLE_MS: u64 = HISTORY_LEN as u64 * HISTORY_STEP_MS;

/// Down nodes shown at most (the most recent ones): a whole rack going
/// down must not bury the live nodes under grey cards.
pub(crate) const MAX_DOWN_SHOWN: usize = 32;

/// Placements made within this window are summarised as one event ("placed
/// 300 spawns: w1 100 · w2 100 · w3 100"), so a burst is one line, not 300.
pub(crate) const PLACEMENT_WINDOW_MS: u64 = 1000;

/// The window of the "in the last minute" counters.
const MINUTE_MS: u64 = 60_000;

/// One history sample of a node. Serialised as an array, `[t, score, procs,
/// cpu, out, in]`, to keep the dashboard's poll small.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Sample(
    /// When, ms since the Unix epoch (master clock).
    pub(crate) u64,
    /// Placement score: load per unit of capacity.
    pub(crate) f32,
    /// Processes on the node (saturating).
    pub(crate) u32,
    /// The node's own CPU use, percent of one core.
    pub(crate) f32,
    /// Frames sent to other nodes per second since the previous sample.
    pub(crate) f32,
    /// Frames received from other nodes per second since the previous sample.
    pub(crate) f32,
);

impl Sample {
    /// When it was taken.
    pub(crate) fn t(&self) -> u64 {
        self.0
    }
}

/// The traffic counters of a report at one instant, for rates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counters {
    /// When they were read (ms).
    at: u64,
    /// `LoadReport::frames_out`.
    frames_out: u64,
    /// `LoadReport::frames_in`.
    frames_in: u64,
}

/// A live node's history.
#[derive(Clone, Debug, Default)]
struct History {
    /// Oldest first, at most [`HISTORY_LEN`].
    samples: VecDeque<Sample>,
    /// The counters at the previous sample.
    last: Option<Counters>,
}

/// A node that went down, kept for a while for the dashboard.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DownNode {
    /// Its last status line (load, processes, labels, ...), as it was.
    #[serde(flatten)]
    pub(crate) status: NodeStatus,
    /// Why it went down, in words.
    pub(crate) reason: String,
    /// The reason's code (`connection_closed`, `timeout`, `left`, `replaced`).
    pub(crate) reason_code: &'static str,
    /// When (ms since the epoch).
    pub(crate) down_at_ms: u64,
    /// Its history up to then.
    #[serde(skip)]
    pub(crate) history: Vec<Sample>,
}

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EventKind {
    /// A worker became live.
    NodeUp,
    /// A worker was declared down (or left).
    NodeDown,
    /// An application root started (or started again on another node).
    AppStarted,
    /// An application failed: its root gave up or could not start.
    AppFailed,
    /// An application's root could not start now; it is retried.
    AppPending,
    /// An application was stopped on request.
    AppStopped,
    /// A supervisor restarted a child.
    ChildRestarted,
    /// Spawns placed (summarised per [`PLACEMENT_WINDOW_MS`]).
    Placement,
    /// An operation made over the HTTP API (spawn, kill, tree start/stop).
    Api,
}

impl EventKind {
    /// Every kind, in the order the dashboard's filter lists them.
    pub(crate) const ALL: [EventKind; 9] = [
        EventKind::NodeDown,
        EventKind::AppFailed,
        EventKind::AppPending,
        EventKind::NodeUp,
        EventKind::AppStarted,
        EventKind::AppStopped,
        EventKind::ChildRestarted,
        EventKind::Api,
        EventKind::Placement,
    ];

    /// Its name on the wire (`node_down`, ...).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventKind::NodeUp => "node_up",
            EventKind::NodeDown => "node_down",
            EventKind::AppStarted => "app_started",
            EventKind::AppFailed => "app_failed",
            EventKind::AppPending => "app_pending",
            EventKind::AppStopped => "app_stopped",
            EventKind::ChildRestarted => "child_restarted",
            EventKind::Placement => "placement",
            EventKind::Api => "api",
        }
    }

    /// The kind named `name`, if any.
    pub(crate) fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The buffer its events are kept in.
    fn class(self) -> EventClass {
        match self {
            EventKind::NodeDown | EventKind::AppFailed | EventKind::AppPending => EventClass::Alert,
            EventKind::Placement => EventClass::Placement,
            _ => EventClass::Other,
        }
    }
}

/// The three event buffers: each drops its own oldest, never another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventClass {
    /// Nodes down, apps failed or pending: what an operator must see.
    Alert,
    /// Placement summaries: chatter.
    Placement,
    /// The rest.
    Other,
}

/// One line of the events feed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Event {
    /// Increasing number: the dashboard asks for the events after the last
    /// one it has.
    pub(crate) seq: u64,
    /// When (ms since the epoch).
    pub(crate) t_ms: u64,
    /// What kind.
    pub(crate) kind: EventKind,
    /// The node concerned, by name, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    /// The tree (application) concerned, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tree: Option<String>,
    /// The line itself.
    pub(crate) text: String,
}

/// Placements of the current window, not yet an event.
#[derive(Clone, Debug, Default)]
struct PlacementBatch {
    /// When the window opened.
    since: u64,
    /// Placements per strategy.
    strategies: BTreeMap<String, u64>,
    /// Placements per node name.
    nodes: BTreeMap<String, u64>,
}

/// Counts per second over the last minute.
#[derive(Clone, Debug, Default)]
struct PerSecond {
    /// (second since the epoch, count), oldest first, at most 60 entries.
    buckets: VecDeque<(u64, u64)>,
}

impl PerSecond {
    fn add(&mut self, now_ms: u64, n: u64) {
        let sec = now_ms / 1000;
        match self.buckets.back_mut() {
            Some((s, c)) if *s == sec => *c += n,
            _ => self.buckets.push_back((sec, n)),
        }
        self.prune(now_ms);
    }

    fn prune(&mut self, now_ms: u64) {
        let oldest = now_ms.saturating_sub(MINUTE_MS) / 1000;
        while self.buckets.front().is_some_and(|(s, _)| *s <= oldest) {
            self.buckets.pop_front();
        }
    }

    /// The count over the last minute at `now_ms`.
    fn last_minute(&self, now_ms: u64) -> u64 {
        let oldest = now_ms.saturating_sub(MINUTE_MS) / 1000;
        self.buckets
            .iter()
            .filter(|(s, _)| *s > oldest)
            .map(|(_, c)| c)
            .sum()
    }
}

/// The dashboard's memory of the pool.
#[derive(Clone, Debug, Default)]
pub(crate) struct Activity {
    /// Live workers' histories.
    history: HashMap<NodeId, History>,
    /// Workers that went down lately, most recent last.
    down: VecDeque<DownNode>,
    /// Recent alerts (nodes down, apps failed or pending), oldest first,
    /// at most [`MAX_EVENTS`].
    alerts: VecDeque<Event>,
    /// Recent other events but placements, oldest first, at most
    /// [`MAX_EVENTS`].
    events: VecDeque<Event>,
    /// Recent placement summaries, oldest first, at most
    /// [`MAX_PLACEMENT_EVENTS`].
    placement_events: VecDeque<Event>,
    /// Number of the next event.
    next_seq: u64,
    /// The placements of the current window.
    batch: Option<PlacementBatch>,
    /// Child restarts per second.
    restarts: PerSecond,
    /// Spawns placed per second.
    placements: PerSecond,
}

impl Activity {
    /// Appends an event to its class's buffer, dropping that buffer's
    /// oldest beyond its bound.
    fn push(
        &mut self,
        now_ms: u64,
        kind: EventKind,
        node: Option<&str>,
        tree: Option<&str>,
        text: String,
    ) {
        self.next_seq += 1;
        let (buf, max) = match kind.class() {
            EventClass::Alert => (&mut self.alerts, MAX_EVENTS),
            EventClass::Placement => (&mut self.placement_events, MAX_PLACEMENT_EVENTS),
            EventClass::Other => (&mut self.events, MAX_EVENTS),
        };
        buf.push_back(Event {
            seq: self.next_seq,
            t_ms: now_ms,
            kind,
            node: node.map(str::to_owned),
            tree: tree.map(str::to_owned),
            text,
        });
        while buf.len() > max {
            buf.pop_front();
        }
    }

    /// A worker became live. A down card of the same name goes away: the
    /// node is back (as a new incarnation, or the same one after fencing).
    pub(crate) fn node_up(&mut self, info: &NodeInfo, now_ms: u64) {
        self.flush_placements(now_ms, true);
        self.history.entry(info.id).or_default();
        self.down
            .retain(|d| d.status.id != info.id && d.status.name != info.name);
        let labels: Vec<String> = info
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!(", {}", labels.join(" "))
        };
        self.push(
            now_ms,
            EventKind::NodeUp,
            Some(&info.name),
            None,
            format!(
                "{} is up ({}, capacity {}{labels})",
                info.name, info.addr, info.capacity
            ),
        );
    }

    /// A worker went down; `last` is its last status line. It stays on the
    /// dashboard for [`DOWN_VISIBLE_MS`] with its history.
    pub(crate) fn node_down(
        &mut self,
        last: NodeStatus,
        reason: &DownReason,
        apps: &[String],
        now_ms: u64,
    ) {
        self.flush_placements(now_ms, true);
        let history = self
            .history
            .remove(&last.id)
            .map(|h| h.samples.into_iter().collect())
            .unwrap_or_default();
        let name = last.name.clone();
        let text = match reason {
            DownReason::Left => format!("{name} left the pool"),
            other => format!("{name} is down: {other}"),
        };
        let text = if apps.is_empty() {
            text
        } else {
            format!(
                "{text}; restarting the root of {} elsewhere",
                apps.join(", ")
            )
        };
        self.down.retain(|d| d.status.name != name);
        self.down.push_back(DownNode {
            status: last,
            reason: reason.to_string(),
            reason_code: down_code(reason),
            down_at_ms: now_ms,
            history,
        });
        while self.down.len() > MAX_DOWN_SHOWN {
            self.down.pop_front();
        }
        self.push(now_ms, EventKind::NodeDown, Some(&name), None, text);
    }

    /// Takes one sample of every live worker: its status line and its last
    /// report (for the traffic rates). Also closes a placement window that
    /// is over and forgets down nodes shown long enough.
    pub(crate) fn sample<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (&'a NodeStatus, Option<&'a LoadReport>)>,
        now_ms: u64,
    ) {
        for (status, report) in nodes {
            if !self.history.contains_key(&status.id) && self.history.len() >= MAX_HISTORY_NODES {
                continue;
            }
            let h = self.history.entry(status.id).or_default();
            let counters = report.map(|r| Counters {
                at: now_ms,
                frames_out: r.frames_out,
                frames_in: r.frames_in,
            });
            let (out, inn) = match (h.last, counters) {
                (Some(prev), Some(cur)) if cur.at > prev.at => {
                    let secs = (cur.at - prev.at) as f64 / 1000.0;
                    (
                        cur.frames_out.saturating_sub(prev.frames_out) as f64 / secs,
                        cur.frames_in.saturating_sub(prev.frames_in) as f64 / secs,
                    )
                }
                _ => (0.0, 0.0),
            };
            if counters.is_some() {
                h.last = counters;
            }
            h.samples.push_back(Sample(
                now_ms,
                round3(status.score),
                u32::try_from(status.procs).unwrap_or(u32::MAX),
                round1(status.self_cpu),
                out.round() as f32,
                inn.round() as f32,
            ));
            while h.samples.len() > HISTORY_LEN {
                h.samples.pop_front();
            }
        }
        self.flush_placements(now_ms, false);
        let keep_after = now_ms.saturating_sub(DOWN_VISIBLE_MS);
        self.down.retain(|d| d.down_at_ms > keep_after);
        self.restarts.prune(now_ms);
        self.placements.prune(now_ms);
    }

    /// Forgets the history of a node that is no member any more without
    /// having been declared down (a hidden node, say).
    pub(crate) fn forget(&mut self, id: NodeId) {
        self.history.remove(&id);
    }

    /// Records `n` spawns placed by `strategy` on `nodes` (names, one per
    /// placement).
    pub(crate) fn placed<'a>(
        &mut self,
        strategy: &str,
        nodes: impl IntoIterator<Item = &'a str>,
        now_ms: u64,
    ) {
        self.flush_placements(now_ms, false);
        let batch = self.batch.get_or_insert_with(|| PlacementBatch {
            since: now_ms,
            ..PlacementBatch::default()
        });
        let mut n = 0;
        for node in nodes {
            *batch.nodes.entry(node.to_owned()).or_default() += 1;
            n += 1;
        }
        *batch.strategies.entry(strategy.to_owned()).or_default() += n;
        self.placements.add(now_ms, n);
    }

    /// Turns the placement window into an event once it is over (or now,
    /// with `force`, so that it comes before the event that follows).
    fn flush_placements(&mut self, now_ms: u64, force: bool) {
        let due = self
            .batch
            .as_ref()
            .is_some_and(|b| force || now_ms.saturating_sub(b.since) >= PLACEMENT_WINDOW_MS);
        if !due {
            return;
        }
        let Some(b) = self.batch.take() else { return };
        let total: u64 = b.nodes.values().sum();
        if total == 0 {
            return;
        }
        let strategies: Vec<&str> = b.strategies.keys().map(String::as_str).collect();
        let mut nodes: Vec<(&String, &u64)> = b.nodes.iter().collect();
        nodes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let spread: Vec<String> = nodes.iter().map(|(n, c)| format!("{n} {c}")).collect();
        let text = if total == 1 {
            format!(
                "placed 1 spawn on {} ({})",
                nodes[0].0,
                strategies.join(", ")
            )
        } else {
            format!(
                "placed {total} spawns ({}): {}",
                strategies.join(", "),
                spread.join(" · ")
            )
        };
        let node = (nodes.len() == 1).then(|| nodes[0].0.clone());
        self.push(b.since, EventKind::Placement, node.as_deref(), None, text);
    }

    /// An application root runs (generation `generation`) on `node`.
    pub(crate) fn app_started(&mut self, app: &str, generation: u64, node: &str, now_ms: u64) {
        self.flush_placements(now_ms, true);
        let text = if generation <= 1 {
            format!("tree {app} started on {node}")
        } else {
            format!("tree {app} root started on {node} (generation {generation})")
        };
        self.push(now_ms, EventKind::AppStarted, Some(node), Some(app), text);
    }

    /// An application failed with `reason`.
    pub(crate) fn app_failed(&mut self, app: &str, reason: &str, now_ms: u64) {
        self.flush_placements(now_ms, true);
        self.push(
            now_ms,
            EventKind::AppFailed,
            None,
            Some(app),
            format!("tree {app} failed: {reason}"),
        );
    }

    /// An application's root could not start for a reason that may pass:
    /// it is pending, retried with backoff.
    pub(crate) fn app_pending(&mut self, app: &str, reason: &str, now_ms: u64) {
        self.flush_placements(now_ms, true);
        self.push(
            now_ms,
            EventKind::AppPending,
            None,
            Some(app),
            format!("tree {app} pending: {reason}"),
        );
    }

    /// An application was forgotten on request (`tree rm`).
    pub(crate) fn app_removed(&mut self, app: &str, now_ms: u64) {
        self.flush_placements(now_ms, true);
        self.push(
            now_ms,
            EventKind::AppStopped,
            None,
            Some(app),
            format!("tree {app} removed"),
        );
    }

    /// An application was stopped on request.
    pub(crate) fn app_stopped(&mut self, app: &str, now_ms: u64) {
        self.flush_placements(now_ms, true);
        self.push(
            now_ms,
            EventKind::AppStopped,
            None,
            Some(app),
            format!("tree {app} stopped"),
        );
    }

    /// A supervisor of `app` restarted `child`, now on `node` (if it runs).
    pub(crate) fn child_restarted(
        &mut self,
        app: &str,
        supervisor: &str,
        child: &str,
        node: Option<&str>,
        reason: &str,
        now_ms: u64,
    ) {
        self.flush_placements(now_ms, true);
        self.restarts.add(now_ms, 1);
        let path = if supervisor.is_empty() || supervisor == app {
            format!("{app}/{child}")
        } else if supervisor.starts_with(&format!("{app}/")) {
            format!("{supervisor}/{child}")
        } else {
            format!("{app}/{supervisor}/{child}")
        };
        let text = match node {
            Some(n) => format!("{path} restarted on {n} (was: {reason})"),
            None => format!("{path} could not be restarted (was: {reason})"),
        };
        self.push(now_ms, EventKind::ChildRestarted, node, Some(app), text);
    }

    /// An operation made over the HTTP API.
    pub(crate) fn api(
        &mut self,
        node: Option<&str>,
        tree: Option<&str>,
        text: String,
        now_ms: u64,
    ) {
        self.flush_placements(now_ms, true);
        self.push(now_ms, EventKind::Api, node, tree, text);
    }

    /// The events after `after` (all kept ones for 0), oldest first.
    #[cfg(test)]
    pub(crate) fn events_after(&self, after: u64) -> Vec<Event> {
        self.events_of(after, &EventKind::ALL)
    }

    /// The events of the given kinds after `after`, oldest first (the
    /// three buffers merged by number).
    pub(crate) fn events_of(&self, after: u64, kinds: &[EventKind]) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .alerts
            .iter()
            .chain(&self.events)
            .chain(&self.placement_events)
            .filter(|e| e.seq > after && kinds.contains(&e.kind))
            .cloned()
            .collect();
        out.sort_by_key(|e| e.seq);
        out
    }

    /// The samples of live node `id` taken after `since` (ms).
    pub(crate) fn history_since(&self, id: NodeId, since: u64) -> Vec<Sample> {
        self.history
            .get(&id)
            .map(|h| {
                h.samples
                    .iter()
                    .filter(|s| s.t() > since)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The newest sample of live node `id`.
    pub(crate) fn last_sample(&self, id: NodeId) -> Option<Sample> {
        self.history.get(&id)?.samples.back().copied()
    }

    /// Nodes down lately, most recent first.
    pub(crate) fn down_nodes(&self) -> impl Iterator<Item = &DownNode> {
        self.down.iter().rev()
    }

    /// Child restarts over the minute before `now_ms`.
    pub(crate) fn restarts_last_minute(&self, now_ms: u64) -> u64 {
        self.restarts.last_minute(now_ms)
    }

    /// Spawns placed over the minute before `now_ms`.
    pub(crate) fn placements_last_minute(&self, now_ms: u64) -> u64 {
        self.placements.last_minute(now_ms)
    }

    /// The number of the last event (0 if none yet).
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq
    }
}

/// The machine name of a down reason, as metrics label it.
pub(crate) fn down_code(reason: &DownReason) -> &'static str {
    match reason {
        DownReason::ConnectionClosed => "connection_closed",
        DownReason::Timeout => "timeout",
        DownReason::Left => "left",
        DownReason::Replaced => "replaced",
    }
}

/// Rounded to 3 decimals: the chart cannot show more, the JSON is shorter.
fn round3(x: f64) -> f32 {
    if x.is_finite() {
        ((x * 1000.0).round() / 1000.0) as f32
    } else {
        0.0
    }
}

/// Rounded to 1 decimal.
fn round1(x: f32) -> f32 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}
