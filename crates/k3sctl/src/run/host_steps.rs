//! Running one host's steps in order, reporting each, stopping at the first failure.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;

use super::binary_record;
use super::context::Shared;
use super::events::{Event, EventKind};
use super::outcome::HostStatus;
use super::service::{POLL, start_and_wait};
use super::step_error::StepError;
use crate::host::{ExecRequest, ProbeOutcome, Transport, UploadRequest, UploadSource, probe_tcp};
use crate::k3s::config::NodeRole;
use crate::k3s::token::{JoinToken, SERVER_TOKEN_PATH};
use crate::k3s::unit::{BINARY_PATH, unit_name};
use crate::kube::StartedAt;
use crate::plan::{FileContent, HostPlan, Step};

/// What a step that succeeded has to say.
#[derive(Debug, Default)]
pub struct Done {
    /// Replaces the step's title in the `done` event (what it found or did).
    pub message: Option<String>,
    /// A fact worth keeping in the node's record (`stays cordoned: ...`).
    pub note: Option<String>,
}

impl Done {
    /// Done, saying `message`.
    pub fn saying(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            note: None,
        }
    }
}

/// A step's result.
pub type StepResult = Result<Done, StepError>;

/// Runs the binary upload of a host (phase 0, bounded concurrency).
pub async fn upload_binary(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
) -> HostStatus {
    let Some(step @ Step::UploadBinary { sha256, .. }) = host
        .steps
        .iter()
        .find(|s| matches!(s, Step::UploadBinary { .. }))
    else {
        return HostStatus::Ok { changes: 0 };
    };
    let Some(local) = shared.binaries.get(&host.host) else {
        return failed(
            step,
            &StepError::from(format!("{}: no local K3s binary for this host", host.host)),
        );
    };
    let _permit = shared.uploads.acquire().await;
    let started = report_start(shared, &host.host, host.role, step);
    let req = UploadRequest {
        source: UploadSource::File(local.clone()),
        remote: Path::new(BINARY_PATH).to_path_buf(),
        mode: 0o755,
        sha256: sha256.clone(),
        timeout: Some(Duration::from_secs(600)),
    };
    match transport.upload(req).await {
        Ok(()) => {
            remember_binary_hash(host, transport, sha256).await;
            report_done(
                shared,
                &host.host,
                host.role,
                step,
                &Done::default(),
                started,
            );
            HostStatus::Ok { changes: 1 }
        }
        Err(e) => report_failed(shared, host, step, started, e.into()),
    }
}

/// Records the hash the host just verified, so later observations need not hash the binary
/// again (see [`super::binary_record`]). Only an optimisation: a failure is logged, and the next
/// observation hashes the file.
async fn remember_binary_hash(host: &HostPlan, transport: &dyn Transport, sha256: &str) {
    let script = binary_record::record_script(BINARY_PATH, binary_record::RECORD_PATH, sha256);
    let req = ExecRequest::new(script)
        .sudo(true)
        .timeout(Some(super::service::QUICK))
        .describe(format!("recording the hash of {BINARY_PATH}"));
    if let Err(e) = transport.exec_checked(req).await {
        tracing::warn!(host = %host.host, "cannot record the binary hash: {e}");
    }
}

fn failed(step: &Step, error: &StepError) -> HostStatus {
    HostStatus::Failed {
        step: step.kind().into(),
        hint: error.hint(),
        error: error.to_string(),
    }
}

/// Reports that `step` begins on `host`.
pub(super) fn report_start(shared: &Shared, host: &str, role: NodeRole, step: &Step) -> Instant {
    shared.reporter.report(Event::new(
        host,
        step.kind(),
        EventKind::Start,
        step.title(role),
    ));
    Instant::now()
}

/// Reports that `step` succeeded on `host`, with what it said or its title.
pub(super) fn report_done(
    shared: &Shared,
    host: &str,
    role: NodeRole,
    step: &Step,
    done: &Done,
    started: Instant,
) {
    report_done_took(shared, host, role, step, done, started.elapsed());
}

/// [`report_done`], with the time the step took.
fn report_done_took(
    shared: &Shared,
    host: &str,
    role: NodeRole,
    step: &Step,
    done: &Done,
    took: Duration,
) {
    let message = done.message.clone().unwrap_or_else(|| step.title(role));
    shared
        .reporter
        .report(Event::new(host, step.kind(), EventKind::Done, message).took(took));
}

