//! `upgrade`: resolve the target, refuse what breaks the upgrade rules, plan the rollout
//! (servers first, then agent batches), take the apply lock, pass the initial health gate, then
//! per node cordon → drain → deliver → restart → wait Ready → uncordon → health gate; a failure
//! stops with the node, the step and its journal; a re-run resumes. Ends with the smoke check.

pub mod candidate;
mod decide;
pub mod error;
pub mod gate;
pub mod observe;
mod recover;
pub mod spec_update;
pub mod target;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use crate::plan::upgrade::cordon_reason;
pub use crate::run::record::{NodeOutcome, NodeRecord};
pub use error::{NodeFailure, UpgradeError};
pub use gate::{Smoke, SmokeNode};
pub use spec_update::SpecFollowUp;
pub use target::{Target, TargetRequest};

use self::candidate::download;
use self::decide::{Decided, decide, host_binaries};
use self::observe::{ReachedApi, UpgradeSession, arch_set, open};
use super::OpsError;
use super::connect::ConnectOptions;
use crate::k3s::version::K3sVersion;
use crate::kube::DrainRules;
use crate::ops::binary::LocalBinaries;
use crate::ops::etcd_snapshot::pick_voter;
use crate::plan::upgrade::quorum::may_take_down;
use crate::plan::upgrade::{
    DrainPreview, NodeAction, NodeKind, UpgradePlan, plan_upgrade, render_upgrade_plan,
    snapshot_name, snapshot_wanted,
};
use crate::run::lock::{Acquired, LockHolder, acquire, release};
use crate::run::snapshot::{Saved, save_on};
use crate::run::stage::stage_all;
use crate::run::{
    ApiConnector, ConnectedApi, Event, EventKind, Reporter, RolloutContext, RolloutPolicy,
    RunOptions, Shared, execute_rollout,
};
use crate::spec::OnFailure;

/// Options of `upgrade`.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// How hosts are reached.
    pub connect: ConnectOptions,
    /// `--to`, `--channel`, `--binary`.
    pub target: TargetRequest,
    /// Show the plan and change nothing.
    pub dry_run: bool,
    /// Start even when the cluster is not healthy.
    pub skip_initial_gate: bool,
    /// Remove an existing lock first.
    pub force_unlock: bool,
    /// After a successful upgrade, rewrite the spec's `k3s.version` to the target.
    pub update_spec: bool,
    /// Skip the etcd snapshot taken before the first server (`upgrade.snapshot`).
    pub no_snapshot: bool,
    /// Who agrees to the rollout's drains and restarts (by default nobody: refused).
    pub confirm: crate::ops::confirm::Confirmer,
}

/// What `upgrade` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    /// The target version.
    pub target: K3sVersion,
    /// Where the target came from (`--to`, `channel stable`, ...).
    pub source: String,
    /// The rollout.
    pub plan: UpgradePlan,
    /// The plan as text.
    pub plan_text: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// One record per node (empty for a dry run).
    pub nodes: Vec<NodeRecord>,
    /// What stopped the rollout.
    pub failures: Vec<NodeFailure>,
    /// The post-upgrade smoke check (after a complete rollout).
    pub smoke: Option<Smoke>,
    /// The etcd snapshot taken before the first server was touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Saved>,
    /// After a successful upgrade: the spec's line naming the release, and whether
    /// `--update-spec` rewrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecFollowUp>,
}

impl UpgradeReport {
    /// Whether the upgrade finished and the smoke check passed (a dry run always succeeds).
    pub fn success(&self) -> bool {
        self.dry_run || (self.upgraded() && !self.spec.as_ref().is_some_and(SpecFollowUp::failed))
    }

    /// Whether every node is at the target and the smoke check passed.
    fn upgraded(&self) -> bool {
        self.failures.is_empty() && self.smoke.as_ref().is_some_and(Smoke::passed)
    }
}

/// The gate's limits from the spec's upgrade policy.
fn gate_limits(policy: &crate::spec::UpgradePolicy) -> gate::GateLimits {
    gate::GateLimits {
        timeout: policy.gate_timeout.to_std(),
        grace: policy.node_ready_timeout.to_std(),
    }
}

fn info(reporter: &dyn Reporter, host: &str, step: &str, message: impl Into<String>) {
    reporter.report(Event::new(host, step, EventKind::Info, message));
}

async fn drain_previews(
    cluster: &UpgradeSession,
    plan: &UpgradePlan,
) -> BTreeMap<String, DrainPreview> {
    let policy = &cluster.spec.cluster.spec.upgrade;
    let rules = DrainRules {
        delete_emptydir_data: policy.delete_empty_dir_data,
        force: policy.force,
    };
    let mut previews = BTreeMap::new();
    let Ok(reached) = cluster.api().await else {
        return previews;
    };
    for node in plan.nodes() {
        if !matches!(node.action, NodeAction::Upgrade { drain: true, .. }) {
            continue;
        }
        if let Ok(p) = reached.api.preview_drain(&node.name, rules).await {
            previews.insert(
                node.name.clone(),
                DrainPreview {
                    evict: p.evict.iter().map(ToString::to_string).collect(),
                    skip: p
                        .skip
                        .iter()
                        .map(|(pod, r)| format!("{pod} ({r:?})"))
                        .collect(),
                    blocked: p
                        .blocked
                        .iter()
                        .map(|(pod, r)| format!("{pod} ({r})"))
                        .collect(),
                },
            );
        }
    }
    previews
}

