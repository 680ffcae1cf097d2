//! The planner: (desired, observed) → ordered steps per host. Pure.

use super::desired::{Desired, DesiredHost};
use super::diff::unified_diff;
use super::observed::{Observed, ObservedHost, ObservedNode};
use super::step::{ExportStep, HostPlan, Plan, Step};
use crate::k3s::release::Arch;
use crate::k3s::unit;
use crate::k3s::version::K3sVersion;
use crate::kube::plan_taints;

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A host was not observed (its facts are missing).
    #[error("host {0}: no facts were gathered for it")]
    NotObserved(String),
    /// No binary is known for a host's architecture.
    #[error("host {host}: no K3s binary for architecture {arch}")]
    NoBinary {
        /// Host name.
        host: String,
        /// Its architecture.
        arch: Arch,
    },
    /// A running node has another version: that is an upgrade, not an apply.
    #[error(
        "host {host}: runs K3s {installed} but the spec says {wanted}; apply does not change the \
         version of a running node\n  hint: run `k3sctl upgrade` (it drains and goes node by node), \
         or set k3s.version to {installed}"
    )]
    VersionChange {
        /// Host name.
        host: String,
        /// What runs.
        installed: K3sVersion,
        /// What the spec says.
        wanted: K3sVersion,
    },
}

/// Computes the plan.
pub fn compute_plan(desired: &Desired, observed: &Observed) -> Result<Plan, PlanError> {
    let hosts = desired
        .hosts
        .iter()
        .map(|host| {
            let obs = observed
                .hosts
                .get(&host.name)
                .ok_or_else(|| PlanError::NotObserved(host.name.clone()))?;
            plan_host(desired, host, obs, observed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exports = desired
        .exports
        .iter()
        .map(|e| ExportStep {
            name: e.name.clone(),
            path: e.path.clone(),
            context: e.context.clone(),
            action: match e.up_to_date {
                Some(true) => "up-to-date",
                Some(false) => "write",
                None => "unknown",
            },
        })
        .collect();
    Ok(Plan {
        cluster: desired.cluster.clone(),
        version: desired.version,
        hosts,
        exports,
    })
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The taints step: a node that registers in this run gets (and k3sctl records) the spec's
/// taints; a live node gets what is missing and loses only taints k3sctl set that the spec no
/// longer lists.
fn taint_step(host: &DesiredHost, node: Option<&ObservedNode>) -> Option<Step> {
    match node {
        None if host.taints.is_empty() => None,
        None => Some(Step::EnforceTaints {
            wanted: host.taints.clone(),
            add: host.taints.clone(),
            remove: Vec::new(),
            adopt: true,
        }),
        Some(node) => {
            let change = plan_taints(&node.taints, &node.owned_taints, &host.taints, false);
            change
                .writes(&node.owned_taints)
                .then(|| Step::EnforceTaints {
                    wanted: host.taints.clone(),
                    add: change.add,
                    remove: change.remove,
                    adopt: false,
                })
        }
    }
}

fn plan_host(
    desired: &Desired,
    host: &DesiredHost,
    obs: &ObservedHost,
    observed: &Observed,
) -> Result<HostPlan, PlanError> {
    let mut steps = Vec::new();
    let mut restart_reasons: Vec<String> = Vec::new();

    let want_sha = desired
        .binary_sha256
        .get(&obs.arch)
        .ok_or_else(|| PlanError::NoBinary {
            host: host.name.clone(),
            arch: obs.arch,
        })?;
    if obs.binary_sha256.as_deref() != Some(want_sha.as_str()) {
        if let Some(installed) = obs.k3s_version
            && installed != desired.version
            && obs.service_active
        {
            return Err(PlanError::VersionChange {
                host: host.name.clone(),
                installed,
                wanted: desired.version,
            });
        }
        steps.push(Step::UploadBinary {
            version: desired.version,
            installed: obs.k3s_version,
            sha256: want_sha.clone(),
        });
        restart_reasons.push("binary".to_string());
    }

    let mut unit_changed = false;
    for file in &host.files {
        let seen = obs.file(&file.path);
        // Unknown (an env file needing a token nobody has yet): the cluster is being created.
        let differs = match file.content.wanted_sha256(observed.token.as_ref()) {
            Some(wanted) => seen.sha256.as_deref() != Some(wanted.as_str()),
            None => true,
        };
        if !differs {
            continue;
        }
        let diff = match file.content.resolve(observed.token.as_ref()) {
            Some((_, shown)) if file.content.is_diffable() => {
                unified_diff(&file.path, seen.shown.as_deref(), &shown)
            }
            _ => String::new(),
        };
        steps.push(Step::WriteFile {
            path: file.path.clone(),
            mode: file.mode,
            diff,
            create: seen.sha256.is_none(),
            content: file.content.clone(),
        });
        if file.path == unit::unit_path(host.role) {
            unit_changed = true;
        }
        if file.restarts {
            restart_reasons.push(file_name(&file.path).to_string());
        }
    }
    if unit_changed {
        steps.push(Step::DaemonReload);
    }

    let node = observed.node(&host.name);
    let api_up = observed.nodes.is_some();
    let wait = |steps: &mut Vec<Step>| {
        if host.first_server {
            steps.push(Step::WaitServerReady);
        }
        steps.push(Step::WaitNodeReady);
    };
    if !obs.service_active || !obs.service_enabled {
        // A node the API already knows is only started again, not joined.
        steps.push(Step::Start {
            join: !host.first_server && node.is_none(),
        });
        wait(&mut steps);
    } else if !restart_reasons.is_empty() {
        steps.push(Step::Restart {
            reason: format!("{} changed", restart_reasons.join(", ")),
        });
        wait(&mut steps);
    } else if obs.restart_pending {
        steps.push(Step::Restart {
            reason: "files changed after its last start (an earlier apply was interrupted)".into(),
        });
        wait(&mut steps);
    } else if api_up && node.is_none() {
        steps.push(Step::Restart {
            reason: "its Node object is missing: re-register".into(),
        });
        wait(&mut steps);
    } else if !api_up || node.is_some_and(|n| !n.ready) {
        wait(&mut steps);
    }
    if let Some(step) = taint_step(host, node) {
        steps.push(step);
    }

    Ok(HostPlan {
        host: host.name.clone(),
        role: host.role,
        group: host.group.clone(),
        first_server: host.first_server,
        in_cluster: node.is_some(),
        steps,
    })
}
