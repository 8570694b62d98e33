//! A node's last step of shutdown, `Runtime::kill_all`: every process dies
//! `killed`, and the call returns as soon as the last one is gone.

mod support;

use std::time::Duration;

use supervisor::{Envelope, SpawnOpts};
use support::*;

/// link.kill-all: kill_all kills every process, trapping or not, linked or not, and
/// returns as soon as the table is empty: on paused time no time passes,
/// where a poll of the table would have let some pass.
#[tokio::test(start_paused = true)]
async fn kill_all_returns_when_the_last_process_is_gone() {
    let rt = node();
    let parent = rt.spawn_opts(SpawnOpts::new().trap_exit(true), |mut ctx| async move {
        while !matches!(ctx.recv().await, Envelope::Call(_)) {}
    });
    for _ in 0..10 {
        rt.spawn_opts(SpawnOpts::new().link(parent), |mut ctx| async move {
            while !matches!(ctx.recv().await, Envelope::Call(_)) {}
        });
    }
    wait_until("all 11 processes run", DEADLINE, || {
        rt.process_count() == 11
    })
    .await;
    let before = tokio::time::Instant::now();
    rt.kill_all(Duration::from_secs(3600)).await;
    assert_eq!(tokio::time::Instant::now() - before, Duration::ZERO);
    assert_eq!(rt.process_count(), 0);
    assert!(!rt.is_alive(parent));
}

/// link.kill-all: kill_all on a node with no process returns at once.
#[tokio::test(start_paused = true)]
async fn kill_all_on_an_empty_node_returns_at_once() {
    let rt = node();
    let before = tokio::time::Instant::now();
    rt.kill_all(Duration::from_secs(3600)).await;
    assert_eq!(tokio::time::Instant::now() - before, Duration::ZERO);
}
