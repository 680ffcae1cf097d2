//! Critical configuration values (docs.k3s.io/cli/server "Critical Configuration Values"; K3s
//! `config.CriticalControlArgs`): a running server publishes its values in `/v1-k3s/config`, and
//! a joining server whose values differ fails with K3s's message.

use serde_json::{Value, json};

use crate::settings::Settings;

/// The prefix of the join failure (K3s `pkg/cluster`).
pub const MISMATCH: &str = "failed to validate server configuration: critical configuration value mismatch between servers";

fn list_or(s: &Settings, name: &str, default: &str) -> Value {
    let l = s.list(name);
    if l.is_empty() {
        json!([default])
    } else {
        // Comma-separated values count as a list (dual-stack CIDRs).
        json!(
            l.iter()
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
        )
    }
}

/// This server's critical values, under K3s's field names and with K3s's defaults.
pub fn args(s: &Settings) -> Value {
    json!({
        "ClusterIPRanges": list_or(s, "cluster-cidr", "10.42.0.0/16"),
        "ServiceIPRanges": list_or(s, "service-cidr", "10.43.0.0/16"),
        "ClusterDNSs": list_or(s, "cluster-dns", "10.43.0.10"),
        "ClusterDomain": s.str("cluster-domain").unwrap_or("cluster.local"),
        "DisableCCM": s.flag("disable-cloud-controller"),
        "DisableHelmController": s.flag("disable-helm-controller"),
        "DisableNPC": s.flag("disable-network-policy"),
        "DisableServiceLB": s.disabled().iter().any(|d| d == "servicelb"),
        "EncryptSecrets": s.flag("secrets-encryption"),
        "EmbeddedRegistry": s.flag("embedded-registry"),
        "FlannelBackend": s.str("flannel-backend").unwrap_or("vxlan"),
        "FlannelIPv6Masq": s.flag("flannel-ipv6-masq"),
        "FlannelExternalIP": s.flag("flannel-external-ip"),
        "EgressSelectorMode": s.str("egress-selector-mode").unwrap_or("agent"),
    })
}

/// Compares the cluster's values (from the server joined) with ours.
pub fn compare(cluster: &Value, ours: &Value) -> Result<(), String> {
    let Some(theirs) = cluster.as_object() else {
        // A server that publishes none (older stand-in): nothing to compare.
        return Ok(());
    };
    let mut mismatched = Vec::new();
    if let Some(mine) = ours.as_object() {
        for (k, v) in mine {
            if let Some(t) = theirs.get(k)
                && t != v
            {
                mismatched.push(format!("{k} (cluster: {t}, this server: {v})"));
            }
        }
    }
    if mismatched.is_empty() {
        Ok(())
    } else {
        Err(format!("{MISMATCH}; mismatched: {}", mismatched.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Role;

    fn settings(args: &[&str]) -> Settings {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let cli = crate::flags::parse(Role::Server, &argv).expect("flags");
        let file = crate::config::FileConfig::default();
        crate::settings::combine(Role::Server, &cli, &file, &|_| None)
    }

    #[test]
    fn defaults_match_and_differences_are_named() {
        let a = args(&settings(&[]));
        assert_eq!(a["ServiceIPRanges"], json!(["10.43.0.0/16"]));
        assert_eq!(compare(&a, &args(&settings(&[]))), Ok(()));
        let b = args(&settings(&[
            "--disable",
            "servicelb",
            "--cluster-cidr",
            "10.99.0.0/16",
        ]));
        let err = compare(&a, &b).expect_err("mismatch");
        assert!(err.starts_with(MISMATCH), "{err}");
        assert!(
            err.contains("DisableServiceLB") && err.contains("ClusterIPRanges"),
            "{err}"
        );
        assert!(!err.contains("ClusterDomain"), "{err}");
        assert_eq!(compare(&Value::Null, &b), Ok(()));
    }
}
