//! `k3sctl reset [--host H]...`: uninstall K3s from the spec's hosts (all, or those named),
//! agents first, servers last. When servers stay (a partial reset), each leaving node is first
//! cordoned and drained, a leaving server's etcd member removed (refused if etcd would lose
//! quorum), and its Node deleted after K3s is gone from it; a whole-cluster reset only
//! uninstalls.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::context::{
    LifecyclePlan, api_through, connect_servers, drain_settings, lock_server, look,
};
use super::error::LifecycleError;
use crate::k3s::config::NodeRole;
use crate::kube::{ETCD_MEMBER_NAME, members_of};
use crate::ops::connect::{ConnectOptions, connect_all_noted};
use crate::ops::prepare::{ConnectorFactory, load_spec};
use crate::plan::lifecycle::{
    HostEnd, Leaving, check_server_removal, leaving_plan, leaving_steps, reset_order,
};
use crate::run::FailoverConnector;
use crate::run::lifecycle::probe;
use crate::spec::model::Role;

/// What `reset` was asked.
#[derive(Debug, Clone, Default)]
pub struct ResetRequest {
    /// Hosts to reset; empty: every host of the spec.
    pub hosts: Vec<String>,
    /// How hosts are reached.
    pub connect: ConnectOptions,
}

/// Looks at the hosts (and, for a partial reset, the cluster) and returns the steps; changes
/// nothing.
pub async fn prepare_reset(
    path: &Path,
    request: &ResetRequest,
    factory: ConnectorFactory,
) -> Result<LifecyclePlan, LifecycleError> {
    let spec = load_spec(path)?;
    let all: Vec<String> = spec
        .cluster
        .spec
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let unknown: Vec<&String> = request.hosts.iter().filter(|h| !all.contains(h)).collect();
    if !unknown.is_empty() {
        return Err(LifecycleError::Refused(format!(
            "--host {}: not in the spec (hosts: {})",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            all.join(", ")
        )));
    }
    let selected: Vec<String> = if request.hosts.is_empty() {
        all.clone()
    } else {
        all.iter()
            .filter(|h| request.hosts.contains(h))
            .cloned()
            .collect()
    };
    let whole = spec.cluster.servers().all(|s| selected.contains(&s.name));
    let resolved: Vec<_> = spec
        .hosts()
        .into_iter()
        .filter(|h| selected.contains(&h.name))
        .collect();
    let connected = connect_all_noted(&resolved, request.connect).await;
    if !connected.errors.is_empty() {
        return Err(LifecycleError::Refused(format!(
            "cannot reach {} host(s), so K3s cannot be removed from them:\n{}\n  hint: make them \
             reachable, or leave them out with --host",
            connected.errors.len(),
            connected
                .errors
                .iter()
                .map(|e| format!("  - {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let transports = connected.transports;
    let mut found = BTreeMap::new();
    for name in &selected {
        let transport = transports
            .get(name)
            .ok_or_else(|| LifecycleError::Refused(format!("{name}: no connection")))?;
        let seen = probe(transport.as_ref())
            .await
            .map_err(|e| LifecycleError::Refused(format!("{name}: {e}")))?;
        found.insert(name.clone(), seen);
    }
    let role_of = |name: &str| match spec.cluster.host(name).map(|h| h.role) {
        Some(Role::Server) => NodeRole::Server,
        _ => NodeRole::Agent,
    };
    let drain = drain_settings(&spec);
    let mut notes = Vec::new();
    let (connector, lock_on, plans, servers) = if whole {
        let plans: Vec<_> = selected
            .iter()
            .map(|name| {
                let leaving = Leaving {
                    name: name.clone(),
                    role: role_of(name),
                    registered: false,
                    etcd_member: false,
                    found: found.get(name).cloned(),
                };
                let steps = leaving_steps(&leaving, drain, "reset", HostEnd::Uninstall);
                leaving_plan(&leaving, steps)
            })
            .collect();
        let none: Arc<dyn crate::run::ApiConnector> = Arc::new(FailoverConnector::new(vec![]));
        (none, None, plans, BTreeMap::new())
    } else {
        let leaving_names: Vec<&str> = selected.iter().map(String::as_str).collect();
        let servers = connect_servers(&spec, &leaving_names, request.connect).await;
        let (connector, api) = api_through(&servers, factory).await?;
        let (mut nodes, mut members) = look(api.as_ref()).await?;
        let stopped = servers.stopped().await;
        let mut plans = Vec::new();
        for name in &selected {
            let role = role_of(name);
            let node = nodes.iter().find(|n| &n.name == name).cloned();
            let member_name = node
                .as_ref()
                .and_then(|n| n.annotations.get(ETCD_MEMBER_NAME).cloned());
            let etcd_member = node.as_ref().is_some_and(|n| n.is_etcd_member());
            if role == NodeRole::Server && node.is_some() {
                // Judged as it will be when its turn comes: the servers before it are gone.
                let judged = check_server_removal(&nodes, members.as_deref(), name, &stopped)
                    .map_err(|e| {
                        LifecycleError::Refused(format!("not resetting server {name}: {e}"))
                    })?;
                notes.push(format!("{name}: {judged}"));
                nodes.retain(|n| &n.name != name);
                if let Some(m) = members.as_mut() {
                    let gone: Vec<String> = members_of(name, member_name.as_deref(), m)
                        .iter()
                        .map(|m| m.name.clone())
                        .collect();
                    m.retain(|m| !gone.contains(&m.name));
                }
            }
            let leaving = Leaving {
                name: name.clone(),
                role,
                registered: node.is_some(),
                etcd_member,
                found: found.get(name).cloned(),
            };
            let steps = leaving_steps(&leaving, drain, "reset", HostEnd::Uninstall);
            plans.push(leaving_plan(&leaving, steps));
        }
        // The quorum check before each member's removal asks every server reached, those
        // leaving after it too, whether K3s runs.
        let mut asked = servers.by_name();
        for name in selected.iter().filter(|n| role_of(n) == NodeRole::Server) {
            if let Some(t) = transports.get(name) {
                asked.insert(name.clone(), Arc::clone(t));
            }
        }
        (connector, lock_server(&servers), plans, asked)
    };
    let losses = if whole {
        vec![
            "the whole cluster: its datastore (every Kubernetes object) and every workload"
                .to_string(),
        ]
    } else {
        vec![format!("K3s and its data on {}", selected.join(", "))]
    };
    if whole {
        notes.push(
            "every server is reset: the cluster is gone; `k3sctl apply` builds a new one".into(),
        );
    }
    Ok(LifecyclePlan {
        command: "reset",
        headline: if whole {
            "uninstall K3s from every host of the cluster (agents first, servers last)".into()
        } else {
            format!(
                "take {} out of the cluster and uninstall K3s from it",
                selected.join(", ")
            )
        },
        hosts: reset_order(plans),
        notes,
        join: None,
        transports,
        servers,
        connector,
        lock_on,
        losses,
    })
}
