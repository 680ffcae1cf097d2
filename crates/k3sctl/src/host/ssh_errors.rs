//! Reading the log of a failed ssh master into a [`HostError`] that says what to do.

use super::error::HostError;
use super::shell;
use super::ssh_target::SshTarget;

/// Classifies why the ssh master for `target` failed, from its log (`ssh -E`).
pub fn classify_connect_failure(target: &SshTarget, log: &str) -> HostError {
    let host = target.name.clone();
    let address = target.address.clone();
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || (log.contains("Host key for") && log.contains("has changed"))
    {
        let known_hosts = offending_file(log).unwrap_or_else(|| target.known_hosts_display());
        return HostError::HostKeyMismatch {
            host,
            address,
            known_hosts,
        };
    }
    if log.contains("you have requested strict checking")
        || log.contains("Host key verification failed")
    {
        return HostError::HostKeyUnknown {
            host,
            address,
            known_hosts: target.known_hosts_display(),
        };
    }
    let detail = relevant_lines(log);
    let detail = if detail.is_empty() {
        "ssh exited without a message".to_owned()
    } else {
        detail
    };
    HostError::Unreachable { host, detail }
}

/// The known_hosts file named by "Offending <type> key in <file>:<line>".
fn offending_file(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let rest = l.split_once("key in ")?.1;
        let (file, line) = rest.trim().rsplit_once(':')?;
        line.parse::<u32>().ok()?;
        l.contains("Offending").then(|| file.to_owned())
    })
}

/// The log without ssh's banner art and warnings, last lines only.
fn relevant_lines(log: &str) -> String {
    let kept: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning: Permanently"))
        .collect();
    shell::tail(&kept.join("\n"), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISMATCH: &str = "\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:abc.
Please contact your system administrator.
Add correct host key in /lab/known_hosts to get rid of this message.
Offending ED25519 key in /lab/known_hosts:3
Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
Host key verification failed.
";

    fn target() -> SshTarget {
        SshTarget::new("node-1", "127.0.0.1")
    }

    #[test]
    fn a_changed_key_names_the_offending_file() {
        match classify_connect_failure(&target(), MISMATCH) {
            HostError::HostKeyMismatch { known_hosts, .. } => {
                assert_eq!(known_hosts, "/lab/known_hosts");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn an_unknown_key_under_strict_checking_says_so() {
        let log = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict \
                   checking.\nHost key verification failed.\n";
        let mut t = target();
        t.known_hosts_file = Some("/tmp/kh".into());
        let err = classify_connect_failure(&t, log);
        assert!(matches!(err, HostError::HostKeyUnknown { .. }), "{err}");
        assert!(err.to_string().contains("/tmp/kh"));
    }

    #[test]
    fn other_failures_keep_the_last_lines() {
        let log = "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\n\
                   root@127.0.0.1: Permission denied (publickey).\n";
        match classify_connect_failure(&target(), log) {
            HostError::Unreachable { detail, .. } => {
                assert_eq!(detail, "root@127.0.0.1: Permission denied (publickey).");
            }
            other => panic!("unexpected {other}"),
        }
        match classify_connect_failure(&target(), "") {
            HostError::Unreachable { detail, .. } => assert!(detail.contains("without")),
            other => panic!("unexpected {other}"),
        }
    }
}
