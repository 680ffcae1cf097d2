//! The health gate (all nodes Ready, kube-system pods Running) before the first node and after
//! each batch: it waits, bounded by `upgrade.gateTimeout` and saying what it waits for, while
//! the cluster settles, and fails at once on what will not settle (the judgement is
//! `plan::upgrade::gate`, pure). Also the smoke check after the last node (every node Ready at
//! the target, no pod outside Running/Succeeded).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::kube::{Client, KubeError, list_nodes, pod_healths, unhealthy_pods};
use crate::plan::upgrade::gate::{GateVerdict, judge_gate};

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
        /// `upgrade.gateTimeout` in seconds.
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
                    write!(
                        f,
                        "
  - {p}"
                    )?;
                }
                if !settling.is_empty() {
                    write!(
                        f,
                        "
  still settling:"
                    )?;
                    for p in settling {
                        write!(
                            f,
                            "
  - {p}"
                        )?;
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
                    write!(
                        f,
                        "
  - {p}"
                    )?;
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One look at the cluster: nodes and kube-system pods, judged.
pub async fn look(client: &Client, grace: Duration) -> Result<GateVerdict, KubeError> {
    let nodes = list_nodes(client).await?;
    let pods = pod_healths(client, Some("kube-system")).await?;
    Ok(judge_gate(&nodes, &pods, unix_now(), grace.as_secs()))
}

/// Waits until the gate passes: fails at once on a stuck state, after `limits.timeout` on what
/// is still settling. `waiting` is called with what the gate waits for whenever that changes
/// (progress). API errors count as "not yet" (a server that just restarted).
pub async fn wait_gate(
    client: &Client,
    limits: GateLimits,
    waiting: &(dyn Fn(&[String]) + Send + Sync),
) -> Result<(), GateFailure> {
    let start = Instant::now();
    let mut shown: Vec<String> = Vec::new();
    loop {
        let settling = match look(client, limits.grace).await {
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

/// One node in the smoke table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeNode {
    /// Node name.
    pub name: String,
    /// kubeletVersion.
    pub version: String,
    /// Ready condition.
    pub ready: bool,
    /// Cordoned.
    pub cordoned: bool,
    /// Runs the target.
    pub at_target: bool,
}

/// The post-upgrade smoke check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Smoke {
    /// Every node.
    pub nodes: Vec<SmokeNode>,
    /// Pods not Running (with ready containers) or Succeeded.
    pub pod_problems: Vec<String>,
}

impl Smoke {
    /// Every node Ready at the target and no pod stuck.
    pub fn passed(&self) -> bool {
        self.pod_problems.is_empty() && self.nodes.iter().all(|n| n.ready && n.at_target)
    }
}

async fn smoke_once(client: &Client, target: K3sVersion) -> Result<Smoke, KubeError> {
    let wanted = target.to_string();
    let nodes = list_nodes(client)
        .await?
        .into_iter()
        .map(|n| SmokeNode {
            at_target: n.kubelet_version == wanted,
            name: n.name,
            version: n.kubelet_version,
            ready: n.ready,
            cordoned: n.unschedulable,
        })
        .collect();
    Ok(Smoke {
        nodes,
        pod_problems: unhealthy_pods(client, None).await?,
    })
}

/// Runs the smoke check, retrying for up to `settle` while it does not pass (pods moved by the
/// last drain may still be starting).
pub async fn smoke(
    client: &Client,
    target: K3sVersion,
    settle: Duration,
) -> Result<Smoke, KubeError> {
    let start = Instant::now();
    loop {
        let result = smoke_once(client, target).await;
        match result {
            Ok(s) if s.passed() => return Ok(s),
            Ok(s) if start.elapsed() >= settle => return Ok(s),
            Err(e) if start.elapsed() >= settle => return Err(e),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
