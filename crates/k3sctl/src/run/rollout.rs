//! Executing a rollout (the upgrade's order): phases in order, the lanes of a phase side by
//! side, the batches of a lane one after another with the health gate after each; each node's
//! turn is its plan steps, run by the same step executor as `apply`. A failure stops the
//! rollout (or only its lane when the policy allows; a server's failure always stops).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::future::join_all;

use super::context::Shared;
use super::events::{Event, EventKind};
use super::gate::{GateLimits, wait_gate};
use super::host_steps::{report_done, report_start, report_step_failed, run_step};
use super::record::{NodeFailure, NodeOutcome, NodeRecord, Stopwatch};
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::plan::upgrade::{Batch, Lane, NodeAction, NodeKind, PlannedNode, UpgradePlan};
use crate::plan::{HostPlan, Step};

/// How the rollout reacts to time and failures.
#[derive(Debug, Clone, Copy)]
pub struct RolloutPolicy {
    /// The health gate after each batch.
    pub gate: GateLimits,
    /// A failed agent stops every lane (else only its own; a server always stops all).
    pub stop_all_on_failure: bool,
}

/// What the rollout did.
#[derive(Debug, Default)]
pub struct RolloutResult {
    /// One record per node, rollout order within each lane.
    pub records: Vec<NodeRecord>,
    /// The failures (one per stopped lane).
    pub failures: Vec<NodeFailure>,
}

struct Rollout<'a> {
    shared: &'a Shared,
    transports: &'a BTreeMap<String, Arc<dyn Transport>>,
    policy: RolloutPolicy,
    stop: AtomicBool,
}

impl Rollout<'_> {
    fn say(&self, host: &str, step: &str, kind: EventKind, message: impl Into<String>) {
        self.shared
            .reporter
            .report(Event::new(host, step, kind, message));
    }
}

/// Whether a step's time is spent waiting on what k3sctl does not control (pods leaving, K3s
/// starting, the node and etcd coming back), not k3sctl's own overhead.
fn is_waiting(step: &Step) -> bool {
    matches!(
        step,
        Step::Drain(_)
            | Step::Restart { .. }
            | Step::RotateCertificates { .. }
            | Step::WaitReadyAt { .. }
            | Step::WaitNodeReady
            | Step::WaitQuorum
    )
}

fn role(kind: NodeKind) -> NodeRole {
    match kind {
        NodeKind::Server => NodeRole::Server,
        NodeKind::Agent => NodeRole::Agent,
    }
}

/// A node's turn as the step executor sees it: a host already in the cluster.
fn host_plan(node: &PlannedNode) -> HostPlan {
    HostPlan {
        host: node.name.clone(),
        role: role(node.kind),
        group: None,
        first_server: false,
        in_cluster: true,
        steps: node.steps.clone(),
    }
}

fn untouched(batches: &[Batch]) -> Vec<NodeRecord> {
    batches
        .iter()
        .flat_map(|b| b.nodes.iter())
        .map(|n| {
            let outcome = if n.is_work() {
                NodeOutcome::Untouched
            } else {
                NodeOutcome::Skipped
            };
            Stopwatch::start().record(&n.name, outcome, vec![])
        })
        .collect()
}

/// Runs one node's steps; the batch's health gate is the caller's.
async fn run_node(
    rollout: &Rollout<'_>,
    node: &PlannedNode,
) -> Result<NodeRecord, (NodeFailure, NodeRecord)> {
    let mut watch = Stopwatch::start();
    let outcome = match &node.action {
        NodeAction::Skip => return Ok(watch.record(&node.name, NodeOutcome::Skipped, vec![])),
        NodeAction::Finish => {
            rollout.say(
                &node.name,
                "finish",
                EventKind::Start,
                format!(
                    "already at {}, cordoned by an interrupted run: finishing",
                    node.to
                ),
            );
            NodeOutcome::Finished
        }
        NodeAction::Upgrade { .. } => {
            rollout.say(
                &node.name,
                "upgrade",
                EventKind::Start,
                format!("{} → {}", node.from, node.to),
            );
            NodeOutcome::Upgraded
        }
    };
    let Some(transport) = rollout.transports.get(&node.name) else {
        let failure = NodeFailure {
            node: node.name.clone(),
            step: "connect".into(),
            error: format!("{}: no connection", node.name),
            hint: None,
            journal: None,
        };
        return Err((
            failure,
            watch.record(&node.name, NodeOutcome::Failed, vec![]),
        ));
    };
    let host = host_plan(node);
    match run_turn(rollout.shared, transport.as_ref(), &host, &mut watch).await {
        Ok(notes) => Ok(watch.record(&node.name, outcome, notes)),
        Err((failure, notes)) => Err((
            failure,
            watch.record(&node.name, NodeOutcome::Failed, notes),
        )),
    }
}

