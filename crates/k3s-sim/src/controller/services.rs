//! ServiceLB (klipper-lb): a LoadBalancer Service whose `svclb-<name>` DaemonSet exists gets the
//! addresses of the nodes running its pods as `status.loadBalancer.ingress` (ExternalIP when the
//! node has one, else InternalIP).

use serde_json::{Value, json};

use super::{name, namespace};
use crate::store::{ObjectStore, ResourceKey};

fn node_address(node: &Value) -> Option<String> {
    let addrs = node["status"]["addresses"].as_array()?;
    let pick = |ty: &str| {
        addrs
            .iter()
            .find(|a| a["type"] == ty)
            .and_then(|a| a["address"].as_str())
            .map(str::to_string)
    };
    pick("ExternalIP").or_else(|| pick("InternalIP"))
}

/// Updates the ingress addresses of LoadBalancer Services.
pub fn load_balancers(store: &ObjectStore) {
    let (nodes, _) = store.list("nodes", None);
    let (pods, _) = store.list("pods", Some("kube-system"));
    for svc in store
        .list("services", None)
        .0
        .iter()
        .filter(|s| s["spec"]["type"] == "LoadBalancer")
    {
        let ds_name = format!("svclb-{}", name(svc));
        let ds = store.get(&ResourceKey::new(
            "daemonsets.apps",
            "kube-system",
            &ds_name,
        ));
        let mut ips: Vec<String> = match ds {
            None => Vec::new(),
            Some(ds) => {
                let uid = ds["metadata"]["uid"].as_str().unwrap_or("");
                pods.iter()
                    .filter(|p| super::controller_of(p).is_some_and(|(_, u)| u == uid))
                    .filter(|p| crate::api::eviction::pod_healthy(p))
                    .filter_map(|p| p["spec"]["nodeName"].as_str())
                    .filter_map(|n| nodes.iter().find(|node| name(node) == n))
                    .filter_map(node_address)
                    .collect()
            }
        };
        ips.sort();
        ips.dedup();
        let ingress: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
            .collect();
        if svc["status"]["loadBalancer"]["ingress"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            == ingress.as_slice()
        {
            continue;
        }
        let key = ResourceKey::new("services", namespace(svc), name(svc));
        let _ = store.modify(&key, |o| {
            o["status"]["loadBalancer"] = if ingress.is_empty() {
                json!({})
            } else {
                json!({"ingress": ingress})
            };
            Ok(())
        });
    }
}
