//! Hosts, how k3sctl reaches them, and the defaults shared by all hosts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::taint::Taint;

/// Settings merged under every host; a value set on the host wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostDefaults {
    /// SSH settings shared by all hosts reached over SSH (and by Proxmox hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    /// Run commands through `sudo -n`. Default: true when the SSH user is not root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
}

/// How to reach a host over SSH. Anything not set here comes from the user's ~/.ssh/config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SshSettings {
    /// Login user. Default: from ~/.ssh/config, else the current user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// TCP port of the SSH server. Default: from ~/.ssh/config, else 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key file (`~` expanded, relative to the spec file). Must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    /// An ssh_config file passed to ssh as `-F` (relative to the spec file). Must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
    /// A known_hosts file used as `UserKnownHostsFile` (relative to the spec file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<String>,
    /// Accept and record unknown host keys (`StrictHostKeyChecking=accept-new`). Default: false,
    /// unknown host keys are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_new_host_keys: Option<bool>,
    /// Extra `ssh -o` options, for example `{ProxyJump: bastion}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A Proxmox VE host that runs `pct` for the hosts reached through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxmoxHost {
    /// Name referenced by `hosts[].pct.proxmoxHost`; unique.
    pub name: String,
    /// Address (IP or DNS name) k3sctl connects to over SSH.
    pub address: String,
    /// SSH settings for this Proxmox host, merged over `hostDefaults.ssh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
}

/// The part a host plays in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Runs the control plane (`k3s server`).
    Server,
    /// Runs workloads only (`k3s agent`).
    Agent,
}

/// A machine of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Host {
    /// Kubernetes node name (a DNS-1123 subdomain); unique.
    pub name: String,
    /// How k3sctl reaches the host (IP or DNS name); also its node IP when it is an IP.
    pub address: String,
    /// The host's public address, if it has one (for TLS SANs and kubeconfig exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    /// The host's private address, if it differs from `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_address: Option<String>,
    /// `server` or `agent`.
    pub role: Role,
    /// Agents only: agents in one group join or upgrade one at a time; groups run side by side
    /// (see `upgrade.groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Node labels set at registration (`node-label`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Node taints set at registration (`node-taint`), written `key[=value]:Effect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Extra keys of this host's /etc/rancher/k3s/config.yaml, over `cluster.serverConfig` or
    /// `cluster.agentConfig` (for example `kubelet-arg`). Keys k3sctl manages are refused, and so
    /// are, on servers, K3s's critical cluster-wide keys (`flannel-backend`,
    /// `secrets-encryption`, ...), which must be identical on every server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Reach the host over SSH (the default), merged over `hostDefaults.ssh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    /// Reach the host as a Proxmox LXC container through `pct` on a Proxmox host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pct: Option<PctTarget>,
    /// Reach the host as an LXD instance through the `lxc` client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxd: Option<LxdTarget>,
    /// The host is the machine k3sctl runs on: run commands directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// Run commands through `sudo -n`; overrides `hostDefaults.sudo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
}

impl Host {
    /// Host `name` at `address` with `role` and nothing else set (no group, labels, taints,
    /// config or transport settings: the defaults apply).
    pub fn new(name: impl Into<String>, address: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            public_address: None,
            private_address: None,
            role,
            group: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            config: BTreeMap::new(),
            ssh: None,
            pct: None,
            lxd: None,
            local: None,
            sudo: None,
        }
    }
}

/// A Proxmox LXC container reached with `pct exec` on a Proxmox host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PctTarget {
    /// Name of an entry of `spec.proxmoxHosts`.
    pub proxmox_host: String,
    /// The container's VMID.
    pub vmid: u32,
    /// Start the container with `pct start` when it is stopped, before anything else (as the
    /// usual join playbooks do). With false a stopped container is reported and nothing on it
    /// changes. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
}

/// An LXD instance reached with `lxc exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LxdTarget {
    /// The `lxc` remote. Default: `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The instance name.
    pub instance: String,
    /// The LXD project. Default: the remote's current project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}
