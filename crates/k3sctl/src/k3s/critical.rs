//! K3s's "critical configuration values": server settings that must be identical on every
//! server of an embedded-etcd cluster, or a joining server is refused ("critical configuration
//! value mismatch"). Source: docs.k3s.io/cli/server, "Critical Configuration Values".

use std::collections::BTreeMap;

/// The config.yaml keys K3s compares between servers when one joins.
pub const CRITICAL_KEYS: &[&str] = &[
    "agent-token",
    "cluster-cidr",
    "cluster-dns",
    "cluster-domain",
    "disable",
    "disable-cloud-controller",
    "disable-helm-controller",
    "disable-network-policy",
    "egress-selector-mode",
    "embedded-registry",
    "flannel-backend",
    "flannel-external-ip",
    "flannel-ipv6-masq",
    "secrets-encryption",
    "secrets-encryption-provider",
    "service-cidr",
];

/// Whether a config.yaml key (possibly in its appending `key+` form) is critical.
pub fn is_critical(key: &str) -> bool {
    CRITICAL_KEYS.contains(&key.trim_end_matches('+'))
}

/// The critical values of a rendered server config.yaml, as `key: value` lines in key order.
/// Every server of the cluster renders the same ones (they come only from cluster-wide spec
/// fields); `plan` shows them once.
pub fn critical_values(config_yaml: &str) -> BTreeMap<String, String> {
    let Ok(serde_json::Value::Object(map)) =
        serde_saphyr::from_str::<serde_json::Value>(config_yaml)
    else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter(|(key, _)| is_critical(key))
        .map(|(key, value)| {
            let shown = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (key, shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_form_is_critical_and_node_keys_are_not() {
        assert!(is_critical("flannel-backend"));
        assert!(is_critical("disable+"));
        assert!(!is_critical("node-label"));
        assert!(!is_critical("kubelet-arg"));
    }

    #[test]
    fn values_are_picked_from_the_rendered_file() {
        let text = "# header\nnode-name: s1\ncluster-cidr: 10.42.0.0/16\ndisable:\n- servicelb\nflannel-backend: wireguard-native\nsecrets-encryption: true\n";
        let values = critical_values(text);
        assert_eq!(
            values.into_iter().collect::<Vec<_>>(),
            [
                ("cluster-cidr".to_owned(), "10.42.0.0/16".to_owned()),
                ("disable".to_owned(), "[\"servicelb\"]".to_owned()),
                ("flannel-backend".to_owned(), "wireguard-native".to_owned()),
                ("secrets-encryption".to_owned(), "true".to_owned()),
            ]
        );
    }
}