async fn take_lock(
    cluster: &UpgradeSession,
    holder: &LockHolder,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(), UpgradeError> {
    let server = cluster.transport(&cluster.first_server)?;
    if let Acquired::TookOver { previous, why } = acquire(server.as_ref(), holder, force)
        .await
        .map_err(OpsError::from)?
    {
        info(
            reporter,
            &cluster.first_server,
            "lock",
            format!("taking over the lock of an interrupted run ({previous}): {why}"),
        );
    }
    Ok(())
}

/// Runs `upgrade` for the spec at `path`.
pub async fn upgrade(
    path: &Path,
    options: UpgradeOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<UpgradeReport, UpgradeError> {
    let cluster = open(path, options.connect).await?;
    if options.dry_run {
        let decided = decide(&cluster, &options, &reporter, false).await?;
        let (report, _) = planned(&cluster, &decided, &options).await;
        return Ok(report);
    }
    let holder = LockHolder::current();
    take_lock(&cluster, &holder, options.force_unlock, reporter.as_ref()).await?;
    let result = run_locked(&cluster, &options, &reporter).await;
    let server = cluster.transport(&cluster.first_server)?;
    let released = release(server.as_ref(), &holder).await;
    let mut report = result?;
    released.map_err(OpsError::from)?;
    if report.upgraded() {
        report.spec = Some(spec_update::follow_up(
            path,
            &report.target,
            options.update_spec,
        ));
    }
    Ok(report)
}

/// What the rollout will do to each node it touches, for the confirmation.
fn consent(plan: &UpgradePlan) -> crate::ops::confirm::ConsentRequest {
    let items: Vec<String> = plan
        .nodes()
        .filter_map(|n| match n.action {
            NodeAction::Upgrade { drain, .. } => Some(format!(
                "{}: {}restart with {} (runs {})",
                n.name,
                if drain { "cordon, drain, " } else { "cordon, " },
                n.to,
                n.from
            )),
            NodeAction::Skip | NodeAction::Finish => None,
        })
        .collect();
    crate::ops::confirm::ConsentRequest::new(
        "upgrade",
        format!(
            "restart {} node(s) with {} (servers one at a time first, then the agents)",
            items.len(),
            plan.target
        ),
        items,
    )
}

async fn planned(
    cluster: &UpgradeSession,
    decided: &Decided,
    options: &UpgradeOptions,
) -> (UpgradeReport, UpgradePlan) {
    let dry_run = options.dry_run;
    let policy = &cluster.spec.cluster.spec.upgrade;
    let mut plan = plan_upgrade(decided.target, &decided.nodes, policy);
    if snapshot_wanted(
        policy.snapshot,
        cluster.servers().len(),
        options.no_snapshot,
    ) {
        plan.snapshot = Some(snapshot_name(decided.target));
    }
    let previews = drain_previews(cluster, &plan).await;
    let plan_text = render_upgrade_plan(&plan, &previews);
    let report = UpgradeReport {
        target: decided.target,
        source: decided.source.to_string(),
        plan: plan.clone(),
        plan_text,
        dry_run,
        nodes: Vec::new(),
        failures: Vec::new(),
        smoke: None,
        snapshot: None,
        spec: None,
    };
    (report, plan)
}

/// HA: before anything changes, refuses when the first server to go down could cost etcd its
/// quorum (a member down, a learner, members and servers differing). Not skipped by
/// `--skip-initial-gate`: quorum is not negotiable.
async fn check_quorum_first(
    cluster: &UpgradeSession,
    plan: &UpgradePlan,
) -> Result<(), UpgradeError> {
    if !cluster.is_ha() {
        return Ok(());
    }
    let Some(first) = plan
        .nodes()
        .find(|n| n.kind == NodeKind::Server && matches!(n.action, NodeAction::Upgrade { .. }))
    else {
        return Ok(());
    };
    let api = cluster.api().await?.api;
    let servers: Vec<String> = cluster.servers().into_iter().map(str::to_string).collect();
    let look = crate::run::quorum::look(api.as_ref(), &servers, &cluster.transports)
        .await
        .map_err(|cause| UpgradeError::MembersUnreadable {
            server: first.name.clone(),
            cause,
        })?;
    let servers = look.server_names();
    may_take_down(&look.state(&servers), &first.name).map_err(UpgradeError::Quorum)
}

/// Takes the pre-upgrade etcd snapshot on the first Ready voting member (spec order) and says
/// where it is. Nothing has changed yet when it fails.
async fn take_snapshot(
    cluster: &UpgradeSession,
    prefix: &str,
    reporter: &dyn Reporter,
) -> Result<Saved, UpgradeError> {
    let t = std::time::Instant::now();
    let servers: Vec<String> = cluster.servers().into_iter().map(str::to_string).collect();
    let nodes = cluster.api().await?.api.node_infos().await?;
    let node = pick_voter(&servers, &nodes).map_err(UpgradeError::Snapshot)?;
    let transport = cluster.transport(&node)?;
    let saved = save_on(transport.as_ref(), prefix)
        .await
        .map_err(|e| UpgradeError::Snapshot(e.to_string()))?;
    reporter.report(
        Event::new(
            &node,
            "etcd-snapshot",
            EventKind::Done,
            format!(
                "etcd snapshot {} saved on {node} at {}",
                saved.name, saved.location
            ),
        )
        .took(t.elapsed()),
    );
    Ok(saved)
}

/// The run's shared state for the rollout: the upgrade's API (`reached`), its node timeout,
/// the one upload limit, and what the rollout's steps need. Without a reached API (no server
/// answers: the recovery of a first server that failed its own upgrade), the engine connects
/// through the session's connector once a server is back, and asks each server's own
/// `/readyz` on the server.
fn rollout_shared(
    cluster: &UpgradeSession,
    reporter: &Arc<dyn Reporter>,
    binaries: &LocalBinaries,
    archs: &BTreeMap<String, crate::k3s::release::Arch>,
    reached: Option<&ReachedApi>,
) -> Shared {
    let policy = &cluster.spec.cluster.spec.upgrade;
    let options = RunOptions {
        node_ready_timeout: policy.node_ready_timeout.to_std(),
        ..RunOptions::default()
    };
    let (connector, api_server): (Arc<dyn ApiConnector>, String) = match reached {
        Some(r) => (Arc::new(ConnectedApi(Arc::clone(&r.api))), r.server.clone()),
        None => (cluster.connector(), String::new()),
    };
    let mut shared = Shared::new(
        BTreeMap::new(),
        Arc::clone(reporter),
        options,
        connector,
        None,
    );
    shared.rollout = Some(RolloutContext {
        binaries: host_binaries(binaries, archs),
        servers: cluster.servers().into_iter().map(str::to_string).collect(),
        api_server,
        transports: cluster.transports.clone(),
    });
    shared
}

async fn run_locked(
    cluster: &UpgradeSession,
    options: &UpgradeOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<UpgradeReport, UpgradeError> {
    let decided = decide(cluster, options, reporter, true).await?;
    let (mut report, plan) = planned(cluster, &decided, options).await;
    let reached = cluster.api().await?;
    let api = reached.api.as_ref();
    if !plan.has_work() {
        info(
            reporter.as_ref(),
            "cluster",
            "plan",
            format!("nothing to do: every node runs {}", plan.target),
        );
        report.smoke = Some(gate::smoke(api, plan.target, Duration::ZERO).await?);
        return Ok(report);
    }
    info(
        reporter.as_ref(),
        "cluster",
        "plan",
        report.plan_text.clone(),
    );
    options
        .confirm
        .ask(&consent(&plan))
        .map_err(OpsError::from)?;
    let binaries = match decided.binaries {
        Some(b) => b,
        None => download(&cluster.spec, &decided.target, &arch_set(&decided.archs)).await?,
    };
    check_quorum_first(cluster, &plan).await?;
    if options.skip_initial_gate {
        info(
            reporter.as_ref(),
            "cluster",
            "health-gate",
            "initial health gate skipped (--skip-initial-gate)",
        );
    } else {
        let t = std::time::Instant::now();
        let waiting = |w: &[String]| {
            info(
                reporter.as_ref(),
                "cluster",
                "health-gate",
                format!("waiting for the cluster to settle: {}", w.join("; ")),
            );
        };
        gate::wait_gate(
            api,
            gate_limits(&cluster.spec.cluster.spec.upgrade),
            &waiting,
        )
        .await
        .map_err(UpgradeError::InitialGate)?;
        reporter.report(
            Event::new(
                "cluster",
                "health-gate",
                EventKind::Done,
                "all nodes Ready, kube-system pods Running",
            )
            .took(t.elapsed()),
        );
    }
    if let Some(prefix) = &plan.snapshot {
        report.snapshot = Some(take_snapshot(cluster, prefix, reporter.as_ref()).await?);
    }
    let shared = rollout_shared(cluster, reporter, &binaries, &decided.archs, Some(&reached));
    if let Err(failure) = stage_all(&plan, &cluster.transports, &shared).await {
        report.failures.push(failure);
        return Ok(report);
    }
    let policy = &cluster.spec.cluster.spec.upgrade;
    let rollout = RolloutPolicy {
        gate: gate_limits(policy),
        stop_all_on_failure: policy.on_failure == OnFailure::Stop,
    };
    let result = execute_rollout(&plan, &cluster.transports, &shared, rollout).await;
    report.nodes = result.records;
    report.failures = result.failures;
    if report.failures.is_empty() {
        report.smoke = Some(gate::smoke(api, plan.target, Duration::from_secs(60)).await?);
    }
    Ok(report)
}
