//! Opening the cluster for an upgrade: the spec, a transport per host, the API through an SSH
//! tunnel to the first server, each host's architecture, and the nodes' state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::future::join_all;

use super::error::UpgradeError;
use crate::host::{ExecRequest, Transport};
use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::kube::{ApiConnection, CORDONED_FOR, NodeInfo, connect_through, list_nodes, readyz};
use crate::ops::OpsError;
use crate::ops::connect::{ConnectOptions, connect_all};
use crate::ops::export::read_admin_kubeconfig;
use crate::ops::prepare::load_spec;
use crate::plan::upgrade::{NodeKind, NodeState};
use crate::spec::{LoadedSpec, ResolvedHost, Role};

use crate::k3s::ports::API_PORT;

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
    /// The server the API is reached through: the first of the spec's servers (in spec order)
    /// whose API answers, so that a stopped first server does not take the upgrade's view of
    /// the cluster with it.
    pub api_server: String,
    /// The API client and its tunnel.
    pub api: ApiConnection,
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
}

/// Loads the spec, connects to every host and to the API.
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
    let servers: Vec<&str> = hosts
        .iter()
        .filter(|h| h.role == Role::Server)
        .map(|h| h.name.as_str())
        .collect();
    let (api_server, api) = connect_api(&servers, &first_server, &transports).await?;
    Ok(UpgradeSession {
        spec,
        hosts,
        transports,
        first_server,
        api_server,
        api,
    })
}

/// The API through the first server (spec order) whose /readyz answers `ok`. When none answers
/// (a single server whose upgrade failed, the whole control plane down), the first server's
/// connection is kept: recovery restarts that server and waits for its API to come back.
async fn connect_api(
    servers: &[&str],
    first_server: &str,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
) -> Result<(String, ApiConnection), UpgradeError> {
    let connect = |name: &str| {
        let transport = transports.get(name).cloned();
        let name = name.to_string();
        async move {
            let transport = transport.ok_or(OpsError::NoConnection { host: name })?;
            let admin = read_admin_kubeconfig(transport.as_ref()).await?;
            let api = connect_through(transport.as_ref(), admin.expose(), API_PORT).await?;
            Ok::<_, UpgradeError>(api)
        }
    };
    for name in servers {
        let Ok(api) = connect(name).await else {
            continue;
        };
        if matches!(readyz(&api.client).await, Ok(true)) {
            return Ok(((*name).to_string(), api));
        }
    }
    Ok((first_server.to_string(), connect(first_server).await?))
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
    let nodes = list_nodes(&cluster.api.client).await?;
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
