//! Errors of operations: each says where (spec field, host) and what to do.

use crate::host::HostError;
use crate::plan::PlanError;
use crate::run::lock::LockError;

/// Why an operation stopped before or outside the per-host steps.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The spec file could not be loaded: every problem, located (file, line, column, hint).
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecErrors),
    /// The spec names no server.
    #[error("{file}: spec.hosts has no server\n  hint: give at least one host `role: server`")]
    NoServer {
        /// The spec file.
        file: String,
    },
    /// A value of a valid spec cannot be used: a file it names is unreadable, a URL template
    /// does not expand, a credential reference does not resolve.
    #[error("{field}: {problem}")]
    SpecValue {
        /// The spec path (`spec.k3s.airgapImages`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A host's files could not be rendered from the spec.
    #[error(transparent)]
    Desired(#[from] crate::plan::from_spec::DesiredError),
    /// A command-line option does not fit the spec or the command (`--stdout`, `--name`).
    #[error("{0}")]
    Usage(String),
    /// A rotation's `--node`/`--services` do not fit the spec.
    #[error(transparent)]
    Rotate(#[from] crate::plan::rotate::RotatePlanError),
    /// A host the operation needs has no open connection (it was left out as unreachable).
    #[error("{host}: no connection")]
    NoConnection {
        /// The host.
        host: String,
    },
    /// A server's token file does not hold a K3s token.
    #[error("{host}: {path}: {error}")]
    Token {
        /// The server.
        host: String,
        /// The token file.
        path: String,
        /// Why it is not a token.
        error: crate::k3s::token::TokenError,
    },
    /// Servers hold different cluster tokens: two clusters.
    #[error(
        "server(s) {} hold a different cluster token than {first}: they belong to a separate cluster \
         (split brain, e.g. a server whose data was wiped and that started a new cluster)\n  \
         hint: stop K3s on the server(s) of the wrong cluster, remove {}/server \
         there, and apply again so that they join",
        .others.join(", "),
        crate::k3s::ports::DATA_DIR
    )]
    SplitBrain {
        /// The server whose token is taken as the cluster's.
        first: String,
        /// The servers holding another.
        others: Vec<String>,
    },
    /// `init --from-hosts`: a host's K3s installation cannot be read.
    #[error("{host}: {problem}")]
    ImportHost {
        /// The host.
        host: String,
        /// What is missing or unreadable.
        problem: String,
    },
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
    /// No server's Kubernetes API answered: the servers tried, in order, each with why.
    #[error(
        "the Kubernetes API answers through none of the servers ({}): {error}\n  hint: is K3s \
         running on one of them? `k3sctl check` shows each server's service",
        .servers.join(", ")
    )]
    ApiUnreachable {
        /// The servers tried, in order.
        servers: Vec<String>,
        /// Why none answered (each server's failure).
        error: crate::run::ApiError,
    },
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
