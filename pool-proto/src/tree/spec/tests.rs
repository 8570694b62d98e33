//! Unit tests of the spec types' text forms and OTP defaults.

use super::*;

#[test]
fn shutdown_text_forms() {
    assert_eq!(
        "brutal_kill".parse::<Shutdown>().unwrap(),
        Shutdown::BrutalKill
    );
    assert_eq!("infinity".parse::<Shutdown>().unwrap(), Shutdown::Infinity);
    assert_eq!(
        "5s".parse::<Shutdown>().unwrap(),
        Shutdown::Timeout(Duration::from_secs(5))
    );
    assert!("soon".parse::<Shutdown>().is_err());
    assert_eq!(
        Shutdown::Timeout(Duration::from_millis(300)).to_string(),
        "300ms"
    );
}

#[test]
fn child_defaults_follow_otp() {
    let w = ChildSpecData::worker("a", "builtin.echo", serde_json::Value::Null);
    assert_eq!(w.restart, Restart::Permanent);
    assert_eq!(
        w.effective_shutdown(),
        Shutdown::Timeout(Duration::from_secs(5))
    );
    let s = ChildSpecData::supervisor("s", SupervisorSpec::new("", Strategy::OneForAll));
    assert_eq!(s.effective_shutdown(), Shutdown::Infinity);
    let sup = SupervisorSpec::new("root", Strategy::OneForOne);
    assert_eq!((sup.intensity, sup.period.0), (1, Duration::from_secs(5)));
}

#[test]
fn placement_json_forms() {
    let p: Placement = serde_json::from_str("\"least-loaded\"").unwrap();
    assert_eq!(p, Placement::LeastLoaded);
    let p: Placement = serde_json::from_str(r#"{"node":"w2"}"#).unwrap();
    assert_eq!(p, Placement::Node("w2".into()));
    let p: Placement = serde_json::from_str(r#"{"label":"zone=a"}"#).unwrap();
    assert_eq!(p, Placement::Label("zone=a".into()));
}

#[test]
fn tree_spec_round_trips_through_msgpack() {
    let mut root = SupervisorSpec::new("ingest", Strategy::RestForOne);
    root.intensity = 3;
    root.period = Dur::from_secs(10);
    let mut c = ChildSpecData::worker("parser", "builtin.echo", serde_json::json!({"x": 1}));
    c.placement = Some(Placement::Key("user:42".into()));
    c.shutdown = Some(Shutdown::BrutalKill);
    root.children.push(c);
    root.children.push(ChildSpecData::supervisor(
        "sinks",
        SupervisorSpec::new("", Strategy::OneForAll),
    ));
    let spec = TreeSpec { supervisor: root };
    let bytes = rmp_serde::to_vec_named(&spec).unwrap();
    assert_eq!(rmp_serde::from_slice::<TreeSpec>(&bytes).unwrap(), spec);
}
