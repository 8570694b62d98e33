//! Placement: which live node(s) a spawn goes to (Erlang's `pool:get_node`,
//! DESIGN.md "Placement"). It owns the strategies — least-loaded with
//! placement accounting (water-filling), two-choices, round-robin, random and
//! keyed (weighted rendezvous hashing, in [`keyed`]) — the constraint filters
//! (the function to spawn, labels, a named node, an exclude list; hidden
//! nodes never) and the errors that say which constraint left nothing.
//!
//! Everything is a function of the [`LoadTable`] and a caller-supplied RNG:
//! no I/O, no clock.

pub mod keyed;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt::Write as _;

use pool_proto::{
    ErrorCode, LabelReq, NodeId, PlaceQuery, PlacementStrategy, RemoteError, WasmName,
};
use rand::Rng;

use crate::load_table::{Entry, LoadTable};

/// The master's default strategy (`--placement`): least-loaded with placement
/// accounting. It measures best on both experiments of PERF.md "Placement
/// quality" (`cargo run --release -p pool-benches --bin placement_sim`): a
/// burst of 32 over 8 idle nodes puts exactly the ideal 4 on each, the
/// uneven burst water-fills the idle node, and its steady-state completion
/// time is the lowest of all strategies.
pub const DEFAULT_STRATEGY: PlacementStrategy = PlacementStrategy::LeastLoaded;

/// Most placements one query may ask for: one query is answered in
/// O(count × nodes), and a larger burst can be asked in several queries.
pub const MAX_PLACE_COUNT: u32 = 10_000;

/// How many nodes an error message lists before "and N more".
const MAX_LISTED: usize = 8;

/// Why a placement query found no node. Each message names the constraint
/// that left nothing and, where it helps, what the pool has instead.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlaceError {
    /// The pool has no worker node at all.
    #[error("no nodes in the pool: start a worker with pool-worker --master ADDR")]
    NoNodes,
    /// The named node is not in the pool.
    #[error("node {name} is not live (live nodes: {live})")]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The live worker nodes, for the message.
        live: String,
    },
    /// The named node is a hidden node (poolctl), which hosts no placements.
    #[error("node {name} is a hidden node (a client such as poolctl) and never hosts placements")]
    HiddenNode {
        /// The name asked for.
        name: String,
    },
    /// The named node is in the query's exclude list.
    #[error("node {name} is both asked for and excluded by the query")]
    ExcludedNode {
        /// The name asked for.
        name: String,
    },
    /// The named node lacks a required label.
    #[error("node {name} does not have label {label} (its labels: {labels})")]
    NodeLacksLabel {
        /// The name asked for.
        name: String,
        /// The first constraint it fails.
        label: LabelReq,
        /// Its labels, for the message.
        labels: String,
    },
    /// No live node has this label.
    #[error("no live node has label {label} (live nodes: {live})")]
    NoLabelMatch {
        /// The constraint no node meets.
        label: LabelReq,
        /// The live worker nodes with their labels.
        live: String,
    },
    /// Every label is held by some node, but no node holds them all.
    #[error("no live node has all of the labels {labels} (live nodes: {live})")]
    NoLabelCombination {
        /// The constraints, comma-separated.
        labels: String,
        /// The live worker nodes with their labels.
        live: String,
    },
    /// Every node that meets the other constraints is excluded.
    #[error("every node that fits is excluded by the query: {nodes}")]
    AllExcluded {
        /// The excluded nodes that would have fit.
        nodes: String,
    },
    /// Every node that meets the constraints refuses spawns because its
    /// machine is short of memory.
    #[error(
        "every node that fits refuses spawns under memory pressure: {nodes} \
         (limit {limit_percent:.0}%); free memory or add a worker"
    )]
    MemoryPressure {
        /// The refusing nodes with their memory use.
        nodes: String,
        /// The threshold, percent.
        limit_percent: f64,
    },
    /// No live worker registers the function(s) the query names.
    #[error(
        "no live node registers {functions} (live nodes: {live}): start a worker that registers it, or check the spelling"
    )]
    NoFunction {
        /// `function "f"`, or `all of the functions "f", "g"`.
        functions: String,
        /// The live worker nodes (with what each lacks, when several
        /// functions are asked for).
        live: String,
    },
    /// The named node does not register the function the query names.
    #[error("node {name} does not register {functions} (live nodes that do: {have})")]
    NodeLacksFunction {
        /// The name asked for.
        name: String,
        /// `function "f"` (or several).
        functions: String,
        /// The live worker nodes that register them all.
        have: String,
    },
    /// Some live nodes register the function and some have the labels,
    /// but none has both.
    #[error("no live node has both {functions} and the labels {labels} (live nodes: {live})")]
    NoFunctionWithLabels {
        /// `function "f"` (or several).
        functions: String,
        /// The label constraints, comma-separated.
        labels: String,
        /// The live worker nodes, each with what it lacks.
        live: String,
    },
    /// The query names a WebAssembly function and no live worker runs
    /// them.
    #[error(
        "no live node runs WebAssembly functions (live nodes: {live}): start a worker with the wasm backend (the stock pool-worker has it)"
    )]
    NoWasmNode {
        /// The live worker nodes.
        live: String,
    },
    /// The query asks for more placements than one answer may carry.
    #[error(
        "count {count} is over the limit of {max} placements per query; ask in several queries"
    )]
    TooMany {
        /// Placements asked for.
        count: u32,
        /// [`MAX_PLACE_COUNT`].
        max: u32,
    },
}

