//! The master's load table: for each live node, its [`NodeInfo`], its last
//! [`LoadReport`] and when it arrived, and the placements the master made
//! since that report. It owns the load score (DESIGN.md "Load score") and the
//! `poolctl nodes` view; the strategies that read it live in
//! [`crate::placement`].
//!
//! The same table, fed from rows ([`LoadTable::node_rows`],
//! [`LoadTable::apply_load_row`]) instead of reports, is a node's copy of
//! the master's (see [`crate::copy`]).
//!
//! The table is plain data: time is an argument, nothing here does I/O.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use pool_proto::{
    LoadReport, LoadRow, NodeId, NodeInfo, NodeKind, NodeRow, NodeStatus, Placed, UnreachableFrom,
    WasmName,
};

#[cfg(test)]
mod tests;

/// Memory use (used / total) above which a node refuses placements by
/// default: past 95 % a new process is more likely to push the machine into
/// swapping or the OOM killer than to get work done, and the node's own run
/// queue says nothing about that.
pub const DEFAULT_MEM_REFUSE_ABOVE: f64 = 0.95;

/// How the table scores nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadTableConfig {
    /// A node whose machine memory use (`mem_used / mem_total`, 0.0–1.0) is
    /// above this refuses placements; `None` never refuses.
    pub mem_refuse_above: Option<f64>,
    /// Count the placements made since a node's last report on top of that
    /// report (water-filling). Always on in the master; the placement
    /// simulation turns it off to measure the "stale table" strategies.
    pub accounting: bool,
}

impl Default for LoadTableConfig {
    fn default() -> Self {
        LoadTableConfig {
            mem_refuse_above: Some(DEFAULT_MEM_REFUSE_ABOVE),
            accounting: true,
        }
    }
}

/// One node's row.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Name, capacity, labels, kind, as the node joined (capacity updated by
    /// its reports).
    pub(crate) info: NodeInfo,
    /// The last report, if any arrived yet.
    pub(crate) report: Option<LoadReport>,
    /// When the last report arrived (master's clock), or when the node was
    /// added if it has not reported yet: the age shown by `poolctl nodes`.
    pub(crate) heard_at: Instant,
    /// The node's own load at the last report: `max(run_queue,
    /// busy_threads)`; 0 before the first report.
    pub(crate) base_load: f64,
    /// Placements the master made on this node since its last report. A
    /// report replaces them, since its run queue now includes them.
    pub(crate) pending: u32,
    /// The functions it registers (`Join.functions`): a placement that
    /// names a function chooses only nodes holding it. Sorted, for the
    /// error messages that list them.
    pub(crate) functions: BTreeSet<String>,
    /// It runs WebAssembly functions (`Join.wasm`): a placement that names
    /// a wasm function (`MODULE:EXPORT`) chooses only such nodes.
    pub(crate) wasm: bool,
}

impl Entry {
    /// Capacity used for scoring: never 0, so a node that claims capacity 0
    /// scores like a 1-core node instead of dividing by zero.
    pub(crate) fn capacity(&self) -> f64 {
        f64::from(self.info.capacity.max(1))
    }

    /// Whether the node can spawn `function`: it registers it, or it is a
    /// wasm function name and the node runs wasm.
    pub(crate) fn has_function(&self, function: &str) -> bool {
        self.functions.contains(function) || (self.wasm && WasmName::is_wasm(function))
    }

    /// Processes on the node: the last report's count plus the placements
    /// made since.
    pub(crate) fn processes(&self) -> u64 {
        self.report.as_ref().map_or(0, |r| r.processes) + u64::from(self.pending)
    }

    /// Machine memory in use, 0.0–1.0, if the node reported it.
    pub(crate) fn mem_ratio(&self) -> Option<f64> {
        let r = self.report.as_ref()?;
        (r.mem_total > 0).then(|| r.mem_used as f64 / r.mem_total as f64)
    }

    /// Whether this node may ever be chosen (hidden nodes never are).
    pub(crate) fn is_worker(&self) -> bool {
        self.info.kind != NodeKind::Hidden
    }
}

