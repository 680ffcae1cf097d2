//! An independent referee for HA rollouts: Debian's etcdctl (`endpoint health` of the three
//! members, looped on the first server itself every ~0.1 s so that a short restart is not
//! missed) and kubectl 1.20 (node versions through the export) polled in the background;
//! records what they saw.

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

/// Where the on-host etcd health loop writes, and the file that stops it.
const HEALTH_LOG: &str = "/root/etcd-health.log";
const HEALTH_STOP: &str = "/root/etcd-health.stop";

/// Starts `etcdctl endpoint health` in a loop on `on` (one JSON line per sample).
pub fn start_health_loop(lab: &lab::Lab, on: &str, endpoints: &[String]) {
    let cmd = format!(
        "rm -f {HEALTH_STOP} {HEALTH_LOG}; setsid sh -c 'while [ ! -f {HEALTH_STOP} ]; do \
         {ETCDCTL} --dial-timeout=300ms --command-timeout=700ms --endpoints {} endpoint health \
         -w json 2>/dev/null; echo; sleep 0.05; done' > {HEALTH_LOG} 2>&1 < /dev/null &",
        endpoints.join(",")
    );
    lab.exec(on, &cmd).expect("start the etcd health loop");
}

/// Stops the loop; per sample, the endpoints that were healthy.
pub fn stop_health_loop(lab: &lab::Lab, on: &str) -> Vec<Vec<String>> {
    lab.exec(
        on,
        &format!("touch {HEALTH_STOP}; sleep 2; cat {HEALTH_LOG}"),
    )
    .expect("stop the etcd health loop")
    .lines()
    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
    .map(|v| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["health"].as_bool() == Some(true))
            .filter_map(|e| e["endpoint"].as_str().map(str::to_string))
            .collect()
    })
    .collect()
}

/// Folds the health loop's samples into `seen`.
pub fn add_health(seen: &mut HaSeen, samples: &[Vec<String>], endpoints: &[String]) {
    for healthy in samples {
        let down: Vec<&String> = endpoints.iter().filter(|e| !healthy.contains(e)).collect();
        seen.etcd_samples += 1;
        seen.max_down = seen.max_down.max(down.len());
        seen.min_healthy = seen.min_healthy.min(endpoints.len() - down.len());
        for e in down {
            *seen.down_seen.entry(e.clone()).or_default() += 1;
        }
    }
}

/// Polls kubectl until `stop` is set.
pub fn watch(
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
