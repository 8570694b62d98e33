//! Internal crate: examples.
