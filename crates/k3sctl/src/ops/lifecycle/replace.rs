//! `k3sctl node replace OLD --with NEW`: the canary cutover of the seeds' runbook, one node at
//! a time. NEW (in the spec) is installed and joins through the apply engine, and must be Ready
//! (and, for a server, a voting etcd member) before anything happens to OLD; then OLD is
//! cordoned and drained, so its workloads move to NEW.
//!
//! Agents: `--stop-old` stops and disables K3s on OLD (kept installed), `--delete-old`
//! uninstalls K3s from it and deletes its Node. Servers: surge first, then remove — with NEW a
//! voter, OLD's etcd member is removed (only when etcd keeps its quorum, checked at that moment),
//! K3s on OLD stopped and its Node deleted; `--delete-old` also uninstalls K3s from it.
//!
//! OLD may stay in the spec during the cutover (agents) or already be replaced by NEW there (a
//! server: the spec keeps an odd number of servers); it is then reached at its Node's
//! InternalIP with the spec's `hostDefaults`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::context::{Join, LifecyclePlan, connect_host, drain_settings, look};
use super::error::LifecycleError;
use crate::k3s::config::NodeRole;
use crate::kube::{ETCD_MEMBER_NAME, members_of};
use crate::ops::connect::ConnectOptions;
use crate::ops::prepare::{ConnectorFactory, prepare};
use crate::plan::Plan;
use crate::plan::lifecycle::{HostEnd, Leaving, leaving_plan, leaving_steps, role_of};
use crate::run::lifecycle::probe;
use crate::run::{
    ApiConnector, Event, EventKind, FailoverConnector, HostOutcome, HostStatus, Reporter,
    RunOptions, RunSummary, execute,
};
use crate::spec::model::Role;

/// What `node replace` was asked.
#[derive(Debug, Clone, Default)]
pub struct ReplaceRequest {
    /// The node being replaced.
    pub old: String,
    /// Its replacement (in the spec).
    pub new: String,
    /// Stop and disable K3s on OLD once drained (agents; servers always stop).
    pub stop_old: bool,
    /// Uninstall K3s from OLD and delete its Node once drained.
    pub delete_old: bool,
    /// How hosts are reached.
    pub connect: ConnectOptions,
}

/// How long NEW may take to be Ready (and a voter) after its join steps.
const JOIN_WAIT: Duration = Duration::from_secs(300);

