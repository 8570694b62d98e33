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

/// `pool-master ARGS` with a clean environment (no `POOL_*` of the
/// developer's shell) and `HOME` in `home`.
fn run_clean(args: &[&str], home: &std::path::Path) -> std::process::Output {
    bin()
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

/// The example with every `#key = value` line (a setting left at a
/// host-dependent default) uncommented.
fn uncomment_settings(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `deploy/master.example.toml` lists every config key, and `--check-config`
/// accepts it — as it is and with every commented-out setting enabled —
/// without a key reported as unknown.
#[test]
fn accepts_the_example_config_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/master.example.toml");
    let text = std::fs::read_to_string(example).expect("deploy/master.example.toml");
    // Every key of pool-master's FileConfig.
    for key in [
        "listen",
        "http",
        "state_dir",
        "placement",
        "node_timeout",
        "report_interval",
        "tree",
        "cookie_file",
        "log_json",
        "http_token_file",
        "http_token",
        "tls_cert",
        "tls_key",
        "tls_ca",
        "handshake_timeout",
        "max_connections",
        "max_frame",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} = "))
                || l.starts_with(&format!("#{key} = "))
                || l.starts_with(&format!("# {key} = "))),
            "the example lacks {key}"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let o = run_clean(&["--config", example, "--check-config"], home.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("ignored"), "no unknown key: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("configuration OK") && out.contains("listen 127.0.0.1:7400"),
        "{out}"
    );

    // Every setting enabled; the cookie file it names is replaced by one of
    // the test's (a flag wins over the file).
    let all = home.path().join("master.toml");
    std::fs::write(&all, uncomment_settings(&text)).unwrap();
    let cookie = home.path().join("cookie");
    std::fs::write(&cookie, COOKIE).unwrap();
    std::fs::set_permissions(&cookie, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = run_clean(
        &[
            "--config",
            all.to_str().unwrap(),
            "--cookie-file",
            cookie.to_str().unwrap(),
            "--check-config",
        ],
        home.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("ignored"), "no unknown key: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("state dir /var/lib/spawnpool/master"),
        "the file's state_dir is used: {out}"
    );
}

/// `--check-config` exits 1 with the reason on a file the master would not
/// start with.
#[test]
fn check_config_refuses_a_bad_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("master.toml");
    std::fs::write(&file, "placement = \"fastest\"\n").unwrap();
    let o = run_clean(
        &["--config", file.to_str().unwrap(), "--check-config"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("placement"), "{err}");
}

/// TLS settings are checked before the master starts: one file without the
/// other two, or a file that is not what its flag says, is an error that
/// names the flag and the file (exit 1).
#[test]
fn refuses_incomplete_or_bad_tls_settings() {
    let home = tempfile::tempdir().unwrap();
    let cookie = home.path().join("cookie");
    std::fs::write(&cookie, COOKIE).unwrap();
    std::fs::set_permissions(&cookie, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let junk = home.path().join("junk.pem");
    std::fs::write(&junk, "not PEM\n").unwrap();
    let (cookie, junk) = (cookie.to_str().unwrap(), junk.to_str().unwrap());

    let o = run_clean(
        &[
            "--cookie-file",
            cookie,
            "--tls-cert",
            junk,
            "--check-config",
        ],
        home.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--tls-key and --tls-ca missing"), "{err}");

    let o = run_clean(
        &[
            "--cookie-file",
            cookie,
            "--tls-cert",
            junk,
            "--tls-key",
            junk,
            "--tls-ca",
            junk,
            "--check-config",
        ],
        home.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("junk.pem") && err.contains("--tls-cert") && err.contains("no certificate"),
        "{err}"
    );

    let o = run_clean(
        &[
            "--cookie-file",
            cookie,
            "--max-connections",
            "0",
            "--check-config",
        ],
        home.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("max_connections"), "{err}");
}
