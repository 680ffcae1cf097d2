//! The spec's data model: what a cluster spec file says, nothing more.
//!
//! Every struct refuses unknown keys and uses camelCase keys; the doc comments on fields are the
//! descriptions of the JSON schema.

mod hosts;
mod k3s;
mod network;
mod operations;
mod registries;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use hosts::{Host, HostDefaults, LxdTarget, PctTarget, ProxmoxHost, Role, SshSettings};
pub use k3s::{
    BinaryOrigin, BinarySource, DEFAULT_BINARY_URL, DEFAULT_CHANNEL_URL, DEFAULT_SHA256_URL,
    K3sSpec, VersionSelector,
};
pub use network::{ClusterConfig, DEFAULT_CLUSTER_DOMAIN, MANAGED_CONFIG_KEYS};
pub use operations::{
    Addons, GroupOrder, HelmChartConfig, KubeconfigExport, Manifest, OnFailure, UpgradePolicy,
};
pub use registries::{Mirror, Registries, RegistryAuth, RegistryConfig, RegistryTls, ValueRef};

/// A cluster spec file: the desired state of one K3s cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "k3sctl Cluster")]
pub struct Cluster {
    /// Must be `k3sctl.io/v1alpha1`.
    pub api_version: ApiVersion,
    /// Must be `Cluster`.
    pub kind: Kind,
    /// The cluster's identity.
    pub metadata: Metadata,
    /// The desired state.
    pub spec: ClusterSpec,
}

/// The spec format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `k3sctl.io/v1alpha1`.
    #[serde(rename = "k3sctl.io/v1alpha1")]
    V1Alpha1,
}

/// The document kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    /// A K3s cluster.
    Cluster,
}

/// Identity of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Cluster name (a DNS-1123 label): prefix of kubeconfig context names and the lock holder.
    pub name: String,
}

/// The desired state of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Settings merged under every host (host values win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_defaults: Option<HostDefaults>,
    /// Proxmox VE hosts that run `pct` for the hosts reached through them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxmox_hosts: Vec<ProxmoxHost>,
    /// LXC settings of Proxmox containers (hosts with `pct`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub lxc: LxcPolicy,
    /// The cluster's machines: at least one server.
    pub hosts: Vec<Host>,
    /// How many agents of one group join the cluster at once (at least 1), for every group
    /// without its own `groups.<name>.joinConcurrency`. Default: 1, one at a time. Preflight
    /// still checks every host first; restarts of nodes already in the cluster stay one at a
    /// time whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_concurrency: Option<u32>,
    /// Settings per agent group, by the group name used in `hosts[].group`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, GroupSettings>,
    /// The K3s release and its sources.
    pub k3s: K3sSpec,
    /// Cluster-wide K3s settings.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cluster: ClusterConfig,
    /// Registry mirrors and credentials.
    #[serde(default, skip_serializing_if = "is_default")]
    pub registries: Registries,
    /// Kubeconfig files written for operators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeconfigs: Vec<KubeconfigExport>,
    /// Upgrade and drain policy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub upgrade: UpgradePolicy,
    /// Packaged component overrides and extra manifests.
    #[serde(default, skip_serializing_if = "is_default")]
    pub addons: Addons,
}

/// Settings of one agent group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupSettings {
    /// How many agents of this group join the cluster at once (at least 1). Default:
    /// `spec.joinConcurrency`, else 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_concurrency: Option<u32>,
}

/// What apply does about Proxmox containers' LXC settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LxcPolicy {
    /// Write the missing settings K3s needs into `/etc/pve/lxc/<vmid>.conf` (before any snapshot
    /// section, after a backup on the Proxmox host), install conf-kmsg when /dev/kmsg is
    /// missing, and restart the container (drained first when it is already a node), like
    /// `apply --fix-lxc`. Default: false, the missing settings stop the apply with the lines to
    /// add.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fix: bool,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
