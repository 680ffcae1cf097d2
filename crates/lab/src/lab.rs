//! The `Lab` handle used by tests and the CLI: hosts, ssh files, commands over real ssh,
//! fault controls, spec output, teardown (on drop for labs the process owns, also on panic).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cleanup;
use crate::command::TimedOutput;
use crate::context::{BootTimings, Ctx};
use crate::create::{self, LabOptions};
use crate::error::Result;
use crate::faults;
use crate::footprint::Footprint;
use crate::login_user::{LoginUser, SudoMode};
use crate::readiness::Readiness;
use crate::spec_out::{self, SpecOptions};
use crate::ssh;
use crate::state::LabState;

/// Default limit for [`Lab::exec`].
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// A lab host as the outside sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Host name, node name and ssh alias, e.g. `dev-1`.
    pub name: String,
    /// Address on the lab bridge (eth0).
    pub address: Ipv4Addr,
    /// Address on the second bridge (eth1) of dual-NIC labs.
    pub private_address: Option<Ipv4Addr>,
}

/// A running lab. Dropping a lab created by [`Lab::up`] with `owned` set tears it down.
#[derive(Debug)]
pub struct Lab {
    ctx: Ctx,
    teardown_on_drop: bool,
    boot_timeout: Duration,
    timings: BootTimings,
}

impl Lab {
    /// Creates and boots a lab; returns once every host answers SSH and systemd runs.
    pub fn up(opts: &LabOptions) -> Result<Self> {
        let (ctx, timings) = create::up(opts)?;
        Ok(Self {
            ctx,
            teardown_on_drop: opts.owned,
            boot_timeout: opts.boot_timeout,
            timings,
        })
    }

    /// Boots `hosts` hosts in lab `name`, owned by this process (torn down on drop).
    pub fn boot(name: &str, hosts: u8) -> Result<Self> {
        Self::up(&LabOptions::new(name, hosts))
    }

    /// Opens an existing lab without taking ownership (drop leaves it running).
    pub fn open(name: &str) -> Result<Self> {
        Ok(Self {
            ctx: Ctx::new(LabState::load(name)?),
            teardown_on_drop: false,
            boot_timeout: Duration::from_secs(60),
            timings: BootTimings::default(),
        })
    }

    /// Where the boot's time went (zero for labs opened with [`Lab::open`]).
    pub fn boot_timings(&self) -> BootTimings {
        self.timings
    }

    /// The Proxmox stand-in of a lab booted with `--proxmox`.
    pub fn proxmox(&self) -> Option<&crate::proxmox::ProxmoxLab> {
        self.ctx.state.proxmox.as_ref()
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.ctx.state.name
    }

    /// The lab's state (index, hosts, faults).
    pub fn state(&self) -> &LabState {
        &self.ctx.state
    }

    /// The hosts, in order (the first one is the spec's server).
    pub fn hosts(&self) -> Vec<Host> {
        self.ctx
            .state
            .hosts
            .iter()
            .map(|h| Host {
                name: h.name.clone(),
                address: self.ctx.state.address(h),
                private_address: self.ctx.state.private_address(h),
            })
            .collect()
    }

    /// The machine's own address on the lab bridge: hosts reach services the test binds here
    /// (e.g. a local download server), nothing else outside the lab.
    pub fn gateway(&self) -> Ipv4Addr {
        self.ctx.state.naming().gateway(0)
    }

    /// The lab's directory (`/var/lib/k3sctl-lab/<name>`).
    pub fn dir(&self) -> &Path {
        &self.ctx.paths.dir
    }

    /// ssh_config to pass as `ssh -F`.
    pub fn ssh_config(&self) -> PathBuf {
        self.ctx.paths.ssh_config()
    }

    /// known_hosts with every host's real key.
    pub fn known_hosts(&self) -> PathBuf {
        self.ctx.paths.known_hosts()
    }

    /// Private key that logs in as root on every host.
    pub fn identity(&self) -> PathBuf {
        self.ctx.paths.identity()
    }

    /// The host's root file system as seen from the machine.
    pub fn root_dir(&self, host: &str) -> Result<PathBuf> {
        self.ctx.root_dir(host)
    }

    /// Runs a shell command line on `host` over ssh; returns stdout, fails on non-zero exit.
    /// Containers of the Proxmox stand-in (no sshd) are entered directly, like `pct exec`.
    pub fn exec(&self, host: &str, cmd: &str) -> Result<String> {
        let h = self.ctx.state.host(host)?;
        if self.ctx.state.is_container(host) {
            let out = crate::proxmox::attach::run(&self.ctx, h, cmd, EXEC_TIMEOUT)?;
            if out.code == Some(0) {
                return Ok(out.stdout);
            }
            return Err(crate::error::LabError::Host {
                host: host.to_owned(),
                step: format!("attach `{cmd}`"),
                detail: format!("exit {:?}: {}", out.code, out.stderr.trim()),
                hint: "check the container with `pct status` on the Proxmox host".into(),
            });
        }
        ssh::run_ok(&self.ssh_config(), host, cmd, EXEC_TIMEOUT)
    }

    /// The lab's non-root login user, if it has one.
    pub fn login_user(&self) -> Option<&LoginUser> {
        self.ctx.state.login_user.as_ref()
    }

    /// Changes how the login user's sudo behaves on `host` (e.g. to ask for a password).
    pub fn set_sudo(&self, host: &str, mode: SudoMode) -> Result<()> {
        let Some(user) = self.login_user() else {
            return Err(crate::error::LabError::Invalid {
                what: format!("lab {} has no login user", self.name()),
                hint:
                    "create the lab with a login user (LabOptions::login_user, `up --login-user`)"
                        .into(),
            });
        };
        let user = LoginUser {
            sudo: mode,
            ..user.clone()
        };
        self.exec(host, &user.sudoers_script()).map(drop)
    }

