//! The lab's error type: every error says which lab/host and step failed and what to do next.

use std::io;
use std::time::Duration;

/// Everything that can go wrong while building, booting, controlling or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file-system operation failed (the source names the path).
    #[error("{step}: {source}\n  hint: {hint}")]
    Fs {
        /// What the lab was doing, including the host when there is one.
        step: String,
        /// The underlying error; it names the path.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// An external command (ip, nft, debootstrap, ssh-keygen, mount, ...) failed.
    #[error("{step}: `{command}` failed: {detail}\n  hint: {hint}")]
    Command {
        /// What the lab was doing, including the host when there is one.
        step: String,
        /// The command line that failed.
        command: String,
        /// Exit status and the command's error output.
        detail: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// Waiting for something on a host took too long.
    #[error("host {host}: {step}: no success within {after:?}: {detail}\n  hint: {hint}")]
    Timeout {
        /// The host waited for.
        host: String,
        /// What was awaited.
        step: String,
        /// How long the lab waited.
        after: Duration,
        /// The last observation before giving up.
        detail: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A step on one host failed.
    #[error("host {host}: {step}: {detail}\n  hint: {hint}")]
    Host {
        /// The host.
        host: String,
        /// What the lab was doing.
        step: String,
        /// What went wrong.
        detail: String,
        /// What to do about it.
        hint: String,
    },
    /// A host booted but systemd reports failed units.
    #[error(
        "host {host}: systemd is {state}; failed units: {failed}\n  hint: inspect with `k3sctl-lab exec {lab} {host} -- journalctl -b -u <unit>`"
    )]
    Degraded {
        /// The lab's name.
        lab: String,
        /// The host.
        host: String,
        /// What `systemctl is-system-running` said.
        state: String,
        /// The failed units, comma separated.
        failed: String,
    },
    /// The caller asked for something that cannot work (bad name, unknown host, ...).
    #[error("{what}\n  hint: {hint}")]
    Invalid {
        /// What is wrong.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// No lab with this name exists on the machine.
    #[error(
        "lab {name:?} does not exist\n  hint: list labs with `k3sctl-lab status`, create one with `k3sctl-lab up --name {name}`"
    )]
    NoSuchLab {
        /// The requested name.
        name: String,
    },
    /// The lab state file exists but cannot be understood.
    #[error(
        "lab state {path}: {detail}\n  hint: remove the lab with `k3sctl-lab down --all` and create it again"
    )]
    BadState {
        /// The state file.
        path: String,
        /// Parser message.
        detail: String,
    },
    /// No K3s binary was given and the stand-in could not be found.
    #[error(
        "no K3s binary for the spec: {detail}\n  hint: build the stand-in with `cargo build -p k3s-sim` (same target dir as k3sctl-lab) or pass --k3s-binary PATH"
    )]
    NoK3sBinary {
        /// Where the lab looked.
        detail: String,
    },
    /// A per-user kernel limit is too low for the lab's size and could not be raised.
    #[error(
        "{sysctl} is {current}, {hosts} more lab hosts need about {needed}, and raising it failed: {detail}\n  hint: run `sysctl -w {sysctl}={needed}` as root (or add it to /etc/sysctl.d/) and try again"
    )]
    KernelLimit {
        /// The sysctl.
        sysctl: &'static str,
        /// Its value now.
        current: u64,
        /// What the lab needs.
        needed: u64,
        /// Hosts being added.
        hosts: u64,
        /// Why writing it failed.
        detail: String,
    },
    /// The lab tool must run as root (namespaces, mounts, cgroups).
    #[error(
        "the lab needs root (network namespaces, overlay mounts, cgroups)\n  hint: run as root, e.g. `sudo k3sctl-lab ...`"
    )]
    NotRoot,
}

/// Result alias used across the crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Builds a closure turning an `io::Error` (from fs-err, so it names the path) into [`LabError::Fs`].
pub(crate) fn fs_step(step: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
    let step = step.into();
    move |source| LabError::Fs {
        step,
        source,
        hint: "check that the path is writable by root and the disk is not full",
    }
}
