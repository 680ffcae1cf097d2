//! Turning other tools' descriptions of a cluster into a spec.

pub mod ansible;
pub mod registries;
