//! K3s's etcd member controller (`pkg/etcd/member_controller.go`), on the controller leader:
//! a Node annotated `etcd.k3s.cattle.io/remove=true` has its member removed, then gets
//! `etcd.k3s.cattle.io/removed-node-name` and loses the node-name/node-address annotations (the
//! Node itself stays); deleting an etcd Node removes its member unless that was already done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::EtcdHandle;
use crate::store::{EventType, ObjectStore, ResourceKey};

/// Annotation requesting removal.
pub const REMOVE: &str = "etcd.k3s.cattle.io/remove";
/// Annotation recording a removal.
pub const REMOVED: &str = "etcd.k3s.cattle.io/removed-node-name";
/// Member name annotation.
pub const NODE_NAME: &str = "etcd.k3s.cattle.io/node-name";
/// Member address annotation.
pub const NODE_ADDRESS: &str = "etcd.k3s.cattle.io/node-address";

fn annotation<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node["metadata"]["annotations"][key].as_str()
}

fn is_etcd_node(node: &Value) -> bool {
    node["metadata"]["labels"]["node-role.kubernetes.io/etcd"] == "true"
}

/// The member a Node names, when it asks to be removed (pure: which member, if any).
pub fn removal_requested(node: &Value) -> Option<&str> {
    if !is_etcd_node(node) || annotation(node, REMOVE) != Some("true") {
        return None;
    }
    if annotation(node, REMOVED).is_some() {
        return None;
    }
    annotation(node, NODE_NAME)
}

/// The member of a deleted Node that still has to be removed.
pub fn removal_on_delete(node: &Value) -> Option<&str> {
    if !is_etcd_node(node) || annotation(node, REMOVED).is_some() {
        return None;
    }
    annotation(node, NODE_NAME)
}

fn remove_member(h: &EtcdHandle, member: &str) -> Result<bool, String> {
    let members = h.client.member_list().map_err(|e| e.to_string())?;
    let Some(m) = members.iter().find(|m| m.name == member) else {
        return Ok(false);
    };
    h.client.member_remove(m.id).map_err(|e| e.to_string())?;
    crate::log::info(format!("Removed etcd member {member} from the cluster"));
    Ok(true)
}

/// Runs the controller while `leader` is set. Every server notes the members of deleted etcd
/// Nodes, so whichever server leads next removes them even if no server led at that moment
/// (K3s holds the deletion with a finalizer until its handler ran).
pub async fn run(store: Arc<ObjectStore>, h: Arc<EtcdHandle>, leader: Arc<AtomicBool>) {
    let (mut rx, _) = store.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut pending: Vec<(String, String)> = Vec::new();
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Ok(ev) = ev else { continue };
                if ev.kind == EventType::Deleted
                    && ev.key.resource == "nodes"
                    && let Some(member) = removal_on_delete(&ev.object)
                {
                    pending.push((member.to_string(), ev.key.name.clone()));
                }
            }
            _ = tick.tick() => {
                if !leader.load(Ordering::SeqCst) {
                    continue;
                }
                pending.retain(|(member, node)| match remove_member(&h, member) {
                    Ok(_) => false,
                    Err(e) => {
                        crate::log::error(format!(
                            "Failed to remove etcd member {member} of deleted node {node}: {e}"
                        ));
                        true
                    }
                });
                for node in store.list("nodes", None).0 {
                    let Some(member) = removal_requested(&node).map(str::to_string) else { continue };
                    let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
                    match remove_member(&h, &member) {
                        Ok(_) => {
                            let key = ResourceKey::new("nodes", "", &name);
                            let _ = store.modify(&key, |n| {
                                if let Some(a) = n["metadata"]["annotations"].as_object_mut() {
                                    a.insert(REMOVED.into(), Value::String(member.clone()));
                                    a.remove(NODE_NAME);
                                    a.remove(NODE_ADDRESS);
                                }
                                Ok(())
                            });
                        }
                        Err(e) => crate::log::error(format!("Failed to remove etcd member {member} of node {name}: {e}")),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn which_member_to_remove() {
        let node = |ann: Value| {
            json!({"metadata": {"name": "s2", "labels": {"node-role.kubernetes.io/etcd": "true"},
                   "annotations": ann}})
        };
        let plain = node(json!({NODE_NAME: "s2-0a1b2c3d", NODE_ADDRESS: "10.0.0.2"}));
        assert_eq!(removal_requested(&plain), None);
        assert_eq!(removal_on_delete(&plain), Some("s2-0a1b2c3d"));
        let asked = node(json!({NODE_NAME: "s2-0a1b2c3d", REMOVE: "true"}));
        assert_eq!(removal_requested(&asked), Some("s2-0a1b2c3d"));
        let done = node(json!({REMOVE: "true", REMOVED: "s2-0a1b2c3d"}));
        assert_eq!(removal_requested(&done), None);
        assert_eq!(removal_on_delete(&done), None);
        let agent = json!({"metadata": {"name": "a1", "annotations": {NODE_NAME: "x"}}});
        assert_eq!(removal_on_delete(&agent), None);
    }
}
