//! Controller behaviour on an in-memory cluster.

use serde_json::{Value, json};

use super::reconcile_once;
use crate::store::{FileDatastore, ObjectStore, ResourceKey};

fn cluster(dir: &std::path::Path) -> ObjectStore {
    let store = ObjectStore::open(Box::new(FileDatastore::open(dir).expect("ds"))).expect("store");
    crate::components::seed_namespaces(&store);
    for n in ["a1", "a2"] {
        let now = crate::clock::now_rfc3339();
        let node = json!({"metadata": {"name": n}, "spec": {}, "status": {"conditions": crate::node::healthy_conditions(&now, &now)}});
        store.create("nodes", "", node).expect("node");
    }
    store
}

fn pods(store: &ObjectStore) -> Vec<Value> {
    store.list("pods", Some("default")).0
}

#[test]
fn deployments_get_running_pods_spread_over_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = cluster(dir.path());
    let labels = json!({"app": "web"});
    store
        .create("deployments.apps", "default", json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
        .expect("deploy");
    for _ in 0..3 {
        reconcile_once(&store);
    }
    let ps = pods(&store);
    assert_eq!(ps.len(), 2);
    let mut nodes: Vec<&str> = ps
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["a1", "a2"], "spread over both nodes");
    // Pods start after a delay (2 s by default): reconcile until they run, within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        reconcile_once(&store);
        if pods(&store)
            .iter()
            .all(|p| p["status"]["phase"] == "Running")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pods not Running 10 s after creation: {:?}",
            pods(&store)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    reconcile_once(&store);
    let d = store
        .get(&ResourceKey::new("deployments.apps", "default", "web"))
        .expect("deploy");
    assert_eq!(d["status"]["readyReplicas"], 2);

    // A deleted pod is replaced; a deleted node's pods go away and are rescheduled.
    store
        .delete(&ResourceKey::new("nodes", "", "a2"))
        .expect("delete node");
    reconcile_once(&store);
    reconcile_once(&store);
    let ps = pods(&store);
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().all(|p| p["spec"]["nodeName"] == "a1"), "{ps:?}");

    // Deleting the deployment garbage-collects its replicaset and pods.
    store
        .delete(&ResourceKey::new("deployments.apps", "default", "web"))
        .expect("delete");
    reconcile_once(&store);
    reconcile_once(&store);
    assert!(pods(&store).is_empty());
    assert!(store.list("replicasets.apps", None).0.is_empty());
}

#[test]
fn daemonsets_cover_cordoned_nodes_and_stale_nodes_turn_not_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = cluster(dir.path());
    store
        .modify(&ResourceKey::new("nodes", "", "a1"), |n| {
            n["spec"]["unschedulable"] = json!(true);
            n["status"]["conditions"][3]["lastHeartbeatTime"] = json!("2020-01-01T00:00:00Z");
            Ok(())
        })
        .expect("cordon");
    let labels = json!({"app": "agent"});
    store
        .create("daemonsets.apps", "default", json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        .expect("ds");
    reconcile_once(&store);
    reconcile_once(&store);
    assert_eq!(pods(&store).len(), 2, "one pod per node, cordoned or not");
    let a1 = store.get(&ResourceKey::new("nodes", "", "a1")).expect("a1");
    assert_eq!(
        crate::api::table::node_status(&a1),
        "NotReady,SchedulingDisabled"
    );
    assert!(a1["spec"]["taints"].as_array().is_some_and(|t| {
        t.iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable")
    }));
}

#[test]
fn a_pass_says_when_the_next_timed_transition_falls_due() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = cluster(dir.path());
    // Only heartbeats are pending: the grace period (40 s) of nodes that posted just now.
    let due = reconcile_once(&store).expect("nodes' grace is due some time");
    assert!(
        due > Duration::from_secs(38) && due <= Duration::from_secs(41),
        "{due:?}"
    );
    // A node whose heartbeats stopped long ago turns NotReady and is due no more.
    for n in ["a1", "a2"] {
        store
            .modify(&ResourceKey::new("nodes", "", n), |o| {
                o["status"]["conditions"][3]["lastHeartbeatTime"] = json!("2020-01-01T00:00:00Z");
                Ok(())
            })
            .expect("stale");
    }
    assert_eq!(reconcile_once(&store), None, "nothing timed is pending");
    // Fresh heartbeats, then a pod waiting for its start delay (2 s): due within about a second.
    for n in ["a1", "a2"] {
        store
            .modify(&ResourceKey::new("nodes", "", n), |o| {
                crate::node::heartbeat(o);
                Ok(())
            })
            .expect("heartbeat");
    }
    let labels = json!({"app": "web"});
    store
        .create("deployments.apps", "default", json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
        .expect("deploy");
    reconcile_once(&store);
    reconcile_once(&store);
    assert_eq!(pods(&store).len(), 1);
    let due = reconcile_once(&store).expect("the pod's start is due");
    assert!(due <= Duration::from_millis(1001), "{due:?}");
    std::thread::sleep(due);
    reconcile_once(&store);
    assert_eq!(pods(&store)[0]["status"]["phase"], "Running");
}
