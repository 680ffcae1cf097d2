//! What a rollout reports per node: how it ended, its time split into unavoidable waits and
//! k3sctl's own overhead, and the failure that stopped it.

use std::time::{Duration, Instant};

use serde::Serialize;

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

/// A node whose turn failed: the step, what happened, what to do and the journal lines that
/// explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFailure {
    /// The node (or the nodes of a batch whose health gate failed).
    pub node: String,
    /// The step (`drain`, `restart`, `wait-ready`, `health-gate`, ...).
    pub step: String,
    /// What went wrong.
    pub error: String,
    /// What to do, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `journalctl -u <unit> -n 30` from the node, when the step involved the service.
    pub journal: Option<String>,
}

impl std::fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: step {} failed: {}",
            self.node, self.step, self.error
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        if let Some(journal) = &self.journal {
            write!(f, "\n  last journal lines on {}:", self.node)?;
            for line in journal.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}
