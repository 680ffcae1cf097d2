//! Accessors that answer questions about a spec with defaults applied: which hosts are servers,
//! the API endpoint, each host's effective connection settings, export context names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::load::LoadedSpec;
use super::model::{Cluster, Host, KubeconfigExport, ProxmoxHost, Role, SshSettings};
use super::validate::resolve_path;

/// SSH settings of one host after merging host defaults, paths resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedSsh {
    /// Login user; `None` leaves it to ssh_config / the current user.
    pub user: Option<String>,
    /// Port; `None` leaves it to ssh_config / 22.
    pub port: Option<u16>,
    /// Private key file.
    pub identity_file: Option<PathBuf>,
    /// ssh_config file (`-F`).
    pub config_file: Option<PathBuf>,
    /// known_hosts file (`UserKnownHostsFile`).
    pub known_hosts_file: Option<PathBuf>,
    /// Accept unknown host keys.
    pub accept_new_host_keys: bool,
    /// Extra `-o` options.
    pub options: BTreeMap<String, String>,
}

/// How k3sctl reaches a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedTransport {
    /// SSH to the host's address.
    Ssh(ResolvedSsh),
    /// `pct exec VMID` on a Proxmox host reached over SSH.
    Pct {
        /// Name of the Proxmox host.
        proxmox_name: String,
        /// Address of the Proxmox host.
        proxmox_address: String,
        /// SSH settings for the Proxmox host.
        ssh: ResolvedSsh,
        /// Container id.
        vmid: u32,
        /// Start the container when it is stopped (`pct.autostart`, default true).
        autostart: bool,
    },
    /// `lxc exec` on an LXD instance.
    Lxd {
        /// The lxc remote (default `local`).
        remote: String,
        /// Instance name.
        instance: String,
        /// Project, if set.
        project: Option<String>,
    },
    /// The machine k3sctl runs on.
    Local,
}

/// One host with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHost {
    /// Node name.
    pub name: String,
    /// Address k3sctl uses and node IP.
    pub address: String,
    /// Public address, if any.
    pub public_address: Option<String>,
    /// Private address, if any.
    pub private_address: Option<String>,
    /// Role.
    pub role: Role,
    /// Agent group, if any.
    pub group: Option<String>,
    /// Use sudo: `Some` when the spec decides, `None` to decide from the connected user (sudo
    /// unless root).
    pub sudo: Option<bool>,
    /// How to reach it.
    pub transport: ResolvedTransport,
}

impl Cluster {
    /// The server hosts, in spec order.
    pub fn servers(&self) -> impl Iterator<Item = &Host> {
        self.spec
            .hosts
            .iter()
            .filter(|host| host.role == Role::Server)
    }

    /// The agent hosts, in spec order.
    pub fn agents(&self) -> impl Iterator<Item = &Host> {
        self.spec
            .hosts
            .iter()
            .filter(|host| host.role == Role::Agent)
    }

    /// The first server in spec order: it bootstraps a new cluster. Once the cluster exists it is
    /// a server like the others (any healthy server serves the token, the lock and the API).
    /// Always `Some` for a validated spec.
    pub fn first_server(&self) -> Option<&Host> {
        self.servers().next()
    }

