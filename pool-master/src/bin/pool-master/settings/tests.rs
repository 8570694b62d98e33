//! Unit tests of the settings layering: defaults, file, environment and
//! flags, and the errors that name their setting.

use super::*;

fn file(text: &str) -> FileConfig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.toml");
    std::fs::write(&path, text).unwrap();
    load_file(&path).unwrap().0
}

/// With nothing given, every default of DESIGN.md applies.
#[test]
fn defaults() {
    let s = merge(
        Cli::default(),
        FileConfig::default(),
        Some(Path::new("/home/u")),
    )
    .unwrap();
    assert_eq!(s.listen, "127.0.0.1:7400");
    assert_eq!(s.http.as_deref(), Some("127.0.0.1:7401"));
    assert_eq!(s.state_dir, Path::new("/home/u/.spawnpool/master"));
    assert_eq!(s.placement, PlacementStrategy::LeastLoaded);
    assert_eq!(s.node_timeout, Duration::from_secs(3));
    assert_eq!(s.report_interval, Duration::from_millis(500));
    assert!(!s.log_json);
}

/// The limits and TLS files: default, then the file (TLS paths relative
/// to it), then the command line.
#[test]
fn limits_and_tls_flag_over_file_over_default() {
    let home = Some(Path::new("/home/u"));
    let s = merge(Cli::default(), FileConfig::default(), home).unwrap();
    assert_eq!(s.handshake_timeout, Duration::from_secs(5));
    assert_eq!(
        s.max_connections,
        pool_master::config::DEFAULT_MAX_CONNECTIONS
    );
    assert_eq!(s.max_frame, 16 << 20);
    assert_eq!(s.tls, pool_proto::tls::TlsFiles::default());

    let f = file(
        "handshake_timeout = \"2s\"\nmax_connections = 10\nmax_frame = \"1MiB\"\ntls_cert = \"n.pem\"\ntls_key = \"n.key\"\ntls_ca = \"ca.pem\"\n",
    );
    let s = merge(Cli::default(), f, home).unwrap();
    assert_eq!(s.handshake_timeout, Duration::from_secs(2));
    assert_eq!(s.max_connections, 10);
    assert_eq!(s.max_frame, 1 << 20);
    let cert = s.tls.cert.clone().unwrap();
    assert!(cert.is_absolute() && cert.ends_with("n.pem"), "{cert:?}");
    assert!(s.tls.key.unwrap().ends_with("n.key"));

    let cli = Cli::try_parse_from([
        "pool-master",
        "--handshake-timeout",
        "750ms",
        "--max-connections",
        "3",
        "--max-frame",
        "64KiB",
        "--tls-cert",
        "flag.pem",
    ])
    .unwrap();
    let f = file("max_connections = 10\ntls_cert = \"n.pem\"\ntls_ca = \"ca.pem\"\n");
    let s = merge(cli, f, home).unwrap();
    assert_eq!(s.handshake_timeout, Duration::from_millis(750));
    assert_eq!(s.max_connections, 3);
    assert_eq!(s.max_frame, 64 << 10);
    assert_eq!(s.tls.cert, Some(PathBuf::from("flag.pem")));
    assert!(s.tls.ca.as_ref().unwrap().ends_with("ca.pem"));
    let e = s.tls.load().map(drop).unwrap_err().to_string();
    assert!(e.contains("--tls-key missing"), "{e}");

    assert!(Cli::try_parse_from(["pool-master", "--max-frame", "lots"]).is_err());
}

/// The file overrides defaults; the command line (flag or env, as clap
/// resolved it) overrides the file.
#[test]
fn flag_over_file_over_default() {
    let f = file(
        "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nreport_interval = \"200ms\"\ntree = [\"a.toml\"]\nlog_json = true\n",
    );
    let s = merge(Cli::default(), f, None).unwrap_err();
    assert!(s.to_string().contains("state-dir"), "{s}");

    let f = file(
        "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nstate_dir = \"st\"\ntree = [\"a.toml\"]\n",
    );
    let s = merge(Cli::default(), f, None).unwrap();
    assert_eq!(s.listen, "0.0.0.0:9000");
    assert_eq!(s.http, None);
    assert_eq!(s.placement, PlacementStrategy::Random);
    assert_eq!(s.node_timeout, Duration::from_secs(1));
    assert!(s.state_dir.ends_with("st") && s.state_dir.is_absolute());
    assert!(s.trees[0].ends_with("a.toml"));

    let cli = Cli::try_parse_from([
        "pool-master",
        "--listen",
        "127.0.0.1:1",
        "--http",
        "127.0.0.1:2",
        "--placement",
        "two-choices",
        "--node-timeout",
        "5s",
        "--tree",
        "x.toml",
        "--tree",
        "y.toml",
        "--log-json",
    ])
    .unwrap();
    let f = file(
        "listen = \"0.0.0.0:9000\"\nhttp = \"off\"\nplacement = \"random\"\nnode_timeout = \"1s\"\nstate_dir = \"st\"\ntree = [\"a.toml\"]\nlog_json = false\n",
    );
    let s = merge(cli, f, None).unwrap();
    assert_eq!(s.listen, "127.0.0.1:1");
    assert_eq!(s.http.as_deref(), Some("127.0.0.1:2"));
    assert_eq!(s.placement, PlacementStrategy::TwoChoices);
    assert_eq!(s.node_timeout, Duration::from_secs(5));
    assert_eq!(
        s.trees,
        vec![PathBuf::from("x.toml"), PathBuf::from("y.toml")]
    );
    assert!(s.log_json);
}

/// Bad values are refused with the flag or key named.
#[test]
fn bad_values_name_their_setting() {
    let e = Cli::try_parse_from(["pool-master", "--node-timeout", "3"]).unwrap_err();
    assert!(e.to_string().contains("--node-timeout"), "{e}");
    let e = Cli::try_parse_from(["pool-master", "--placement", "fastest"]).unwrap_err();
    assert!(e.to_string().contains("least-loaded"), "{e}");
    let f = file("placement = \"fastest\"\nstate_dir = \"/s\"\n");
    let e = merge(Cli::default(), f, None).unwrap_err();
    assert!(format!("{e:#}").contains("placement"), "{e:#}");
}

/// Keys the master does not use (a worker's, in a shared file) are
/// reported, not fatal.
#[test]
fn unknown_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.toml");
    std::fs::write(&path, "name = \"w1\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let (f, unknown) = load_file(&path).unwrap();
    assert_eq!(f.listen.as_deref(), Some("127.0.0.1:1"));
    assert_eq!(unknown, vec!["name".to_owned()]);
}
