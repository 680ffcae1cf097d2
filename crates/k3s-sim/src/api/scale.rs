//! The `scale` subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets and StatefulSets,
//! which `kubectl scale` uses.

use serde_json::{Value, json};

use super::patch::{PatchType, apply};
use super::request::Target;
use crate::store::{ApiError, ObjectStore, ResourceKey};

fn key(t: &Target, name: &str) -> ResourceKey {
    ResourceKey::new(&t.rt.storage(), t.namespace.as_deref().unwrap_or(""), name)
}

fn selector_string(obj: &Value) -> String {
    obj.pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The Scale view of a scalable object.
pub fn to_scale(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_string(obj)},
    })
}

/// GET .../scale.
pub fn get(store: &ObjectStore, t: &Target, name: &str) -> Result<Value, ApiError> {
    store
        .get(&key(t, name))
        .map(|o| to_scale(&o))
        .ok_or_else(|| ApiError::not_found(&t.rt.storage(), name))
}

/// PUT (patch = None, body = Scale) or PATCH (patch type and body) of .../scale.
pub fn set(
    store: &ObjectStore,
    t: &Target,
    name: &str,
    patch: Option<PatchType>,
    body: &Value,
) -> Result<Value, ApiError> {
    let updated = store.modify(&key(t, name), |obj| {
        let mut scale = to_scale(obj);
        match patch {
            Some(kind) => apply(kind, &mut scale, body).map_err(ApiError::invalid)?,
            None => scale = body.clone(),
        }
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .ok_or_else(|| ApiError::invalid("Scale.spec.replicas: Required value"))?;
        if replicas < 0 {
            return Err(ApiError::invalid(format!(
                "Scale.spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            )));
        }
        obj["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(to_scale(&updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view() {
        let d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = to_scale(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=web");
    }
}
