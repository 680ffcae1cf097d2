//! The upgrade plan as text: per-node transitions in rollout order, with what each drain will
//! move, and why servers go first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{NodeAction, NodeKind, PlannedNode, UpgradePlan};
use crate::k3s::config::NodeRole;
use crate::plan::Step;

/// Why the rollout starts with the servers (shown in the plan and the docs).
pub const ORDER_REASON: &str = "servers go first, one at a time, then agents: a kubelet must \
never be newer than the API server it talks to (Kubernetes version-skew policy), so no agent \
reaches the new version before every server runs it";

/// What draining a node will do, as shown in the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainPreview {
    /// Pods that will be evicted (`namespace/name`).
    pub evict: Vec<String>,
    /// Pods left in place, with why (`kube-system/svclb-x (DaemonSet)`).
    pub skip: Vec<String>,
    /// Pods that would stop the drain, with why.
    pub blocked: Vec<String>,
}

fn line_for(node: &PlannedNode) -> String {
    let role = match node.kind {
        NodeKind::Server => "server",
        NodeKind::Agent => "agent",
    };
    match &node.action {
        NodeAction::Skip => format!(
            "{} ({role}): {} already at the target, left alone",
            node.name, node.from
        ),
        NodeAction::Finish => format!(
            "{} ({role}): {} already at the target; an interrupted run cordoned it: wait Ready, \
             uncordon",
            node.name, node.from
        ),
        NodeAction::Upgrade {
            drain,
            keep_cordoned,
        } => {
            let mut s = format!("{} ({role}): {} → {}", node.name, node.from, node.to);
            if !drain {
                s.push_str(" (no drain: the only server)");
            }
            if *keep_cordoned {
                s.push_str(", stays cordoned (a person cordoned it)");
            }
            s
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// The node's steps, each on its line, with what its drain will move under the drain step.
fn write_steps(out: &mut String, node: &PlannedNode, drain: Option<&DrainPreview>) {
    let role = match node.kind {
        NodeKind::Server => NodeRole::Server,
        NodeKind::Agent => NodeRole::Agent,
    };
    for step in &node.steps {
        let _ = writeln!(out, "         - {}", step.title(role));
        if let (Step::Drain(_), Some(p)) = (step, drain) {
            let _ = writeln!(out, "           evict: {}", list(&p.evict));
            if !p.skip.is_empty() {
                let _ = writeln!(out, "           stay: {}", list(&p.skip));
            }
            if !p.blocked.is_empty() {
                let _ = writeln!(out, "           BLOCKS THE DRAIN: {}", list(&p.blocked));
            }
        }
    }
}

/// Renders the plan. `drains` holds the preview per node name, when the API could be asked.
pub fn render_upgrade_plan(plan: &UpgradePlan, drains: &BTreeMap<String, DrainPreview>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "upgrade to {}", plan.target);
    let _ = writeln!(out, "order: {ORDER_REASON}.");
    if let (true, Some(name)) = (plan.has_work(), &plan.snapshot) {
        let _ = writeln!(
            out,
            "first: an etcd snapshot `{name}` on a Ready voting member, before any server is \
             touched (upgrade.snapshot; skip with --no-snapshot)"
        );
    }
    let mut step = 0;
    for phase in &plan.phases {
        let _ = writeln!(out, "\n{}:", phase.title);
        for lane in &phase.lanes {
            if phase.lanes.len() > 1 {
                let _ = writeln!(out, "  lane {}:", lane.name);
            }
            for batch in &lane.batches {
                let work = batch.nodes.iter().filter(|n| n.is_work()).count();
                for node in &batch.nodes {
                    if node.is_work() {
                        step += 1;
                    }
                    let mark = if node.is_work() {
                        format!("{step:>3}.")
                    } else {
                        "   -".to_string()
                    };
                    let _ = writeln!(out, "  {mark} {}", line_for(node));
                    write_steps(&mut out, node, drains.get(&node.name));
                }
                if work > 1 {
                    let _ = writeln!(out, "       (the {work} nodes above go together)");
                }
            }
        }
    }
    let total = plan.nodes().filter(|n| n.is_work()).count();
    if total == 0 {
        let _ = writeln!(out, "\nnothing to do: every node runs {}", plan.target);
    } else {
        let _ = writeln!(
            out,
            "\n{total} node(s) to change; the health gate (all nodes Ready, kube-system pods \
             Running) runs before the first and after each batch"
        );
    }
    out
}
