//! When the controllers must run again: after a change one of them could act on, or when a
//! time-driven transition falls due (a node's heartbeat grace running out, a pod's start delay
//! passing). Node Lease renewals, Events and node heartbeats that change nothing but their
//! heartbeat times wake nobody, so an idle cluster costs a pass only when something is due.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::store::{Event, EventType};

/// Remembers each node as the controllers see it (without heartbeat times), to tell a heartbeat
/// from a change.
#[derive(Debug, Default)]
pub struct Relevance {
    nodes: HashMap<String, Value>,
}

impl Relevance {
    /// Whether `ev` can make a controller act. Conservative: every change counts except Lease and
    /// Event writes and a node write whose only difference is its conditions' heartbeat times
    /// (and the resource version).
    pub fn matters(&mut self, ev: &Event) -> bool {
        match ev.key.resource.as_str() {
            // No controller reads Leases (node heartbeats, the controller lease) or Events.
            "leases.coordination.k8s.io" | "events" => false,
            "nodes" if ev.kind == EventType::Deleted => {
                self.nodes.remove(&ev.key.name);
                true
            }
            "nodes" => {
                let view = without_heartbeat(&ev.object);
                self.nodes.insert(ev.key.name.clone(), view.clone()) != Some(view)
            }
            _ => true,
        }
    }
}

/// The node without what a heartbeat changes: the conditions' `lastHeartbeatTime` and the
/// resource version.
fn without_heartbeat(node: &Value) -> Value {
    let mut view = node.clone();
    if let Some(meta) = view["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    if let Some(cs) = view["status"]["conditions"].as_array_mut() {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            c.remove("lastHeartbeatTime");
        }
    }
    view
}

/// Time from now until `at` (zero when it has passed).
pub fn until(at: OffsetDateTime) -> Duration {
    let left = at - crate::clock::now();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// The earlier of two optional due times.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::ResourceKey;

    fn event(resource: &str, kind: EventType, object: Value) -> Event {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        Event {
            rv: 1,
            kind,
            key: ResourceKey::new(resource, "", &name),
            object,
        }
    }

    fn node(rv: &str, heartbeat: &str, ready: &str, unschedulable: bool) -> Value {
        json!({"metadata": {"name": "a1", "resourceVersion": rv},
               "spec": {"unschedulable": unschedulable},
               "status": {"conditions": [{"type": "Ready", "status": ready,
                   "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    }

    #[test]
    fn heartbeats_leases_and_events_wake_nobody_but_node_changes_do() {
        let mut r = Relevance::default();
        let t1 = "2026-01-01T00:00:10Z";
        let t2 = "2026-01-01T00:00:20Z";
        assert!(r.matters(&event(
            "nodes",
            EventType::Added,
            node("1", t1, "True", false)
        )));
        assert!(!r.matters(&event(
            "nodes",
            EventType::Modified,
            node("2", t2, "True", false)
        )));
        assert!(r.matters(&event(
            "nodes",
            EventType::Modified,
            node("3", t2, "Unknown", false)
        )));
        assert!(r.matters(&event(
            "nodes",
            EventType::Modified,
            node("4", t2, "Unknown", true)
        )));
        assert!(!r.matters(&event(
            "nodes",
            EventType::Modified,
            node("5", t1, "Unknown", true)
        )));
        assert!(r.matters(&event(
            "nodes",
            EventType::Deleted,
            node("6", t1, "Unknown", true)
        )));
        // After a deletion, the same node registering again is a change.
        assert!(r.matters(&event(
            "nodes",
            EventType::Added,
            node("7", t1, "Unknown", true)
        )));
        let lease = json!({"metadata": {"name": "a1"}});
        assert!(!r.matters(&event(
            "leases.coordination.k8s.io",
            EventType::Modified,
            lease.clone()
        )));
        assert!(!r.matters(&event("events", EventType::Added, lease.clone())));
        assert!(r.matters(&event("pods", EventType::Modified, lease)));
    }

    #[test]
    fn due_times() {
        let soon = crate::clock::now() + time::Duration::seconds(30);
        let left = until(soon);
        assert!(
            left > Duration::from_secs(28) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        assert_eq!(
            until(crate::clock::now() - time::Duration::seconds(5)),
            Duration::ZERO
        );
        let (a, b) = (Some(Duration::from_secs(3)), Some(Duration::from_secs(1)));
        assert_eq!(earliest(a, b), b);
        assert_eq!(earliest(None, a), a);
        assert_eq!(earliest(None, None), None);
    }
}
