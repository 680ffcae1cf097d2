//! Why a step failed, typed: each variant knows its hint (a K3s failure recognised in the
//! journal, a host that went away, or the hint the step gave with its refusal), so nothing
//! downstream matches error text.

use super::api::ApiError;
use super::service::ServiceError;
use crate::host::HostError;
use crate::k3s::journal::K3sFailure;

/// A failed step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Running something on the host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The K3s unit did not come up (with its journal).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The API could not do what the step needs.
    #[error("{context}: {source}")]
    Api {
        /// What the step was doing.
        context: String,
        /// What the API said.
        #[source]
        source: ApiError,
    },
    /// A wait ran out, with the node's journal when it involves the K3s service.
    #[error("{message}")]
    Wait {
        /// What was not reached.
        message: String,
        /// The unit's last journal lines.
        journal: Option<String>,
    },
    /// The step refused or found something wrong; `hint` says what to do.
    #[error("{message}")]
    Refused {
        /// What is wrong.
        message: String,
        /// What to do, when known.
        hint: Option<String>,
    },
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        Self::Refused {
            message,
            hint: None,
        }
    }
}

impl StepError {
    /// An API failure while `context`.
    pub fn api(context: impl Into<String>, source: ApiError) -> Self {
        Self::Api {
            context: context.into(),
            source,
        }
    }

    /// A refusal with what to do.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Refused {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// What to do about it, when known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Host(HostError::Session { .. }) => Some(
                "the host went away (crashed, rebooted, network cut): bring it back and re-run; \
                 the steps already done are skipped"
                    .into(),
            ),
            Self::Host(HostError::Timeout { .. }) => Some(
                "the host or service did not answer in time: check that it is up and look at \
                 `journalctl -u k3s` / `journalctl -u k3s-agent` there"
                    .into(),
            ),
            Self::Host(_) | Self::Api { .. } => None,
            Self::Service(e) => e
                .journal()
                .and_then(K3sFailure::in_journal)
                .map(|f| f.hint().to_string()),
            Self::Wait { journal, .. } => journal
                .as_deref()
                .and_then(K3sFailure::in_journal)
                .map(|f| f.hint().to_string()),
            Self::Refused { hint, .. } => hint.clone(),
        }
    }

    /// What happened, without the journal.
    pub fn headline(&self) -> String {
        match self {
            Self::Service(e) => e.headline(),
            Self::Wait { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The journal lines that explain it, when the step involved the K3s service.
    pub fn journal(&self) -> Option<&str> {
        match self {
            Self::Service(e) => e.journal(),
            Self::Wait { journal, .. } => journal.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_come_from_the_variant_not_the_text() {
        let service = StepError::Service(ServiceError::Failed {
            host: "a1".into(),
            unit: "k3s-agent".into(),
            why: "the unit failed (exit status 1)".into(),
            journal: "level=fatal msg=\"failed to get CA certs: connection refused\"".into(),
        });
        assert!(
            service
                .hint()
                .is_some_and(|h| h.contains("registrationAddress"))
        );
        assert_eq!(
            service.headline(),
            "k3s-agent did not start: the unit failed (exit status 1)"
        );
        assert!(service.journal().is_some_and(|j| j.contains("CA certs")));
        // A message of k3sctl's own that mentions a K3s failure gets no hint from it.
        let own = StepError::from("failed to get CA certs (quoted)".to_string());
        assert_eq!(own.hint(), None);
        let lost = StepError::Host(HostError::Session {
            host: "a1".into(),
            what: "x".into(),
            detail: "the ssh connection was lost".into(),
        });
        assert!(lost.hint().is_some_and(|h| h.contains("re-run")));
        let refused = StepError::refused("quorum at risk", "bring every server back");
        assert_eq!(refused.hint().as_deref(), Some("bring every server back"));
    }
}
