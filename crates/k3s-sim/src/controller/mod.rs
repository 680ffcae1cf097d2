//! The controllers the stand-in runs inside the server: node lifecycle (NotReady after the grace
//! period), Deployments → ReplicaSets → Pods, DaemonSets, scheduling and pod start-up, garbage
//! collection of orphans, and PodDisruptionBudget status.

mod nodes;
mod pdb;
mod pods;
mod scheduling;
mod services;
mod workloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::store::ObjectStore;

pub use scheduling::{node_ready, tolerates};

/// Runs every controller once.
pub fn reconcile_once(store: &ObjectStore) {
    nodes::lifecycle(store);
    workloads::deployments(store);
    workloads::replicasets(store);
    workloads::daemonsets(store);
    pods::garbage_collect(store);
    pods::schedule(store);
    pods::progress(store);
    pdb::status(store);
    services::load_balancers(store);
}

/// Runs the controllers forever (every 500ms) while `leader` is set: with several servers only
/// the elected one reconciles.
pub async fn run(store: Arc<ObjectStore>, leader: Arc<AtomicBool>) {
    loop {
        if !leader.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // A bug in one pass must not stop the controllers for the life of the server.
        let pass =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reconcile_once(&store)));
        if pass.is_err() {
            crate::log::error("controller pass failed (panic); retrying");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// The controller owner reference of an object: (kind, uid).
fn controller_of(o: &Value) -> Option<(String, String)> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or("").to_string(),
                r["uid"].as_str().unwrap_or("").to_string(),
            )
        })
}

fn owner_ref(api_version: &str, kind: &str, owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": api_version, "kind": kind, "name": name(owner), "uid": uid(owner),
        "controller": true, "blockOwnerDeletion": true,
    })
}

#[cfg(test)]
mod tests;
