//! The controllers the stand-in runs inside the server: node lifecycle (NotReady after the grace
//! period), Deployments → ReplicaSets → Pods, DaemonSets, scheduling and pod start-up, garbage
//! collection of orphans, and PodDisruptionBudget status. They run when something they could act
//! on changed or a timed transition falls due (`wakeup`), not on a fixed tick.

mod nodes;
mod pdb;
mod pods;
mod scheduling;
mod services;
mod wakeup;
mod workloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use serde_json::Value;

use crate::store::ObjectStore;

pub use scheduling::{node_ready, tolerates};

/// At most this often: a burst of changes is handled in one pass.
const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// A pass runs at least this often even when nothing changed (Kubernetes' node-monitor-period,
/// 5 s): a safety net under the change and due-time wake-ups.
const RESYNC: Duration = Duration::from_secs(5);

/// Runs every controller once. Returns how long until a time-driven transition (a node's grace
/// period running out, a pod's start delay passing) falls due, if one is pending.
pub fn reconcile_once(store: &ObjectStore) -> Option<Duration> {
    let node_due = nodes::lifecycle(store);
    workloads::deployments(store);
    workloads::replicasets(store);
    workloads::daemonsets(store);
    pods::garbage_collect(store);
    pods::schedule(store);
    let pod_due = pods::progress(store);
    pdb::status(store);
    services::load_balancers(store);
    wakeup::earliest(node_due, pod_due)
}

/// Runs the controllers while `leader` is set (with several servers only the elected one
/// reconciles): a pass after every change a controller could act on (at most every 500 ms,
/// bursts coalesced), when a time-driven transition falls due, and every 5 s regardless. Node
/// heartbeats, Lease renewals and Events alone start no pass, so an idle cluster stays cheap
/// however many nodes it has.
pub async fn run(store: Arc<ObjectStore>, leader: Arc<AtomicBool>) {
    let (mut changes, _) = store.subscribe();
    let mut relevance = wakeup::Relevance::default();
    let mut dirty = true;
    let mut due = Instant::now();
    loop {
        if !leader.load(Ordering::SeqCst) {
            dirty = true;
            tokio::time::sleep(MIN_INTERVAL).await;
            continue;
        }
        if dirty || Instant::now() >= due {
            dirty = false;
            // A bug in one pass must not stop the controllers for the life of the server.
            let pass =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reconcile_once(&store)));
            let next = match pass {
                Ok(next) => next.map_or(RESYNC, |d| d.min(RESYNC)),
                Err(_) => {
                    crate::log::error("controller pass failed (panic); retrying");
                    MIN_INTERVAL
                }
            };
            due = Instant::now() + next.max(MIN_INTERVAL);
            // Changes made meanwhile (the pass's own included) queue up and are looked at next.
            tokio::time::sleep(MIN_INTERVAL).await;
            continue;
        }
        tokio::select! {
            change = changes.recv() => match change {
                Ok(ev) => dirty |= relevance.matters(&ev),
                // Missed changes: look at everything.
                Err(RecvError::Lagged(_)) => dirty = true,
                // Only when the store is gone, which it is not while this task holds it.
                Err(RecvError::Closed) => tokio::time::sleep(RESYNC).await,
            },
            () = tokio::time::sleep_until(due.into()) => {}
        }
        // Everything that queued up meanwhile is handled by the same pass.
        loop {
            match changes.try_recv() {
                Ok(ev) => dirty |= relevance.matters(&ev),
                Err(TryRecvError::Lagged(_)) => dirty = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
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
