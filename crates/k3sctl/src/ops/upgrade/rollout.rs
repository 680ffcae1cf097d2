//! Running the planned rollout: phases in order, the lanes of a phase side by side, the batches
//! of a lane one after another with the health gate after each; a failure stops the rollout
//! (or only its group with `onFailure: continue-other-groups`; a server failure always stops).

use std::time::Instant;

use futures_util::future::join_all;

use super::context::{NodeOutcome, NodeRecord, Rollout, Stopwatch};
use super::error::NodeFailure;
use super::gate::{GateLimits, wait_gate};
use super::node::run_node;
use crate::plan::upgrade::{Batch, Lane, NodeKind, UpgradePlan};
use crate::run::{Event, EventKind};
use crate::spec::OnFailure;

/// What the rollout did.
#[derive(Debug, Default)]
pub struct RolloutResult {
    /// One record per node, rollout order within each lane.
    pub records: Vec<NodeRecord>,
    /// The failures (one per stopped lane).
    pub failures: Vec<NodeFailure>,
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
    let limits = GateLimits {
        timeout: rollout.policy.gate_timeout.to_std(),
        grace: rollout.policy.node_ready_timeout.to_std(),
    };
    match wait_gate(&rollout.cluster.api.client, limits, &waiting).await {
        Ok(()) => {
            rollout.reporter.report(
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
            Err(NodeFailure {
                node: names.join(", "),
                step: "health-gate".into(),
                error,
                journal: None,
            })
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
        if rollout.stopped() {
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
        if failure.is_none() && batch.nodes.iter().any(|n| n.is_work()) {
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
            if is_servers || rollout.policy.on_failure == OnFailure::Stop {
                rollout.halt();
            }
            records.extend(untouched(&lane.batches[index + 1..]));
            return (records, Some(f));
        }
    }
    (records, None)
}

/// Runs the plan.
pub async fn run_rollout(rollout: &Rollout<'_>, plan: &UpgradePlan) -> RolloutResult {
    let mut result = RolloutResult::default();
    for phase in &plan.phases {
        if rollout.stopped() {
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
            run_lane(rollout, l, is_servers)
        }))
        .await;
        for (records, failure) in lanes {
            result.records.extend(records);
            result.failures.extend(failure);
        }
    }
    result
}
