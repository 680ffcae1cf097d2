//! Deployments own one ReplicaSet per pod template; ReplicaSets keep `replicas` pods; DaemonSets
//! keep one pod on every node their pods fit on. Status fields are kept as kubectl prints them.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::Digest;

use super::scheduling::{daemonset_tolerations, fits};
use super::{controller_of, name, namespace, owner_ref, uid};
use crate::store::{ObjectStore, ResourceKey};

fn template_hash(template: &Value) -> String {
    let digest = sha2::Sha256::digest(template.to_string().as_bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest
        .iter()
        .take(10)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn owned_by<'a>(items: &'a [Value], owner_uid: &str) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|o| controller_of(o).is_some_and(|(_, u)| u == owner_uid))
        .collect()
}

fn pod_ready(p: &Value) -> bool {
    crate::api::eviction::pod_healthy(p)
}

fn set_status(store: &ObjectStore, resource: &str, obj: &Value, status: Value) {
    let key = ResourceKey::new(resource, namespace(obj), name(obj));
    let _ = store.modify(&key, |o| {
        o["status"] = status.clone();
        Ok(())
    });
}

/// Deployment → ReplicaSet.
pub fn deployments(store: &ObjectStore) {
    let (rss, _) = store.list("replicasets.apps", None);
    let (pods, _) = store.list("pods", None);
    for d in store.list("deployments.apps", None).0 {
        let template = d["spec"]["template"].clone();
        let hash = template_hash(&template);
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let rs_name = format!("{}-{hash}", name(&d));
        let owned = owned_by(&rss, uid(&d));
        for old in owned.iter().filter(|r| name(r) != rs_name) {
            let _ = store.delete(&ResourceKey::new(
                "replicasets.apps",
                namespace(old),
                name(old),
            ));
        }
        let current = owned.iter().find(|r| name(r) == rs_name);
        match current {
            None => {
                let mut tpl = template.clone();
                tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "metadata": {"name": rs_name, "labels": tpl["metadata"]["labels"].clone(),
                        "ownerReferences": [owner_ref("apps/v1", "Deployment", &d)]},
                    "spec": {"replicas": replicas, "selector": selector, "template": tpl},
                });
                if let Err(e) = store.create("replicasets.apps", namespace(&d), rs) {
                    crate::log::error(format!("creating replicaset {rs_name}: {}", e.message));
                }
            }
            Some(rs) if rs["spec"]["replicas"].as_i64() != Some(replicas) => {
                let _ = store.modify(
                    &ResourceKey::new("replicasets.apps", namespace(rs), name(rs)),
                    |o| {
                        o["spec"]["replicas"] = json!(replicas);
                        Ok(())
                    },
                );
            }
            Some(_) => {}
        }
        let rs_uid = current.map(|r| uid(r).to_string()).unwrap_or_default();
        let mine = owned_by(&pods, &rs_uid);
        let ready = mine.iter().filter(|p| pod_ready(p)).count() as i64;
        let total = mine.len() as i64;
        let available = if ready >= replicas { "True" } else { "False" };
        set_status(
            store,
            "deployments.apps",
            &d,
            json!({
                "observedGeneration": d["metadata"]["generation"].clone(),
                "replicas": total, "updatedReplicas": total, "readyReplicas": ready, "availableReplicas": ready,
                "unavailableReplicas": (replicas - ready).max(0),
                "conditions": [{"type": "Available", "status": available,
                    "reason": if available == "True" { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    "message": if available == "True" { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }}],
            }),
        );
    }
}

fn new_pod(owner: &Value, owner_kind: &str, node: Option<&str>) -> Value {
    let tpl = &owner["spec"]["template"];
    let mut spec = tpl["spec"].clone();
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
        if owner_kind == "DaemonSet" {
            let mut tol = spec["tolerations"].as_array().cloned().unwrap_or_default();
            tol.extend(daemonset_tolerations());
            spec["tolerations"] = json!(tol);
        }
    }
    json!({
        "metadata": {"generateName": format!("{}-", name(owner)), "labels": tpl["metadata"]["labels"].clone(),
            "ownerReferences": [owner_ref("apps/v1", owner_kind, owner)]},
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    })
}

/// ReplicaSet → Pods.
pub fn replicasets(store: &ObjectStore) {
    let (pods, _) = store.list("pods", None);
    for rs in store.list("replicasets.apps", None).0 {
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mine: Vec<&Value> = owned_by(&pods, uid(&rs))
            .into_iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .collect();
        if mine.len() < want {
            for _ in mine.len()..want {
                if let Err(e) =
                    store.create("pods", namespace(&rs), new_pod(&rs, "ReplicaSet", None))
                {
                    crate::log::error(format!(
                        "creating pod for replicaset {}: {}",
                        name(&rs),
                        e.message
                    ));
                }
            }
        } else if mine.len() > want {
            let mut victims = mine.clone();
            victims.sort_by_key(|p| (pod_ready(p), p["spec"]["nodeName"].is_string()));
            for p in victims.iter().take(mine.len() - want) {
                let _ = store.delete(&ResourceKey::new("pods", namespace(p), name(p)));
            }
        }
        let ready = mine.iter().filter(|p| pod_ready(p)).count();
        set_status(
            store,
            "replicasets.apps",
            &rs,
            json!({
                "observedGeneration": rs["metadata"]["generation"].clone(),
                "replicas": mine.len(), "fullyLabeledReplicas": mine.len(), "readyReplicas": ready, "availableReplicas": ready,
            }),
        );
    }
}

/// DaemonSet → one Pod per fitting node.
pub fn daemonsets(store: &ObjectStore) {
    let (pods, _) = store.list("pods", None);
    let (nodes, _) = store.list("nodes", None);
    for ds in store.list("daemonsets.apps", None).0 {
        let spec = &ds["spec"]["template"]["spec"];
        let eligible: Vec<&str> = nodes
            .iter()
            .filter(|n| fits(n, spec, true))
            .map(name)
            .collect();
        let mut by_node: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for p in owned_by(&pods, uid(&ds)) {
            by_node
                .entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
                .or_default()
                .push(p);
        }
        for n in &eligible {
            if !by_node.contains_key(*n)
                && let Err(e) =
                    store.create("pods", namespace(&ds), new_pod(&ds, "DaemonSet", Some(n)))
            {
                crate::log::error(format!(
                    "creating pod for daemonset {} on {n}: {}",
                    name(&ds),
                    e.message
                ));
            }
        }
        for (node, ps) in &by_node {
            let extra = if eligible.contains(&node.as_str()) {
                ps.iter().skip(1).collect::<Vec<_>>()
            } else {
                ps.iter().collect()
            };
            for p in extra {
                let _ = store.delete(&ResourceKey::new("pods", namespace(p), name(p)));
            }
        }
        let current = by_node
            .keys()
            .filter(|n| eligible.contains(&n.as_str()))
            .count();
        let ready = by_node.values().flatten().filter(|p| pod_ready(p)).count();
        set_status(
            store,
            "daemonsets.apps",
            &ds,
            json!({
                "observedGeneration": ds["metadata"]["generation"].clone(),
                "desiredNumberScheduled": eligible.len(), "currentNumberScheduled": current, "numberReady": ready,
                "updatedNumberScheduled": current, "numberAvailable": ready, "numberMisscheduled": 0,
            }),
        );
    }
}
