//! What each host should look like: rendered files, role, group, join URL. Built from the spec
//! by [`super::from_spec`]; kept separate so the planner is testable without a spec file.

use std::collections::BTreeMap;

use crate::k3s::config::NodeRole;
use crate::k3s::release::Arch;
use crate::k3s::unit;
use crate::k3s::version::K3sVersion;
use crate::secret::Secret;

/// The content of a desired file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileContent {
    /// Content that may be shown in full.
    Plain(String),
    /// Content holding credentials, with a masked twin for diffs.
    Secret {
        /// The real content.
        content: Secret,
        /// The content with credentials masked.
        masked: String,
    },
    /// A local file streamed to the host as is (the airgap images tarball).
    LocalFile {
        /// Path on the operator's machine.
        local: std::path::PathBuf,
        /// Its sha256.
        sha256: String,
    },
    /// The unit's env file; rendered at run time with the join token read live.
    Env {
        /// `K3S_URL`: agents and the servers of a multi-server cluster.
        url: Option<String>,
        /// Whether the file holds `K3S_TOKEN` (every node except a server that starts a
        /// cluster).
        with_token: bool,
        /// `K3S_CLUSTER_INIT=true`: only while the first server bootstraps embedded etcd (or
        /// converts its SQLite store), never left for a later rebuild of the host.
        cluster_init: bool,
    },
}

impl FileContent {
    /// The content to write and its shown form, given the token (for env files). `None` when
    /// the content needs a token that is not known yet.
    pub fn resolve(&self, token: Option<&Secret>) -> Option<(Secret, String)> {
        match self {
            Self::Plain(text) => Some((Secret::new(text.clone()), text.clone())),
            Self::LocalFile { .. } => None,
            Self::Secret { content, masked } => Some((content.clone(), masked.clone())),
            Self::Env {
                url,
                with_token,
                cluster_init,
            } => {
                let token = if *with_token { Some(token?) } else { None };
                Some((
                    unit::render_env(token, url.as_deref(), *cluster_init),
                    unit::masked_env(*with_token, url.as_deref(), *cluster_init),
                ))
            }
        }
    }

    /// Whether the content holds a secret (diffs are then masked).
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret { .. } | Self::Env { .. })
    }

    /// The sha256 the file should have, when it can be known (env files need the token).
    pub fn wanted_sha256(&self, token: Option<&Secret>) -> Option<String> {
        match self {
            Self::LocalFile { sha256, .. } => Some(sha256.clone()),
            other => other
                .resolve(token)
                .map(|(content, _)| content.sha256_hex()),
        }
    }

    /// Whether the content may be shown in a diff (text, not a tarball or an env file).
    pub fn is_diffable(&self) -> bool {
        matches!(self, Self::Plain(_) | Self::Secret { .. })
    }
}

/// A file k3sctl owns on a host.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredFile {
    /// Absolute path on the host.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// What it should contain.
    pub content: FileContent,
    /// Whether a change needs K3s restarted (config, registries, unit, env: yes; manifests: no).
    pub restarts: bool,
}

/// One host's desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredHost {
    /// Host (and node) name.
    pub name: String,
    /// Server or agent.
    pub role: NodeRole,
    /// Join group (agents); `None` for servers.
    pub group: Option<String>,
    /// Whether this is the server that starts the cluster.
    pub first_server: bool,
    /// Files in write order (registries before the first start, unit last).
    pub files: Vec<DesiredFile>,
    /// Taints the Node must carry (`key[=value]:Effect`): K3s applies `node-taint` only at
    /// registration, so apply enforces them on the live Node too.
    pub taints: Vec<String>,
    /// Labels the Node must carry: K3s applies `node-label` only at registration, so apply
    /// enforces them on the live Node too.
    pub labels: BTreeMap<String, String>,
}

/// A kubeconfig export and whether its local file is already up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredExport {
    /// Export name.
    pub name: String,
    /// Local path (tilde expanded).
    pub path: String,
    /// Context name.
    pub context: String,
    /// Server URL written into it.
    pub server: String,
    /// Also merged into the user's kubeconfig.
    pub merge: bool,
    /// Known to be up to date (`None`: cannot tell before the cluster exists).
    pub up_to_date: Option<bool>,
}

/// The whole desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Cluster name.
    pub cluster: String,
    /// K3s version to install.
    pub version: K3sVersion,
    /// sha256 of the release binary per architecture.
    pub binary_sha256: BTreeMap<Arch, String>,
    /// Hosts: the first server first, then the other servers, then the agents.
    pub hosts: Vec<DesiredHost>,
    /// Several servers on embedded etcd.
    pub ha: bool,
    /// Take an etcd snapshot right after a SQLite→etcd conversion (off with
    /// `upgrade.snapshot: false`).
    pub snapshot_after_conversion: bool,
    /// K3s's critical configuration values, identical on every server (key → value as shown).
    pub critical: BTreeMap<String, String>,
    /// Kubeconfig exports.
    pub exports: Vec<DesiredExport>,
    /// Every host the spec names, also those left out of this run (a Node of one of them is
    /// explained; any other Node is not).
    pub spec_nodes: std::collections::BTreeSet<String>,
}
