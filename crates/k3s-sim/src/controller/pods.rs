//! Pods: placement on the least busy fitting node, start-up (Running and Ready after a delay),
//! readiness following the node's readiness, and garbage collection of pods on deleted nodes and
//! of objects whose controller is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::scheduling::{fits, node_ready};
use super::wakeup::{earliest, until};
use super::{controller_of, name, namespace, uid};
use crate::store::{ObjectStore, ResourceKey};

/// Deletes pods bound to nodes that no longer exist, and pods/ReplicaSets whose controller is gone.
pub fn garbage_collect(store: &ObjectStore) {
    let nodes: BTreeSet<String> = store
        .list("nodes", None)
        .0
        .iter()
        .map(|n| name(n).to_string())
        .collect();
    let mut owners: BTreeSet<String> = BTreeSet::new();
    for res in [
        "deployments.apps",
        "replicasets.apps",
        "daemonsets.apps",
        "statefulsets.apps",
    ] {
        owners.extend(store.list(res, None).0.iter().map(|o| uid(o).to_string()));
    }
    let known_kinds = ["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"];
    for res in ["replicasets.apps", "pods"] {
        for o in store.list(res, None).0 {
            let orphan = controller_of(&o).is_some_and(|(kind, u)| {
                known_kinds.contains(&kind.as_str()) && !owners.contains(&u)
            });
            let lost_node = res == "pods"
                && o["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !nodes.contains(n));
            if orphan || lost_node {
                let _ = store.delete(&ResourceKey::new(res, namespace(&o), name(&o)));
            }
        }
    }
}

fn pod_ip(node_index: usize, pod: &Value) -> String {
    let h = uid(pod)
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.42.{node_index}.{}", 2 + h % 250)
}

/// Binds pending pods to the fitting node with the fewest pods.
pub fn schedule(store: &ObjectStore) {
    let (nodes, _) = store.list("nodes", None);
    let (pods, _) = store.list("pods", None);
    let mut load: BTreeMap<String, usize> =
        nodes.iter().map(|n| (name(n).to_string(), 0)).collect();
    for p in &pods {
        if let Some(n) = p["spec"]["nodeName"].as_str() {
            *load.entry(n.to_string()).or_default() += 1;
        }
    }
    for p in pods
        .iter()
        .filter(|p| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty))
    {
        let best = nodes
            .iter()
            .filter(|n| fits(n, &p["spec"], false))
            .min_by_key(|n| (load.get(name(n)).copied().unwrap_or(0), name(n).to_string()));
        let Some(node) = best else { continue };
        let node_name = name(node).to_string();
        *load.entry(node_name.clone()).or_default() += 1;
        let host_ip = node["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
            .map(|x| x["address"].clone())
            .unwrap_or(Value::Null);
        let now = crate::clock::now_rfc3339();
        let _ = store.modify(&ResourceKey::new("pods", namespace(p), name(p)), |o| {
            o["spec"]["nodeName"] = json!(node_name);
            o["status"]["hostIP"] = host_ip.clone();
            o["status"]["startTime"] = json!(now);
            o["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]);
            Ok(())
        });
    }
}

fn conditions(ready: bool, now: &str) -> Value {
    let r = if ready { "True" } else { "False" };
    json!([
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": r, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": r, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ])
}

fn container_statuses(pod: &Value, ready: bool, started: &str) -> Value {
    let cs: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c["name"].clone(), "image": c["image"].clone(), "imageID": "", "ready": ready, "started": true,
            "restartCount": 0, "containerID": format!("containerd://{}", hex::encode(crate::random::bytes::<16>())),
            "state": {"running": {"startedAt": started}}}))
        .collect();
    json!(cs)
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Starts scheduled pods after the start delay on Ready nodes; pods on NotReady nodes are not ready.
/// Returns how long until the next waiting pod's start delay has passed (None when none waits).
pub fn progress(store: &ObjectStore) -> Option<Duration> {
    let mut due = None;
    let (nodes, _) = store.list("nodes", None);
    let index: BTreeMap<&str, (usize, bool)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (name(n), (i, node_ready(n))))
        .collect();
    let delay = crate::knobs::pod_start().as_millis() as i64;
    for p in store.list("pods", None).0 {
        let Some(node) = p["spec"]["nodeName"].as_str() else {
            continue;
        };
        let Some(&(i, node_ok)) = index.get(node) else {
            continue;
        };
        let key = ResourceKey::new("pods", namespace(&p), name(&p));
        let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
        let now = crate::clock::now_rfc3339();
        match phase {
            "Pending" if node_ok => {
                let start = p["status"]["startTime"].as_str().map(str::to_string);
                let Some(start) = start else {
                    let _ = store.modify(&key, |o| {
                        o["status"]["startTime"] = json!(now);
                        Ok(())
                    });
                    continue;
                };
                let started = crate::clock::parse_rfc3339(&start);
                let waited_ms = started
                    .map(|t| (crate::clock::now() - t).whole_milliseconds() as i64)
                    .unwrap_or(0);
                if waited_ms + 999 < delay {
                    if let Some(t) = started {
                        let ready_at = t + time::Duration::milliseconds(delay - 999);
                        due = earliest(due, Some(until(ready_at)));
                    }
                } else {
                    let ip = pod_ip(i, &p);
                    let _ = store.modify(&key, |o| {
                        o["status"]["phase"] = json!("Running");
                        o["status"]["podIP"] = json!(ip);
                        o["status"]["podIPs"] = json!([{"ip": ip}]);
                        o["status"]["conditions"] = conditions(true, &now);
                        o["status"]["containerStatuses"] = container_statuses(o, true, &now);
                        Ok(())
                    });
                }
            }
            "Running" if is_ready(&p) != node_ok => {
                let _ = store.modify(&key, |o| {
                    o["status"]["conditions"] = conditions(node_ok, &now);
                    if let Some(cs) = o["status"]["containerStatuses"].as_array_mut() {
                        for c in cs.iter_mut() {
                            c["ready"] = json!(node_ok);
                        }
                    }
                    Ok(())
                });
            }
            _ => {}
        }
    }
    due
}
