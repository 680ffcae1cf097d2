//! `/etc/rancher/k3s/config.yaml`: rendered from a typed input, deterministically, so an
//! unchanged spec gives a byte-identical file (and no restart). The join token is never here;
//! it lives in the unit's 0600 env file (see [`super::unit`]).

use std::collections::BTreeMap;

use super::yaml::{OrderedMap, YamlError, to_yaml};

/// Where K3s reads its configuration.
pub const CONFIG_PATH: &str = "/etc/rancher/k3s/config.yaml";

/// First line of every file k3sctl renders for K3s.
pub const MANAGED_HEADER: &str = "# Managed by k3sctl: edit the cluster spec, not this file.\n";

/// Whether a node runs the control plane or only a kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// `k3s server`.
    Server,
    /// `k3s agent`.
    Agent,
}

impl NodeRole {
    /// The k3s subcommand.
    pub fn subcommand(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Agent => "agent",
        }
    }
}

/// Cluster-wide settings that only servers take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSettings {
    /// Extra subject alternative names on the API serving certificate.
    pub tls_sans: Vec<String>,
    /// Pod network.
    pub cluster_cidr: Option<String>,
    /// Service network.
    pub service_cidr: Option<String>,
    /// Cluster DNS service address.
    pub cluster_dns: Option<String>,
    /// Cluster domain.
    pub cluster_domain: Option<String>,
    /// Packaged components to disable.
    pub disable: Vec<String>,
    /// Mode of /etc/rancher/k3s/k3s.yaml (`"0600"`).
    pub write_kubeconfig_mode: Option<String>,
}

/// Everything config.yaml is made from for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Server or agent.
    pub role: NodeRole,
    /// `node-name`.
    pub node_name: String,
    /// `node-ip`.
    pub node_ip: Option<String>,
    /// `node-external-ip`.
    pub node_external_ip: Option<String>,
    /// `node-label`, applied at registration.
    pub labels: BTreeMap<String, String>,
    /// `node-taint`, applied at registration.
    pub taints: Vec<String>,
    /// Server-only settings (ignored for agents).
    pub cluster: ClusterSettings,
    /// Extra keys from the spec's serverConfig/agentConfig.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Why config.yaml could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An extra key holds a secret, which must not be in config.yaml.
    #[error(
        "host {host}: `{key}` may not be set in serverConfig/agentConfig: k3sctl reads the join \
         token from the first server and keeps it in a 0600 env file; remove the key"
    )]
    SecretKey {
        /// Node name.
        host: String,
        /// The key.
        key: String,
    },
    /// An extra key is one k3sctl sets from the spec.
    #[error(
        "host {host}: `{key}` in serverConfig/agentConfig conflicts with {field} in the spec; set it there"
    )]
    Managed {
        /// Node name.
        host: String,
        /// The key.
        key: String,
        /// The spec field that sets it.
        field: &'static str,
    },
    /// Emission failed.
    #[error(transparent)]
    Yaml(#[from] YamlError),
}

const SECRET_KEYS: &[&str] = &["token", "agent-token", "token-file", "agent-token-file"];

const MANAGED_KEYS: &[(&str, &str)] = &[
    ("node-name", "hosts[].name"),
    ("node-ip", "hosts[].address"),
    ("node-external-ip", "hosts[].publicAddress"),
    ("server", "cluster.registrationAddress"),
    ("node-label", "hosts[].labels"),
    ("node-taint", "hosts[].taints"),
    ("tls-san", "cluster.tlsSans"),
    ("cluster-cidr", "cluster.clusterCidr"),
    ("service-cidr", "cluster.serviceCidr"),
    ("cluster-dns", "cluster.clusterDns"),
    ("cluster-domain", "cluster.clusterDomain"),
    ("disable", "cluster.disable"),
];

fn strings(list: &[String]) -> serde_json::Value {
    serde_json::Value::from(list.to_vec())
}

