//! K3s failures recognised in its own journal lines (what K3s logs when it cannot start), each
//! with what to do. Pure knowledge of K3s's messages; k3sctl's own errors are typed and never
//! recognised from their text.

/// A known reason K3s did not start, as its journal says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K3sFailure {
    /// `Node password rejected`: another machine registered this node name.
    NodePasswordRejected,
    /// `bootstrap data already found and encrypted with different token`.
    TokenMismatch,
    /// `critical configuration value mismatch` between servers.
    CriticalConfigMismatch,
    /// `failed to get CA certs`: the join endpoint does not answer.
    CannotGetCaCerts,
    /// `connection refused` reaching the server.
    ConnectionRefused,
    /// `no space left on device`.
    DiskFull,
}

/// K3s's message for each failure, most specific first (a CA-certs failure also says
/// "connection refused").
const MESSAGES: &[(&str, K3sFailure)] = &[
    ("Node password rejected", K3sFailure::NodePasswordRejected),
    (
        "bootstrap data already found and encrypted with different token",
        K3sFailure::TokenMismatch,
    ),
    (
        "critical configuration value mismatch",
        K3sFailure::CriticalConfigMismatch,
    ),
    ("failed to get CA certs", K3sFailure::CannotGetCaCerts),
    ("connection refused", K3sFailure::ConnectionRefused),
    ("no space left on device", K3sFailure::DiskFull),
];

impl K3sFailure {
    /// The first known failure K3s's journal lines report.
    pub fn in_journal(journal: &str) -> Option<Self> {
        MESSAGES
            .iter()
            .find(|(message, _)| journal.contains(message))
            .map(|(_, failure)| *failure)
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::NodePasswordRejected => {
                "a Node with this name was registered by another machine: delete it \
                 (`kubectl delete node <name>`) and re-run apply"
            }
            Self::TokenMismatch => {
                concat!(
                    "the server's data was created with another token: restore the old token or \
                     wipe ",
                    super::ports::server_dir!(),
                    " on this host"
                )
            }
            Self::CriticalConfigMismatch => {
                "servers disagree on cluster-wide settings (cluster-cidr, service-cidr, disable, \
                 ...): make serverConfig identical for every server"
            }
            Self::CannotGetCaCerts => {
                concat!(
                    "the agent cannot reach the join endpoint: check cluster.registrationAddress \
                     and that TCP ",
                    super::ports::api_port!(),
                    " on the first server is reachable from this host"
                )
            }
            Self::ConnectionRefused => {
                "a connection was refused: check that the first server runs and the join \
                 endpoint (cluster.registrationAddress) points at it"
            }
            Self::DiskFull => concat!(
                "the host's disk is full: free space under ",
                super::ports::data_parent!()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_k3s_failures_most_specific_first() {
        assert_eq!(
            K3sFailure::in_journal(
                "level=fatal msg=\"Node password rejected, duplicate hostname\""
            ),
            Some(K3sFailure::NodePasswordRejected)
        );
        assert_eq!(
            K3sFailure::in_journal(
                "failed to get CA certs: Get \"https://10.0.0.9:6443/cacerts\": connection refused"
            ),
            Some(K3sFailure::CannotGetCaCerts)
        );
        assert!(
            K3sFailure::CannotGetCaCerts
                .hint()
                .contains("registrationAddress")
        );
        assert_eq!(K3sFailure::in_journal("all fine"), None);
    }
}
