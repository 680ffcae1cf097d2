//! The run's [`ClusterApi`] over the `kube` edge: the admin kubeconfig read from a server, the
//! API reached through a tunnel to its 127.0.0.1:6443 (one connector per server; see
//! [`crate::run::api::FailoverConnector`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::export::read_admin_kubeconfig;
use crate::host::Transport;
use crate::k3s::effective::node_args::NODE_ARGS_ANNOTATION;
use crate::kube::{
    ApiConnection, Client, CordonOutcome, DrainOptions, DrainPlan, DrainReport, DrainRules,
    EtcdMember, KubeError, LABELS_SET_BY_K3SCTL, NodeInfo, PodHealth, Poll, StartedAt,
    TAINTS_SET_BY_K3SCTL, UncordonOutcome, connect_through, cordon, drain_node, enforce_labels,
    enforce_taints, etcd_members, list_nodes, owned_labels, owned_taints, pod_healths,
    preview_drain, readyz, uncordon_if_ours, wait_etcd_voter, wait_node_ready,
    wait_node_ready_after,
};
use crate::kube::{
    MemberRemoval, SnapshotFile, apply_object, delete_node, list_snapshot_files, read_object,
    remove_etcd_member,
};
use crate::plan::ObservedNode;
use crate::plan::manifest_drift::ObjectKey;
use crate::plan::upgrade::gate::{GateVerdict, judge_gate};
use crate::run::{ApiConnector, ApiError, ClusterApi, FailoverConnector};
use crate::secret::Secret;

/// K3s's annotation with the node's internal address(es).
const INTERNAL_IP_ANNOTATION: &str = "k3s.io/internal-ip";

use crate::k3s::ports::API_PORT;

/// Connects through one server.
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

/// The API through the first of `servers` (in that order) whose `/readyz` answers: one
/// [`TunnelConnector`] per server that has a transport, each reading that server's admin
/// kubeconfig when it connects.
pub fn failover_through<'a>(
    servers: impl IntoIterator<Item = &'a str>,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
) -> FailoverConnector {
    FailoverConnector::new(
        servers
            .into_iter()
            .filter_map(|s| {
                let transport = transports.get(s)?;
                Some((
                    s.to_string(),
                    TunnelConnector::shared(Arc::clone(transport), None),
                ))
            })
            .collect(),
    )
}

/// The [`ClusterApi`] over a kube client.
pub struct KubeApi {
    client: Client,
    /// The tunnel the client goes through, kept open as long as the client lives.
    _connection: ApiConnection,
}

fn api_error(e: impl std::fmt::Display) -> ApiError {
    ApiError(e.to_string())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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
        Ok(Arc::new(KubeApi {
            client: connection.client.clone(),
            _connection: connection,
        }))
    }
}

