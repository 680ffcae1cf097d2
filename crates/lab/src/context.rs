//! One lab's state plus what every operation needs next to it (paths, cgroup trees), and the
//! per-host building blocks: prepare, launch, wait, set links.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::boot::BootTarget;
use crate::cgroup::Hierarchies;
use crate::error::{LabError, Result};
use crate::network;
use crate::overlay;
use crate::paths::LabPaths;
use crate::readiness::{self, Readiness, ReadyProbe};
use crate::state::{HostState, LabState};

/// Where the time of a boot went, each measured from the start of the boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootTimings {
    /// Roots mounted, networks and cgroups made, every nspawn started.
    pub launch: Duration,
    /// The last host's sshd accepts connections.
    pub ssh: Duration,
    /// Every host's systemd reports `running`.
    pub running: Duration,
}

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
        for (nic, addr) in (0u8..).zip(self.state.addresses(h)) {
            network::ensure_nic(&h.name, naming, h.number, nic, addr, !(h.cut || h.lost))?;
        }
        self.cg.create(&self.state.name, &h.name)?;
        if let Some(px) = &self.state.proxmox
            && let Some(ct) = px.by_host(&h.name)
        {
            // The container reads its .conf at each start, as LXC does.
            let conf = p
                .upper(&px.node)
                .join(px.conf_path(ct.vmid).trim_start_matches('/'));
            let text = fs_err::read_to_string(&conf).unwrap_or_default();
            crate::proxmox::shape::write_settings(&h.name, &p.root(&h.name), &text)?;
        }
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

    /// Launches the given hosts and waits until all are ready (hosts in parallel).
    pub fn boot_and_wait(
        &self,
        hosts: &[HostState],
        timeout: Duration,
        until: Readiness,
    ) -> Result<BootTimings> {
        let start = Instant::now();
        per_host(hosts, "start", |h| {
            self.prepare(h)?;
            self.boot_target(h).launch().map(drop)
        })?;
        let launched = start.elapsed();
        let ssh = self.wait_ready(hosts, timeout, until)?;
        Ok(BootTimings {
            launch: launched,
            ssh: launched + ssh,
            running: start.elapsed(),
        })
    }

    /// Waits until every host answers SSH and systemd runs; reports every host that failed.
    /// Returns when the last host's sshd answered.
    pub fn wait_ready(
        &self,
        hosts: &[HostState],
        timeout: Duration,
        until: Readiness,
    ) -> Result<Duration> {
        let config = self.paths.ssh_config();
        let ssh_up = per_host(hosts, "become ready", |h| {
            if self.state.is_container(&h.name) {
                return crate::proxmox::attach::wait_ready(self, h, timeout, until);
            }
            let target = self.boot_target(h);
            let probe = ReadyProbe {
                lab: &self.state.name,
                host: &h.name,
                address: self.state.address(h),
                ssh_config: &config,
                until,
            };
            readiness::wait_ready(probe, timeout, || target.running_pid().is_some())
        })?;
        Ok(ssh_up.into_iter().max().unwrap_or_default())
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

    /// Runs `script` as root over ssh on every host in parallel.
    pub fn on_every_host(&self, what: &str, script: &str) -> Result<()> {
        let config = self.paths.ssh_config();
        per_host(&self.state.hosts, what, |h| {
            crate::ssh::run_ok(&config, &h.name, script, Duration::from_secs(60))
                .map(drop)
                .map_err(|e| LabError::Host {
                    host: h.name.clone(),
                    step: what.to_owned(),
                    detail: e.to_string(),
                    hint:
                        "check the host with `k3sctl-lab exec` and its console.log in the lab dir"
                            .into(),
                })
        })
        .map(drop)
    }
}

/// Runs `f` for every host in parallel; fails with every host's error when any fails.
fn per_host<T: Send>(
    hosts: &[HostState],
    what: &str,
    f: impl Fn(&HostState) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let results: Vec<Result<T>> = thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = hosts.iter().map(|h| s.spawn(move || f(h))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LabError::Invalid {
                        what: format!("a thread failed to {what}"),
                        hint: "report this as a bug in crates/lab".into(),
                    })
                })
            })
            .collect()
    });
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(ok),
        1 => Err(errors.remove(0)),
        n => Err(LabError::Invalid {
            what: format!(
                "{n} hosts failed to {what}:\n{}",
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
