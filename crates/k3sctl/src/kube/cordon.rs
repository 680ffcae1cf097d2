//! Cordon and uncordon with ownership: k3sctl marks the nodes it cordons with an annotation and
//! uncordons only those, so a node a person cordoned stays cordoned.

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::error::{KubeError, status_code};
use super::nodes::{NodeInfo, get_node};

/// The annotation k3sctl puts on nodes it cordoned; its value says why (`upgrade to vX`).
pub const CORDONED_FOR: &str = "k3sctl.io/cordoned-for";

/// What [`cordon`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CordonOutcome {
    /// k3sctl cordoned the node now.
    Cordoned,
    /// k3sctl had already cordoned it (an interrupted run); the reason was refreshed.
    AlreadyOurs,
    /// Someone else cordoned it; k3sctl left it as it was and will not uncordon it.
    CordonedByOthers,
}

/// What [`uncordon_if_ours`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UncordonOutcome {
    /// k3sctl had cordoned it and made it schedulable again.
    Uncordoned,
    /// It was cordoned by someone else and stays cordoned.
    LeftCordoned,
    /// It was not cordoned.
    NotCordoned,
}

/// Pure: what cordoning `node` means.
pub fn decide_cordon(node: &NodeInfo) -> CordonOutcome {
    match (
        node.unschedulable,
        node.annotations.contains_key(CORDONED_FOR),
    ) {
        (true, true) => CordonOutcome::AlreadyOurs,
        (true, false) => CordonOutcome::CordonedByOthers,
        (false, _) => CordonOutcome::Cordoned,
    }
}

/// Pure: what uncordoning `node` means.
pub fn decide_uncordon(node: &NodeInfo) -> UncordonOutcome {
    match (
        node.unschedulable,
        node.annotations.contains_key(CORDONED_FOR),
    ) {
        (_, true) => UncordonOutcome::Uncordoned,
        (true, false) => UncordonOutcome::LeftCordoned,
        (false, false) => UncordonOutcome::NotCordoned,
    }
}

/// Pure: the merge patch that applies `outcome`, carrying the resourceVersion so a concurrent
/// change (a person cordoning at the same moment) makes the API answer 409 instead of being
/// overwritten. `None` when nothing is to be written.
pub fn cordon_patch(node: &NodeInfo, reason: &str) -> Option<serde_json::Value> {
    match decide_cordon(node) {
        CordonOutcome::CordonedByOthers => None,
        CordonOutcome::Cordoned | CordonOutcome::AlreadyOurs => Some(json!({
            "metadata": {
                "resourceVersion": node.resource_version,
                "annotations": {CORDONED_FOR: reason}
            },
            "spec": {"unschedulable": true}
        })),
    }
}

/// Pure: the merge patch that uncordons `node` and removes k3sctl's mark, when it is ours.
pub fn uncordon_patch(node: &NodeInfo) -> Option<serde_json::Value> {
    match decide_uncordon(node) {
        UncordonOutcome::Uncordoned => Some(json!({
            "metadata": {
                "resourceVersion": node.resource_version,
                "annotations": {CORDONED_FOR: null}
            },
            "spec": {"unschedulable": null}
        })),
        UncordonOutcome::LeftCordoned | UncordonOutcome::NotCordoned => None,
    }
}

/// Attempts of a read-decide-patch cycle before giving up on conflicts (the node's status is
/// updated by its kubelet, which changes the resourceVersion).
const CONFLICT_ATTEMPTS: usize = 5;

/// Reads node `name`, decides with `decide`, patches with `patch_for`; retries when the node
/// changed between the read and the patch (HTTP 409).
async fn read_decide_patch<T: Clone>(
    client: &Client,
    name: &str,
    what: &str,
    decide: impl Fn(&NodeInfo) -> T,
    patch_for: impl Fn(&NodeInfo) -> Option<serde_json::Value>,
) -> Result<T, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = get_node(client, name)
            .await?
            .ok_or_else(|| KubeError::NodeNotFound {
                node: name.to_owned(),
            })?;
        let outcome = decide(&node);
        let Some(patch) = patch_for(&node) else {
            return Ok(outcome);
        };
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(outcome),
            Err(e) if status_code(&e) == Some(409) && attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(node = name, "{what}: node changed meanwhile, retrying");
            }
            Err(e) => return Err(KubeError::api(format!("{what} node {name}"), e)),
        }
    }
}

/// Cordons node `name` for `reason` (e.g. `upgrade to v1.34.3+k3s1`) unless someone else already
/// cordoned it.
pub async fn cordon(client: &Client, name: &str, reason: &str) -> Result<CordonOutcome, KubeError> {
    read_decide_patch(client, name, "cordoning", decide_cordon, |n| {
        cordon_patch(n, reason)
    })
    .await
}

/// Uncordons node `name` only when k3sctl cordoned it.
pub async fn uncordon_if_ours(client: &Client, name: &str) -> Result<UncordonOutcome, KubeError> {
    read_decide_patch(client, name, "uncordoning", decide_uncordon, uncordon_patch).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(unschedulable: bool, ours: bool) -> NodeInfo {
        let mut n = NodeInfo {
            name: "a".into(),
            unschedulable,
            resource_version: Some("7".into()),
            ..NodeInfo::default()
        };
        if ours {
            n.annotations
                .insert(CORDONED_FOR.into(), "upgrade to v1.34.3+k3s1".into());
        }
        n
    }

    #[test]
    fn a_person_cordon_is_never_touched() {
        let n = node(true, false);
        assert_eq!(decide_cordon(&n), CordonOutcome::CordonedByOthers);
        assert_eq!(cordon_patch(&n, "upgrade"), None);
        assert_eq!(decide_uncordon(&n), UncordonOutcome::LeftCordoned);
        assert_eq!(uncordon_patch(&n), None);
    }

    #[test]
    fn cordon_marks_and_uncordon_unmarks_with_the_resource_version() {
        let fresh = node(false, false);
        assert_eq!(decide_cordon(&fresh), CordonOutcome::Cordoned);
        assert_eq!(
            cordon_patch(&fresh, "upgrade to v1.34.3+k3s1"),
            Some(json!({
                "metadata": {"resourceVersion": "7",
                             "annotations": {CORDONED_FOR: "upgrade to v1.34.3+k3s1"}},
                "spec": {"unschedulable": true}
            }))
        );
        assert_eq!(decide_uncordon(&fresh), UncordonOutcome::NotCordoned);
        let ours = node(true, true);
        assert_eq!(decide_cordon(&ours), CordonOutcome::AlreadyOurs);
        assert_eq!(
            uncordon_patch(&ours),
            Some(json!({
                "metadata": {"resourceVersion": "7", "annotations": {CORDONED_FOR: null}},
                "spec": {"unschedulable": null}
            }))
        );
    }

    #[test]
    fn a_leftover_mark_on_a_schedulable_node_is_cleaned() {
        // A person uncordoned a node k3sctl had cordoned: the mark is stale and is removed.
        let n = node(false, true);
        assert_eq!(decide_uncordon(&n), UncordonOutcome::Uncordoned);
        assert!(uncordon_patch(&n).is_some());
    }
}
