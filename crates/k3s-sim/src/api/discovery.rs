//! Discovery documents: /api, /apis, /api/v1, /apis/<group>/<version>, /version.

use serde_json::{Value, json};

use super::resources::{GROUP_VERSIONS, RESOURCES};

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = GROUP_VERSIONS
        .iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>` (one group).
pub fn group(name: &str) -> Option<Value> {
    let list = group_list();
    list["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)
        .map(|g| {
            let mut g = g.clone();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        })
}

/// Kinds in the `all` category (`kubectl get all`).
const ALL_CATEGORY: &[&str] = &[
    "Pod",
    "Service",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
];

fn verbs(kind: &str) -> Vec<&'static str> {
    match kind {
        "Event" => vec![
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        _ => vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    }
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut out = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        out.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r.kind),
            "shortNames": r.short,
            "categories": if ALL_CATEGORY.contains(&r.kind) { vec!["all"] } else { vec![] },
        }));
        for sub in r.subresources {
            let entry = match *sub {
                // Eviction lives in the policy group; kubectl drain looks for exactly this entry.
                "eviction" => json!({
                    "name": format!("{}/eviction", r.plural), "singularName": "", "namespaced": true,
                    "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
                }),
                "scale" => json!({
                    "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
                }),
                s => json!({
                    "name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": ["get", "patch", "update"],
                }),
            };
            out.push(entry);
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
    )
}

/// `/version`, with the K3s version as gitVersion.
pub fn version_info(k3s_version: &str) -> Value {
    let core = k3s_version.trim_start_matches('v');
    let mut parts = core.split(['.', '+', '-']);
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": k3s_version,
        "gitCommit": crate::version::commit_for(k3s_version),
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": crate::version::GO_VERSION,
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_eviction_in_policy_group() {
        let v1 = resource_list("", "v1").expect("core");
        let ev = v1["resources"]
            .as_array()
            .expect("list")
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .expect("eviction")
            .clone();
        assert_eq!(ev["group"], "policy");
        assert_eq!(ev["kind"], "Eviction");
        assert!(resource_list("nope", "v1").is_none());
        assert_eq!(
            group_list()["groups"][1]["preferredVersion"]["version"],
            "v1"
        );
        assert_eq!(version_info("v1.33.5+k3s1")["minor"], "33");
    }
}
