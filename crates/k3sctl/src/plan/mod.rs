//! Planning, pure: (desired spec, observed hosts and nodes) → ordered steps per host with a
//! human diff and a JSON form. `k3sctl plan` prints it; `apply` runs exactly these steps.

pub mod adopt;
pub mod check;
pub mod compute;
pub mod datastore;
pub mod desired;
pub mod diff;
mod disruption;
pub mod drift;
pub mod from_spec;
pub mod lifecycle;
pub mod manifest_drift;
pub mod named_by_address;
pub mod observed;
pub mod restore;
pub mod rotate;
pub mod show;
pub mod step;
pub mod upgrade;

#[cfg(test)]
mod adopt_tests;
#[cfg(test)]
mod tests;

pub use compute::{PlanError, compute_plan};
pub use datastore::DatastoreAction;
pub use desired::{Desired, DesiredExport, DesiredFile, DesiredHost, FileContent};
pub use disruption::{Disruption, hosts_disrupted};
pub use drift::{DriftFix, DriftItem, DriftKind};
pub use observed::{EtcdMember, Observed, ObservedFile, ObservedHost, ObservedNode, StartFiles};
pub use show::{render_host_plans, render_plan};
pub use step::{DrainSettings, ExportStep, HostPlan, Plan, Step};
