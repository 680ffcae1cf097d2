//! Node labels k3sctl enforces on live Node objects, with ownership: K3s applies `node-label`
//! only when a node registers, so a later `kubectl label --overwrite` of a label the spec sets
//! stays until someone puts it back. k3sctl sets every label the spec names to the spec's
//! value, records the keys it set in an annotation, and removes a label only when its key is in
//! that record and the spec no longer names it. A label the spec does not name, and k3sctl did
//! not set, is never touched.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::error::KubeError;

/// The annotation listing the label keys k3sctl set on a node (comma-separated).
pub const LABELS_SET_BY_K3SCTL: &str = "k3sctl.io/labels";

/// Pure: the label keys k3sctl recorded as its own, from the annotation's value.
pub fn owned_labels(annotation: Option<&str>) -> BTreeSet<String> {
    super::ownership::owned_set(annotation)
}

/// What enforcing the labels changes on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelChange {
    /// Labels to set (missing, or with another value), key → the spec's value.
    pub set: BTreeMap<String, String>,
    /// Label keys k3sctl set earlier that the spec no longer names.
    pub remove: Vec<String>,
    /// The keys k3sctl owns afterwards (the annotation's new value).
    pub owned: BTreeSet<String>,
}

impl LabelChange {
    /// Whether the Node must be written (labels or the ownership record change).
    pub fn writes(&self, owned_before: &BTreeSet<String>) -> bool {
        !self.set.is_empty() || !self.remove.is_empty() || self.owned != *owned_before
    }
}

/// Pure: what enforcing `wanted` on a node with `current` labels and `owned` (k3sctl's record)
/// does. A label the spec names is the spec's: set to its value whoever changed it. `adopt`
/// (the node registers in this run, its labels came from k3sctl's config): wanted labels already
/// right are recorded as k3sctl's; otherwise a right value is left unrecorded unless it already
/// was (so a cluster that matches gets no write).
pub fn plan_labels(
    current: &BTreeMap<String, String>,
    owned: &BTreeSet<String>,
    wanted: &BTreeMap<String, String>,
    adopt: bool,
) -> LabelChange {
    let mut change = LabelChange::default();
    for key in owned {
        if !wanted.contains_key(key) && current.contains_key(key) {
            change.remove.push(key.clone());
        }
    }
    for (key, value) in wanted {
        if current.get(key) == Some(value) {
            if adopt || owned.contains(key) {
                change.owned.insert(key.clone());
            }
            continue;
        }
        change.set.insert(key.clone(), value.clone());
        change.owned.insert(key.clone());
    }
    change
}

/// Enforces `wanted` on the live Node: reads it, plans ([`plan_labels`]), and writes the labels
/// and the ownership record in one merge patch guarded by the resourceVersion (a concurrent
/// change makes the API refuse rather than be overwritten).
pub async fn enforce_labels(
    client: &Client,
    name: &str,
    wanted: &BTreeMap<String, String>,
    adopt: bool,
) -> Result<LabelChange, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node = api
        .get(name)
        .await
        .map_err(|e| KubeError::api(format!("reading node {name}"), e))?;
    let current = node.metadata.labels.clone().unwrap_or_default();
    let owned_before = super::ownership::recorded(&node, LABELS_SET_BY_K3SCTL);
    let change = plan_labels(&current, &owned_before, wanted, adopt);
    if !change.writes(&owned_before) {
        return Ok(change);
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&label_patch(&node, &change)),
    )
    .await
    .map_err(|e| KubeError::api(format!("setting the labels of node {name}"), e))?;
    Ok(change)
}

