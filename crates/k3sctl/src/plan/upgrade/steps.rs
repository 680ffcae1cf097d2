//! Each node's part of the rollout as plan steps (the same [`Step`]s `apply` runs, executed by
//! the same engine): for a node to upgrade, the quorum check (servers of a multi-server
//! cluster), cordon, drain (not the only server), the binary swap, the restart, the waits, and
//! the uncordon; for a node an interrupted run left cordoned at the target, only the waits and
//! the uncordon. The health gate after each batch is the rollout's, not a node's.

use super::{NodeAction, NodeKind, PlannedNode};
use crate::plan::{DrainSettings, Step};
use crate::spec::UpgradePolicy;

/// What a node's steps depend on beyond the node itself.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// More than one server: embedded etcd, whose quorum every server's turn must keep.
    pub ha: bool,
    /// The spec's first server: it carries the upgrade marker, where a re-run looks for it
    /// when that server's own upgrade failed (whichever server the API goes through).
    pub marker_server: Option<&'a str>,
    /// The spec's upgrade policy.
    pub policy: &'a UpgradePolicy,
}

/// The value of k3sctl's cordon annotation for an upgrade to `target`.
pub fn cordon_reason(target: &crate::k3s::version::K3sVersion) -> String {
    format!("upgrade to {target}")
}

/// The drain settings of the spec's upgrade policy.
pub fn drain_settings(policy: &UpgradePolicy) -> DrainSettings {
    DrainSettings {
        delete_empty_dir_data: policy.delete_empty_dir_data,
        force: policy.force,
        disable_eviction: policy.disable_eviction,
        timeout_secs: policy.drain_timeout.to_std().as_secs(),
    }
}

/// Pure: the steps that bring back the server the API goes through after it failed its own
/// upgrade (its marker found, K3s down, so the API is down too): the (fixed) release put in
/// place, K3s restarted, the Node Ready at `to` with /readyz ok. Its marker stays: the resumed
/// rollout finishes the node's turn (waits, marker, uncordon) like any interrupted one.
pub fn recovery_steps(
    from: crate::k3s::version::K3sVersion,
    to: crate::k3s::version::K3sVersion,
) -> Vec<Step> {
    vec![
        Step::SwapBinary {
            from,
            to,
            marker: false,
        },
        Step::Restart {
            reason: format!("resume the {}", cordon_reason(&to)),
        },
        Step::WaitReadyAt {
            version: to,
            readyz: true,
        },
    ]
}

/// Pure: the steps of `node`'s turn, in order (none for a node left alone).
pub fn node_steps(node: &PlannedNode, ctx: StepContext<'_>) -> Vec<Step> {
    let server = node.kind == NodeKind::Server;
    let ha_server = server && ctx.ha;
    let marker_server = ctx.marker_server == Some(node.name.as_str());
    let mut steps = Vec::new();
    let keep_cordoned = match node.action {
        NodeAction::Skip => return steps,
        NodeAction::Finish => false,
        NodeAction::Upgrade {
            drain,
            keep_cordoned,
        } => {
            if ha_server {
                steps.push(Step::CheckQuorum);
            }
            steps.push(Step::Cordon {
                reason: cordon_reason(&node.to),
            });
            if drain {
                steps.push(Step::Drain(drain_settings(ctx.policy)));
            }
            steps.push(Step::SwapBinary {
                from: node.from,
                to: node.to,
                marker: marker_server,
            });
            steps.push(Step::Restart {
                reason: cordon_reason(&node.to),
            });
            keep_cordoned
        }
    };
    steps.push(Step::WaitReadyAt {
        version: node.to,
        readyz: server,
    });
    if ha_server {
        steps.push(Step::WaitQuorum);
    }
    if marker_server {
        steps.push(Step::ClearUpgradeMarker);
    }
    steps.push(Step::Uncordon { keep_cordoned });
    steps
}
