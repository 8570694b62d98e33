//! What `tree show` answers about an app: the view of a tree that does not
//! run (from its spec), the status and reason of the app at the top, and
//! the restart counts the master kept laid over the view. A leaf of
//! `apps`: it names nothing of its parent, only wire types.
//!
//! Restart counts: the master counts every `ChildRestarted` event per
//! child path (`app/sup/child`) and keeps the counts with the app, so
//! they survive a root restart, a failure and a master restart, where the
//! supervisors' own counts start again from zero. A child shows the larger
//! of the two. A supervisor's count is every restart it made (DESIGN.md
//! "Interfaces"): in a live view its own count (a group restart of
//! one_for_all is one restart, although each child's restart is an
//! event); in the view of a tree that does not run, the sum of its direct
//! children's counts, which is exact for one_for_one and counts each
//! child of a group restart.

use std::collections::BTreeMap;

use pool_proto::{AppStatus, ChildStatus, SupervisorSpec, TreeSpec, TreeView};

/// The tree view of a tree that does not run: every supervisor and child
/// stopped, no pids, no restarts.
pub(crate) fn stopped_view(spec: &TreeSpec) -> TreeView {
    fn sup_view(id: &str, sup: &SupervisorSpec) -> TreeView {
        TreeView {
            reason: None,
            id: id.to_owned(),
            strategy: Some(sup.strategy),
            pid: None,
            node: None,
            restarts: 0,
            status: ChildStatus::Stopped,
            children: Some(
                sup.children
                    .iter()
                    .map(|c| match &c.supervisor {
                        Some(nested) => sup_view(&c.id, nested),
                        None => TreeView {
                            reason: None,
                            id: c.id.clone(),
                            strategy: None,
                            pid: None,
                            node: None,
                            restarts: 0,
                            status: ChildStatus::Stopped,
                            children: None,
                        },
                    })
                    .collect(),
            ),
        }
    }
    sup_view(&spec.supervisor.id, &spec.supervisor)
}

/// The status an app's top entry shows: the app's own, in the words of a
/// child status, so that `tree show` and `tree ls` agree.
pub(crate) fn top_status(status: AppStatus) -> ChildStatus {
    match status {
        AppStatus::Running => ChildStatus::Running,
        AppStatus::Pending => ChildStatus::Pending,
        AppStatus::Failed => ChildStatus::Failed,
        AppStatus::Stopped => ChildStatus::Stopped,
    }
}

/// Puts the app's status and reason at the top of `view`.
pub(crate) fn set_top(view: &mut TreeView, status: AppStatus, reason: Option<&str>) {
    view.status = top_status(status);
    view.reason = reason.map(str::to_owned);
}

/// The key of a child's count: its supervisor's id path and its id.
pub(crate) fn child_path(supervisor: &str, child: &str) -> String {
    format!("{supervisor}/{child}")
}

/// Lays the kept `counts` (child path → restarts) over `view`, whose top
/// entry is the app's root: each child shows the larger of its count and
/// the view's. A supervisor keeps its own count in a `live` view (from the
/// root's node); in a view from the spec, it shows the sum over its direct
/// children.
pub(crate) fn overlay_restarts(view: &mut TreeView, counts: &BTreeMap<String, u64>, live: bool) {
    fn go(v: &mut TreeView, path: &str, counts: &BTreeMap<String, u64>, live: bool) {
        let own = match v.children.as_mut() {
            Some(children) => {
                let mut sum = 0;
                for c in children.iter_mut() {
                    let p = child_path(path, &c.id);
                    go(c, &p, counts, live);
                    sum += counts.get(&p).copied().unwrap_or(0);
                }
                if live { 0 } else { sum }
            }
            None => counts.get(path).copied().unwrap_or(0),
        };
        v.restarts = v.restarts.max(own);
    }
    let root = view.id.clone();
    go(view, &root, counts, live);
}
