//! Internal crate: benches.
