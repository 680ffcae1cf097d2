//! `k3sctl init --from-hosts`: a spec made from K3s as it runs on hosts another tool set up
//! (the install script, k3s-ansible, k3sup). `read` gathers what the hosts and the API say;
//! `map` (pure) turns it into a spec that reproduces each node's effective configuration, with
//! the origin of every value as a comment and warnings for what the spec cannot express.

pub mod map;
#[cfg(test)]
mod map_tests;
pub mod read;

pub use map::{HostSeen, Imported, NodeSeen, annotate, build};
pub use read::read_hosts;