/// Reports that `step` failed on `host` (the headline; the journal stays in the error).
pub(super) fn report_step_failed(
    shared: &Shared,
    host: &str,
    step: &Step,
    started: Instant,
    error: &StepError,
) {
    report_failed_took(shared, host, step, started.elapsed(), error);
}

fn report_failed_took(shared: &Shared, host: &str, step: &Step, took: Duration, error: &StepError) {
    shared
        .reporter
        .report(Event::new(host, step.kind(), EventKind::Failed, error.to_string()).took(took));
}

fn report_failed(
    shared: &Shared,
    host: &HostPlan,
    step: &Step,
    started: Instant,
    error: StepError,
) -> HostStatus {
    report_step_failed(shared, &host.host, step, started, &error);
    failed(step, &error)
}

/// The script steps at the head of `steps` (see [`super::host_batch::is_script_step`]).
fn script_steps_ahead<'a>(steps: impl Iterator<Item = &'a Step>) -> Vec<&'a Step> {
    steps
        .take_while(|s| super::host_batch::is_script_step(s))
        .collect()
}

/// Runs consecutive script steps of `host` in one round trip ([`super::host_batch`]) and
/// reports each as if it ran alone: its start, then its end with its own time on the host.
/// Returns the number of changes, or the status of the step that failed (nothing after it
/// ran).
async fn run_script_steps(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    steps: &[&Step],
) -> Result<usize, HostStatus> {
    let Some(first) = steps.first() else {
        return Ok(0);
    };
    report_start(shared, &host.host, host.role, first);
    let results = super::host_batch::run(shared, host, transport, steps).await;
    let mut changes = 0;
    for (i, (step, (result, took))) in steps.iter().zip(results).enumerate() {
        if i > 0 {
            report_start(shared, &host.host, host.role, step);
        }
        match result {
            Ok(done) => {
                report_done_took(shared, &host.host, host.role, step, &done, took);
                changes += usize::from(step.is_change());
            }
            Err(error) => {
                report_failed_took(shared, &host.host, step, took, &error);
                return Err(failed(step, &error));
            }
        }
    }
    Ok(changes)
}

/// Indices (in [`HostPlan::steps`]) of steps already run ahead of the host's turn.
pub type Staged = BTreeSet<usize>;

/// For a host that is not in the cluster yet: runs, right after its upload and before its turn
/// to start, the steps that need neither the join token nor a running cluster: the files that
/// do not hold the token, and `daemon-reload` when only token files are left. Hosts of a group
/// then spend their serial turn only on the env file, the start and the wait, instead of also
/// writing files and reloading systemd one host after another. Returns the steps done and the
/// number of changes, or the failed status.
pub async fn prestage(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
) -> Result<(Staged, usize), HostStatus> {
    let mut staged = Staged::new();
    let mut changes = 0;
    if host.in_cluster {
        return Ok((staged, changes));
    }
    let mut deferred_non_env = false;
    let mut early_steps: Vec<(usize, &Step)> = Vec::new();
    for (index, step) in host.steps.iter().enumerate() {
        let early = match step {
            Step::UploadBinary { .. } => continue,
            Step::WriteFile { content, .. } => {
                let early = matches!(content, FileContent::LocalFile { .. })
                    || content.resolve(None).is_some();
                deferred_non_env |= !early && !matches!(content, FileContent::Env { .. });
                early
            }
            Step::DaemonReload => !deferred_non_env,
            Step::RemoveFile { .. } | Step::TakeOverUnitDropin(_) | Step::LinkCommand { .. } => {
                true
            }
            Step::Adopt { .. } => break,
            Step::Start { .. }
            | Step::Restart { .. }
            | Step::ConvertDatastore { .. }
            | Step::RemoveEtcdMember { .. }
            | Step::RemoveNodePassword
            | Step::LeaveEtcd
            | Step::StopService
            | Step::Uninstall { .. }
            | Step::DeleteNode => break,
            Step::WaitServerReady
            | Step::WaitNodeReady
            | Step::WaitEtcdVoter
            | Step::VerifyMigration { .. }
            | Step::EnforceTaints { .. }
            | Step::EnforceLabels { .. }
            | Step::ApplyObjects { .. } => break,
            // A rollout's (or rotation's) steps concern nodes already in the cluster.
            Step::CheckQuorum
            | Step::CheckRotationQuorum
            | Step::RotateCertificates { .. }
            | Step::Cordon { .. }
            | Step::Drain(_)
            | Step::SwapBinary { .. }
            | Step::WaitReadyAt { .. }
            | Step::WaitQuorum
            | Step::ClearUpgradeMarker
            | Step::EtcdSnapshot { .. }
            | Step::Uncordon { .. } => break,
        };
        if early {
            early_steps.push((index, step));
        }
    }
    // Consecutive script steps share a round trip (all of them, unless a local file is
    // uploaded among them).
    let mut rest = &early_steps[..];
    while let Some((_, step)) = rest.first() {
        let batch = script_steps_ahead(rest.iter().map(|(_, s)| *s));
        if batch.is_empty() {
            let started = report_start(shared, &host.host, host.role, step);
            let done = match run_step(shared, host, transport, step, &mut None).await {
                Ok(done) => done,
                Err(error) => return Err(report_failed(shared, host, step, started, error)),
            };
            report_done(shared, &host.host, host.role, step, &done, started);
            changes += usize::from(step.is_change());
            rest = &rest[1..];
        } else {
            changes += run_script_steps(shared, host, transport, &batch).await?;
            rest = &rest[batch.len()..];
        }
    }
    staged.extend(early_steps.iter().map(|(index, _)| *index));
    Ok((staged, changes))
}

