//! The Node object a k3s server or agent registers: name, documented labels, registration-time
//! labels and taints, the k3s.io annotations, nodeInfo with the K3s version, addresses and the
//! Ready condition that heartbeats keep fresh.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::Digest;

use crate::flags::Role;

/// The containerd K3s bundles (nodeInfo.containerRuntimeVersion, `crictl version`, `ctr version`).
pub const CONTAINERD_VERSION: &str = "v2.1.4-k3s1";

/// What a node says about itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Server or agent.
    pub role: Role,
    /// Whether the server runs (embedded) etcd.
    pub etcd: bool,
    /// The etcd member name and address (`etcd.k3s.cattle.io/node-name|node-address`).
    pub etcd_member: Option<(String, String)>,
    /// K3s version (kubeletVersion).
    pub version: String,
    /// InternalIP.
    pub internal_ip: String,
    /// ExternalIPs.
    pub external_ips: Vec<String>,
    /// `node-label` values (`key=value`).
    pub labels: Vec<String>,
    /// `node-taint` values (`key=value:Effect`).
    pub taints: Vec<String>,
    /// `k3s.io/node-args`.
    pub node_args: Vec<String>,
    /// `k3s.io/node-env` (K3S_* variables, secrets redacted).
    pub node_env: BTreeMap<String, String>,
}

/// The variables whose values K3s replaces with `********` in `k3s.io/node-env` (k3s
/// `pkg/nodeconfig/nodeconfig.go` `isSecret`).
const SECRET_ENV: &[&str] = &[
    "K3S_TOKEN",
    "K3S_DATASTORE_ENDPOINT",
    "K3S_AGENT_TOKEN",
    "K3S_CLUSTER_SECRET",
    "K3S_VPN_AUTH",
];

/// The K3S_* environment as k3s records it in `k3s.io/node-env` (token redacted; the stand-in's
/// own K3S_SIM_* knobs are not part of K3s and are left out).
pub fn node_env(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.filter(|(k, _)| k.starts_with("K3S_") && !k.starts_with("K3S_SIM_"))
        .map(|(k, v)| {
            let secret = SECRET_ENV.contains(&k.as_str());
            (k, if secret { "********".to_string() } else { v })
        })
        .collect()
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((bits >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `k3s.io/node-config-hash`: base32 of the sha256 of the node args and env.
pub fn config_hash(args: &[String], env: &BTreeMap<String, String>) -> String {
    let mut h = sha2::Sha256::new();
    h.update(serde_json::to_string(args).unwrap_or_default().as_bytes());
    h.update(serde_json::to_string(env).unwrap_or_default().as_bytes());
    base32(&h.finalize())
}

/// Parses a `node-taint` value (`key=value:Effect` or `key:Effect`).
pub fn parse_taint(s: &str) -> Result<Value, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid taint {s:?}: expected key=value:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!(
            "invalid taint effect {effect:?} in {s:?}: expected NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err(format!("invalid taint {s:?}: empty key"));
    }
    let mut t = json!({"key": key, "effect": effect});
    if !value.is_empty() {
        t["value"] = json!(value);
    }
    Ok(t)
}

fn first_line_value(path: &str, key: &str) -> Option<String> {
    fs_err::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim_matches('"').to_string()))
}

