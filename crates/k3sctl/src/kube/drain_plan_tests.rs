use super::*;
use serde_json::json;

fn pod(name: &str, extra: serde_json::Value) -> Pod {
    let mut v =
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")}});
    merge(&mut v, extra);
    serde_json::from_value(v).expect("valid pod")
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn owned_by(kind: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": "o", "controller": true}
    ]}})
}

fn names(pods: &[PodRef]) -> Vec<&str> {
    pods.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn kubectl_semantics_for_each_kind_of_pod() {
    let pods = vec![
        pod("web", owned_by("ReplicaSet")),
        pod("ds", owned_by("DaemonSet")),
        pod(
            "static",
            json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "abc"}}}),
        ),
        pod("bare", json!({})),
        pod("cache", {
            let mut v = owned_by("ReplicaSet");
            merge(
                &mut v,
                json!({"spec": {"containers": [], "volumes": [{"name": "c", "emptyDir": {}}]}}),
            );
            v
        }),
        pod("done", json!({"status": {"phase": "Succeeded"}})),
        pod("going", {
            let mut v = owned_by("ReplicaSet");
            merge(
                &mut v,
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            );
            v
        }),
    ];
    let plan = plan_drain(&pods, DrainRules::default());
    assert_eq!(names(&plan.evict), ["done", "web"]);
    let skipped: Vec<(&str, SkipReason)> = plan
        .skip
        .iter()
        .map(|(p, r)| (p.name.as_str(), *r))
        .collect();
    assert_eq!(
        skipped,
        [
            ("ds", SkipReason::DaemonSet),
            ("going", SkipReason::Terminating),
            ("static", SkipReason::Mirror)
        ]
    );
    let blocked: Vec<(&str, BlockReason)> = plan
        .blocked
        .iter()
        .map(|(p, r)| (p.name.as_str(), *r))
        .collect();
    assert_eq!(
        blocked,
        [
            ("bare", BlockReason::Unmanaged),
            ("cache", BlockReason::EmptyDir)
        ]
    );
    assert!(plan.hint().contains("force: true"));
    assert!(plan.hint().contains("deleteEmptyDirData: true"));
    assert_eq!(names(&plan.to_wait_for()), ["done", "web", "going"]);
}

#[test]
fn rules_turn_blocks_into_warnings() {
    let pods = vec![
        pod("bare", json!({})),
        pod("cache", {
            let mut v = owned_by("StatefulSet");
            merge(
                &mut v,
                json!({"spec": {"containers": [], "volumes": [{"name": "c", "emptyDir": {}}]}}),
            );
            v
        }),
    ];
    let plan = plan_drain(
        &pods,
        DrainRules {
            delete_emptydir_data: true,
            force: true,
        },
    );
    assert!(plan.blocked.is_empty());
    assert_eq!(names(&plan.evict), ["bare", "cache"]);
    assert_eq!(plan.warnings.len(), 2);
    // Forcing alone does not allow emptyDir data loss.
    let only_force = plan_drain(
        &pods,
        DrainRules {
            delete_emptydir_data: false,
            force: true,
        },
    );
    assert_eq!(names(&only_force.evict), ["bare"]);
    assert_eq!(only_force.blocked.len(), 1);
}

#[test]
fn an_empty_node_has_nothing_to_do() {
    assert_eq!(plan_drain(&[], DrainRules::default()), DrainPlan::default());
}