/// Runs every step except the upload and the `staged` ones. `changes` counts steps already
/// done (the upload, the staged steps).
pub async fn run_host(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    mut changes: usize,
    staged: &Staged,
) -> HostStatus {
    let mut gate: Option<OwnedMutexGuard<()>> = None;
    // When this run last (re)started K3s on the host, on the host's clock.
    let mut started_at: Option<StartedAt> = None;
    let remaining: Vec<(usize, &Step)> = host
        .steps
        .iter()
        .enumerate()
        .filter(|(i, s)| !matches!(s, Step::UploadBinary { .. }) && !staged.contains(i))
        .collect();
    let mut at = 0;
    while let Some(&(index, step)) = remaining.get(at) {
        // Consecutive script steps (files, record, drop-ins, links, daemon-reload): one
        // round trip for all of them.
        let batch = script_steps_ahead(remaining[at..].iter().map(|(_, s)| *s));
        if !batch.is_empty() {
            match run_script_steps(shared, host, transport, &batch).await {
                Ok(more) => changes += more,
                Err(failed) => return failed,
            }
            at += batch.len();
            continue;
        }
        at += 1;
        if matches!(step, Step::Restart { .. } | Step::ConvertDatastore { .. })
            && host.in_cluster
            && gate.is_none()
        {
            // Nodes already serving restart one at a time, each Ready before the next.
            gate = Some(Arc::clone(&shared.restart_gate).lock_owned().await);
        }
        let started = report_start(shared, &host.host, host.role, step);
        let result = run_step(shared, host, transport, step, &mut started_at).await;
        match result {
            Ok(done) => {
                report_done(shared, &host.host, host.role, step, &done, started);
                if step.is_change() {
                    changes += 1;
                }
            }
            Err(error) => return report_failed(shared, host, step, started, error),
        }
        let last_wait = !host.steps[index + 1..].iter().any(|s| {
            matches!(
                s,
                Step::WaitNodeReady | Step::WaitEtcdVoter | Step::VerifyMigration { .. }
            )
        });
        if matches!(
            step,
            Step::WaitNodeReady | Step::WaitEtcdVoter | Step::VerifyMigration { .. }
        ) && last_wait
        {
            gate = None;
        }
    }
    drop(gate);
    HostStatus::Ok { changes }
}

