//! Running the steps that take nodes out of a cluster (`node remove`, the old side of
//! `node replace`, `reset`): hosts strictly one after another in the order given (the plan
//! puts agents before servers), a failure stops the run (later hosts are skipped), and a host
//! that could not be reached runs only its API steps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::ClusterApi;
use super::context::Shared;
use super::etcd::{self, HandOver};
use super::events::{Event, EventKind};
use super::host_steps::{Done, StepResult};
use super::node_steps::{cordon, drain};
use super::outcome::{HostOutcome, HostStatus, RunSummary};
use super::quorum;
use super::service::QUICK;
use super::step_error::StepError;
use crate::host::{ExecRequest, HostError, Transport};
use crate::k3s::uninstall;
use crate::k3s::unit::unit_name;
use crate::plan::lifecycle::check_server_removal;
use crate::plan::{HostPlan, Step};

/// How long the etcd member removal and the Node deletion may take.
const API_WAIT: Duration = Duration::from_secs(120);
/// How long the uninstall script may take (it kills processes and unmounts).
const UNINSTALL_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs one lifecycle step (cordon and drain too, for a host that may not be reachable: they
/// only need the API); `Ok` says what it did.
pub async fn run_lifecycle_step(
    shared: &Shared,
    host: &HostPlan,
    transport: Option<&dyn Transport>,
    step: &Step,
) -> StepResult {
    let name = host.host.as_str();
    let need_host = || {
        transport.ok_or_else(|| {
            StepError::refused(
                format!("{name}: not reachable, so K3s cannot be stopped or removed on it"),
                "make the host reachable (or pass --address) and re-run",
            )
        })
    };
    match step {
        Step::Cordon { reason } => {
            let by_others = Done::saying("was already cordoned by someone else");
            cordon(shared, name, reason, by_others).await
        }
        Step::Drain(settings) => drain(shared, name, settings).await,
        Step::LeaveEtcd => {
            let api = shared.api().await?;
            // Quorum judged again now, with every server's K3s service asked afresh: one may
            // have stopped since the plan was judged (while the confirmation was open, during
            // the drain), and its Node says Ready for 40 s more.
            judge_removal_now(shared, api.as_ref(), name, transport).await?;
            // Leadership next (when the host answers): removing the leader itself leaves the
            // cluster without one for an election timeout. A member that cannot be asked (K3s
            // stopped, host gone) is not leading either, so that is no reason to stop.
            let handed = match transport {
                Some(t) => match etcd::hand_over_leadership(t).await {
                    Ok(HandOver::MovedTo(to)) => format!("etcd leadership moved to {to}; "),
                    Ok(HandOver::NotLeader) => String::new(),
                    Err(e) => {
                        tracing::warn!(host = %name, "could not move etcd leadership off it: {e}");
                        format!("etcd leadership not moved ({e}); ")
                    }
                },
                None => String::new(),
            };
            let what = api
                .leave_etcd(name, API_WAIT)
                .await
                .map_err(|e| StepError::api(format!("{name}: removing its etcd member"), e))?;
            Ok(Done::saying(format!("{handed}{what}")))
        }
        Step::DeleteNode => {
            let api = shared.api().await?;
            let what = api
                .delete_node(name, API_WAIT)
                .await
                .map_err(|e| StepError::api(format!("{name}: deleting the Node"), e))?;
            Ok(Done::saying(what))
        }
        Step::StopService => {
            let unit = unit_name(host.role);
            let req = ExecRequest::new(format!(
                "systemctl stop {unit} && systemctl disable {unit} >/dev/null 2>&1; \
                 systemctl is-active --quiet {unit} && exit 1; exit 0"
            ))
            .sudo(true)
            .timeout(Some(Duration::from_secs(120)))
            .describe(format!("stopping and disabling {unit}"));
            need_host()?.exec_checked(req).await?;
            Ok(Done::saying(format!("{unit} stopped and disabled")))
        }
        Step::Uninstall { .. } => {
            let req = ExecRequest::new(uninstall::script())
                .sudo(true)
                .timeout(Some(UNINSTALL_TIMEOUT))
                .describe("uninstalling K3s");
            let transport = need_host()?;
            let out = transport.exec_checked(req).await?;
            let removed = out
                .stdout_text()
                .lines()
                .filter(|l| l.starts_with("removed "))
                .count();
            let left = probe(transport).await?;
            if !left.is_empty() {
                return Err(StepError::refused(
                    format!(
                        "{name}: K3s is still partly there after the uninstall: {}",
                        left.join(", ")
                    ),
                    "look at what is left on the host (a process that would not die, a busy \
                     mount), then re-run",
                ));
            }
            Ok(Done::saying(format!(
                "{removed} item(s) removed; nothing of K3s is left"
            )))
        }
        other => Err(StepError::from(format!(
            "{name}: step {} is not a lifecycle step (a k3sctl bug)",
            other.kind()
        ))),
    }
}

/// Whether server `name`'s etcd member may go now: the Nodes, etcd's member list and the K3s
/// service of every server of `Shared::etcd_servers` and of `name` itself (asked over ssh now;
/// a server that does not answer counts as stopped), judged by
/// `plan::lifecycle::check_server_removal`.
async fn judge_removal_now(
    shared: &Shared,
    api: &dyn ClusterApi,
    name: &str,
    transport: Option<&dyn Transport>,
) -> Result<(), StepError> {
    let mut asked: Vec<(&str, Option<&dyn Transport>)> = shared
        .etcd_servers
        .iter()
        .filter(|(s, _)| s.as_str() != name)
        .map(|(s, t)| (s.as_str(), Some(t.as_ref())))
        .collect();
    if let Some(t) = transport.or_else(|| shared.etcd_servers.get(name).map(|t| t.as_ref())) {
        asked.push((name, Some(t)));
    }
    let (nodes, members, stopped) = tokio::join!(
        api.node_infos(),
        api.etcd_members(),
        quorum::stopped_servers(&asked)
    );
    let context = || format!("{name}: looking at etcd's quorum");
    let nodes = nodes.map_err(|e| StepError::api(context(), e))?;
    let members = members.map_err(|e| StepError::api(context(), e))?;
    check_server_removal(&nodes, members.as_deref(), name, &stopped)
        .map(|_| ())
        .map_err(|e| {
            let message = format!("{name}: not removing its etcd member: {e}");
            match message.split_once("\n  hint: ") {
                Some((what, hint)) => StepError::refused(what, hint),
                None => StepError::from(message),
            }
        })
}

/// What of K3s is on the host (see [`uninstall::probe_script`]); empty when it is clean.
pub async fn probe(transport: &dyn Transport) -> Result<Vec<String>, HostError> {
    let req = ExecRequest::new(uninstall::probe_script())
        .sudo(true)
        .timeout(Some(QUICK))
        .describe("looking for K3s's files, units and processes");
    let out = transport.exec_checked(req).await?;
    Ok(uninstall::parse_probe(&out.stdout_text()))
}

/// Runs the hosts' steps one host after another, in order; stops at the first failure.
pub async fn execute_in_order(
    hosts: &[HostPlan],
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    shared: &Shared,
) -> RunSummary {
    let mut outcomes = Vec::new();
    let mut failed: Option<String> = None;
    for host in hosts {
        if let Some(culprit) = &failed {
            let reason = format!("{culprit} failed");
            shared.reporter.report(Event::new(
                &host.host,
                "skip",
                EventKind::Skipped,
                reason.clone(),
            ));
            outcomes.push(HostOutcome {
                host: host.host.clone(),
                status: HostStatus::Skipped { reason },
            });
            continue;
        }
        let transport = transports.get(&host.host).map(|t| t.as_ref());
        let status = run_host_steps(shared, host, transport).await;
        if matches!(status, HostStatus::Failed { .. }) {
            failed = Some(host.host.clone());
        }
        outcomes.push(HostOutcome {
            host: host.host.clone(),
            status,
        });
    }
    RunSummary { hosts: outcomes }
}

async fn run_host_steps(
    shared: &Shared,
    host: &HostPlan,
    transport: Option<&dyn Transport>,
) -> HostStatus {
    let mut changes = 0;
    for step in &host.steps {
        let title = step.title(host.role);
        shared.reporter.report(Event::new(
            &host.host,
            step.kind(),
            EventKind::Start,
            title.clone(),
        ));
        let started = Instant::now();
        match run_lifecycle_step(shared, host, transport, step).await {
            Ok(done) => {
                shared.reporter.report(
                    Event::new(
                        &host.host,
                        step.kind(),
                        EventKind::Done,
                        done.message.unwrap_or(title),
                    )
                    .took(started.elapsed()),
                );
                changes += usize::from(step.is_change());
            }
            Err(error) => {
                shared.reporter.report(
                    Event::new(
                        &host.host,
                        step.kind(),
                        EventKind::Failed,
                        error.to_string(),
                    )
                    .took(started.elapsed()),
                );
                return HostStatus::Failed {
                    step: step.kind().into(),
                    hint: error.hint(),
                    error: error.to_string(),
                };
            }
        }
    }
    HostStatus::Ok { changes }
}
