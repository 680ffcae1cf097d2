//! Host facts: gathered by one script in one round trip ([`gather_facts`]), parsed by pure code
//! ([`parse_facts`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::HostError;
use super::facts_script::{FactsRequest, facts_script};
use super::transport::{ExecRequest, Transport};

/// What a host is and holds, as far as k3sctl cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `ID` from /etc/os-release (e.g. `debian`).
    pub os_id: String,
    /// `VERSION_ID` from /etc/os-release (e.g. `12`).
    pub os_version: String,
    /// `uname -m` (e.g. `x86_64`); K3s's names for it are `k3s::release::Arch`.
    pub machine: String,
    /// The uid the facts script ran as (0 when sudo worked).
    pub uid: u32,
    /// `systemctl` exists.
    pub systemd_present: bool,
    /// systemd is the running init (/run/systemd/system exists).
    pub systemd_running: bool,
    /// The host name.
    pub hostname: String,
    /// Global-scope IPv4 addresses.
    pub ipv4: Vec<HostAddress>,
    /// The host's clock, seconds since the epoch.
    pub clock: i64,
    /// The local clock when the answer arrived, seconds since the epoch.
    pub observed_at: i64,
    /// Container technology (`systemd-detect-virt -c`); `None` for none or unknown.
    pub container: Option<String>,
    /// /dev/kmsg exists (the kubelet needs it; LXC containers often lack it).
    pub kmsg: bool,
    /// Free space where it matters, when asked for.
    pub disk: Option<DiskFree>,
    /// Requested files and glob matches, by path.
    pub files: BTreeMap<PathBuf, FileFact>,
    /// Requested executables, by path.
    pub binaries: BTreeMap<PathBuf, BinaryFact>,
    /// Requested systemd units, by name.
    pub units: BTreeMap<String, UnitFact>,
}

/// One IPv4 address of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    /// Interface name, when known.
    pub interface: Option<String>,
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length, when known.
    pub prefix: Option<u8>,
}

/// Free disk space at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFree {
    /// The existing path that was measured.
    pub path: PathBuf,
    /// Bytes available to unprivileged users.
    pub free_bytes: u64,
}

/// A file's state; all `None` when it does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFact {
    /// sha256 of the content.
    pub sha256: Option<String>,
    /// Modification time, seconds since the epoch.
    pub mtime: Option<i64>,
    /// Permission bits.
    pub mode: Option<u32>,
}

/// An executable's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryFact {
    /// sha256; `None` when absent.
    pub sha256: Option<String>,
    /// First line of `--version`, when it printed one.
    pub version_line: Option<String>,
}

/// A systemd unit's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFact {
    /// `LoadState` (`loaded`, `not-found`, ...).
    pub load_state: Option<String>,
    /// `ActiveState` (`active`, `inactive`, `failed`, `activating`, ...).
    pub active_state: Option<String>,
    /// `UnitFileState` (`enabled`, `disabled`, ...).
    pub unit_file_state: Option<String>,
    /// When it last became active, seconds since the epoch.
    pub active_since: Option<i64>,
}

impl UnitFact {
    /// The unit file exists.
    pub fn present(&self) -> bool {
        matches!(self.load_state.as_deref(), Some(s) if s != "not-found")
    }
    /// The unit is running.
    pub fn active(&self) -> bool {
        self.active_state.as_deref() == Some("active")
    }
    /// The unit starts at boot.
    pub fn enabled(&self) -> bool {
        self.unit_file_state.as_deref() == Some("enabled")
    }
}

impl Facts {
    /// Host clock minus local clock, in seconds (includes up to one round trip of error).
    pub fn clock_offset(&self) -> i64 {
        self.clock - self.observed_at
    }

    /// The state of a requested file (absent when not reported).
    pub fn file(&self, path: impl Into<PathBuf>) -> FileFact {
        self.files.get(&path.into()).cloned().unwrap_or_default()
    }
}

/// The facts output could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct FactsParseError {
    /// 1-based line number in the script output.
    pub line: usize,
    /// What was wrong.
    pub detail: String,
}

fn opt(field: &str) -> Option<String> {
    (field != "-" && !field.is_empty()).then(|| field.to_owned())
}

