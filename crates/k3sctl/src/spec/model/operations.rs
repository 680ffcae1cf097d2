//! Kubeconfig exports, the upgrade and drain policy, and addons.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::duration::Duration;

/// A kubeconfig file k3sctl writes for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeconfigExport {
    /// Export name; unique.
    pub name: String,
    /// API server URL written into the file. Default: the API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Where the file is written (`~` expanded, relative to the spec file); unique. Mode 0600
    /// (or the existing file's, when stricter); a symlink is written through and stays a link;
    /// an existing file that is not a kubeconfig is refused, never overwritten.
    pub path: String,
    /// Context, cluster and user name in the file. Default: <metadata.name>-<export name>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Also merge the context into the user's kubeconfig (first entry of $KUBECONFIG, else
    /// ~/.kube/config); its other entries are kept. A kubeconfig that exists but cannot be read
    /// or parsed is refused before anything changes, never overwritten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge: bool,
}

/// How upgrades roll through the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct UpgradePolicy {
    /// How many agents of one group upgrade at once (at least 1).
    pub agent_batch_size: u32,
    /// Whether agent groups upgrade one after another or side by side.
    pub groups: GroupOrder,
    /// How long a drain may take before the upgrade of that node fails.
    pub drain_timeout: Duration,
    /// How long a node may take to be Ready again after its upgrade; also the grace period a
    /// NotReady node gets (from its registration or its last Ready change) before a health gate
    /// counts it as failed.
    pub node_ready_timeout: Duration,
    /// How long a health gate (before the first node and after each batch) waits for the cluster
    /// to settle: pods Pending or ContainerCreating, nodes that just registered. States that
    /// waiting does not fix (CrashLoopBackOff, ImagePullBackOff, a node NotReady past its grace
    /// period) stop the upgrade at once.
    pub gate_timeout: Duration,
    /// Drain pods that use emptyDir volumes (their data is lost).
    pub delete_empty_dir_data: bool,
    /// Delete pods instead of evicting them, bypassing PodDisruptionBudgets.
    pub disable_eviction: bool,
    /// Drain pods not managed by a controller.
    pub force: bool,
    /// What to do when a node fails to upgrade.
    pub on_failure: OnFailure,
    /// Take an etcd snapshot named `pre-upgrade-<target version>` on a Ready voting member
    /// before the first server is touched (its name and location are printed; restore it with
    /// K3s's cluster reset if the upgrade goes wrong). Default: on when the spec has several
    /// servers (embedded etcd); `false` skips it, as does `upgrade --no-snapshot`. `true` on a
    /// single server needs that server to run embedded etcd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<bool>,
}

impl Default for UpgradePolicy {
    fn default() -> Self {
        Self {
            agent_batch_size: 1,
            groups: GroupOrder::Sequential,
            drain_timeout: Duration::from_secs(300),
            node_ready_timeout: Duration::from_secs(300),
            gate_timeout: Duration::from_secs(300),
            delete_empty_dir_data: true,
            disable_eviction: false,
            force: false,
            on_failure: OnFailure::Stop,
            snapshot: None,
        }
    }
}

/// Order of agent groups during an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOrder {
    /// One group after another.
    Sequential,
    /// All groups at once (still one batch at a time within a group).
    Parallel,
}

/// Reaction to a node that fails to upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop the whole upgrade.
    Stop,
    /// Stop the failed node's group, finish the other groups.
    ContinueOtherGroups,
}

/// Changes to K3s's packaged components and extra manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Addons {
    /// HelmChartConfig value overrides by packaged chart name (for example `traefik`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub helm_chart_configs: BTreeMap<String, HelmChartConfig>,
    /// Manifests placed in the servers' auto-deploy directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Manifest>,
}

/// Values merged into a packaged Helm chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChartConfig {
    /// Helm values, as YAML text.
    pub values_content: String,
}

/// An extra manifest, written as server/manifests/k3sctl-<name>.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// Manifest name (a DNS-1123 label); unique.
    pub name: String,
    /// The manifest file (relative to the spec file). Must exist.
    pub file: String,
}
