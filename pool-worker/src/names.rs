//! Global names held by this node's processes: registration through a
//! watcher that releases the name when its holder dies, and the list the
//! node re-registers with every Join. A name another node registered for
//! one of our processes is watched the same way once the master asks
//! (`WatchName`): released when the process dies, listed at each Join.
//!
//! - **Owns** [`Globals`]: the names this node's processes hold.
//! - **Calls** the process runtime (the watchers are processes) and the
//!   master ([`MasterHandle`]: register, unregister, release).
//! - **Start-up**: made by `node.rs`; the master link reads
//!   [`Globals::held`] through the node at each join (re-registration
//!   after a reconnect). **Shutdown**: nothing of its own; watchers are
//!   processes and die with the runtime; a fence drops the names the
//!   master gave to others ([`Globals::forget`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pool_proto::{Msg, Pid, Request, Response};
use supervisor::{Runtime, SpawnOpts};

use crate::error::Error;
use crate::master_link::MasterHandle;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The global names of this node (see the module docs).
#[derive(Debug)]
pub(crate) struct Globals {
    /// The runtime the watcher processes run in.
    rt: Runtime,
    /// Where registrations and releases go.
    master: MasterHandle,
    /// The names this node's processes hold: added once the master
    /// accepted, removed when the holder dies, the name is unregistered,
    /// or a fence says another process holds it now.
    held: Mutex<HashMap<String, Pid>>,
}

impl Globals {
    /// No names yet.
    pub(crate) fn new(rt: Runtime, master: MasterHandle) -> Self {
        Globals {
            rt,
            master,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The names held here, for Join.
    pub(crate) fn held(&self) -> Vec<(String, Pid)> {
        lock(&self.held)
            .iter()
            .map(|(n, p)| (n.clone(), *p))
            .collect()
    }

    /// Forgets names the master gave to other processes (fencing).
    pub(crate) fn forget(&self, names: &[String]) {
        let mut held = lock(&self.held);
        for n in names {
            held.remove(n);
        }
    }

    /// Registers `name` for `pid`; false if the name is taken or the
    /// process already has one. A local holder goes through
    /// [`register_watched`](Self::register_watched).
    pub(crate) async fn register(self: &Arc<Self>, name: &str, pid: Pid) -> Result<bool, Error> {
        if pid.node() == self.rt.node() {
            // A local holder is watched *before* the master hears of it, so
            // that its death, however soon, releases the name.
            return self.register_watched(name.to_owned(), pid).await;
        }
        match self
            .master
            .request(Request::RegisterName {
                name: name.to_owned(),
                pid,
            })
            .await?
        {
            Response::Registered(ok) => Ok(ok),
            other => Err(Error::unexpected(other)),
        }
    }

    /// `pid`, a process of this node, holds the global name `name` that
    /// another node (a worker or a client) registered (the master's
    /// `WatchName`): watch it as our own registrations are — release the
    /// name when it dies (at once if it is already gone) and list it in
    /// every Join. A pid of another node is refused.
    pub(crate) fn watch(self: &Arc<Self>, name: String, pid: Pid) -> Result<(), String> {
        if pid.node() != self.rt.node() {
            return Err(format!(
                "{pid} is not a process of this node: WatchName goes to the holder's node"
            ));
        }
        lock(&self.held).insert(name.clone(), pid);
        let weak = Arc::downgrade(self);
        self.rt.spawn_opts(
            SpawnOpts::new().function("global.watch"),
            move |mut ctx| async move {
                // A pid already gone answers Down noproc at once.
                let mref = ctx.monitor(pid);
                let _ = ctx.wait_down(mref, None).await;
                if let Some(globals) = weak.upgrade() {
                    globals.released(name, pid);
                }
            },
        );
        Ok(())
    }

    /// `pid` died: if it still holds `name` here, the master hears it is
    /// free.
    fn released(&self, name: String, pid: Pid) {
        let held = {
            let mut g = lock(&self.held);
            if g.get(&name) == Some(&pid) {
                g.remove(&name);
                true
            } else {
                false
            }
        };
        if held {
            self.master.push(Msg::NameReleased { name, pid });
        }
    }

    /// Removes a global name.
    pub(crate) async fn unregister(&self, name: &str) -> Result<(), Error> {
        self.master
            .request(Request::UnregisterName {
                name: name.to_owned(),
            })
            .await?;
        lock(&self.held).remove(name);
        Ok(())
    }

    /// Registers `name` for local process `pid` through a watcher process
    /// that monitors `pid` first, then asks the master, then waits for
    /// `pid` to die and releases the name. The release always travels after
    /// the registration on the master connection, so a holder that dies
    /// while the registration is in flight never leaves a stale name.
    async fn register_watched(self: &Arc<Self>, name: String, pid: Pid) -> Result<bool, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let weak = Arc::downgrade(self);
        self.rt.spawn_opts(
            SpawnOpts::new().function("global.watch"),
            move |mut ctx| async move {
                let mref = ctx.monitor(pid);
                let Some(globals) = weak.upgrade() else {
                    return;
                };
                let registered = globals
                    .master
                    .request(Request::RegisterName {
                        name: name.clone(),
                        pid,
                    })
                    .await;
                let ok = matches!(registered, Ok(Response::Registered(true)));
                let _ = tx.send(match registered {
                    Ok(Response::Registered(ok)) => Ok(ok),
                    Ok(other) => Err(Error::unexpected(other)),
                    Err(e) => Err(e),
                });
                if !ok {
                    ctx.demonitor(mref, true);
                    return;
                }
                lock(&globals.held).insert(name.clone(), pid);
                // Hold no strong reference while waiting: the node may stop.
                drop(globals);
                let _ = ctx.wait_down(mref, None).await;
                if let Some(globals) = weak.upgrade() {
                    globals.released(name, pid);
                }
            },
        );
        rx.await.unwrap_or(Err(Error::ShuttingDown))
    }
}
