//! What the run needs from the Kubernetes API, as a trait so the engine is testable without a
//! cluster; the real implementation is an adapter over [`crate::kube`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::plan::ObservedNode;

/// An API call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

/// The cluster's API, reached through the first server.
#[async_trait]
pub trait ClusterApi: Send + Sync {
    /// All nodes.
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError>;
    /// `/readyz` answers ok.
    async fn readyz(&self) -> Result<(), ApiError>;
    /// Waits until the node is registered and Ready.
    async fn wait_node_ready(&self, name: &str, timeout: Duration) -> Result<(), ApiError>;
}

/// Opens a [`ClusterApi`] once the first server runs.
#[async_trait]
pub trait ApiConnector: Send + Sync {
    /// Connects (reads the admin kubeconfig, opens the tunnel).
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError>;
}
