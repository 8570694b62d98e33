//! The master killed (-9) and restarted on the same address and state
//! directory: workers keep their processes, rejoin, and re-register their
//! global names (DESIGN.md "Failure detection", docs/protocol.md "Joining").

use std::time::Duration;

use anyhow::Result;
use pool_cluster_tests::{Cluster, wait_until};
use serde_json::json;

/// After kill -9 of the master the workers keep running; a master started
/// again on the same address and state directory sees both workers rejoin
/// with their ids (same incarnations), lists their processes again, has the
/// global name back on the same pid, and the processes kept their state (a
/// counter still counts from where it was).
#[test]
fn master_restart_keeps_processes_and_global_names() -> Result<()> {
    let mut c = Cluster::new()?;
    c.start_master()?;
    c.start_worker("w1", &[])?;
    c.start_test_worker("w2", &[])?;
    c.wait_nodes(2)?;
    let ids = |c: &Cluster| -> Result<Vec<(String, String)>> {
        let mut v: Vec<(String, String)> = c
            .nodes()?
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or("").to_owned(),
                    n["id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let ids_before = ids(&c)?;

    let (echo, _) = c.spawn(&["builtin.echo", "--on", "w1"])?;
    let (counter, _) = c.spawn(&["builtin.counter", "--on", "w2"])?;
    assert_eq!(c.call(&counter, &json!("inc"))?, json!(1));
    let (named, _) = c.spawn(&["test.named", r#"{"name":"svc"}"#, "--on", "w2"])?;
    wait_until("the global name", Duration::from_secs(10), || {
        (c.poolctl_json(&["names"]).ok()? == json!({"svc": named})).then_some(())
    })?;

    if let Some(m) = c.master.as_mut() {
        m.kill9();
    }
    let (code, _) = c.poolctl_fail(&["nodes"])?;
    assert_eq!(code, 1, "no master: poolctl fails");
    assert!(c.worker("w1").is_running() && c.worker("w2").is_running());

    c.start_master()?;
    c.wait_nodes(2)?;
    assert_eq!(ids(&c)?, ids_before, "the same incarnations rejoin");
    wait_until(
        "the global name to be back",
        Duration::from_secs(15),
        || (c.poolctl_json(&["names"]).ok()? == json!({"svc": named})).then_some(()),
    )?;
    let ps = c.poolctl_json(&["ps"])?;
    for pid in [&echo, &counter, &named] {
        assert!(
            ps.as_array()
                .is_some_and(|a| a.iter().any(|p| p["pid"] == pid.as_str())),
            "{pid} should be listed again: {ps}"
        );
    }
    assert_eq!(c.call(&counter, &json!("inc"))?, json!(2), "state survived");
    assert_eq!(c.call(&named, &json!("hi"))?, json!("hi"));
    assert_eq!(c.call(&echo, &json!([1]))?, json!([1]));
    Ok(())
}
