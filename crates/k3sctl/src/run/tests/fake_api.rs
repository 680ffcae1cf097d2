//! The one fake Kubernetes API of the engine tests: it answers every [`ClusterApi`] call, notes
//! what the engine asked in the shared log (`node: what`, or `cluster: what`), and behaves as
//! each scenario sets (which servers its Nodes list, whether etcd answers its member list, a
//! server left a learner, refused drains and member removals, the etcd snapshot files it
//! lists).
//!
//! A method added to [`ClusterApi`] gets its fake answer here, once, for every scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Log;
use crate::kube::{
    Condition, CordonOutcome, DrainOptions, DrainPlan, DrainReport, ETCD_ROLE_LABEL, EtcdMember,
    NodeInfo, SnapshotFile, StartedAt, UncordonOutcome,
};
use crate::plan::ObservedNode;
use crate::plan::upgrade::gate::GateVerdict;
use crate::plan::upgrade::quorum::ETCD_NODE_NAME;
use crate::run::{ApiConnector, ApiError, ClusterApi, ConnectedApi};

/// The version every Node's kubelet reports before an upgrade.
pub(crate) const FROM: &str = "v1.33.5+k3s1";

/// How long a wait for Ready takes: long enough for hosts running side by side to interleave
/// in the log.
const READY_AFTER: Duration = Duration::from_millis(20);

/// A fake API over the scenario's log; see the module doc.
pub(crate) struct FakeApi {
    log: Log,
    /// Servers whose Nodes it lists: Ready, etcd voters (a server whose K3s stopped a moment
    /// ago still looks like this), at [`FROM`].
    servers: Vec<String>,
    /// etcd answers its member list (one member per server); else "cannot answer now".
    members: bool,
    /// A server that stays a learner once it is back (seen Ready at a new version).
    stuck: Option<String>,
    /// Nodes whose drain a PodDisruptionBudget refuses.
    refuse_drain: BTreeSet<String>,
    /// Servers whose etcd member K3s refuses to remove.
    refuse_leave: BTreeSet<String>,
    /// Servers seen Ready at a new version so far.
    back: Mutex<Vec<String>>,
    /// The `ETCDSnapshotFile` objects it lists.
    snapshot_files: Vec<SnapshotFile>,
}

fn names(list: &[&str]) -> impl Iterator<Item = String> {
    list.iter().map(|s| (*s).to_string())
}

impl FakeApi {
    /// No Nodes, no member list, nothing refused.
    pub(crate) fn new(log: &Log) -> Self {
        Self {
            log: Arc::clone(log),
            servers: Vec::new(),
            members: false,
            stuck: None,
            refuse_drain: BTreeSet::new(),
            refuse_leave: BTreeSet::new(),
            back: Mutex::default(),
            snapshot_files: Vec::new(),
        }
    }

    /// The Nodes list these servers.
    pub(crate) fn servers(mut self, servers: &[&str]) -> Self {
        self.servers = names(servers).collect();
        self
    }

    /// etcd answers its member list; `stuck` stays a learner once it is back.
    pub(crate) fn members(mut self, stuck: Option<&str>) -> Self {
        self.members = true;
        self.stuck = stuck.map(str::to_string);
        self
    }

    /// A PodDisruptionBudget refuses these nodes' drains.
    pub(crate) fn refuse_drain(mut self, nodes: &[&str]) -> Self {
        self.refuse_drain = names(nodes).collect();
        self
    }

    /// K3s refuses to remove these servers' etcd members.
    pub(crate) fn refuse_leave(mut self, servers: &[&str]) -> Self {
        self.refuse_leave = names(servers).collect();
        self
    }

    /// It lists these `ETCDSnapshotFile` objects.
    pub(crate) fn snapshot_files(mut self, files: Vec<SnapshotFile>) -> Self {
        self.snapshot_files = files;
        self
    }

    /// A connector handing out this API.
    pub(crate) fn connector(self) -> Arc<dyn ApiConnector> {
        Arc::new(ConnectedApi(Arc::new(self)))
    }

    fn note(&self, line: String) {
        self.log.lock().expect("lock").push(line);
    }

    fn learner(&self, name: &str) -> bool {
        self.stuck.as_deref() == Some(name)
            && self.back.lock().expect("lock").iter().any(|b| b == name)
    }
}