impl PlaceError {
    /// The wire error code for this failure.
    ///
    /// ```
    /// use pool_place::placement::PlaceError;
    /// use pool_proto::ErrorCode;
    /// assert_eq!(PlaceError::NoNodes.code(), ErrorCode::NoNode);
    /// ```
    pub fn code(&self) -> ErrorCode {
        match self {
            PlaceError::NoNodes
            | PlaceError::NoLabelMatch { .. }
            | PlaceError::NoLabelCombination { .. }
            | PlaceError::NodeLacksLabel { .. }
            | PlaceError::ExcludedNode { .. }
            | PlaceError::AllExcluded { .. }
            | PlaceError::NoFunction { .. }
            | PlaceError::NoWasmNode { .. }
            | PlaceError::NoFunctionWithLabels { .. } => ErrorCode::NoNode,
            // The node is up but runs other code: asking it again fails the
            // same way (as its own refusal of the spawn would).
            PlaceError::NodeLacksFunction { .. } => ErrorCode::UnknownFunction,
            PlaceError::UnknownNode { .. } | PlaceError::HiddenNode { .. } => {
                ErrorCode::UnknownNode
            }
            PlaceError::MemoryPressure { .. } => ErrorCode::Overloaded,
            PlaceError::TooMany { .. } => ErrorCode::BadRequest,
        }
    }
}

impl From<PlaceError> for RemoteError {
    fn from(e: PlaceError) -> Self {
        RemoteError::new(e.code(), e.to_string())
    }
}

/// One eligible node during a query: a scratch copy of what scoring needs,
/// so that a query that does not commit can simulate its own placements
/// without touching the table.
#[derive(Clone, Copy, Debug)]
struct Cand {
    /// Index of the node's row in the table.
    row: usize,
    /// The node.
    id: NodeId,
    /// `max(run_queue, busy_threads)` at its last report.
    base: f64,
    /// Processes at its last report.
    procs: u64,
    /// Placements since the report, this query's own included.
    pending: u32,
    /// Capacity (≥ 1).
    cap: f64,
}

impl Cand {
    /// Load per capacity, as [`LoadTable::score`] computes it.
    fn score(&self, accounting: bool) -> f64 {
        if accounting {
            (self.base + f64::from(self.pending)) / self.cap
        } else {
            self.base / self.cap
        }
    }

    /// Processes per capacity, the first tie-break.
    fn procs_per_cap(&self, accounting: bool) -> f64 {
        let pending = if accounting {
            u64::from(self.pending)
        } else {
            0
        };
        (self.procs + pending) as f64 / self.cap
    }

    /// Score then processes per capacity: lower is less loaded.
    fn cmp_load(&self, other: &Cand, accounting: bool) -> Ordering {
        self.score(accounting)
            .total_cmp(&other.score(accounting))
            .then_with(|| {
                self.procs_per_cap(accounting)
                    .total_cmp(&other.procs_per_cap(accounting))
            })
    }
}

/// What chooses among the candidates.
#[derive(Clone, Copy, Debug)]
enum Choice<'q> {
    /// One of the load/rotation strategies.
    Strategy(PlacementStrategy),
    /// Consistent hashing on this key.
    Keyed(&'q str),
}

