//! `trap`: executes the `unreachable` instruction, so the process ends with
//! `wasm trap: ...`.

/// Traps at once.
#[no_mangle]
pub extern "C" fn trap() {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Outside wasm (the crate's host build) the nearest thing: an abort.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
