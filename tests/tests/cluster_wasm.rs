//! Cluster tests of WebAssembly processes with the real `pool-master`,
//! `pool-worker` and `poolctl` binaries on loopback: a module built from
//! the guest examples (`scripts/build-guests`) is pushed to the pool and
//! run on stock workers, none of them rebuilt.
//!
//! - Wasm processes are placed by load like native ones (three workers
//!   share a burst evenly).
//! - Calls cross between wasm and native processes both ways, across
//!   nodes.
//! - A tree of wasm children survives a `kill -9` of its node: the lost
//!   child is restarted on another node with the same module hash, even
//!   after a newer module was pushed under the same file name.
//! - A module that loops forever neither starves the native processes of
//!   its node nor resists `poolctl kill`; fuel and memory caps end a spawn
//!   with their reasons; a trap is an exit reason.
//! - A spawn of a module the pool does not hold fails naming it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use pool_cluster_tests::guests::guest_module;
use pool_cluster_tests::text::write_tree;
use pool_cluster_tests::{Cluster, tree_entries, wait_until};
use serde_json::{Value, json};

/// How long a join, a node-down or a restart may take here.
const WAIT: Duration = Duration::from_secs(30);

/// The example module every test pushes (its exports: see guest/).
const MODULE: &str = "demo";

/// A master with `--node-timeout 1s` and stock workers w1..w3, all joined,
/// with the example module pushed: the cluster and the module's hash.
fn pool() -> Result<(Cluster, String)> {
    let mut c = Cluster::new()?;
    c.master_args = vec!["--node-timeout".into(), "1s".into()];
    c.start_master()?;
    for w in ["w1", "w2", "w3"] {
        c.start_worker(w, &[])?;
    }
    c.wait_nodes(3)?;
    let hash = push(&c, &guest_module(MODULE))?;
    Ok((c, hash))
}

/// `poolctl module push FILE`: the hash it printed.
fn push(c: &Cluster, file: &Path) -> Result<String> {
    let v = c.poolctl_json(&["module", "push", &file.to_string_lossy()])?;
    let hash = v["hash"]
        .as_str()
        .with_context(|| format!("module push printed {v}"))?
        .to_owned();
    ensure!(hash.len() == 64, "a sha-256 hash in hex: {hash}");
    Ok(hash)
}

/// `MODULE.wasm:EXPORT`.
fn func(export: &str) -> String {
    format!("{MODULE}.wasm:{export}")
}

/// The node each of `pids` runs on, after `poolctl ps`.
fn nodes_of(c: &Cluster, pids: &[String]) -> Result<BTreeMap<String, usize>> {
    let mut per_node = BTreeMap::new();
    for p in c.ps()? {
        if pids.contains(&p.pid.to_string()) {
            *per_node.entry(p.node.clone()).or_insert(0) += 1;
        }
    }
    Ok(per_node)
}

/// `poolctl spawn ... --wait --timeout 60s` of a wasm export that ends
/// normally: the JSON it printed. (The first spawn of a module on a node
/// compiles it.)
fn spawn_wait(c: &Cluster, export: &str, args: &Value, extra: &[&str]) -> Result<Value> {
    let f = func(export);
    let a = args.to_string();
    let base = [
        "spawn",
        f.as_str(),
        a.as_str(),
        "--wait",
        "--timeout",
        "60s",
    ];
    c.poolctl_json(&[&base[..], extra].concat())
}

/// `poolctl spawn ... --wait` of a wasm export that must end abnormally:
/// the one line poolctl printed on stderr (exit status 1).
fn spawn_wait_fails(c: &Cluster, export: &str, extra: &[&str]) -> Result<String> {
    let f = func(export);
    let base = ["spawn", f.as_str(), "{}", "--wait", "--timeout", "60s"];
    let (code, err) = c.poolctl_fail(&[&base[..], extra].concat())?;
    ensure!(
        code == 1,
        "exit status 1 for an abnormal exit: {code}: {err}"
    );
    ensure!(err.lines().count() == 1, "one line: {err}");
    Ok(err)
}

