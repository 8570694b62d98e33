//! The `pool-worker` and `poolctl` binaries on their own (no pool needed):
//! refusals and usage errors say what to do and exit with the documented
//! status. (Cluster behaviour is tested in the top-level `tests/` crate.)

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str], home: &std::path::Path) -> Output {
    Command::new(bin)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// A free loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// poolctl with no master behind the address exits 1 with one line that
/// names the address and what to check.
#[test]
fn poolctl_without_a_master_fails_with_one_line_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", closed_port());
    let o = run(
        env!("CARGO_BIN_EXE_poolctl"),
        &["--master", &addr, "--connect-timeout", "1s", "nodes"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&addr) && err.contains("pool-master"), "{err}");
}

/// A malformed pid is a usage error: exit 2, before any connection.
#[test]
fn poolctl_bad_pid_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", closed_port());
    let o = run(
        env!("CARGO_BIN_EXE_poolctl"),
        &["--master", &addr, "call", "<nope>", "1"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid pid"), "{}", stderr(&o));
}

/// A cookie file other users can read is refused, and the message gives
/// the `chmod` that fixes it.
#[test]
fn worker_refuses_a_cookie_file_others_can_read() {
    let home = tempfile::tempdir().unwrap();
    let cookie = home.path().join("cookie");
    std::fs::write(&cookie, "secret\n").unwrap();
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &[
            "--cookie-file",
            cookie.to_str().unwrap(),
            "--master",
            "127.0.0.1:1",
            "--name",
            "w",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
}

/// Invalid settings are refused before joining, naming the setting.
#[test]
fn worker_refuses_invalid_settings() {
    let home = tempfile::tempdir().unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &["--capacity", "0", "--master", "127.0.0.1:1", "--name", "w"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--capacity"), "{}", stderr(&o));

    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &[
            "--report-interval",
            "soon",
            "--master",
            "127.0.0.1:1",
            "--name",
            "w",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid duration"), "{}", stderr(&o));
}

/// A config file with a key the worker does not know is refused with the
/// file and the key.
#[test]
fn worker_refuses_unknown_config_keys() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("worker.toml");
    std::fs::write(&file, "name = \"w\"\ncapacityy = 4\n").unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &[
            "--config",
            file.to_str().unwrap(),
            "--master",
            "127.0.0.1:1",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("worker.toml") && err.contains("capacityy"),
        "{err}"
    );
}
