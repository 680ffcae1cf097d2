//! Preflight before any change: facts from every host checked together (systemd, arch,
//! duplicate hostnames, clock skew, disk), and the join endpoint probed from each joining host
//! when the first server already runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::error::OpsError;
use crate::host::{
    FactsRequest, PreflightLimits, ProbeOutcome, Severity, Transport, check_hosts, gather_facts,
    probe_tcp,
};
use crate::k3s::release::Arch;
use crate::plan::{Plan, Step};
use crate::run::join_probe::{PROBE_TIMEOUT, endpoint_host_port, unreachable_endpoint};

/// Gathers facts on every host and checks them; errors stop the apply, warnings are returned.
pub async fn check_facts(
    transports: &BTreeMap<String, Arc<dyn Transport>>,
) -> Result<Vec<String>, OpsError> {
    let request = FactsRequest {
        disk_path: Some(crate::k3s::ports::DATA_PARENT.into()),
        ..Default::default()
    };
    let results = join_all(transports.iter().map(|(name, t)| {
        let request = &request;
        async move {
            (
                name.clone(),
                gather_facts(t.as_ref(), request, Duration::from_secs(60)).await,
            )
        }
    }))
    .await;
    let mut facts = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, result) in results {
        match result {
            Ok(f) => {
                facts.insert(name, f);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut warnings = Vec::new();
    let supported = |machine: &str| Arch::from_uname(machine).is_ok();
    for problem in check_hosts(&facts, &PreflightLimits::default(), supported) {
        match problem.severity() {
            Severity::Error => errors.push(problem.to_string()),
            Severity::Warning => warnings.push(problem.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(OpsError::Preflight(errors))
    }
}

/// Whether a probe result blocks the join. Before the first server runs, "refused" is what a
/// reachable address answers (nothing listens yet); a timeout or no route means the endpoint is
/// wrong or filtered.
pub fn blocks_join(detail: &str, server_running: bool) -> bool {
    server_running || !detail.to_ascii_lowercase().contains("refused")
}

/// Probes the join endpoint from every host that will join, all at once.
pub async fn check_join_endpoint(
    plan: &Plan,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    endpoint: &str,
    server_running: bool,
) -> Result<(), OpsError> {
    let Some((address, port)) = endpoint_host_port(endpoint) else {
        return Err(OpsError::SpecValue {
            field: "cluster.registrationAddress".into(),
            problem: format!("`{endpoint}` is not a URL"),
        });
    };
    let joining = plan
        .hosts
        .iter()
        .filter(|h| h.steps.contains(&Step::Start { join: true }));
    let probes = joining.filter_map(|h| {
        let t = transports.get(&h.host)?;
        let address = address.clone();
        Some(async move {
            (
                h.host.clone(),
                probe_tcp(t.as_ref(), &address, port, PROBE_TIMEOUT).await,
            )
        })
    });
    let problems: Vec<String> = join_all(probes)
        .await
        .into_iter()
        .filter_map(|(host, outcome)| match outcome {
            Ok(ProbeOutcome::Open) => None,
            Ok(ProbeOutcome::Closed(detail)) if blocks_join(&detail, server_running) => {
                Some(unreachable_endpoint(&host, endpoint, &detail))
            }
            Ok(ProbeOutcome::Closed(_)) => None,
            Err(e) => Some(e.to_string()),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Preflight(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_is_fine_only_before_the_server_runs() {
        assert!(!blocks_join("Connection refused", false));
        assert!(blocks_join("Connection refused", true));
        assert!(blocks_join("timed out after 3s", false));
        assert!(blocks_join("No route to host", false));
    }
}
