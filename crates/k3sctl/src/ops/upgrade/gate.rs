//! The health gate (all nodes Ready, kube-system pods Running) before the first node and after
//! each batch: it waits, bounded by `upgrade.gateTimeout` and saying what it waits for, while
//! the cluster settles, and fails at once on what will not settle (the judgement is
//! `plan::upgrade::gate`, pure). Also the smoke check after the last node (every node Ready at
//! the target, no pod outside Running/Succeeded).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::run::{ApiError, ClusterApi};

const POLL: Duration = Duration::from_millis(500);

pub use crate::run::gate::{GateFailure, GateLimits, wait_gate};

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

async fn smoke_once(api: &dyn ClusterApi, target: K3sVersion) -> Result<Smoke, ApiError> {
    let wanted = target.to_string();
    let nodes = api
        .node_infos()
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
        pod_problems: api
            .pod_healths(None)
            .await?
            .iter()
            .filter_map(|h| h.problem().map(str::to_string))
            .collect(),
    })
}

/// Runs the smoke check, retrying for up to `settle` while it does not pass (pods moved by the
/// last drain may still be starting).
pub async fn smoke(
    api: &dyn ClusterApi,
    target: K3sVersion,
    settle: Duration,
) -> Result<Smoke, ApiError> {
    let start = Instant::now();
    loop {
        let result = smoke_once(api, target).await;
        match result {
            Ok(s) if s.passed() => return Ok(s),
            Ok(s) if start.elapsed() >= settle => return Ok(s),
            Err(e) if start.elapsed() >= settle => return Err(e),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
