//! Embedded etcd, as K3s runs it for HA: Debian's etcd binary as a supervised child with K3s's
//! TLS layout (`server/tls/etcd/`), data in `server/db/etcd`, member names `<node>-<8 hex>`,
//! joining servers added as learners and promoted by the etcd leader's server, and the
//! etcd-backed datastore every server serves the API from.

pub mod args;
pub mod bootstrap;
pub mod client;
pub mod cluster;
pub mod critical;
pub mod datastore;
pub mod join;
pub mod leader;
pub mod members;
pub mod pki;
pub mod process;
pub mod reset;
pub mod wire;

use std::sync::Arc;

use client::EtcdClient;

/// Key prefix under which each server publishes its API address (`<member name>` → `ip:port`),
/// read back by `/v1-k3s/apiservers` for the agents' client load balancer.
pub const API_ADDRESS_PREFIX: &str = "/k3s-sim/apiaddresses/";

/// The local member as the rest of the server sees it.
#[derive(Debug)]
pub struct EtcdHandle {
    /// Client of the local member (https://127.0.0.1:2379).
    pub client: Arc<EtcdClient>,
    /// Member name (`<node>-<8 hex>`, also in `server/db/etcd/name`).
    pub member: String,
    /// The node address etcd advertises.
    pub address: String,
}

/// The member's state as the `EtcdIsVoter` Node condition reports it (K3s `MemberStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// A voting member.
    Voter,
    /// Not yet promoted.
    Learner,
    /// Not in the member list.
    Unjoined,
    /// etcd did not answer.
    Unhealthy,
}

impl MemberStatus {
    /// The Node condition K3s sets for this status: (status, reason, message).
    pub fn condition(self) -> (&'static str, &'static str, &'static str) {
        match self {
            MemberStatus::Voter => (
                "True",
                "MemberNotLearner",
                "Node is a voting member of the etcd cluster",
            ),
            MemberStatus::Learner => (
                "False",
                "MemberIsLearner",
                "Node has not been promoted to voting member of the etcd cluster",
            ),
            MemberStatus::Unjoined => (
                "False",
                "NotAMember",
                "Node is not a member of the etcd cluster",
            ),
            MemberStatus::Unhealthy => ("False", "Unhealthy", "Node is unhealthy"),
        }
    }
}

impl EtcdHandle {
    /// Publishes this server's API address for agents.
    pub fn publish_api_address(&self, addr: &str) -> Result<(), client::EtcdError> {
        self.client.write(
            &format!("{API_ADDRESS_PREFIX}{}", self.member),
            crate::store::Write::Put(addr.as_bytes()),
            crate::store::Expect::Any,
        )?;
        Ok(())
    }

    /// The API addresses of current members (published addresses of removed members left out).
    pub fn api_addresses(&self) -> Vec<String> {
        let members: Vec<String> = self
            .client
            .member_list()
            .map(|ms| ms.into_iter().map(|m| m.name).collect())
            .unwrap_or_default();
        let mut out: Vec<String> = self
            .client
            .range_prefix(API_ADDRESS_PREFIX)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                let name = r.key.trim_start_matches(API_ADDRESS_PREFIX);
                members.is_empty() || members.iter().any(|m| m == name)
            })
            .map(|r| String::from_utf8_lossy(&r.value).to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether the local member sees a leader (the cluster has quorum).
    pub fn has_leader(&self) -> bool {
        self.client.status().is_ok_and(|s| s.leader != 0)
    }

    /// This member's status in the member list.
    pub fn status(&self) -> MemberStatus {
        match self.client.member_list() {
            Ok(ms) => match ms.iter().find(|m| m.name == self.member) {
                Some(m) if m.is_learner => MemberStatus::Learner,
                Some(_) => MemberStatus::Voter,
                None => MemberStatus::Unjoined,
            },
            Err(_) => MemberStatus::Unhealthy,
        }
    }
}
