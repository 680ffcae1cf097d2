//! The steps of a node's turn in a rollout (an upgrade today; node removal builds on the same):
//! the quorum check, cordon, drain, the binary swap, the waits for Ready at a version and for
//! etcd's quorum, the marker and the uncordon. Run by the one step executor
//! ([`super::host_steps`]) with the run's API, upload limit and service watcher.

use std::time::{Duration, Instant};

use super::context::{RolloutContext, Shared};
use super::events::{Event, EventKind};
use super::host_steps::{Done, StepResult};
use super::quorum;
use super::service::{QUICK, journal_tail};
use super::stage::swap_in;
use super::step_error::StepError;
use super::upgrade_marker::{MARKER_PATH, UpgradeMarker};
use crate::host::{ExecRequest, Transport};
use crate::k3s::unit::{BINARY_PATH, unit_name};
use crate::kube::{CORDONED_FOR, CordonOutcome, DrainOptions, DrainRules, UncordonOutcome};
use crate::plan::upgrade::quorum::{check_quorum, may_take_down, server_back};
use crate::plan::{DrainSettings, HostPlan, Step};

/// How often the waits of a node's turn ask again.
const API_POLL: Duration = Duration::from_millis(250);

/// The drain options of a plan's drain settings.
pub fn drain_options(settings: &DrainSettings) -> DrainOptions {
    DrainOptions {
        rules: DrainRules {
            delete_emptydir_data: settings.delete_empty_dir_data,
            force: settings.force,
        },
        disable_eviction: settings.disable_eviction,
        timeout: Duration::from_secs(settings.timeout_secs),
        interval: Duration::from_millis(500),
        grace_period_seconds: None,
    }
}

/// The rollout's context (servers, transports), which every rollout step needs.
pub(super) fn context(shared: &Shared) -> Result<&RolloutContext, StepError> {
    shared.rollout.as_ref().ok_or_else(|| {
        StepError::from(
            "a rollout step ran without the rollout's context (a k3sctl bug)".to_string(),
        )
    })
}

/// Runs one rollout step on `host`.
pub(super) async fn run_node_step(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    step: &Step,
) -> StepResult {
    let name = host.host.as_str();
    match step {
        Step::CheckQuorum => check_quorum_before(shared, name).await,
        Step::Cordon { reason } => {
            let by_others = Done {
                message: Some(
                    "was already cordoned by someone else: it stays cordoned afterwards".into(),
                ),
                note: Some("stays cordoned: it was cordoned before the upgrade".into()),
            };
            cordon(shared, name, reason, by_others).await
        }
        Step::Drain(settings) => drain(shared, name, settings).await,
        Step::SwapBinary { from, to, marker } => {
            let ctx = context(shared)?;
            let (local, sha) = ctx.binaries.get(name).ok_or_else(|| {
                StepError::from(format!("{name}: no binary for this host's architecture"))
            })?;
            // The marker goes in with the swap's own script, before the binary changes.
            let marker = marker.then_some(UpgradeMarker {
                from: *from,
                to: *to,
            });
            let what = swap_in(transport, local, sha, marker.as_ref(), &shared.uploads).await?;
            Ok(Done::saying(format!("{BINARY_PATH} {what}")))
        }
        Step::WaitReadyAt { version, readyz } => {
            wait_ready_at(shared, host, transport, &version.to_string(), *readyz).await
        }
        Step::WaitQuorum => wait_quorum(shared, host, transport).await,
        Step::ClearUpgradeMarker => {
            let req = ExecRequest::new(format!("rm -f {MARKER_PATH}"))
                .sudo(true)
                .timeout(Some(QUICK))
                .describe("removing the upgrade marker");
            transport.exec_checked(req).await?;
            Ok(Done::default())
        }
        Step::Uncordon { .. } => {
            let api = shared.api().await?;
            let outcome = api
                .uncordon(name)
                .await
                .map_err(|e| StepError::api(format!("{name}: uncordoning"), e))?;
            Ok(Done::saying(match outcome {
                UncordonOutcome::Uncordoned => "uncordoned",
                UncordonOutcome::LeftCordoned => "left cordoned: k3sctl did not cordon it",
                UncordonOutcome::NotCordoned => "was not cordoned",
            }))
        }
        other => Err(StepError::from(format!(
            "{name}: step {} is not a rollout step (a k3sctl bug)",
            other.kind()
        ))),
    }
}

/// HA: refuses to take this server down unless every other member is a healthy voter.
/// Drains `name` (upgrade and lifecycle alike): a warning first when `disableEviction` makes
/// it delete pods past their PodDisruptionBudgets, then what was moved and what stayed.
/// Cordons `name` (upgrade and lifecycle alike), marking the cordon as k3sctl's with `reason`;
/// `by_others` is what the step says when someone else had cordoned the node already.
pub(super) async fn cordon(
    shared: &Shared,
    name: &str,
    reason: &str,
    by_others: Done,
) -> StepResult {
    let api = shared.api().await?;
    let outcome = api
        .cordon(name, reason)
        .await
        .map_err(|e| StepError::api(format!("{name}: cordoning"), e))?;
    Ok(match outcome {
        CordonOutcome::Cordoned => Done::saying(format!("cordoned ({CORDONED_FOR} set)")),
        CordonOutcome::AlreadyOurs => Done::saying("already cordoned by an earlier k3sctl run"),
        CordonOutcome::CordonedByOthers => by_others,
    })
}

