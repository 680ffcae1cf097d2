//! Upgrade planning, pure: (target version, observed nodes, upgrade policy) → the refusals, or
//! the ordered rollout with what happens to each node.
//!
//! Order follows K3s's documented procedure and the Kubernetes version-skew policy: servers
//! first, one at a time, then agents in batches. A kubelet must never be newer than the API
//! server it talks to, so no agent may reach the new version before every server runs it (the
//! seed runbook upgraded workers first, which breaks that rule when the target is a new minor).

pub mod gate;
mod order;
pub mod quorum;
mod rules;
mod show;
pub mod steps;

#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::plan::Step;

pub use order::{Batch, Lane, Phase, plan_upgrade};
pub use rules::{TargetSource, UpgradeRefusal, check_target};
pub use show::{DrainPreview, ORDER_REASON, render_upgrade_plan};
pub use steps::{cordon_reason, node_steps};

/// Whether a node runs the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// `k3s server`.
    Server,
    /// `k3s agent`.
    Agent,
}

/// A node as observed before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// Node (and host) name.
    pub name: String,
    /// Server or agent.
    pub kind: NodeKind,
    /// The agent group (`None` for servers and ungrouped agents).
    pub group: Option<String>,
    /// The version its kubelet reports (what runs now).
    pub running: K3sVersion,
    /// Ready condition.
    pub ready: bool,
    /// spec.unschedulable.
    pub unschedulable: bool,
    /// Carries k3sctl's cordon annotation (k3sctl cordoned it, an earlier run was interrupted).
    pub cordoned_by_k3sctl: bool,
}

/// What the rollout does with one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum NodeAction {
    /// Already at the target and not cordoned by k3sctl: left alone.
    Skip,
    /// At the target but still cordoned by an interrupted run: wait Ready, uncordon, gate.
    Finish,
    /// Cordon, drain (or not), deliver, restart, wait, uncordon, gate.
    Upgrade {
        /// Whether pods are drained first (not for the only server).
        drain: bool,
        /// A person cordoned the node: it is upgraded but stays cordoned.
        keep_cordoned: bool,
    },
}

/// One node in the rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedNode {
    /// Node name.
    pub name: String,
    /// Server or agent.
    pub kind: NodeKind,
    /// What runs now.
    pub from: K3sVersion,
    /// The target.
    pub to: K3sVersion,
    /// What happens.
    #[serde(flatten)]
    pub action: NodeAction,
    /// Its steps, in order, as the engine runs them (none when it is left alone).
    pub steps: Vec<Step>,
}

impl PlannedNode {
    /// Whether the rollout touches this node at all.
    pub fn is_work(&self) -> bool {
        self.action != NodeAction::Skip
    }
}

/// The whole rollout: phases run in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradePlan {
    /// The version every node ends at.
    pub target: K3sVersion,
    /// Servers, then agent groups.
    pub phases: Vec<Phase>,
    /// The name of the etcd snapshot taken before the first server is touched, when one is
    /// (see [`snapshot_wanted`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// Pure: whether the upgrade takes an etcd snapshot first: `upgrade.snapshot` when set, else
/// on for a cluster of several servers (embedded etcd); `--no-snapshot` always skips it.
pub fn snapshot_wanted(policy: Option<bool>, servers: usize, no_snapshot: bool) -> bool {
    !no_snapshot && policy.unwrap_or(servers > 1)
}

/// The name given to the snapshot taken before upgrading to `target` (K3s appends the node
/// and the time).
pub fn snapshot_name(target: K3sVersion) -> String {
    format!("pre-upgrade-{target}")
        .chars()
        .map(|c| if c == '+' { '-' } else { c })
        .collect()
}

impl UpgradePlan {
    /// Every node, in rollout order.
    pub fn nodes(&self) -> impl Iterator<Item = &PlannedNode> {
        self.phases
            .iter()
            .flat_map(|p| p.lanes.iter())
            .flat_map(|l| l.batches.iter())
            .flat_map(|b| b.nodes.iter())
    }

    /// Whether anything is to be done.
    pub fn has_work(&self) -> bool {
        self.nodes().any(PlannedNode::is_work)
    }
}
