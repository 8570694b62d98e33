//! The restart matrix (docs/semantics.md "Restart type versus exit
//! reason"): every strategy × restart type × exit reason, generated from one
//! table. Each case starts a supervisor with the subject child between two
//! permanent siblings (or, for simple_one_for_one, after one dynamic
//! sibling), makes the subject end, and checks what became of it and of its
//! siblings, the exact start/stop events, and that the supervisor lives.
//!
//! A case that must restart runs with intensity 1; a case that must not runs
//! with intensity 0, so that counting a restart that did not happen would
//! take the supervisor down.

mod support;

use pool_proto::{ExitReason, Pid, Restart, Strategy};
use supervisor::supervisor::{self as sup, Child, ChildPid, Spec};
use support::*;

/// What becomes of the subject child.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Started again as a new process.
    Restarted,
    /// Not restarted; its spec stays with no process (pid `undefined`).
    KeptStopped,
    /// Not restarted; its spec is gone.
    Removed,
}

/// OTP.md §1.4, written out: what a child's own exit means.
fn expected(strategy: Strategy, restart: Restart, reason: &ExitReason) -> Fate {
    let clean = matches!(
        reason,
        ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
    );
    let fate = match (restart, clean) {
        (Restart::Permanent, _) => Fate::Restarted,
        (Restart::Transient, false) => Fate::Restarted,
        (Restart::Transient, true) => Fate::KeptStopped,
        (Restart::Temporary, _) => Fate::Removed,
    };
    // A dynamic child's spec is never kept without a process (§1.11).
    if strategy == Strategy::SimpleOneForOne && fate == Fate::KeptStopped {
        Fate::Removed
    } else {
        fate
    }
}

/// The start/stop events a restart of the subject `X` (between `A` and
/// `C`) produces, per strategy (§1.5).
fn restart_events(strategy: Strategy) -> Vec<&'static str> {
    match strategy {
        Strategy::OneForOne => vec!["started X"],
        Strategy::OneForAll => vec![
            "stopped C",
            "stopped A",
            "started A",
            "started X",
            "started C",
        ],
        Strategy::RestForOne => vec!["stopped C", "started X", "started C"],
        Strategy::SimpleOneForOne => vec!["started X"],
    }
}

/// The siblings restarted along with the subject (§1.5).
fn siblings_restarted(strategy: Strategy) -> (bool, bool) {
    match strategy {
        Strategy::OneForOne | Strategy::SimpleOneForOne => (false, false),
        Strategy::OneForAll => (true, true),
        Strategy::RestForOne => (false, true),
    }
}