pub(super) async fn drain(shared: &Shared, name: &str, settings: &DrainSettings) -> StepResult {
    if settings.disable_eviction {
        shared.reporter.report(Event::new(
            name,
            "drain",
            EventKind::Info,
            "disableEviction: deleting pods instead of evicting them, which bypasses \
             PodDisruptionBudgets",
        ));
    }
    let api = shared.api().await?;
    let report = api
        .drain(name, &drain_options(settings))
        .await
        .map_err(|e| StepError::api(format!("{name}: draining"), e))?;
    Ok(Done::saying(format!(
        "drained: {} pod(s) {}, {} left in place (DaemonSet or mirror pods)",
        report.plan.evict.len(),
        if report.bypassed_pdbs {
            "deleted (disableEviction)"
        } else {
            "evicted"
        },
        report.plan.skip.len()
    )))
}

async fn check_quorum_before(shared: &Shared, name: &str) -> StepResult {
    let ctx = context(shared)?;
    let api = shared.api().await?;
    let look = quorum::look(api.as_ref(), &ctx.servers, &ctx.transports)
        .await
        .map_err(|e| StepError::api(format!("{name}: reading etcd's members"), e))?;
    let servers = look.server_names();
    if let Err(risk) = may_take_down(&look.state(&servers), name) {
        return Err(StepError::refused(
            format!("not taking this server down: it could lose etcd quorum\n{risk}"),
            "bring every server back as a voting member, then re-run",
        ));
    }
    Ok(Done::saying(format!(
        "every etcd member is a healthy voter ({} of {})",
        servers.len(),
        servers.len()
    )))
}

/// A wait that ran out, with the node's journal.
async fn timed_out(host: &HostPlan, transport: &dyn Transport, message: String) -> StepError {
    StepError::Wait {
        message,
        journal: Some(journal_tail(transport, unit_name(host.role)).await),
    }
}

/// Waits until the Node is Ready with kubelet `version`, then (servers) for its own /readyz.
/// The API connection is retried within the same time limit: when no server answered before
/// (the recovery of a first server whose upgrade took the API down), it comes back with K3s.
async fn wait_ready_at(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    version: &str,
    readyz: bool,
) -> StepResult {
    let t = Instant::now();
    let timeout = shared.options.node_ready_timeout;
    let api = match shared.api_within(timeout).await {
        Ok(api) => api,
        Err(e) => return Err(timed_out(host, transport, e).await),
    };
    let left = timeout.saturating_sub(t.elapsed());
    if let Err(e) = api.wait_node_at(&host.host, version, left).await {
        return Err(timed_out(host, transport, e.to_string()).await);
    }
    if !readyz {
        return Ok(Done::saying(format!("Ready with kubelet {version}")));
    }
    let through_api = shared
        .rollout
        .as_ref()
        .is_some_and(|r| r.api_server == host.host);
    loop {
        if readyz_ok(shared, transport, through_api).await {
            break;
        }
        if t.elapsed() >= timeout {
            let message = format!("/readyz did not answer ok within {}s", timeout.as_secs());
            return Err(timed_out(host, transport, message).await);
        }
        tokio::time::sleep(API_POLL).await;
    }
    Ok(Done::saying(format!(
        "Ready with kubelet {version}, /readyz ok"
    )))
}

/// This server's own API server answers `ok` on /readyz: through the API client for the server
/// it reaches, else asked on the server itself (`k3s kubectl get --raw /readyz` with K3s's
/// local admin kubeconfig).
async fn readyz_ok(shared: &Shared, transport: &dyn Transport, through_api: bool) -> bool {
    if through_api {
        return match shared.api().await {
            Ok(api) => api.readyz().await.is_ok(),
            Err(_) => false,
        };
    }
    let req = ExecRequest::new(format!("{BINARY_PATH} kubectl get --raw /readyz"))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe("asking the server's own API for /readyz");
    transport
        .exec(req)
        .await
        .is_ok_and(|out| out.stdout_text().trim() == "ok")
}

/// HA: waits until this server is back as a voting member and every member is a healthy voter
/// again, before the next server may go down.
async fn wait_quorum(shared: &Shared, host: &HostPlan, transport: &dyn Transport) -> StepResult {
    let t = Instant::now();
    let ctx = context(shared)?;
    let timeout = shared.options.node_ready_timeout;
    let api = shared.api().await?;
    loop {
        let risk = match quorum::look(api.as_ref(), &ctx.servers, &ctx.transports).await {
            Ok(look) => {
                let names = look.server_names();
                match check_quorum(&look.state(&names)) {
                    Ok(()) => break,
                    Err(risk) => Some((server_back(&host.host, &look.nodes), risk)),
                }
            }
            Err(_) => None,
        };
        if t.elapsed() >= timeout {
            let text = match risk {
                Some((lacks, risk)) => format!(
                    "the etcd cluster did not have every server back as a voting member within \
                     {}s{}\n{risk}",
                    timeout.as_secs(),
                    lacks.map(|l| format!(" ({l})")).unwrap_or_default()
                ),
                None => format!(
                    "the API did not answer within {}s, so etcd's members could not be read",
                    timeout.as_secs()
                ),
            };
            return Err(timed_out(host, transport, text).await);
        }
        tokio::time::sleep(API_POLL).await;
    }
    Ok(Done::saying(format!(
        "a voting etcd member again; all {} members are healthy voters",
        ctx.servers.len()
    )))
}