/// The Ready (and pressure) conditions a healthy kubelet posts.
pub fn healthy_conditions(now: &str, since: &str) -> Value {
    let c = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        c(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

fn role_labels(info: &NodeInfo) -> Vec<(String, String)> {
    let mut l = vec![
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/instance-type".into(), "k3s".into()),
        ("beta.kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), "amd64".into()),
        ("kubernetes.io/hostname".into(), info.name.clone()),
        ("kubernetes.io/os".into(), "linux".into()),
        ("node.kubernetes.io/instance-type".into(), "k3s".into()),
    ];
    if info.role == Role::Server {
        l.push((
            "node-role.kubernetes.io/control-plane".into(),
            "true".into(),
        ));
        l.push(("node-role.kubernetes.io/master".into(), "true".into()));
        if info.etcd {
            l.push(("node-role.kubernetes.io/etcd".into(), "true".into()));
        }
    }
    l
}

/// Annotations k3s keeps current on every start.
fn annotations(info: &NodeInfo) -> Vec<(String, String)> {
    let mut out = kubelet_annotations(info);
    if let Some((member, address)) = &info.etcd_member {
        out.push(("etcd.k3s.cattle.io/node-name".into(), member.clone()));
        out.push(("etcd.k3s.cattle.io/node-address".into(), address.clone()));
    }
    out
}

/// The condition types the kubelet owns (the node lifecycle controller marks these Unknown).
pub const KUBELET_CONDITIONS: &[&str] = &["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];

/// Sets (adds or updates) one condition, keeping its transition time while the status holds.
pub fn set_condition(node: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    let now = crate::clock::now_rfc3339();
    if !node["status"]["conditions"].is_array() {
        node["status"]["conditions"] = json!([]);
    }
    let Some(cs) = node["status"]["conditions"].as_array_mut() else {
        return;
    };
    let since = cs
        .iter()
        .find(|c| c["type"] == ty && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.clone());
    cs.retain(|c| c["type"] != ty);
    cs.insert(
        0,
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since}),
    );
}

/// Keeps the conditions other components set (EtcdIsVoter) when kubelet conditions are replaced.
fn with_other_conditions(old: &Value, kubelet: Value) -> Value {
    let mut out: Vec<Value> = old
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| {
                    !KUBELET_CONDITIONS
                        .iter()
                        .any(|k| c["type"].as_str() == Some(k))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    out.extend(kubelet.as_array().cloned().unwrap_or_default());
    Value::Array(out)
}

fn kubelet_annotations(info: &NodeInfo) -> Vec<(String, String)> {
    vec![
        (
            "k3s.io/node-args".into(),
            serde_json::to_string(&info.node_args).unwrap_or_default(),
        ),
        (
            "k3s.io/node-env".into(),
            serde_json::to_string(&info.node_env).unwrap_or_default(),
        ),
        (
            "k3s.io/node-config-hash".into(),
            config_hash(&info.node_args, &info.node_env),
        ),
        ("k3s.io/internal-ip".into(), info.internal_ip.clone()),
        (
            "alpha.kubernetes.io/provided-node-ip".into(),
            info.internal_ip.clone(),
        ),
        ("node.alpha.kubernetes.io/ttl".into(), "0".into()),
        (
            "volumes.kubernetes.io/controller-managed-attach-detach".into(),
            "true".into(),
        ),
    ]
}

fn status(info: &NodeInfo, now: &str) -> Value {
    let mut addresses = vec![json!({"type": "InternalIP", "address": info.internal_ip})];
    for ip in &info.external_ips {
        addresses.push(json!({"type": "ExternalIP", "address": ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": info.name}));
    let os_image = first_line_value(
        &crate::paths::host_path("/etc/os-release")
            .display()
            .to_string(),
        "PRETTY_NAME=",
    )
    .or_else(|| first_line_value("/etc/os-release", "PRETTY_NAME="))
    .unwrap_or_else(|| "Linux".into());
    let kernel = fs_err::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let resources = json!({"cpu": "2", "memory": "4026532Ki", "pods": "110", "ephemeral-storage": "20511312Ki"});
    json!({
        "addresses": addresses,
        "allocatable": resources,
        "capacity": resources,
        "conditions": healthy_conditions(now, now),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": crate::random::uid(),
            "containerRuntimeVersion": format!("containerd://{}", CONTAINERD_VERSION.trim_start_matches('v')),
            "kernelVersion": kernel,
            "kubeProxyVersion": info.version,
            "kubeletVersion": info.version,
            "machineID": hex::encode(sha2::Sha256::digest(info.name.as_bytes()))[..32].to_string(),
            "operatingSystem": "linux",
            "osImage": os_image,
            "systemUUID": crate::random::uid(),
        },
    })
}

/// The Node object for first registration (labels and taints from flags apply only here).
pub fn new_node(info: &NodeInfo) -> Result<Value, String> {
    let now = crate::clock::now_rfc3339();
    let mut labels = serde_json::Map::new();
    for (k, v) in role_labels(info) {
        labels.insert(k, json!(v));
    }
    for l in &info.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), json!(v));
    }
    let annotations: serde_json::Map<String, Value> = annotations(info)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let taints = info
        .taints
        .iter()
        .map(|t| parse_taint(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut spec = json!({"providerID": format!("k3s://{}", info.name)});
    if !taints.is_empty() {
        spec["taints"] = json!(taints);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": info.name, "labels": labels, "annotations": annotations, "finalizers": []},
        "spec": spec,
        "status": status(info, &now),
    }))
}

/// Updates an existing Node on restart: k3s annotations, role labels, version, addresses and a
/// fresh Ready condition; user labels, taints and cordon state are left alone.
pub fn refresh(node: &mut Value, info: &NodeInfo) {
    let now = crate::clock::now_rfc3339();
    for (k, v) in role_labels(info) {
        node["metadata"]["labels"][k] = json!(v);
    }
    for (k, v) in annotations(info) {
        node["metadata"]["annotations"][k] = json!(v);
    }
    let fresh = status(info, &now);
    node["status"]["addresses"] = fresh["addresses"].clone();
    node["status"]["nodeInfo"] = fresh["nodeInfo"].clone();
    node["status"]["conditions"] =
        with_other_conditions(&node["status"]["conditions"], fresh["conditions"].clone());
}

/// Marks a node's conditions as posted now (a heartbeat); keeps transition times when unchanged.
pub fn heartbeat(node: &mut Value) {
    let now = crate::clock::now_rfc3339();
    let since = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.clone());
    node["status"]["conditions"] = with_other_conditions(
        &node["status"]["conditions"],
        healthy_conditions(&now, &since),
    );
}

/// The node Lease in kube-node-lease that the kubelet renews with every heartbeat.
pub fn lease(node: &str, lease_seconds: u64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": lease_seconds, "renewTime": crate::clock::now_micro()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(role: Role) -> NodeInfo {
        NodeInfo {
            name: "s1".into(),
            role,
            etcd: false,
            etcd_member: None,
            version: "v1.33.5+k3s1".into(),
            internal_ip: "10.0.0.2".into(),
            external_ips: vec![],
            labels: vec!["zone=a".into()],
            taints: vec!["dedicated=infra:NoSchedule".into()],
            node_args: vec!["server".into(), "--token".into(), "********".into()],
            node_env: BTreeMap::new(),
        }
    }

    #[test]
    fn server_nodes_carry_documented_labels_and_annotations() {
        let n = new_node(&info(Role::Server)).expect("node");
        let labels = &n["metadata"]["labels"];
        assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
        assert_eq!(labels["node-role.kubernetes.io/master"], "true");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "k3s");
        assert_eq!(labels["kubernetes.io/hostname"], "s1");
        assert_eq!(labels["zone"], "a");
        assert_eq!(
            n["spec"]["taints"][0],
            json!({"key": "dedicated", "value": "infra", "effect": "NoSchedule"})
        );
        assert_eq!(
            n["metadata"]["annotations"]["k3s.io/node-args"],
            "[\"server\",\"--token\",\"********\"]"
        );
        assert_eq!(
            n["metadata"]["annotations"]["k3s.io/internal-ip"],
            "10.0.0.2"
        );
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.5+k3s1");
        let agent = new_node(&info(Role::Agent)).expect("agent");
        assert!(
            agent["metadata"]["labels"]
                .get("node-role.kubernetes.io/master")
                .is_none()
        );
    }

    #[test]
    fn refresh_keeps_user_changes() {
        let mut n = new_node(&info(Role::Agent)).expect("node");
        n["spec"]["unschedulable"] = json!(true);
        n["metadata"]["labels"]["extra"] = json!("x");
        let mut newer = info(Role::Agent);
        newer.version = "v1.34.1+k3s1".into();
        newer.taints.clear();
        refresh(&mut n, &newer);
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.34.1+k3s1");
        assert_eq!(n["spec"]["unschedulable"], true);
        assert_eq!(n["metadata"]["labels"]["extra"], "x");
        assert_eq!(
            n["spec"]["taints"].as_array().map(Vec::len),
            Some(1),
            "taints stay as registered"
        );
    }

    #[test]
    fn taints_and_env() {
        assert_eq!(
            parse_taint("k:NoExecute").expect("taint"),
            json!({"key": "k", "effect": "NoExecute"})
        );
        assert!(parse_taint("k=v:Sometimes").is_err());
        let env = node_env(
            vec![
                ("K3S_TOKEN".to_string(), "x".to_string()),
                ("K3S_SIM_ROOT".into(), "/r".into()),
                ("K3S_URL".into(), "u".into()),
                ("HOME".into(), "/".into()),
            ]
            .into_iter(),
        );
        assert_eq!(env.get("K3S_TOKEN").map(String::as_str), Some("********"));
        assert!(!env.contains_key("K3S_SIM_ROOT"));
        assert_eq!(env.len(), 2);
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
    }
}
