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

/// Waiting reasons of a container that will not clear by waiting: the kubelet is backing off
/// after failures, or the pod spec cannot work as written.
const STUCK_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// A pod's health as a gate judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodHealth {
    /// Running with every container ready, Succeeded, or a failed attempt of a Job (the Job
    /// controller retries with a new pod).
    Healthy,
    /// Not there yet but on its way (`ns/name: Pending`, ContainerCreating, readiness probes):
    /// worth waiting for.
    Settling(String),
    /// In a state that waiting will not fix (CrashLoopBackOff, ImagePullBackOff, Failed).
    Stuck(String),
}

impl PodHealth {
    /// The description, `None` when healthy.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Self::Healthy => None,
            Self::Settling(p) | Self::Stuck(p) => Some(p),
        }
    }
}

/// Pure: how healthy `pod` is, with the reason (`namespace/name: Pending`).
pub fn pod_health(pod: &Pod) -> PodHealth {
    let name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let containers: Vec<_> = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect();
    let waiting = |c: &&k8s_openapi::api::core::v1::ContainerStatus| {
        c.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
    };
    let owned_by_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job");
    if phase == "Succeeded" || (phase == "Failed" && owned_by_job) {
        return PodHealth::Healthy;
    }
    if let Some((container, reason)) = containers.iter().find_map(|c| {
        waiting(c)
            .filter(|r| STUCK_REASONS.contains(&r.as_str()))
            .map(|r| (c.name.as_str(), r))
    }) {
        return PodHealth::Stuck(format!("{name}: {phase}, container {container}: {reason}"));
    }
    match phase {
        "Failed" => PodHealth::Stuck(format!("{name}: Failed")),
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
            if not_ready.is_empty() {
                PodHealth::Healthy
            } else {
                PodHealth::Settling(format!(
                    "{name}: Running, containers not ready: {}",
                    not_ready.join(", ")
                ))
            }
        }
        other => match containers.iter().find_map(waiting) {
            Some(reason) => PodHealth::Settling(format!("{name}: {other} ({reason})")),
            None => PodHealth::Settling(format!("{name}: {other}")),
        },
    }
}

/// Pure: why `pod` is unhealthy (`namespace/name: Pending`), `None` when Running with all
/// containers ready, or Succeeded.
pub fn pod_problem(pod: &Pod) -> Option<String> {
    pod_health(pod).problem().map(str::to_string)
}

/// The health of every pod of `namespace` that is not healthy (all namespaces when `None`).
pub async fn pod_healths(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<PodHealth>, KubeError> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::api("listing pods", e))?;
    Ok(list
        .items
        .iter()
        .map(pod_health)
        .filter(|h| *h != PodHealth::Healthy)
        .collect())
}

/// The unhealthy pods of `namespace` (all namespaces when `None`), described.
pub async fn unhealthy_pods(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<String>, KubeError> {
    Ok(pod_healths(client, namespace)
        .await?
        .iter()
        .filter_map(|h| h.problem().map(str::to_string))
        .collect())
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

    fn waiting(phase: &str, reason: &str) -> Pod {
        pod(json!({"phase": phase, "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 4, "image": "i", "imageID": "",
             "state": {"waiting": {"reason": reason}}}]}))
    }

    #[test]
    fn tells_settling_pods_from_stuck_ones() {
        let settling = |p: &Pod| matches!(pod_health(p), PodHealth::Settling(_));
        let stuck = |p: &Pod| matches!(pod_health(p), PodHealth::Stuck(_));
        // Table: (pod, expected) — settling states are worth a wait, stuck ones are not.
        let table = [
            (pod(json!({"phase": "Pending"})), "settling"),
            (waiting("Pending", "ContainerCreating"), "settling"),
            (waiting("Pending", "PodInitializing"), "settling"),
            (waiting("Pending", "ErrImagePull"), "settling"),
            (waiting("Running", "ContainerCreating"), "settling"),
            (pod(json!({})), "settling"),
            (waiting("Running", "CrashLoopBackOff"), "stuck"),
            (waiting("Pending", "ImagePullBackOff"), "stuck"),
            (waiting("Pending", "InvalidImageName"), "stuck"),
            (waiting("Pending", "CreateContainerConfigError"), "stuck"),
            (pod(json!({"phase": "Failed"})), "stuck"),
            (pod(json!({"phase": "Succeeded"})), "healthy"),
        ];
        for (p, want) in &table {
            let got = match pod_health(p) {
                PodHealth::Healthy => "healthy",
                PodHealth::Settling(_) => "settling",
                PodHealth::Stuck(_) => "stuck",
            };
            assert_eq!(got, *want, "{:?}", p.status);
        }
        assert!(settling(&waiting("Pending", "ContainerCreating")));
        assert_eq!(
            pod_health(&waiting("Running", "CrashLoopBackOff")),
            PodHealth::Stuck("kube-system/p: Running, container c: CrashLoopBackOff".into())
        );
        assert_eq!(
            pod_health(&waiting("Pending", "ContainerCreating")),
            PodHealth::Settling("kube-system/p: Pending (ContainerCreating)".into())
        );
        // A failed attempt of a Job is the Job controller's business, not a stuck pod.
        let mut attempt = pod(json!({"phase": "Failed"}));
        assert!(stuck(&attempt));
        attempt.metadata.owner_references =
            Some(vec![serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "name": "helm-install-traefik", "uid": "u"
        }))
        .expect("owner")]);
        assert_eq!(pod_health(&attempt), PodHealth::Healthy);
    }
}
