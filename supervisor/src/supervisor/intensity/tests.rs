//! Unit tests of the restart window (OTP.md §1.6 and §1.7), driven by
//! instants built from one base, never by the real clock.

use std::time::{Duration, Instant};

use pool_proto::{Strategy, SupervisorSpec};

use super::RestartIntensity;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `intensity = 0` means the first restart that is needed takes the
/// supervisor down: the check is made before the restart, counting it.
#[test]
fn intensity_zero_gives_up_on_first_restart() {
    let mut w = RestartIntensity::new(0, secs(5));
    assert!(!w.add_restart(Instant::now()));
}

/// With intensity N, N restarts inside the window are fine and the N+1st
/// gives up ("more than MaxR restarts within MaxT").
#[test]
fn more_than_intensity_within_period_gives_up() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(3, secs(10));
    assert!(w.add_restart(t0));
    assert!(w.add_restart(t0 + secs(1)));
    assert!(w.add_restart(t0 + secs(2)));
    assert!(!w.add_restart(t0 + secs(3)));
}

/// A previous restart just under `period` old is still counted (OTP: always
/// counted if e < period).
#[test]
fn restart_just_under_period_old_is_counted() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(1, secs(1));
    assert!(w.add_restart(t0));
    assert!(!w.add_restart(t0 + ms(999)));

    // The probe of OTP.md §1.6: intensity 1, period 1, two crashes 500 ms
    // apart kill the supervisor.
    let mut w = RestartIntensity::new(1, secs(1));
    assert!(w.add_restart(t0));
    assert!(!w.add_restart(t0 + ms(500)));
}

/// A previous restart exactly `period` old is not counted: the precise-time
/// rule counts iff e < period, which also satisfies OTP's "never if
/// e >= period + 1".
#[test]
fn restart_exactly_period_old_is_not_counted() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(1, secs(1));
    assert!(w.add_restart(t0));
    assert!(w.add_restart(t0 + secs(1)));
}

/// The probe's surviving cases: 1700 ms, 2050 ms and `suite:multiple_restarts`
/// (2.1 s apart, indefinitely) with intensity 1, period 1.
#[test]
fn restarts_spaced_beyond_period_plus_one_survive_forever() {
    let t0 = Instant::now();
    for gap in [ms(1700), ms(2050), ms(2100)] {
        let mut w = RestartIntensity::new(1, secs(1));
        for k in 0..50u32 {
            assert!(w.add_restart(t0 + gap * k), "gap {gap:?}, restart {k}");
        }
    }
}

/// The counter is per supervisor, shared by all children (probe
/// `shared_counter`: intensity 1, A crashes then B crashes, and the
/// supervisor exits). The window has no notion of which child restarted.
#[test]
fn counter_is_shared_across_children() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(1, secs(5));
    assert!(w.add_restart(t0), "child A restarted");
    assert!(
        !w.add_restart(t0 + ms(10)),
        "child B's restart exceeds the shared limit"
    );
}

/// Each retry of a failed restart counts again (OTP.md §1.7). Probe with
/// intensity 3: 1 crash, 3 failed start attempts, then the supervisor exits.
/// The crash's restart is attempt 1; failed attempts 1 and 2 are retried
/// (attempts 2 and 3); the retry after failure 3 is attempt 4 and exceeds.
#[test]
fn failed_restart_attempts_count() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(3, secs(5));
    assert!(
        w.add_restart(t0),
        "restart after the crash (fails to start)"
    );
    assert!(w.add_restart(t0), "retry 1 (fails)");
    assert!(w.add_restart(t0), "retry 2 (fails)");
    assert!(!w.add_restart(t0), "retry 3 exceeds: 0 ms after the crash");
}

/// Old restarts leave the window one by one as time passes.
#[test]
fn window_slides() {
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(2, secs(10));
    assert!(w.add_restart(t0));
    assert!(w.add_restart(t0 + secs(6)));
    assert_eq!(w.restarts_in_window(t0 + secs(9)), 2);
    assert_eq!(w.restarts_in_window(t0 + secs(10)), 1);
    // At t0+10 s the first has left the window: 2 counted, allowed.
    assert!(w.add_restart(t0 + secs(10)));
    // At t0+15 s: t0+6 and t0+10 still count, so a third gives up.
    assert!(!w.add_restart(t0 + secs(15)));
    assert_eq!(w.total_restarts(), 4);
}

/// The window takes its flags from the spec; OTP's defaults are 1 in 5 s.
#[test]
fn from_spec_uses_spec_flags() {
    let mut spec = SupervisorSpec::new("s", Strategy::OneForAll);
    spec.intensity = 4;
    spec.period = pool_proto::Dur::from_millis(2500);
    let w = RestartIntensity::from_spec(&spec);
    assert_eq!((w.intensity(), w.period()), (4, ms(2500)));
}

/// Time going backwards (it should not) counts the stamps as fresh rather
/// than panicking.
#[test]
fn time_going_backwards_is_harmless() {
    let t0 = Instant::now() + secs(100);
    let mut w = RestartIntensity::new(1, secs(1));
    assert!(w.add_restart(t0));
    assert!(!w.add_restart(t0 - secs(50)));
}

/// The give-up reason says how many restarts fell in how long a window and
/// the intensity they exceeded, and is recognised as a give-up (a
/// `{shutdown, _}`, so parents treat it as OTP's `shutdown`).
#[test]
fn give_up_reason_names_the_count_the_period_and_the_intensity() {
    use pool_proto::ExitReason;
    let t0 = Instant::now();
    let mut w = RestartIntensity::new(0, Duration::from_millis(1500));
    assert!(!w.add_restart(t0));
    let r = w.give_up_reason(t0);
    assert_eq!(
        r,
        ExitReason::ShutdownWith(
            "restart intensity exceeded: 1 restart in 1.5 s, intensity 0".into()
        )
    );
    assert!(super::gave_up(&r));
    let mut w = RestartIntensity::new(3, Duration::from_secs(10));
    for s in 0..4 {
        w.add_restart(t0 + Duration::from_secs(s));
    }
    assert_eq!(
        w.give_up_reason(t0 + Duration::from_secs(3)).to_string(),
        ExitReason::ShutdownWith(
            "restart intensity exceeded: 4 restarts in 10 s, intensity 3".into()
        )
        .to_string()
    );
    assert!(!super::gave_up(&ExitReason::ShutdownWith("other".into())));
}
