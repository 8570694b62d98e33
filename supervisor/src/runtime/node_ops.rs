//! Node-level queries the pool needs for fencing and graceful stops.

use pool_proto::Pid;

use super::Runtime;

impl Runtime {
    /// Local processes linked to a process of another node (children this
    /// node hosts for supervisors elsewhere, among others).
    pub fn linked_to_other_nodes(&self) -> Vec<Pid> {
        let node = self.node();
        let mut out: Vec<Pid> = self
            .inner
            .procs
            .snapshot()
            .into_iter()
            .filter(|p| {
                let st = p.lock();
                !st.exiting && st.links.iter().any(|l| l.node() != node)
            })
            .map(|p| p.pid)
            .collect();
        out.sort();
        out
    }
}
