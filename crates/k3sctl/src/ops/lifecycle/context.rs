//! What the lifecycle operations share: reaching the servers (and a host that is no longer in
//! the spec), the API through a server that stays, the plan they show and run, and the
//! confirmation text.

use crate::ops::confirm::ConsentRequest;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;

use super::error::LifecycleError;
use crate::host::Transport;
use crate::kube::{EtcdMember, NodeInfo};
use crate::ops::connect::{ConnectOptions, connect, connect_all_noted};
use crate::ops::prepare::{ConnectorFactory, Prepared};
use crate::plan::{DrainSettings, HostPlan, Plan, render_host_plans};
use crate::run::lock::{Acquired, LockHolder, acquire, release};
use crate::run::{
    ApiConnector, ClusterApi, Event, EventKind, FailoverConnector, Reporter, RunOptions,
    RunSummary, Shared,
};
use crate::spec::LoadedSpec;
use crate::spec::model::{Host, Role};

/// The joining half of `node replace`: the apply plan restricted to the new host.
pub(super) struct Join {
    pub(super) prepared: Box<Prepared>,
    pub(super) plan: Plan,
    /// The new node, and whether it is a server (then it must become a voter).
    pub(super) node: String,
    pub(super) server: bool,
}

/// A prepared lifecycle operation: shown by `--dry-run`, confirmed, then run.
pub struct LifecyclePlan {
    /// The command.
    pub command: &'static str,
    /// The leaving hosts' steps, in the order they run.
    pub hosts: Vec<HostPlan>,
    /// Judgements made while preparing (quorum, unreachable hosts) and what to do afterwards.
    pub notes: Vec<String>,
    pub(super) join: Option<Join>,
    pub(super) transports: BTreeMap<String, Arc<dyn Transport>>,
    /// The cluster's servers reached (staying and leaving), whose K3s service is asked again
    /// right before an etcd member is removed.
    pub(super) servers: BTreeMap<String, Arc<dyn Transport>>,
    pub(super) connector: Arc<dyn ApiConnector>,
    /// The server the apply lock is taken on (`None`: no lock, e.g. a whole-cluster reset).
    pub(super) lock_on: Option<(String, Arc<dyn Transport>)>,
    pub(super) losses: Vec<String>,
    pub(super) headline: String,
}

/// What a lifecycle operation did.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleReport {
    /// Per host (the joining host first, for `node replace`).
    pub summary: RunSummary,
    /// What to do next.
    pub notes: Vec<String>,
}

impl LifecyclePlan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hosts.iter().all(|h| h.steps.is_empty())
            && self.join.as_ref().is_none_or(|j| !j.plan.has_changes())
    }

    /// The steps as text, in order (the joining host first).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(join) = &self.join {
            out.push_str(&render_host_plans(&join.plan.hosts));
            let _ = writeln!(
                out,
                "  … wait until {} is Ready{}",
                join.node,
                if join.server {
                    " and a voting etcd member"
                } else {
                    ""
                }
            );
        }
        out.push_str(&render_host_plans(&self.hosts));
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// What the confirmation shows.
    pub fn consent(&self) -> ConsentRequest {
        let mut items = Vec::new();
        if let Some(join) = &self.join
            && join.plan.has_changes()
        {
            items.push(format!("{}: install K3s and join the cluster", join.node));
        }
        for host in self.hosts.iter().filter(|h| !h.steps.is_empty()) {
            let steps: Vec<&str> = host.steps.iter().map(|s| s.kind()).collect();
            items.push(format!("{}: {}", host.host, steps.join(", ")));
        }
        ConsentRequest::new(self.command, self.headline.clone(), items)
            .with_losses(self.losses.clone())
    }

    /// Runs the plan: the lock, the join (if any), then the leaving hosts one at a time.
    pub async fn run(self, reporter: Arc<dyn Reporter>) -> Result<LifecycleReport, LifecycleError> {
        let holder = LockHolder::current();
        if let Some((server, transport)) = &self.lock_on {
            let acquired = acquire(transport.as_ref(), &holder, false)
                .await
                .map_err(crate::ops::OpsError::from)?;
            if let Acquired::TookOver { previous, why } = acquired {
                reporter.report(Event::new(
                    server,
                    "lock",
                    EventKind::Info,
                    format!("taking over the lock of an interrupted run ({previous}): {why}"),
                ));
            }
        }
        let result = self.run_locked(Arc::clone(&reporter)).await;
        if let Some((_, transport)) = &self.lock_on {
            release(transport.as_ref(), &holder)
                .await
                .map_err(crate::ops::OpsError::from)?;
        }
        result
    }

    async fn run_locked(
        &self,
        reporter: Arc<dyn Reporter>,
    ) -> Result<LifecycleReport, LifecycleError> {
        let mut summary = RunSummary::default();
        if let Some(join) = &self.join {
            let joined = super::replace::run_join(join, Arc::clone(&reporter)).await;
            let ok = joined.success();
            summary.hosts.extend(joined.hosts);
            if !ok {
                return Ok(LifecycleReport {
                    summary,
                    notes: vec![format!(
                        "{} did not join: nothing was done to the old node",
                        join.node
                    )],
                });
            }
        }
        let mut shared = Shared::new(
            BTreeMap::new(),
            reporter,
            RunOptions::default(),
            Arc::clone(&self.connector),
            None,
        );
        shared.etcd_servers = self.servers.clone();
        let left =
            crate::run::lifecycle::execute_in_order(&self.hosts, &self.transports, &shared).await;
        summary.hosts.extend(left.hosts);
        Ok(LifecycleReport {
            notes: if summary.success() {
                self.notes.clone()
            } else {
                Vec::new()
            },
            summary,
        })
    }
}

