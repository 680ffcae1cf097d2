//! Pure drain decisions with kubectl's semantics: which pods on a node are evicted, which are
//! skipped (DaemonSet and mirror pods), and which block the drain (unmanaged pods unless forced,
//! pods with emptyDir volumes unless their data may be deleted).

use std::fmt;

use k8s_openapi::api::core::v1::Pod;

/// Annotation the kubelet puts on mirror pods of static pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A pod by namespace, name and UID (the UID tells a pod from its replacement of the same name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// metadata.uid.
    pub uid: String,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Options that change what a drain may remove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainRules {
    /// Remove pods with emptyDir volumes (their data is lost).
    pub delete_emptydir_data: bool,
    /// Remove pods no controller manages (they are not recreated).
    pub force: bool,
}

/// Why a pod is left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Managed by a DaemonSet (it would be recreated on the same node).
    DaemonSet,
    /// A mirror pod of a static pod (the kubelet owns it).
    Mirror,
    /// Already being deleted; only waited for.
    Terminating,
}

/// Why a pod stops the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// No controller manages it.
    Unmanaged,
    /// It uses emptyDir volumes.
    EmptyDir,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unmanaged => "not managed by a controller",
            Self::EmptyDir => "uses emptyDir data",
        })
    }
}

/// What draining one node will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainPlan {
    /// Pods to evict (or delete), in a stable order.
    pub evict: Vec<PodRef>,
    /// Pods left alone, with why.
    pub skip: Vec<(PodRef, SkipReason)>,
    /// Pods that stop the drain, with why. Empty when the drain may proceed.
    pub blocked: Vec<(PodRef, BlockReason)>,
    /// Pods whose removal loses something, allowed by the rules (shown to the operator).
    pub warnings: Vec<(PodRef, BlockReason)>,
}

impl DrainPlan {
    /// The pods to wait for after evicting: evicted ones plus those already terminating.
    pub fn to_wait_for(&self) -> Vec<PodRef> {
        let mut pods = self.evict.clone();
        pods.extend(
            self.skip
                .iter()
                .filter(|(_, r)| *r == SkipReason::Terminating)
                .map(|(p, _)| p.clone()),
        );
        pods
    }

    /// The option that would unblock the drain, for the error hint.
    pub fn hint(&self) -> String {
        let mut hints = Vec::new();
        if self
            .blocked
            .iter()
            .any(|(_, r)| *r == BlockReason::Unmanaged)
        {
            hints.push("force: true drains pods no controller manages (they are not recreated)");
        }
        if self
            .blocked
            .iter()
            .any(|(_, r)| *r == BlockReason::EmptyDir)
        {
            hints.push("deleteEmptyDirData: true drains pods with emptyDir volumes (data is lost)");
        }
        hints.join("; ")
    }
}

/// The pod's reference.
pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

fn controller_kind(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn uses_empty_dir(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| vs.iter().any(|v| v.empty_dir.is_some()))
}

/// Decides what draining a node holding `pods` does under `rules`.
pub fn plan_drain(pods: &[Pod], rules: DrainRules) -> DrainPlan {
    let mut plan = DrainPlan::default();
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by_key(|p| pod_ref(p));
    for pod in sorted {
        let r = pod_ref(pod);
        let annotations = pod.metadata.annotations.as_ref();
        if annotations.is_some_and(|a| a.contains_key(MIRROR_ANNOTATION)) {
            plan.skip.push((r, SkipReason::Mirror));
            continue;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            plan.skip.push((r, SkipReason::Terminating));
            continue;
        }
        // Finished pods lose nothing: removed whatever owns them (as kubectl does).
        if finished(pod) {
            plan.evict.push(r);
            continue;
        }
        if controller_kind(pod) == Some("DaemonSet") {
            plan.skip.push((r, SkipReason::DaemonSet));
            continue;
        }
        let mut blocked = false;
        if controller_kind(pod).is_none() {
            if rules.force {
                plan.warnings.push((r.clone(), BlockReason::Unmanaged));
            } else {
                plan.blocked.push((r.clone(), BlockReason::Unmanaged));
                blocked = true;
            }
        }
        if uses_empty_dir(pod) {
            if rules.delete_emptydir_data {
                plan.warnings.push((r.clone(), BlockReason::EmptyDir));
            } else {
                plan.blocked.push((r.clone(), BlockReason::EmptyDir));
                blocked = true;
            }
        }
        if !blocked {
            plan.evict.push(r);
        }
    }
    plan
}

#[cfg(test)]
#[path = "drain_plan_tests.rs"]
mod tests;