/// The load table: latest reports plus the placements made since each.
///
/// Nodes are kept sorted by [`NodeId`], so every iteration (and therefore
/// every tie-break and the round-robin rotation) is deterministic.
///
/// ```
/// use std::time::Instant;
/// use pool_place::load_table::LoadTable;
/// use pool_proto::{LoadReport, NodeId, NodeInfo, NodeKind};
///
/// let now = Instant::now();
/// let mut table = LoadTable::default();
/// let id = NodeId::from_u64(1);
/// table.add_node(
///     NodeInfo { id, name: "w1".into(), addr: "127.0.0.1:7500".into(),
///                kind: NodeKind::Worker, capacity: 2, labels: Default::default() },
///     now,
/// );
/// table.on_report(id, LoadReport { run_queue: 3, capacity: 2, ..Default::default() }, now);
/// assert_eq!(table.score(id), Some(1.5)); // 3 runnable / 2 cores
/// table.record_placement(id);
/// assert_eq!(table.score(id), Some(2.0)); // one more placed since the report
/// ```
#[derive(Clone, Debug, Default)]
pub struct LoadTable {
    /// Scoring settings.
    pub(crate) config: LoadTableConfig,
    /// Rows sorted by node id.
    pub(crate) entries: Vec<Entry>,
    /// The ids of `entries`, in the same order: a row is found by a binary
    /// search of these (8 bytes a step) rather than of the rows (hundreds
    /// of bytes apart, so at 10,000 nodes each step of the master's search
    /// for a report's row was a cache miss).
    ids: Vec<NodeId>,
    /// The node least-loaded chose last: among equal scores the next one
    /// after it (in id order, wrapping) wins, so repeated bursts over equal
    /// nodes do not always start on the same node.
    pub(crate) tie_cursor: Option<NodeId>,
    /// The node round-robin chose last.
    pub(crate) rr_cursor: Option<NodeId>,
}

impl LoadTable {
    /// An empty table with these settings.
    pub fn new(config: LoadTableConfig) -> Self {
        LoadTable {
            config,
            ..LoadTable::default()
        }
    }

    /// The settings.
    pub fn config(&self) -> &LoadTableConfig {
        &self.config
    }

    /// Index of `id` in `entries`.
    pub(crate) fn index(&self, id: NodeId) -> Result<usize, usize> {
        self.ids.binary_search(&id)
    }

    /// Mutable row of `id`.
    fn entry_mut(&mut self, id: NodeId) -> Option<&mut Entry> {
        let i = self.index(id).ok()?;
        Some(&mut self.entries[i])
    }

    /// Row of `id`.
    pub(crate) fn entry(&self, id: NodeId) -> Option<&Entry> {
        self.index(id).ok().map(|i| &self.entries[i])
    }

    /// Adds a node that joined (at `now`), with no report yet: it scores as
    /// load 0 plus the placements made on it. Returns false if the node was
    /// already there, in which case its name, address, labels, kind and
    /// capacity are updated and its load is kept.
    ///
    /// Hidden nodes may be added (they then show in [`status`](Self::status))
    /// but placement never chooses them.
    pub fn add_node(&mut self, info: NodeInfo, now: Instant) -> bool {
        match self.index(info.id) {
            Ok(i) => {
                self.entries[i].info = info;
                false
            }
            Err(i) => {
                self.ids.insert(i, info.id);
                self.entries.insert(
                    i,
                    Entry {
                        info,
                        report: None,
                        heard_at: now,
                        base_load: 0.0,
                        pending: 0,
                        functions: BTreeSet::new(),
                        wasm: false,
                    },
                );
                true
            }
        }
    }

    /// Sets the functions node `id` registers (its `Join.functions`; a node
    /// added without them registers none). Returns false if the node is
    /// not in the table.
    pub fn set_functions(
        &mut self,
        id: NodeId,
        functions: impl IntoIterator<Item = String>,
    ) -> bool {
        match self.entry_mut(id) {
            Some(e) => {
                e.functions = functions.into_iter().collect();
                true
            }
            None => false,
        }
    }

    /// Sets whether node `id` runs WebAssembly functions (its `Join.wasm`;
    /// a node added without it does not). Returns false if the node is not
    /// in the table.
    pub fn set_wasm(&mut self, id: NodeId, wasm: bool) -> bool {
        match self.entry_mut(id) {
            Some(e) => {
                e.wasm = wasm;
                true
            }
            None => false,
        }
    }

    /// Removes a node that left or was declared down; returns its info.
    pub fn remove_node(&mut self, id: NodeId) -> Option<NodeInfo> {
        let i = self.index(id).ok()?;
        self.ids.remove(i);
        Some(self.entries.remove(i).info)
    }

