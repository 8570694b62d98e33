//! Cluster tests of WebAssembly modules in the pool, with the real
//! `pool-master`, `pool-worker` and `poolctl` binaries on loopback (the
//! stock workers here have no wasm backend; running wasm is tested where
//! the backend is).
//!
//! - `poolctl module push` stores a module and prints its hash; `module
//!   ls` (and `GET /api/modules`) lists it; the store survives a master
//!   restart on the same state directory.
//! - Bytes that are no module, and a push with a wrong cookie, are refused
//!   with a clear error (exit 1).
//! - A spawn of an unknown module is refused naming it; a pushed one with
//!   no wasm worker says that no worker runs wasm.
//! - A worker fetches a module's exact bytes from the master, and a
//!   worker with the wasm backend is the one chosen for a wasm function.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use pool_cluster_tests::{Cluster, http_get};
use pool_proto::ModuleHash;
use pool_worker::{Node, NodeConfig, NodeHandle};
use serde_json::Value;
use supervisor::Functions;

/// The empty module plus a custom section named `tag`: a valid module
/// whose hash depends on `tag`.
fn module(tag: u8) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend_from_slice(&[0x00, 0x02, 0x01, tag]);
    m
}

/// Writes `bytes` as `name` in the test directory.
fn write(c: &Cluster, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let p = c.dir.path().join(name);
    std::fs::write(&p, bytes)?;
    Ok(p)
}

fn path_str(p: &std::path::Path) -> Result<&str> {
    p.to_str().context("a UTF-8 temp path")
}

/// The `module ls --json` entry of `hash`, if listed.
fn listed(c: &Cluster, hash: &str) -> Result<Option<Value>> {
    let v = c.poolctl_json(&["module", "ls"])?;
    Ok(v.as_array()
        .context("module ls prints an array")?
        .iter()
        .find(|m| m["hash"] == hash)
        .cloned())
}

/// `module push` prints the hash (the sha-256 of the file), `--json`
/// `{hash, file, size}`; `module ls` lists it as a table and as JSON, the
/// HTTP API too; after a master restart on the same state directory it is
/// still listed.
#[test]
fn push_then_ls_lists_it_and_the_store_survives_a_master_restart() -> Result<()> {
    let mut c = Cluster::start(1)?;
    let bytes = module(1);
    let hash = ModuleHash::of(&bytes).to_string();
    let file = write(&c, "count.wasm", &bytes)?;
    let pushed = c.poolctl_json(&["module", "push", path_str(&file)?])?;
    ensure!(pushed["hash"] == hash.as_str(), "{pushed}");
    ensure!(pushed["file"] == "count.wasm", "{pushed}");
    ensure!(pushed["size"] == bytes.len(), "{pushed}");
    let out = c.poolctl_raw(&["module", "push", path_str(&file)?])?;
    ensure!(out.status.success(), "{out:?}");
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == hash,
        "{out:?}"
    );

    let entry = listed(&c, &hash)?.context("module ls lists the pushed module")?;
    ensure!(
        entry["file"] == "count.wasm" && entry["size"] == bytes.len(),
        "{entry}"
    );
    ensure!(
        entry["pushed_at"].as_u64().is_some_and(|t| t > 0),
        "{entry}"
    );
    let out = c.poolctl_raw(&["module", "ls"])?;
    let table = String::from_utf8_lossy(&out.stdout);
    ensure!(
        table.contains(&format!("{}…", &hash[..12])) && table.contains("count.wasm"),
        "{table}"
    );
    let (status, body) = http_get(&c.http_addr, "/api/modules")?;
    ensure!(status == 200 && body.contains(&hash), "{status} {body}");

    let master = c.master.as_mut().context("the master runs")?;
    ensure!(
        master.terminate(Duration::from_secs(10)),
        "the master stops"
    );
    c.start_master()?;
    ensure!(
        listed(&c, &hash)?.is_some(),
        "the module is still listed after the restart"
    );
    Ok(())
}

/// Bytes that are not a wasm module are refused before they leave (exit
/// 1, saying so), bytes that start like one but do not validate are
/// refused by the master, and a file name without `.wasm` is a usage error
/// (exit 2); nothing is stored.
#[test]
fn bad_bytes_are_refused_with_a_clear_error() -> Result<()> {
    let c = Cluster::start(0)?;
    let text = write(&c, "notes.wasm", b"these are notes, not a module\n")?;
    let (code, err) = c.poolctl_fail(&["module", "push", path_str(&text)?])?;
    ensure!(
        code == 1 && err.contains("not a WebAssembly module"),
        "{code}: {err}"
    );
    let mut cut = b"\0asm\x01\0\0\0".to_vec();
    cut.extend_from_slice(&[0x01, 0x09, 0x01]);
    let cut = write(&c, "cut.wasm", &cut)?;
    let (code, err) = c.poolctl_fail(&["module", "push", path_str(&cut)?])?;
    ensure!(
        code == 1 && err.contains("not a valid WebAssembly module"),
        "{code}: {err}"
    );
    let bin = write(&c, "count.bin", &module(2))?;
    let (code, err) = c.poolctl_fail(&["module", "push", path_str(&bin)?])?;
    ensure!(code == 2 && err.contains(".wasm"), "{code}: {err}");
    let v = c.poolctl_json(&["module", "ls"])?;
    ensure!(
        v.as_array().is_some_and(Vec::is_empty),
        "nothing stored: {v}"
    );
    Ok(())
}