/// Runs one host's steps in order through the one step executor, reporting each, stopping at
/// the first failure; time spent waiting on others (drain, restart, waits) goes to `watch`.
/// Returns the notes the steps left (`stays cordoned: ...`), or the typed failure with them.
/// For any operation that walks a node through plan steps (an upgrade's turn, a rotation's,
/// the recovery of a server). When a step (re)starts K3s, the start's time is kept for the
/// rest of the turn, so a later wait for Ready counts only a Ready posted after that start.
pub async fn run_turn(
    shared: &Shared,
    transport: &dyn Transport,
    host: &HostPlan,
    watch: &mut Stopwatch,
) -> Result<Vec<String>, (NodeFailure, Vec<String>)> {
    let mut notes = Vec::new();
    // When this turn last (re)started K3s on the host, on the host's clock.
    let mut started_at = None;
    for step in &host.steps {
        let started = report_start(shared, &host.host, host.role, step);
        let result = run_step(shared, host, transport, step, &mut started_at).await;
        if is_waiting(step) {
            watch.waited(started.elapsed());
        }
        match result {
            Ok(done) => {
                report_done(shared, &host.host, host.role, step, &done, started);
                notes.extend(done.note);
            }
            Err(error) => {
                report_step_failed(shared, &host.host, step, started, &error);
                let failure = NodeFailure {
                    node: host.host.clone(),
                    step: step.kind().to_string(),
                    error: error.headline(),
                    hint: error.hint(),
                    journal: error.journal().map(str::to_string),
                };
                return Err((failure, notes));
            }
        }
    }
    Ok(notes)
}

async fn gate(rollout: &Rollout<'_>, lane: &Lane, batch: &Batch) -> Result<(), NodeFailure> {
    let t = Instant::now();
    let names: Vec<&str> = batch.nodes.iter().map(|n| n.name.as_str()).collect();
    let waiting = |w: &[String]| {
        rollout.say(
            &lane.name,
            "health-gate",
            EventKind::Info,
            format!("waiting for the cluster to settle: {}", w.join("; ")),
        );
    };
    let failure = |error: String| NodeFailure {
        node: names.join(", "),
        step: "health-gate".into(),
        error,
        hint: None,
        journal: None,
    };
    let api = rollout.shared.api().await.map_err(failure)?;
    match wait_gate(api.as_ref(), rollout.policy.gate, &waiting).await {
        Ok(()) => {
            rollout.shared.reporter.report(
                Event::new(
                    &lane.name,
                    "health-gate",
                    EventKind::Done,
                    format!("cluster healthy after {}", names.join(", ")),
                )
                .took(t.elapsed()),
            );
            Ok(())
        }
        Err(problem) => {
            let error = format!("after this node, the cluster is {problem}");
            rollout.say(&lane.name, "health-gate", EventKind::Failed, error.clone());
            Err(failure(error))
        }
    }
}

/// Runs one lane; returns its records and the failure that stopped it.
async fn run_lane(
    rollout: &Rollout<'_>,
    lane: &Lane,
    is_servers: bool,
) -> (Vec<NodeRecord>, Option<NodeFailure>) {
    let mut records = Vec::new();
    for (index, batch) in lane.batches.iter().enumerate() {
        if rollout.stop.load(Ordering::SeqCst) {
            records.extend(untouched(&lane.batches[index..]));
            return (records, None);
        }
        let results = join_all(batch.nodes.iter().map(|n| run_node(rollout, n))).await;
        let mut failure = None;
        for result in results {
            match result {
                Ok(record) => records.push(record),
                Err((f, record)) => {
                    records.push(record);
                    failure.get_or_insert(f);
                }
            }
        }
        if failure.is_none() && batch.nodes.iter().any(PlannedNode::is_work) {
            let t = Instant::now();
            let gated = gate(rollout, lane, batch).await;
            // The gate's wait counts against the batch's nodes as unavoidable waiting.
            let waited = t.elapsed().as_secs_f64();
            for r in records.iter_mut().rev().take(batch.nodes.len()) {
                r.seconds += waited;
                r.waited_seconds += waited;
            }
            failure = gated.err();
        }
        if let Some(f) = failure {
            if is_servers || rollout.policy.stop_all_on_failure {
                rollout.stop.store(true, Ordering::SeqCst);
            }
            records.extend(untouched(&lane.batches[index + 1..]));
            return (records, Some(f));
        }
    }
    (records, None)
}

/// Runs the rollout. `shared.rollout` must carry the rollout's context (binaries, servers).
pub async fn execute_rollout(
    plan: &UpgradePlan,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    shared: &Shared,
    policy: RolloutPolicy,
) -> RolloutResult {
    let rollout = Rollout {
        shared,
        transports,
        policy,
        stop: AtomicBool::new(false),
    };
    let mut result = RolloutResult::default();
    for phase in &plan.phases {
        if rollout.stop.load(Ordering::SeqCst) {
            for lane in &phase.lanes {
                result.records.extend(untouched(&lane.batches));
            }
            continue;
        }
        rollout.say("cluster", "phase", EventKind::Info, phase.title.clone());
        let lanes = join_all(phase.lanes.iter().map(|l| {
            let is_servers = l
                .batches
                .iter()
                .flat_map(|b| b.nodes.iter())
                .any(|n| n.kind == NodeKind::Server);
            run_lane(&rollout, l, is_servers)
        }))
        .await;
        for (records, failure) in lanes {
            result.records.extend(records);
            result.failures.extend(failure);
        }
    }
    result
}
