//! Bringing a lab up: base image, registration (index, state file), key pair, per-host roots
//! and identities, ssh files with the real host keys, network, cgroups, boot, readiness.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cleanup;
use crate::context::{BootTimings, Ctx};
use crate::error::{LabError, Result, fs_step};
use crate::identity::{self, HostIdentity};
use crate::image::{self, RECIPE};
use crate::login_user::LoginUser;
use crate::naming;
use crate::network;
use crate::paths;
use crate::readiness::Readiness;
use crate::registry;
use crate::ssh::{self, SshHost};
use crate::state::{HostState, LabState, Owner};

/// What lab to create.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Lab name (DNS label; hosts are called `<name>-1`, `<name>-2`, ...).
    pub name: String,
    /// Number of hosts.
    pub hosts: u8,
    /// Give every host a second NIC on a second bridge.
    pub dual_nic: bool,
    /// How long booting may take until every host is ready.
    pub boot_timeout: Duration,
    /// Tie the lab to the current process: cleanup sweeps it once the process is gone.
    pub owned: bool,
    /// A non-root login user on every host (root keeps its login for the lab itself).
    pub login_user: Option<LoginUser>,
    /// Add a host `<name>-pve` playing a Proxmox VE node whose LXC containers are the other
    /// hosts (reached only through `pct` there; see [`crate::proxmox`]).
    pub proxmox: bool,
}

impl LabOptions {
    /// `hosts` single-NIC hosts, owned by the current process, 60 s boot timeout.
    pub fn new(name: &str, hosts: u8) -> Self {
        Self {
            name: name.to_owned(),
            hosts,
            dual_nic: false,
            boot_timeout: Duration::from_secs(60),
            owned: true,
            login_user: None,
            proxmox: false,
        }
    }
}

/// Fails unless running as root.
pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// Creates and boots the lab; on failure removes whatever was created.
pub(crate) fn up(opts: &LabOptions) -> Result<(Ctx, BootTimings)> {
    require_root()?;
    naming::validate_lab_name(&opts.name)?;
    naming::validate_host_count(opts.hosts)?;
    crate::limits::ensure(u64::from(opts.hosts) + u64::from(opts.proxmox))?;
    if opts.proxmox {
        naming::validate_host_count(opts.hosts.saturating_add(1))?;
    }
    let image = image::ensure(&RECIPE, &paths::cache_root())?;
    let mut state = LabState {
        name: opts.name.clone(),
        id: LabState::new_id()?,
        index: 0,
        dual_nic: opts.dual_nic,
        image,
        owner: if opts.owned { Owner::current() } else { None },
        login_user: opts.login_user.clone(),
        hosts: (1..=opts.hosts)
            .map(|n| HostState {
                name: naming::host_name(&opts.name, n),
                number: n,
                cut: false,
                lost: false,
                partitioned_from: BTreeSet::new(),
            })
            .collect(),
        proxmox: None,
    };
    if opts.proxmox {
        crate::proxmox::setup::add_node(&mut state);
    }
    let ctx = Ctx::new(registry::register(state)?);
    match provision(&ctx, opts.boot_timeout) {
        Ok(timings) => Ok((ctx, timings)),
        Err(e) => {
            // Keep the first error; a cleanup failure would only hide it.
            if let Err(clean) = cleanup::teardown(&ctx) {
                eprintln!("k3sctl-lab: cleanup after failed start also failed: {clean}");
            }
            Err(e)
        }
    }
}

fn provision(ctx: &Ctx, timeout: Duration) -> Result<BootTimings> {
    let state = &ctx.state;
    let p = &ctx.paths;
    let naming = state.naming();
    let login_key = ssh::ensure_key_pair(&state.name, &p.identity())?;
    for nic in 0..state.nics() {
        network::ensure_bridge(naming, nic)?;
    }
    let peers: Vec<(String, Ipv4Addr)> = state
        .hosts
        .iter()
        .map(|h| (h.name.clone(), naming.address(h.number, 0)))
        .collect();
    let mut ssh_hosts = Vec::new();
    for h in &state.hosts {
        fs_err::create_dir_all(p.host_dir(&h.name))
            .map_err(fs_step(format!("host {}: create dir", h.name)))?;
        let host_key = identity::write(
            &p.upper(&h.name),
            &HostIdentity {
                name: &h.name,
                authorized_key: &login_key,
                peers: &peers,
            },
        )?;
        ssh_hosts.push(SshHost {
            name: h.name.clone(),
            addresses: state.addresses(h),
            host_key,
        });
    }
    write_ssh_files(ctx, &ssh_hosts)?;
    if state.proxmox.is_some() {
        crate::proxmox::setup::prepare_files(ctx)?;
    }
    let timings = ctx.boot_and_wait(&state.hosts, timeout, Readiness::SystemRunning)?;
    if state.proxmox.is_some() {
        crate::proxmox::setup::start_agent(ctx)?;
    }
    if let Some(user) = &state.login_user {
        ctx.on_every_host("create the login user", &user.setup_script(&login_key))?;
    }
    Ok(timings)
}

fn write_ssh_files(ctx: &Ctx, hosts: &[SshHost]) -> Result<()> {
    let p = &ctx.paths;
    let step = format!("lab {}: write ssh files", ctx.state.name);
    fs_err::write(p.known_hosts(), ssh::known_hosts(hosts)).map_err(fs_step(step.clone()))?;
    fs_err::write(
        p.ssh_config(),
        ssh::ssh_config(hosts, &p.identity(), &p.known_hosts()),
    )
    .map_err(fs_step(step))
}
