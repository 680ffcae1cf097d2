//! An independent referee for HA rollouts: Debian's etcdctl (`endpoint health` of the three
//! members, run on the first server over ssh) and kubectl 1.20 (node versions through the
//! export) polled in the background; records what they saw.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::watcher::kubectl_json;

/// etcdctl with K3s's client certificates on a server.
pub const ETCDCTL: &str = "ETCDCTL_API=3 etcdctl --cacert \
    /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt --cert \
    /var/lib/rancher/k3s/server/tls/etcd/client.crt --key \
    /var/lib/rancher/k3s/server/tls/etcd/client.key";

/// What the referee saw.
#[derive(Debug, Default, Clone)]
pub struct HaSeen {
    /// etcd samples taken.
    pub etcd_samples: usize,
    /// Most members unhealthy in one sample.
    pub max_down: usize,
    /// Fewest members healthy in one sample.
    pub min_healthy: usize,
    /// Which endpoints were ever seen unhealthy, with how many samples.
    pub down_seen: BTreeMap<String, usize>,
    /// kubectl samples that answered.
    pub api_samples: usize,
    /// Samples where an agent ran the target while a server did not.
    pub agent_before_server: usize,
    /// Servers in the order they were first seen at the target.
    pub servers_at_target: Vec<String>,
}

/// Healthy members among `endpoints` per `etcdctl endpoint health -w json` (unhealthy or
/// missing entries count as down); `None` when etcdctl could not be run at all.
pub fn healthy_endpoints(
    lab: &lab::Lab,
    on: &str,
    endpoints: &[String],
) -> Option<Vec<(String, bool)>> {
    let cmd = format!(
        "{ETCDCTL} --command-timeout=2s --endpoints {} endpoint health -w json 2>/dev/null; true",
        endpoints.join(",")
    );
    let out = lab.exec_output(on, &cmd, Duration::from_secs(10)).ok()?;
    let list: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    let healthy: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["health"].as_bool() == Some(true))
        .filter_map(|e| e["endpoint"].as_str().map(str::to_string))
        .collect();
    Some(
        endpoints
            .iter()
            .map(|e| (e.clone(), healthy.contains(e)))
            .collect(),
    )
}

/// Polls until `stop` is set.
#[allow(clippy::too_many_arguments)]
pub fn watch(
    lab: &lab::Lab,
    on: &str,
    endpoints: &[String],
    kubectl: &Path,
    kubeconfig: &Path,
    servers: &[String],
    target: &str,
    stop: &AtomicBool,
) -> HaSeen {
    let mut seen = HaSeen {
        min_healthy: usize::MAX,
        ..HaSeen::default()
    };
    while !stop.load(Ordering::SeqCst) {
        if let Some(health) = healthy_endpoints(lab, on, endpoints) {
            let down: Vec<&String> = health.iter().filter(|(_, h)| !h).map(|(e, _)| e).collect();
            seen.etcd_samples += 1;
            seen.max_down = seen.max_down.max(down.len());
            seen.min_healthy = seen.min_healthy.min(health.len() - down.len());
            for e in down {
                *seen.down_seen.entry(e.clone()).or_default() += 1;
            }
        }
        if let Some(nodes) = kubectl_json(kubectl, kubeconfig, &["get", "nodes"]) {
            seen.api_samples += 1;
            let versions: BTreeMap<String, String> = nodes["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    (
                        n["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        n["status"]["nodeInfo"]["kubeletVersion"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect();
            let server_behind = servers
                .iter()
                .any(|s| versions.get(s).map(String::as_str) != Some(target));
            let agent_ahead = versions
                .iter()
                .any(|(n, v)| !servers.contains(n) && v == target);
            if server_behind && agent_ahead {
                seen.agent_before_server += 1;
            }
            for s in servers {
                if versions.get(s).map(String::as_str) == Some(target)
                    && !seen.servers_at_target.contains(s)
                {
                    seen.servers_at_target.push(s.clone());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    seen
}
