//! Node taints k3sctl enforces on live Node objects, with ownership: K3s applies `node-taint`
//! only when a node registers, so k3sctl adds what the spec lists to the Node itself, records
//! the taints it set in an annotation, and removes a taint only when it is in that record and
//! no longer wanted. A taint someone else set is never removed.
//!
//! Taints are written `key[=value]:Effect` here, as in the spec and in `kubectl taint`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::error::KubeError;

/// The annotation listing the taints k3sctl set on a node (comma-separated
/// `key[=value]:Effect`).
pub const TAINTS_SET_BY_K3SCTL: &str = "k3sctl.io/taints";

/// `key[=value]:Effect` of a Node taint.
pub fn taint_text(taint: &Taint) -> String {
    match taint.value.as_deref() {
        Some(v) if !v.is_empty() => format!("{}={v}:{}", taint.key, taint.effect),
        _ => format!("{}:{}", taint.key, taint.effect),
    }
}

fn parse_taint(text: &str) -> Option<Taint> {
    let (spec, effect) = text.rsplit_once(':')?;
    let (key, value) = match spec.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (spec, None),
    };
    Some(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// `key:Effect`: two taints with the same key and effect cannot both be on a node.
fn identity(text: &str) -> String {
    match text.rsplit_once(':') {
        Some((spec, effect)) => {
            let key = spec.split_once('=').map_or(spec, |(k, _)| k);
            format!("{key}:{effect}")
        }
        None => text.to_string(),
    }
}

/// Pure: the taints k3sctl recorded as its own, from the annotation's value.
pub fn owned_taints(annotation: Option<&str>) -> BTreeSet<String> {
    super::ownership::owned_set(annotation)
}

/// What enforcing the taints changes on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaintChange {
    /// Taints to add.
    pub add: Vec<String>,
    /// Taints k3sctl set earlier that the spec no longer lists.
    pub remove: Vec<String>,
    /// The taints k3sctl owns afterwards (the annotation's new value).
    pub owned: BTreeSet<String>,
    /// Wanted taints whose key and effect another taint (not k3sctl's) already uses with another
    /// value: left as they are.
    pub conflicts: Vec<String>,
}

impl TaintChange {
    /// Whether the Node must be written (taints or the ownership record change).
    pub fn writes(&self, owned_before: &BTreeSet<String>) -> bool {
        !self.add.is_empty() || !self.remove.is_empty() || self.owned != *owned_before
    }
}

/// Pure: what enforcing `wanted` on a node with `current` taints and `owned` (k3sctl's record)
/// does. `adopt`: wanted taints already present become k3sctl's (a node that registered in
/// this run got them from the config k3sctl wrote); otherwise a wanted taint already present
/// is left to whoever set it.
pub fn plan_taints(
    current: &[String],
    owned: &BTreeSet<String>,
    wanted: &[String],
    adopt: bool,
) -> TaintChange {
    let mut change = TaintChange::default();
    for taint in current {
        if owned.contains(taint) && !wanted.contains(taint) {
            change.remove.push(taint.clone());
        }
    }
    for taint in wanted {
        if current.contains(taint) {
            if adopt || owned.contains(taint) {
                change.owned.insert(taint.clone());
            }
            continue;
        }
        let clash = current
            .iter()
            .find(|c| identity(c) == identity(taint) && !change.remove.contains(c) && *c != taint);
        match clash {
            Some(other) => change.conflicts.push(format!(
                "{taint}: the node has {other}, which k3sctl did not set; left as it is"
            )),
            None => {
                change.add.push(taint.clone());
                change.owned.insert(taint.clone());
            }
        }
    }
    change
}