impl LoadTable {
    /// Answers a placement query: `query.count` nodes (a node may appear
    /// several times), chosen one after another among the live worker nodes
    /// that meet the query's constraints (registering `function`, all
    /// `labels`, the named `node`, not in `exclude`, not under memory
    /// pressure).
    ///
    /// The strategy is keyed hashing when `query.key` is set (every placement
    /// goes to the key's node), else `query.strategy`, else
    /// `default_strategy`. Each placement counts on its node before the next
    /// is chosen, so a least-loaded burst water-fills the emptiest nodes.
    /// With `query.commit` the placements stay counted in the table until
    /// each node's next report; without it the table is left untouched and
    /// the answer is what a committed query would have chosen now. A count of
    /// 0 checks the constraints and returns no node.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pool_place::load_table::LoadTable;
    /// use pool_proto::{LoadReport, NodeId, NodeInfo, NodeKind, PlaceQuery, PlacementStrategy};
    ///
    /// let now = Instant::now();
    /// let mut table = LoadTable::default();
    /// for (n, run_queue) in [(1, 4), (2, 0)] {
    ///     let id = NodeId::from_u64(n);
    ///     let info = NodeInfo { id, name: format!("w{n}"), addr: String::new(),
    ///                           kind: NodeKind::Worker, capacity: 1, labels: Default::default() };
    ///     table.add_node(info, now);
    ///     table.on_report(id, LoadReport { run_queue, capacity: 1, ..Default::default() }, now);
    /// }
    /// let query = PlaceQuery { count: 6, commit: true, ..Default::default() };
    /// let nodes = table
    ///     .place(&query, PlacementStrategy::LeastLoaded, &mut rand::rng())
    ///     .unwrap();
    /// // w2 is filled up to w1's level (4) first, then they alternate.
    /// let on_w2 = nodes.iter().filter(|&&id| id == NodeId::from_u64(2)).count();
    /// assert_eq!(on_w2, 5);
    /// ```
    pub fn place<R: Rng + ?Sized>(
        &mut self,
        query: &PlaceQuery,
        default_strategy: PlacementStrategy,
        rng: &mut R,
    ) -> Result<Vec<NodeId>, PlaceError> {
        self.place_requiring(query, &[], default_strategy, rng)
    }

    /// [`place`](Self::place) among the nodes that register every function
    /// of `functions` as well as `query.function` (a tree's root needs all
    /// the functions of its tree on its node). With no function at all, as
    /// `place`.
    pub fn place_requiring<R: Rng + ?Sized>(
        &mut self,
        query: &PlaceQuery,
        functions: &[&str],
        default_strategy: PlacementStrategy,
        rng: &mut R,
    ) -> Result<Vec<NodeId>, PlaceError> {
        if query.count > MAX_PLACE_COUNT {
            return Err(PlaceError::TooMany {
                count: query.count,
                max: MAX_PLACE_COUNT,
            });
        }
        let mut required: Vec<&str> = functions.to_vec();
        if let Some(f) = query.function.as_deref()
            && !required.contains(&f)
        {
            required.push(f);
        }
        let mut cands = self.candidates(query, &required)?;
        let choice = match &query.key {
            Some(key) => Choice::Keyed(key),
            None => Choice::Strategy(query.strategy.unwrap_or(default_strategy)),
        };
        let accounting = self.config.accounting;
        // Working copies of the rotation cursors; written back on commit.
        let mut tie_cursor = self.tie_cursor;
        let mut rr_cursor = self.rr_cursor;
        // The key's node does not depend on load, so hash once.
        let keyed_pick = match choice {
            Choice::Keyed(key) => {
                keyed::pick_index(key.as_bytes(), cands.iter().map(|c| (c.id, c.cap)))
            }
            Choice::Strategy(_) => None,
        };

        let mut chosen = Vec::with_capacity(query.count as usize);
        for _ in 0..query.count {
            let i = match choice {
                Choice::Keyed(_) => keyed_pick.unwrap_or(0),
                Choice::Strategy(PlacementStrategy::LeastLoaded) => {
                    let i = least_loaded(&cands, tie_cursor, accounting);
                    tie_cursor = Some(cands[i].id);
                    i
                }
                Choice::Strategy(PlacementStrategy::TwoChoices) => {
                    two_choices(&cands, rng, accounting)
                }
                Choice::Strategy(PlacementStrategy::RoundRobin) => {
                    let i = next_after(&cands, rr_cursor);
                    rr_cursor = Some(cands[i].id);
                    i
                }
                Choice::Strategy(PlacementStrategy::Random) => rng.random_range(0..cands.len()),
            };
            // Count it before choosing the next one (water-filling).
            cands[i].pending = cands[i].pending.saturating_add(1);
            chosen.push(cands[i].id);
        }

        if query.commit {
            for c in &cands {
                self.entries[c.row].pending = c.pending;
            }
            self.tie_cursor = tie_cursor;
            self.rr_cursor = rr_cursor;
        }
        Ok(chosen)
    }

