//! One lab's state plus what every operation needs next to it (paths, cgroup trees), and the
//! per-host building blocks: prepare, launch, wait, set links.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crate::boot::BootTarget;
use crate::cgroup::Hierarchies;
use crate::error::{LabError, Result};
use crate::network;
use crate::overlay;
use crate::paths::LabPaths;
use crate::readiness::{self, ReadyProbe};
use crate::state::{HostState, LabState};

/// A lab loaded from (or about to be written to) its state file.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub state: LabState,
    pub paths: LabPaths,
    pub cg: Hierarchies,
}

impl Ctx {
    pub fn new(state: LabState) -> Self {
        Self {
            paths: state.paths(),
            state,
            cg: Hierarchies::detect(),
        }
    }

    pub fn boot_target(&self, h: &HostState) -> BootTarget {
        BootTarget {
            host: h.name.clone(),
            machine: self.state.naming().machine(h.number),
            root: self.paths.root(&h.name),
            cgroups: self.cg.host_dirs(&self.state.name, &h.name),
            pid_file: self.paths.pid_file(&h.name),
            console_log: self.paths.console_log(&h.name),
            lock_record: self.paths.nspawn_lock_record(&h.name),
        }
    }

    pub fn address(&self, h: &HostState) -> Ipv4Addr {
        self.state.naming().address(h.number, 0)
    }

    /// Mounts the root, builds namespace and NICs and cgroups (all idempotent).
    pub fn prepare(&self, h: &HostState) -> Result<()> {
        let p = &self.paths;
        overlay::mount(
            &h.name,
            &self.state.image,
            &p.upper(&h.name),
            &p.work(&h.name),
            &p.root(&h.name),
        )?;
        let naming = self.state.naming();
        network::ensure_netns(&h.name, naming, h.number)?;
        for (nic, addr) in self.state.addresses(h).into_iter().enumerate() {
            let nic = u8::try_from(nic).unwrap_or(0);
            network::ensure_nic(&h.name, naming, h.number, nic, addr, !(h.cut || h.lost))?;
        }
        self.cg.create(&self.state.name, &h.name)?;
        Ok(())
    }

    /// Puts the host's cables in or out according to its cut/lost flags.
    pub fn apply_links(&self, h: &HostState) -> Result<()> {
        let connected = !(h.cut || h.lost);
        for nic in 0..self.state.nics() {
            let outer = self.state.naming().outer_veth(h.number, nic);
            network::set_outer(&h.name, &outer, connected)?;
        }
        Ok(())
    }

    /// Launches the given hosts and waits until all are ready (in parallel).
    pub fn boot_and_wait(&self, hosts: &[HostState], timeout: Duration) -> Result<()> {
        for h in hosts {
            self.prepare(h)?;
            self.boot_target(h).launch()?;
        }
        self.wait_ready(hosts, timeout)
    }

    /// Waits until every host answers SSH and systemd runs; reports every host that failed.
    pub fn wait_ready(&self, hosts: &[HostState], timeout: Duration) -> Result<()> {
        let config = self.paths.ssh_config();
        let results: Vec<Result<Duration>> = thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| {
                    let config = &config;
                    s.spawn(move || {
                        let target = self.boot_target(h);
                        let probe = ReadyProbe {
                            lab: &self.state.name,
                            host: &h.name,
                            address: self.address(h),
                            ssh_config: config,
                        };
                        readiness::wait_ready(probe, timeout, || target.running_pid().is_some())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::Invalid {
                            what: "a readiness thread panicked".into(),
                            hint: "report this as a bug in crates/lab".into(),
                        })
                    })
                })
                .collect()
        });
        let mut errors: Vec<LabError> = results.into_iter().filter_map(Result::err).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(LabError::Invalid {
                what: format!(
                    "{} hosts did not become ready:\n{}",
                    errors.len(),
                    errors
                        .iter()
                        .map(|e| format!("- {e}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                hint: "see each host's console.log in the lab dir".into(),
            }),
        }
    }

    /// The host's merged root directory.
    pub fn root_dir(&self, host: &str) -> Result<PathBuf> {
        let h = self.state.host(host)?;
        Ok(self.paths.root(&h.name))
    }

    /// Saves the state under the lab lock.
    pub fn save(&self) -> Result<()> {
        self.state.save()
    }
}