/// Enforces `wanted` on the live Node: reads it, plans ([`plan_taints`]), and writes the new
/// taint list and ownership record in one patch guarded by the resourceVersion (a concurrent
/// change makes the API refuse rather than be overwritten).
pub async fn enforce_taints(
    client: &Client,
    name: &str,
    wanted: &[String],
    adopt: bool,
) -> Result<TaintChange, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node = api
        .get(name)
        .await
        .map_err(|e| KubeError::api(format!("reading node {name}"), e))?;
    let taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let current: Vec<String> = taints.iter().map(taint_text).collect();
    let owned_before = super::ownership::recorded(&node, TAINTS_SET_BY_K3SCTL);
    let change = plan_taints(&current, &owned_before, wanted, adopt);
    if !change.writes(&owned_before) {
        return Ok(change);
    }
    let mut next: Vec<Taint> = taints
        .into_iter()
        .filter(|t| !change.remove.contains(&taint_text(t)))
        .collect();
    next.extend(change.add.iter().filter_map(|t| parse_taint(t)));
    let annotation = super::ownership::record_value(&change.owned);
    let patch = json!({
        "metadata": {
            "resourceVersion": node.metadata.resource_version,
            "annotations": {TAINTS_SET_BY_K3SCTL: annotation}
        },
        "spec": {"taints": next}
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| KubeError::api(format!("setting the taints of node {name}"), e))?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|t| t.to_string()).collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|t| t.to_string()).collect()
    }

    const CP: &str = "node-role.kubernetes.io/control-plane:NoSchedule";

    #[test]
    fn adds_what_is_wanted_and_removes_only_its_own() {
        // Each case: the node's taints, k3sctl's record, the spec's taints, adopt → what changes.
        struct Case {
            case: &'static str,
            current: &'static [&'static str],
            owned: &'static [&'static str],
            wanted: &'static [&'static str],
            adopt: bool,
            add: &'static [&'static str],
            remove: &'static [&'static str],
            after: &'static [&'static str],
        }
        let table = [
            Case {
                case: "missing on a live node: added and owned",
                current: &[],
                owned: &[],
                wanted: &[CP],
                adopt: false,
                add: &[CP],
                remove: &[],
                after: &[CP],
            },
            Case {
                case: "already there from registration in this run: adopted",
                current: &[CP],
                owned: &[],
                wanted: &[CP],
                adopt: true,
                add: &[],
                remove: &[],
                after: &[CP],
            },
            Case {
                case: "already there, set by someone else: left alone, not owned",
                current: &[CP],
                owned: &[],
                wanted: &[CP],
                adopt: false,
                add: &[],
                remove: &[],
                after: &[],
            },
            Case {
                case: "ours, no longer wanted: removed",
                current: &[CP, "x=1:NoExecute"],
                owned: &[CP],
                wanted: &[],
                adopt: false,
                add: &[],
                remove: &[CP],
                after: &[],
            },
            Case {
                case: "someone else's, not wanted: kept",
                current: &["x=1:NoExecute"],
                owned: &[CP],
                wanted: &[],
                adopt: false,
                add: &[],
                remove: &[],
                after: &[],
            },
            Case {
                case: "ours with a new value: swapped",
                current: &["d=a:NoSchedule"],
                owned: &["d=a:NoSchedule"],
                wanted: &["d=b:NoSchedule"],
                adopt: false,
                add: &["d=b:NoSchedule"],
                remove: &["d=a:NoSchedule"],
                after: &["d=b:NoSchedule"],
            },
            Case {
                case: "nothing to do",
                current: &[CP],
                owned: &[CP],
                wanted: &[CP],
                adopt: false,
                add: &[],
                remove: &[],
                after: &[CP],
            },
        ];
        for c in table {
            let change = plan_taints(&s(c.current), &set(c.owned), &s(c.wanted), c.adopt);
            assert_eq!(change.add, s(c.add), "{}", c.case);
            assert_eq!(change.remove, s(c.remove), "{}", c.case);
            assert_eq!(change.owned, set(c.after), "{}", c.case);
            assert!(change.conflicts.is_empty(), "{}", c.case);
        }
        let idle = plan_taints(&s(&[CP]), &set(&[CP]), &s(&[CP]), false);
        assert!(!idle.writes(&set(&[CP])));
    }

    #[test]
    fn a_taint_someone_else_set_with_the_same_key_is_not_replaced() {
        let change = plan_taints(
            &s(&["d=a:NoSchedule"]),
            &set(&[]),
            &s(&["d=b:NoSchedule"]),
            false,
        );
        assert!(change.add.is_empty() && change.remove.is_empty());
        assert_eq!(
            change.conflicts,
            s(&[
                "d=b:NoSchedule: the node has d=a:NoSchedule, which k3sctl did not set; left as it is"
            ])
        );
    }

    #[test]
    fn reads_and_writes_the_taint_text() {
        let t = parse_taint("dedicated=infra:NoSchedule").expect("taint");
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("infra"), "NoSchedule")
        );
        assert_eq!(taint_text(&t), "dedicated=infra:NoSchedule");
        assert_eq!(taint_text(&parse_taint(CP).expect("taint")), CP);
        assert_eq!(
            owned_taints(Some(" a:NoSchedule, ,b=1:NoExecute")),
            set(&["a:NoSchedule", "b=1:NoExecute"])
        );
        assert_eq!(owned_taints(None), set(&[]));
    }
}
