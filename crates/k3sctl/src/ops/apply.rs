//! `apply`: prepare the plan, take the lock on the first server, run the steps, export the
//! kubeconfigs, release the lock.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::confirm::{Confirmer, ConsentRequest};
use super::connect::ConnectOptions;
use super::error::OpsError;
use super::export::{ExportResult, export_content, read_admin_kubeconfig, write_export};
use super::preflight::{check_facts, check_join_endpoint};
use super::prepare::{ConnectorFactory, Prepared, prepare};
use super::release_cache::fill_cache;
use super::unreachable::SkippedHost;
use crate::plan::{DriftFix, DriftItem};
use crate::run::engine::DEFAULT_GROUP;
use crate::run::lock::{Acquired, LockHolder, acquire, release};
use crate::run::{Event, EventKind, HostStatus, Reporter, RunOptions, RunSummary, execute};
use crate::spec::BinaryOrigin;

/// Options of `apply`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// How hosts are reached.
    pub connect: ConnectOptions,
    /// Remove an existing lock first.
    pub force_unlock: bool,
    /// Run tunables.
    pub run: RunOptions,
    /// Write the LXC settings K3s needs into Proxmox containers' .conf files and restart them
    /// (`--fix-lxc`); otherwise missing settings stop the apply with the lines to add.
    pub fix_lxc: bool,
    /// Who agrees to restarts of running nodes and other disruptions (by default nobody:
    /// such a plan is refused).
    pub confirm: Confirmer,
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// Per-host outcomes.
    pub summary: RunSummary,
    /// Kubeconfig exports.
    pub exports: Vec<ExportResult>,
    /// Whether the plan had nothing to do (on the hosts that were reached).
    pub nothing_to_do: bool,
    /// Hosts left out because they could not be connected to (`--skip-unreachable`).
    pub skipped: Vec<SkippedHost>,
    /// Drift that apply leaves to a person (Nodes no spec host explains, K3s arguments from
    /// files k3sctl does not manage, ...), each with a hint.
    pub drift_left: Vec<DriftItem>,
}

impl ApplyReport {
    /// Whether every host succeeded (a skipped host is not a success).
    pub fn success(&self) -> bool {
        self.summary.success() && self.skipped.is_empty()
    }
}

