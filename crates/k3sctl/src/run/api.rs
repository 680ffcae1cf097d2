//! What the run needs from the Kubernetes API, as a trait so the engine is testable without a
//! cluster; the real implementation is an adapter over [`crate::kube`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::kube::{
    CordonOutcome, DrainOptions, DrainPlan, DrainReport, DrainRules, EtcdMember, NodeInfo,
    PodHealth, SnapshotFile, StartedAt, UncordonOutcome,
};
use crate::plan::ObservedNode;
use crate::plan::manifest_drift::ObjectKey;
use crate::plan::upgrade::gate::GateVerdict;

/// An API call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

/// The cluster's API, reached through one server (see [`FailoverConnector`] for which).
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
    /// Sets every label in `wanted` on the Node to its value and removes the labels k3sctl set
    /// earlier whose keys are no longer wanted (never another's); with `adopt`, wanted labels
    /// already right become k3sctl's.
    async fn enforce_labels(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
        adopt: bool,
    ) -> Result<(), ApiError>;
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
    /// Deletes node `name`'s password Secret (`kube-system/<name>.node-password.k3s`); true
    /// when there was one.
    async fn delete_node_password(&self, name: &str) -> Result<bool, ApiError> {
        let _ = name;
        Err(unsupported("deleting a node-password secret"))
    }

    // What a rollout (upgrade, node removal) needs on top; an API that cannot do it says so.

    /// Every Node as the upgrade's judgements read it (conditions, annotations, etcd role).
    async fn node_infos(&self) -> Result<Vec<NodeInfo>, ApiError> {
        Err(unsupported("reading Node objects"))
    }
    /// etcd's own member list (`/db/info`); `None` when the server cannot answer it now (a
    /// server that is restarting).
    async fn etcd_members(&self) -> Result<Option<Vec<EtcdMember>>, ApiError> {
        Err(unsupported("reading etcd's members"))
    }
    /// Cordons `name`, marking the cordon as k3sctl's with `reason`.
    async fn cordon(&self, name: &str, reason: &str) -> Result<CordonOutcome, ApiError> {
        let _ = (name, reason);
        Err(unsupported("cordoning"))
    }
    /// Uncordons `name` when the cordon is k3sctl's.
    async fn uncordon(&self, name: &str) -> Result<UncordonOutcome, ApiError> {
        let _ = name;
        Err(unsupported("uncordoning"))
    }
    /// What draining `name` would do under `rules`, without touching anything.
    async fn preview_drain(&self, name: &str, rules: DrainRules) -> Result<DrainPlan, ApiError> {
        let _ = (name, rules);
        Err(unsupported("previewing a drain"))
    }
    /// Every pod's health in `namespace` (every namespace when `None`).
    async fn pod_healths(&self, namespace: Option<&str>) -> Result<Vec<PodHealth>, ApiError> {
        let _ = namespace;
        Err(unsupported("reading pods"))
    }
    /// Drains `name` (refused before touching anything when a pod blocks).
    async fn drain(&self, name: &str, options: &DrainOptions) -> Result<DrainReport, ApiError> {
        let _ = (name, options);
        Err(unsupported("draining"))
    }
    /// Waits until `name` is Ready with kubelet `version`.
    async fn wait_node_at(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let _ = (name, version, timeout);
        Err(unsupported("waiting for a node's version"))
    }
    /// One look at the cluster's health (nodes, kube-system pods), judged with `grace` for
    /// NotReady nodes.
    async fn health(&self, grace: Duration) -> Result<GateVerdict, ApiError> {
        let _ = grace;
        Err(unsupported("judging the cluster's health"))
    }
    /// Removes server `name`'s etcd member through K3s and waits until the member is gone;
    /// says what it did. It does not judge quorum: the caller does, right before
    /// (`run::lifecycle`, with `plan::lifecycle::check_server_removal`).
    async fn leave_etcd(&self, name: &str, timeout: Duration) -> Result<String, ApiError> {
        let _ = (name, timeout);
        Err(unsupported("removing an etcd member"))
    }
    /// Each object as the API has it (`None`: it does not exist, or its kind is unknown to
    /// the API), in the order of `keys`.
    async fn read_objects(
        &self,
        keys: &[ObjectKey],
    ) -> Result<Vec<Option<serde_json::Value>>, ApiError> {
        let _ = keys;
        Err(unsupported("reading objects"))
    }
    /// Writes the fields each document declares (server-side apply by k3sctl, taking the
    /// fields over from whoever changed them; fields it does not declare are left alone),
    /// creating an object that does not exist.
    async fn apply_objects(&self, docs: &[serde_json::Value]) -> Result<(), ApiError> {
        let _ = docs;
        Err(unsupported("applying objects"))
    }
    /// Deletes Node `name` (waiting until it is gone) and its node-password secret; says what
    /// it did.
    async fn delete_node(&self, name: &str, timeout: Duration) -> Result<String, ApiError> {
        let _ = (name, timeout);
        Err(unsupported("deleting a Node"))
    }
    /// K3s's `ETCDSnapshotFile` objects: every server's etcd snapshots; `None` when the API
    /// does not serve that kind (K3s before v1.28.4+k3s2).
    async fn snapshot_files(&self) -> Result<Option<Vec<SnapshotFile>>, ApiError> {
        Err(unsupported("listing etcd snapshot files"))
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError(format!("{what} is not supported by this API client"))
}

