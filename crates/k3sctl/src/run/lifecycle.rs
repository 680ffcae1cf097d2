//! Running the steps that take nodes out of a cluster (`node remove`, the old side of
//! `node replace`, `reset`): hosts strictly one after another in the order given (the plan
//! puts agents before servers), a failure stops the run (later hosts are skipped), and a host
//! that could not be reached runs only its API steps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::context::Shared;
use super::etcd::{self, HandOver};
use super::events::{Event, EventKind};
use super::host_steps::{Done, StepResult};
use super::node_steps::drain;
use super::outcome::{HostOutcome, HostStatus, RunSummary};
use super::service::QUICK;
use super::step_error::StepError;
use crate::host::{ExecRequest, HostError, Transport};
use crate::k3s::uninstall;
use crate::k3s::unit::unit_name;
use crate::kube::{CORDONED_FOR, CordonOutcome};
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
            let api = shared.api().await?;
            let outcome = api
                .cordon(name, reason)
                .await
                .map_err(|e| StepError::api(format!("{name}: cordoning"), e))?;
            Ok(Done::saying(match outcome {
                CordonOutcome::Cordoned => format!("cordoned ({CORDONED_FOR} set)"),
                CordonOutcome::AlreadyOurs => "already cordoned by an earlier k3sctl run".into(),
                CordonOutcome::CordonedByOthers => "was already cordoned by someone else".into(),
            }))
        }
        Step::Drain(settings) => drain(shared, name, settings).await,
        Step::LeaveEtcd => {
            // Leadership first (when the host answers): removing the leader itself leaves the
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
            let api = shared.api().await?;
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
