//! `hog`: grows its memory without end, the case the memory cap exists
//! for. Without a cap it stops where wasm32 does (4 GiB) and traps.

/// Allocates 1 MiB after 1 MiB, touching each page so the memory is real,
/// and keeps all of it.
#[no_mangle]
pub extern "C" fn hog() {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        for page in chunk.chunks_mut(64 << 10) {
            // SAFETY: a write inside the chunk; volatile so it stays.
            unsafe { core::ptr::write_volatile(&mut page[0], 1) };
        }
        kept.push(chunk);
    }
}
