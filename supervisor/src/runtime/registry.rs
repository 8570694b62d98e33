//! Local names (OTP's `register`, `whereis`, `unregister`): a name maps to
//! one live local process, a process has at most one name, and the name is
//! dropped when the process exits. The map is kept twice — name → pid here,
//! and the name in the process's own record — so that the exit sequence
//! finds the name without a search.

use pool_proto::Pid;

use super::{Runtime, lock};
use crate::error::Error;

impl Runtime {
    /// Registers `pid` (a live local process) under `name`. Fails if the
    /// name is taken or the process already has a name (OTP `badarg`).
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), Error> {
        let proc = self.get(pid).ok_or(Error::NoProc { pid })?;
        let mut names = lock(&self.inner.names);
        if let Some(holder) = names.get(name) {
            return Err(Error::NameTaken {
                name: name.to_owned(),
                holder: *holder,
            });
        }
        let mut st = proc.lock();
        if st.exiting {
            return Err(Error::NoProc { pid });
        }
        if let Some(old) = &st.name {
            return Err(Error::AlreadyNamed {
                pid,
                name: old.clone(),
            });
        }
        st.name = Some(name.to_owned());
        names.insert(name.to_owned(), pid);
        Ok(())
    }

    /// Removes a local name.
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        let pid = lock(&self.inner.names)
            .remove(name)
            .ok_or_else(|| Error::NotRegistered {
                name: name.to_owned(),
            })?;
        if let Some(p) = self.get(pid) {
            p.lock().name = None;
        }
        Ok(())
    }

    /// The process registered under `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        lock(&self.inner.names).get(name).copied()
    }

    /// Every local name.
    pub fn registered(&self) -> Vec<(String, Pid)> {
        let mut v: Vec<_> = lock(&self.inner.names)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// Drops `name` of exiting process `pid` (its exit sequence), unless
    /// the name already belongs to someone else.
    pub(super) fn drop_name(&self, name: &str, pid: Pid) {
        let mut names = lock(&self.inner.names);
        if names.get(name) == Some(&pid) {
            names.remove(name);
        }
    }
}
