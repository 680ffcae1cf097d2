//! Deciding what the upgrade does: the target (an airgap binary's version checked on the first
//! server), the nodes as they are, the upgrade rules; and, when the first server failed its own
//! upgrade and took the API down, bringing it back first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::UpgradeOptions;
use super::candidate::{airgap_binaries, airgap_file, download, version_on_node};
use super::error::UpgradeError;
use super::gate;
use super::observe::{UpgradeSession, arch_set, host_archs, observe_nodes};
use super::recover::{read_marker, restart_first_server};
use super::target::{Target, resolve_target};
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::k3s::release::Arch;
use crate::k3s::unit::unit_name;
use crate::k3s::version::K3sVersion;
use crate::ops::binary::LocalBinaries;
use crate::plan::upgrade::{NodeKind, NodeState, TargetSource, check_target};
use crate::run::Reporter;
use crate::run::service::is_active;

/// The version an airgap binary reports, without changing any host (dry runs): run locally.
async fn local_version(path: &Path) -> Result<K3sVersion, UpgradeError> {
    let out = tokio::process::Command::new(path)
        .arg("--version")
        .output()
        .await
        .map_err(|e| {
            UpgradeError::Target(format!("{}: cannot run --version: {e}", path.display()))
        })?;
    K3sVersion::from_version_output(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| UpgradeError::Target(format!("{}: --version: {e}", path.display())))
}

/// The new binaries and the target, with an airgap binary's version checked (on the first node
/// unless `dry_run`).
async fn binaries_and_target(
    cluster: &UpgradeSession,
    options: &UpgradeOptions,
    target: Target,
    archs: &BTreeMap<String, Arch>,
) -> Result<(Option<LocalBinaries>, K3sVersion, TargetSource), UpgradeError> {
    let wanted = arch_set(archs);
    let Some(file) = airgap_file(&cluster.spec, options.target.binary.as_deref()) else {
        let Target::Known(version, source) = target else {
            return Err(UpgradeError::Target(
                "--binary is needed to read the target from a binary".into(),
            ));
        };
        return Ok((None, version, source));
    };
    let binaries = airgap_binaries(&file, &wanted).await?;
    let actual = if options.dry_run {
        local_version(&file).await?
    } else {
        let server = cluster.transport(&cluster.first_server)?;
        let arch = archs.get(&cluster.first_server).copied();
        let sha = arch
            .and_then(|a| binaries.by_arch.get(&a))
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        version_on_node(server.as_ref(), &file, &sha).await?
    };
    match target {
        Target::Known(version, source) if version != actual => Err(UpgradeError::Target(format!(
            "{} is {actual}, but the target ({source}) is {version}; nothing was changed\n  hint: \
             give the binary of {version} with --binary, or drop --to to upgrade to {actual}",
            file.display()
        ))),
        Target::Known(version, source) => Ok((Some(binaries), version, source)),
        Target::FromBinary => Ok((
            Some(binaries),
            actual,
            TargetSource::Binary(file.display().to_string()),
        )),
    }
}

/// The target, the new binaries (airgap: already read), and the nodes as observed.
pub(super) struct Decided {
    pub(super) nodes: Vec<NodeState>,
    pub(super) binaries: Option<LocalBinaries>,
    pub(super) target: K3sVersion,
    pub(super) source: TargetSource,
    pub(super) archs: BTreeMap<String, Arch>,
}

/// Whether the K3s server unit is active on `server`.
async fn server_running(server: &dyn Transport) -> bool {
    is_active(server, unit_name(NodeRole::Server)).await
}

/// The new binary of each host (local path and sha256), by its architecture.
pub(super) fn host_binaries(
    binaries: &LocalBinaries,
    archs: &BTreeMap<String, Arch>,
) -> BTreeMap<String, (PathBuf, String)> {
    archs
        .iter()
        .filter_map(|(host, arch)| Some((host.clone(), binaries.by_arch.get(arch)?.clone())))
        .collect()
}

/// Resolves the target, reads the nodes, checks the rules. With `recover`, a dead API on a first
/// server that carries the upgrade marker is brought back first.
pub(super) async fn decide(
    cluster: &UpgradeSession,
    options: &UpgradeOptions,
    reporter: &Arc<dyn Reporter>,
    recover: bool,
) -> Result<Decided, UpgradeError> {
    let requested = resolve_target(&cluster.spec, &options.target).await?;
    let archs = host_archs(cluster).await?;
    // A first server that failed its own upgrade (marker left, K3s not running) has taken the
    // API down: it is recovered first, without asking the API in vain.
    let server = cluster.transport(&cluster.first_server)?;
    let marker = match read_marker(server.as_ref()).await? {
        Some(marker) if recover && !server_running(server.as_ref()).await => Some(marker),
        _ => None,
    };
    let observed = match marker {
        Some(_) => None,
        None => Some(observe_nodes(cluster).await?),
    };
    // Without the API, the rules are checked against what the first server ran before.
    let for_rules = observed.clone().unwrap_or_else(|| {
        let from = marker.map(|(from, _)| from);
        from.map(|running| NodeState {
            name: cluster.first_server.clone(),
            kind: NodeKind::Server,
            group: None,
            running,
            ready: false,
            unschedulable: true,
            cordoned_by_k3sctl: true,
        })
        .into_iter()
        .collect()
    });
    if let Target::Known(version, source) = &requested {
        check_target(*version, source, &for_rules)?;
    }
    let (binaries, target, source) =
        binaries_and_target(cluster, options, requested, &archs).await?;
    check_target(target, &source, &for_rules)?;
    let nodes = match observed {
        Some(nodes) => nodes,
        None => {
            let binaries = match &binaries {
                Some(b) => b.clone(),
                None => download(&cluster.spec, &target, &arch_set(&archs)).await?,
            };
            let policy = &cluster.spec.cluster.spec.upgrade;
            let from = marker.map_or(target, |(from, _)| from);
            // No API answers: the engine connects by itself once the server is back.
            let shared = super::rollout_shared(cluster, reporter, &binaries, &archs, None);
            restart_first_server(cluster, &shared, from, target).await?;
            // The agents reconnect to the restarted server; give them the time they need.
            let limits = gate::GateLimits {
                timeout: policy.gate_timeout.to_std(),
                grace: policy.node_ready_timeout.to_std(),
            };
            let api = cluster.api().await?.api;
            let _ = gate::wait_gate(api.as_ref(), limits, &|_| {}).await;
            let nodes = observe_nodes(cluster).await?;
            check_target(target, &source, &nodes)?;
            nodes
        }
    };
    Ok(Decided {
        nodes,
        binaries,
        target,
        source,
        archs,
    })
}
