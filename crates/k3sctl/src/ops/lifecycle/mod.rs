//! Node lifecycle operations: `node remove`, `node replace` (canary cutover, surge-then-remove
//! for servers) and `reset`. Each is two halves: a `prepare_*` that loads the spec, connects,
//! looks at the cluster and the hosts, judges safety and returns the ordered steps (changing
//! nothing; the CLI shows them and asks for a confirmation), and a `run_*` that executes
//! exactly those steps through [`crate::run::lifecycle`].

mod context;
mod error;
pub mod remove;
pub mod replace;
pub mod reset;

pub use context::{LifecyclePlan, LifecycleReport};
pub use error::LifecycleError;
pub use remove::{RemoveRequest, prepare_remove};
pub use replace::{ReplaceRequest, prepare_replace};
pub use reset::{ResetRequest, prepare_reset};