    /// The live worker nodes that meet the query's constraints and register
    /// every function of `required`, or why there is none.
    fn candidates(&self, query: &PlaceQuery, required: &[&str]) -> Result<Vec<Cand>, PlaceError> {
        let workers = || self.entries.iter().filter(|e| e.is_worker());
        let capable = |e: &Entry| required.iter().all(|f| e.has_function(f));
        let wanted = || describe_functions(required);
        if workers().next().is_none() {
            return Err(PlaceError::NoNodes);
        }
        let cand = |row: usize| {
            let e = &self.entries[row];
            Cand {
                row,
                id: e.info.id,
                base: e.base_load,
                procs: e.report.as_ref().map_or(0, |r| r.processes),
                pending: e.pending,
                cap: e.capacity(),
            }
        };

        // A named node: check each constraint on it, so the error names the
        // one that fails.
        if let Some(name) = &query.node {
            let Some(row) = self.entries.iter().position(|e| &e.info.name == name) else {
                return Err(PlaceError::UnknownNode {
                    name: name.clone(),
                    live: list_nodes(workers(), |_| String::new()),
                });
            };
            let e = &self.entries[row];
            if !e.is_worker() {
                return Err(PlaceError::HiddenNode { name: name.clone() });
            }
            if query.exclude.contains(&e.info.id) {
                return Err(PlaceError::ExcludedNode { name: name.clone() });
            }
            if !capable(e) {
                return Err(PlaceError::NodeLacksFunction {
                    name: name.clone(),
                    functions: wanted(),
                    have: list_nodes(workers().filter(|e| capable(e)), |_| String::new()),
                });
            }
            if let Some(label) = query.labels.iter().find(|l| !l.matches(&e.info.labels)) {
                return Err(PlaceError::NodeLacksLabel {
                    name: name.clone(),
                    label: label.clone(),
                    labels: format_labels(e),
                });
            }
            if self.pressure_of(e).is_some() {
                return Err(self.memory_error(std::iter::once(e)));
            }
            return Ok(vec![cand(row)]);
        }

        // Otherwise one pass keeps the nodes that pass every filter; only
        // when none does are the filters replayed to find which one emptied
        // the set (the error path can afford several passes).
        let labelled = |e: &Entry| query.labels.iter().all(|l| l.matches(&e.info.labels));
        let included = |e: &Entry| !query.exclude.contains(&e.info.id);
        let fits = |e: &Entry| e.is_worker() && capable(e) && labelled(e) && included(e);
        let cands: Vec<Cand> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| fits(e) && self.pressure_of(e).is_none())
            .map(|(row, _)| cand(row))
            .collect();
        if !cands.is_empty() {
            return Ok(cands);
        }
        // The function first: with no node that has it, the labels do not
        // matter. Then labels that some node has but no node with the
        // function: each node with what it lacks.
        let wasm_wanted = required.iter().any(|f| WasmName::is_wasm(f));
        if wasm_wanted && !workers().any(|e| e.wasm) {
            return Err(PlaceError::NoWasmNode {
                live: list_nodes(workers(), |_| String::new()),
            });
        }
        if !workers().any(capable) {
            let several = required.len() > 1;
            return Err(PlaceError::NoFunction {
                functions: wanted(),
                live: list_nodes(workers(), |e| {
                    if several {
                        format!(" (lacks {})", lacking_functions(e, required))
                    } else {
                        String::new()
                    }
                }),
            });
        }
        if workers().any(labelled) && !workers().any(|e| capable(e) && labelled(e)) {
            return Err(PlaceError::NoFunctionWithLabels {
                functions: wanted(),
                labels: join(query.labels.iter().map(ToString::to_string)),
                live: list_nodes(workers(), |e| {
                    let mut lacks = vec![lacking_functions(e, required)];
                    lacks.extend(
                        query
                            .labels
                            .iter()
                            .filter(|l| !l.matches(&e.info.labels))
                            .map(ToString::to_string),
                    );
                    lacks.retain(|l| !l.is_empty());
                    format!(" (lacks {})", lacks.join(", "))
                }),
            });
        }
        if !workers().any(labelled) {
            let live = list_nodes(workers(), |e| format!(" {}", format_labels(e)));
            return Err(
                match query
                    .labels
                    .iter()
                    .find(|l| !workers().any(|e| l.matches(&e.info.labels)))
                {
                    Some(label) => PlaceError::NoLabelMatch {
                        label: label.clone(),
                        live,
                    },
                    None => PlaceError::NoLabelCombination {
                        labels: join(query.labels.iter().map(ToString::to_string)),
                        live,
                    },
                },
            );
        }
        if !workers().any(fits) {
            return Err(PlaceError::AllExcluded {
                nodes: list_nodes(workers().filter(|e| capable(e) && labelled(e)), |_| {
                    String::new()
                }),
            });
        }
        Err(self.memory_error(workers().filter(|e| fits(e))))
    }

    /// The memory-pressure error for these (refusing) nodes.
    fn memory_error<'a>(&self, nodes: impl Iterator<Item = &'a Entry>) -> PlaceError {
        PlaceError::MemoryPressure {
            nodes: list_nodes(nodes, |e| {
                format!(" mem {:.0}%", e.mem_ratio().unwrap_or(0.0) * 100.0)
            }),
            limit_percent: self.config.mem_refuse_above.unwrap_or(1.0) * 100.0,
        }
    }
}