    /// Takes a load report that arrived at `now`. It replaces the previous
    /// report and clears the placements counted since it (the node's run
    /// queue now includes them). A report whose `seq` is lower than the one
    /// held is out of date and ignored. A non-zero `capacity` in the report
    /// replaces the capacity the node joined with. Returns false if the node
    /// is unknown or the report was ignored.
    pub fn on_report(&mut self, id: NodeId, report: LoadReport, now: Instant) -> bool {
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        if e.report.as_ref().is_some_and(|old| report.seq < old.seq) {
            return false;
        }
        if report.capacity > 0 {
            e.info.capacity = report.capacity;
        }
        // The node's own signals only (DESIGN "Load score"): runnable
        // processes, or the threads its processes kept busy, whichever is
        // larger. Machine-wide CPU is shared by every node on the machine
        // and is kept for display only.
        let busy = f64::from(report.busy_threads);
        e.base_load = if busy.is_finite() {
            f64::from(report.run_queue).max(busy)
        } else {
            f64::from(report.run_queue)
        };
        e.report = Some(report);
        e.heard_at = now;
        e.pending = 0;
        true
    }

    /// Counts one placement on `id` until its next report. Returns false if
    /// the node is unknown.
    pub fn record_placement(&mut self, id: NodeId) -> bool {
        self.record_placements(id, 1)
    }

    /// Counts `n` placements on `id` until its next report (placements a
    /// node made on its copy and told the master of). Returns false if the
    /// node is unknown.
    pub fn record_placements(&mut self, id: NodeId, n: u32) -> bool {
        match self.entry_mut(id) {
            Some(e) => {
                e.pending = e.pending.saturating_add(n);
                true
            }
            None => false,
        }
    }

    /// Stops counting `n` of the placements counted on `id` (a copy's own,
    /// once the master's row counts them). Returns false if the node is
    /// unknown.
    pub fn forget_placements(&mut self, id: NodeId, n: u32) -> bool {
        match self.entry_mut(id) {
            Some(e) => {
                e.pending = e.pending.saturating_sub(n);
                true
            }
            None => false,
        }
    }

    /// The load of `id` as a copy of the table needs it.
    pub fn load_row(&self, id: NodeId) -> Option<LoadRow> {
        self.entry(id).map(load_row)
    }

    /// The whole row of `id`: what it is, what it can spawn, its load.
    pub fn node_row(&self, id: NodeId) -> Option<NodeRow> {
        self.entry(id).map(node_row)
    }

    /// Every row, in id order: a copy of the table.
    pub fn node_rows(&self) -> Vec<NodeRow> {
        self.entries.iter().map(node_row).collect()
    }

    /// Adds (or replaces) the node of a row from the master's table, at
    /// `now`: a copy's side of [`add_node`](Self::add_node),
    /// [`set_functions`](Self::set_functions) and [`set_wasm`](Self::set_wasm),
    /// with its load as [`apply_load_row`](Self::apply_load_row) sets it.
    pub fn apply_node_row(&mut self, row: NodeRow, now: Instant) {
        let NodeRow {
            info,
            functions,
            wasm,
            load,
        } = row;
        let id = info.id;
        self.add_node(info, now);
        self.set_functions(id, functions);
        self.set_wasm(id, wasm);
        self.apply_load_row(&load, now);
    }

    /// Sets the load of a node from a row of the master's table, at `now`:
    /// a copy's side of [`on_report`](Self::on_report). The row's pending
    /// placements replace the ones counted here. Returns false if the node
    /// is unknown.
    pub fn apply_load_row(&mut self, row: &LoadRow, now: Instant) -> bool {
        let Some(e) = self.entry_mut(row.node) else {
            return false;
        };
        if row.capacity > 0 {
            e.info.capacity = row.capacity;
        }
        e.base_load = if row.base_load.is_finite() {
            row.base_load.max(0.0)
        } else {
            0.0
        };
        // What scoring and the memory check read of a report.
        e.report = Some(LoadReport {
            processes: row.processes,
            mem_used: row.mem_used,
            mem_total: row.mem_total,
            capacity: row.capacity,
            ..LoadReport::default()
        });
        e.pending = row.pending;
        e.heard_at = now;
        true
    }

    /// A node's load: `max(run_queue, busy_threads)` at its last report, plus
    /// the placements since (when accounting is on).
    pub fn load(&self, id: NodeId) -> Option<f64> {
        self.entry(id).map(|e| self.load_of(e))
    }

