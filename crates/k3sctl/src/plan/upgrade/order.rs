//! The rollout order: servers one at a time, then agents in batches per group, groups one
//! after another or side by side.

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::spec::{GroupOrder, UpgradePolicy};

use super::steps::{StepContext, node_steps};
use super::{NodeAction, NodeKind, NodeState, PlannedNode, UpgradePlan};

/// Nodes upgraded at the same time; the health gate runs after each batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Batch {
    /// The nodes.
    pub nodes: Vec<PlannedNode>,
}

/// Batches run one after another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lane {
    /// `servers`, or the agent group's name (`agents` for ungrouped agents).
    pub name: String,
    /// The batches, in order.
    pub batches: Vec<Batch>,
}

/// Lanes that run side by side; phases run one after another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// A title for the plan output.
    pub title: String,
    /// The lanes.
    pub lanes: Vec<Lane>,
}

fn action(node: &NodeState, target: K3sVersion, only_server: bool) -> NodeAction {
    if node.running == target {
        return if node.cordoned_by_k3sctl {
            NodeAction::Finish
        } else {
            NodeAction::Skip
        };
    }
    NodeAction::Upgrade {
        drain: !(node.kind == NodeKind::Server && only_server),
        keep_cordoned: node.unschedulable && !node.cordoned_by_k3sctl,
    }
}

fn planned(
    node: &NodeState,
    target: K3sVersion,
    only_server: bool,
    ctx: StepContext<'_>,
) -> PlannedNode {
    let mut planned = PlannedNode {
        name: node.name.clone(),
        kind: node.kind,
        from: node.running,
        to: target,
        action: action(node, target, only_server),
        steps: Vec::new(),
    };
    planned.steps = node_steps(&planned, ctx);
    planned
}

fn group_name(group: Option<&str>) -> String {
    match group {
        Some(g) if !g.is_empty() => g.to_string(),
        _ => "agents".to_string(),
    }
}

/// Orders the rollout. `nodes` are in spec order (servers' order and agent groups' first
/// appearance are kept). Nodes that need nothing stay in the plan as `Skip`, so the output shows
/// every node; they are not counted in batch sizes.
pub fn plan_upgrade(
    target: K3sVersion,
    nodes: &[NodeState],
    policy: &UpgradePolicy,
) -> UpgradePlan {
    let servers: Vec<&NodeState> = nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Server)
        .collect();
    let only_server = servers.len() == 1;
    let ctx = StepContext {
        ha: servers.len() > 1,
        marker_server: servers.first().map(|s| s.name.as_str()),
        policy,
    };
    let mut phases = Vec::new();
    if !servers.is_empty() {
        phases.push(Phase {
            title: "servers, one at a time".into(),
            lanes: vec![Lane {
                name: "servers".into(),
                batches: servers
                    .iter()
                    .map(|s| Batch {
                        nodes: vec![planned(s, target, only_server, ctx)],
                    })
                    .collect(),
            }],
        });
    }
    let mut groups: Vec<(String, Vec<&NodeState>)> = Vec::new();
    for agent in nodes.iter().filter(|n| n.kind == NodeKind::Agent) {
        let name = group_name(agent.group.as_deref());
        match groups.iter_mut().find(|(g, _)| *g == name) {
            Some((_, members)) => members.push(agent),
            None => groups.push((name, vec![agent])),
        }
    }
    let size = usize::try_from(policy.agent_batch_size.max(1)).unwrap_or(1);
    let lanes: Vec<Lane> = groups
        .into_iter()
        .map(|(name, members)| Lane {
            name,
            batches: batches(&members, target, size, ctx),
        })
        .collect();
    match policy.groups {
        GroupOrder::Sequential => {
            for lane in lanes {
                phases.push(Phase {
                    title: format!("agent group {}, batches of {size}", lane.name),
                    lanes: vec![lane],
                });
            }
        }
        GroupOrder::Parallel if !lanes.is_empty() => phases.push(Phase {
            title: format!("agent groups side by side, batches of {size} within each"),
            lanes,
        }),
        GroupOrder::Parallel => {}
    }
    UpgradePlan {
        target,
        phases,
        snapshot: None,
    }
}

/// Splits a group into batches of `size` nodes with work; skipped nodes ride along in the
/// batch where they appear.
fn batches(
    members: &[&NodeState],
    target: K3sVersion,
    size: usize,
    ctx: StepContext<'_>,
) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut current = Batch { nodes: Vec::new() };
    let mut work = 0;
    for member in members {
        let node = planned(member, target, false, ctx);
        let is_work = node.is_work();
        if is_work && work == size {
            out.push(std::mem::replace(&mut current, Batch { nodes: Vec::new() }));
            work = 0;
        }
        if is_work {
            work += 1;
        }
        current.nodes.push(node);
    }
    if !current.nodes.is_empty() {
        out.push(current);
    }
    out
}