/// A push from a client with the wrong cookie never reaches the store:
/// the handshake refuses it (exit 1, naming the cookie).
#[test]
fn a_push_with_a_wrong_cookie_is_refused() -> Result<()> {
    let c = Cluster::start(0)?;
    let file = write(&c, "count.wasm", &module(3))?;
    let wrong = c.dir.path().join("wrong-cookie");
    std::fs::write(&wrong, "not-the-pool-cookie\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600))?;
    }
    let (code, err) = c.poolctl_fail(&[
        "--cookie-file",
        path_str(&wrong)?,
        "module",
        "push",
        path_str(&file)?,
    ])?;
    ensure!(
        code == 1 && err.to_lowercase().contains("cookie"),
        "{code}: {err}"
    );
    let v = c.poolctl_json(&["module", "ls"])?;
    ensure!(
        v.as_array().is_some_and(Vec::is_empty),
        "nothing stored: {v}"
    );
    Ok(())
}

/// A spawn of a module never pushed is refused naming it and saying how
/// to push it (named and canonical forms, placed and pinned); a pushed
/// module with no worker that runs wasm is refused saying so.
#[test]
fn a_spawn_of_an_unknown_module_is_refused_naming_it() -> Result<()> {
    let c = Cluster::start(0)?;
    let rt = tokio::runtime::Runtime::new()?;
    let w1 = plain_worker(&rt, &c, "w1")?;
    c.wait_nodes(1)?;
    let (code, err) = c.poolctl_fail(&["spawn", "nope.wasm:run"])?;
    ensure!(
        code == 1 && err.contains("nope.wasm") && err.contains("poolctl module push"),
        "{code}: {err}"
    );
    let (code, err) = c.poolctl_fail(&["spawn", "nope.wasm:run", "--on", "w1"])?;
    ensure!(
        code == 1 && err.contains("nope.wasm") && err.contains("poolctl module push"),
        "{code}: {err}"
    );
    let missing = ModuleHash::of(b"never pushed");
    let (code, err) = c.poolctl_fail(&["spawn", &format!("{missing}:run")])?;
    ensure!(
        code == 1 && err.contains(&format!("no module {missing} in the pool")),
        "{code}: {err}"
    );
    let file = write(&c, "count.wasm", &module(4))?;
    c.poolctl_json(&["module", "push", path_str(&file)?])?;
    let (code, err) = c.poolctl_fail(&["spawn", "count.wasm:run", "--fuel", "1000"])?;
    ensure!(
        code == 1 && err.contains("runs WebAssembly functions"),
        "{code}: {err}"
    );
    let (code, err) = c.poolctl_fail(&["spawn", "count.wasm:run", "--grant-dir", "/tmp"])?;
    ensure!(code == 2 && err.contains("HOST:GUEST"), "{code}: {err}");
    rt.block_on(w1.shutdown());
    Ok(())
}

/// A worker of this test process without the WebAssembly backend (as one
/// built without pool-worker's `wasm` feature), named `name`.
fn plain_worker(rt: &tokio::runtime::Runtime, c: &Cluster, name: &str) -> Result<NodeHandle> {
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let mut config = NodeConfig::worker(name, c.master_addr.clone(), cookie);
    config.report_interval = Some(Duration::from_millis(200));
    rt.block_on(async {
        Node::builder(config)
            .without_wasm()
            .listener(std::net::TcpListener::bind("127.0.0.1:0")?)
            .start()
            .await
            .map_err(anyhow::Error::from)
    })
}

/// A worker fetches a module from the master by hash and gets its exact
/// bytes; a worker that advertises the wasm backend is the one the master
/// chooses for a wasm function, while a worker without it is not; and what
/// reaches that worker is the canonical name, placed or pinned (`--on`):
/// the worker here registers `<hash>:run` as a native function, which
/// runs only if the named form was resolved before the spawn left.
#[test]
fn a_worker_fetches_the_exact_bytes_and_wasm_workers_are_chosen() -> Result<()> {
    let c = Cluster::start(0)?;
    let bytes = module(5);
    let file = write(&c, "count.wasm", &bytes)?;
    let pushed = c.poolctl_json(&["module", "push", path_str(&file)?])?;
    let hash: ModuleHash = pushed["hash"]
        .as_str()
        .context("a hash")?
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let rt = tokio::runtime::Runtime::new()?;
    let plain = plain_worker(&rt, &c, "w1")?;
    let cookie = pool_proto::cookie::read_cookie_file(&c.cookie)?;
    let mut config = NodeConfig::worker("wasm1", c.master_addr.clone(), cookie);
    config.report_interval = Some(Duration::from_millis(200));
    config.wasm_backend = true;
    let canonical = format!("{hash}:run");
    let mut functions = Functions::new();
    let name = canonical.clone();
    functions.register(&canonical, move |_ctx, _: Value| {
        let name = name.clone();
        async move { Ok::<_, String>(name) }
    });
    let node = rt.block_on(async {
        Node::builder(config)
            .functions(functions)
            .listener(std::net::TcpListener::bind("127.0.0.1:0")?)
            .start()
            .await
            .map_err(anyhow::Error::from)
    })?;
    c.wait_nodes(2)?;
    let got = rt.block_on(node.pool().fetch_module(hash))?;
    ensure!(got == bytes, "the fetched bytes are the pushed ones");

    let placed = c.poolctl_json(&["place", "--count", "3", "--function", "count.wasm:run"])?;
    ensure!(
        placed["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 3 && n.iter().all(|x| x == "wasm1")),
        "{placed}"
    );
    for extra in [&[][..], &["--on", "wasm1"][..]] {
        let args = [&["spawn", "count.wasm:run", "--wait"][..], extra].concat();
        let ran = c.poolctl_json(&args)?;
        ensure!(
            ran["node"] == "wasm1" && ran["result"] == canonical.as_str(),
            "{args:?}: {ran}"
        );
    }
    rt.block_on(node.shutdown());
    rt.block_on(plain.shutdown());
    Ok(())
}