/// The merge patch of a [`LabelChange`]: labels set, removed ones `null`, the record rewritten
/// (removed when empty), guarded by the node's resourceVersion.
fn label_patch(node: &Node, change: &LabelChange) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    for (key, value) in &change.set {
        labels.insert(key.clone(), json!(value));
    }
    for key in &change.remove {
        labels.insert(key.clone(), serde_json::Value::Null);
    }
    let record = super::ownership::record_value(&change.owned);
    json!({
        "metadata": {
            "resourceVersion": node.metadata.resource_version,
            "labels": labels,
            "annotations": {LABELS_SET_BY_K3SCTL: record}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn sets_what_the_spec_names_and_removes_only_its_own() {
        // Each case: the node's labels, k3sctl's record, the spec's labels, adopt → what changes.
        struct Case {
            case: &'static str,
            current: &'static [(&'static str, &'static str)],
            owned: &'static [&'static str],
            wanted: &'static [(&'static str, &'static str)],
            adopt: bool,
            set: &'static [(&'static str, &'static str)],
            remove: &'static [&'static str],
            after: &'static [&'static str],
        }
        let table = [
            Case {
                case: "overwritten by a person: put back and recorded",
                current: &[("zone", "b"), ("team", "x")],
                owned: &[],
                wanted: &[("zone", "a")],
                adopt: false,
                set: &[("zone", "a")],
                remove: &[],
                after: &["zone"],
            },
            Case {
                case: "removed by a person: added again",
                current: &[],
                owned: &["zone"],
                wanted: &[("zone", "a")],
                adopt: false,
                set: &[("zone", "a")],
                remove: &[],
                after: &["zone"],
            },
            Case {
                case: "set at registration in this run: adopted",
                current: &[("zone", "a")],
                owned: &[],
                wanted: &[("zone", "a")],
                adopt: true,
                set: &[],
                remove: &[],
                after: &["zone"],
            },
            Case {
                case: "right value, not recorded (an older cluster): no write",
                current: &[("zone", "a")],
                owned: &[],
                wanted: &[("zone", "a")],
                adopt: false,
                set: &[],
                remove: &[],
                after: &[],
            },
            Case {
                case: "ours, no longer named: removed; a person's label kept",
                current: &[("zone", "a"), ("team", "x")],
                owned: &["zone"],
                wanted: &[],
                adopt: false,
                set: &[],
                remove: &["zone"],
                after: &[],
            },
            Case {
                case: "ours, already gone and no longer named: record dropped",
                current: &[("team", "x")],
                owned: &["zone"],
                wanted: &[],
                adopt: false,
                set: &[],
                remove: &[],
                after: &[],
            },
        ];
        for c in table {
            let change = plan_labels(&map(c.current), &set(c.owned), &map(c.wanted), c.adopt);
            assert_eq!(change.set, map(c.set), "{}", c.case);
            assert_eq!(change.remove, c.remove, "{}", c.case);
            assert_eq!(change.owned, set(c.after), "{}", c.case);
        }
        let idle = plan_labels(
            &map(&[("zone", "a")]),
            &set(&["zone"]),
            &map(&[("zone", "a")]),
            false,
        );
        assert!(!idle.writes(&set(&["zone"])));
        let older = plan_labels(
            &map(&[("zone", "a")]),
            &set(&[]),
            &map(&[("zone", "a")]),
            false,
        );
        assert!(!older.writes(&set(&[])));
    }

    #[test]
    fn the_patch_sets_removes_and_records() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "a1", "resourceVersion": "7"}
        }))
        .expect("node");
        let change = LabelChange {
            set: map(&[("zone", "a")]),
            remove: vec!["old".into()],
            owned: set(&["zone"]),
        };
        assert_eq!(
            label_patch(&node, &change),
            json!({"metadata": {"resourceVersion": "7",
                "labels": {"zone": "a", "old": null},
                "annotations": {"k3sctl.io/labels": "zone"}}})
        );
        let cleared = LabelChange {
            remove: vec!["old".into()],
            ..Default::default()
        };
        assert_eq!(
            label_patch(&node, &cleared)["metadata"]["annotations"]["k3sctl.io/labels"],
            serde_json::Value::Null
        );
        assert_eq!(owned_labels(Some(" zone, ,team ")), set(&["team", "zone"]));
    }
}
