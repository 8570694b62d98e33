use pool_proto::{ErrorCode, ExitReason};

use super::Outcomes;

/// Every exit reason lands in its class, and refused spawns by their code.
#[test]
fn counts_by_class() {
    let o = Outcomes::default();
    for r in [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("bye".into()),
        ExitReason::Killed,
        ExitReason::Kill,
        ExitReason::Panic("boom".into()),
        ExitReason::Error("bad".into()),
        ExitReason::Error("worse".into()),
        ExitReason::NoConnection,
        ExitReason::NoProc,
    ] {
        o.exited(&r);
    }
    o.spawn_refused(ErrorCode::UnknownFunction);
    o.spawn_refused(ErrorCode::BadArgs);
    o.spawn_refused(ErrorCode::BadArgs);
    o.spawn_refused(ErrorCode::Internal);
    let s = o.snapshot();
    assert_eq!(
        s.exits(),
        [
            ("normal", 1),
            ("shutdown", 2),
            ("killed", 2),
            ("error", 3),
            ("noconnection", 1),
            ("other", 1)
        ]
    );
    assert_eq!(
        s.spawn_failures(),
        [("unknown_function", 1), ("bad_args", 2), ("other", 1)]
    );
}
