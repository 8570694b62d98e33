use std::time::Duration;

use pool_proto::{ErrorCode, ExitReason, NodeId, RemoteError};

use super::{BACKOFF, Backoff, StartFailure};
use crate::error::{CallError, Error, SupError};

fn remote(code: ErrorCode) -> Error {
    Error::Remote(RemoteError::new(code, "words"))
}

/// The delays double from 100 ms and stop at 2 s, however many attempts.
#[test]
fn backoff_doubles_up_to_the_cap() {
    let got: Vec<u64> = (0..8)
        .map(|a| BACKOFF.delay(a, 0.0).as_millis() as u64)
        .collect();
    assert_eq!(got, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    assert_eq!(BACKOFF.delay(u32::MAX, 0.0), Duration::from_secs(2));
}

/// Jitter only shortens a delay, by at most a quarter, and never takes it
/// over the cap; out-of-range jitter is clamped, not trusted.
#[test]
fn jitter_shortens_by_at_most_a_quarter() {
    for attempt in 0..10 {
        let plain = BACKOFF.delay(attempt, 0.0);
        for j in [0.0, 0.1, 0.5, 0.999, 1.0, 7.0, -3.0, f64::NAN] {
            let d = BACKOFF.delay(attempt, j);
            assert!(d <= plain && d <= BACKOFF.cap, "{attempt} {j}: {d:?}");
            assert!(d >= plain.mul_f64(0.75), "{attempt} {j}: {d:?}");
        }
    }
    let b = Backoff {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(60),
    };
    assert_eq!(b.delay(2, 0.5), Duration::from_millis(3500));
}

/// "Not now" failures are transient: no node for the placement, an
/// unknown or lost node (the code a spawn answers when the connection goes
/// before its answer), an overloaded node, `Unavailable`, no route, a
/// callee lost with its node.
#[test]
fn not_now_failures_are_transient() {
    for e in [
        remote(ErrorCode::NoNode),
        remote(ErrorCode::UnknownNode),
        remote(ErrorCode::Overloaded),
        remote(ErrorCode::Unavailable),
        Error::NoRoute {
            node: NodeId::random(),
        },
        Error::Call(CallError::Exit(ExitReason::NoConnection)),
        Error::Supervisor(SupError::Unavailable("x".into())),
    ] {
        assert!(e.is_transient(), "{e:?}");
        let f = StartFailure::from_error("placement label zone=z2 failed", &e);
        assert!(
            matches!(&f, StartFailure::Transient(t) if t.starts_with("placement label zone=z2 failed: ")),
            "{f:?}"
        );
    }
}

/// Failures that would repeat are permanent and keep OTP's path: an
/// unknown function, arguments that do not fit, a bad spec, a refusal,
/// an internal error, a supervisor start that failed.
#[test]
fn failures_that_would_repeat_are_permanent() {
    for e in [
        remote(ErrorCode::UnknownFunction),
        remote(ErrorCode::BadArgs),
        remote(ErrorCode::BadSpec),
        remote(ErrorCode::Refused),
        remote(ErrorCode::Internal),
        Error::UnknownFunction {
            name: "f".into(),
            known: String::new(),
        },
        Error::Start("failed_to_start_child a: nope".into()),
    ] {
        assert!(!e.is_transient(), "{e:?}");
        assert!(
            matches!(StartFailure::from_error("", &e), StartFailure::Permanent(ExitReason::Error(t)) if t == e.to_string())
        );
    }
}

/// A start function's own reason is permanent, except `noconnection`: the
/// node it was starting the child on was lost.
#[test]
fn a_start_functions_reason_is_permanent_unless_noconnection() {
    assert!(matches!(
        StartFailure::from_reason(ExitReason::NoConnection),
        StartFailure::Transient(_)
    ));
    for r in [
        ExitReason::Error("nope".into()),
        ExitReason::Panic("boom".into()),
        ExitReason::Killed,
        ExitReason::NoProc,
    ] {
        assert_eq!(
            StartFailure::from_reason(r.clone()),
            StartFailure::Permanent(r.clone())
        );
        assert_eq!(StartFailure::from(r.clone()).reason(), r);
    }
}
