//! The refusals: no downgrade, no skipped minor, no following a channel backwards.

use crate::k3s::version::{K3sVersion, TransitionError, check_transition};

use super::NodeState;

/// Where the target version came from (changes what a lower target means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSource {
    /// `--to`.
    Flag,
    /// The spec's `k3s.version`.
    Spec,
    /// A channel answer (`--channel` or the spec's `k3s.channel`).
    Channel(String),
    /// The version printed by an airgap binary (`--binary`).
    Binary(String),
}

impl std::fmt::Display for TargetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flag => f.write_str("--to"),
            Self::Spec => f.write_str("spec.k3s.version"),
            Self::Channel(name) => write!(f, "channel {name}"),
            Self::Binary(path) => write!(f, "binary {path}"),
        }
    }
}

/// Why the upgrade will not start. Nothing was changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRefusal {
    /// A channel answered a version lower than one that runs.
    #[error(
        "{origin} answers {target}, lower than {running} running on {node}: channels have moved \
         backwards before, and k3sctl never follows one down\n  hint: wait for the channel to \
         catch up, or pin a version with --to"
    )]
    ChannelBehind {
        /// The channel.
        origin: TargetSource,
        /// Its answer.
        target: K3sVersion,
        /// The newest running version.
        running: K3sVersion,
        /// A node running it.
        node: String,
    },
    /// The target is older than what a node runs.
    #[error(
        "{node} runs {running}; {target} (from {origin}) is older: k3sctl does not downgrade \
         K3s\n  hint: restore from an etcd snapshot or reinstall to go back"
    )]
    Downgrade {
        /// The node.
        node: String,
        /// What it runs.
        running: K3sVersion,
        /// The target.
        target: K3sVersion,
        /// Where the target came from.
        origin: TargetSource,
    },
    /// The target skips a minor release for some node.
    #[error(
        "{node} runs {running}; going to {target} skips a minor release (Kubernetes supports \
         one minor at a time)\n  hint: upgrade to the latest {intermediate} release first (for \
         example `k3sctl upgrade --channel {intermediate}`), then to {target}"
    )]
    SkipsMinor {
        /// The node.
        node: String,
        /// What it runs.
        running: K3sVersion,
        /// The target.
        target: K3sVersion,
        /// The minor line to take first (`v1.34`).
        intermediate: String,
    },
    /// A major version change.
    #[error("{node} runs {running}; {target} changes the major version: refusing")]
    MajorChange {
        /// The node.
        node: String,
        /// What it runs.
        running: K3sVersion,
        /// The target.
        target: K3sVersion,
    },
}

/// Checks the target against every node; the first refusal found (channel first, then the
/// oldest node for skips, the newest for downgrades).
pub fn check_target(
    target: K3sVersion,
    source: &TargetSource,
    nodes: &[NodeState],
) -> Result<(), UpgradeRefusal> {
    let Some(newest) = nodes.iter().max_by_key(|n| n.running) else {
        return Ok(());
    };
    if let TargetSource::Channel(_) = source
        && target < newest.running
    {
        return Err(UpgradeRefusal::ChannelBehind {
            origin: source.clone(),
            target,
            running: newest.running,
            node: newest.name.clone(),
        });
    }
    let mut by_age: Vec<&NodeState> = nodes.iter().collect();
    by_age.sort_by_key(|n| n.running);
    for node in by_age.iter().rev() {
        if let Err(e) = check_transition(node.running, target) {
            return Err(match e {
                TransitionError::Downgrade { current, target } => UpgradeRefusal::Downgrade {
                    node: node.name.clone(),
                    running: current,
                    target,
                    origin: source.clone(),
                },
                TransitionError::SkipsMinor {
                    current,
                    target,
                    intermediate,
                } => UpgradeRefusal::SkipsMinor {
                    node: node.name.clone(),
                    running: current,
                    target,
                    intermediate,
                },
                TransitionError::MajorChange { current, target } => UpgradeRefusal::MajorChange {
                    node: node.name.clone(),
                    running: current,
                    target,
                },
            });
        }
    }
    Ok(())
}
