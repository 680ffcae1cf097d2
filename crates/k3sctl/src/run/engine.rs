//! The order of an apply: binaries to every host (bounded), then the nodes whose steps leave
//! K3s running (files taken over, labels: `HostPlan::leaves_k3s_running`) all side by side,
//! then the server that starts (or converts) the cluster, then the other servers one at a
//! time, then the agent groups side by side with hosts one at a time inside a group (or up to
//! the group's join concurrency). A failure stops its group (the servers are one group); the
//! other groups go on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;

use super::context::Shared;
use super::events::{Event, EventKind};
use super::host_steps::{Staged, prestage, run_host, upload_binary};
use super::outcome::{HostOutcome, HostStatus, RunSummary};
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::plan::{FileContent, HostPlan, Plan, Step};

/// Name of the group of agents that have none in the spec.
pub const DEFAULT_GROUP: &str = "default";

/// Executes the plan.
pub async fn execute(
    plan: &Plan,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    shared: &Shared,
) -> RunSummary {
    let mut statuses: BTreeMap<String, HostStatus> = BTreeMap::new();

    // Phase 0: binaries, all hosts at once within the upload limit; then, on hosts not in the
    // cluster yet, the files and reloads that need no token (see `prestage`).
    let uploads = plan.hosts.iter().filter_map(|host| {
        let transport = transports.get(&host.host)?;
        Some(async move {
            let status = upload_binary(shared, host, transport.as_ref()).await;
            let HostStatus::Ok { changes } = status else {
                return (host.host.clone(), status, Staged::new());
            };
            match prestage(shared, host, transport.as_ref()).await {
                Ok((staged, more)) => (
                    host.host.clone(),
                    HostStatus::Ok {
                        changes: changes + more,
                    },
                    staged,
                ),
                Err(failed) => (host.host.clone(), failed, Staged::new()),
            }
        })
    });
    let mut staged: BTreeMap<String, Staged> = BTreeMap::new();
    for (host, status, done) in join_all(uploads).await {
        statuses.insert(host.clone(), status);
        staged.insert(host, done);
    }

    let uploaded = statuses.clone();
    let prepared = PhaseZero {
        uploaded: &uploaded,
        staged: &staged,
    };

    // Phase 0b: nodes whose K3s keeps running (an adoption writes files, reloads systemd and
    // records; nothing restarts, nothing to wait for): all at once. A failure among them
    // stops their group as any failure does.
    let token = shared.token().await;
    let quiet: BTreeSet<&str> = plan
        .hosts
        .iter()
        .filter(|h| h.leaves_k3s_running() && writes_resolve(h, token.as_ref()))
        .map(|h| h.host.as_str())
        .collect();
    let quiet_runs = plan
        .hosts
        .iter()
        .filter(|h| quiet.contains(h.host.as_str()))
        .map(|host| run_one(shared, transports, prepared, host));
    let mut server_failed: Option<String> = None;
    let mut group_failed: BTreeMap<&str, String> = BTreeMap::new();
    for ((name, status), host) in join_all(quiet_runs).await.into_iter().zip(
        plan.hosts
            .iter()
            .filter(|h| quiet.contains(h.host.as_str())),
    ) {
        if matches!(status, HostStatus::Failed { .. }) {
            if host.role == NodeRole::Server {
                server_failed.get_or_insert_with(|| name.clone());
            } else {
                group_failed
                    .entry(host.group.as_deref().unwrap_or(DEFAULT_GROUP))
                    .or_insert_with(|| name.clone());
            }
        }
        statuses.insert(name, status);
    }

    // Phase 1: the first server alone.
    let first = plan.hosts.iter().find(|h| h.first_server);
    let mut first_failed = false;
    if let Some(first) = first {
        let (name, status) = run_one(shared, transports, prepared, first).await;
        first_failed = matches!(status, HostStatus::Failed { .. });
        statuses.insert(name, status);
    }

    // Phase 2: the other servers, one at a time (each joins and becomes a voter before the
    // next; a failure stops the servers after it, so at most one etcd member is in trouble).
    for host in plan
        .hosts
        .iter()
        .filter(|h| !h.first_server && h.role == NodeRole::Server)
        .filter(|h| !quiet.contains(h.host.as_str()))
    {
        let status = if first_failed {
            skipped(shared, host, "the first server failed".into())
        } else if let Some(culprit) = &server_failed {
            skipped(shared, host, format!("server {culprit} failed"))
        } else {
            run_one(shared, transports, prepared, host).await.1
        };
        if matches!(status, HostStatus::Failed { .. }) {
            server_failed = Some(host.host.clone());
        }
        statuses.insert(host.host.clone(), status);
    }

    // Phase 3: agent groups side by side, hosts in a group one after another (or a few at
    // once).
    let mut groups: BTreeMap<&str, Vec<&HostPlan>> = BTreeMap::new();
    for host in plan
        .hosts
        .iter()
        .filter(|h| !h.first_server && h.role == NodeRole::Agent)
        .filter(|h| !quiet.contains(h.host.as_str()))
    {
        groups
            .entry(host.group.as_deref().unwrap_or(DEFAULT_GROUP))
            .or_default()
            .push(host);
    }
    let group_failed = &group_failed;
    let group_runs = groups.into_iter().map(|(group, hosts)| async move {
        let limit = shared.options.join_concurrency_of(group);
        let halted = if first_failed {
            Some("the first server failed".to_owned())
        } else {
            group_failed
                .get(group)
                .map(|culprit| format!("{culprit} failed in group {group}"))
        };
        run_group(shared, transports, prepared, group, hosts, limit, halted).await
    });
    for results in join_all(group_runs).await {
        statuses.extend(results);
    }

    let hosts = plan
        .hosts
        .iter()
        .map(|h| HostOutcome {
            host: h.host.clone(),
            status: statuses
                .remove(&h.host)
                .unwrap_or(HostStatus::Ok { changes: 0 }),
        })
        .collect();
    RunSummary { hosts }
}