fn num<T: std::str::FromStr>(field: &str, line: usize, what: &str) -> Result<T, FactsParseError> {
    field.parse().map_err(|_| FactsParseError {
        line,
        detail: format!("{what} is not a number: {field:?}"),
    })
}

fn opt_num<T: std::str::FromStr>(
    field: &str,
    line: usize,
    what: &str,
) -> Result<Option<T>, FactsParseError> {
    opt(field).map(|f| num(&f, line, what)).transpose()
}

/// Parses the facts script's output. `observed_at` is the local clock when it arrived.
/// Unknown record kinds are ignored (newer scripts); a missing `end` record is an error
/// (truncated output).
pub fn parse_facts(output: &str, observed_at: i64) -> Result<Facts, FactsParseError> {
    let mut f = Facts {
        observed_at,
        ..Facts::default()
    };
    let mut ended = false;
    for (i, raw) in output.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = raw.split('\t').collect();
        let get = |k: usize| fields.get(k).copied().unwrap_or("-");
        match fields[0] {
            "os" => {
                f.os_id = opt(get(1)).unwrap_or_default();
                f.os_version = opt(get(2)).unwrap_or_default();
            }
            "arch" => f.machine = get(1).to_owned(),
            "uid" => f.uid = num(get(1), n, "uid")?,
            "systemd" => {
                f.systemd_present = get(1) == "1";
                f.systemd_running = get(2) == "1";
            }
            "hostname" => f.hostname = get(1).trim().to_owned(),
            "ipv4" => f.ipv4.push(parse_address(get(1), get(2), n)?),
            "clock" => f.clock = num(get(1), n, "clock")?,
            "virt" => f.container = opt(get(1)).filter(|v| v != "none"),
            "kmsg" => f.kmsg = get(1) == "1",
            "disk" => {
                f.disk = Some(DiskFree {
                    path: get(1).into(),
                    free_bytes: num(get(2), n, "free bytes")?,
                });
            }
            "file" => {
                let mode = opt(get(4))
                    .map(|m| u32::from_str_radix(&m, 8))
                    .transpose()
                    .map_err(|_| FactsParseError {
                        line: n,
                        detail: format!("mode is not octal: {:?}", get(4)),
                    })?;
                let fact = FileFact {
                    sha256: opt(get(2)),
                    mtime: opt_num(get(3), n, "mtime")?,
                    mode,
                };
                f.files.insert(get(1).into(), fact);
            }
            "binary" => {
                let fact = BinaryFact {
                    sha256: opt(get(2)),
                    version_line: opt(get(3)),
                };
                f.binaries.insert(get(1).into(), fact);
            }
            "unit" => {
                let fact = UnitFact {
                    load_state: opt(get(2)),
                    active_state: opt(get(3)),
                    unit_file_state: opt(get(4)),
                    active_since: opt_num(get(5), n, "active since")?,
                };
                f.units.insert(get(1).to_owned(), fact);
            }
            "end" => ended = true,
            _ => {}
        }
    }
    if !ended {
        return Err(FactsParseError {
            line: output.lines().count(),
            detail: "output ended early (no end record)".to_owned(),
        });
    }
    Ok(f)
}

fn parse_address(iface: &str, cidr: &str, line: usize) -> Result<HostAddress, FactsParseError> {
    let (addr, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(num::<u8>(p, line, "prefix length")?)),
        None => (cidr, None),
    };
    Ok(HostAddress {
        interface: opt(iface),
        addr: addr.parse().map_err(|_| FactsParseError {
            line,
            detail: format!("not an IPv4 address: {addr:?}"),
        })?,
        prefix,
    })
}

/// Runs the facts script on `transport` (as root, one round trip) and parses the answer.
pub async fn gather_facts(
    transport: &dyn Transport,
    req: &FactsRequest,
    timeout: Duration,
) -> Result<Facts, HostError> {
    let exec = ExecRequest::new(facts_script(req))
        .sudo(true)
        .timeout(Some(timeout))
        .describe("gathering facts");
    let what = exec.what();
    let out = transport.exec_checked(exec).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    parse_facts(&out.stdout_text(), now).map_err(|e| HostError::Protocol {
        host: transport.name().to_owned(),
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
