//! Global names held by this node's processes: registration through a
//! watcher that releases the name when its holder dies, and the list the
//! node re-registers with every Join.
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
                let Some(globals) = weak.upgrade() else {
                    return;
                };
                let held = {
                    let mut g = lock(&globals.held);
                    if g.get(&name) == Some(&pid) {
                        g.remove(&name);
                        true
                    } else {
                        false
                    }
                };
                if held {
                    globals.master.push(Msg::NameReleased { name, pid });
                }
            },
        );
        rx.await.unwrap_or(Err(Error::ShuttingDown))
    }
}
