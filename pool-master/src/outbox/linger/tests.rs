//! Unit tests of when a writer sends membership changes: at once in a
//! quiet pool, gathered during a burst, early for a `Down`, other frames
//! or the size cap, and never later than the wait.

use super::*;

/// One small change (an `Up` of about 40 bytes).
fn one() -> Lacking {
    Lacking {
        changes: 1,
        bytes: 40,
        down: false,
        frames: false,
    }
}

/// A single change in a quiet pool (no write carried changes lately) goes
/// out at once, whatever the pool's size: no added latency without a
/// storm.
#[test]
fn a_lone_change_goes_out_at_once() {
    let t0 = Instant::now();
    assert_eq!(Linger::default().when(t0, &one()), When::Now);
    // Long after the last burst's wait ended, again at once.
    let mut l = Linger::default();
    l.sent(t0, 10_000);
    let later = t0 + MAX_PUSH_LINGER + Duration::from_millis(1);
    assert_eq!(l.until(later), None);
    assert_eq!(l.when(later, &one()), When::Now);
}

/// Nothing lacking, nothing to send, in a burst or not.
#[test]
fn nothing_lacking_is_idle() {
    let t0 = Instant::now();
    let mut l = Linger::default();
    assert_eq!(l.when(t0, &Lacking::default()), When::Idle);
    l.sent(t0, 5);
    let frames = Lacking {
        frames: true,
        ..Lacking::default()
    };
    assert_eq!(l.when(t0, &frames), When::Idle);
}

/// Right after a write that carried changes, the next ones gather until
/// the wait (scaled with the pool) ends, then go out: one delta per wait.
#[test]
fn a_burst_gathers_until_the_wait_ends() {
    let t0 = Instant::now();
    for (members, wait) in [
        (3, PUSH_LINGER),
        (2_500, PUSH_LINGER * 2),
        (10_000, MAX_PUSH_LINGER),
        (1_000_000, MAX_PUSH_LINGER),
    ] {
        let mut l = Linger::default();
        l.sent(t0, members);
        let soon = t0 + Duration::from_millis(1);
        let many = Lacking {
            changes: 50,
            bytes: 50 * 40,
            ..one()
        };
        assert_eq!(
            l.when(soon, &many),
            When::At(t0 + wait),
            "{members} members"
        );
        assert_eq!(l.until(soon), Some(t0 + wait));
        assert_eq!(l.when(t0 + wait, &many), When::Now, "{members} members");
    }
}

/// During a wait, a `Down`, other frames to write, or changes reaching
/// the cap's step send at once; just under the step they keep gathering.
#[test]
fn downs_frames_and_the_size_cap_end_the_wait() {
    let t0 = Instant::now();
    let mut l = Linger::default();
    l.sent(t0, 10_000);
    let now = t0 + Duration::from_millis(10);
    let down = Lacking {
        down: true,
        ..one()
    };
    assert_eq!(l.when(now, &down), When::Now);
    let frames = Lacking {
        frames: true,
        ..one()
    };
    assert_eq!(l.when(now, &frames), When::Now);
    let under = Lacking {
        changes: 800,
        bytes: CAP_STEP - 1,
        ..one()
    };
    assert!(matches!(l.when(now, &under), When::At(_)));
    let at_cap = Lacking {
        bytes: CAP_STEP,
        ..under
    };
    assert_eq!(l.when(now, &at_cap), When::Now);
    assert!(CAP_STEP * 2 <= DELTA_CAP as u64);
}

/// The wait follows the last write that carried changes, not the first:
/// each send starts a new one.
#[test]
fn each_send_starts_a_new_wait() {
    let t0 = Instant::now();
    let mut l = Linger::default();
    l.sent(t0, 1);
    let t1 = t0 + PUSH_LINGER + Duration::from_millis(5);
    assert_eq!(l.when(t1, &one()), When::Now);
    l.sent(t1, 1);
    assert_eq!(l.when(t1, &one()), When::At(t1 + PUSH_LINGER));
}
