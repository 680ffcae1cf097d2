//! Errors of operations: each says where (spec field, host) and what to do.

use crate::host::HostError;
use crate::plan::PlanError;
use crate::run::lock::LockError;

/// Why an operation stopped before or outside the per-host steps.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The spec is invalid or refers to something unreadable.
    #[error("{0}")]
    Spec(String),
    /// Something the spec asks for is not implemented yet.
    #[error("{0}")]
    Unsupported(String),
    /// Hosts could not be reached (all listed); nothing was changed.
    #[error("cannot reach {} host(s); nothing was changed:\n{}{hint}", .errors.len(), list(.errors))]
    Unreachable {
        /// One error per host.
        errors: Vec<HostError>,
        /// What the user can do (starts with a newline, or is empty).
        hint: String,
    },
    /// `--skip-unreachable`, but no server can be reached (or, for a cluster not created yet,
    /// not the first server, which starts it).
    #[error(
        "{0}\n  --skip-unreachable cannot leave out every server: the join token, the API and \
         the apply lock are on the servers, so no other host can be brought to the spec without \
         one (and a new cluster needs its first server); nothing was changed"
    )]
    FirstServerUnreachable(HostError),
    /// A host problem.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Preflight found problems (all listed).
    #[error("preflight found {} problem(s); nothing was changed:\n{}", .0.len(), .0.join("\n"))]
    Preflight(Vec<String>),
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The lock is held.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The binary is unusable.
    #[error(transparent)]
    Binary(#[from] super::binary::BinaryError),
    /// Observation failed.
    #[error(transparent)]
    Observe(#[from] crate::run::observe::ObserveError),
    /// The release download failed.
    #[error("{0}")]
    Download(String),
    /// A local credential file (export or the user's kubeconfig) cannot be read or written.
    #[error(transparent)]
    LocalFile(#[from] super::local_file::LocalFileError),
    /// Kubeconfig export failed.
    #[error("{0}")]
    Kubeconfig(String),
    /// The operation did not get its confirmation; nothing was changed.
    #[error(transparent)]
    Confirm(#[from] super::confirm::ConfirmError),
    /// An etcd snapshot operation failed or cannot run on this cluster.
    #[error("{0}")]
    Etcd(String),
    /// An etcd restore cannot start, or stopped part-way (then re-running it resumes).
    #[error(transparent)]
    Restore(#[from] crate::plan::restore::RestoreError),
}

fn list(errors: &[HostError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
