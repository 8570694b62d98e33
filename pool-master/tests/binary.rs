//! The `pool-master` binary: its help hides the cookie's value, it starts
//! from environment variables and a config file, serves nodes, and stops
//! cleanly on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pool_proto::{Request, Response};
use support::*;

/// Kills the child if the test fails before it exits.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pool-master"))
}

/// `--help` names every flag and its environment variable but never prints
/// the cookie's value.
#[test]
fn help_hides_the_cookie() {
    let out = bin()
        .arg("--help")
        .env("POOL_COOKIE", "supersecret-value")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(!help.contains("supersecret-value"), "{help}");
    for flag in [
        "--listen",
        "--http",
        "--state-dir",
        "--config",
        "--placement",
        "--node-timeout",
        "--tree",
        "--cookie-file",
        "--report-interval",
        "--log-json",
        "POOL_COOKIE",
        "POOL_LISTEN",
        "POOL_NODE_TIMEOUT",
        "POOL_TREE",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
}

/// Started from env vars and a config file (env over file), the binary
/// listens where told, welcomes a node with the file's settings, and exits
/// 0 on SIGTERM.
#[tokio::test]
async fn starts_from_env_and_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pool.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nhttp = \"off\"\nnode_timeout = \"2s\"\nreport_interval = \"250ms\"\nstate_dir = \"state\"\nname = \"worker-key-ignored\"\n",
    )
    .unwrap();
    let child = bin()
        .env("POOL_CONFIG", &config)
        .env("POOL_LISTEN", "127.0.0.1:0")
        .env("POOL_COOKIE", COOKIE)
        .env("POOL_LOG_JSON", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let addr: SocketAddr = loop {
        let v = rx.recv_timeout(WAIT).expect("a listening line in time");
        if v["fields"]["message"] == "pool-master listening" {
            break v["fields"]["addr"].as_str().unwrap().parse().unwrap();
        }
    };
    let w = SimNode::join(addr, SimSpec::worker("w1")).await.unwrap();
    assert_eq!(w.welcome.node_timeout_ms, 2000);
    assert_eq!(w.welcome.report_interval_ms, 250);
    assert_eq!(w.request(Request::Ping).await, Response::Pong);
    assert!(
        dir.path().join("state/lock").exists(),
        "state dir relative to the file"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let end = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < end {
            if let Some(status) = child.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    })
    .await
    .unwrap();
    assert!(exited.expect("exited in time").success());
}
