use super::*;

/// Non-negative returns are lengths; each error code maps to its error.
#[test]
fn return_codes_map_to_errors() {
    assert_eq!(check(0, "x"), Ok(0));
    assert_eq!(check(42, "x"), Ok(42));
    assert_eq!(check(-1, "x"), Err(Error::Timeout));
    assert_eq!(check(-2, "x"), Err(Error::NoProc));
    assert_eq!(check(-3, "x"), Err(Error::NoConnection));
    assert_eq!(
        check(-4, "name taken"),
        Err(Error::BadArgument("name taken".into()))
    );
    assert!(matches!(check(-5, "spawn"), Err(Error::Other(t)) if t.contains("spawn")));
    assert!(matches!(check(-99, "spawn"), Err(Error::Other(t)) if t.contains("-99")));
}

/// Timeouts become whole milliseconds, saturating instead of wrapping.
#[test]
fn timeouts_in_milliseconds() {
    assert_eq!(millis(Duration::from_millis(1500)), 1500);
    assert_eq!(millis(Duration::ZERO), 0);
    assert_eq!(millis(Duration::from_secs(u64::MAX)), i64::MAX);
}

/// The flag bits are the ABI's: bit 0 link, bit 1 monitor.
#[test]
fn spawn_flag_bits() {
    assert_eq!(SpawnFlags::LINK.0, 1);
    assert_eq!(SpawnFlags::MONITOR.0, 2);
    assert_eq!((SpawnFlags::LINK | SpawnFlags::MONITOR).0, 3);
    assert_eq!(SpawnFlags::default(), SpawnFlags::NONE);
}

/// A spawn answer is the pid, then the monitor's ref.
#[test]
fn spawn_answer_layout() {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&Pid::new(1, 2).to_bytes());
    out[16..].copy_from_slice(&Ref::new(3, 4).to_bytes());
    assert_eq!(read_pid(&out), (Pid::new(1, 2), Ref::new(3, 4)));
}

/// Outside a wasm module there is no host, and the panic says so.
#[test]
#[should_panic(expected = "needs the Spawnpool host")]
fn no_host_outside_wasm() {
    self_pid();
}
