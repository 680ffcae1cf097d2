//! A hand-written spec that names a host by its address (`name: 10.0.0.11`) while K3s on that
//! host already runs its node under another name (its host name, or a `node-name` in its
//! files). The spec's host name is rendered as `node-name`, so applying such a spec would
//! restart K3s under a new name: a new Node, the old one left NotReady. That is never what
//! such a spec means; the planner refuses with the name to use instead (`init --from-ansible`
//! and `init --from-hosts` write specs that way). Pure.

use std::net::IpAddr;

use super::desired::Desired;
use super::observed::Observed;
use crate::k3s::effective::{NodeDefaults, Setting, effective};

/// A host named by its address whose K3s runs the node under another name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misnamed {
    /// The spec's name (an address).
    pub host: String,
    /// The name K3s runs the node under.
    pub node: String,
}

/// The hosts of `desired` named by an address whose installed K3s runs the node under another
/// name: the `node-name` its start files set, else its host name lowercased (K3s's default).
/// A host without K3s, one whose files cannot be read, or one whose Node the API lists under
/// the spec's name is none.
pub fn misnamed(desired: &Desired, observed: &Observed) -> Vec<Misnamed> {
    let nodes = observed.nodes_by_name();
    desired
        .hosts
        .iter()
        .filter(|h| h.name.parse::<IpAddr>().is_ok() && !nodes.contains_key(h.name.as_str()))
        .filter_map(|h| {
            let start = observed.hosts.get(&h.name)?.start.as_ref()?;
            let defaults = NodeDefaults {
                hostname: start.hostname.clone(),
                internal_ip: None,
            };
            let files =
                effective(&super::adopt::observed_sources(h.role, start), &defaults).ok()?;
            let node = match files.settings.get("node-name") {
                Some(Setting::Value(name)) => name.clone(),
                _ => start.hostname.as_ref()?.to_ascii_lowercase(),
            };
            (node != h.name).then(|| Misnamed {
                host: h.name.clone(),
                node,
            })
        })
        .collect()
}

/// One line per host for the refusal: what would happen and the exact fix.
pub fn explain(misnamed: &[Misnamed]) -> String {
    misnamed
        .iter()
        .map(|m| {
            format!(
                "host {host} is named by its address, but K3s there runs its node as `{node}`: \
                 apply would restart K3s under the name {host} (a new Node; `{node}` left \
                 NotReady)\n  hint: name the host as its node runs: `name: {node}` with \
                 `address: {host}` in spec.hosts",
                host = m.host,
                node = m.node
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