/// Whether every file a host writes can be rendered with the token known now (a host that
/// waits for the first server's token is not run ahead).
fn writes_resolve(host: &HostPlan, token: Option<&crate::secret::Secret>) -> bool {
    host.steps.iter().all(|step| match step {
        Step::WriteFile { content, .. } => {
            matches!(content, FileContent::LocalFile { .. }) || content.resolve(token).is_some()
        }
        _ => true,
    })
}

/// Runs one group's hosts in order, at most `limit` at once. A failure stops the group: hosts
/// already running finish, hosts not started yet are skipped. `halted` is why the group may
/// start nothing at all (the first server failed, one of its hosts failed before).
async fn run_group(
    shared: &Shared,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    prepared: PhaseZero<'_>,
    group: &str,
    hosts: Vec<&HostPlan>,
    limit: usize,
    halted: Option<String>,
) -> Vec<(String, HostStatus)> {
    let mut out = Vec::new();
    let mut stopped: Option<String> = halted;
    let mut running = FuturesUnordered::new();
    let mut waiting = hosts.into_iter().peekable();
    // joinConcurrency is for nodes joining: a node already in the cluster (a restart) runs
    // alone in its group, so a group never has two of its running nodes down at once.
    let mut alone = false;
    loop {
        while !alone && running.len() < limit.max(1) && stopped.is_none() {
            let Some(next) = waiting.peek() else { break };
            if next.in_cluster && !running.is_empty() {
                break;
            }
            let Some(host) = waiting.next() else { break };
            alone = host.in_cluster;
            running.push(run_one(shared, transports, prepared, host));
        }
        let Some((name, status)) = running.next().await else {
            break;
        };
        if running.is_empty() {
            alone = false;
        }
        if matches!(status, HostStatus::Failed { .. }) && stopped.is_none() {
            stopped = Some(format!("{name} failed in group {group}"));
        }
        out.push((name, status));
    }
    for host in waiting {
        let reason = stopped
            .clone()
            .unwrap_or_else(|| "the first server failed".into());
        shared.reporter.report(Event::new(
            &host.host,
            "skip",
            EventKind::Skipped,
            reason.clone(),
        ));
        out.push((host.host.clone(), HostStatus::Skipped { reason }));
    }
    out
}

fn skipped(shared: &Shared, host: &HostPlan, reason: String) -> HostStatus {
    shared.reporter.report(Event::new(
        &host.host,
        "skip",
        EventKind::Skipped,
        reason.clone(),
    ));
    HostStatus::Skipped { reason }
}

/// What phase 0 did per host: the status after upload and staging, and the staged steps.
#[derive(Clone, Copy)]
struct PhaseZero<'a> {
    uploaded: &'a BTreeMap<String, HostStatus>,
    staged: &'a BTreeMap<String, Staged>,
}

/// Runs one host's remaining steps, unless its upload or staging already failed.
async fn run_one(
    shared: &Shared,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    prepared: PhaseZero<'_>,
    host: &HostPlan,
) -> (String, HostStatus) {
    let uploaded = prepared.uploaded;
    let status = match (uploaded.get(&host.host), transports.get(&host.host)) {
        (_, None) => HostStatus::Failed {
            step: "connect".into(),
            error: format!("{}: no connection to this host", host.host),
            hint: None,
        },
        (Some(failed @ HostStatus::Failed { .. }), _) => failed.clone(),
        (prior, Some(transport)) => {
            let done = match prior {
                Some(HostStatus::Ok { changes }) => *changes,
                _ => 0,
            };
            let none = Staged::new();
            let staged = prepared.staged.get(&host.host).unwrap_or(&none);
            run_host(shared, host, transport.as_ref(), done, staged).await
        }
    };
    (host.host.clone(), status)
}
