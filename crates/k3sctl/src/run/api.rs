//! What the run needs from the Kubernetes API, as a trait so the engine is testable without a
//! cluster; the real implementation is an adapter over [`crate::kube`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::kube::StartedAt;
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
    /// Puts `wanted` on the Node and removes the taints k3sctl set earlier that are no longer
    /// wanted (never another's); with `adopt`, wanted taints already present become k3sctl's.
    /// Returns the wanted taints left alone because another taint with their key and effect
    /// exists (described).
    async fn enforce_taints(
        &self,
        name: &str,
        wanted: &[String],
        adopt: bool,
    ) -> Result<Vec<String>, ApiError>;
    /// Waits until the node is registered and Ready; when `started_at` is given (its K3s start
    /// on the node's clock), as posted after that start, not a stale condition.
    async fn wait_node_ready(
        &self,
        name: &str,
        started_at: Option<StartedAt>,
        timeout: Duration,
    ) -> Result<(), ApiError>;
    /// Waits until server `name` is a voting etcd member (`EtcdIsVoter=True`).
    async fn wait_etcd_voter(&self, name: &str, timeout: Duration) -> Result<(), ApiError>;
}

/// Tries several connectors in order (one per server) and uses the first that answers: the API
/// stays reachable while any server runs.
pub struct FailoverConnector {
    connectors: Vec<(String, Arc<dyn ApiConnector>)>,
}

impl FailoverConnector {
    /// Connectors by server name, in the order to try.
    pub fn new(connectors: Vec<(String, Arc<dyn ApiConnector>)>) -> Self {
        Self { connectors }
    }
}

#[async_trait]
impl ApiConnector for FailoverConnector {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        let mut failures = Vec::new();
        for (server, connector) in &self.connectors {
            match connector.connect().await {
                Ok(api) => match api.readyz().await {
                    Ok(()) => return Ok(api),
                    Err(e) => failures.push(format!("{server}: {e}")),
                },
                Err(e) => failures.push(format!("{server}: {e}")),
            }
        }
        Err(ApiError(if failures.is_empty() {
            "no server to reach the API through".into()
        } else {
            format!("no server answered: {}", failures.join("; "))
        }))
    }
}

/// Opens a [`ClusterApi`] once a server runs.
#[async_trait]
pub trait ApiConnector: Send + Sync {
    /// Connects (reads the admin kubeconfig, opens the tunnel).
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError>;
}