/// A burst of wasm spawns is spread over the three workers by load, like
/// native ones; `module ls` lists the module pushed, and each process runs
/// the canonical (hash) name.
#[test]
fn wasm_spawns_are_placed_by_load_over_three_workers() -> Result<()> {
    let (c, hash) = pool()?;
    let ls = c.poolctl_json(&["module", "ls"])?;
    ensure!(
        ls.as_array()
            .is_some_and(|a| a.iter().any(|m| m["hash"] == hash.as_str())),
        "module ls lists {hash}: {ls}"
    );
    let v = c.poolctl_json(&["spawn", &func("echo"), "{}", "--count", "6"])?;
    let pids: Vec<String> = v["spawned"]
        .as_array()
        .with_context(|| format!("spawn --count printed {v}"))?
        .iter()
        .filter_map(|s| s["pid"].as_str().map(str::to_owned))
        .collect();
    ensure!(pids.len() == 6, "six spawned: {v}");
    let per_node = nodes_of(&c, &pids)?;
    ensure!(
        per_node.len() == 3 && per_node.values().all(|n| *n == 2),
        "six wasm processes two per worker: {per_node:?}"
    );
    let ps = c.ps()?;
    let running = ps
        .iter()
        .find(|p| p.pid.to_string() == pids[0])
        .context("the first wasm process is listed")?;
    ensure!(
        running.function == format!("{hash}:echo"),
        "a wasm process runs its module by hash: {}",
        running.function
    );
    Ok(())
}

/// Native → wasm: `poolctl call` gets the wasm echo's answer. Wasm →
/// native: a wasm process on w2 calls a native `builtin.echo` on w1 and
/// counts the answers it got back as its result.
#[test]
fn calls_cross_between_wasm_and_native_processes_on_other_nodes() -> Result<()> {
    let (c, _) = pool()?;
    let (echo, _) = c.spawn(&[&func("echo"), "{}", "--on", "w3"])?;
    // The first call waits while w3 compiles the module.
    let request = json!({"hello": [1, 2, 3]}).to_string();
    let reply = c.poolctl_json(&["call", &echo, &request, "--timeout", "60s"])?;
    ensure!(
        reply == json!({"hello": [1, 2, 3]}),
        "the wasm echo answered {reply}"
    );

    let (native, _) = c.spawn(&["builtin.echo", "{}", "--on", "w1"])?;
    let v = spawn_wait(
        &c,
        "pingpong",
        &json!({"peer": native, "n": 25}),
        &["--on", "w2"],
    )?;
    ensure!(v["reason"] == "normal", "pingpong ended normally: {v}");
    ensure!(v["result"] == json!(25), "25 round trips answered: {v}");
    Ok(())
}

/// A tree of wasm children: after `kill -9` of the node of one child,
/// that child runs again on another node with the same module hash, even
/// though a newer module was pushed under the same file name meanwhile.
#[test]
fn a_tree_of_wasm_children_is_restarted_elsewhere_with_the_same_hash() -> Result<()> {
    let (mut c, hash) = pool()?;
    let children: Vec<String> = ["a", "b"]
        .iter()
        .map(|id| {
            format!(
                "{{ id = \"{id}\", function = \"{}\", placement = \"least-loaded\" }}",
                func("echo")
            )
        })
        .collect();
    let file = write_tree(&c, "wasmtree", "one_for_one", 10, &children)?;
    c.tree_start(&file)?;
    let running = |c: &Cluster| -> Option<BTreeMap<String, (String, String)>> {
        let view = c.tree_show("wasmtree").ok()?;
        let mut m = BTreeMap::new();
        // The children, by id (the root's path has no `/`).
        for (path, e) in tree_entries(&view) {
            if let Some((_, id)) = path.split_once('/') {
                m.insert(id.to_owned(), (e.pid?.to_string(), e.node?));
            }
        }
        (m.len() == 2).then_some(m)
    };
    let before = wait_until("both wasm children to run", WAIT, || running(&c))?;
    let (old_pid, lost_node) = before.get("a").context("child a")?.clone();

    // A newer module under the same file name: the same code with one
    // custom section more, so another hash.
    let mut newer = std::fs::read(guest_module(MODULE))?;
    newer.extend_from_slice(&[0x00, 0x04, 0x03, b'n', b'e', b'w']);
    let newer_file = c.write_file(&format!("{MODULE}.wasm"), "")?;
    std::fs::write(&newer_file, &newer)?;
    let newer_hash = push(&c, &newer_file)?;
    ensure!(newer_hash != hash, "the newer module has another hash");

    c.worker(&lost_node).kill9();
    let after = wait_until("child a to run again elsewhere", WAIT, || {
        running(&c).filter(|m| {
            m.get("a")
                .is_some_and(|(p, n)| *p != old_pid && *n != lost_node)
        })
    })?;
    let (new_pid, _) = &after["a"];
    let ps = c.ps()?;
    let p = ps
        .iter()
        .find(|p| p.pid.to_string() == *new_pid)
        .context("the restarted child is listed")?;
    ensure!(
        p.function == format!("{hash}:echo"),
        "the restart runs the module it started with ({hash}), not the newer one: {}",
        p.function
    );
    Ok(())
}