async fn case(strategy: Strategy, restart: Restart, why: Why) {
    quiet_panics();
    let rt = node();
    let log = Log::new();
    let reason = why.reason();
    let fate = expected(strategy, restart, &reason);
    let intensity = u32::from(fate == Fate::Restarted);
    let label = format!("{strategy:?} × {restart:?} × {reason}");

    if strategy == Strategy::SimpleOneForOne {
        let l = log.clone();
        let template = Child::worker_with_args("tpl", move |ctx, name: String| {
            body(ctx, l.clone(), name, Mode::Plain)
        })
        .restart(restart);
        let spec = Spec::new("s", strategy)
            .intensity(intensity)
            .child(template);
        let s = sup::start(&rt, spec).await.unwrap();
        let a = sup::start_dynamic_child(&rt, s, "A".into())
            .await
            .unwrap()
            .unwrap();
        let x = sup::start_dynamic_child(&rt, s, "X".into())
            .await
            .unwrap()
            .unwrap();
        log.take();
        end_child(&rt, x, why.clone()).await;
        let pids: Vec<Pid> = children(&rt, s)
            .await
            .into_iter()
            .map(|(id, p)| {
                assert_eq!(id, None, "{label}: dynamic children have no id");
                match p {
                    ChildPid::Pid(p) => p,
                    other => panic!("{label}: a dynamic child is {other}"),
                }
            })
            .collect();
        let mut events = log.take();
        if why == Why::Killed {
            assert_eq!(events.remove(0), "stopped X", "{label}");
        }
        match fate {
            Fate::Restarted => {
                assert_eq!(pids.len(), 2, "{label}");
                assert_eq!(pids[1], a, "{label}: the sibling is untouched");
                assert_ne!(pids[0], x, "{label}: a new process");
                assert_eq!(events, restart_events(strategy), "{label}: same arguments");
            }
            Fate::Removed => {
                assert_eq!(pids, [a], "{label}");
                assert!(events.is_empty(), "{label}: {events:?}");
            }
            Fate::KeptStopped => unreachable!(),
        }
        assert!(rt.is_alive(s), "{label}: the supervisor lives");
        return;
    }

    let spec = Spec::new("s", strategy)
        .intensity(intensity)
        .child(closure(&log, "A", Mode::Plain))
        .child(closure(&log, "X", Mode::Plain).restart(restart))
        .child(closure(&log, "C", Mode::Plain));
    let s = sup::start(&rt, spec).await.unwrap();
    let a = running(&rt, s, "A").await;
    let x = running(&rt, s, "X").await;
    let c = running(&rt, s, "C").await;
    log.take();
    end_child(&rt, x, why.clone()).await;
    let mut events = log.take();
    if why == Why::Killed {
        assert_eq!(events.remove(0), "stopped X", "{label}");
    }
    let (a_restarted, c_restarted) = match fate {
        Fate::Restarted => siblings_restarted(strategy),
        _ => (false, false),
    };
    match fate {
        Fate::Restarted => {
            let x2 = running(&rt, s, "X").await;
            assert_ne!(x2, x, "{label}: a new process");
            assert_eq!(events, restart_events(strategy), "{label}");
        }
        Fate::KeptStopped => {
            assert_eq!(
                state_of(&rt, s, "X").await,
                Some(ChildPid::Undefined),
                "{label}"
            );
            assert!(events.is_empty(), "{label}: {events:?}");
        }
        Fate::Removed => {
            assert_eq!(state_of(&rt, s, "X").await, None, "{label}");
            assert!(events.is_empty(), "{label}: {events:?}");
        }
    }
    assert_eq!(running(&rt, s, "A").await != a, a_restarted, "{label}: A");
    assert_eq!(running(&rt, s, "C").await != c, c_restarted, "{label}: C");
    assert!(rt.is_alive(s), "{label}: the supervisor lives");
}

macro_rules! reasons {
    ($strategy:expr, $restart:expr) => {
        /// The child exits `normal`.
        #[tokio::test]
        async fn normal() {
            case($strategy, $restart, Why::Exit(ExitReason::Normal)).await;
        }
        /// The child exits `shutdown`.
        #[tokio::test]
        async fn shutdown() {
            case($strategy, $restart, Why::Exit(ExitReason::Shutdown)).await;
        }
        /// The child exits `{shutdown, Term}`.
        #[tokio::test]
        async fn shutdown_with_term() {
            case(
                $strategy,
                $restart,
                Why::Exit(ExitReason::ShutdownWith("done".into())),
            )
            .await;
        }
        /// The child is killed (`killed`).
        #[tokio::test]
        async fn killed() {
            case($strategy, $restart, Why::Killed).await;
        }
        /// The child exits with an error.
        #[tokio::test]
        async fn error() {
            case($strategy, $restart, Why::Exit(boom())).await;
        }
        /// The child panics.
        #[tokio::test]
        async fn panic() {
            case($strategy, $restart, Why::Panic).await;
        }
    };
}

macro_rules! restart_types {
    ($strategy:expr) => {
        /// restart.permanent: restarted whatever the reason.
        mod permanent {
            use super::*;
            reasons!($strategy, Restart::Permanent);
        }
        /// restart.transient: restarted unless the reason is normal,
        /// shutdown or {shutdown, _}.
        mod transient {
            use super::*;
            reasons!($strategy, Restart::Transient);
        }
        /// restart.temporary: never restarted; its spec is removed.
        mod temporary {
            use super::*;
            reasons!($strategy, Restart::Temporary);
        }
    };
}

/// The matrix under one_for_one.
mod one_for_one {
    use super::*;
    restart_types!(Strategy::OneForOne);
}

/// The matrix under one_for_all.
mod one_for_all {
    use super::*;
    restart_types!(Strategy::OneForAll);
}

/// The matrix under rest_for_one.
mod rest_for_one {
    use super::*;
    restart_types!(Strategy::RestForOne);
}

/// The matrix under simple_one_for_one.
mod simple_one_for_one {
    use super::*;
    restart_types!(Strategy::SimpleOneForOne);
}
