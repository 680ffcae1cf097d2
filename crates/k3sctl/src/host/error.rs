//! Errors of the host edge: every variant names the host and says what to do.

use std::path::PathBuf;
use std::time::Duration;

/// An error while reaching or using a host.
///
/// Each variant carries the transport name (see [`Transport::name`](super::Transport::name)) so a
/// message printed on its own still says which host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host could not be reached at all (DNS, TCP, authentication, ProxyJump).
    #[error(
        "{host}: cannot connect: {detail}\n  hint: check the address, that sshd runs there, the ssh \
         user/identity and any ProxyJump; try `ssh -v` with the same options"
    )]
    Unreachable {
        /// The transport name.
        host: String,
        /// What the connection attempt reported.
        detail: String,
    },

    /// The host presented a key different from the one recorded in known_hosts.
    #[error(
        "{host}: host key mismatch: the key presented differs from the one in {known_hosts}\n  hint: \
         if the host was reinstalled, verify the new key out of band, then remove the old entry with \
         `ssh-keygen -R {address} -f {known_hosts}` and re-run (with acceptNewHostKeys: true or \
         --accept-new-host-keys to record the new key); otherwise someone may be intercepting the \
         connection"
    )]
    HostKeyMismatch {
        /// The transport name.
        host: String,
        /// The address ssh connected to (what `ssh-keygen -R` needs).
        address: String,
        /// The known_hosts file that holds the old key.
        known_hosts: String,
    },

    /// The host key is not recorded and strict host-key checking is on.
    #[error(
        "{host}: host key for {address} is not in {known_hosts} and strict host-key checking is on\n  \
         hint: add the key (ssh-keyscan {address} >> {known_hosts}, after verifying it) or allow \
         recording new keys with acceptNewHostKeys: true or --accept-new-host-keys"
    )]
    HostKeyUnknown {
        /// The transport name.
        host: String,
        /// The address ssh connected to.
        address: String,
        /// The known_hosts file that was consulted.
        known_hosts: String,
    },

    /// `sudo -n` refused because the user needs a password.
    #[error(
        "{host}: sudo asks for a password for this user\n  hint: k3sctl runs `sudo -n`; allow the \
         ssh user passwordless sudo (e.g. a file in /etc/sudoers.d with `<user> ALL=(ALL) NOPASSWD: \
         ALL`) or connect as root"
    )]
    SudoNeedsPassword {
        /// The transport name.
        host: String,
    },

    /// The user is not root and sudo is not installed.
    #[error(
        "{host}: root privileges are needed but `sudo` is not installed\n  hint: install sudo on the \
         host or connect as root"
    )]
    SudoMissing {
        /// The transport name.
        host: String,
    },

    /// A command ran and exited unsuccessfully.
    #[error("{host}: {what} failed ({status}): {stderr}")]
    CommandFailed {
        /// The transport name.
        host: String,
        /// A short description of the command.
        what: String,
        /// How it ended, e.g. "exit code 1" or "killed by a signal".
        status: String,
        /// The last lines of its standard error.
        stderr: String,
    },

    /// A command did not finish in time.
    #[error("{host}: {what} timed out after {}s", timeout.as_secs_f64())]
    Timeout {
        /// The transport name.
        host: String,
        /// A short description of the command.
        what: String,
        /// The time limit that was exceeded.
        timeout: Duration,
    },

    /// An uploaded file arrived with a different sha256 than expected; nothing was replaced.
    #[error(
        "{host}: upload to {} arrived corrupted (sha256 {actual}, expected {expected}); the target \
         was left untouched\n  hint: re-run; if it repeats, check the local file and the disk space \
         on the host",
        remote.display()
    )]
    ChecksumMismatch {
        /// The transport name.
        host: String,
        /// The destination path on the host.
        remote: PathBuf,
        /// The sha256 the caller expected.
        expected: String,
        /// The sha256 the host computed.
        actual: String,
    },

    /// A local I/O error (reading an upload source, spawning a process).
    #[error("{host}: {what}: {source}")]
    Io {
        /// The transport name.
        host: String,
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The session broke after it was established (channel failure, master died).
    #[error("{host}: connection lost during {what}: {detail}\n  hint: re-run; k3sctl converges")]
    Session {
        /// The transport name.
        host: String,
        /// What was being done.
        what: String,
        /// What the transport reported.
        detail: String,
    },

    /// The transport cannot do this (e.g. port forwarding through a hop).
    #[error("{host}: this transport does not support {what}")]
    Unsupported {
        /// The transport name.
        host: String,
        /// What was asked.
        what: String,
    },

    /// Proxmox refused: container not on the node, stopped, locked, wrong vmid, no `pct`, not
    /// root.
    #[error(transparent)]
    Proxmox(#[from] super::pct_errors::ProxmoxError),

    /// The host answered something k3sctl cannot parse.
    #[error("{host}: unexpected answer to {what}: {detail}")]
    Protocol {
        /// The transport name.
        host: String,
        /// What was being done.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl HostError {
    /// The transport name this error is about.
    pub fn host(&self) -> &str {
        match self {
            Self::Unreachable { host, .. }
            | Self::HostKeyMismatch { host, .. }
            | Self::HostKeyUnknown { host, .. }
            | Self::SudoNeedsPassword { host }
            | Self::SudoMissing { host }
            | Self::CommandFailed { host, .. }
            | Self::Timeout { host, .. }
            | Self::ChecksumMismatch { host, .. }
            | Self::Io { host, .. }
            | Self::Session { host, .. }
            | Self::Unsupported { host, .. }
            | Self::Protocol { host, .. } => host,
            Self::Proxmox(e) => e.host(),
        }
    }

    /// True when retrying later may succeed (network trouble), false for configuration problems
    /// (host keys, sudo) that need a person.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Session { .. }
        )
    }
}
