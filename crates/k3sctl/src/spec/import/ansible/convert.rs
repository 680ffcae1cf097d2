//! Inventory → [`Cluster`]: which hosts are servers and agents, how they are reached, and which
//! K3s settings the inventory vars carry. Anything that cannot be carried over is a warning.

use super::access::{find_proxmox, hoist_ssh_defaults, ssh_settings};
use super::inventory::{Inventory, InventoryError, Vars};
use super::settings::{cluster_config, k3s_spec, parse_bool};
use crate::spec::model::{
    ApiVersion, Cluster, ClusterSpec, Host, Kind, Metadata, PctTarget, ProxmoxHost, Role,
};
use crate::spec::taint::is_dns_subdomain;

/// Group names that hold servers (k3s-ansible, common playbooks, seed 003).
const SERVER_GROUPS: &[&str] = &[
    "server",
    "servers",
    "master",
    "masters",
    "k3s_server",
    "k3s_servers",
    "k3s_master",
    "k3s_masters",
    "k3s_controllers",
    "k3s_controller",
    "controllers",
    "control_plane",
];
/// Group names that hold agents.
const AGENT_GROUPS: &[&str] = &[
    "agent",
    "agents",
    "node",
    "nodes",
    "worker",
    "workers",
    "k3s_agent",
    "k3s_agents",
    "k3s_worker",
    "k3s_workers",
    "k3s_node",
    "k3s_nodes",
];
/// Vars that are read by the conversion or are plain Ansible connection details.
const KNOWN_VARS: &[&str] = &[
    "ansible_host",
    "ansible_user",
    "ansible_port",
    "ansible_ssh_private_key_file",
    "ansible_become",
    "ansible_python_interpreter",
    "ansible_connection",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "airgap_dir",
    "extra_server_args",
    "extra_agent_args",
    "server_config_yaml",
    "agent_config_yaml",
    "extra_service_envs",
    "extra_install_envs",
    "registries_config_yaml",
    "pct_id",
    "node_name",
    "k3s_version",
    "k3s_target_version",
    "k3s_channel",
    "api_endpoint",
    "api_port",
    "token",
    "k3s_token",
    "cluster_cidr",
    "k3s_cluster_cidr",
    "service_cidr",
    "k3s_service_cidr",
    "cluster_dns",
    "k3s_cluster_dns",
    "proxmox_host",
    "pve_host",
];

/// Choices the inventory cannot answer.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// `metadata.name` of the produced spec.
    pub name: String,
    /// Address of the Proxmox host for `pct_id` hosts, when the inventory does not name one.
    pub proxmox_host: Option<String>,
}

/// The produced spec and what could not be carried over.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The spec.
    pub cluster: Cluster,
    /// Things ignored or guessed, one sentence each.
    pub warnings: Vec<String>,
}

pub(super) fn error(message: impl Into<String>) -> InventoryError {
    InventoryError {
        line: 0,
        message: message.into(),
    }
}

