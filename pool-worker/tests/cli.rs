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

/// The lines of an example config file with every `#key = value` line
/// (a setting left at a host-dependent default) uncommented.
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

/// `deploy/worker.example.toml` is accepted by the worker as it is and with
/// every commented-out setting enabled, and it lists every key of the
/// worker's config file.
#[test]
fn worker_accepts_the_example_config_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/worker.example.toml");
    let text = std::fs::read_to_string(example).expect("deploy/worker.example.toml");
    // Every key of pool-worker's FileConfig.
    for key in [
        "master",
        "name",
        "listen",
        "advertise",
        "capacity",
        "labels",
        "report_interval",
        "threads",
        "cookie_file",
        "log_json",
        "tls_cert",
        "tls_key",
        "tls_ca",
        "handshake_timeout",
        "max_connections",
        "max_frame",
        "peer_queue",
        "max_mailbox",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} = "))
                || l.starts_with(&format!("#{key} = "))
                || l.starts_with(&format!("# {key} = "))),
            "the example lacks {key}"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &["--config", example, "--check-config"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("configuration OK"),
        "{o:?}"
    );

    // Every setting enabled; the cookie file it names is replaced by one of
    // the test's (a flag wins over the file).
    let all = home.path().join("worker.toml");
    std::fs::write(&all, uncomment_settings(&text)).unwrap();
    let cookie = home.path().join("cookie");
    std::fs::write(&cookie, "secret\n").unwrap();
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &[
            "--config",
            all.to_str().unwrap(),
            "--cookie-file",
            cookie.to_str().unwrap(),
            "--check-config",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("name w1"), "the file's name is used: {out}");
}

/// `--check-config` fails, naming the problem, on settings the worker would
/// not start with.
#[test]
fn worker_check_config_refuses_bad_settings() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("worker.toml");
    std::fs::write(&file, "capacity = 0\n").unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_pool-worker"),
        &["--config", file.to_str().unwrap(), "--check-config"],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--capacity"), "{}", stderr(&o));
}

/// `--trace=ID` takes hex only: anything else is a usage error (exit 2)
/// that shows the expected form, before any connection.
#[test]
fn poolctl_bad_trace_id_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", closed_port());
    for bad in ["--trace=xyz", "--trace=0", "--trace=11112222333344445"] {
        let o = run(
            env!("CARGO_BIN_EXE_poolctl"),
            &["--master", &addr, "spawn", "builtin.echo", bad],
            home.path(),
        );
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("--trace"), "{bad}: {err}");
    }
}

/// The limit and TLS settings of pool-worker: taken from the file (flags
/// win), checked by `--check-config`, each bad value refused with its flag
/// named; partial TLS settings name what is missing (also for poolctl,
/// before it connects).
#[test]
fn worker_limit_and_tls_settings_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let cookie = home.path().join("cookie");
    std::fs::write(&cookie, "secret\n").unwrap();
    std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cookie = cookie.to_str().unwrap();
    let file = home.path().join("worker.toml");
    std::fs::write(
        &file,
        "handshake_timeout = \"2s\"\nmax_connections = 8\nmax_frame = \"1MiB\"\npeer_queue = \"1MiB\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let worker = env!("CARGO_BIN_EXE_pool-worker");
    let ok = run(
        worker,
        &["--config", file, "--cookie-file", cookie, "--check-config"],
        home.path(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    for (args, named) in [
        (&["--peer-queue", "1KiB"][..], "--peer-queue"),
        (&["--max-frame", "100"][..], "--max-frame"),
        (&["--max-connections", "0"][..], "--max-connections"),
        (&["--handshake-timeout", "0s"][..], "--handshake-timeout"),
        (&["--max-frame", "lots"][..], "--max-frame"),
        (
            &["--tls-cert", "node.pem"][..],
            "--tls-key and --tls-ca missing",
        ),
    ] {
        let all = [
            &["--config", file, "--cookie-file", cookie, "--check-config"][..],
            args,
        ]
        .concat();
        let o = run(worker, &all, home.path());
        assert_ne!(o.status.code(), Some(0), "{args:?} accepted");
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }

    let addr = format!("127.0.0.1:{}", closed_port());
    let o = run(
        env!("CARGO_BIN_EXE_poolctl"),
        &[
            "--master",
            &addr,
            "--cookie-file",
            cookie,
            "--tls-ca",
            "ca.pem",
            "nodes",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--tls-cert and --tls-key missing"),
        "{}",
        stderr(&o)
    );
}
