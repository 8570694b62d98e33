use super::*;

/// Every fixed reason and the text forms round-trip through text.
#[test]
fn text_form_round_trips() {
    let all = [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("x".into()),
        ExitReason::Killed,
        ExitReason::Kill,
        ExitReason::NoProc,
        ExitReason::NoConnection,
        ExitReason::Panic("boom".into()),
        ExitReason::Error("bad input".into()),
    ];
    for r in all {
        assert_eq!(r.to_string().parse::<ExitReason>().unwrap(), r);
    }
    assert_eq!(ExitReason::from("normal"), ExitReason::Normal);
    assert_eq!(ExitReason::from(" noproc "), ExitReason::NoProc);
}

/// The host's reasons for traps, fuel and memory are recognised, and only
/// as errors.
#[test]
fn host_reasons_are_recognised() {
    let trap = ExitReason::from("wasm trap: wasm `unreachable` instruction executed");
    assert!(trap.is_trap() && !trap.is_out_of_fuel() && !trap.is_memory_limit());
    assert!(
        ExitReason::from("out of fuel: the spawn's budget of 5 units is spent").is_out_of_fuel()
    );
    assert!(
        ExitReason::from("memory limit: the module asked for more than 10 bytes").is_memory_limit()
    );
    assert!(!ExitReason::Normal.is_trap());
    assert!(!ExitReason::Panic("wasm trap: x".into()).is_trap());
}

/// Only normal and the shutdowns are clean for a transient child.
#[test]
fn clean_for_transient() {
    assert!(ExitReason::Normal.is_clean_for_transient());
    assert!(ExitReason::ShutdownWith("x".into()).is_clean_for_transient());
    assert!(!ExitReason::Killed.is_clean_for_transient());
    assert!(!ExitReason::Error("x".into()).is_clean_for_transient());
    assert!(ExitReason::Normal.is_normal() && !ExitReason::Shutdown.is_normal());
}
