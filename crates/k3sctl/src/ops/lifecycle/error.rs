//! Why a lifecycle operation did not start. Nothing was changed in every case.

use super::super::error::OpsError;

/// A lifecycle operation refused or could not look at the cluster; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Loading the spec, connecting or preparing failed.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The request is not safe or not possible as asked (what and why, with a hint).
    #[error("{0}\n  nothing was changed")]
    Refused(String),
    /// No server answered for the API.
    #[error("cannot reach the cluster's API through any server: {0}\n  nothing was changed")]
    NoApi(String),
}
