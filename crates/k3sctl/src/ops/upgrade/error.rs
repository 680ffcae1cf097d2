//! Why an upgrade stopped: each variant says where (node, step) and what to do.

use super::gate::GateFailure;
use crate::kube::KubeError;
use crate::ops::OpsError;
use crate::plan::upgrade::UpgradeRefusal;
use crate::plan::upgrade::quorum::QuorumRisk;

pub use crate::run::record::NodeFailure;

/// Why `upgrade` did not start or stopped before the rollout.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Loading, connecting, the lock, the release download.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The target breaks an upgrade rule. Nothing was changed.
    #[error("refusing to upgrade: {0}\n  nothing was changed")]
    Refused(UpgradeRefusal),
    /// The API could not be used.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The target version could not be determined.
    #[error("{0}")]
    Target(String),
    /// The cluster is not healthy before the first node.
    #[error(
        "the cluster is {0}\n  the upgrade did not start (nothing was changed)\n  \
         hint: fix these first (or raise upgrade.gateTimeout if the cluster only needs longer \
         to settle), or pass --skip-initial-gate to upgrade anyway"
    )]
    InitialGate(GateFailure),
    /// Taking a server down now could lose etcd quorum (HA clusters).
    #[error(
        "refusing to upgrade: taking a server down now could lose etcd quorum (nothing was \
         changed):\n{0}\n  hint: wait until every server is Ready and a voting member (K3s \
         promotes a learner that caught up within about 15s), or bring back the server that is \
         down, then re-run"
    )]
    Quorum(QuorumRisk),
    /// The etcd snapshot before the first server could not be taken. Nothing was changed.
    #[error(
        "the etcd snapshot before the upgrade failed: {0}\n  nothing was changed\n  hint: fix \
         the cause and re-run, or skip the snapshot with --no-snapshot (or upgrade.snapshot: \
         false)"
    )]
    Snapshot(String),
    /// The cluster does not match the spec (a host without a Node object).
    #[error("{0}")]
    Cluster(String),
}

impl From<UpgradeRefusal> for UpgradeError {
    fn from(refusal: UpgradeRefusal) -> Self {
        Self::Refused(refusal)
    }
}