/// Converts an inventory into a spec.
pub fn convert(
    inventory: &Inventory,
    options: &ConvertOptions,
) -> Result<Conversion, InventoryError> {
    let mut warnings = Vec::new();
    let role_members = |names: &[&str]| -> Vec<String> {
        let mut members = Vec::new();
        for name in names {
            for host in inventory.members(name) {
                if !members.contains(&host) {
                    members.push(host);
                }
            }
        }
        members
    };
    let servers = role_members(SERVER_GROUPS);
    let agents = role_members(AGENT_GROUPS);
    if servers.is_empty() {
        return Err(error(format!(
            "no server group found; expected one of: {}",
            SERVER_GROUPS.join(", ")
        )));
    }
    if let Some(both) = servers.iter().find(|host| agents.contains(host)) {
        return Err(error(format!(
            "host `{both}` is in both a server group and an agent group"
        )));
    }
    let agent_group_names: Vec<&str> = AGENT_GROUPS.to_vec();
    let mut proxmox: Option<ProxmoxHost> = None;
    let mut hosts = Vec::new();
    for (inventory_name, role) in servers
        .iter()
        .map(|h| (h, Role::Server))
        .chain(agents.iter().map(|h| (h, Role::Agent)))
    {
        let vars = inventory.vars_of(inventory_name);
        let name = node_name(inventory_name, &vars, &mut warnings);
        let address = vars
            .get("ansible_host")
            .or_else(|| vars.get("pct_id").and(vars.get("node_name")))
            .cloned()
            .unwrap_or_else(|| inventory_name.clone());
        let mut host = Host {
            sudo: vars.get("ansible_become").and_then(|v| parse_bool(v)),
            ..Host::new(name.clone(), address, role)
        };
        if role == Role::Agent {
            host.group = agent_subgroup(inventory, inventory_name, &agent_group_names);
        }
        if let Some(vmid) = vars.get("pct_id") {
            let vmid = vmid.parse().map_err(|_| {
                error(format!(
                    "host `{inventory_name}`: pct_id `{vmid}` is not a number"
                ))
            })?;
            let pve = match &proxmox {
                Some(pve) => pve.clone(),
                None => {
                    let found = find_proxmox(inventory, &vars, options, &mut warnings)?;
                    proxmox = Some(found.clone());
                    found
                }
            };
            host.pct = Some(PctTarget {
                autostart: None,
                proxmox_host: pve.name,
                vmid,
            });
        } else {
            let mut ssh = ssh_settings(&vars).unwrap_or_default();
            super::extras::ssh_args(&vars, &mut ssh, &mut warnings);
            host.ssh = (ssh != Default::default()).then_some(ssh);
        }
        for key in vars.keys() {
            if !KNOWN_VARS.contains(&key.as_str()) {
                let note = format!("variable `{key}` is not used by k3sctl and was ignored");
                if !warnings.contains(&note) {
                    warnings.push(note);
                }
            }
        }
        hosts.push(host);
    }
    let first = servers
        .first()
        .map(|host| inventory.vars_of(host))
        .unwrap_or_default();
    let mut k3s = k3s_spec(&first, &mut warnings);
    super::extras::airgap(&first, &mut k3s, &mut warnings);
    let mut cluster = cluster_config(&first, &mut warnings);
    // k3s-ansible sets these for the server and agent groups: read them from the first host
    // of each role.
    let first_agent = agents
        .first()
        .map(|host| inventory.vars_of(host))
        .unwrap_or_default();
    let mut config_vars = first.clone();
    for var in ["extra_agent_args", "agent_config_yaml"] {
        config_vars.remove(var);
        if let Some(value) = first_agent.get(var) {
            config_vars.insert(var.to_owned(), value.clone());
        }
    }
    let mut marks = super::extras::RoleMarks::default();
    super::extras::k3s_config(&config_vars, &mut cluster, &mut marks, &mut warnings);
    super::extras::env_vars(&first, &mut k3s, &mut cluster, &mut marks, &mut warnings);
    let mut registries = Default::default();
    super::extras::registries(&first, &mut registries, &mut warnings);
    for host in &mut hosts {
        let of_role = match host.role {
            Role::Server => &marks.server,
            Role::Agent => &marks.agent,
        };
        host.labels.extend(of_role.labels.clone());
        host.taints.extend(of_role.taints.iter().cloned());
    }
    let host_defaults = hoist_ssh_defaults(&mut hosts);
    Ok(Conversion {
        cluster: Cluster {
            api_version: ApiVersion::V1Alpha1,
            kind: Kind::Cluster,
            metadata: Metadata {
                name: options.name.clone(),
            },
            spec: ClusterSpec {
                host_defaults,
                proxmox_hosts: proxmox.into_iter().collect(),
                lxc: Default::default(),
                hosts,
                join_concurrency: None,
                groups: Default::default(),
                k3s,
                cluster,
                registries,
                kubeconfigs: Vec::new(),
                upgrade: Default::default(),
                addons: Default::default(),
            },
        },
        warnings,
    })
}

fn node_name(inventory_name: &str, vars: &Vars, warnings: &mut Vec<String>) -> String {
    let wanted = vars.get("node_name").map_or(inventory_name, String::as_str);
    if is_dns_subdomain(wanted) {
        return wanted.to_owned();
    }
    let fixed: String = wanted
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fixed = fixed.trim_matches('-').to_owned();
    warnings.push(format!(
        "node name `{wanted}` is not a DNS name; using `{fixed}`"
    ));
    fixed
}

/// The most specific non-role group below an agent group that holds the agent (for example
/// `tenancy_0214` in `[agent:children]`).
fn agent_subgroup(inventory: &Inventory, host: &str, agent_groups: &[&str]) -> Option<String> {
    let below_agents = |group: &str| {
        agent_groups.iter().any(|agent_group| {
            *agent_group != group
                && inventory.members(agent_group).iter().any(|m| m == host)
                && is_descendant(inventory, agent_group, group)
        })
    };
    inventory
        .groups_of(host)
        .into_iter()
        .rev()
        .find(|group| !agent_groups.contains(&group.as_str()) && below_agents(group))
}

fn is_descendant(inventory: &Inventory, ancestor: &str, group: &str) -> bool {
    let mut stack = vec![ancestor.to_owned()];
    let mut seen = Vec::new();
    while let Some(current) = stack.pop() {
        if seen.contains(&current) {
            continue;
        }
        if let Some(entry) = inventory.groups.get(&current) {
            if entry.children.iter().any(|child| child == group) {
                return true;
            }
            stack.extend(entry.children.clone());
        }
        seen.push(current);
    }
    false
}