#[async_trait]
impl ClusterApi for KubeApi {
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError> {
        let nodes = list_nodes(&self.client)
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
                owned_labels: owned_labels(
                    n.annotations.get(LABELS_SET_BY_K3SCTL).map(String::as_str),
                ),
                node_args: n.annotations.get(NODE_ARGS_ANNOTATION).cloned(),
                labels: n.labels,
            })
            .collect())
    }

    async fn readyz(&self) -> Result<(), ApiError> {
        match readyz(&self.client).await {
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
        let change = enforce_taints(&self.client, name, wanted, adopt)
            .await
            .map_err(|e| ApiError(e.to_string()))?;
        Ok(change.conflicts)
    }

    async fn enforce_labels(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
        adopt: bool,
    ) -> Result<(), ApiError> {
        enforce_labels(&self.client, name, wanted, adopt)
            .await
            .map(|_| ())
            .map_err(|e| ApiError(e.to_string()))
    }

    async fn wait_node_ready(
        &self,
        name: &str,
        started_at: Option<StartedAt>,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let poll = Poll::new(Duration::from_millis(500), timeout);
        wait_node_ready_after(&self.client, name, started_at, poll)
            .await
            .map(|_| ())
            .map_err(|e| ApiError(e.to_string()))
    }

    async fn wait_etcd_voter(&self, name: &str, timeout: Duration) -> Result<(), ApiError> {
        let poll = Poll::new(Duration::from_millis(500), timeout);
        wait_etcd_voter(&self.client, name, poll)
            .await
            .map(|_| ())
            .map_err(|e| ApiError(e.to_string()))
    }

    async fn node_infos(&self) -> Result<Vec<NodeInfo>, ApiError> {
        list_nodes(&self.client).await.map_err(api_error)
    }

    async fn etcd_members(&self) -> Result<Option<Vec<EtcdMember>>, ApiError> {
        match etcd_members(&self.client).await {
            Ok(members) => Ok(members),
            // A server that is restarting cannot answer; the Node view and SSH still count.
            Err(KubeError::Api { .. }) => Ok(None),
            Err(e) => Err(api_error(e)),
        }
    }

    async fn cordon(&self, name: &str, reason: &str) -> Result<CordonOutcome, ApiError> {
        cordon(&self.client, name, reason).await.map_err(api_error)
    }

    async fn uncordon(&self, name: &str) -> Result<UncordonOutcome, ApiError> {
        uncordon_if_ours(&self.client, name)
            .await
            .map_err(api_error)
    }

    async fn preview_drain(&self, name: &str, rules: DrainRules) -> Result<DrainPlan, ApiError> {
        preview_drain(&self.client, name, rules)
            .await
            .map_err(api_error)
    }

    async fn pod_healths(&self, namespace: Option<&str>) -> Result<Vec<PodHealth>, ApiError> {
        pod_healths(&self.client, namespace)
            .await
            .map_err(api_error)
    }

    async fn drain(&self, name: &str, options: &DrainOptions) -> Result<DrainReport, ApiError> {
        drain_node(&self.client, name, options)
            .await
            .map_err(api_error)
    }

    async fn wait_node_at(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let poll = Poll::new(Duration::from_millis(250), timeout);
        wait_node_ready(&self.client, name, Some(version), poll)
            .await
            .map(|_| ())
            .map_err(api_error)
    }

    async fn health(&self, grace: Duration) -> Result<GateVerdict, ApiError> {
        let nodes = self.node_infos().await?;
        let pods = self.pod_healths(Some("kube-system")).await?;
        Ok(judge_gate(&nodes, &pods, unix_now(), grace.as_secs()))
    }

    async fn delete_node_password(&self, name: &str) -> Result<bool, ApiError> {
        crate::kube::delete_node_password(&self.client, name)
            .await
            .map_err(|e| ApiError(e.to_string()))
    }

    async fn leave_etcd(&self, name: &str, timeout: Duration) -> Result<String, ApiError> {
        let poll = Poll::new(Duration::from_millis(500), timeout);
        match remove_etcd_member(&self.client, name, poll)
            .await
            .map_err(api_error)?
        {
            MemberRemoval::Removed {
                member,
                before,
                after,
            } => Ok(format!(
                "etcd member {member} removed: etcd went from {before} to {after} members"
            )),
            MemberRemoval::AlreadyGone => Ok("its etcd member was already gone".into()),
        }
    }

    async fn read_objects(
        &self,
        keys: &[ObjectKey],
    ) -> Result<Vec<Option<serde_json::Value>>, ApiError> {
        let reads = keys.iter().map(|key| {
            read_object(
                &self.client,
                &key.api_version,
                &key.kind,
                key.namespace.as_deref(),
                &key.name,
            )
        });
        futures_util::future::try_join_all(reads)
            .await
            .map_err(api_error)
    }

    async fn apply_objects(&self, docs: &[serde_json::Value]) -> Result<(), ApiError> {
        for doc in docs {
            apply_object(&self.client, doc).await.map_err(api_error)?;
        }
        Ok(())
    }

    async fn delete_node(&self, name: &str, timeout: Duration) -> Result<String, ApiError> {
        let poll = Poll::new(Duration::from_millis(300), timeout);
        let done = delete_node(&self.client, name, poll)
            .await
            .map_err(api_error)?;
        let node = if done.node { "Node deleted" } else { "no Node" };
        let secret = if done.password {
            "node-password secret deleted"
        } else {
            "no node-password secret left"
        };
        Ok(format!("{node}; {secret}"))
    }

    async fn snapshot_files(&self) -> Result<Option<Vec<SnapshotFile>>, ApiError> {
        list_snapshot_files(&self.client).await.map_err(api_error)
    }
}