    /// [`load`](Self::load) of a row.
    pub(crate) fn load_of(&self, e: &Entry) -> f64 {
        if self.config.accounting {
            e.base_load + f64::from(e.pending)
        } else {
            e.base_load
        }
    }

    /// A node's score: load per unit of capacity. Lower is better.
    pub fn score(&self, id: NodeId) -> Option<f64> {
        self.entry(id).map(|e| self.load_of(e) / e.capacity())
    }

    /// Placements made on `id` since its last report.
    pub fn pending(&self, id: NodeId) -> Option<u32> {
        self.entry(id).map(|e| e.pending)
    }

    /// The last report of `id`, if it reported yet.
    pub fn last_report(&self, id: NodeId) -> Option<&LoadReport> {
        self.entry(id)?.report.as_ref()
    }

    /// The node's info.
    pub fn info(&self, id: NodeId) -> Option<&NodeInfo> {
        self.entry(id).map(|e| &e.info)
    }

    /// The live node with this name.
    pub fn find_by_name(&self, name: &str) -> Option<NodeId> {
        self.entries
            .iter()
            .find(|e| e.info.name == name)
            .map(|e| e.info.id)
    }

    /// Whether `id` refuses placements because its machine's memory use is
    /// above the threshold; `Some(ratio)` if so.
    pub fn memory_pressure(&self, id: NodeId) -> Option<f64> {
        self.entry(id).and_then(|e| self.pressure_of(e))
    }

    /// [`memory_pressure`](Self::memory_pressure) of a row.
    pub(crate) fn pressure_of(&self, e: &Entry) -> Option<f64> {
        let limit = self.config.mem_refuse_above?;
        e.mem_ratio().filter(|&r| r > limit)
    }

    /// The nodes in the table, in id order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.entries.iter().map(|e| e.info.id)
    }

    /// Number of nodes (hidden ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What a placement answer carries for `id`: its id, name and address.
    pub fn placed(&self, id: NodeId) -> Option<Placed> {
        self.entry(id).map(|e| Placed {
            id,
            name: e.info.name.clone(),
            addr: e.info.addr.clone(),
            function: None,
        })
    }

    /// The `poolctl nodes` view at `now`: one line per node, in id order.
    /// `cpu` and `mem` are machine-wide (display only); `score` is the one
    /// placement uses, placements since the last report included.
    pub fn status(&self, now: Instant) -> Vec<NodeStatus> {
        // Who reported which node unreachable: each reporter's last report
        // lists the peers it could not connect to.
        let mut unreachable: HashMap<NodeId, Vec<UnreachableFrom>> = HashMap::new();
        for e in &self.entries {
            for u in e.report.iter().flat_map(|r| &r.unreachable) {
                unreachable
                    .entry(u.node)
                    .or_default()
                    .push(UnreachableFrom {
                        from: e.info.name.clone(),
                        cause: u.cause.clone(),
                        since_ms: u.since_ms,
                    });
            }
        }
        self.entries
            .iter()
            .map(|e| {
                let r = e.report.as_ref();
                NodeStatus {
                    name: e.info.name.clone(),
                    id: e.info.id,
                    addr: e.info.addr.clone(),
                    cpu: r.map_or(0.0, |r| r.cpu_percent),
                    mem: e.mem_ratio().map_or(0.0, |m| (m * 100.0) as f32),
                    procs: e.processes(),
                    score: self.load_of(e) / e.capacity(),
                    labels: e.info.labels.clone(),
                    capacity: e.info.capacity,
                    self_cpu: r.map_or(0.0, |r| r.self_cpu_percent),
                    run_queue: r.map_or(0, |r| r.run_queue),
                    report_age_ms: duration_ms(now.saturating_duration_since(e.heard_at)),
                    unreachable_from: unreachable.remove(&e.info.id).unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// The load part of a row.
fn load_row(e: &Entry) -> LoadRow {
    let r = e.report.as_ref();
    LoadRow {
        node: e.info.id,
        base_load: e.base_load,
        processes: r.map_or(0, |r| r.processes),
        pending: e.pending,
        capacity: e.info.capacity,
        mem_used: r.map_or(0, |r| r.mem_used),
        mem_total: r.map_or(0, |r| r.mem_total),
    }
}

/// A whole row.
fn node_row(e: &Entry) -> NodeRow {
    NodeRow {
        info: e.info.clone(),
        functions: e.functions.iter().cloned().collect(),
        wasm: e.wasm,
        load: load_row(e),
    }
}

/// Whole milliseconds, saturating.
fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
