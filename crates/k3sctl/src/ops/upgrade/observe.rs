//! Opening the cluster for an upgrade: the spec, a transport per host, the API through an SSH
//! tunnel to the first server (spec order) that answers, each host's architecture, and the
//! nodes' state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::Mutex;

use super::error::UpgradeError;
use crate::host::{ExecRequest, Transport};
use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::kube::{CORDONED_FOR, NodeInfo};
use crate::ops::OpsError;
use crate::ops::connect::{ConnectOptions, connect_all};
use crate::ops::kube_api::failover_through;
use crate::ops::prepare::load_spec;
use crate::plan::upgrade::{NodeKind, NodeState};
use crate::run::{ApiConnector, ClusterApi, FailoverConnector};
use crate::spec::{LoadedSpec, ResolvedHost, Role};

/// Everything the upgrade works with.
pub struct UpgradeSession {
    /// The spec.
    pub spec: LoadedSpec,
    /// The hosts, in spec order.
    pub hosts: Vec<ResolvedHost>,
    /// Transports by host name.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// The first server's name: it holds the lock and the recovery marker, and is upgraded first.
    pub first_server: String,
    /// The API through the first of the spec's servers (spec order) whose `/readyz` answers, so
    /// that a stopped first server does not take the upgrade's view of the cluster with it.
    connector: Arc<FailoverConnector>,
    /// The API once reached, kept for the whole upgrade.
    api: Mutex<Option<ReachedApi>>,
}

/// The cluster's API and the server it goes through.
#[derive(Clone)]
pub struct ReachedApi {
    /// The server whose API answered.
    pub server: String,
    /// The API through it.
    pub api: Arc<dyn ClusterApi>,
}

impl UpgradeSession {
    /// The transport of `host`.
    pub fn transport(&self, host: &str) -> Result<Arc<dyn Transport>, UpgradeError> {
        self.transports.get(host).cloned().ok_or_else(|| {
            OpsError::NoConnection {
                host: host.to_string(),
            }
            .into()
        })
    }

    /// The spec's servers, in spec order.
    pub fn servers(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.role == Role::Server)
            .map(|h| h.name.as_str())
            .collect()
    }

    /// More than one server: embedded etcd, whose quorum the upgrade must keep.
    pub fn is_ha(&self) -> bool {
        self.servers().len() > 1
    }

    /// The API, reached on first use through the first server (spec order) whose `/readyz`
    /// answers, then kept: every later look and the rollout's engine go through the same
    /// server. When none answers, every server's failure.
    pub async fn api(&self) -> Result<ReachedApi, UpgradeError> {
        let mut reached = self.api.lock().await;
        if let Some(api) = reached.as_ref() {
            return Ok(api.clone());
        }
        let (server, api) = self.connector.connect_named().await?;
        let api = ReachedApi { server, api };
        *reached = Some(api.clone());
        Ok(api)
    }

    /// The connector [`Self::api`] uses, for an engine that must connect by itself once a
    /// server is back (the recovery of a first server whose upgrade failed, while no API
    /// answers).
    pub fn connector(&self) -> Arc<dyn ApiConnector> {
        Arc::clone(&self.connector) as Arc<dyn ApiConnector>
    }
}

/// Loads the spec and connects to every host; the API is reached on first use
/// ([`UpgradeSession::api`]).
pub async fn open(
    path: &std::path::Path,
    connect: ConnectOptions,
) -> Result<UpgradeSession, UpgradeError> {
    let spec = load_spec(path)?;
    let hosts = spec.hosts();
    let first_server = spec
        .cluster
        .first_server()
        .map(|h| h.name.clone())
        .ok_or_else(|| OpsError::NoServer {
            file: path.display().to_string(),
        })?;
    let (transports, errors) = connect_all(&hosts, connect).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: String::new(),
        }
        .into());
    }
    let servers = hosts
        .iter()
        .filter(|h| h.role == Role::Server)
        .map(|h| h.name.as_str());
    let connector = Arc::new(failover_through(servers, &transports));
    Ok(UpgradeSession {
        spec,
        hosts,
        transports,
        first_server,
        connector,
        api: Mutex::new(None),
    })
}

