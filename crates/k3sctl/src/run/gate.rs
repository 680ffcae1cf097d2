//! The health gate (all nodes Ready, kube-system pods Running) before a rollout's first node and
//! after each batch: it waits, bounded and saying what it waits for, while the cluster settles,
//! and fails at once on what will not settle (the judgement is `plan::upgrade::gate`, pure).

use std::time::{Duration, Instant};

use super::api::ClusterApi;
use crate::plan::upgrade::gate::GateVerdict;

const POLL: Duration = Duration::from_millis(500);

/// Why a gate did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    /// Something in a state that waiting will not fix.
    Stuck {
        /// What will not settle.
        stuck: Vec<String>,
        /// What was still settling.
        settling: Vec<String>,
    },
    /// Still settling when the gate's time was up.
    Timeout {
        /// The gate's limit in seconds (`upgrade.gateTimeout`).
        secs: u64,
        /// What it was still waiting for.
        waiting: Vec<String>,
    },
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stuck { stuck, settling } => {
                write!(f, "not healthy, and waiting will not fix it:")?;
                for p in stuck {
                    write!(f, "\n  - {p}")?;
                }
                if !settling.is_empty() {
                    write!(f, "\n  still settling:")?;
                    for p in settling {
                        write!(f, "\n  - {p}")?;
                    }
                }
                Ok(())
            }
            Self::Timeout { secs, waiting } => {
                write!(
                    f,
                    "still not healthy after waiting {secs}s (upgrade.gateTimeout):"
                )?;
                for p in waiting {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// How long to wait, and how long a NotReady node may stay NotReady.
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// `upgrade.gateTimeout`.
    pub timeout: Duration,
    /// `upgrade.nodeReadyTimeout`: the grace period of a NotReady node.
    pub grace: Duration,
}

/// Waits until the gate passes: fails at once on a stuck state, after `limits.timeout` on what
/// is still settling. `waiting` is called with what the gate waits for whenever that changes
/// (progress). API errors count as "not yet" (a server that just restarted).
pub async fn wait_gate(
    api: &dyn ClusterApi,
    limits: GateLimits,
    waiting: &(dyn Fn(&[String]) + Send + Sync),
) -> Result<(), GateFailure> {
    let start = Instant::now();
    let mut shown: Vec<String> = Vec::new();
    loop {
        let settling = match api.health(limits.grace).await {
            Ok(GateVerdict::Healthy) => return Ok(()),
            Ok(GateVerdict::Stuck { stuck, settling }) => {
                return Err(GateFailure::Stuck { stuck, settling });
            }
            Ok(GateVerdict::Settling(s)) => s,
            Err(e) => vec![format!("the API: not answering ({e})")],
        };
        if start.elapsed() >= limits.timeout {
            return Err(GateFailure::Timeout {
                secs: limits.timeout.as_secs(),
                waiting: settling,
            });
        }
        if settling != shown {
            waiting(&settling);
            shown = settling;
        }
        tokio::time::sleep(POLL).await;
    }
}