/// The spec's drain settings (`upgrade.drainTimeout`, `deleteEmptyDirData`, `force`).
pub(super) fn drain_settings(spec: &LoadedSpec) -> DrainSettings {
    let policy = &spec.cluster.spec.upgrade;
    DrainSettings {
        timeout_secs: policy.drain_timeout.as_secs(),
        delete_empty_dir_data: policy.delete_empty_dir_data,
        force: policy.force,
        disable_eviction: policy.disable_eviction,
    }
}

/// The servers of the spec that stay (not in `leaving`), connected; failures are left out (the
/// API is reached through whichever answers).
pub(super) struct Servers {
    /// Transports of the servers reached, in spec order.
    pub(super) reached: Vec<(String, Arc<dyn Transport>)>,
    /// Servers not reached, with why.
    pub(super) unreachable: Vec<String>,
}

impl Servers {
    /// The servers reached, by name.
    pub(super) fn by_name(&self) -> BTreeMap<String, Arc<dyn Transport>> {
        self.reached
            .iter()
            .map(|(n, t)| (n.clone(), Arc::clone(t)))
            .collect()
    }

    /// The servers reached whose K3s service is not active (asked over ssh: a stopped server's
    /// Node stays Ready for the node-monitor grace period, so the Node alone cannot tell).
    pub(super) async fn stopped(&self) -> Vec<String> {
        let asked: Vec<(&str, Option<&dyn Transport>)> = self
            .reached
            .iter()
            .map(|(name, t)| (name.as_str(), Some(t.as_ref())))
            .collect();
        crate::run::quorum::stopped_servers(&asked).await
    }
}

/// Connects to the spec's servers except `leaving`.
pub(super) async fn connect_servers(
    spec: &LoadedSpec,
    leaving: &[&str],
    options: ConnectOptions,
) -> Servers {
    let hosts: Vec<_> = spec
        .hosts()
        .into_iter()
        .filter(|h| h.role == Role::Server && !leaving.contains(&h.name.as_str()))
        .collect();
    let connected = connect_all_noted(&hosts, options).await;
    let reached = hosts
        .iter()
        .filter_map(|h| {
            connected
                .transports
                .get(&h.name)
                .map(|t| (h.name.clone(), Arc::clone(t)))
        })
        .collect();
    Servers {
        reached,
        unreachable: connected.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The API through the given servers (the first that answers), connected now.
pub(super) async fn api_through(
    servers: &Servers,
    factory: ConnectorFactory,
) -> Result<(Arc<dyn ApiConnector>, Arc<dyn ClusterApi>), LifecycleError> {
    let connectors = servers
        .reached
        .iter()
        .map(|(name, t)| (name.clone(), factory(Arc::clone(t), None)))
        .collect();
    let connector: Arc<dyn ApiConnector> = Arc::new(FailoverConnector::new(connectors));
    let api = connector.connect().await.map_err(|e| {
        let mut why = e.to_string();
        if !servers.unreachable.is_empty() {
            why.push_str(&format!(
                "; not reached: {}",
                servers.unreachable.join("; ")
            ));
        }
        LifecycleError::NoApi(why)
    })?;
    Ok((connector, api))
}

/// The Nodes and etcd's member list.
pub(super) async fn look(
    api: &dyn ClusterApi,
) -> Result<(Vec<NodeInfo>, Option<Vec<EtcdMember>>), LifecycleError> {
    let nodes = api
        .node_infos()
        .await
        .map_err(|e| LifecycleError::NoApi(e.to_string()))?;
    let members = api.etcd_members().await.unwrap_or(None);
    Ok((nodes, members))
}

/// Connects to host `name`: as the spec describes it when it is there, else over SSH at
/// `address` with the spec's `hostDefaults`. `Err` says why it could not be reached.
pub(super) async fn connect_host(
    spec: &LoadedSpec,
    name: &str,
    address: Option<&str>,
    options: ConnectOptions,
) -> Result<Arc<dyn Transport>, String> {
    let resolved = match (spec.cluster.host(name), address) {
        (Some(host), None) => spec.resolve_host(host),
        (in_spec, Some(address)) => {
            let mut host = in_spec
                .cloned()
                .unwrap_or_else(|| outside_host(name, address));
            address.clone_into(&mut host.address);
            spec.resolve_host(&host)
        }
        (None, None) => {
            return Err(format!(
                "{name} is not in the spec and its Node reports no InternalIP address \
                 (pass --address)"
            ));
        }
    };
    connect(&resolved, options).await.map_err(|e| e.to_string())
}

/// A host that is not in the spec, reached over SSH with `hostDefaults`.
fn outside_host(name: &str, address: &str) -> Host {
    Host::new(name, address, Role::Agent)
}

/// The one server to take the apply lock on: the first reached.
pub(super) fn lock_server(servers: &Servers) -> Option<(String, Arc<dyn Transport>)> {
    servers
        .reached
        .first()
        .map(|(n, t)| (n.clone(), Arc::clone(t)))
}