/// A module that spins forever does not hold its node: a native echo on
/// the same node answers calls while two spinners run, and `poolctl kill`
/// ends a spinner at once.
#[test]
fn a_looping_module_is_preempted_and_killed_at_once() -> Result<()> {
    let (c, _) = pool()?;
    let (s1, _) = c.spawn(&[&func("spin"), "{}", "--on", "w1"])?;
    let (s2, _) = c.spawn(&[&func("spin"), "{}", "--on", "w1"])?;
    let (echo, _) = c.spawn(&["builtin.echo", "{}", "--on", "w1"])?;
    for i in 0..20 {
        let reply = c.poolctl_json(&["call", &echo, &json!(i).to_string(), "--timeout", "5s"])?;
        ensure!(
            reply == json!(i),
            "the native echo answers beside the spinners: {reply}"
        );
    }
    for s in [&s1, &s2] {
        let out = c.poolctl_raw(&["kill", s])?;
        ensure!(
            out.status.success(),
            "poolctl kill {s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_until("both spinners to be gone", Duration::from_secs(5), || {
        let ps = c.ps().ok()?;
        (!ps.iter().any(|p| [&s1, &s2].contains(&&p.pid.to_string()))).then_some(())
    })?;
    Ok(())
}

/// A fuel budget ends a spinner, a memory cap ends a module that grows
/// without end, and a trap ends a module: each with its reason, as
/// `spawn --wait` reports it.
#[test]
fn fuel_memory_and_traps_end_a_wasm_process_with_their_reason() -> Result<()> {
    let (c, _) = pool()?;
    let err = spawn_wait_fails(&c, "spin", &["--fuel", "5000000"])?;
    ensure!(
        err.contains("out of fuel: the spawn's budget of 5000000 units is spent"),
        "a spent budget: {err}"
    );
    let err = spawn_wait_fails(&c, "hog", &["--memory", "16MiB"])?;
    ensure!(err.contains("memory limit"), "a memory cap: {err}");
    let err = spawn_wait_fails(&c, "trap", &[])?;
    ensure!(err.contains("wasm trap"), "a trap: {err}");

    let v = spawn_wait(&c, "count", &json!({"text": "one two  three"}), &[])?;
    ensure!(v["result"] == json!(3), "the word count ran: {v}");
    Ok(())
}

/// A spawn of a module the pool does not hold, by hash or by file name,
/// fails in one line naming it.
#[test]
fn a_spawn_of_a_module_not_in_the_pool_fails_naming_it() -> Result<()> {
    let (c, _) = pool()?;
    let missing = "ab".repeat(32);
    let (code, err) = c.poolctl_fail(&["spawn", &format!("{missing}:echo")])?;
    ensure!(code == 1 && err.contains(&missing), "{code}: {err}");
    let (code, err) = c.poolctl_fail(&["spawn", "nothere.wasm:echo"])?;
    ensure!(code == 1 && err.contains("nothere.wasm"), "{code}: {err}");
    if err.lines().count() != 1 {
        bail!("one line: {err}");
    }
    Ok(())
}
