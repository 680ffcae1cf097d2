//! `k3sctl node remove NAME`: take a node out of the cluster for good. NAME must already be
//! gone from the spec (otherwise `apply` would add it back), or `--force`. Cordon, drain
//! (PodDisruptionBudgets respected), for a server its etcd member removed through K3s (only
//! when etcd keeps its quorum; never the last server), K3s uninstalled from the host when it
//! can be reached, the Node and its node-password secret deleted.

use std::collections::BTreeMap;
use std::path::Path;

use super::context::{
    LifecyclePlan, api_through, connect_host, connect_servers, drain_settings, lock_server, look,
};
use super::error::LifecycleError;
use crate::k3s::config::NodeRole;
use crate::ops::connect::ConnectOptions;
use crate::ops::prepare::{ConnectorFactory, load_spec};
use crate::plan::lifecycle::{
    HostEnd, Leaving, check_server_removal, leaving_plan, leaving_steps, role_of,
};
use crate::run::lifecycle::probe;
use crate::spec::model::Role;

/// What `node remove` was asked.
#[derive(Debug, Clone, Default)]
pub struct RemoveRequest {
    /// The node (and host) name.
    pub name: String,
    /// Remove it although the spec still lists it.
    pub force: bool,
    /// Reach the host at this address (else the spec's, else its Node's InternalIP).
    pub address: Option<String>,
    /// How hosts are reached.
    pub connect: ConnectOptions,
}

/// Looks at the cluster and the host and returns the steps; changes nothing.
pub async fn prepare_remove(
    path: &Path,
    request: &RemoveRequest,
    factory: ConnectorFactory,
) -> Result<LifecyclePlan, LifecycleError> {
    let spec = load_spec(path)?;
    let name = request.name.as_str();
    let in_spec = spec.cluster.host(name);
    if in_spec.is_some() && !request.force {
        return Err(LifecycleError::Refused(format!(
            "{name} is still in the spec ({}): `apply` would install it again\n  hint: delete it \
             from spec.hosts first, or pass --force to remove it anyway",
            path.display()
        )));
    }
    let servers = connect_servers(&spec, &[name], request.connect).await;
    let (connector, api) = api_through(&servers, factory).await?;
    let (nodes, members) = look(api.as_ref()).await?;
    let node = nodes.iter().find(|n| n.name == name);
    let role = match (in_spec, node) {
        (Some(host), _) => match host.role {
            Role::Server => NodeRole::Server,
            Role::Agent => NodeRole::Agent,
        },
        (None, Some(node)) => role_of(node),
        (None, None) if request.address.is_some() => NodeRole::Agent,
        (None, None) => {
            return Err(LifecycleError::Refused(format!(
                "{name}: no such Node in the cluster, and it is not in the spec: nothing to \
                 remove\n  hint: to uninstall K3s from a host that left the cluster, pass \
                 --address ADDRESS"
            )));
        }
    };
    let mut notes = Vec::new();
    let mut losses = vec![format!(
        "K3s on {name}: its data ({}, /etc/rancher/k3s, /var/lib/kubelet)",
        crate::k3s::ports::DATA_DIR
    )];
    let etcd_member = node.is_some_and(|n| n.is_etcd_member())
        || members.as_ref().is_some_and(|m| {
            !crate::kube::members_of(
                name,
                node.and_then(|n| n.annotations.get(crate::kube::ETCD_MEMBER_NAME))
                    .map(String::as_str),
                m,
            )
            .is_empty()
        });
    if role == NodeRole::Server && node.is_some() {
        let stopped = servers.stopped().await;
        let judged = check_server_removal(&nodes, members.as_deref(), name, &stopped)
            .map_err(|e| LifecycleError::Refused(format!("not removing server {name}: {e}")))?;
        notes.push(judged);
        if etcd_member {
            losses.push(format!("{name}'s etcd member (its copy of the datastore)"));
        }
    }
    let address = request.address.clone().or_else(|| {
        in_spec
            .is_none()
            .then(|| node.and_then(|n| n.internal_ip.clone()))
            .flatten()
    });
    let transport = connect_host(&spec, name, address.as_deref(), request.connect).await;
    let (found, transports) = match transport {
        Ok(t) => {
            let found = probe(t.as_ref())
                .await
                .map_err(|e| LifecycleError::Refused(format!("{name}: {e}")))?;
            (Some(found), BTreeMap::from([(name.to_string(), t)]))
        }
        Err(why) => {
            if node.is_some_and(|n| n.ready) {
                return Err(LifecycleError::Refused(format!(
                    "{name} cannot be reached ({why}), but its Node is Ready: K3s still runs \
                     there and would register the Node again once deleted\n  hint: make the host \
                     reachable (or pass --address), or stop K3s on it first"
                )));
            }
            notes.push(format!(
                "{name} cannot be reached ({why}): K3s is not uninstalled from it; its Node is \
                 NotReady, so only the cluster side is cleaned"
            ));
            (None, BTreeMap::new())
        }
    };
    let leaving = Leaving {
        name: name.to_string(),
        role,
        registered: node.is_some(),
        etcd_member,
        found,
    };
    let steps = leaving_steps(
        &leaving,
        drain_settings(&spec),
        "removal",
        HostEnd::Uninstall,
    );
    Ok(LifecyclePlan {
        command: "node remove",
        headline: format!("remove {name} from the cluster and uninstall K3s from it"),
        hosts: vec![leaving_plan(&leaving, steps)],
        notes,
        join: None,
        transports,
        servers: servers.by_name(),
        connector,
        lock_on: lock_server(&servers),
        losses,
    })
}
