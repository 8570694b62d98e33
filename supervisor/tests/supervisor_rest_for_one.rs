//! rest_for_one supervisors (docs/semantics.md "Strategies"): the probe
//! ordering, the untouched children before the failed one, and temporary
//! bystanders.

mod support;

use pool_proto::{Restart, Strategy};
use supervisor::supervisor::{self as sup, Spec};
use support::*;

/// strategy.rest-for-one: with A, B, C, D and B crashing, the children
/// after B stop in reverse start order and B, C, D start again in start
/// order: `stopped D, stopped C, started B, started C, started D`; A keeps
/// its pid. One restart: intensity 1 is enough.
#[tokio::test]
async fn probe_order_and_earlier_children_untouched() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::RestForOne)
        .intensity(1)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"))
        .child(plain(&log, "C"))
        .child(plain(&log, "D"));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    let b = running(&rt, s, "B").await;
    let (c, d) = (running(&rt, s, "C").await, running(&rt, s, "D").await);
    log.take();
    crash_child(&rt, b).await;
    assert_eq!(
        log.take(),
        [
            "stopped D",
            "stopped C",
            "started B",
            "started C",
            "started D"
        ]
    );
    assert_eq!(running(&rt, s, "A").await, a);
    for (id, old) in [("B", b), ("C", c), ("D", d)] {
        assert_ne!(running(&rt, s, id).await, old);
    }
    assert!(rt.is_alive(s));
}

/// strategy.rest-for-one: when the last child fails, only it restarts.
#[tokio::test]
async fn the_last_child_failing_restarts_only_itself() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::RestForOne)
        .intensity(1)
        .child(plain(&log, "A"))
        .child(plain(&log, "B"));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    log.take();
    crash_child(&rt, running(&rt, s, "B").await).await;
    assert_eq!(log.take(), ["started B"]);
    assert_eq!(running(&rt, s, "A").await, a);
}

/// strategy.temporary-bystander: a temporary child after the failed one is
/// stopped and dropped; a temporary child before it is untouched; a stopped
/// transient child after it comes back.
#[tokio::test]
async fn temporary_bystanders_and_stopped_children_of_the_tail() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::RestForOne)
        .intensity(5)
        .child(plain(&log, "T0").restart(Restart::Temporary))
        .child(plain(&log, "B"))
        .child(plain(&log, "T1").restart(Restart::Temporary))
        .child(plain(&log, "R").restart(Restart::Transient));
    let s = sup::start(&rt, spec).await.unwrap();
    let t0 = running(&rt, s, "T0").await;
    sup::terminate_child(&rt, s, "R").await.unwrap();
    log.take();
    crash_child(&rt, running(&rt, s, "B").await).await;
    assert_eq!(log.take(), ["stopped T1", "started B", "started R"]);
    assert_eq!(running(&rt, s, "T0").await, t0);
    assert_eq!(state_of(&rt, s, "T1").await, None);
}
