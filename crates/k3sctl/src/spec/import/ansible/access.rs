//! How converted hosts are reached: SSH settings from Ansible connection vars, and the Proxmox
//! host that runs `pct` for hosts with `pct_id`.

use super::convert::{ConvertOptions, error};
use super::inventory::{Inventory, InventoryError, Vars};
use crate::spec::model::{Host, HostDefaults, ProxmoxHost, SshSettings};

/// Group names whose first host is the Proxmox host for `pct_id` hosts.
pub(super) const PROXMOX_GROUPS: &[&str] = &[
    "proxmox",
    "proxmox_hosts",
    "proxmox_host",
    "pve",
    "pve_hosts",
];

pub(super) fn find_proxmox(
    inventory: &Inventory,
    vars: &Vars,
    options: &ConvertOptions,
    warnings: &mut Vec<String>,
) -> Result<ProxmoxHost, InventoryError> {
    let from_flag_or_var = options
        .proxmox_host
        .clone()
        .or_else(|| vars.get("proxmox_host").cloned())
        .or_else(|| vars.get("pve_host").cloned());
    if let Some(address) = from_flag_or_var {
        let name = address
            .split('.')
            .next()
            .unwrap_or("pve")
            .to_ascii_lowercase();
        let name = if name.parse::<u8>().is_ok() || name.is_empty() {
            "pve".to_owned()
        } else {
            name
        };
        return Ok(ProxmoxHost {
            name,
            address,
            ssh: Some(SshSettings {
                user: Some("root".to_owned()),
                ..SshSettings::default()
            }),
        });
    }
    for group in PROXMOX_GROUPS {
        if let Some(host) = inventory.members(group).first() {
            let host_vars = inventory.vars_of(host);
            let mut ssh = ssh_settings(&host_vars).unwrap_or_else(|| SshSettings {
                user: Some("root".to_owned()),
                ..SshSettings::default()
            });
            // Its known_hosts file, jump host, ... as for the K3s hosts.
            super::extras::ssh_args(&host_vars, &mut ssh, warnings);
            return Ok(ProxmoxHost {
                name: host.to_ascii_lowercase(),
                address: host_vars
                    .get("ansible_host")
                    .cloned()
                    .unwrap_or_else(|| host.clone()),
                ssh: Some(ssh),
            });
        }
    }
    Err(error(format!(
        "hosts have pct_id but no Proxmox host is named: add a group ({}) or a proxmox_host var, or pass --proxmox-host ADDRESS",
        PROXMOX_GROUPS.join(", ")
    )))
}

pub(super) fn ssh_settings(vars: &Vars) -> Option<SshSettings> {
    let settings = SshSettings {
        user: vars.get("ansible_user").cloned(),
        port: vars.get("ansible_port").and_then(|port| port.parse().ok()),
        identity_file: vars.get("ansible_ssh_private_key_file").cloned(),
        ..SshSettings::default()
    };
    (settings != SshSettings::default()).then_some(settings)
}

/// Moves SSH settings shared by every SSH host into `hostDefaults`.
pub(super) fn hoist_ssh_defaults(hosts: &mut [Host]) -> Option<HostDefaults> {
    let ssh_hosts: Vec<&Host> = hosts.iter().filter(|host| host.pct.is_none()).collect();
    let first = ssh_hosts.first()?.ssh.clone()?;
    if !ssh_hosts
        .iter()
        .all(|host| host.ssh.as_ref() == Some(&first))
    {
        return None;
    }
    for host in hosts.iter_mut().filter(|host| host.pct.is_none()) {
        host.ssh = None;
    }
    Some(HostDefaults {
        ssh: Some(first),
        sudo: None,
    })
}
