//! The health gate (all nodes Ready, kube-system pods Running) before the first node and after
//! each batch, and the smoke check after the last node (every node Ready at the target, no pod
//! outside Running/Succeeded).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::kube::{Client, KubeError, list_nodes, unhealthy_pods};

const POLL: Duration = Duration::from_millis(500);

/// What is wrong with the cluster now (empty when healthy).
pub async fn health_problems(client: &Client) -> Result<Vec<String>, KubeError> {
    let mut problems: Vec<String> = list_nodes(client)
        .await?
        .iter()
        .filter(|n| !n.ready)
        .map(|n| format!("node {}: {}", n.name, n.describe()))
        .collect();
    problems.extend(
        unhealthy_pods(client, Some("kube-system"))
            .await?
            .into_iter()
            .map(|p| format!("pod {p}")),
    );
    Ok(problems)
}

/// Waits until the gate passes; on timeout, the last problems. API errors count as "not yet"
/// (a server that just restarted).
pub async fn wait_healthy(client: &Client, timeout: Duration) -> Result<(), Vec<String>> {
    let start = Instant::now();
    loop {
        let problems = match health_problems(client).await {
            Ok(p) if p.is_empty() => return Ok(()),
            Ok(p) => p,
            Err(e) => vec![format!("API not answering: {e}")],
        };
        if start.elapsed() >= timeout {
            return Err(problems);
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