/// A connector that hands out one API client already connected (the upgrade's, whose tunnel
/// the caller keeps open).
pub struct ConnectedApi(pub Arc<dyn ClusterApi>);

#[async_trait]
impl ApiConnector for ConnectedApi {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        Ok(Arc::clone(&self.0))
    }
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

/// The API as a [`FailoverConnector`] reached it.
pub struct Answering {
    /// The server it answers through.
    pub server: String,
    /// The client.
    pub api: Arc<dyn ClusterApi>,
    /// The servers tried before it (in order), each with why it did not answer.
    pub passed_over: Vec<(String, ApiError)>,
}

impl FailoverConnector {
    /// The servers it tries, in order.
    pub fn servers(&self) -> Vec<String> {
        self.connectors.iter().map(|(s, _)| s.clone()).collect()
    }

    /// The API through the first server (in the given order) whose `/readyz` answers ok, and
    /// that server's name; when none answers, every server's failure.
    pub async fn connect_named(&self) -> Result<(String, Arc<dyn ClusterApi>), ApiError> {
        self.connect_answering().await.map(|a| (a.server, a.api))
    }

    /// As [`Self::connect_named`], also saying why each server tried before the one that
    /// answered did not.
    pub async fn connect_answering(&self) -> Result<Answering, ApiError> {
        let mut failures = Vec::new();
        for (server, connector) in &self.connectors {
            let answer = match connector.connect().await {
                Ok(api) => api.readyz().await.map(|()| api),
                Err(e) => Err(e),
            };
            match answer {
                Ok(api) => {
                    return Ok(Answering {
                        server: server.clone(),
                        api,
                        passed_over: failures,
                    });
                }
                Err(e) => failures.push((server.clone(), e)),
            }
        }
        Err(ApiError(if failures.is_empty() {
            "no server to reach the API through".into()
        } else {
            let each: Vec<String> = failures.iter().map(|(s, e)| format!("{s}: {e}")).collect();
            format!("no server answered: {}", each.join("; "))
        }))
    }
}

#[async_trait]
impl ApiConnector for FailoverConnector {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        self.connect_named().await.map(|(_, api)| api)
    }
}

/// Opens a [`ClusterApi`] once a server runs.
#[async_trait]
pub trait ApiConnector: Send + Sync {
    /// Connects (reads the admin kubeconfig, opens the tunnel).
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError>;
}
