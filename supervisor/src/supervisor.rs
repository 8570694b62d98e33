//! Supervisors: the pure decisions (strategy, intensity) live in the
//! submodules; the supervisor process is being built.

pub mod intensity;
pub mod strategy;