/// Runs one step of `host`: the one executor of every plan step, for `apply` and the
/// upgrade's rollout alike.
pub(super) async fn run_step(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    step: &Step,
    started_at: &mut Option<StartedAt>,
) -> StepResult {
    let unit = unit_name(host.role);
    match step {
        Step::UploadBinary { .. } => Ok(Done::default()),
        Step::WriteFile {
            path,
            mode,
            content: FileContent::LocalFile { local, sha256 },
            ..
        } => {
            let req = UploadRequest {
                source: UploadSource::File(local.clone()),
                remote: Path::new(path).to_path_buf(),
                mode: *mode,
                sha256: sha256.clone(),
                timeout: Some(Duration::from_secs(1800)),
            };
            let _permit = shared.uploads.acquire().await;
            transport.upload(req).await?;
            Ok(Done::default())
        }
        Step::WriteFile { .. }
        | Step::RemoveFile { .. }
        | Step::TakeOverUnitDropin(_)
        | Step::LinkCommand { .. }
        | Step::Adopt { .. }
        | Step::DaemonReload => {
            // A batch of one: the same script as when it shares a round trip.
            let results = super::host_batch::run(shared, host, transport, &[step]).await;
            match results.into_iter().next() {
                Some((result, _)) => result,
                None => Err(format!("{}: {} gave no result", host.host, step.kind()).into()),
            }
        }
        Step::Start { join } => {
            if *join {
                probe_endpoint(shared, host, transport).await?;
            }
            *started_at =
                start_and_wait(transport, unit, false, shared.options.node_ready_timeout).await?;
            Ok(Done::default())
        }
        Step::Restart { .. } => {
            *started_at =
                start_and_wait(transport, unit, true, shared.options.node_ready_timeout).await?;
            Ok(Done::default())
        }
        Step::WaitServerReady => wait_server_ready(shared, host, transport).await,
        Step::EnforceTaints { wanted, adopt, .. } => {
            let api = shared.api().await?;
            let conflicts = api
                .enforce_taints(&host.host, wanted, *adopt)
                .await
                .map_err(|e| {
                    StepError::api(format!("{}: setting the node's taints", host.host), e)
                })?;
            if conflicts.is_empty() {
                Ok(Done::default())
            } else {
                Err(StepError::refused(
                    format!("{}: taints not set: {}", host.host, conflicts.join("; ")),
                    format!(
                        "remove the other taint (kubectl taint node {} KEY:EFFECT-) or list it \
                         in the spec as it is",
                        host.host
                    ),
                ))
            }
        }
        Step::EnforceLabels { wanted, adopt, .. } => {
            let api = shared.api().await?;
            api.enforce_labels(&host.host, wanted, *adopt)
                .await
                .map_err(|e| {
                    StepError::api(format!("{}: setting the node's labels", host.host), e)
                })?;
            Ok(Done::default())
        }
        Step::WaitEtcdVoter => {
            let api = shared.api().await?;
            api.wait_etcd_voter(&host.host, shared.options.node_ready_timeout)
                .await
                .map_err(|e| {
                    StepError::api(format!("{}: not a voting etcd member", host.host), e)
                })?;
            Ok(Done::default())
        }
        Step::ConvertDatastore { store } => {
            let backup = super::convert::backup_store(transport, unit, store).await?;
            shared.reporter.report(Event::new(
                &host.host,
                step.kind(),
                EventKind::Info,
                format!(
                    "backup of the SQLite store kept on {} at {backup}",
                    host.host
                ),
            ));
            Ok(Done::default())
        }
        Step::RemoveEtcdMember { member, id } => {
            let peer = shared.etcd_peer.as_ref().ok_or_else(|| {
                format!(
                    "{}: no running server to remove etcd member {member} through",
                    host.host
                )
            })?;
            super::etcd::remove_member(peer.as_ref(), id)
                .await
                .map_err(|e| {
                    format!(
                        "{}: removing etcd member {member} through {}: {e}",
                        host.host,
                        peer.name()
                    )
                })?;
            Ok(Done::default())
        }
        Step::RemoveNodePassword => {
            let api = shared.api().await?;
            api.delete_node_password(&host.host).await.map_err(|e| {
                StepError::api(
                    format!("{}: deleting its node-password secret", host.host),
                    e,
                )
            })?;
            Ok(Done::default())
        }
        Step::VerifyMigration { store } => {
            super::convert::verify_migration(shared, host, transport, store).await?;
            Ok(Done::default())
        }
        Step::LeaveEtcd | Step::StopService | Step::Uninstall { .. } | Step::DeleteNode => {
            super::lifecycle::run_lifecycle_step(shared, host, Some(transport), step).await
        }
        Step::WaitNodeReady => {
            let timeout = shared.options.node_ready_timeout;
            let began = Instant::now();
            let api = shared.api_within(timeout).await?;
            // A stale Ready can only come from a Node that existed before this run. A node that
            // registers now posts its first Ready in the same second as the start, and waiting
            // for a strictly later post would cost a whole heartbeat (10 s) per joining node.
            let after = started_at.filter(|_| host.in_cluster);
            let left = timeout.saturating_sub(began.elapsed());
            api.wait_node_ready(&host.host, after, left)
                .await
                .map_err(|e| StepError::api(format!("{}: node not Ready", host.host), e))?;
            Ok(Done::default())
        }
        Step::CheckRotationQuorum => {
            super::rotate_steps::check_rotation_quorum(shared, &host.host).await
        }
        Step::RotateCertificates { services } => {
            super::rotate_steps::rotate_certificates(shared, host, transport, services, started_at)
                .await
        }
        Step::CheckQuorum
        | Step::Cordon { .. }
        | Step::Drain(_)
        | Step::SwapBinary { .. }
        | Step::WaitReadyAt { .. }
        | Step::WaitQuorum
        | Step::ClearUpgradeMarker
        | Step::Uncordon { .. } => {
            super::node_steps::run_node_step(shared, host, transport, step).await
        }
        Step::ApplyObjects { file, docs, .. } => {
            let api = shared.api().await?;
            api.apply_objects(docs).await.map_err(|e| {
                StepError::api(
                    format!("{}: writing the objects of {file} back", host.host),
                    e,
                )
            })?;
            Ok(Done::default())
        }
        Step::EtcdSnapshot { name } => {
            let saved = super::snapshot::save_on(transport, name).await?;
            Ok(Done::saying(format!(
                "etcd snapshot {} saved on {} at {}",
                saved.name, saved.node, saved.location
            )))
        }
    }
}

