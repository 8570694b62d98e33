//! Internal crate: tests.
