//! Node lifecycle: a node whose heartbeats stopped for longer than the grace period gets its
//! conditions set to Unknown ("Kubelet stopped posting node status.") and the unreachable taint;
//! both are undone when heartbeats resume.

use std::time::Duration;

use serde_json::{Value, json};

use super::name;
use super::wakeup::{earliest, until};
use crate::store::{ObjectStore, ResourceKey};

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn ready_condition(node: &Value) -> Option<&Value> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Applies the node lifecycle rules to every node. Returns how long until the next Ready node's
/// grace period runs out if no heartbeat comes first (None without Ready nodes).
pub fn lifecycle(store: &ObjectStore) -> Option<Duration> {
    let grace = super::super::knobs::node_grace().as_secs() as i64;
    let mut due = None;
    for node in store.list("nodes", None).0 {
        let Some(ready) = ready_condition(&node) else {
            continue;
        };
        let status = ready["status"].as_str().unwrap_or("");
        let heartbeat = ready["lastHeartbeatTime"].as_str().unwrap_or("");
        let age = crate::clock::seconds_since(heartbeat);
        let has_taint = node["spec"]["taints"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["key"] == UNREACHABLE));
        let key = ResourceKey::new("nodes", "", name(&node));
        if status == "True"
            && age <= grace
            && let Some(at) = crate::clock::parse_rfc3339(heartbeat)
        {
            // `age` counts whole seconds: it exceeds the grace one second after grace has passed.
            let expires = at + time::Duration::seconds(grace + 1);
            due = earliest(due, Some(until(expires)));
        }
        if status == "True" && age > grace {
            let now = crate::clock::now_rfc3339();
            let res = store.modify(&key, |n| {
                if let Some(cs) = n["status"]["conditions"].as_array_mut() {
                    for c in cs.iter_mut().filter(|c| {
                        crate::node::KUBELET_CONDITIONS
                            .iter()
                            .any(|k| c["type"].as_str() == Some(k))
                    }) {
                        c["status"] = json!("Unknown");
                        c["reason"] = json!("NodeStatusUnknown");
                        c["message"] = json!("Kubelet stopped posting node status.");
                        c["lastTransitionTime"] = json!(now);
                    }
                }
                add_unreachable_taint(n, &now);
                Ok(())
            });
            match res {
                Ok(_) => crate::log::info(format!(
                    "Node {} is NotReady: no status for {age}s (grace {grace}s)",
                    name(&node)
                )),
                Err(e) => crate::log::error(format!(
                    "marking node {} NotReady: {}",
                    name(&node),
                    e.message
                )),
            }
        } else if status == "True" && has_taint {
            let _ = store.modify(&key, |n| {
                if let Some(ts) = n["spec"]["taints"].as_array_mut() {
                    ts.retain(|t| t["key"] != UNREACHABLE);
                }
                Ok(())
            });
        }
    }
    due
}

fn add_unreachable_taint(n: &mut Value, now: &str) {
    if !n["spec"]["taints"].is_array() {
        n["spec"]["taints"] = json!([]);
    }
    if let Some(ts) = n["spec"]["taints"].as_array_mut()
        && !ts.iter().any(|t| t["key"] == UNREACHABLE)
    {
        ts.push(json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now}));
    }
}
