//! What every node task of one rollout shares, and the per-node record with its timing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::observe::Cluster;
use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::ops::binary::LocalBinaries;
use crate::run::{Event, EventKind, Reporter};
use crate::spec::UpgradePolicy;

/// Shared state of one rollout.
pub struct Rollout<'a> {
    /// Hosts and API.
    pub cluster: &'a Cluster,
    /// Progress output.
    pub reporter: Arc<dyn Reporter>,
    /// The spec's upgrade policy.
    pub policy: UpgradePolicy,
    /// The version every node ends at.
    pub target: K3sVersion,
    /// The new binary per architecture.
    pub binaries: LocalBinaries,
    /// Each host's architecture.
    pub archs: BTreeMap<String, Arch>,
    /// Set when a failure stops the whole rollout.
    pub stop: AtomicBool,
}

impl Rollout<'_> {
    /// Whether the rollout was stopped by a failure.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops the rollout: no new batch starts.
    pub fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Reports an event.
    pub fn say(&self, host: &str, step: &str, kind: EventKind, message: impl Into<String>) {
        self.reporter.report(Event::new(host, step, kind, message));
    }
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeOutcome {
    /// Upgraded now.
    Upgraded,
    /// Finished after an interrupted run.
    Finished,
    /// Already at the target.
    Skipped,
    /// Its upgrade failed.
    Failed,
    /// Not reached (the rollout stopped first).
    Untouched,
}

/// One node's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// How it ended.
    pub outcome: NodeOutcome,
    /// Wall time of its steps.
    pub seconds: f64,
    /// Time spent waiting on things k3sctl does not control: the drain, K3s starting, the node
    /// turning Ready, the health gate.
    pub waited_seconds: f64,
    /// `seconds - waited_seconds`: k3sctl's own overhead (API calls, SSH round trips, upload).
    pub overhead_seconds: f64,
    /// Extra facts (`stays cordoned: a person cordoned it`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Times a node's steps, separating unavoidable waits from k3sctl's own work.
#[derive(Debug)]
pub struct Stopwatch {
    started: Instant,
    waited: Duration,
}

impl Stopwatch {
    /// Starts timing.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            waited: Duration::ZERO,
        }
    }

    /// Counts `d` as an unavoidable wait.
    pub fn waited(&mut self, d: Duration) {
        self.waited += d;
    }

    /// The record for a node.
    pub fn record(&self, name: &str, outcome: NodeOutcome, notes: Vec<String>) -> NodeRecord {
        let total = self.started.elapsed();
        let round = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
        NodeRecord {
            name: name.to_string(),
            outcome,
            seconds: round(total),
            waited_seconds: round(self.waited),
            overhead_seconds: round(total.saturating_sub(self.waited)),
            notes,
        }
    }
}
