//! Shape checks on objects written through the API, so that controllers can rely on maps being
//! maps: a malformed object is refused with 422 Invalid instead of reaching them.

use serde_json::Value;

use crate::store::ApiError;

fn expect_object(v: Option<&Value>, field: &str, kind: &str) -> Result<(), ApiError> {
    match v {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(ApiError::invalid(format!(
            "{kind} is invalid: {field}: Invalid value: must be an object"
        ))),
    }
}

fn expect_string_map(v: Option<&Value>, field: &str, kind: &str) -> Result<(), ApiError> {
    expect_object(v, field, kind)?;
    if let Some(Value::Object(m)) = v
        && let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ApiError::invalid(format!(
            "{kind} is invalid: {field}.{k}: Invalid value: must be a string"
        )));
    }
    Ok(())
}

fn expect_array(v: Option<&Value>, field: &str, kind: &str) -> Result<(), ApiError> {
    match v {
        None | Some(Value::Null) | Some(Value::Array(_)) => Ok(()),
        Some(_) => Err(ApiError::invalid(format!(
            "{kind} is invalid: {field}: Invalid value: must be a list"
        ))),
    }
}

fn pod_spec(spec: Option<&Value>, prefix: &str, kind: &str) -> Result<(), ApiError> {
    expect_object(spec, prefix, kind)?;
    let Some(spec) = spec else { return Ok(()) };
    for list in ["containers", "initContainers", "volumes", "tolerations"] {
        let field = format!("{prefix}.{list}");
        expect_array(spec.get(list), &field, kind)?;
        for item in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            expect_object(Some(item), &field, kind)?;
        }
    }
    expect_string_map(
        spec.get("nodeSelector"),
        &format!("{prefix}.nodeSelector"),
        kind,
    )
}

/// Checks the parts of an object the stand-in's controllers read.
pub fn object(kind: &str, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    expect_object(obj.get("metadata"), "metadata", kind)?;
    let meta = obj.get("metadata");
    expect_string_map(meta.and_then(|m| m.get("labels")), "metadata.labels", kind)?;
    expect_string_map(
        meta.and_then(|m| m.get("annotations")),
        "metadata.annotations",
        kind,
    )?;
    expect_array(
        meta.and_then(|m| m.get("ownerReferences")),
        "metadata.ownerReferences",
        kind,
    )?;
    expect_object(obj.get("spec"), "spec", kind)?;
    expect_object(obj.get("status"), "status", kind)?;
    let spec = obj.get("spec");
    match kind {
        "Pod" => pod_spec(spec, "spec", kind)?,
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
            let template = spec.and_then(|s| s.get("template"));
            expect_object(template, "spec.template", kind)?;
            expect_object(
                template.and_then(|t| t.get("metadata")),
                "spec.template.metadata",
                kind,
            )?;
            expect_string_map(
                template.and_then(|t| t.pointer("/metadata/labels")),
                "spec.template.metadata.labels",
                kind,
            )?;
            pod_spec(
                template.and_then(|t| t.get("spec")),
                "spec.template.spec",
                kind,
            )?;
            expect_object(spec.and_then(|s| s.get("selector")), "spec.selector", kind)?;
            if let Some(r) = spec.and_then(|s| s.get("replicas"))
                && !r.is_null()
                && r.as_i64().is_none_or(|n| n < 0)
            {
                return Err(ApiError::invalid(format!(
                    "{kind} is invalid: spec.replicas: Invalid value: must be a non-negative integer"
                )));
            }
        }
        "Node" => {
            expect_array(spec.and_then(|s| s.get("taints")), "spec.taints", kind)?;
            expect_array(obj.pointer("/status/conditions"), "status.conditions", kind)?;
            expect_array(obj.pointer("/status/addresses"), "status.addresses", kind)?;
        }
        "PodDisruptionBudget" => {
            expect_object(spec.and_then(|s| s.get("selector")), "spec.selector", kind)?
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_objects_are_invalid() {
        assert!(
            object(
                "Pod",
                &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
            )
            .is_ok()
        );
        for bad in [
            json!({"metadata": "x"}),
            json!({"metadata": {"labels": {"a": 1}}}),
            json!({"status": 5}),
            json!({"spec": {"containers": {"name": "c"}}}),
        ] {
            assert_eq!(object("Pod", &bad).expect_err("invalid").code, 422, "{bad}");
        }
        let d = json!({"spec": {"replicas": -1, "template": {"spec": {}}}});
        assert_eq!(object("Deployment", &d).expect_err("negative").code, 422);
    }
}