/// Looks at the cluster and both hosts and returns the steps; changes nothing.
pub async fn prepare_replace(
    path: &Path,
    request: &ReplaceRequest,
    factory: ConnectorFactory,
) -> Result<LifecyclePlan, LifecycleError> {
    let (old, new) = (request.old.as_str(), request.new.as_str());
    if old == new {
        return Err(LifecycleError::Refused(format!(
            "--with {new}: a node cannot replace itself"
        )));
    }
    let prepared = prepare(path, request.connect, factory).await?;
    let spec = &prepared.spec;
    let Some(new_host) = spec.cluster.host(new) else {
        return Err(LifecycleError::Refused(format!(
            "{new} is not in the spec ({}): add it to spec.hosts first, with the role {old} has",
            path.display()
        )));
    };
    let new_role = match new_host.role {
        Role::Server => NodeRole::Server,
        Role::Agent => NodeRole::Agent,
    };
    let api = match &prepared.api {
        Some(api) => Arc::clone(api),
        None => {
            return Err(LifecycleError::NoApi(
                "no running server answered (replace needs a running cluster)".into(),
            ));
        }
    };
    let (nodes, members) = look(api.as_ref()).await?;
    let node = nodes.iter().find(|n| n.name == old);
    let old_role = match (spec.cluster.host(old), node) {
        (Some(h), _) if h.role == Role::Server => NodeRole::Server,
        (Some(_), _) => NodeRole::Agent,
        (None, Some(n)) => role_of(n),
        (None, None) => {
            return Err(LifecycleError::Refused(format!(
                "{old}: no such Node in the cluster, and it is not in the spec: nothing to \
                 replace"
            )));
        }
    };
    if old_role != new_role {
        return Err(LifecycleError::Refused(format!(
            "{old} is {} but {new} is {} in the spec: a replacement takes the same role",
            role_name(old_role),
            role_name(new_role)
        )));
    }
    let mut join_plan = prepared.plan.clone();
    join_plan.hosts.retain(|h| h.host == new);
    if join_plan.hosts.is_empty() {
        return Err(LifecycleError::Refused(format!(
            "{new} was left out of the plan (unreachable?)"
        )));
    }
    let server = old_role == NodeRole::Server;

    // OLD: through the spec's connection, else at its Node's address.
    let transport = match prepared.transports.get(old) {
        Some(t) => Ok(Arc::clone(t)),
        None => {
            let address = node.and_then(|n| n.internal_ip.clone());
            connect_host(spec, old, address.as_deref(), request.connect).await
        }
    };
    let mut notes = Vec::new();
    let (found, transports) = match transport {
        Ok(t) => {
            let found = probe(t.as_ref())
                .await
                .map_err(|e| LifecycleError::Refused(format!("{old}: {e}")))?;
            (Some(found), BTreeMap::from([(old.to_string(), t)]))
        }
        Err(why) => {
            notes.push(format!(
                "{old} cannot be reached ({why}): K3s on it is neither stopped nor uninstalled"
            ));
            (None, BTreeMap::new())
        }
    };
    let etcd_member = node.is_some_and(|n| n.is_etcd_member())
        || members.as_ref().is_some_and(|m| {
            !members_of(
                old,
                node.and_then(|n| n.annotations.get(ETCD_MEMBER_NAME))
                    .map(String::as_str),
                m,
            )
            .is_empty()
        });
    let end = match (server, request.delete_old, request.stop_old) {
        (_, true, _) => HostEnd::Uninstall,
        (true, false, _) => HostEnd::StopAndDelete,
        (false, false, true) => HostEnd::Stop,
        (false, false, false) => HostEnd::Keep,
    };
    let leaving = Leaving {
        name: old.to_string(),
        role: old_role,
        registered: node.is_some(),
        etcd_member,
        found,
    };
    let reason = format!("replaced by {new}");
    let steps = leaving_steps(&leaving, drain_settings(spec), &reason, end);
    if server {
        notes.push(format!(
            "{old}'s etcd member is removed only once {new} is a voting member, and only if etcd \
             keeps its quorum then"
        ));
    }
    if spec.cluster.host(old).is_some() && end != HostEnd::Keep {
        notes.push(format!(
            "{old} is still in the spec: remove it from spec.hosts, or `apply` will start K3s on \
             it again"
        ));
    }
    if matches!(end, HostEnd::Stop | HostEnd::StopAndDelete) {
        let address = node
            .and_then(|n| n.internal_ip.clone())
            .map(|a| format!(" --address {a}"))
            .unwrap_or_default();
        notes.push(format!(
            "K3s stays installed on {old} (stopped): once it is out of the spec, `k3sctl node \
             remove {old}{address}` uninstalls it"
        ));
    }
    let mut losses = Vec::new();
    if etcd_member && server {
        losses.push(format!("{old}'s etcd member"));
    }
    if end == HostEnd::Uninstall {
        losses.push(format!("K3s and its data on {old}"));
    }
    // The API for OLD's steps: through the spec's servers other than OLD (NEW among them).
    let connectors = spec
        .cluster
        .servers()
        .filter(|h| h.name != old)
        .filter_map(|h| {
            prepared
                .transports
                .get(&h.name)
                .map(|t| (h.name.clone(), factory(Arc::clone(t), None)))
        })
        .collect();
    let connector: Arc<dyn ApiConnector> = Arc::new(FailoverConnector::new(connectors));
    // Every server reached, OLD and NEW too: the quorum check before OLD's member goes asks
    // them all whether K3s runs.
    let servers = spec
        .cluster
        .servers()
        .filter_map(|h| {
            let t = prepared
                .transports
                .get(&h.name)
                .or(transports.get(&h.name))?;
            Some((h.name.clone(), Arc::clone(t)))
        })
        .collect();
    let lock_on = (prepared.first_server != old)
        .then(|| {
            prepared
                .transports
                .get(&prepared.first_server)
                .map(|t| (prepared.first_server.clone(), Arc::clone(t)))
        })
        .flatten();
    Ok(LifecyclePlan {
        command: "node replace",
        headline: format!("join {new} and move {old}'s work to it"),
        hosts: vec![leaving_plan(&leaving, steps)],
        notes,
        join: Some(Join {
            prepared: Box::new(prepared),
            plan: join_plan,
            node: new.to_string(),
            server,
        }),
        transports,
        servers,
        connector,
        lock_on,
        losses,
    })
}

fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Server => "a server",
        NodeRole::Agent => "an agent",
    }
}

/// Runs NEW's join steps with the apply engine, then waits until it is Ready (and a voter).
pub(super) async fn run_join(join: &Join, reporter: Arc<dyn Reporter>) -> RunSummary {
    let prepared = &join.prepared;
    let upload = |name: &str| name == join.node;
    let shared = prepared.run_state(upload, RunOptions::default(), Arc::clone(&reporter));
    let plan: &Plan = &join.plan;
    let summary = execute(plan, &prepared.transports, &shared).await;
    if !summary.success() {
        return summary;
    }
    let wait = async {
        let api = shared.api().await?;
        api.wait_node_ready(&join.node, None, JOIN_WAIT)
            .await
            .map_err(|e| format!("{}: node not Ready: {e}", join.node))?;
        if join.server {
            api.wait_etcd_voter(&join.node, JOIN_WAIT)
                .await
                .map_err(|e| format!("{}: not a voting etcd member: {e}", join.node))?;
        }
        Ok::<(), String>(())
    };
    let status = match wait.await {
        Ok(()) => {
            reporter.report(Event::new(
                &join.node,
                "joined",
                EventKind::Done,
                if join.server {
                    "Ready and a voting etcd member"
                } else {
                    "Ready"
                },
            ));
            None
        }
        Err(error) => {
            reporter.report(Event::new(
                &join.node,
                "joined",
                EventKind::Failed,
                error.clone(),
            ));
            Some(HostStatus::Failed {
                step: "joined".into(),
                error,
                hint: None,
            })
        }
    };
    let mut summary = summary;
    if let Some(failed) = status {
        summary.hosts.retain(|h| h.host != join.node);
        summary.hosts.push(HostOutcome {
            host: join.node.clone(),
            status: failed,
        });
    }
    summary
}
