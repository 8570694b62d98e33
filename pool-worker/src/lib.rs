//! The worker node runtime (in progress).
