//! Hints for known K3s failure causes, recognised in journal lines or error text.

/// Known causes: a text fragment and what to do about it.
const KNOWN: &[(&str, &str)] = &[
    (
        "Node password rejected",
        "a Node with this name was registered by another machine: delete it \
         (`kubectl delete node <name>`) and re-run apply",
    ),
    (
        "bootstrap data already found and encrypted with different token",
        "the server's data was created with another token: restore the old token or wipe \
         /var/lib/rancher/k3s/server on this host",
    ),
    (
        "critical configuration value mismatch",
        "servers disagree on cluster-wide settings (cluster-cidr, service-cidr, disable, ...): \
         make serverConfig identical for every server",
    ),
    (
        "failed to get CA certs",
        "the agent cannot reach the join endpoint: check cluster.registrationAddress and that TCP 6443 \
         on the first server is reachable from this host",
    ),
    (
        "connection refused",
        "a connection was refused: check that the first server runs and the join endpoint \
         (cluster.registrationAddress) points at it",
    ),
    (
        "no space left on device",
        "the host's disk is full: free space under /var/lib/rancher",
    ),
    (
        "sudo asks for a password",
        "allow passwordless sudo for the ssh user or connect as root",
    ),
    (
        "host key mismatch",
        "verify the host's new key out of band and update known_hosts",
    ),
    (
        "connection was lost",
        "the host went away (crashed, rebooted, network cut): bring it back and re-run apply; \
         the steps already done are skipped",
    ),
    (
        "timed out",
        "the host or service did not answer in time: check that it is up and look at \
         `journalctl -u k3s` / `journalctl -u k3s-agent` there",
    ),
];

/// A hint for the first known cause found in `text`.
pub fn hint_for(text: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_known_causes() {
        assert!(
            hint_for("level=fatal msg=\"Node password rejected, duplicate hostname\"")
                .is_some_and(|h| h.contains("kubectl delete node"))
        );
        assert!(
            hint_for("failed to get CA certs: Get \"https://10.0.0.9:6443/cacerts\"")
                .is_some_and(|h| h.contains("registrationAddress"))
        );
        assert!(
            hint_for("k3g-3: connection lost during writing x: the ssh connection was lost")
                .is_some_and(|h| h.contains("re-run apply"))
        );
        assert_eq!(hint_for("all fine"), None);
    }
}
