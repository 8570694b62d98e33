//! auto_shutdown and significant children (docs/semantics.md
//! "auto_shutdown"): which exits trigger a shutdown, `any_significant`
//! versus `all_significant`, what never triggers, escalation, and the
//! combinations refused at start.

mod support;

use pool_proto::{AutoShutdown, ExitReason, Restart, Strategy};
use supervisor::supervisor::{self as sup, Child, ChildPid, Spec};
use support::*;

fn sig(log: &Log, id: &str, restart: Restart) -> Child {
    plain(log, id).restart(restart).significant(true)
}

/// auto.any-significant: under `any_significant`, a significant transient
/// child exiting `normal`, `shutdown` or `{shutdown, _}` shuts the
/// supervisor down: the other children stop in reverse start order and it
/// exits `shutdown`.
#[tokio::test]
async fn a_significant_transient_clean_exit_shuts_the_supervisor_down() {
    for reason in [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("done".into()),
    ] {
        let rt = node();
        let log = Log::new();
        let spec = Spec::new("s", Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(plain(&log, "A"))
            .child(sig(&log, "S", Restart::Transient))
            .child(plain(&log, "C"));
        let s = sup::start(&rt, spec).await.unwrap();
        let w = watch(&rt, s).await;
        log.take();
        end_child(&rt, running(&rt, s, "S").await, Why::Exit(reason.clone())).await;
        assert_eq!(w.reason().await, ExitReason::Shutdown, "{reason}");
        assert_eq!(log.take(), ["stopped C", "stopped A"], "{reason}");
    }
}

/// auto.temporary: a significant temporary child triggers on any exit, a
/// crash included.
#[tokio::test]
async fn a_significant_temporary_child_triggers_on_any_exit() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(plain(&log, "A"))
        .child(sig(&log, "T", Restart::Temporary));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    crash_child(&rt, running(&rt, s, "T").await).await;
    assert_eq!(w.reason().await, ExitReason::Shutdown);
}

/// auto.not-a-trigger: a significant transient child that crashes is
/// restarted; that is no trigger.
#[tokio::test]
async fn a_crashing_significant_transient_child_is_restarted() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(sig(&log, "S", Restart::Transient));
    let s = sup::start(&rt, spec).await.unwrap();
    let old = running(&rt, s, "S").await;
    crash_child(&rt, old).await;
    assert_ne!(running(&rt, s, "S").await, old);
    assert!(rt.is_alive(s));
}

/// auto.not-a-trigger: a non-significant child's clean exit is no trigger.
#[tokio::test]
async fn a_non_significant_exit_is_no_trigger() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(plain(&log, "R").restart(Restart::Transient))
        .child(sig(&log, "S", Restart::Transient));
    let s = sup::start(&rt, spec).await.unwrap();
    end_child(
        &rt,
        running(&rt, s, "R").await,
        Why::Exit(ExitReason::Normal),
    )
    .await;
    assert_eq!(state_of(&rt, s, "R").await, Some(ChildPid::Undefined));
    assert!(rt.is_alive(s));
}

/// auto.not-a-trigger: `terminate_child` of a significant child is no
/// trigger.
#[tokio::test]
async fn terminate_child_of_a_significant_child_is_no_trigger() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(sig(&log, "S", Restart::Transient))
        .child(sig(&log, "T", Restart::Temporary));
    let s = sup::start(&rt, spec).await.unwrap();
    sup::terminate_child(&rt, s, "S").await.unwrap();
    sup::terminate_child(&rt, s, "T").await.unwrap();
    assert!(rt.is_alive(s));
    assert_eq!(
        children(&rt, s).await,
        [(Some("S".to_owned()), ChildPid::Undefined)]
    );
}

/// auto.not-a-trigger: significant children stopped as bystanders of a
/// group restart are no trigger (a transient one comes back, a temporary
/// one is dropped).
#[tokio::test]
async fn significant_bystanders_are_no_trigger() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForAll)
        .intensity(5)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(plain(&log, "A"))
        .child(sig(&log, "S", Restart::Transient))
        .child(sig(&log, "T", Restart::Temporary));
    let s = sup::start(&rt, spec).await.unwrap();
    crash_child(&rt, running(&rt, s, "A").await).await;
    assert!(rt.is_alive(s));
    running(&rt, s, "S").await;
    assert_eq!(state_of(&rt, s, "T").await, None);
}

/// auto.all-significant: under `all_significant` the supervisor shuts down
/// only when a trigger leaves no significant child running; a significant
/// child stopped with `terminate_child` does not count as running.
#[tokio::test]
async fn all_significant_waits_for_the_last_significant_child() {
    let rt = node();
    let log = Log::new();
    let spec = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(plain(&log, "A"))
        .child(sig(&log, "S1", Restart::Transient))
        .child(sig(&log, "S2", Restart::Transient))
        .child(sig(&log, "S3", Restart::Temporary));
    let s = sup::start(&rt, spec).await.unwrap();
    let w = watch(&rt, s).await;
    end_child(
        &rt,
        running(&rt, s, "S1").await,
        Why::Exit(ExitReason::Normal),
    )
    .await;
    assert!(rt.is_alive(s), "S2 and S3 still run");
    sup::terminate_child(&rt, s, "S3").await.unwrap();
    assert!(rt.is_alive(s), "terminate_child is no trigger");
    log.take();
    end_child(
        &rt,
        running(&rt, s, "S2").await,
        Why::Exit(ExitReason::Shutdown),
    )
    .await;
    assert_eq!(w.reason().await, ExitReason::Shutdown);
    assert_eq!(log.take(), ["stopped A"]);
}

/// auto.escalation: a significant transient nested supervisor that shuts
/// itself down (`shutdown`) is a trigger for its parent too.
#[tokio::test]
async fn auto_shutdown_escalates_through_a_significant_supervisor() {
    let rt = node();
    let log = Log::new();
    let inner = Spec::new("inner", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(sig(&log, "S", Restart::Transient))
        .child(plain(&log, "I"));
    let root = Spec::new("root", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(plain(&log, "A"))
        .child(
            Child::supervisor("inner", inner)
                .restart(Restart::Transient)
                .significant(true),
        );
    let r = sup::start(&rt, root).await.unwrap();
    let inner_pid = running(&rt, r, "inner").await;
    let w = watch(&rt, r).await;
    log.take();
    end_child(
        &rt,
        running(&rt, inner_pid, "S").await,
        Why::Exit(ExitReason::Normal),
    )
    .await;
    assert_eq!(w.reason().await, ExitReason::Shutdown);
    assert_eq!(log.take(), ["stopped I", "stopped A"]);
}

/// auto.validation: `significant` needs an `auto_shutdown` other than
/// `never` and a non-permanent child, and simple_one_for_one cannot have an
/// `auto_shutdown`: each is refused at start with `bad combination`.
#[tokio::test]
async fn bad_combinations_are_refused_at_start() {
    let rt = node();
    let log = Log::new();
    let under_never = Spec::new("s", Strategy::OneForOne).child(sig(&log, "S", Restart::Transient));
    let permanent = Spec::new("s", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(sig(&log, "S", Restart::Permanent));
    let sofo = Spec::new("s", Strategy::SimpleOneForOne)
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(plain(&log, "W"));
    for spec in [under_never, permanent, sofo] {
        let e = sup::start(&rt, spec).await.unwrap_err().to_string();
        assert!(e.contains("bad combination"), "{e}");
    }
    assert!(log.take().is_empty(), "nothing started");
    assert_eq!(rt.process_count(), 0);
}
