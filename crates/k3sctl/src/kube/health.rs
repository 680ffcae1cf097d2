//! Health probes through the API: the API server's /readyz and pods not in a healthy phase.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};

use super::error::KubeError;

/// True when the API server answers `ok` on /readyz.
pub async fn readyz(client: &Client) -> Result<bool, KubeError> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| KubeError::api("building the /readyz request", kube::Error::HttpError(e)))?;
    match client.request_text(request).await {
        Ok(body) => Ok(body.trim() == "ok"),
        Err(kube::Error::Api(_)) => Ok(false),
        Err(e) => Err(KubeError::api("probing /readyz", e)),
    }
}

/// Pure: why `pod` is unhealthy (`namespace/name: Pending`), `None` when Running with all
/// containers ready, or Succeeded.
pub fn pod_problem(pod: &Pod) -> Option<String> {
    let name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    match phase {
        "Succeeded" => None,
        "Running" => {
            let not_ready: Vec<&str> = status
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| {
                    cs.iter()
                        .filter(|c| !c.ready)
                        .map(|c| c.name.as_str())
                        .collect()
                })
                .unwrap_or_default();
            (!not_ready.is_empty()).then(|| {
                format!(
                    "{name}: Running, containers not ready: {}",
                    not_ready.join(", ")
                )
            })
        }
        other => Some(format!("{name}: {other}")),
    }
}

/// The unhealthy pods of `namespace` (all namespaces when `None`), described.
pub async fn unhealthy_pods(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<String>, KubeError> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::api("listing pods", e))?;
    Ok(list.items.iter().filter_map(pod_problem).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "kube-system"},
            "status": status
        }))
        .expect("pod")
    }

    #[test]
    fn classifies_pod_health() {
        assert_eq!(pod_problem(&pod(json!({"phase": "Succeeded"}))), None);
        let ready = json!({"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": true, "restartCount": 0, "image": "i", "imageID": ""}]});
        assert_eq!(pod_problem(&pod(ready)), None);
        let not_ready = json!({"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 3, "image": "i", "imageID": ""}]});
        assert_eq!(
            pod_problem(&pod(not_ready)).as_deref(),
            Some("kube-system/p: Running, containers not ready: c")
        );
        assert_eq!(
            pod_problem(&pod(json!({"phase": "Pending"}))).as_deref(),
            Some("kube-system/p: Pending")
        );
    }
}