/// Renders config.yaml for one node. The join URL is not in it: like the official installer,
/// k3sctl gives it to joining nodes once, as `K3S_URL` in the unit's env file.
pub fn render_config(node: &NodeConfig) -> Result<String, ConfigError> {
    for key in node.extra.keys() {
        let bare = key.trim_end_matches('+');
        if SECRET_KEYS.contains(&bare) {
            return Err(ConfigError::SecretKey {
                host: node.node_name.clone(),
                key: key.clone(),
            });
        }
        if let Some((_, field)) = MANAGED_KEYS.iter().find(|(k, _)| *k == key) {
            return Err(ConfigError::Managed {
                host: node.node_name.clone(),
                key: key.clone(),
                field,
            });
        }
    }
    let mut map = OrderedMap::default();
    map.push("node-name", node.node_name.as_str());
    if let Some(ip) = &node.node_ip {
        map.push("node-ip", ip.as_str());
    }
    if let Some(ip) = &node.node_external_ip {
        map.push("node-external-ip", ip.as_str());
    }
    if node.role == NodeRole::Server {
        let c = &node.cluster;
        // serverConfig's own mode (an imported `server_config_yaml` has one) replaces
        // k3sctl's; a key written twice would make config.yaml invalid YAML.
        if let Some(mode) = &c.write_kubeconfig_mode
            && !node.extra.contains_key("write-kubeconfig-mode")
        {
            map.push("write-kubeconfig-mode", mode.as_str());
        }
        if !c.tls_sans.is_empty() {
            map.push("tls-san", strings(&c.tls_sans));
        }
        for (key, value) in [
            ("cluster-cidr", &c.cluster_cidr),
            ("service-cidr", &c.service_cidr),
            ("cluster-dns", &c.cluster_dns),
            ("cluster-domain", &c.cluster_domain),
        ] {
            if let Some(value) = value {
                map.push(key, value.as_str());
            }
        }
        if !c.disable.is_empty() {
            map.push("disable", strings(&c.disable));
        }
    }
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        map.push("node-label", labels);
    }
    if !node.taints.is_empty() {
        map.push("node-taint", strings(&node.taints));
    }
    for (key, value) in &node.extra {
        map.push(key, value.clone());
    }
    Ok(format!("{MANAGED_HEADER}{}", to_yaml(&map)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> NodeConfig {
        NodeConfig {
            role: NodeRole::Server,
            node_name: "k3s-master".into(),
            node_ip: Some("10.0.0.241".into()),
            node_external_ip: Some("140.238.0.10".into()),
            labels: BTreeMap::from([("topology.kubernetes.io/zone".into(), "a".into())]),
            taints: vec!["dedicated=infra:NoSchedule".into()],
            cluster: ClusterSettings {
                tls_sans: vec!["140.238.0.10".into(), "k3s.example.com".into()],
                cluster_cidr: Some("10.42.0.0/16".into()),
                service_cidr: Some("10.43.0.0/16".into()),
                cluster_dns: Some("10.43.0.10".into()),
                cluster_domain: Some("cluster.local".into()),
                disable: vec!["servicelb".into(), "traefik".into()],
                write_kubeconfig_mode: Some("0600".into()),
            },
            extra: BTreeMap::from([(
                "kube-apiserver-arg".into(),
                serde_json::json!([
                    "audit-log-maxage=30",
                    "enable-admission-plugins=NodeRestriction"
                ]),
            )]),
        }
    }

    #[test]
    fn server_config_snapshot() {
        insta::assert_snapshot!(render_config(&server()).expect("renders"));
    }

    #[test]
    fn agent_config_snapshot_ignores_cluster_settings() {
        let mut agent = server();
        agent.role = NodeRole::Agent;
        agent.node_name = "worker-1".into();
        agent.node_external_ip = None;
        agent.extra = BTreeMap::from([("kubelet-arg".into(), serde_json::json!(["max-pods=150"]))]);
        let text = render_config(&agent).expect("renders");
        assert!(!text.contains("tls-san") && !text.contains("cluster-cidr"));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn rendering_is_deterministic_and_parses_back() {
        let a = render_config(&server()).expect("renders");
        assert_eq!(a, render_config(&server()).expect("renders"));
        let back: serde_json::Value = serde_saphyr::from_str(&a).expect("valid YAML");
        assert_eq!(back["write-kubeconfig-mode"], "0600");
        assert_eq!(back["cluster-dns"], "10.43.0.10");
        assert_eq!(back["node-taint"][0], "dedicated=infra:NoSchedule");
    }

    #[test]
    fn token_keys_are_refused() {
        for key in ["token", "agent-token", "token+"] {
            let mut node = server();
            node.extra
                .insert(key.into(), serde_json::json!("K10abc::server:pw"));
            let err = render_config(&node).expect_err(key);
            assert!(matches!(err, ConfigError::SecretKey { .. }), "{key}: {err}");
        }
    }

    #[test]
    fn server_config_own_kubeconfig_mode_replaces_the_default_once() {
        let mut node = server();
        node.cluster.write_kubeconfig_mode = Some("0600".into());
        node.extra
            .insert("write-kubeconfig-mode".into(), serde_json::json!("0640"));
        let text = render_config(&node).expect("renders");
        assert_eq!(text.matches("write-kubeconfig-mode").count(), 1, "{text}");
        let back: serde_json::Value = serde_saphyr::from_str(&text).expect("valid yaml");
        assert_eq!(back["write-kubeconfig-mode"], "0640");
    }

    #[test]
    fn managed_keys_in_extra_are_refused_with_the_spec_field() {
        let mut node = server();
        node.extra
            .insert("tls-san".into(), serde_json::json!(["x"]));
        let err = render_config(&node).expect_err("conflict");
        assert!(err.to_string().contains("cluster.tlsSans"), "{err}");
    }
}
