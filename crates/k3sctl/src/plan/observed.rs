//! What k3sctl observed before planning: per host (files, binary, service) and in the API.

use std::collections::BTreeMap;

use crate::k3s::links::CommandLink;
use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::secret::Secret;

/// A managed file as found on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedFile {
    /// sha256 of the content; `None` when the file does not exist.
    pub sha256: Option<String>,
    /// The content as it may be shown (credentials masked), when it was read.
    pub shown: Option<String>,
}

/// One host's K3s-related state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedHost {
    /// CPU architecture.
    pub arch: Arch,
    /// Version of /usr/local/bin/k3s, when installed.
    pub k3s_version: Option<K3sVersion>,
    /// sha256 of /usr/local/bin/k3s, when installed.
    pub binary_sha256: Option<String>,
    /// Managed files by path.
    pub files: BTreeMap<String, ObservedFile>,
    /// The K3s unit is active.
    pub service_active: bool,
    /// The K3s unit is enabled at boot.
    pub service_enabled: bool,
    /// A managed file or the binary changed after the service last started (an interrupted
    /// apply): K3s must restart to use it.
    pub restart_pending: bool,
    /// systemd's loaded unit is older than the unit file (`NeedDaemonReload`): a run that
    /// wrote the unit stopped before `daemon-reload`, and a later restart would still use the
    /// old unit.
    pub needs_daemon_reload: bool,
    /// The server has embedded etcd data (`server/db/etcd/member/wal`).
    pub etcd_data: bool,
    /// The server's SQLite store, when it has one not yet migrated (K3s:
    /// `server/db/state.db`; the stand-in: the directory `server/db/state`).
    pub sqlite_store: Option<String>,
    /// The server holds a cluster token (`server/token`).
    pub has_token: bool,
    /// What K3s is started with as the files say (unit, env files, config.yaml and its
    /// drop-ins), read when the host has a K3s unit: the planner compares its effective
    /// configuration with the desired one.
    pub start: Option<StartFiles>,
    /// The start files (path → sha256) an adoption record on the host vouches for, while K3s
    /// still runs from the start the record names (empty otherwise): the set k3sctl judged to
    /// leave K3s as it runs, written before the files, so an interrupted adoption resumes
    /// without a restart.
    pub adopted: BTreeMap<String, String>,
    /// The node's password file `/etc/rancher/node/password` exists (K3s creates it at the
    /// first start; a reinstalled or wiped host lacks it and gets a new password).
    pub node_password: bool,
    /// What is at the place of each command link (`kubectl`, `crictl`, `ctr`; see
    /// [`crate::k3s::links`]), by command; a command not observed gets no step.
    pub links: BTreeMap<String, CommandLink>,
}

/// The files K3s is started from, as found on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartFiles {
    /// The unit file's text.
    pub unit: String,
    /// The unit's drop-ins systemd applies, in its order
    /// ([`crate::k3s::unit_dropins::applied`]: `.conf` files of `<unit>.service.d/`, its
    /// prefix directories and `service.d/` under /etc, /run and /usr/lib). k3sctl leaves them in
    /// place, except the `ExecStart=` lines it takes over.
    pub unit_dropins: Vec<crate::k3s::unit_dropins::UnitDropin>,
    /// Env files the unit reads that exist, `(path, content)`; they may hold the token.
    pub env_files: Vec<(String, Secret)>,
    /// /etc/rancher/k3s/config.yaml.
    pub config: Option<String>,
    /// /etc/rancher/k3s/config.yaml.d entries, `(file name, content)`.
    pub dropins: Vec<(String, String)>,
    /// The host name (K3s's default node name).
    pub hostname: Option<String>,
}

impl ObservedHost {
    /// The observation of a host where nothing of K3s exists.
    pub fn fresh(arch: Arch) -> Self {
        Self {
            arch,
            k3s_version: None,
            binary_sha256: None,
            files: BTreeMap::new(),
            service_active: false,
            service_enabled: false,
            restart_pending: false,
            needs_daemon_reload: false,
            adopted: BTreeMap::new(),
            etcd_data: false,
            sqlite_store: None,
            has_token: false,
            start: None,
            node_password: false,
            links: BTreeMap::new(),
        }
    }