/// Fails fast when the joining host cannot reach the join endpoint (instead of a join that
/// stalls until the timeout).
async fn probe_endpoint(shared: &Shared, host: &HostPlan, transport: &dyn Transport) -> StepResult {
    let Some(endpoint) = &shared.join_endpoint else {
        return Ok(Done::default());
    };
    let Some((address, port)) = super::join_probe::endpoint_host_port(endpoint) else {
        return Ok(Done::default());
    };
    match probe_tcp(transport, &address, port, super::join_probe::PROBE_TIMEOUT).await {
        Ok(ProbeOutcome::Open) => Ok(Done::default()),
        Ok(ProbeOutcome::Closed(detail)) => {
            Err(super::join_probe::unreachable_endpoint(&host.host, endpoint, &detail).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits for the token file, reads the token (kept only in memory), then for /readyz.
async fn wait_server_ready(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
) -> StepResult {
    let timeout = shared.options.server_ready_timeout;
    let began = Instant::now();
    let token = loop {
        let read = transport.read_file(Path::new(SERVER_TOKEN_PATH)).await?;
        if let Some(bytes) = read.filter(|b| !b.is_empty()) {
            let text = String::from_utf8_lossy(&bytes);
            break JoinToken::parse(&text)
                .map_err(|e| format!("{}: {SERVER_TOKEN_PATH}: {e}", host.host))?;
        }
        if began.elapsed() >= timeout {
            return Err(StepError::Wait {
                message: format!(
                    "{}: {SERVER_TOKEN_PATH} did not appear within {}s: K3s has not finished its \
                     first start",
                    host.host,
                    timeout.as_secs()
                ),
                journal: None,
            });
        }
        tokio::time::sleep(POLL).await;
    };
    shared.set_token(token.raw).await;
    loop {
        let attempt = match shared.api().await {
            Ok(api) => api.readyz().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match attempt {
            Ok(()) => return Ok(Done::default()),
            Err(e) if began.elapsed() >= timeout => {
                return Err(StepError::Wait {
                    message: format!(
                        "{}: /readyz not ok within {}s: {e}",
                        host.host,
                        timeout.as_secs()
                    ),
                    journal: None,
                });
            }
            Err(_) => {
                shared.forget_api().await;
                tokio::time::sleep(POLL).await;
            }
        }
    }
}
