//! `children`: a small tree: two children linked to the process, which
//! registers a name and serves their pids. Linked both ways, so one
//! child's crash takes the parent down and the parent's end takes the
//! children down (neither traps exits).

use std::collections::BTreeMap;

use serde::Deserialize;
use spawnpool_guest::{recv, register, reply, spawn, Envelope, SpawnFlags};

/// The arguments of `children`.
#[derive(Deserialize)]
struct Args {
    /// The children's function: a native name (`builtin.echo`) or a
    /// canonical wasm name (`<hash>:echo`); a module does not know its own
    /// hash, so the spawner says it.
    child: String,
    /// The local name to register.
    name: String,
}

/// Spawns the children, registers, then answers every call with the
/// children's pids, forever.
#[no_mangle]
pub extern "C" fn children() {
    let args: Args = crate::args_or_exit();
    // The children's arguments: `{}`.
    let no_args: BTreeMap<String, u8> = BTreeMap::new();
    let mut pids = Vec::new();
    for _ in 0..2 {
        match spawn(&args.child, &no_args, SpawnFlags::LINK) {
            Ok(pid) => pids.push(pid),
            Err(e) => spawnpool_guest::exit(&format!("spawn {}: {e}", args.child).into()),
        }
    }
    if let Err(e) = register(&args.name) {
        spawnpool_guest::exit(&e.to_string().into());
    }
    loop {
        if let Envelope::Call(call) = recv() {
            reply(&call, &pids).expect("pids encode");
        }
    }
}
