//! Executing a plan: order, bounded parallelism, serial groups, the restart gate, the lock,
//! progress events and the per-host summary. Knows no YAML: it runs [`crate::plan`] steps
//! through [`crate::host::Transport`]s and a [`api::ClusterApi`].

pub mod adopt_record;
pub mod api;
pub mod api_forward;
pub mod binary_record;
pub mod context;
pub mod convert;
pub mod dropin_takeover;
pub mod engine;
pub mod etcd;
pub mod events;
pub mod gate;
pub mod host_batch;
pub mod host_steps;
pub mod join_probe;
pub mod lifecycle;
pub mod lock;
pub mod lock_holder;
pub mod node_steps;
pub mod observe;
pub mod outcome;
pub mod quorum;
pub mod record;
pub mod rollout;
pub mod rotate_steps;
pub mod service;
pub mod snapshot;
pub mod sqlite_snapshot;
pub mod stage;
pub mod step_error;
pub mod upgrade_marker;

#[cfg(test)]
pub(crate) mod tests;

pub use api::{Answering, ApiConnector, ApiError, ClusterApi, ConnectedApi, FailoverConnector};
pub use context::{RolloutContext, RunOptions, Shared};
pub use engine::execute;
pub use events::{Event, EventKind, JsonReporter, MemoryReporter, PlainReporter, Reporter};
pub use outcome::{HostOutcome, HostStatus, RunSummary};
pub use record::{NodeFailure, NodeOutcome, NodeRecord, Stopwatch};
pub use rollout::{RolloutPolicy, RolloutResult, execute_rollout, run_turn};