#[async_trait]
impl ClusterApi for FakeApi {
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError> {
        Ok(vec![])
    }
    async fn readyz(&self) -> Result<(), ApiError> {
        Ok(())
    }
    async fn enforce_taints(
        &self,
        name: &str,
        wanted: &[String],
        adopt: bool,
    ) -> Result<Vec<String>, ApiError> {
        self.note(format!("{name}: taints {} adopt={adopt}", wanted.join(",")));
        Ok(vec![])
    }
    async fn enforce_labels(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
        adopt: bool,
    ) -> Result<(), ApiError> {
        let pairs: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.note(format!("{name}: labels {} adopt={adopt}", pairs.join(",")));
        Ok(())
    }
    async fn wait_node_ready(
        &self,
        name: &str,
        started_at: Option<StartedAt>,
        _: Duration,
    ) -> Result<(), ApiError> {
        let after = started_at.map(|s| s.second);
        self.note(format!("{name}: wait for Ready posted after {after:?}"));
        tokio::time::sleep(READY_AFTER).await;
        self.note(format!("{name}: ready"));
        Ok(())
    }
    async fn wait_etcd_voter(&self, name: &str, _: Duration) -> Result<(), ApiError> {
        self.note(format!("{name}: voter"));
        Ok(())
    }
    async fn delete_node_password(&self, name: &str) -> Result<bool, ApiError> {
        self.note(format!("{name}: delete node password"));
        Ok(true)
    }
    async fn node_infos(&self) -> Result<Vec<NodeInfo>, ApiError> {
        self.note("cluster: quorum look".into());
        Ok(self
            .servers
            .iter()
            .map(|name| {
                let learner = self.learner(name);
                NodeInfo {
                    name: name.clone(),
                    ready: true,
                    kubelet_version: FROM.into(),
                    labels: [(ETCD_ROLE_LABEL.to_string(), "true".to_string())].into(),
                    annotations: [(ETCD_NODE_NAME.to_string(), format!("{name}-1a2b"))].into(),
                    etcd_voter: Some(Condition {
                        status: !learner,
                        detail: learner.then(|| "MemberIsLearner".to_string()),
                    }),
                    ..NodeInfo::default()
                }
            })
            .collect())
    }
    async fn etcd_members(&self) -> Result<Option<Vec<EtcdMember>>, ApiError> {
        Ok(self.members.then(|| {
            self.servers
                .iter()
                .map(|name| EtcdMember {
                    name: format!("{name}-1a2b"),
                    peer_urls: vec![format!("https://{name}:2380")],
                    is_learner: self.learner(name),
                })
                .collect()
        }))
    }
    async fn cordon(&self, name: &str, reason: &str) -> Result<CordonOutcome, ApiError> {
        self.note(format!("{name}: cordon ({reason})"));
        Ok(CordonOutcome::Cordoned)
    }
    async fn uncordon(&self, name: &str) -> Result<UncordonOutcome, ApiError> {
        self.note(format!("{name}: uncordon"));
        Ok(UncordonOutcome::Uncordoned)
    }
    async fn drain(&self, name: &str, options: &DrainOptions) -> Result<DrainReport, ApiError> {
        self.note(format!(
            "{name}: drain within {}s",
            options.timeout.as_secs()
        ));
        if self.refuse_drain.contains(name) {
            return Err(ApiError(format!(
                "cannot drain node {name}: PodDisruptionBudget default/blocker allows no \
                 disruption"
            )));
        }
        Ok(DrainReport {
            plan: DrainPlan::default(),
            bypassed_pdbs: false,
            elapsed: Duration::ZERO,
        })
    }
    async fn wait_node_at(&self, name: &str, version: &str, _: Duration) -> Result<(), ApiError> {
        self.note(format!("{name}: Ready at {version}"));
        self.back.lock().expect("lock").push(name.to_string());
        Ok(())
    }
    async fn health(&self, _: Duration) -> Result<GateVerdict, ApiError> {
        self.note("cluster: health gate".into());
        Ok(GateVerdict::Healthy)
    }
    async fn leave_etcd(&self, name: &str, _: Duration) -> Result<String, ApiError> {
        self.note(format!("{name}: leave etcd"));
        if self.refuse_leave.contains(name) {
            return Err(ApiError("it would lose quorum".into()));
        }
        Ok("member removed".into())
    }
    async fn delete_node(&self, name: &str, _: Duration) -> Result<String, ApiError> {
        self.note(format!("{name}: delete node"));
        Ok("deleted".into())
    }
    async fn snapshot_files(&self) -> Result<Option<Vec<SnapshotFile>>, ApiError> {
        self.note("cluster: list snapshot files".into());
        Ok(Some(self.snapshot_files.clone()))
    }
}

/// A connector that never connects, saying why.
pub(crate) struct Unreachable(pub &'static str);

#[async_trait]
impl ApiConnector for Unreachable {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        Err(ApiError(self.0.into()))
    }
}
