//! Creating the Proxmox stand-in: the node host in the state, the containers' and the node's
//! files before boot, and the agent after boot.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Container, FIRST_VMID, ProxmoxLab, agent, default_conf, shape};
use crate::context::Ctx;
use crate::error::{LabError, Result, fs_step};
use crate::state::{HostState, LabState};

/// Name of the node host of lab `lab`.
pub fn node_name(lab: &str) -> String {
    format!("{lab}-pve")
}

/// Makes every host so far a container (vmids 201, 202, ...) and adds the node host after them.
pub fn add_node(state: &mut LabState) {
    let containers = (FIRST_VMID..)
        .zip(&state.hosts)
        .map(|(vmid, h)| Container {
            host: h.name.clone(),
            vmid,
        })
        .collect();
    let node = node_name(&state.name);
    let number = u8::try_from(state.hosts.len() + 1).unwrap_or(u8::MAX);
    state.hosts.push(HostState {
        name: node.clone(),
        number,
        cut: false,
        lost: false,
        partitioned_from: BTreeSet::new(),
    });
    state.proxmox = Some(ProxmoxLab { node, containers });
}

/// Writes the containers' LXC unit (and masks their sshd), and the node's .conf files,
/// `/etc/pve/lxc` link and `pct`.
pub fn prepare_files(ctx: &Ctx) -> Result<()> {
    let Some(px) = &ctx.state.proxmox else {
        return Ok(());
    };
    let p = &ctx.paths;
    let gateway = ctx.state.naming().gateway(0).to_string();
    let node_upper = p.upper(&px.node);
    let step = |what: &str| format!("host {}: {what}", px.node);
    for c in &px.containers {
        shape::install(&c.host, &p.upper(&c.host))?;
        let h = ctx.state.host(&c.host)?;
        let conf = node_upper.join(px.conf_path(c.vmid).trim_start_matches('/'));
        if let Some(dir) = conf.parent() {
            fs_err::create_dir_all(dir).map_err(fs_step(step("create /etc/pve")))?;
        }
        let text = default_conf(&c.host, &ctx.state.address(h).to_string(), &gateway);
        fs_err::write(&conf, text).map_err(fs_step(step("write a container .conf")))?;
    }
    let link = node_upper.join("etc/pve/lxc");
    if link.symlink_metadata().is_err() {
        fs_err::os::unix::fs::symlink(format!("nodes/{}/lxc", px.node), &link)
            .map_err(fs_step(step("link /etc/pve/lxc")))?;
    }
    let pct = node_upper.join("usr/sbin/pct");
    fs_err::create_dir_all(node_upper.join("usr/sbin")).map_err(fs_step(step("/usr/sbin")))?;
    fs_err::copy(crate::spec_out::find_lab_binary()?, &pct)
        .map_err(fs_step(step("install pct")))?;
    Ok(())
}

/// Starts `k3sctl-lab pve-agent` for the lab and waits until its socket exists.
pub fn start_agent(ctx: &Ctx) -> Result<()> {
    let Some(px) = &ctx.state.proxmox else {
        return Ok(());
    };
    let socket = agent::socket_path(&ctx.state, px);
    let _ = fs_err::remove_file(&socket);
    let log = ctx.paths.dir.join("pve-agent.log");
    let out = fs_err::File::create(&log).map_err(fs_step("create pve-agent.log"))?;
    let err = out.try_clone().map_err(fs_step("create pve-agent.log"))?;
    let bin = crate::spec_out::find_lab_binary()?;
    let mut cmd = Command::new("setsid");
    cmd.arg("-f")
        .arg(&bin)
        .args(["pve-agent", "--lab", &ctx.state.name])
        .stdin(Stdio::null())
        .stdout(out.into_parts().0)
        .stderr(err.into_parts().0);
    let status = crate::inherit::status_alone(&mut cmd).map_err(|e| LabError::Invalid {
        what: format!("cannot start the Proxmox agent {}: {e}", bin.display()),
        hint: "install util-linux (setsid)".into(),
    })?;
    let start = Instant::now();
    while status.success() && start.elapsed() < Duration::from_secs(10) {
        if socket.exists() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(LabError::Invalid {
        what: format!(
            "the Proxmox agent did not come up: {}",
            crate::boot::tail(&log, 5)
        ),
        hint: format!("see {}", log.display()),
    })
}
