//! Hosts that could not be connected to: refused by default (nothing changes anywhere), or,
//! with `--skip-unreachable`, left out of the plan and listed, so the reachable hosts can still
//! be brought to the spec. Only "cannot connect" is skipped: a changed host key or a sudo that
//! asks for a password is a problem for a person, and at least one server must be reached (the
//! token, the API and the lock are on the servers; with several servers any one will do).

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
    servers: &[String],
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
    let every_server_down = servers
        .iter()
        .all(|server| errors.iter().any(|e| e.host() == server));
    let mut skipped = Vec::new();
    for error in errors {
        if every_server_down && servers.first().is_some_and(|first| error.host() == first) {
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

/// Adds hosts found unreachable by their first command (a reused ssh master that no longer
/// reached its host, and no fresh connection) to those `skipped` while connecting, and decides
/// again over all of them as [`skipped_hosts`] does: the run refuses (listing every such host)
/// unless `skip`, and never goes on without a server.
pub fn with_late_failures(
    skipped: Vec<SkippedHost>,
    late: Vec<HostError>,
    servers: &[String],
    skip: bool,
) -> Result<Vec<SkippedHost>, OpsError> {
    if late.is_empty() {
        return Ok(skipped);
    }
    // Only "cannot connect" was skipped, so each is that error again.
    let mut errors: Vec<HostError> = skipped
        .into_iter()
        .map(|s| HostError::Unreachable {
            host: s.host,
            detail: s.reason,
        })
        .collect();
    errors.extend(late);
    skipped_hosts(errors, servers, skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Vec<String> {
        vec!["s1".to_owned()]
    }

    fn down(host: &str) -> HostError {
        HostError::Unreachable {
            host: host.into(),
            detail: "connect to host 10.0.0.9 port 22: No route to host".into(),
        }
    }

    #[test]
    fn by_default_any_unreachable_host_refuses_and_names_the_flag() {
        assert_eq!(skipped_hosts(vec![], &one(), false).ok(), Some(vec![]));
        let err = skipped_hosts(vec![down("a1")], &one(), false).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains("a1: cannot connect"), "{said}");
        assert!(said.contains("--skip-unreachable"), "{said}");
        assert!(said.contains("nothing was changed"), "{said}");
    }

    #[test]
    fn with_the_flag_agents_are_skipped_and_listed() {
        let skipped = skipped_hosts(vec![down("a1"), down("a2")], &one(), true).expect("skips");
        assert_eq!(
            skipped.iter().map(|s| s.host.as_str()).collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert!(skipped[0].reason.contains("No route to host"));
    }

    #[test]
    fn the_only_server_is_never_skipped_one_of_several_may_be() {
        let three: Vec<String> = ["s1", "s2", "s3"].map(String::from).to_vec();
        let skipped = skipped_hosts(vec![down("s1"), down("a1")], &three, true).expect("skips");
        assert_eq!(
            skipped.len(),
            2,
            "with s2 and s3 up, the first server may be left out"
        );
        let all = vec![down("s1"), down("s2"), down("s3")];
        let err = skipped_hosts(all, &three, true).expect_err("no server left");
        assert!(matches!(err, OpsError::FirstServerUnreachable(_)));
        let err = skipped_hosts(vec![down("a1"), down("s1")], &one(), true).expect_err("refused");
        assert!(matches!(err, OpsError::FirstServerUnreachable(_)));
        let said = err.to_string();
        assert!(said.starts_with("s1: cannot connect"), "{said}");
        assert!(
            said.contains("join token, the API and the apply lock"),
            "{said}"
        );
    }

    #[test]
    fn hosts_lost_at_their_first_command_count_like_connection_failures() {
        let three: Vec<String> = ["s1", "s2", "s3"].map(String::from).to_vec();
        let none = with_late_failures(vec![], vec![], &three, false).expect("nothing late");
        assert!(none.is_empty());
        let err = with_late_failures(vec![], vec![down("a1")], &three, false).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains("a1: cannot connect"), "{said}");
        assert!(said.contains("--skip-unreachable"), "{said}");
        let early = skipped_hosts(vec![down("s1")], &three, true).expect("s1 skipped");
        let both = with_late_failures(early.clone(), vec![down("a1")], &three, true).expect("skip");
        assert_eq!(
            both.iter().map(|s| s.host.as_str()).collect::<Vec<_>>(),
            ["s1", "a1"]
        );
        assert_eq!(both[0], early[0], "the earlier reason is kept");
        let err = with_late_failures(early, vec![down("s2"), down("s3")], &three, true)
            .expect_err("no server left");
        assert!(matches!(err, OpsError::FirstServerUnreachable(_)), "{err}");
    }

    #[test]
    fn a_host_key_problem_is_not_skipped() {
        let mismatch = HostError::HostKeyMismatch {
            host: "a2".into(),
            address: "10.0.0.3".into(),
            known_hosts: "/root/.ssh/known_hosts".into(),
        };
        let err = skipped_hosts(vec![down("a1"), mismatch], &one(), true).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains("host key mismatch"), "{said}");
        assert!(said.contains("not host-key or sudo problems"), "{said}");
    }
}