/// LXC preflight of the Proxmox containers: warnings reported, blocking problems fixed with
/// `fix` (returns true then) or refused with the lines to add.
async fn check_containers(
    prepared: &Prepared,
    fix: Option<&Confirmer>,
    reporter: &dyn Reporter,
) -> Result<bool, OpsError> {
    let cluster = &prepared.desired.cluster;
    let findings = super::lxc::inspect_all(&prepared.containers).await?;
    let (blocking, notes): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| f.blocking());
    for f in &notes {
        reporter.report(Event::new(cluster, "lxc", EventKind::Info, f.render()));
    }
    if blocking.is_empty() {
        return Ok(false);
    }
    let Some(confirm) = fix else {
        return Err(OpsError::Preflight(
            blocking
                .iter()
                .map(super::lxc::ContainerFindings::render)
                .collect(),
        ));
    };
    let registered: Vec<String> = match &prepared.api {
        Some(api) => api
            .nodes()
            .await
            .map(|nodes| nodes.into_iter().map(|n| n.name).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let nodes: Vec<String> = blocking
        .iter()
        .filter(|f| registered.contains(&f.host))
        .map(|f| {
            format!(
                "{}: drain, write its LXC settings, restart the container",
                f.host
            )
        })
        .collect();
    confirm.ask(&ConsentRequest::new(
        "apply --fix-lxc",
        format!(
            "restart {} container(s) that are running nodes",
            nodes.len()
        ),
        nodes,
    ))?;
    let connector = Arc::clone(&prepared.connector);
    let done = super::lxc::fix_all(&blocking, &prepared.containers, connector, &registered).await?;
    for line in done {
        reporter.report(Event::new(cluster, "fix-lxc", EventKind::Info, line));
    }
    Ok(true)
}

/// Runs `apply` for the spec at `path`.
pub async fn apply(
    path: &Path,
    options: ApplyOptions,
    factory: ConnectorFactory,
    reporter: Arc<dyn Reporter>,
) -> Result<ApplyReport, OpsError> {
    let mut prepared = prepare(path, options.connect, factory).await?;
    for skipped in &prepared.skipped {
        reporter.report(Event::new(
            &skipped.host,
            "connect",
            EventKind::Skipped,
            format!(
                "unreachable, left out (--skip-unreachable): {}",
                skipped.reason
            ),
        ));
    }
    for note in &prepared.connect_notes {
        reporter.report(Event::new(
            &prepared.desired.cluster,
            "connect",
            EventKind::Info,
            note.clone(),
        ));
    }
    if !prepared.containers.is_empty() {
        let fix = options.fix_lxc || prepared.spec.cluster.spec.lxc.fix;
        let fixed = check_containers(
            &prepared,
            fix.then_some(&options.confirm),
            reporter.as_ref(),
        )
        .await?;
        if fixed {
            // The containers restarted: observe everything again.
            prepared = prepare(path, options.connect, factory).await?;
            check_containers(&prepared, None, reporter.as_ref()).await?;
        }
    }
    let drift_left: Vec<DriftItem> = prepared
        .plan
        .drift
        .iter()
        .filter(|d| d.fix == DriftFix::Manual)
        .cloned()
        .collect();
    for item in &drift_left {
        let hint = item
            .hint
            .as_deref()
            .map(|h| format!("\n  hint: {h}"))
            .unwrap_or_default();
        reporter.report(Event::new(
            &item.host,
            "drift",
            EventKind::Info,
            format!("{}{hint}", item.describe()),
        ));
    }
    if !prepared.plan.has_changes() {
        reporter.report(Event::new(
            &prepared.desired.cluster,
            "plan",
            EventKind::Info,
            "nothing to do",
        ));
        let hosts = prepared
            .plan
            .hosts
            .iter()
            .map(|h| crate::run::HostOutcome {
                host: h.host.clone(),
                status: HostStatus::Ok { changes: 0 },
            })
            .collect();
        return Ok(ApplyReport {
            summary: RunSummary { hosts },
            exports: vec![],
            nothing_to_do: true,
            skipped: prepared.skipped.clone(),
            drift_left,
        });
    }
    let preflight = if prepared.plan.needs_preflight() {
        check_facts(&prepared.transports).await?
    } else {
        Vec::new()
    };
    for warning in preflight {
        reporter.report(Event::new(
            &prepared.desired.cluster,
            "preflight",
            EventKind::Info,
            warning,
        ));
    }
    let server_running = prepared
        .observed
        .hosts
        .get(&prepared.first_server)
        .is_some_and(|h| h.service_active);
    let endpoint = prepared.spec.cluster.api_endpoint().unwrap_or_default();
    check_join_endpoint(
        &prepared.plan,
        &prepared.transports,
        &endpoint,
        server_running,
    )
    .await?;
    let disruptions = prepared.plan.disruptions();
    let request = ConsentRequest::new(
        "apply",
        format!(
            "disturb {} running node(s)",
            crate::plan::hosts_disrupted(&disruptions)
        ),
        disruptions.iter().map(ToString::to_string).collect(),
    );
    options.confirm.ask(&request)?;
    let needs_upload = prepared.plan.hosts.iter().any(|h| {
        h.steps
            .iter()
            .any(|s| matches!(s, crate::plan::Step::UploadBinary { .. }))
    });
    if needs_upload
        && let BinaryOrigin::Download { url, .. } = prepared.spec.cluster.spec.k3s.binary_origin()
    {
        fill_cache(&prepared.desired.version, &prepared.binaries, &url).await?;
    }
    let server = Arc::clone(
        prepared
            .transports
            .get(&prepared.first_server)
            .ok_or_else(|| OpsError::NoConnection {
                host: prepared.first_server.clone(),
            })?,
    );
    let holder = LockHolder::current();
    if let Acquired::TookOver { previous, why } =
        acquire(server.as_ref(), &holder, options.force_unlock).await?
    {
        reporter.report(Event::new(
            &prepared.first_server,
            "lock",
            EventKind::Info,
            format!("taking over the lock of an interrupted run ({previous}): {why}"),
        ));
    }
    let result = run_locked(&prepared, options.run, reporter)
        .await
        .map(|report| ApplyReport {
            drift_left,
            ..report
        });
    let released = release(server.as_ref(), &holder).await;
    let report = result?;
    released?;
    Ok(report)
}

/// The spec's join concurrency per group, in the engine's group names.
fn join_concurrency(prepared: &Prepared, mut run: RunOptions) -> RunOptions {
    let cluster = &prepared.spec.cluster;
    run.default_join_concurrency = cluster.join_concurrency(None) as usize;
    run.join_concurrency = cluster
        .agent_groups()
        .into_iter()
        .map(|(name, _)| {
            let group = (!name.is_empty()).then_some(name.as_str());
            let key = group.unwrap_or(DEFAULT_GROUP).to_string();
            (key, cluster.join_concurrency(group) as usize)
        })
        .collect();
    run
}

async fn run_locked(
    prepared: &Prepared,
    run: RunOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<ApplyReport, OpsError> {
    let run = join_concurrency(prepared, run);
    let mut shared = prepared.run_state(|_| true, run, Arc::clone(&reporter));
    if let Some(api) = &prepared.api {
        shared.reuse_api(Arc::clone(api));
    }
    shared.etcd_peer = prepared
        .observed
        .hosts
        .get(&prepared.first_server)
        .filter(|h| h.service_active && h.etcd_data)
        .and_then(|_| prepared.transports.get(&prepared.first_server))
        .cloned();
    let summary = execute(&prepared.plan, &prepared.transports, &shared).await;
    let first_ok = summary
        .hosts
        .iter()
        .any(|h| h.host == prepared.first_server && matches!(h.status, HostStatus::Ok { .. }));
    let mut exports = Vec::new();
    if first_ok && !prepared.desired.exports.is_empty() {
        let server = prepared
            .transports
            .get(&prepared.first_server)
            .ok_or_else(|| OpsError::NoConnection {
                host: prepared.first_server.clone(),
            })?;
        let admin = read_admin_kubeconfig(server.as_ref()).await?;
        for export in &prepared.desired.exports {
            let result = write_export(
                export,
                &export_content(&admin, export)?,
                &prepared.user_kubeconfig,
            )?;
            let what = if result.changed {
                "written"
            } else {
                "up to date"
            };
            reporter.report(Event::new(
                "kubeconfig",
                "export-kubeconfig",
                EventKind::Done,
                format!("{} {what} (context {})", result.path, result.context),
            ));
            exports.push(result);
        }
    }
    Ok(ApplyReport {
        summary,
        exports,
        nothing_to_do: false,
        skipped: prepared.skipped.clone(),
        drift_left: Vec::new(),
    })
}
