//! Hosts that could not be connected to: refused by default (nothing changes anywhere), or,
//! with `--skip-unreachable`, left out of the plan and listed, so the reachable hosts can still
//! be brought to the spec. Only "cannot connect" is skipped: a changed host key or a sudo that
//! asks for a password is a problem for a person, and the first server is never left out.

use serde::Serialize;

use super::error::OpsError;
use crate::host::HostError;

/// The refusal's hint when `--skip-unreachable` was not given.
pub const SKIP_HINT: &str = "\n  hint: to bring the reachable hosts to the spec anyway, re-run \
                              with --skip-unreachable (the unreachable ones are listed as skipped \
                              and the run exits 1)";

/// The hint when a problem other than "cannot connect" is among the errors.
const NOT_SKIPPABLE_HINT: &str = "\n  hint: --skip-unreachable leaves out only hosts that cannot \
                                  be connected to, not host-key or sudo problems: fix those first";

/// A host left out of this run because it could not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedHost {
    /// Host name.
    pub host: String,
    /// What the connection attempt said.
    pub reason: String,
}

/// Decides what the connection `errors` mean for this run: the hosts to leave out, or why the
/// run stops before any change.
pub fn skipped_hosts(
    errors: Vec<HostError>,
    first_server: &str,
    skip: bool,
) -> Result<Vec<SkippedHost>, OpsError> {
    if errors.is_empty() {
        return Ok(Vec::new());
    }
    if !skip {
        return Err(OpsError::Unreachable {
            errors,
            hint: SKIP_HINT.into(),
        });
    }
    if errors
        .iter()
        .any(|e| !matches!(e, HostError::Unreachable { .. }))
    {
        return Err(OpsError::Unreachable {
            errors,
            hint: NOT_SKIPPABLE_HINT.into(),
        });
    }
    let mut skipped = Vec::new();
    for error in errors {
        if error.host() == first_server {
            return Err(OpsError::FirstServerUnreachable(error));
        }
        let reason = match &error {
            HostError::Unreachable { detail, .. } => detail.clone(),
            other => other.to_string(),
        };
        skipped.push(SkippedHost {
            host: error.host().to_string(),
            reason,
        });
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(host: &str) -> HostError {
        HostError::Unreachable {
            host: host.into(),
            detail: "connect to host 10.0.0.9 port 22: No route to host".into(),
        }
    }

    #[test]
    fn by_default_any_unreachable_host_refuses_and_names_the_flag() {
        assert_eq!(skipped_hosts(vec![], "s1", false).ok(), Some(vec![]));
        let err = skipped_hosts(vec![down("a1")], "s1", false).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains("a1: cannot connect"), "{said}");
        assert!(said.contains("--skip-unreachable"), "{said}");
        assert!(said.contains("nothing was changed"), "{said}");
    }

    #[test]
    fn with_the_flag_agents_are_skipped_and_listed() {
        let skipped = skipped_hosts(vec![down("a1"), down("a2")], "s1", true).expect("skips");
        assert_eq!(
            skipped.iter().map(|s| s.host.as_str()).collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert!(skipped[0].reason.contains("No route to host"));
    }

    #[test]
    fn the_first_server_is_never_skipped() {
        let err = skipped_hosts(vec![down("a1"), down("s1")], "s1", true).expect_err("refused");
        assert!(matches!(err, OpsError::FirstServerUnreachable(_)));
        let said = err.to_string();
        assert!(said.starts_with("s1: cannot connect"), "{said}");
        assert!(
            said.contains("join token, the API and the apply lock"),
            "{said}"
        );
    }

    #[test]
    fn a_host_key_problem_is_not_skipped() {
        let mismatch = HostError::HostKeyMismatch {
            host: "a2".into(),
            address: "10.0.0.3".into(),
            known_hosts: "/root/.ssh/known_hosts".into(),
        };
        let err = skipped_hosts(vec![down("a1"), mismatch], "s1", true).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains("host key mismatch"), "{said}");
        assert!(said.contains("not host-key or sudo problems"), "{said}");
    }
}
