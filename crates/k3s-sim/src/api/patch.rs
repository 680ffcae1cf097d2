//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (the subset kubectl and
//! controllers send: maps merge, lists of known objects merge by key, `$patch`/`$setElementOrder`/
//! `$retainKeys`/`$deleteFromPrimitiveList` directives) and JSON patch (RFC 6902).

use serde_json::Value;

/// The patch types the API accepts, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml` (server-side apply, treated as a merge).
    Apply,
}

impl PatchType {
    /// From a Content-Type header.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The merge key of well-known lists (`patchMergeKey` in the Kubernetes API types).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "volumes" | "env" | "ports" | "volumeMounts"
        | "imagePullSecrets" => Some("name"),
        "conditions" => Some("type"),
        "addresses" => Some("type"),
        "tolerations" | "taints" => None,
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Strategic merge patch.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        if let Some(m) = clean.as_object_mut() {
            m.remove("$patch");
        }
        *target = clean;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(del)) = (t.get_mut(field), v) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v) {
            (Some(key), Value::Array(items)) => {
                let cur = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                if let Value::Array(cur_items) = cur {
                    for item in items {
                        let id = item.get(key).cloned();
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        let pos = id
                            .as_ref()
                            .and_then(|id| cur_items.iter().position(|c| c.get(key) == Some(id)));
                        match (pos, delete) {
                            (Some(i), true) => {
                                cur_items.remove(i);
                            }
                            (Some(i), false) => strategic_merge(&mut cur_items[i], item),
                            (None, false) => cur_items.push(item.clone()),
                            (None, true) => {}
                        }
                    }
                }
            }
            (_, Value::Object(_)) => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_ptr(path: &str) -> Result<(String, String), String> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((path[..idx].to_string(), unescape(&path[idx + 1..])))
}

fn add_at(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_ptr(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("doc is missing path: {parent:?}"))?;
    match target {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(format!("doc is missing key: {path}"));
            }
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid array index {last:?}"))?;
                if replace {
                    *a.get_mut(i)
                        .ok_or_else(|| format!("index {i} out of range"))? = value;
                } else if i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(format!("index {i} out of range"));
                }
            }
        }
        _ => return Err(format!("cannot add to {parent:?}")),
    }
    Ok(())
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_ptr(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("doc is missing path: {parent:?}"))?;
    match target {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("doc is missing key: {path}")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(format!("index {i} out of range"))
            }
        }
        _ => Err(format!("cannot remove from {parent:?}")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without path")?;
        match op["op"].as_str().unwrap_or("") {
            "add" => add_at(doc, path, op["value"].clone(), false)?,
            "replace" => add_at(doc, path, op["value"].clone(), true)?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("operation without from")?;
                let v = if op["op"] == "move" {
                    remove_at(doc, from)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("doc is missing path: {from}"))?
                };
                add_at(doc, path, v, false)?;
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

/// Applies a patch of the given type.
pub fn apply(kind: PatchType, doc: &mut Value, patch: &Value) -> Result<(), String> {
    match kind {
        PatchType::Merge | PatchType::Apply => {
            merge_patch(doc, patch);
            Ok(())
        }
        PatchType::Strategic => {
            strategic_merge(doc, patch);
            Ok(())
        }
        PatchType::Json => json_patch(doc, patch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cordon_and_uncordon_patches() {
        let mut node = json!({"spec": {"podCIDR": "10.42.0.0/24"}});
        apply(
            PatchType::Strategic,
            &mut node,
            &json!({"spec": {"unschedulable": true}}),
        )
        .expect("cordon");
        assert_eq!(node["spec"]["unschedulable"], true);
        apply(
            PatchType::Strategic,
            &mut node,
            &json!({"spec": {"unschedulable": null}}),
        )
        .expect("uncordon");
        assert!(node["spec"].get("unschedulable").is_none());
        assert_eq!(node["spec"]["podCIDR"], "10.42.0.0/24");
    }

    #[test]
    fn strategic_merges_conditions_by_type() {
        let mut st = json!({"conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}]});
        strategic_merge(
            &mut st,
            &json!({"$setElementOrder/conditions": [{"type": "Ready"}], "conditions": [{"type": "Ready", "status": "True"}]}),
        );
        assert_eq!(st["conditions"][0]["status"], "True");
        assert_eq!(st["conditions"].as_array().expect("list").len(), 2);
        assert!(st.get("$setElementOrder/conditions").is_none());
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"taints": []}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "replace", "path": "/metadata/labels/a", "value": "3"},
                {"op": "add", "path": "/spec/taints/-", "value": {"key": "k", "effect": "NoSchedule"}},
                {"op": "test", "path": "/metadata/labels/a", "value": "3"},
            ]),
        )
        .expect("patch");
        assert_eq!(doc["metadata"]["labels"]["b/c"], "2");
        assert_eq!(doc["spec"]["taints"][0]["key"], "k");
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope/x"}])).is_err());
    }
}
