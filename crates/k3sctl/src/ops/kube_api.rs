//! The run's [`ClusterApi`] over the `kube` edge: the admin kubeconfig read from a server, the
//! API reached through a tunnel to its 127.0.0.1:6443 (one connector per server; see
//! [`crate::run::api::FailoverConnector`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::export::read_admin_kubeconfig;
use crate::host::Transport;
use crate::kube::{
    ApiConnection, Poll, StartedAt, TAINTS_SET_BY_K3SCTL, connect_through, enforce_taints,
    list_nodes, owned_taints, readyz, wait_etcd_voter, wait_node_ready_after,
};
use crate::plan::ObservedNode;
use crate::run::{ApiConnector, ApiError, ClusterApi};
use crate::secret::Secret;

/// K3s's annotation with the node's internal address(es).
const INTERNAL_IP_ANNOTATION: &str = "k3s.io/internal-ip";

/// Port of the API server on the first server's loopback.
const API_PORT: u16 = 6443;

/// Connects through the first server.
pub struct TunnelConnector {
    server: Arc<dyn Transport>,
    admin: Option<Secret>,
}

impl TunnelConnector {
    /// A connector for the cluster whose first server is reached by `server`; `admin` is its
    /// admin kubeconfig when already read (else it is read on connect).
    pub fn shared(server: Arc<dyn Transport>, admin: Option<Secret>) -> Arc<dyn ApiConnector> {
        Arc::new(Self { server, admin })
    }
}

struct KubeApi {
    connection: ApiConnection,
}

#[async_trait]
impl ApiConnector for TunnelConnector {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        let admin = match &self.admin {
            Some(admin) => admin.clone(),
            None => read_admin_kubeconfig(self.server.as_ref())
                .await
                .map_err(|e| ApiError(e.to_string()))?,
        };
        let connection = connect_through(self.server.as_ref(), admin.expose(), API_PORT)
            .await
            .map_err(|e| ApiError(e.to_string()))?;
        Ok(Arc::new(KubeApi { connection }))
    }
}

#[async_trait]
impl ClusterApi for KubeApi {
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError> {
        let nodes = list_nodes(&self.connection.client)
            .await
            .map_err(|e| ApiError(e.to_string()))?;
        Ok(nodes
            .into_iter()
            .map(|n| ObservedNode {
                owned_taints: owned_taints(
                    n.annotations.get(TAINTS_SET_BY_K3SCTL).map(String::as_str),
                ),
                name: n.name,
                ready: n.ready,
                kubelet_version: n.kubelet_version,
                taints: n.taints,
                etcd_voter: n.etcd_voter.map(|c| c.status),
                internal_ip: n
                    .annotations
                    .get(INTERNAL_IP_ANNOTATION)
                    .and_then(|ips| ips.split(',').next())
                    .map(|ip| ip.trim().to_owned()),
            })
            .collect())
    }

    async fn readyz(&self) -> Result<(), ApiError> {
        match readyz(&self.connection.client).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError("/readyz is not ok yet".into())),
            Err(e) => Err(ApiError(e.to_string())),
        }
    }

    async fn enforce_taints(
        &self,
        name: &str,
        wanted: &[String],
        adopt: bool,
    ) -> Result<Vec<String>, ApiError> {
        let change = enforce_taints(&self.connection.client, name, wanted, adopt)
            .await
            .map_err(|e| ApiError(e.to_string()))?;
        Ok(change.conflicts)
    }

    async fn wait_node_ready(
        &self,
        name: &str,
        started_at: Option<StartedAt>,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let poll = Poll::new(Duration::from_millis(500), timeout);
        wait_node_ready_after(&self.connection.client, name, started_at, poll)
            .await
            .map(|_| ())
            .map_err(|e| ApiError(e.to_string()))
    }

    async fn wait_etcd_voter(&self, name: &str, timeout: Duration) -> Result<(), ApiError> {
        let poll = Poll::new(Duration::from_millis(500), timeout);
        wait_etcd_voter(&self.connection.client, name, poll)
            .await
            .map(|_| ())
            .map_err(|e| ApiError(e.to_string()))
    }
}