    /// Runs a command on `host` over ssh with a deadline; returns whatever happened.
    pub fn exec_output(&self, host: &str, cmd: &str, limit: Duration) -> Result<TimedOutput> {
        let h = self.ctx.state.host(host)?;
        if self.ctx.state.is_container(host) {
            return crate::proxmox::attach::run(&self.ctx, h, cmd, limit);
        }
        ssh::run(&self.ssh_config(), host, cmd, limit)
    }

    /// `ssh -F <ssh_config> <host>`, to add arguments and run (interactive use).
    pub fn ssh_command(&self, host: &str) -> Result<std::process::Command> {
        self.ctx.state.host(host)?;
        Ok(ssh::ssh_command(&self.ssh_config(), host))
    }

    /// For a container of the Proxmox stand-in: `nsenter` into it, to add the command and its
    /// arguments and run (what `pct exec` does on the node). `None` for other hosts.
    pub fn attach_command(&self, host: &str) -> Result<Option<std::process::Command>> {
        let h = self.ctx.state.host(host)?;
        if !self.ctx.state.is_container(host) {
            return Ok(None);
        }
        let leader = crate::proxmox::attach::leader(&self.ctx, h)?;
        Ok(Some(crate::proxmox::attach::nsenter(leader)))
    }

    /// Powers `host` off cleanly.
    pub fn stop(&mut self, host: &str) -> Result<()> {
        faults::stop(&mut self.ctx, host)
    }

    /// Boots `host` again (after stop, crash or lose) and waits until it is ready.
    pub fn start(&mut self, host: &str) -> Result<()> {
        self.start_until(host, Readiness::SystemRunning)
    }

    /// Boots `host` again and waits only as far as `until` (e.g. [`Readiness::SshAnswers`]
    /// when a unit on it is expected to wait for peers that are down).
    pub fn start_until(&mut self, host: &str, until: Readiness) -> Result<()> {
        faults::start(&mut self.ctx, host, self.boot_timeout, until)
    }

    /// Kills every process of `host` at once.
    pub fn crash(&mut self, host: &str) -> Result<()> {
        faults::crash(&mut self.ctx, host)
    }

    /// Crashes `host` and silences its network until [`Lab::start`].
    pub fn lose(&mut self, host: &str) -> Result<()> {
        faults::lose(&mut self.ctx, host)
    }

    /// Drops all traffic between `host` and each of `peers`, both directions.
    pub fn partition(&mut self, host: &str, peers: &[&str]) -> Result<()> {
        let peers: Vec<String> = peers.iter().map(|p| (*p).to_owned()).collect();
        faults::partition(&mut self.ctx, host, &peers)
    }

    /// Removes the partitions of `host`, or of every host with `None`.
    pub fn heal(&mut self, host: Option<&str>) -> Result<()> {
        faults::heal(&mut self.ctx, host)
    }

    /// Pulls every cable of `host` (it sees NO-CARRIER).
    pub fn cut(&mut self, host: &str) -> Result<()> {
        faults::set_cut(&mut self.ctx, host, true)
    }

    /// Plugs `host`'s cables back in.
    pub fn uncut(&mut self, host: &str) -> Result<()> {
        faults::set_cut(&mut self.ctx, host, false)
    }

    /// Whether `host`'s systemd-nspawn runs.
    pub fn is_running(&self, host: &str) -> Result<bool> {
        let h = self.ctx.state.host(host)?;
        Ok(self.ctx.boot_target(h).running_pid().is_some())
    }

    /// Memory of `host` in KiB: proportional set size of all its processes.
    pub fn memory_kib(&self, host: &str) -> Result<u64> {
        let h = self.ctx.state.host(host)?;
        Ok(self
            .ctx
            .cg
            .pids(&self.ctx.state.name, &h.name)
            .into_iter()
            .filter_map(crate::process::pss_kib)
            .sum())
    }

    /// CPU time (user + system) used so far by everything running in `host` (its cgroup);
    /// sample it twice to see how busy a host is.
    pub fn cpu_used(&self, host: &str) -> Result<std::time::Duration> {
        let h = self.ctx.state.host(host)?;
        crate::cgroup::cpu_used(&self.ctx.cg.host_v2(&self.ctx.state.name, &h.name))
    }

    /// Writes a k3sctl cluster spec for the lab to `path`.
    pub fn write_spec(&self, path: &Path, opts: &SpecOptions) -> Result<()> {
        spec_out::write(&self.ctx.state, path, opts)
    }

    /// Everything the lab has on the machine right now.
    pub fn footprint(&self) -> Footprint {
        Footprint::of(&self.ctx)
    }

    /// Tears the lab down now.
    pub fn down(mut self) -> Result<()> {
        self.teardown_on_drop = false;
        self.teardown_if_current()
    }
}

impl Lab {
    /// Tears down unless the lab on disk is no longer this one (removed, or replaced by a
    /// newer lab of the same name, whose objects must not be touched).
    fn teardown_if_current(&self) -> Result<()> {
        match LabState::load(&self.ctx.state.name) {
            Ok(on_disk) if on_disk.id == self.ctx.state.id => cleanup::teardown(&self.ctx),
            Ok(_) | Err(crate::error::LabError::NoSuchLab { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.teardown_on_drop
            && let Err(e) = self.teardown_if_current()
        {
            eprintln!(
                "k3sctl-lab: teardown of lab {} failed: {e}",
                self.ctx.state.name
            );
        }
    }
}
