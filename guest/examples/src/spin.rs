//! `spin`: a loop that never ends and never calls the host, the case
//! preemption (epoch interruption), `poolctl kill` and fuel exist for.

/// Loops forever, doing arithmetic the optimiser cannot drop.
#[no_mangle]
pub extern "C" fn spin() {
    let mut x: u64 = 1;
    loop {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // SAFETY: a write to a live local; volatile so the loop stays.
        unsafe { core::ptr::write_volatile(&mut x, x) };
    }
}
