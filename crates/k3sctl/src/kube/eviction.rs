//! Removing one pod: through the Eviction API (respects PodDisruptionBudgets) or by deleting it.
//! The Eviction body is built here: kube-core 5.0.0 sends `delete_options` where the API expects
//! `deleteOptions`, which silently drops the grace period and the UID precondition.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use serde_json::json;

use super::drain_plan::PodRef;
use super::error::{KubeError, status_code};

/// How a removal attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Accepted: the pod is being terminated.
    Accepted,
    /// The pod is already gone (or replaced by a new pod of the same name).
    Gone,
    /// Refused for now (HTTP 429: a PodDisruptionBudget would be violated); retry later.
    Refused(String),
}

/// Pure: the policy/v1 Eviction body for `pod`, with a UID precondition so a replacement pod of
/// the same name is never evicted by mistake.
pub fn eviction_body(pod: &PodRef, grace_period_seconds: Option<i64>) -> serde_json::Value {
    let mut delete_options = json!({"preconditions": {"uid": pod.uid}});
    if let Some(g) = grace_period_seconds {
        delete_options["gracePeriodSeconds"] = json!(g);
    }
    json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": pod.namespace},
        "deleteOptions": delete_options
    })
}

/// Pure: how an API answer maps to a [`Removal`]; `None` means a real error.
pub fn classify(result: &Result<(), kube::Error>) -> Option<Removal> {
    match result {
        Ok(()) => Some(Removal::Accepted),
        // 404: gone. 409: the UID precondition failed, so the pod we meant is gone.
        Err(e) if matches!(status_code(e), Some(404 | 409)) => Some(Removal::Gone),
        Err(kube::Error::Api(status)) if status.code == 429 => {
            Some(Removal::Refused(status.message.clone()))
        }
        Err(_) => None,
    }
}

/// Asks the Eviction API to remove `pod`.
pub async fn evict(
    client: &Client,
    pod: &PodRef,
    grace_period_seconds: Option<i64>,
) -> Result<Removal, KubeError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let body = eviction_body(pod, grace_period_seconds);
    let result = api
        .create_subresource::<_, serde_json::Value>(
            "eviction",
            &pod.name,
            &PostParams::default(),
            &body,
        )
        .await
        .map(|_| ());
    resolve(result, format!("evicting pod {pod}"))
}

/// Deletes `pod` directly (bypasses PodDisruptionBudgets).
pub async fn delete(
    client: &Client,
    pod: &PodRef,
    grace_period_seconds: Option<i64>,
) -> Result<Removal, KubeError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let params = DeleteParams {
        grace_period_seconds: grace_period_seconds.and_then(|g| u32::try_from(g).ok()),
        preconditions: Some(Preconditions {
            uid: Some(pod.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let result = api.delete(&pod.name, &params).await.map(|_| ());
    resolve(result, format!("deleting pod {pod}"))
}

fn resolve(result: Result<(), kube::Error>, what: String) -> Result<Removal, KubeError> {
    if let Some(removal) = classify(&result) {
        return Ok(removal);
    }
    match result {
        Ok(()) => Ok(Removal::Accepted),
        Err(e) => Err(KubeError::api(what, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(json!({"code": code, "message": message, "status": "Failure"}))
                .expect("status"),
        ))
    }

    #[test]
    fn the_body_uses_delete_options_with_a_uid_precondition() {
        let pod = PodRef {
            namespace: "default".into(),
            name: "web-1".into(),
            uid: "u-1".into(),
        };
        assert_eq!(
            eviction_body(&pod, Some(30)),
            json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": "web-1", "namespace": "default"},
                "deleteOptions": {"preconditions": {"uid": "u-1"}, "gracePeriodSeconds": 30}
            })
        );
        assert!(
            eviction_body(&pod, None)["deleteOptions"]
                .get("gracePeriodSeconds")
                .is_none()
        );
    }

    #[test]
    fn answers_map_to_removals() {
        assert_eq!(classify(&Ok(())), Some(Removal::Accepted));
        assert_eq!(
            classify(&Err(api_error(404, "not found"))),
            Some(Removal::Gone)
        );
        assert_eq!(
            classify(&Err(api_error(409, "uid mismatch"))),
            Some(Removal::Gone)
        );
        assert_eq!(
            classify(&Err(api_error(
                429,
                "Cannot evict pod as it would violate the pod's disruption budget."
            ))),
            Some(Removal::Refused(
                "Cannot evict pod as it would violate the pod's disruption budget.".into()
            ))
        );
        assert_eq!(classify(&Err(api_error(500, "boom"))), None);
    }
}
