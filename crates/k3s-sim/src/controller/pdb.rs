//! PodDisruptionBudget status, as the disruption controller reports it.

use serde_json::json;

use super::{name, namespace};
use crate::api::eviction::budget;
use crate::store::{ObjectStore, ResourceKey};

/// Updates the status of every PodDisruptionBudget.
pub fn status(store: &ObjectStore) {
    for pdb in store.list("poddisruptionbudgets.policy", None).0 {
        let pods = store.list("pods", Some(namespace(&pdb))).0;
        let (desired, healthy, expected) = budget(&pdb, &pods);
        let allowed = (healthy - desired).max(0);
        let key = ResourceKey::new("poddisruptionbudgets.policy", namespace(&pdb), name(&pdb));
        let _ = store.modify(&key, |o| {
            let condition = if allowed > 0 {
                json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": ""})
            } else {
                json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": ""})
            };
            let old_time = o["status"]["conditions"][0]["lastTransitionTime"].clone();
            let mut condition = condition;
            let changed = o["status"]["conditions"][0]["status"] != condition["status"];
            condition["lastTransitionTime"] = if changed || old_time.is_null() { json!(crate::clock::now_rfc3339()) } else { old_time };
            o["status"] = json!({
                "observedGeneration": o["metadata"]["generation"].clone(),
                "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                "disruptionsAllowed": allowed, "conditions": [condition],
            });
            Ok(())
        });
    }
}
