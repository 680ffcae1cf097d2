//! Reading what the quorum check needs (the judgement is `plan::upgrade::quorum`, pure): the
//! Node objects, etcd's own member list through the first server (`/db/info`), and whether
//! K3s runs on each server (asked over SSH, since a stopped server's Node stays Ready for the
//! node-monitor grace period).

use futures_util::future::join_all;

use super::decide::server_running;
use super::error::UpgradeError;
use super::observe::Cluster;
use crate::kube::{EtcdMember, KubeError, NodeInfo, etcd_members, list_nodes};
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

/// Reads nodes, etcd's members and each server's service state (all at once).
pub async fn look(cluster: &Cluster) -> Result<EtcdLook, UpgradeError> {
    let servers: Vec<String> = cluster.servers().into_iter().map(str::to_string).collect();
    let client = &cluster.api.client;
    let running = join_all(servers.iter().map(|s| async move {
        match cluster.transport(s) {
            Ok(t) => server_running(t.as_ref()).await,
            Err(_) => false,
        }
    }));
    let (nodes, members, running) = tokio::join!(list_nodes(client), etcd_members(client), running);
    let members = match members {
        Ok(m) => m,
        // A server that is restarting cannot answer; the Node view and SSH still count.
        Err(KubeError::Api { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let stopped = servers
        .iter()
        .zip(running)
        .filter(|(_, up)| !up)
        .map(|(s, _)| s.clone())
        .collect();
    Ok(EtcdLook {
        servers,
        nodes: nodes?,
        members,
        stopped,
    })
}
