//! The pod eviction subresource: allowed unless a PodDisruptionBudget would be violated, in which
//! case the API answers 429 with the same Status the real API server sends.

use serde_json::{Value, json};

use super::selectors::LabelSelector;
use crate::store::{ApiError, ObjectStore, ResourceKey};

/// Whether a pod counts as healthy for disruption budgets (Running and Ready, not terminating).
pub fn pod_healthy(pod: &Value) -> bool {
    pod["metadata"].get("deletionTimestamp").is_none()
        && pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Resolves an int-or-percent against a total (percent rounds up, as the disruption controller does).
pub fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.trim().parse().ok()?;
            Some((p * total + 99) / 100)
        }
        _ => None,
    }
}

/// For a PDB over `pods` (all pods of its namespace): (desired healthy, currently healthy, expected).
pub fn budget(pdb: &Value, pods: &[Value]) -> (i64, i64, i64) {
    let sel = LabelSelector::from_object(&pdb["spec"]["selector"]);
    let matching: Vec<&Value> = pods
        .iter()
        .filter(|p| !sel.is_empty() && sel.matches(&p["metadata"]["labels"]))
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .collect();
    let expected = matching.len() as i64;
    let healthy = matching.iter().filter(|p| pod_healthy(p)).count() as i64;
    let desired = if let Some(min) = pdb["spec"]
        .get("minAvailable")
        .and_then(|v| scaled(v, expected))
    {
        min
    } else if let Some(max) = pdb["spec"]
        .get("maxUnavailable")
        .and_then(|v| scaled(v, expected))
    {
        (expected - max).max(0)
    } else {
        0
    };
    (desired, healthy, expected)
}

fn too_many_requests(pdb_name: &str, desired: i64, healthy: i64) -> ApiError {
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        details: Some(json!({"causes": [{
            "reason": "DisruptionBudget",
            "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
        }]})),
    }
}

/// Evicts a pod: checks budgets, then deletes it. Returns the success Status.
pub fn evict(store: &ObjectStore, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let key = ResourceKey::new("pods", namespace, name);
    let pod = store
        .get(&key)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let labels = &pod["metadata"]["labels"];
    let pdbs: Vec<Value> = store
        .list("poddisruptionbudgets.policy", Some(namespace))
        .0
        .into_iter()
        .filter(|p| {
            let sel = LabelSelector::from_object(&p["spec"]["selector"]);
            !sel.is_empty() && sel.matches(labels)
        })
        .collect();
    if pdbs.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let terminal = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if let Some(pdb) = pdbs.first()
        && !terminal
    {
        let pods = store.list("pods", Some(namespace)).0;
        let (desired, healthy, _) = budget(pdb, &pods);
        let allowed = if pod_healthy(&pod) {
            healthy - desired > 0
        } else {
            healthy >= desired
        };
        if !allowed {
            return Err(too_many_requests(
                pdb["metadata"]["name"].as_str().unwrap_or(""),
                desired,
                healthy,
            ));
        }
    }
    store.delete(&key)?;
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(app: &str, ready: bool) -> Value {
        json!({"metadata": {"labels": {"app": app}}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn min_available_budget() {
        let pdb = json!({"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
        let pods = vec![pod("web", true), pod("web", true), pod("other", true)];
        assert_eq!(budget(&pdb, &pods), (2, 2, 2));
        let pct =
            json!({"spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(
            budget(
                &pct,
                &[pod("web", true), pod("web", true), pod("web", false)]
            ),
            (2, 2, 3)
        );
        let max =
            json!({"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(budget(&max, &pods).0, 1);
    }

    #[test]
    fn blocked_message_matches_the_api_server() {
        let e = too_many_requests("web-pdb", 2, 2);
        assert_eq!(e.code, 429);
        assert_eq!(
            e.to_status()["details"]["causes"][0]["message"],
            "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
        );
    }
}
