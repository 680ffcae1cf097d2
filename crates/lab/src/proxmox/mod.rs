//! The Proxmox stand-in (`k3sctl-lab up --proxmox`): one more host, `<lab>-pve`, plays the
//! Proxmox VE node; the other hosts are its LXC containers (vmids 201, 202, ...) and run no
//! sshd, so only `pct` on the node reaches them.
//!
//! How it works (see the README's "Proxmox stand-in" section):
//! - `/usr/sbin/pct` in the node is the `k3sctl-lab` binary; called as `pct` it passes its
//!   arguments, environment and stdin/stdout/stderr descriptors over a unix socket ([`wire`]) to
//!   the lab's agent ([`agent`]), a `k3sctl-lab pve-agent` process on the machine.
//! - The agent answers from the node's `/etc/pve/lxc/<vmid>.conf` files ([`conf`]) with real
//!   `pct`'s messages and exit codes ([`pct`]); `exec` enters the container's namespaces with
//!   `nsenter` using the caller's own descriptors ([`attach`]); `start`/`stop`/`reboot` boot
//!   and power off the container's systemd-nspawn.
//! - Each container applies what its .conf says at boot, where the lab can ([`shape`]).

pub mod agent;
pub(crate) mod attach;
pub mod client;
pub mod conf;
pub mod pct;
pub(crate) mod setup;
pub(crate) mod shape;
pub mod wire;

use serde::{Deserialize, Serialize};

/// First vmid given to containers.
pub const FIRST_VMID: u32 = 201;
/// Name of the lab's cgroup (beside the hosts') that holds the agent, so teardown kills it.
pub const AGENT_CGROUP: &str = "pve-agent";

/// The Proxmox part of a lab's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxmoxLab {
    /// The host playing the Proxmox node (also its node name in `/etc/pve/nodes/`).
    pub node: String,
    /// The containers: lab host name and vmid.
    pub containers: Vec<Container>,
}

/// One LXC container of the stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The lab host that is this container.
    pub host: String,
    /// Its vmid.
    pub vmid: u32,
}

impl ProxmoxLab {
    /// The container with `vmid`.
    pub fn by_vmid(&self, vmid: u32) -> Option<&Container> {
        self.containers.iter().find(|c| c.vmid == vmid)
    }

    /// The container that is lab host `host`.
    pub fn by_host(&self, host: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.host == host)
    }

    /// Path of a container's .conf inside the node (`/etc/pve/lxc` is a link to it).
    pub fn conf_path(&self, vmid: u32) -> String {
        format!("/etc/pve/nodes/{}/lxc/{vmid}.conf", self.node)
    }
}

/// The .conf a container gets when the lab is created: the privileged setup K3s needs (the
/// combination used by techno-tim's k3s-ansible `roles/proxmox_lxc` and Proxmox K3s guides, see
/// ../shared notes ha-lxc-contracts §2.4), with /dev/kmsg bound in.
pub fn default_conf(hostname: &str, address: &str, gateway: &str) -> String {
    format!(
        "arch: amd64\ncores: 2\nfeatures: nesting=1\nhostname: {hostname}\nmemory: 2048\n\
net0: name=eth0,bridge=vmbr0,firewall=0,gw={gateway},hwaddr=BC:24:11:00:00:01,ip={address}/24,type=veth\n\
onboot: 1\nostype: debian\nrootfs: local-lvm:vm-disk-0,size=8G\nswap: 0\n\
lxc.apparmor.profile: unconfined\nlxc.cgroup2.devices.allow: a\nlxc.cap.drop: \n\
lxc.mount.auto: proc:rw sys:rw\n\
lxc.mount.entry: /dev/kmsg dev/kmsg none defaults,bind,create=file\n"
    )
}
