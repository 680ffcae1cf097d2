//! Preflight: pure checks over the facts of all hosts, returning every problem at once so the
//! operator fixes them in one go before anything changes.

use std::collections::BTreeMap;
use std::fmt;

use super::facts::Facts;

/// Thresholds for [`check_hosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightLimits {
    /// Largest allowed difference between host clocks, seconds.
    pub max_clock_skew_secs: i64,
    /// Least free disk space where data goes, bytes.
    pub min_free_bytes: u64,
}

impl Default for PreflightLimits {
    fn default() -> Self {
        Self {
            max_clock_skew_secs: 30,
            min_free_bytes: 2 << 30,
        }
    }
}

/// How much a [`Problem`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth saying; K3s may still work.
    Warning,
    /// Must be fixed before k3sctl changes anything.
    Error,
}

/// One thing found wrong before k3sctl changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// systemd is not the running init.
    NoSystemd {
        /// The host.
        host: String,
        /// `systemctl` exists but systemd is not PID 1.
        installed: bool,
    },
    /// The CPU architecture is not one the caller supports.
    UnsupportedArch {
        /// The host.
        host: String,
        /// `uname -m`.
        machine: String,
    },
    /// Several hosts share a host name.
    DuplicateHostname {
        /// The shared name.
        hostname: String,
        /// The hosts that have it.
        hosts: Vec<String>,
    },
    /// Host clocks disagree.
    ClockSkew {
        /// Each host's offset from the local clock, seconds.
        offsets: Vec<(String, i64)>,
        /// Largest minus smallest offset.
        spread: i64,
        /// The allowed spread.
        limit: i64,
    },
    /// Too little free disk space.
    LowDisk {
        /// The host.
        host: String,
        /// The measured path.
        path: String,
        /// Free bytes.
        free_bytes: u64,
        /// Required bytes.
        need_bytes: u64,
    },
    /// /dev/kmsg is missing (typical of unprivileged LXC containers).
    NoKmsg {
        /// The host.
        host: String,
        /// The container technology, when detected.
        container: Option<String>,
    },
    /// A host could not be inspected at all (unreachable, host key, sudo).
    Unreachable {
        /// The host.
        host: String,
        /// The error, which already names the host and the fix.
        error: String,
    },
    /// A joining host cannot open a TCP connection to the join endpoint.
    EndpointUnreachable {
        /// The joining host.
        host: String,
        /// `address:port` it tried.
        endpoint: String,
        /// What the probe saw.
        detail: String,
    },
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSystemd { host, installed } => {
                write!(f, "{host}: systemd is not running as init")?;
                if *installed {
                    write!(
                        f,
                        " (systemctl is installed; is this a container started without it?)"
                    )?;
                }
                write!(
                    f,
                    "\n  hint: K3s runs as a systemd service; boot the host with systemd"
                )
            }
            Self::UnsupportedArch { host, machine } => write!(
                f,
                "{host}: architecture {machine} has no K3s build (amd64, arm64 and arm only)"
            ),
            Self::DuplicateHostname { hostname, hosts } => write!(
                f,
                "hosts {} all have the host name {hostname:?}\n  hint: K3s rejects a second node \
                 with the same host name (\"duplicate hostname\"); give each host its own name",
                hosts.join(", ")
            ),
            Self::ClockSkew {
                offsets,
                spread,
                limit,
            } => {
                let list: Vec<String> =
                    offsets.iter().map(|(h, o)| format!("{h} {o:+}s")).collect();
                write!(
                    f,
                    "host clocks differ by {spread}s (limit {limit}s): {}\n  hint: enable time \
                     sync (systemd-timesyncd or chrony) on every host",
                    list.join(", ")
                )
            }
            Self::LowDisk {
                host,
                path,
                free_bytes,
                need_bytes,
            } => write!(
                f,
                "{host}: only {} free on {path}, need at least {}\n  hint: free space or grow the \
                 disk",
                gib(*free_bytes),
                gib(*need_bytes)
            ),
            Self::NoKmsg { host, container } => {
                write!(f, "{host}: /dev/kmsg is missing")?;
                if let Some(c) = container {
                    write!(f, " (running in {c})")?;
                }
                write!(
                    f,
                    "\n  hint: the kubelet's OOM watcher reads it; in LXC bind-mount it or link it \
                     to /dev/console"
                )
            }
            Self::Unreachable { error, .. } => f.write_str(error),
            Self::EndpointUnreachable {
                host,
                endpoint,
                detail,
            } => write!(
                f,
                "{host}: cannot reach the join endpoint {endpoint}: {detail}\n  hint: the join would \
                 stall; check that the address is the server's current one and that a firewall \
                 allows TCP from this host"
            ),
        }
    }
}

impl Problem {
    /// Errors stop the run; warnings are shown. A missing /dev/kmsg is a warning: K3s logs
    /// kubelet OOM-watcher errors but runs (containers and the lab lack it).
    pub fn severity(&self) -> Severity {
        match self {
            Self::NoKmsg { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The host the problem is about, when it is about one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::NoSystemd { host, .. }
            | Self::UnsupportedArch { host, .. }
            | Self::LowDisk { host, .. }
            | Self::NoKmsg { host, .. }
            | Self::Unreachable { host, .. }
            | Self::EndpointUnreachable { host, .. } => Some(host),
            Self::DuplicateHostname { .. } | Self::ClockSkew { .. } => None,
        }
    }
}

/// All problems found in the facts of `hosts` (name → facts), in a stable order.
/// `supported_machine` says whether a `uname -m` value can run what will be installed (the
/// caller's knowledge: for K3s, `k3s::release::Arch::from_uname`).
pub fn check_hosts(
    hosts: &BTreeMap<String, Facts>,
    limits: &PreflightLimits,
    supported_machine: impl Fn(&str) -> bool,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, f) in hosts {
        if !f.systemd_running {
            problems.push(Problem::NoSystemd {
                host: name.clone(),
                installed: f.systemd_present,
            });
        }
        if !supported_machine(&f.machine) {
            problems.push(Problem::UnsupportedArch {
                host: name.clone(),
                machine: f.machine.clone(),
            });
        }
        if let Some(disk) = &f.disk
            && disk.free_bytes < limits.min_free_bytes
        {
            problems.push(Problem::LowDisk {
                host: name.clone(),
                path: disk.path.display().to_string(),
                free_bytes: disk.free_bytes,
                need_bytes: limits.min_free_bytes,
            });
        }
        if !f.kmsg {
            problems.push(Problem::NoKmsg {
                host: name.clone(),
                container: f.container.clone(),
            });
        }
    }
    let mut by_hostname: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, f) in hosts {
        by_hostname
            .entry(f.hostname.to_ascii_lowercase())
            .or_default()
            .push(name.clone());
    }
    for (hostname, names) in by_hostname {
        if names.len() > 1 {
            problems.push(Problem::DuplicateHostname {
                hostname,
                hosts: names,
            });
        }
    }
    let offsets: Vec<(String, i64)> = hosts
        .iter()
        .map(|(n, f)| (n.clone(), f.clock_offset()))
        .collect();
    let min = offsets.iter().map(|(_, o)| *o).min().unwrap_or(0);
    let max = offsets.iter().map(|(_, o)| *o).max().unwrap_or(0);
    if max - min > limits.max_clock_skew_secs {
        problems.push(Problem::ClockSkew {
            offsets,
            spread: max - min,
            limit: limits.max_clock_skew_secs,
        });
    }
    problems
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
