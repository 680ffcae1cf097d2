//! Proxmox-specific failures of the pct transport, recognised from what `pct` prints (see
//! ../shared notes ha-lxc-contracts §2.1–2.2: pve-container `pct.pm`, pve-guest-common
//! `AbstractConfig.pm`).

/// A Proxmox refusal, with the container (`host`), its node and vmid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxmoxError {
    /// The node has no configuration for this vmid.
    #[error(
        "{host}: container {vmid} is not on Proxmox host {node} ({detail})\n  hint: check \
         pct.vmid, or point pct.proxmoxHost at the node that runs it (`pct list` there; in a \
         cluster `pvesh get /cluster/resources --type vm`)"
    )]
    NotOnNode {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
        /// The container id.
        vmid: u32,
        /// What pct said.
        detail: String,
    },
    /// The container is stopped.
    #[error(
        "{host}: container {vmid} on {node} is not running\n  hint: start it (`pct start {vmid}` \
         on {node}) or leave pct.autostart at its default (true) so apply starts it"
    )]
    NotRunning {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
        /// The container id.
        vmid: u32,
    },
    /// pct refused the vmid itself.
    #[error(
        "{host}: pct on {node} refused vmid {vmid}: {detail}\n  hint: vmids are integers from 100 to 999999999; check pct.vmid"
    )]
    WrongVmid {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
        /// The container id.
        vmid: u32,
        /// What pct said.
        detail: String,
    },
    /// The node has no `pct`.
    #[error(
        "{host}: {node} has no `pct` command, so it is not a Proxmox VE host\n  hint: check \
         spec.proxmoxHosts[].address for {node}"
    )]
    PctMissing {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
    },
    /// pct was not run as root.
    #[error(
        "{host}: pct on {node} must run as root\n  hint: connect to {node} as root \
         (proxmoxHosts[].ssh.user: root) or give the ssh user passwordless sudo"
    )]
    NotRoot {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
    },
    /// The container's configuration carries a `lock:`.
    #[error(
        "{host}: container {vmid} on {node} is locked ({lock})\n  hint: wait for the {lock} \
         operation to finish; if none runs, `pct unlock {vmid}` on {node}"
    )]
    Locked {
        /// The spec's host name.
        host: String,
        /// The Proxmox host's name.
        node: String,
        /// The container id.
        vmid: u32,
        /// The lock's kind (backup, snapshot, ...).
        lock: String,
    },
}

impl ProxmoxError {
    /// The spec's host name this error is about.
    pub fn host(&self) -> &str {
        match self {
            Self::NotOnNode { host, .. }
            | Self::NotRunning { host, .. }
            | Self::WrongVmid { host, .. }
            | Self::PctMissing { host, .. }
            | Self::NotRoot { host, .. }
            | Self::Locked { host, .. } => host,
        }
    }
}

/// Which container a `pct` call was about.
#[derive(Debug, Clone, Copy)]
pub struct CtRef<'a> {
    /// The spec's host name.
    pub host: &'a str,
    /// The Proxmox host's name.
    pub node: &'a str,
    /// The container id.
    pub vmid: u32,
}

/// Recognises pct's own refusals in a failed call's exit code and stderr. `None` when the
/// failure is not pct's (e.g. the command run inside the container failed).
pub fn classify(ct: CtRef<'_>, status: Option<i32>, stderr: &str) -> Option<ProxmoxError> {
    let host = ct.host.to_owned();
    let node = ct.node.to_owned();
    let vmid = ct.vmid;
    let line = |needle: &str| {
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_owned())
    };
    if status == Some(127)
        && (stderr.contains("pct: command not found") || stderr.contains("pct: not found"))
    {
        return Some(ProxmoxError::PctMissing { host, node });
    }
    if status == Some(0) {
        return None;
    }
    if line("please run as root").is_some() {
        return Some(ProxmoxError::NotRoot { host, node });
    }
    if let Some(detail) =
        line("Configuration file 'nodes/").filter(|l| l.contains("does not exist"))
    {
        return Some(ProxmoxError::NotOnNode {
            host,
            node,
            vmid,
            detail,
        });
    }
    if line(&format!("container '{vmid}' not running!")).is_some()
        || line(&format!("CT {vmid} not running")).is_some()
    {
        return Some(ProxmoxError::NotRunning { host, node, vmid });
    }
    if let Some(detail) = line("vmid: ") {
        return Some(ProxmoxError::WrongVmid {
            host,
            node,
            vmid,
            detail,
        });
    }
    if let Some(l) = line("CT is locked (") {
        let lock = l
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(lock, _)| lock.to_owned())
            .unwrap_or_default();
        return Some(ProxmoxError::Locked {
            host,
            node,
            vmid,
            lock,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: CtRef<'static> = CtRef {
        host: "k3s-1",
        node: "pve1",
        vmid: 201,
    };

    #[test]
    fn recognises_each_refusal() {
        let cases: &[(Option<i32>, &str, &str)] = &[
            (
                Some(255),
                "Configuration file 'nodes/pve1/lxc/201.conf' does not exist\n",
                "not on Proxmox host pve1",
            ),
            (
                Some(255),
                "container '201' not running!\n",
                "is not running",
            ),
            (Some(255), "CT 201 not running\n", "is not running"),
            (
                Some(255),
                "400 Parameter verification failed.\nvmid: type check ('integer') failed - got 'x'\n",
                "refused vmid",
            ),
            (
                Some(127),
                "sh: 1: pct: not found\n",
                "not a Proxmox VE host",
            ),
            (Some(255), "please run as root\n", "must run as root"),
            (Some(255), "CT is locked (backup)\n", "is locked (backup)"),
        ];
        for (status, stderr, expect) in cases {
            let err = classify(CT, *status, stderr).expect(stderr);
            assert!(err.to_string().contains(expect), "{err}");
            assert!(err.to_string().starts_with("k3s-1: "), "{err}");
        }
    }

    #[test]
    fn a_failing_command_inside_is_not_a_refusal() {
        assert_eq!(classify(CT, Some(1), "grep: x: No such file\n"), None);
        assert_eq!(classify(CT, Some(255), "ssh: something else\n"), None);
        assert_eq!(
            classify(CT, Some(0), "container '201' not running!\n"),
            None
        );
        assert_eq!(
            classify(CT, Some(255), "container '202' not running!\n"),
            None,
            "another container's message"
        );
    }
}
