//! Draining a node: list its pods, decide with [`plan_drain`], evict (retrying refusals until the
//! timeout and naming the PodDisruptionBudgets that block) or delete, then wait until every
//! removed pod is gone by UID.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::task::JoinSet;

use super::drain_plan::{DrainPlan, DrainRules, PodRef, plan_drain, pod_ref};
use super::error::KubeError;
use super::eviction::{Removal, delete, evict};
use super::pdb::{describe_pdb, matching_pdbs};
use super::wait::{Poll, poll_until};

/// How to drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// What may be removed.
    pub rules: DrainRules,
    /// Delete pods instead of evicting them: ignores PodDisruptionBudgets.
    pub disable_eviction: bool,
    /// The whole drain (evictions and waiting for pods to go) must finish within this.
    pub timeout: Duration,
    /// Time between retries of a refused eviction and between checks for gone pods.
    pub interval: Duration,
    /// Grace period for the pods' termination; `None` uses each pod's own.
    pub grace_period_seconds: Option<i64>,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            rules: DrainRules::default(),
            disable_eviction: false,
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
            grace_period_seconds: None,
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// The decisions (evicted, skipped, warnings).
    pub plan: DrainPlan,
    /// Pods were deleted, bypassing PodDisruptionBudgets.
    pub bypassed_pdbs: bool,
    /// How long the drain took.
    pub elapsed: Duration,
}

/// The pods on node `node`.
pub async fn pods_on_node(client: &Client, node: &str) -> Result<Vec<Pod>, KubeError> {
    let api: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = api
        .list(&params)
        .await
        .map_err(|e| KubeError::api(format!("listing pods on node {node}"), e))?;
    Ok(list.items)
}

/// What draining `node` would do now, without doing it (for `plan` and dry runs).
pub async fn preview_drain(
    client: &Client,
    node: &str,
    rules: DrainRules,
) -> Result<DrainPlan, KubeError> {
    Ok(plan_drain(&pods_on_node(client, node).await?, rules))
}

/// Drains `node` (which should be cordoned first). Refuses before touching anything when some
/// pod blocks under the rules.
pub async fn drain_node(
    client: &Client,
    node: &str,
    opts: &DrainOptions,
) -> Result<DrainReport, KubeError> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let pods = pods_on_node(client, node).await?;
    let plan = plan_drain(&pods, opts.rules);
    if !plan.blocked.is_empty() {
        return Err(KubeError::DrainRefused {
            node: node.to_owned(),
            pods: plan
                .blocked
                .iter()
                .map(|(p, r)| (p.to_string(), r.to_string()))
                .collect(),
            hint: plan.hint(),
        });
    }
    let labels: BTreeMap<String, BTreeMap<String, String>> = pods
        .iter()
        .map(|p| {
            (
                pod_ref(p).uid,
                p.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut tasks = JoinSet::new();
    for pod in plan.evict.clone() {
        let client = client.clone();
        let opts = *opts;
        let node = node.to_owned();
        let labels = labels.get(&pod.uid).cloned().unwrap_or_default();
        tasks
            .spawn(async move { remove_pod(&client, &node, &pod, &labels, &opts, deadline).await });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(join) => {
                return Err(KubeError::Timeout {
                    what: format!("removing pods from node {node}"),
                    waited: start.elapsed(),
                    last_seen: format!("a removal task ended abnormally: {join}"),
                });
            }
        }
    }
    wait_pods_gone(client, node, &plan.to_wait_for(), opts.interval, deadline).await?;
    Ok(DrainReport {
        plan,
        bypassed_pdbs: opts.disable_eviction,
        elapsed: start.elapsed(),
    })
}

/// Removes one pod, retrying refusals until `deadline`.
async fn remove_pod(
    client: &Client,
    node: &str,
    pod: &PodRef,
    labels: &BTreeMap<String, String>,
    opts: &DrainOptions,
    deadline: Instant,
) -> Result<(), KubeError> {
    let started = Instant::now();
    loop {
        let removal = if opts.disable_eviction {
            delete(client, pod, opts.grace_period_seconds).await?
        } else {
            evict(client, pod, opts.grace_period_seconds).await?
        };
        let message = match removal {
            Removal::Accepted | Removal::Gone => {
                tracing::info!(node, pod = %pod, "{}", if opts.disable_eviction { "deleted" } else { "evicted" });
                return Ok(());
            }
            Removal::Refused(message) => message,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(KubeError::EvictionBlocked {
                node: node.to_owned(),
                pod: pod.to_string(),
                pdbs: blocking_pdbs(client, pod, labels).await,
                message,
                waited: started.elapsed(),
            });
        }
        tracing::debug!(node, pod = %pod, "eviction refused, retrying: {message}");
        tokio::time::sleep(opts.interval.min(deadline - now)).await;
    }
}

/// Descriptions of the PDBs that select `pod` (best effort: an error listing them is reported
/// in place of the list).
async fn blocking_pdbs(
    client: &Client,
    pod: &PodRef,
    labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &pod.namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => matching_pdbs(&list.items, &pod.namespace, labels)
            .into_iter()
            .map(describe_pdb)
            .collect(),
        Err(e) => vec![format!("(could not list PodDisruptionBudgets: {e})")],
    }
}

/// Waits until none of `pods` exists with its UID any more.
async fn wait_pods_gone(
    client: &Client,
    node: &str,
    pods: &[PodRef],
    interval: Duration,
    deadline: Instant,
) -> Result<(), KubeError> {
    if pods.is_empty() {
        return Ok(());
    }
    let what = format!(
        "{} pod(s) removed from node {node} to terminate",
        pods.len()
    );
    let timeout = deadline.saturating_duration_since(Instant::now());
    poll_until(&what, Poll::new(interval, timeout), || async {
        let mut remaining = Vec::new();
        for pod in pods {
            let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
            let current = api
                .get_opt(&pod.name)
                .await
                .map_err(|e| KubeError::api(format!("reading pod {pod}"), e))?;
            if current.is_some_and(|p| p.metadata.uid.as_deref() == Some(pod.uid.as_str())) {
                remaining.push(pod.to_string());
            }
        }
        Ok(if remaining.is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {}", remaining.join(", ")))
        })
    })
    .await
}
