//! Where application roots go: checking a submitted tree against the live
//! workers, choosing the node for a root, and placing every app that waits
//! for one. Pure, like the rest of `apps`: the members, the load table, the
//! randomness and the time are arguments; the pool state turns the
//! [`Assignment`]s made here into `StartApp` requests.

use std::collections::BTreeSet;
use std::time::Instant;

use pool_place::load_table::LoadTable;
use pool_proto::SUPERVISOR_FUNCTION;
use pool_proto::tree::{parse_tree_str, validate_tree};
use pool_proto::{ErrorCode, NodeId, PlaceQuery, PlacementStrategy, RemoteError, TreeSpec};
use rand::Rng;

use super::{Apps, Assignment, functions};
use crate::membership::Membership;

/// Why an app waits when no worker is live.
pub(crate) const NO_WORKER: &str =
    "no live worker to run the root: it starts when a worker joins (pool-worker --master ADDR)";

/// What choosing a root's node looks at: the members (to check a tree's
/// functions), the load table (which live workers register which
/// functions; a choice is committed there, so the root counts as load on
/// its node until the next report), and the randomness placement may use.
#[derive(Debug)]
pub(crate) struct RootChoice<'a, R: ?Sized> {
    /// The joined nodes.
    pub(crate) members: &'a Membership,
    /// The live nodes' load.
    pub(crate) table: &'a mut LoadTable,
    /// Randomness for the placement strategies.
    pub(crate) rng: &'a mut R,
}

impl<R: Rng + ?Sized> RootChoice<'_, R> {
    /// The node for a root of `spec`: the least-loaded live worker among
    /// those that register every function the tree names, or among all
    /// live workers if none registers them all (the tree then fails on its
    /// node with a message naming the function). `None` if no worker is
    /// live.
    pub(crate) fn choose(&mut self, spec: &TreeSpec) -> Option<NodeId> {
        let needed: BTreeSet<String> = functions(spec)
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| f != SUPERVISOR_FUNCTION)
            .collect();
        let needed: Vec<&str> = needed.iter().map(String::as_str).collect();
        let query = PlaceQuery {
            count: 1,
            strategy: Some(PlacementStrategy::LeastLoaded),
            commit: true,
            ..PlaceQuery::default()
        };
        // The same filter as every placement (`LoadTable::place_requiring`),
        // with all the tree's functions required at once.
        let first = self.table.place_requiring(
            &query,
            &needed,
            PlacementStrategy::LeastLoaded,
            &mut *self.rng,
        );
        let ids = match first {
            Ok(ids) => ids,
            Err(_) => self
                .table
                .place(&query, PlacementStrategy::LeastLoaded, &mut *self.rng)
                .ok()?,
        };
        ids.first().copied()
    }
}

impl Apps {
    /// Places every app waiting for a node at `now` (see [`Apps::waiting`]):
    /// each gets its next generation on the node `choice` picks. When no
    /// worker is live, every app waiting is pending ([`Apps::no_node`]):
    /// it tries again after its backoff, or when a node joins. Returns the
    /// assignments, in app id order, and whether an app became pending.
    pub(crate) fn schedule<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        mut choice: RootChoice<'_, R>,
    ) -> (Vec<Assignment>, bool) {
        let mut out = Vec::new();
        let mut pending = false;
        let waiting = self.waiting(now);
        for (i, id) in waiting.iter().enumerate() {
            let Some(spec) = self.get(id).map(|a| a.rec.spec.clone()) else {
                continue;
            };
            let Some(node) = choice.choose(&spec) else {
                // No worker at all: every app left waits.
                for id in &waiting[i..] {
                    pending |= self.no_node(id, NO_WORKER, now);
                }
                break;
            };
            out.extend(self.assign(id, node, choice.members.name_of(node)));
        }
        (out, pending)
    }

    /// `TreeStart`: checks the tree ([`check_tree`]), refuses an id that is
    /// running, records the app and assigns its root to the node `choice`
    /// picks.
    pub(crate) fn tree_start<R: Rng + ?Sized>(
        &mut self,
        spec: TreeSpec,
        source: Option<String>,
        text: Option<&str>,
        mut choice: RootChoice<'_, R>,
    ) -> Result<Assignment, RemoteError> {
        check_tree(&spec, source.as_deref(), text, choice.members)?;
        let id = spec.supervisor.id.clone();
        if self.is_running(&id) {
            let at = self
                .get(&id)
                .and_then(|a| a.rec.node)
                .and_then(|n| choice.members.name_of(n))
                .map(|n| format!(" on {n}"))
                .unwrap_or_default();
            return Err(RemoteError::new(
                ErrorCode::AlreadyRunning,
                format!(
                    "tree {id} is already running{at}: stop it first with `poolctl tree stop {id}`"
                ),
            ));
        }
        let Some(node) = choice.choose(&spec) else {
            return Err(RemoteError::new(
                ErrorCode::NoNode,
                "no live worker to run the tree's root: start a worker with pool-worker --master ADDR",
            ));
        };
        self.submit(spec, source);
        self.assign(&id, node, choice.members.name_of(node))
            .ok_or_else(|| RemoteError::new(ErrorCode::Internal, "the app vanished"))
    }
}

/// Checks a submitted tree: the spec rules, then every function against
/// the live workers. With `text` (the tree file), through the tree-file
/// parser, so the error names the file, the line and the field.
pub(crate) fn check_tree(
    spec: &TreeSpec,
    source: Option<&str>,
    text: Option<&str>,
    members: &Membership,
) -> Result<(), RemoteError> {
    let file = source.unwrap_or("<tree>");
    let known = |f: &str| f == SUPERVISOR_FUNCTION || members.function_known(f);
    let bad = |msg: String| Err(RemoteError::new(ErrorCode::BadSpec, msg));
    if let Some(text) = text {
        return match parse_tree_str(file, text, known) {
            Ok(parsed) if parsed.supervisor.id != spec.supervisor.id => bad(format!(
                "{file}: the tree's text has root id {:?} but the spec sent has {:?}: send the spec parsed from this text",
                parsed.supervisor.id, spec.supervisor.id
            )),
            Ok(_) => Ok(()),
            Err(e) => bad(format!(
                "{e} (live workers: {})",
                members.live_worker_names()
            )),
        };
    }
    if let Err(e) = validate_tree(spec) {
        return bad(format!("{file}: supervisor.{}: {e}", e.field()));
    }
    for (field, f) in functions(spec) {
        if !known(&f) {
            return bad(format!(
                "{file}: {field}: unknown function {f:?}: no live worker registers it (live workers: {}); check the spelling or start a worker that has it",
                members.live_worker_names()
            ));
        }
    }
    Ok(())
}
