//! Rules about hosts: names, addresses, roles, groups, labels and how each host is reached.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Issue;
use crate::k3s::critical::is_critical;
use crate::spec::model::{Cluster, Host, MANAGED_CONFIG_KEYS, Role};
use crate::spec::taint::{check_label_key, check_label_value, is_dns_subdomain};
use crate::spec_path;

/// Each agent's group, per host.
pub(super) fn check_groups(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        check_group(i, host, issues);
    }
}

/// Label keys and values, per host.
pub(super) fn check_all_labels(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        check_labels(i, host, issues);
    }
}

/// Each host's own config.yaml keys: none that k3sctl manages, and on servers none of K3s's
/// critical cluster-wide keys (they would differ between servers and the join would fail).
pub(super) fn check_host_configs(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        for key in host.config.keys() {
            let bare = key.trim_end_matches('+');
            let path = spec_path!["spec", "hosts", i, "config", key];
            if let Some((_, instead)) = MANAGED_CONFIG_KEYS.iter().find(|(k, _)| *k == bare) {
                issues.push(
                    Issue::new(
                        path,
                        format!("`{key}` is managed by k3sctl and cannot be set per host"),
                    )
                    .at_key()
                    .hint(*instead),
                );
            } else if host.role == Role::Server && is_critical(bare) {
                issues.push(
                    Issue::new(
                        path,
                        format!(
                            "`{key}` on server `{}` is a critical configuration value: K3s refuses a \
                             server whose value differs from the others'",
                            host.name
                        ),
                    )
                    .at_key()
                    .hint("set it once for every server in spec.cluster.serverConfig"),
                );
            }
        }
    }
}

/// How each host is reached.
pub(super) fn check_transports(cluster: &Cluster, issues: &mut Vec<Issue>) {
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        check_transport(cluster, i, host, issues);
    }
}

/// Most servers (etcd members) a cluster may have.
pub const MAX_SERVERS: usize = 7;

pub(super) fn check_roles(hosts: &[Host], issues: &mut Vec<Issue>) {
    let servers = hosts
        .iter()
        .filter(|host| host.role == Role::Server)
        .count();
    if servers == 0 {
        issues.push(
            Issue::new(spec_path!["spec", "hosts"], "the cluster has no server")
                .hint("give at least one host `role: server`"),
        );
    } else if servers % 2 == 0 {
        issues.push(
            Issue::new(
                spec_path!["spec", "hosts"],
                format!("the cluster has {servers} servers: embedded etcd needs an odd number to keep quorum"),
            )
            .hint(format!("use {} or {} servers", servers - 1, (servers + 1).min(MAX_SERVERS))),
        );
    } else if servers > MAX_SERVERS {
        issues.push(
            Issue::new(
                spec_path!["spec", "hosts"],
                format!("the cluster has {servers} servers: more than {MAX_SERVERS} etcd members slow every write and add no safety"),
            )
            .hint(format!("use 1, 3, 5 or {MAX_SERVERS} servers and make the others agents")),
        );
    }
}

/// A host address: an IP address or a DNS name.
pub(super) fn is_address(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok() || is_dns_subdomain(&text.to_ascii_lowercase())
}

pub(super) fn check_unique_names_and_addresses(hosts: &[Host], issues: &mut Vec<Issue>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addresses: HashMap<&str, usize> = HashMap::new();
    for (i, host) in hosts.iter().enumerate() {
        let name_path = spec_path!["spec", "hosts", i, "name"];
        if !is_dns_subdomain(&host.name) {
            issues.push(
                Issue::new(
                    name_path.clone(),
                    format!("host name `{}` is not a valid node name", host.name),
                )
                .hint("use lowercase letters, digits, `-` and `.` (a DNS-1123 subdomain)"),
            );
        }
        if let Some(first) = names.insert(&host.name, i) {
            issues.push(
                Issue::new(
                    name_path,
                    format!("host name `{}` is used twice", host.name),
                )
                .hint(format!(
                    "hosts[{first}] has the same name; node names must be unique"
                )),
            );
        }
        let fields = [
            ("address", Some(&host.address)),
            ("publicAddress", host.public_address.as_ref()),
            ("privateAddress", host.private_address.as_ref()),
        ];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            if !is_address(value) {
                issues.push(
                    Issue::new(
                        spec_path!["spec", "hosts", i, field],
                        format!("`{value}` is neither an IP address nor a DNS name"),
                    )
                    .hint("write an address such as 10.0.0.5 or node1.example.com"),
                );
            }
        }
        if let Some(first) = addresses.insert(&host.address, i) {
            issues.push(
                Issue::new(
                    spec_path!["spec", "hosts", i, "address"],
                    format!("address `{}` is used by two hosts", host.address),
                )
                .hint(format!(
                    "hosts[{first}] has the same address; every host needs its own"
                )),
            );
        }
    }
}

