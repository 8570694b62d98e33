//! Chaos: a tree of 30 permanent children spread over three workers by
//! placement; one worker killed at a time, ten times, a replacement worker
//! started after each kill.

use std::time::Instant;

use anyhow::{Context, Result};

use super::common::{
    FAILOVER, echo, opts, start_cluster, start_tree_where, wait_settled, write_tree,
};

/// Ten times: `kill -9` of a worker that runs some of the 30 children (not
/// the root's), then a replacement worker. After each kill, within a
/// bounded wait, all 30 children run, each exactly once across the pool
/// (`poolctl ps`, by owner), none on a dead node; and the restart counts
/// (per child, and the root's total) add up to the number of children that
/// were on the killed workers.
#[test]
fn thirty_children_survive_ten_kills_each_running_exactly_once() -> Result<()> {
    let mut c = start_cluster(&[("w1", opts(&[])), ("w2", opts(&[])), ("w3", opts(&[]))])?;
    let children: Vec<String> = (1..=30)
        .map(|i| echo(&format!("c{i:02}"), r#""least-loaded""#))
        .collect();
    let file = write_tree(&c, "chaos", "one_for_one", 1000, &children)?;
    let mut s = start_tree_where(&c, &file, "chaos", |_| true)?;
    let root_node = s.node("chaos").to_owned();
    let mut live = vec!["w1".to_owned(), "w2".to_owned(), "w3".to_owned()];
    let mut dead: Vec<String> = Vec::new();
    let mut expected_restarts = 0usize;

    for round in 1..=10 {
        // The worker (other than the root's) with the most children.
        let victim = live
            .iter()
            .filter(|n| **n != root_node)
            .max_by_key(|n| s.on_node(n).len())
            .context("a worker to kill")?
            .clone();
        let on_victim = s.on_node(&victim).len();
        expected_restarts += on_victim;

        let t0 = Instant::now();
        c.worker(&victim).kill9();
        live.retain(|n| *n != victim);
        dead.push(victim.clone());
        let replacement = format!("r{round}");
        c.start_worker_with(&replacement, &opts(&[]))?;
        live.push(replacement);

        s = wait_settled(&c, "chaos", FAILOVER, |s| {
            for (path, (_, node)) in &s.at {
                if dead.contains(node) {
                    return Err(format!("{path} is on dead {node}"));
                }
            }
            let counted: u64 = s.view.children.iter().flatten().map(|c| c.restarts).sum();
            if counted as usize != expected_restarts
                || s.view.restarts as usize != expected_restarts
            {
                return Err(format!(
                    "restarts: children {counted}, root {}, expected {expected_restarts}",
                    s.view.restarts
                ));
            }
            Ok(())
        })
        .with_context(|| format!("round {round}: after killing {victim} ({on_victim} children)"))?;
        assert_eq!(s.at.len(), 31, "the root and 30 children: {:?}", s.at);
        let names: Vec<&str> = live.iter().map(String::as_str).collect();
        c.wait_node_set(&names)?;
        eprintln!(
            "round {round}: killed {victim} with {on_victim} children; all 30 back in {:?}",
            t0.elapsed()
        );
    }
    Ok(())
}
