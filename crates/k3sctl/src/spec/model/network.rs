//! The cluster contract: networks, registration address, certificates and extra K3s configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::net::Cidr;

/// Default cluster domain.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Cluster-wide K3s settings, shared by every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Fixed registration address (a virtual IP, DNS name or load balancer in front of the
    /// servers, port 6443) that agents and joining servers use (`--server`); always added to
    /// every server's `tls-san`. Default: the first server's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_address: Option<String>,
    /// Pod network. Default: 10.42.0.0/16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_cidr: Option<Cidr>,
    /// Service network. Default: 10.43.0.0/16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<Cidr>,
    /// Cluster DNS service IP, inside `serviceCidr`. Default: the 10th address of `serviceCidr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_dns: Option<IpAddr>,
    /// Cluster domain. Default: cluster.local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_domain: Option<String>,
    /// Extra subject alternative names of the API server certificate (`tls-san`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_sans: Vec<String>,
    /// Packaged components not to deploy (`disable`), for example servicelb or traefik.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    /// Extra keys of /etc/rancher/k3s/config.yaml on servers (keys k3sctl manages are refused).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_config: BTreeMap<String, serde_json::Value>,
    /// Extra keys of /etc/rancher/k3s/config.yaml on agents (keys k3sctl manages are refused).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agent_config: BTreeMap<String, serde_json::Value>,
}

/// K3s config.yaml keys that k3sctl writes itself; setting them in `serverConfig`/`agentConfig`
/// would fight with the spec, so validation refuses them and names the spec field to use.
pub const MANAGED_CONFIG_KEYS: &[(&str, &str)] = &[
    ("token", "the join token is read from the first server"),
    ("token-file", "the join token is read from the first server"),
    (
        "agent-token",
        "the join token is read from the first server",
    ),
    ("server", "use spec.cluster.registrationAddress"),
    (
        "cluster-init",
        "k3sctl sets it once, when the first server of a multi-server cluster bootstraps",
    ),
    ("node-name", "use hosts[].name"),
    ("node-ip", "use hosts[].address"),
    ("node-external-ip", "use hosts[].publicAddress"),
    ("node-label", "use hosts[].labels"),
    ("node-taint", "use hosts[].taints"),
    ("cluster-cidr", "use spec.cluster.clusterCidr"),
    ("service-cidr", "use spec.cluster.serviceCidr"),
    ("cluster-dns", "use spec.cluster.clusterDns"),
    ("cluster-domain", "use spec.cluster.clusterDomain"),
    ("tls-san", "use spec.cluster.tlsSans"),
    ("disable", "use spec.cluster.disable"),
];

impl ClusterConfig {
    /// The pod network, default applied.
    pub fn cluster_cidr(&self) -> Cidr {
        self.cluster_cidr.unwrap_or(Cidr::DEFAULT_CLUSTER)
    }

    /// The service network, default applied.
    pub fn service_cidr(&self) -> Cidr {
        self.service_cidr.unwrap_or(Cidr::DEFAULT_SERVICE)
    }

    /// The cluster DNS address: as written, else the 10th address of the service network
    /// (10.43.0.10 for the default network), as K3s computes it.
    pub fn cluster_dns(&self) -> IpAddr {
        self.cluster_dns
            .unwrap_or_else(|| self.cluster_dns_default())
    }

    /// The address K3s picks for cluster DNS when none is set: the 10th of the service network.
    pub fn cluster_dns_default(&self) -> IpAddr {
        nth_address(&self.service_cidr(), 10)
    }

    /// The cluster domain, default applied.
    pub fn cluster_domain(&self) -> &str {
        self.cluster_domain
            .as_deref()
            .unwrap_or(DEFAULT_CLUSTER_DOMAIN)
    }
}

fn nth_address(cidr: &Cidr, n: u32) -> IpAddr {
    match cidr.net() {
        ipnet::IpNet::V4(net) => IpAddr::V4(u32::from(net.network()).saturating_add(n).into()),
        ipnet::IpNet::V6(net) => IpAddr::V6(
            u128::from(net.network())
                .saturating_add(u128::from(n))
                .into(),
        ),
    }
}
