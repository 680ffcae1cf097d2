//! The lab's state file: what exists, so separate `k3sctl-lab` invocations and cleanup of
//! crashed runs know the lab's index, hosts and injected faults.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result, fs_step};
use crate::naming::Naming;
use crate::paths::LabPaths;
use crate::process;

/// Persistent description of one lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    /// The lab's name.
    pub name: String,
    /// Unique id of this incarnation: a handle to an earlier lab of the same name never
    /// tears down a newer one.
    pub id: String,
    /// The lab's index (selects subnets and object names).
    pub index: u8,
    /// Whether hosts have a second NIC on a second bridge.
    pub dual_nic: bool,
    /// Base image directory the overlays use.
    pub image: PathBuf,
    /// Process owning the lab (tests, `up --hold`); the lab is an orphan once it is gone.
    pub owner: Option<Owner>,
    /// The hosts, in order.
    pub hosts: Vec<HostState>,
    /// The non-root login user of every host, if the lab has one (absent in older state files).
    #[serde(default)]
    pub login_user: Option<crate::login_user::LoginUser>,
    /// The Proxmox stand-in (`up --proxmox`): which host is the node, which are containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxmox: Option<crate::proxmox::ProxmoxLab>,
}

/// Identifies a process across PID reuse.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    /// Process ID.
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_ticks: u64,
}

impl Owner {
    /// The current process.
    pub fn current() -> Option<Self> {
        let pid = std::process::id();
        process::start_ticks(pid).map(|start_ticks| Self { pid, start_ticks })
    }

    /// Whether the owner still runs.
    pub fn alive(&self) -> bool {
        process::start_ticks(self.pid) == Some(self.start_ticks) && process::alive(self.pid)
    }
}

/// Persistent description of one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostState {
    /// Host name (also node name).
    pub name: String,
    /// 1-based number inside the lab.
    pub number: u8,
    /// Cable pulled (`cut`).
    pub cut: bool,
    /// Crashed and silent (`lose`), until `start`.
    pub lost: bool,
    /// Peers whose traffic this host drops (`partition`).
    pub partitioned_from: BTreeSet<String>,
}

impl LabState {
    /// Network naming of this lab.
    pub fn naming(&self) -> Naming {
        Naming { index: self.index }
    }

    /// File layout of this lab.
    pub fn paths(&self) -> LabPaths {
        LabPaths::new(&self.name)
    }

    /// The host called `name`, or an error listing the hosts.
    pub fn host(&self, name: &str) -> Result<&HostState> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| self.unknown_host(name))
    }

    /// Whether `host` is a container of the Proxmox stand-in (reached only through `pct`).
    pub fn is_container(&self, host: &str) -> bool {
        self.proxmox
            .as_ref()
            .is_some_and(|p| p.by_host(host).is_some())
    }

    /// Mutable access to the host called `name`.
    pub fn host_mut(&mut self, name: &str) -> Result<&mut HostState> {
        let err = self.unknown_host(name);
        self.hosts.iter_mut().find(|h| h.name == name).ok_or(err)
    }

    fn unknown_host(&self, name: &str) -> LabError {
        let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        LabError::Invalid {
            what: format!("lab {} has no host {name:?}", self.name),
            hint: format!("use one of: {}", known.join(", ")),
        }
    }

    /// `host`'s eth0 address (on the lab bridge).
    pub fn address(&self, host: &HostState) -> Ipv4Addr {
        self.naming().address(host.number, 0)
    }

    /// `host`'s eth1 address on dual-NIC labs.
    pub fn private_address(&self, host: &HostState) -> Option<Ipv4Addr> {
        self.dual_nic.then(|| self.naming().address(host.number, 1))
    }

    /// Every address of `host` (eth0, then eth1 on dual-NIC labs).
    pub fn addresses(&self, host: &HostState) -> Vec<Ipv4Addr> {
        let n = self.naming();
        let mut out = vec![n.address(host.number, 0)];
        if self.dual_nic {
            out.push(n.address(host.number, 1));
        }
        out
    }

    /// Number of NICs per host.
    pub fn nics(&self) -> u8 {
        if self.dual_nic { 2 } else { 1 }
    }

    /// A fresh incarnation id (random UUID from the kernel).
    pub fn new_id() -> Result<String> {
        fs_err::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|s| s.trim().to_owned())
            .map_err(fs_step("generate lab id"))
    }

    /// Reads the state of lab `name`.
    pub fn load(name: &str) -> Result<Self> {
        let path = LabPaths::new(name).state();
        let text = match fs_err::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NoSuchLab {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(fs_step(format!("lab {name}: read state"))(e)),
        };
        serde_json::from_str(&text).map_err(|e| LabError::BadState {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// Writes the state atomically (temp file + rename).
    pub fn save(&self) -> Result<()> {
        let paths = self.paths();
        let step = format!("lab {}: write state", self.name);
        fs_err::create_dir_all(&paths.dir).map_err(fs_step(step.clone()))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::BadState {
            path: paths.state().display().to_string(),
            detail: e.to_string(),
        })?;
        let tmp = paths
            .dir
            .join(format!(".state.json.{}", std::process::id()));
        fs_err::write(&tmp, text).map_err(fs_step(step.clone()))?;
        fs_err::rename(&tmp, paths.state()).map_err(fs_step(step))
    }
}
