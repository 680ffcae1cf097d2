//! Why an upgrade stopped: each variant says where (node, step) and what to do.

use super::gate::GateFailure;
use crate::k3s::release::ReleaseError;
use crate::k3s::version::VersionParseError;
use crate::ops::OpsError;
use crate::plan::upgrade::UpgradeRefusal;
use crate::plan::upgrade::quorum::QuorumRisk;
use crate::run::ApiError;
use crate::run::upgrade_marker::MARKER_PATH;

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
    /// The API could not be used: no server's API answered, or a call through it failed.
    #[error(
        "the Kubernetes API: {0}\n  hint: `k3sctl check` shows which server's K3s does not \
         answer; the upgrade needs the API of at least one server"
    )]
    Api(#[from] ApiError),
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
    /// A host's `uname -m` names an architecture K3s publishes no binary for.
    #[error(
        "{host}: {cause}\n  nothing was changed\n  hint: take {host} out of the spec's hosts to \
         upgrade the others"
    )]
    UnsupportedArch {
        /// The host.
        host: String,
        /// What `uname -m` said.
        cause: ReleaseError,
    },
    /// A Node's kubelet reports a version that is not a K3s version (another distribution, or
    /// a kubelet not started by K3s).
    #[error(
        "node {node}: its kubelet reports {cause}\n  nothing was changed\n  hint: k3sctl \
         upgrades nodes that run K3s; check with `kubectl get node {node} -o wide` what runs \
         there"
    )]
    NotK3s {
        /// The Node.
        node: String,
        /// Why its kubelet version is not a K3s version.
        cause: VersionParseError,
    },
    /// Hosts of the spec have no Node object in the cluster.
    #[error(
        "host(s) {} of the spec have no Node in the cluster\n  hint: run `k3sctl apply` first; \
         upgrade only changes nodes that are part of the cluster",
        .hosts.join(", ")
    )]
    NodesMissing {
        /// The spec's hosts without a Node, in spec order.
        hosts: Vec<String>,
    },
    /// HA: etcd's members could not be read for the quorum check before the first server.
    #[error(
        "reading etcd's members before taking {server} down: {cause}\n  nothing was changed\n  \
         hint: `k3sctl check` shows which server or member does not answer; re-run once every \
         server runs"
    )]
    MembersUnreadable {
        /// The first server the rollout would take down.
        server: String,
        /// What the API said.
        cause: ApiError,
    },
    /// The server the API goes through failed its own upgrade in an earlier run (its marker
    /// left, K3s down) and bringing it back failed: the step, the cause, its hint and journal.
    #[error(
        "{} failed its upgrade in an earlier run (the API is down with it) and could not be \
         brought back: {failure}\n  {} keeps its upgrade marker ({MARKER_PATH}): once the cause is \
         fixed, re-running the same upgrade resumes from it",
        .failure.node,
        .failure.node
    )]
    Recovery {
        /// The failed step of the recovery, on that server.
        failure: NodeFailure,
    },
}

impl From<UpgradeRefusal> for UpgradeError {
    fn from(refusal: UpgradeRefusal) -> Self {
        Self::Refused(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_the_host_the_cause_and_what_to_do() {
        let arch = UpgradeError::UnsupportedArch {
            host: "pi".into(),
            cause: ReleaseError::UnsupportedArch("mips".into()),
        }
        .to_string();
        assert!(
            arch.starts_with("pi: architecture `mips` has no K3s"),
            "{arch}"
        );
        assert!(arch.contains("nothing was changed"), "{arch}");
        assert!(arch.contains("hint: take pi out of the spec"), "{arch}");

        let cause = "v1.33.5"
            .parse::<crate::k3s::version::K3sVersion>()
            .expect_err("not a K3s version");
        let not_k3s = UpgradeError::NotK3s {
            node: "s1".into(),
            cause,
        }
        .to_string();
        assert!(
            not_k3s.starts_with("node s1: its kubelet reports `v1.33.5` is not a K3s version"),
            "{not_k3s}"
        );
        assert!(not_k3s.contains("kubectl get node s1"), "{not_k3s}");

        let missing = UpgradeError::NodesMissing {
            hosts: vec!["a1".into(), "a2".into()],
        }
        .to_string();
        assert!(
            missing.starts_with("host(s) a1, a2 of the spec have no Node"),
            "{missing}"
        );
        assert!(
            missing.contains("hint: run `k3sctl apply` first"),
            "{missing}"
        );

        let members = UpgradeError::MembersUnreadable {
            server: "s1".into(),
            cause: ApiError("connection refused".into()),
        }
        .to_string();
        assert!(
            members.starts_with("reading etcd's members before taking s1 down: connection refused"),
            "{members}"
        );
        assert!(members.contains("hint: `k3sctl check`"), "{members}");
    }

    #[test]
    fn a_failed_recovery_keeps_the_step_its_hint_and_journal_and_says_how_to_resume() {
        let failure = NodeFailure {
            node: "s1".into(),
            step: "restart".into(),
            error: "k3s exited".into(),
            hint: Some("the release does not start".into()),
            journal: Some("level=fatal msg=broken".into()),
        };
        let text = UpgradeError::Recovery { failure }.to_string();
        assert!(
            text.starts_with(
                "s1 failed its upgrade in an earlier run (the API is down with it) and could not \
                 be brought back: s1: step restart failed: k3s exited"
            ),
            "{text}"
        );
        for part in [
            "hint: the release does not start",
            "level=fatal msg=broken",
            "s1 keeps its upgrade marker (/var/lib/rancher/k3s/k3sctl-upgrade)",
            "re-running the same upgrade resumes",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }
}