    /// A host by node name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.spec.hosts.iter().find(|host| host.name == name)
    }

    /// The registration address: `cluster.registrationAddress`, else the first server's address.
    pub fn registration_address(&self) -> Option<&str> {
        self.spec
            .cluster
            .registration_address
            .as_deref()
            .or_else(|| self.first_server().map(|server| server.address.as_str()))
    }

    /// The join URL: `https://<registration address>:6443`.
    pub fn api_endpoint(&self) -> Option<String> {
        self.registration_address()
            .map(|address| https_url(address, crate::k3s::ports::API_PORT))
    }

    /// Whether the cluster runs several servers on embedded etcd.
    pub fn is_ha(&self) -> bool {
        self.servers().nth(1).is_some()
    }

    /// Agent groups in first-appearance order; agents without a group form the group `""`.
    pub fn agent_groups(&self) -> Vec<(String, Vec<&Host>)> {
        let mut groups: Vec<(String, Vec<&Host>)> = Vec::new();
        for agent in self.agents() {
            let name = agent.group.clone().unwrap_or_default();
            match groups.iter_mut().find(|(group, _)| *group == name) {
                Some((_, members)) => members.push(agent),
                None => groups.push((name, vec![agent])),
            }
        }
        groups
    }

    /// How many agents of `group` (`None`: agents without a group) join at once:
    /// `groups.<name>.joinConcurrency`, else `joinConcurrency`, else 1.
    pub fn join_concurrency(&self, group: Option<&str>) -> u32 {
        group
            .and_then(|g| self.spec.groups.get(g))
            .and_then(|g| g.join_concurrency)
            .or(self.spec.join_concurrency)
            .unwrap_or(1)
            .max(1)
    }

    /// The context name of a kubeconfig export: `context`, else `<metadata.name>-<export name>`.
    pub fn export_context(&self, export: &KubeconfigExport) -> String {
        export
            .context
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.metadata.name, export.name))
    }

    /// The API URL written into a kubeconfig export: `server`, else the API endpoint.
    pub fn export_server(&self, export: &KubeconfigExport) -> Option<String> {
        export.server.clone().or_else(|| self.api_endpoint())
    }

    fn proxmox_host(&self, name: &str) -> Option<&ProxmoxHost> {
        self.spec
            .proxmox_hosts
            .iter()
            .find(|proxmox| proxmox.name == name)
    }
}

/// `https://ADDRESS:PORT`, with IPv6 addresses in brackets.
pub fn https_url(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("https://[{address}]:{port}")
    } else {
        format!("https://{address}:{port}")
    }
}

impl LoadedSpec {
    /// Resolves a path written in the spec (`~` expanded, relative to the spec file).
    pub fn resolve_path(&self, written: &str) -> PathBuf {
        resolve_path(written, &self.base_dir, self.home.as_deref())
    }

    /// Every host with defaults merged, in spec order.
    pub fn hosts(&self) -> Vec<ResolvedHost> {
        self.cluster
            .spec
            .hosts
            .iter()
            .map(|host| self.resolve_host(host))
            .collect()
    }

    /// One host with defaults merged.
    pub fn resolve_host(&self, host: &Host) -> ResolvedHost {
        let defaults = self.cluster.spec.host_defaults.clone().unwrap_or_default();
        let transport = if let Some(pct) = &host.pct {
            let proxmox = self.cluster.proxmox_host(&pct.proxmox_host);
            ResolvedTransport::Pct {
                proxmox_name: pct.proxmox_host.clone(),
                proxmox_address: proxmox.map(|p| p.address.clone()).unwrap_or_default(),
                ssh: self.merge_ssh(defaults.ssh.as_ref(), proxmox.and_then(|p| p.ssh.as_ref())),
                vmid: pct.vmid,
                autostart: pct.autostart.unwrap_or(true),
            }
        } else if let Some(lxd) = &host.lxd {
            ResolvedTransport::Lxd {
                remote: lxd.remote.clone().unwrap_or_else(|| "local".to_owned()),
                instance: lxd.instance.clone(),
                project: lxd.project.clone(),
            }
        } else if host.local == Some(true) {
            ResolvedTransport::Local
        } else {
            ResolvedTransport::Ssh(self.merge_ssh(defaults.ssh.as_ref(), host.ssh.as_ref()))
        };
        ResolvedHost {
            name: host.name.clone(),
            address: host.address.clone(),
            public_address: host.public_address.clone(),
            private_address: host.private_address.clone(),
            role: host.role,
            group: host.group.clone(),
            sudo: host.sudo.or(defaults.sudo),
            transport,
        }
    }

