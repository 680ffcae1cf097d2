//! Executing a plan: order, bounded parallelism, serial groups, the restart gate, the lock,
//! progress events and the per-host summary. Knows no YAML: it runs [`crate::plan`] steps
//! through [`crate::host::Transport`]s and a [`api::ClusterApi`].

pub mod adopt_record;
pub mod api;
pub mod binary_record;
pub mod context;
pub mod convert;
pub mod engine;
pub mod etcd;
pub mod events;
pub mod hints;
pub mod host_steps;
pub mod join_probe;
pub mod lock;
pub mod lock_holder;
pub mod observe;
pub mod outcome;
pub mod service;

#[cfg(test)]
mod tests;

pub use api::{ApiConnector, ApiError, ClusterApi, FailoverConnector};
pub use context::{RunOptions, Shared};
pub use engine::execute;
pub use events::{Event, EventKind, JsonReporter, MemoryReporter, PlainReporter, Reporter};
pub use outcome::{HostOutcome, HostStatus, RunSummary};