    /// The observed file at `path` (absent when not observed).
    pub fn file(&self, path: &str) -> ObservedFile {
        self.files.get(path).cloned().unwrap_or_default()
    }
}

/// A Node object as seen in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedNode {
    /// Node name.
    pub name: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// status.nodeInfo.kubeletVersion.
    pub kubelet_version: String,
    /// spec.taints, each `key[=value]:Effect`.
    pub taints: Vec<String>,
    /// The taints k3sctl recorded as set by itself (its `k3sctl.io/taints` annotation).
    pub owned_taints: std::collections::BTreeSet<String>,
    /// The `EtcdIsVoter` condition (servers on embedded etcd): `Some(true)` for a healthy voter.
    pub etcd_voter: Option<bool>,
    /// The internal IP K3s uses for the node (`k3s.io/internal-ip`, its first address).
    pub internal_ip: Option<String>,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// The label keys k3sctl recorded as set by itself (its `k3sctl.io/labels` annotation).
    pub owned_labels: std::collections::BTreeSet<String>,
    /// K3s's `k3s.io/node-args` annotation (a JSON list), when the node has it.
    pub node_args: Option<String>,
}

/// A member of the embedded etcd cluster, as etcd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// Member id (a uint64, kept as etcd's JSON gateway writes it).
    pub id: String,
    /// Member name: `<node name>-<8 hex>` for K3s; empty for a learner not started yet.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Still a learner (not voting).
    pub learner: bool,
}

impl EtcdMember {
    /// Whether this member belongs to node `node` (K3s names members `<node>-<8 hex>`).
    pub fn is_of_node(&self, node: &str) -> bool {
        self.name
            .strip_prefix(node)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Hosts by name.
    pub hosts: BTreeMap<String, ObservedHost>,
    /// Nodes in the API; `None` when the API was not reachable (no cluster yet).
    pub nodes: Option<Vec<ObservedNode>>,
    /// The join token, when a server already has one.
    pub token: Option<Secret>,
    /// The embedded etcd members, when a running server could list them.
    pub etcd_members: Option<Vec<EtcdMember>>,
    /// The objects the spec's manifests declare, as the API has them; `None` when they were
    /// not read (no API).
    pub objects: Option<super::manifest_drift::LiveObjects>,
}

impl Observed {
    /// The API's view of one node. A linear search: in a loop over the hosts use
    /// [`Observed::nodes_by_name`] instead.
    pub fn node(&self, name: &str) -> Option<&ObservedNode> {
        self.nodes.as_ref()?.iter().find(|n| n.name == name)
    }

    /// The Nodes by name, built once for lookups in a loop over the hosts (a search of the list
    /// per host made planning quadratic in the cluster's size). A name listed twice keeps its
    /// first Node, as [`Observed::node`] does. Empty when the API was not reachable.
    pub fn nodes_by_name(&self) -> BTreeMap<&str, &ObservedNode> {
        let mut index = BTreeMap::new();
        for node in self.nodes.iter().flatten() {
            index.entry(node.name.as_str()).or_insert(node);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, version: &str) -> ObservedNode {
        ObservedNode {
            name: name.into(),
            ready: true,
            kubelet_version: version.into(),
            taints: vec![],
            owned_taints: Default::default(),
            etcd_voter: None,
            internal_ip: None,
            labels: BTreeMap::new(),
            owned_labels: Default::default(),
            node_args: None,
        }
    }

    #[test]
    fn the_node_index_agrees_with_the_search_and_keeps_a_repeated_name_first() {
        let observed = Observed {
            nodes: Some(vec![node("b", "v1"), node("a", "v1"), node("b", "v2")]),
            ..Observed::default()
        };
        let index = observed.nodes_by_name();
        assert_eq!(index.len(), 2);
        for name in ["a", "b", "c"] {
            assert_eq!(index.get(name).copied(), observed.node(name), "{name}");
        }
        assert_eq!(index["b"].kubelet_version, "v1");
        assert!(Observed::default().nodes_by_name().is_empty());
    }
}