/// Each host's CPU architecture (`uname -m`, all hosts at once).
pub async fn host_archs(cluster: &UpgradeSession) -> Result<BTreeMap<String, Arch>, UpgradeError> {
    let answers = join_all(cluster.hosts.iter().map(|h| async move {
        let transport = cluster.transport(&h.name)?;
        let out = transport
            .exec_checked(ExecRequest::new("uname -m").describe("reading the architecture"))
            .await
            .map_err(OpsError::from)?;
        let arch = Arch::from_uname(&out.stdout_text()).map_err(|cause| {
            UpgradeError::UnsupportedArch {
                host: h.name.clone(),
                cause,
            }
        })?;
        Ok::<_, UpgradeError>((h.name.clone(), arch))
    }))
    .await;
    answers.into_iter().collect()
}

/// The set of architectures.
pub fn arch_set(archs: &BTreeMap<String, Arch>) -> BTreeSet<Arch> {
    archs.values().copied().collect()
}

/// Pure: the upgrade's view of each spec host's Node. A host without a Node object, or with a
/// kubelet version that is not a K3s version, is an error naming it.
pub fn node_states(
    hosts: &[ResolvedHost],
    nodes: &[NodeInfo],
) -> Result<Vec<NodeState>, UpgradeError> {
    let mut states = Vec::new();
    let mut missing = Vec::new();
    for host in hosts {
        let Some(node) = nodes.iter().find(|n| n.name == host.name) else {
            missing.push(host.name.clone());
            continue;
        };
        let running: K3sVersion =
            node.kubelet_version
                .parse()
                .map_err(|cause| UpgradeError::NotK3s {
                    node: node.name.clone(),
                    cause,
                })?;
        states.push(NodeState {
            name: host.name.clone(),
            kind: match host.role {
                Role::Server => NodeKind::Server,
                Role::Agent => NodeKind::Agent,
            },
            group: host.group.clone(),
            running,
            ready: node.ready,
            unschedulable: node.unschedulable,
            cordoned_by_k3sctl: node.annotations.contains_key(CORDONED_FOR),
        });
    }
    if !missing.is_empty() {
        return Err(UpgradeError::NodesMissing { hosts: missing });
    }
    Ok(states)
}

/// Reads the nodes from the API and maps them to the spec's hosts.
pub async fn observe_nodes(cluster: &UpgradeSession) -> Result<Vec<NodeState>, UpgradeError> {
    let nodes = cluster.api().await?.api.node_infos().await?;
    node_states(&cluster.hosts, &nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ResolvedTransport;

    fn host(name: &str, role: Role, group: Option<&str>) -> ResolvedHost {
        ResolvedHost {
            name: name.into(),
            address: "10.0.0.1".into(),
            public_address: None,
            private_address: None,
            role,
            group: group.map(str::to_string),
            sudo: None,
            transport: ResolvedTransport::Local,
        }
    }

    fn node(name: &str, version: &str, ours: bool) -> NodeInfo {
        let mut n = NodeInfo {
            name: name.into(),
            ready: true,
            kubelet_version: version.into(),
            unschedulable: ours,
            ..NodeInfo::default()
        };
        if ours {
            n.annotations
                .insert(CORDONED_FOR.into(), "upgrade to v1.34.1+k3s1".into());
        }
        n
    }

    #[test]
    fn maps_spec_hosts_to_their_nodes() {
        let hosts = [
            host("s", Role::Server, None),
            host("a", Role::Agent, Some("g")),
        ];
        let nodes = [
            node("a", "v1.34.1+k3s1", true),
            node("s", "v1.33.5+k3s1", false),
            node("extra", "v1.33.5+k3s1", false),
        ];
        let states = node_states(&hosts, &nodes).expect("states");
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].kind, NodeKind::Server);
        assert_eq!(states[1].group.as_deref(), Some("g"));
        assert!(states[1].cordoned_by_k3sctl && states[1].unschedulable);
        assert_eq!(states[1].running.to_string(), "v1.34.1+k3s1");
    }

    #[test]
    fn a_host_without_a_node_or_with_a_strange_version_is_named() {
        let hosts = [
            host("s", Role::Server, None),
            host("gone", Role::Agent, None),
        ];
        let err = node_states(&hosts, &[node("s", "v1.33.5+k3s1", false)]).expect_err("missing");
        assert!(
            matches!(&err, UpgradeError::NodesMissing { hosts } if hosts == &["gone"]),
            "{err}"
        );
        let err = node_states(&hosts[..1], &[node("s", "v1.33.5", false)]).expect_err("version");
        assert!(
            matches!(&err, UpgradeError::NotK3s { node, cause } if node == "s" && cause.input == "v1.33.5"),
            "{err}"
        );
    }
}
