//! get / list / create / update / patch / delete on the object store, with the semantics
//! kubectl and kube-rs rely on (status subresources, optimistic concurrency, cascades).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::patch::{PatchType, apply};
use super::request::Target;
use super::selectors::{FieldSelector, LabelSelector};
use crate::store::{ApiError, ObjectStore, ResourceKey};

/// Sets `apiVersion` and `kind` for the version a client asked for.
pub fn typed(t: &Target, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(t.rt.api_version());
    obj["kind"] = json!(t.rt.kind);
    obj
}

fn key(t: &Target, name: &str) -> ResourceKey {
    ResourceKey::new(&t.rt.storage(), t.namespace.as_deref().unwrap_or(""), name)
}

/// Label and field selectors from the query.
pub fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

/// One object.
pub fn get(store: &ObjectStore, t: &Target, name: &str) -> Result<Value, ApiError> {
    store
        .get(&key(t, name))
        .map(|o| typed(t, o))
        .ok_or_else(|| ApiError::not_found(&t.rt.storage(), name))
}

/// Matching objects and the list resource version.
pub fn list(
    store: &ObjectStore,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<(Vec<Value>, u64), ApiError> {
    let (ls, fs) = selectors(q)?;
    let (items, rv) = store.list(&t.rt.storage(), t.namespace.as_deref());
    let items = items
        .into_iter()
        .filter(|o| ls.matches(&o["metadata"]["labels"]) && fs.matches(o))
        .map(|o| typed(t, o))
        .collect();
    Ok((items, rv))
}

/// The list object.
pub fn list_object(t: &Target, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", t.rt.kind),
        "apiVersion": t.rt.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn check_namespace(store: &ObjectStore, t: &Target) -> Result<(), ApiError> {
    if let Some(ns) = &t.namespace
        && store.get(&ResourceKey::new("namespaces", "", ns)).is_none()
    {
        return Err(ApiError::not_found("namespaces", ns));
    }
    Ok(())
}

/// Creates an object from a request body.
pub fn create(store: &ObjectStore, t: &Target, mut obj: Value) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if t.rt.namespaced {
        let ns = t.namespace.clone().ok_or_else(|| {
            ApiError::bad_request("the namespace of the object must be given in the path")
        })?;
        if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str)
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        check_namespace(store, t)?;
    }
    if t.rt.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
    if t.rt.kind == "Service" {
        assign_cluster_ip(store, &mut obj);
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    super::validate::object(t.rt.kind, &obj)?;
    let created = store.create(&t.rt.storage(), t.namespace.as_deref().unwrap_or(""), obj)?;
    Ok(typed(t, created))
}

/// Keeps `status` (main resource writes) or everything but `status` (status writes).
fn restrict(t: &Target, old: &Value, new: &mut Value) {
    let has_status = t.rt.subresources.contains(&"status");
    if t.sub.as_deref() == Some("status") {
        let status = new.get("status").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    } else if has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if let Some(m) = new.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
}

/// Gives a Service without one a ClusterIP from the default service CIDR (10.43.0.0/16).
fn assign_cluster_ip(store: &ObjectStore, obj: &mut Value) {
    if obj["spec"]["type"] == "ExternalName"
        || obj["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
    {
        return;
    }
    let used: Vec<String> = store
        .list("services", None)
        .0
        .iter()
        .filter_map(|s| s["spec"]["clusterIP"].as_str().map(str::to_string))
        .collect();
    let free = (10u32..65_000)
        .map(|n| format!("10.43.{}.{}", n / 256, n % 256))
        .find(|ip| !used.contains(ip));
    if let Some(ip) = free {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
}

/// Replaces an object (PUT).
pub fn update(store: &ObjectStore, t: &Target, name: &str, body: Value) -> Result<Value, ApiError> {
    let k = key(t, name);
    let old = store
        .get(&k)
        .ok_or_else(|| ApiError::not_found(&t.rt.storage(), name))?;
    let mut new = body;
    restrict(t, &old, &mut new);
    super::validate::object(t.rt.kind, &new)?;
    store.update(&k, new).map(|o| typed(t, o))
}

/// Applies a patch (PATCH).
pub fn patch(
    store: &ObjectStore,
    t: &Target,
    name: &str,
    kind: PatchType,
    body: &Value,
) -> Result<Value, ApiError> {
    let k = key(t, name);
    let updated = store.modify(&k, |obj| {
        let old = obj.clone();
        let mut doc = typed(t, obj.clone());
        apply(kind, &mut doc, body).map_err(|e| {
            ApiError::invalid(format!(
                "the server rejected our request due to an error in our request: {e}"
            ))
        })?;
        if let Some(rv) = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && rv
                != old
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
        {
            return Err(ApiError::conflict(&t.rt.storage(), name));
        }
        doc["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        restrict(t, &old, &mut doc);
        super::validate::object(t.rt.kind, &doc)?;
        *obj = doc;
        Ok(())
    })?;
    Ok(typed(t, updated))
}

/// Checks DeleteOptions preconditions (`uid`, `resourceVersion`) against the stored object:
/// 409 Conflict when they do not match, as the API server answers.
pub fn check_precondition(
    store: &ObjectStore,
    t: &Target,
    name: &str,
    options: &Value,
) -> Result<(), ApiError> {
    let Some(pre) = options.get("preconditions").filter(|p| p.is_object()) else {
        return Ok(());
    };
    let Some(obj) = store.get(&key(t, name)) else {
        return Ok(());
    };
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = pre.get(field).and_then(Value::as_str) {
            let have = obj["metadata"][field].as_str().unwrap_or("");
            if want != have {
                let mut e = ApiError::conflict(&t.rt.storage(), name);
                e.message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}",
                    t.rt.storage()
                );
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Deletes an object with the cascades K3s and Kubernetes perform for it.
pub fn delete(store: &ObjectStore, t: &Target, name: &str) -> Result<Value, ApiError> {
    let k = key(t, name);
    match t.rt.kind {
        "Namespace" => {
            if matches!(
                name,
                "default" | "kube-system" | "kube-public" | "kube-node-lease"
            ) {
                return Err(ApiError::forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            for rt in super::resources::RESOURCES.iter().filter(|r| r.namespaced) {
                for o in store.list(&rt.storage(), Some(name)).0 {
                    let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                    // Already gone is fine: another version of the same storage listed it.
                    let _ = store.delete(&ResourceKey::new(&rt.storage(), name, &n));
                }
            }
        }
        "Node" => {
            // The k3s node controller removes the node password Secret with the Node.
            let secret = ResourceKey::new(
                "secrets",
                "kube-system",
                &crate::nodepass::secret_name(name),
            );
            let _ = store.delete(&secret);
            // The node's Lease is owned by the Node and goes with it.
            let lease = ResourceKey::new("leases.coordination.k8s.io", "kube-node-lease", name);
            let _ = store.delete(&lease);
        }
        _ => {}
    }
    store.delete(&k).map(|o| typed(t, o))
}

/// Deletes every matching object (DELETE on a collection).
pub fn delete_collection(
    store: &ObjectStore,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let (items, rv) = list(store, t, q)?;
    let mut deleted = Vec::new();
    for o in items {
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ns_t = Target {
            namespace: o["metadata"]["namespace"]
                .as_str()
                .map(str::to_string)
                .or(t.namespace.clone()),
            ..t.clone()
        };
        if let Ok(d) = delete(store, &ns_t, &name) {
            deleted.push(d);
        }
    }
    Ok(list_object(t, deleted, rv))
}