/// Join concurrency is at least 1 and `spec.groups` names only groups that agents use.
pub(super) fn check_group_settings(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let zero = |path, field: &str| {
        Issue::new(path, format!("{field} is 0")).hint("at least one agent must join at a time")
    };
    if cluster.spec.join_concurrency == Some(0) {
        issues.push(zero(
            spec_path!["spec", "joinConcurrency"],
            "joinConcurrency",
        ));
    }
    let used: Vec<&str> = cluster
        .spec
        .hosts
        .iter()
        .filter(|h| h.role == Role::Agent)
        .filter_map(|h| h.group.as_deref())
        .collect();
    for (name, settings) in &cluster.spec.groups {
        if settings.join_concurrency == Some(0) {
            issues.push(zero(
                spec_path!["spec", "groups", name.as_str(), "joinConcurrency"],
                "joinConcurrency",
            ));
        }
        if !used.contains(&name.as_str()) {
            let mut known: Vec<&str> = used.clone();
            known.sort_unstable();
            known.dedup();
            let hint = if known.is_empty() {
                "no agent has a `group`: set hosts[].group, or remove this entry".to_string()
            } else {
                format!("the agents' groups are: {}", known.join(", "))
            };
            issues.push(
                Issue::new(
                    spec_path!["spec", "groups", name.as_str()],
                    format!("group `{name}` has no agent"),
                )
                .at_key()
                .hint(hint),
            );
        }
    }
}

fn check_group(i: usize, host: &Host, issues: &mut Vec<Issue>) {
    let Some(group) = &host.group else { return };
    let path = spec_path!["spec", "hosts", i, "group"];
    if host.role == Role::Server {
        issues.push(
            Issue::new(path, format!("server `{}` has a group", host.name))
                .at_key()
                .hint("groups order agents only: remove `group` from servers"),
        );
    } else if group.is_empty()
        || !group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        issues.push(
            Issue::new(path, format!("group name `{group}` is not valid"))
                .hint("use letters, digits, `-`, `_` and `.`"),
        );
    }
}

fn check_labels(i: usize, host: &Host, issues: &mut Vec<Issue>) {
    for (key, value) in &host.labels {
        let path = spec_path!["spec", "hosts", i, "labels", key];
        if let Err(error) = check_label_key(key) {
            issues.push(Issue::new(path.clone(), error.to_string()).at_key());
        }
        if let Err(error) = check_label_value(value) {
            issues.push(Issue::new(path, format!("label `{key}`: {error}")));
        }
    }
}

fn check_transport(cluster: &Cluster, i: usize, host: &Host, issues: &mut Vec<Issue>) {
    let set: Vec<&str> = [
        ("ssh", host.ssh.is_some()),
        ("pct", host.pct.is_some()),
        ("lxd", host.lxd.is_some()),
        ("local", host.local == Some(true)),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    if let [_, second, ..] = set.as_slice() {
        issues.push(
            Issue::new(
                spec_path!["spec", "hosts", i, *second],
                format!(
                    "host `{}` has more than one transport: {}",
                    host.name,
                    set.join(", ")
                ),
            )
            .at_key()
            .hint("keep exactly one of ssh, pct, lxd, local"),
        );
    }
    if let Some(pct) = &host.pct {
        let defined = cluster
            .spec
            .proxmox_hosts
            .iter()
            .any(|proxmox| proxmox.name == pct.proxmox_host);
        if !defined {
            let names: Vec<&str> = cluster
                .spec
                .proxmox_hosts
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            issues.push(
                Issue::new(
                    spec_path!["spec", "hosts", i, "pct", "proxmoxHost"],
                    format!("proxmox host `{}` is not defined", pct.proxmox_host),
                )
                .hint(if names.is_empty() {
                    "add it under spec.proxmoxHosts".to_owned()
                } else {
                    format!("defined proxmox hosts: {}", names.join(", "))
                }),
            );
        }
    }
    if let Some(lxd) = &host.lxd
        && lxd.instance.is_empty()
    {
        issues.push(Issue::new(
            spec_path!["spec", "hosts", i, "lxd", "instance"],
            "the LXD instance name is empty",
        ));
    }
}

pub(super) fn check_proxmox_hosts(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, proxmox) in cluster.spec.proxmox_hosts.iter().enumerate() {
        if proxmox.name.is_empty() {
            issues.push(Issue::new(
                spec_path!["spec", "proxmoxHosts", i, "name"],
                "the proxmox host name is empty",
            ));
        }
        if let Some(first) = names.insert(&proxmox.name, i) {
            issues.push(
                Issue::new(
                    spec_path!["spec", "proxmoxHosts", i, "name"],
                    format!("proxmox host name `{}` is used twice", proxmox.name),
                )
                .hint(format!("proxmoxHosts[{first}] has the same name")),
            );
        }
        if !is_address(&proxmox.address) {
            issues.push(Issue::new(
                spec_path!["spec", "proxmoxHosts", i, "address"],
                format!(
                    "`{}` is neither an IP address nor a DNS name",
                    proxmox.address
                ),
            ));
        }
    }
    let mut vmids: HashMap<(&str, u32), usize> = HashMap::new();
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        let Some(pct) = &host.pct else { continue };
        if let Some(first) = vmids.insert((&pct.proxmox_host, pct.vmid), i) {
            issues.push(
                Issue::new(
                    spec_path!["spec", "hosts", i, "pct", "vmid"],
                    format!(
                        "vmid {} on `{}` is used by two hosts",
                        pct.vmid, pct.proxmox_host
                    ),
                )
                .hint(format!("hosts[{first}] is the same container")),
            );
        }
    }
}
