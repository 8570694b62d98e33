//! pool-worker's settings: flag > environment > config file > default
//! (DESIGN.md "Binaries"), observed through `poolctl nodes`.

use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::{Value, json};

/// Each setting comes from the highest layer that sets it: a worker with
/// `--name`, `POOL_NAME` and a file `name` is called by its flag; one with
/// `POOL_NAME` and a file `name` by its environment; one with only a file
/// by the file (whose `master` key it also used to find the pool); one with
/// none by the default `HOST-PID`. The same holds for `capacity` (flag 7 >
/// env 5 > file 3 > the CPU count) and `labels` (env > file).
#[test]
fn worker_settings_flag_over_env_over_file_over_default() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    let file = |name: &str| -> Result<std::path::PathBuf> {
        c.write_file(
            &format!("{name}.toml"),
            &format!(
                "master = \"{}\"\nname = \"{name}\"\ncapacity = 3\nlabels = {{ src = \"file\" }}\n",
                c.master_addr
            ),
        )
    };
    let (fa, fb, fc) = (file("file-a")?, file("file-b")?, file("file-c")?);

    // All three layers: the flags win.
    let mut a = c.command("pool-worker");
    a.arg("--config")
        .arg(&fa)
        .args(["--name", "flag-a", "--capacity", "7"])
        .env("POOL_NAME", "env-a")
        .env("POOL_CAPACITY", "5");
    c.add_worker("a", a)?;
    // Environment and file: the environment wins.
    let mut b = c.command("pool-worker");
    b.arg("--config")
        .arg(&fb)
        .env("POOL_NAME", "env-b")
        .env("POOL_CAPACITY", "5")
        .env("POOL_LABELS", "src=env");
    c.add_worker("b", b)?;
    // The file alone, master address included.
    let mut fc_cmd = c.command("pool-worker");
    fc_cmd.arg("--config").arg(&fc);
    c.add_worker("c", fc_cmd)?;
    // Nothing set but the master: the default name HOST-PID.
    let mut d = c.command("pool-worker");
    d.args(["--master", &c.master_addr]);
    c.add_worker("d", d)?;
    let d_pid = c.worker("d").pid();

    let nodes = wait_until("4 workers", Duration::from_secs(20), || {
        c.nodes().ok().filter(|n| n.len() == 4)
    })
    .map_err(|e| {
        let logs: Vec<String> = c
            .workers
            .iter()
            .map(|(n, p)| format!("{n}: {}", p.log()))
            .collect();
        anyhow::anyhow!("{e}; worker logs:\n{}", logs.join("\n"))
    })?;
    let find = |name: &str| -> Option<&Value> { nodes.iter().find(|n| n["name"] == name) };

    let a = find("flag-a").unwrap_or_else(|| panic!("no node flag-a in {nodes:?}"));
    assert_eq!(a["capacity"], 7, "flag > env > file: {a}");
    assert_eq!(a["labels"], json!({"src": "file"}), "file > default: {a}");

    let b = find("env-b").unwrap_or_else(|| panic!("no node env-b in {nodes:?}"));
    assert_eq!(b["capacity"], 5, "env > file: {b}");
    assert_eq!(b["labels"], json!({"src": "env"}), "env > file: {b}");

    let cc = find("file-c").unwrap_or_else(|| panic!("no node file-c in {nodes:?}"));
    assert_eq!(cc["capacity"], 3, "file > default: {cc}");

    let suffix = format!("-{d_pid}");
    let d = nodes
        .iter()
        .find(|n| n["name"].as_str().is_some_and(|s| s.ends_with(&suffix)))
        .unwrap_or_else(|| panic!("no node named HOST{suffix} in {nodes:?}"));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(d["capacity"], cpus, "the default capacity is the CPU count");
    assert_eq!(d["labels"], json!({}), "no labels by default");
    Ok(())
}