    fn merge_ssh(&self, defaults: Option<&SshSettings>, own: Option<&SshSettings>) -> ResolvedSsh {
        let empty = SshSettings::default();
        let (base, own) = (defaults.unwrap_or(&empty), own.unwrap_or(&empty));
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        let path = |value: Option<String>| value.map(|written| self.resolve_path(&written));
        let mut options = base.options.clone();
        options.extend(own.options.clone());
        ResolvedSsh {
            user: pick(&own.user, &base.user),
            port: own.port.or(base.port),
            identity_file: path(pick(&own.identity_file, &base.identity_file)),
            config_file: path(pick(&own.config_file, &base.config_file)),
            known_hosts_file: path(pick(&own.known_hosts_file, &base.known_hosts_file)),
            accept_new_host_keys: own
                .accept_new_host_keys
                .or(base.accept_new_host_keys)
                .unwrap_or(false),
            options,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::spec::{ValidationContext, load_str};

    fn loaded(text: &str) -> LoadedSpec {
        let context = ValidationContext {
            base_dir: PathBuf::from("/specs"),
            home: Some(PathBuf::from("/home/op")),
        };
        // No file in this spec needs to exist: identity files are only checked when set, and
        // these tests set none that validation would look for.
        let cluster = load_str(text, "t.yaml", &context).unwrap_or_else(|e| panic!("{e}"));
        LoadedSpec {
            cluster,
            path: PathBuf::from("/specs/t.yaml"),
            base_dir: context.base_dir,
            home: context.home,
        }
    }

    #[test]
    fn host_settings_win_over_defaults_and_options_merge() {
        let spec = loaded(
            "\
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: merge}
spec:
  hostDefaults:
    ssh: {user: ops, port: 2222, knownHostsFile: ./known_hosts, options: {ProxyJump: bastion, ServerAliveInterval: '10'}}
    sudo: false
  hosts:
    - {name: s1, address: 10.0.0.1, role: server}
    - {name: a1, address: 10.0.0.2, role: agent, sudo: true,
       ssh: {user: root, knownHostsFile: ~/kh, options: {ProxyJump: jump2}}}
    - {name: a2, address: 10.0.0.3, role: agent, local: true}
  k3s: {channel: stable}
",
        );
        let hosts = spec.hosts();
        let ResolvedTransport::Ssh(first) = &hosts[0].transport else {
            panic!("ssh expected")
        };
        assert_eq!(
            (first.user.as_deref(), first.port),
            (Some("ops"), Some(2222))
        );
        assert_eq!(
            first.known_hosts_file.as_deref(),
            Some(Path::new("/specs/known_hosts"))
        );
        assert_eq!(hosts[0].sudo, Some(false));
        let ResolvedTransport::Ssh(second) = &hosts[1].transport else {
            panic!("ssh expected")
        };
        assert_eq!(
            (second.user.as_deref(), second.port),
            (Some("root"), Some(2222))
        );
        assert_eq!(
            second.known_hosts_file.as_deref(),
            Some(Path::new("/home/op/kh"))
        );
        assert_eq!(second.options["ProxyJump"], "jump2");
        assert_eq!(second.options["ServerAliveInterval"], "10");
        assert!(!second.accept_new_host_keys);
        assert_eq!(hosts[1].sudo, Some(true));
        assert_eq!(hosts[2].transport, ResolvedTransport::Local);
    }

    #[test]
    fn defaults_for_endpoint_contexts_and_groups() {
        let spec = loaded(
            "\
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: lumie}
spec:
  hosts:
    - {name: a0, address: 10.0.0.9, role: agent}
    - {name: s1, address: 'fd00::1', role: server}
    - {name: a1, address: 10.0.0.2, role: agent, group: g1}
    - {name: a2, address: 10.0.0.3, role: agent, group: g1}
  k3s: {version: v1.34.3+k3s1}
  kubeconfigs:
    - {name: public, path: ./p.yaml, server: 'https://1.2.3.4:6443'}
    - {name: ops, path: ./o.yaml, context: mine}
",
        );
        let cluster = &spec.cluster;
        assert_eq!(cluster.first_server().map(|h| h.name.as_str()), Some("s1"));
        assert_eq!(
            cluster.api_endpoint().as_deref(),
            Some("https://[fd00::1]:6443")
        );
        let exports = &cluster.spec.kubeconfigs;
        assert_eq!(cluster.export_context(&exports[0]), "lumie-public");
        assert_eq!(cluster.export_context(&exports[1]), "mine");
        assert_eq!(
            cluster.export_server(&exports[1]).as_deref(),
            Some("https://[fd00::1]:6443")
        );
        let groups: Vec<(String, Vec<&str>)> = cluster
            .agent_groups()
            .into_iter()
            .map(|(g, hosts)| (g, hosts.iter().map(|h| h.name.as_str()).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                (String::new(), vec!["a0"]),
                ("g1".to_owned(), vec!["a1", "a2"])
            ]
        );
    }
}