/// Least-loaded: the lowest score; among equal scores the fewest processes
/// per capacity; among those the first after `cursor` in id order (wrapping),
/// so equal nodes take turns instead of the lowest id always winning.
fn least_loaded(cands: &[Cand], cursor: Option<NodeId>, accounting: bool) -> usize {
    // Scan in rotation order, starting after the cursor: then "first
    // among equals" is the rotation tie-break, and only a strictly lower
    // (score, processes per capacity) replaces the best so far.
    let n = cands.len();
    let start = cursor.map_or(0, |c| cands.partition_point(|x| x.id <= c));
    let key = |c: &Cand| (c.score(accounting), c.procs_per_cap(accounting));
    let mut best = start % n;
    let mut best_key = key(&cands[best]);
    for i in (start + 1..n).chain(0..start) {
        let k = key(&cands[i]);
        if k.0.total_cmp(&best_key.0).then(k.1.total_cmp(&best_key.1)) == Ordering::Less {
            best = i;
            best_key = k;
        }
    }
    best
}

/// Two-choices: two distinct candidates at random, the less loaded wins; on a
/// full tie the first sampled (itself random) wins.
fn two_choices<R: Rng + ?Sized>(cands: &[Cand], rng: &mut R, accounting: bool) -> usize {
    let n = cands.len();
    if n == 1 {
        return 0;
    }
    let a = rng.random_range(0..n);
    let mut b = rng.random_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    if cands[b].cmp_load(&cands[a], accounting) == Ordering::Less {
        b
    } else {
        a
    }
}

/// Round-robin: the first candidate after `cursor` in id order, wrapping.
/// Keyed by id rather than position, so joins and leaves do not skip or
/// repeat a node.
fn next_after(cands: &[Cand], cursor: Option<NodeId>) -> usize {
    let i = cursor.map_or(0, |c| cands.partition_point(|x| x.id <= c));
    if i == cands.len() { 0 } else { i }
}

/// `function "f"`, or `all of the functions "f", "g"`.
fn describe_functions(functions: &[&str]) -> String {
    match functions {
        [one] => format!("function {one:?}"),
        several => format!(
            "all of the functions {}",
            several
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The functions of `required` that node `e` does not register, quoted and
/// comma-separated.
fn lacking_functions(e: &Entry, required: &[&str]) -> String {
    required
        .iter()
        .filter(|f| !e.has_function(f))
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A node's labels as `k=v,k2=v2`, or `(no labels)`.
fn format_labels(e: &Entry) -> String {
    if e.info.labels.is_empty() {
        "(no labels)".to_owned()
    } else {
        join(e.info.labels.iter().map(|(k, v)| format!("{k}={v}")))
    }
}

/// Comma-joined.
fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// `w1<detail>, w2<detail>, ... and N more`, or `none`.
fn list_nodes<'a>(
    nodes: impl Iterator<Item = &'a Entry>,
    detail: impl Fn(&Entry) -> String,
) -> String {
    let mut out = String::new();
    let mut more = 0usize;
    for (i, e) in nodes.enumerate() {
        if i >= MAX_LISTED {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&e.info.name);
        out.push_str(&detail(e));
    }
    if more > 0 {
        let _ = write!(out, " and {more} more");
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}
