//! Reading what the quorum check needs (the judgement is `plan::upgrade::quorum`, pure): the
//! Node objects, etcd's own member list through the API (`/db/info`), and whether K3s runs on
//! each server (asked over SSH, since a stopped server's Node stays Ready for the node-monitor
//! grace period).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use super::api::{ApiError, ClusterApi};
use super::service::is_active;
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::k3s::unit::unit_name;
use crate::kube::{EtcdMember, NodeInfo};
use crate::plan::upgrade::quorum::EtcdState;

/// One look at the etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdLook {
    /// The spec's servers.
    pub servers: Vec<String>,
    /// Every Node.
    pub nodes: Vec<NodeInfo>,
    /// etcd's member list, when the server answered it.
    pub members: Option<Vec<EtcdMember>>,
    /// Servers whose K3s service is not active.
    pub stopped: Vec<String>,
}

impl EtcdLook {
    /// The servers as names.
    pub fn server_names(&self) -> Vec<&str> {
        self.servers.iter().map(String::as_str).collect()
    }

    /// The check's input; `servers` is [`Self::server_names`].
    pub fn state<'a>(&'a self, servers: &'a [&'a str]) -> EtcdState<'a> {
        EtcdState {
            servers,
            nodes: &self.nodes,
            members: self.members.as_deref(),
            stopped: &self.stopped,
        }
    }
}

/// The servers whose K3s service is not active, asked over ssh all at once; a server without a
/// transport, or that does not answer, counts as stopped.
pub async fn stopped_servers(servers: &[(&str, Option<&dyn Transport>)]) -> Vec<String> {
    let unit = unit_name(NodeRole::Server);
    let running = join_all(servers.iter().map(|(_, t)| async move {
        match t {
            Some(t) => is_active(*t, unit).await,
            None => false,
        }
    }))
    .await;
    servers
        .iter()
        .zip(running)
        .filter(|(_, up)| !up)
        .map(|((s, _), _)| (*s).to_string())
        .collect()
}

/// Reads nodes, etcd's members and each server's service state (all at once).
pub async fn look(
    api: &dyn ClusterApi,
    servers: &[String],
    transports: &BTreeMap<String, Arc<dyn Transport>>,
) -> Result<EtcdLook, ApiError> {
    let asked: Vec<(&str, Option<&dyn Transport>)> = servers
        .iter()
        .map(|s| (s.as_str(), transports.get(s).map(|t| t.as_ref())))
        .collect();
    let (nodes, members, stopped) = tokio::join!(
        api.node_infos(),
        api.etcd_members(),
        stopped_servers(&asked)
    );
    Ok(EtcdLook {
        servers: servers.to_vec(),
        nodes: nodes?,
        members: members?,
        stopped,
    })
}
