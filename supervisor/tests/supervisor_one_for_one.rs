//! one_for_one supervisors (docs/semantics.md "Strategies"): start order,
//! `which_children` order, and restarting only the child that failed.

mod support;

use pool_proto::Strategy;
use supervisor::supervisor::{self as sup, Spec};
use support::*;

fn abc(log: &Log) -> Spec {
    Spec::new("s", Strategy::OneForOne)
        .intensity(10)
        .child(plain(log, "A"))
        .child(plain(log, "B"))
        .child(plain(log, "C"))
}

/// sup.start-order: children start one at a time in list order, so their
/// pids increase in that order, and all run when `start` returns.
#[tokio::test]
async fn children_start_in_list_order() {
    let rt = node();
    let log = Log::new();
    let s = sup::start(&rt, abc(&log)).await.unwrap();
    assert_eq!(log.take(), ["started A", "started B", "started C"]);
    let a = running(&rt, s, "A").await;
    let b = running(&rt, s, "B").await;
    let c = running(&rt, s, "C").await;
    assert!(a.serial() < b.serial() && b.serial() < c.serial());
    for p in [a, b, c] {
        assert!(rt.is_alive(p));
    }
}

/// api.which-order: `which_children` lists the most recently started child
/// first.
#[tokio::test]
async fn which_children_lists_the_newest_first() {
    let rt = node();
    let log = Log::new();
    let s = sup::start(&rt, abc(&log)).await.unwrap();
    let ids: Vec<_> = children(&rt, s)
        .await
        .into_iter()
        .map(|(id, _)| id.unwrap())
        .collect();
    assert_eq!(ids, ["C", "B", "A"]);
    sup::start_child(&rt, s, plain(&log, "D")).await.unwrap();
    let ids: Vec<_> = children(&rt, s)
        .await
        .into_iter()
        .map(|(id, _)| id.unwrap())
        .collect();
    assert_eq!(ids, ["D", "C", "B", "A"]);
}

/// strategy.one-for-one: only the failed child is restarted, as a new
/// process; its siblings keep their pids and are not touched.
#[tokio::test]
async fn only_the_failed_child_is_restarted() {
    let rt = node();
    let log = Log::new();
    let s = sup::start(&rt, abc(&log)).await.unwrap();
    let (a, b, c) = (
        running(&rt, s, "A").await,
        running(&rt, s, "B").await,
        running(&rt, s, "C").await,
    );
    log.take();
    crash_child(&rt, b).await;
    let b2 = running(&rt, s, "B").await;
    assert_ne!(b2, b);
    assert!(!rt.is_alive(b));
    assert_eq!(running(&rt, s, "A").await, a);
    assert_eq!(running(&rt, s, "C").await, c);
    assert_eq!(log.take(), ["started B"]);
}
