//! Scheduling predicates: node readiness, cordon, taints and tolerations, node selectors.

use serde_json::Value;

/// Whether the node's Ready condition is True.
pub fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether `tolerations` tolerate `taint` (Kubernetes matching rules).
pub fn tolerates(tolerations: &[Value], taint: &Value) -> bool {
    tolerations.iter().any(|t| {
        let op = t["operator"].as_str().unwrap_or("Equal");
        let key_ok = match t["key"].as_str() {
            None | Some("") => op == "Exists",
            Some(k) => k == taint["key"].as_str().unwrap_or(""),
        };
        let value_ok = op == "Exists"
            || t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("");
        let effect_ok = match t["effect"].as_str() {
            None | Some("") => true,
            Some(e) => e == taint["effect"].as_str().unwrap_or(""),
        };
        key_ok && value_ok && effect_ok
    })
}

/// Tolerations the DaemonSet controller adds to every DaemonSet pod.
pub fn daemonset_tolerations() -> Vec<Value> {
    [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]
    .iter()
    .map(|k| serde_json::json!({"key": k, "operator": "Exists", "effect": "NoExecute"}))
    .chain(
        [
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
            "node.kubernetes.io/unreachable",
        ]
        .iter()
        .map(|k| serde_json::json!({"key": k, "operator": "Exists", "effect": "NoSchedule"})),
    )
    .collect()
}

fn selector_ok(node: &Value, pod_spec: &Value) -> bool {
    pod_spec["nodeSelector"].as_object().is_none_or(|sel| {
        sel.iter()
            .all(|(k, v)| node["metadata"]["labels"].get(k) == Some(v))
    })
}

/// Whether a pod with `pod_spec` may run on `node`. `daemon` pods ignore cordon and node
/// readiness (the DaemonSet controller's rules); others need a Ready, schedulable node.
pub fn fits(node: &Value, pod_spec: &Value, daemon: bool) -> bool {
    let mut tolerations: Vec<Value> = pod_spec["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if daemon {
        tolerations.extend(daemonset_tolerations());
    } else if !node_ready(node) || node["spec"]["unschedulable"] == true {
        return false;
    }
    let taints_ok = node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|t| {
            let hard = matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"));
            !hard || tolerates(&tolerations, t)
        });
    taints_ok && selector_ok(node, pod_spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn taints_cordon_and_readiness() {
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let node = json!({"metadata": {"labels": {"zone": "a"}}, "spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}, "status": {"conditions": ready}});
        assert!(!fits(&node, &json!({}), false));
        assert!(fits(
            &node,
            &json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]}),
            false
        ));
        assert!(fits(
            &node,
            &json!({"tolerations": [{"operator": "Exists"}], "nodeSelector": {"zone": "a"}}),
            false
        ));
        assert!(!fits(
            &node,
            &json!({"tolerations": [{"operator": "Exists"}], "nodeSelector": {"zone": "b"}}),
            false
        ));
        let cordoned = json!({"metadata": {}, "spec": {"unschedulable": true}, "status": {"conditions": ready}});
        assert!(!fits(&cordoned, &json!({}), false));
        assert!(
            fits(&cordoned, &json!({}), true),
            "daemon pods ignore cordon"
        );
    }
}
