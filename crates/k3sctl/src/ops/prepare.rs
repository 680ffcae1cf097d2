//! The shared first half of `plan` and `apply`: load the spec, read local inputs, connect to
//! every host, observe them (one round trip each, in parallel) and the API, compute the plan.
//! Changes nothing anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::join_all;

use super::binary::LocalBinaries;
use super::binary::from_file;
use super::connect::{ConnectOptions, Connected, connect_all_noted};
use super::error::OpsError;
use super::export::{
    check_local_files, desired_exports, export_content, is_up_to_date, user_kubeconfig_path,
};
use super::inputs::{local_binaries, resolve_inputs, spec_version};
use super::unreachable::{SkippedHost, skipped_hosts};
use crate::host::Transport;
use crate::k3s::token::{JoinToken, SERVER_TOKEN_PATH};
use crate::plan::from_spec::desired_hosts;
use crate::plan::{Desired, Observed, Plan, compute_plan};
use crate::run::observe::{ObserveRequest, observe_host};
use crate::run::{ApiConnector, ClusterApi};
use crate::secret::Secret;
use crate::spec::{BinaryOrigin, LoadedSpec, load_file};

/// Builds the API connector for a cluster whose first server is reached by `server`.
/// `admin` is the admin kubeconfig when it was already read.
pub type ConnectorFactory = fn(Arc<dyn Transport>, Option<Secret>) -> Arc<dyn ApiConnector>;

/// Everything `plan` shows and `apply` runs.
pub struct Prepared {
    /// The spec.
    pub spec: LoadedSpec,
    /// The desired state.
    pub desired: Desired,
    /// Transports by host name.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// What was observed.
    pub observed: Observed,
    /// Local binaries.
    pub binaries: LocalBinaries,
    /// The plan.
    pub plan: Plan,
    /// The first server's name.
    pub first_server: String,
    /// API connector (through the first server).
    pub connector: Arc<dyn ApiConnector>,
    /// The API client, when the cluster was already up.
    pub api: Option<Arc<dyn ClusterApi>>,
    /// Hosts left out because they could not be connected to (`--skip-unreachable`).
    pub skipped: Vec<SkippedHost>,
    /// The user's kubeconfig that merged exports go into ($KUBECONFIG's first entry or
    /// ~/.kube/config).
    pub user_kubeconfig: PathBuf,
    /// What connecting did or noticed (pct containers started, onboot not set).
    pub connect_notes: Vec<String>,
    /// The hosts that are Proxmox containers, reached through pct.
    pub containers: BTreeMap<String, Arc<crate::host::PctTransport>>,
}

/// Loads and validates the spec, refusing what apply cannot do yet.
pub fn load_spec(path: &Path) -> Result<LoadedSpec, OpsError> {
    let spec = load_file(path).map_err(|e| OpsError::Spec(e.to_string()))?;
    let servers = spec.cluster.servers().count();
    if servers > 1 {
        return Err(OpsError::Unsupported(format!(
            "{}: the spec has {servers} servers; HA (embedded etcd) is not supported yet: keep one \
             server and make the others agents",
            path.display()
        )));
    }
    if servers == 0 {
        return Err(OpsError::Spec(format!(
            "{}: spec.hosts has no server",
            path.display()
        )));
    }
    Ok(spec)
}

/// Prepares a plan.
pub async fn prepare(
    path: &Path,
    connect_options: ConnectOptions,
    factory: ConnectorFactory,
) -> Result<Prepared, OpsError> {
    let spec = load_spec(path)?;
    // A local kubeconfig that apply could not update is refused before anything changes.
    let user_kubeconfig = user_kubeconfig_path();
    check_local_files(&desired_exports(&spec), &user_kubeconfig)?;
    let version = spec_version(&spec).await?;
    let mut resolved = resolve_inputs(&spec)?;
    if let Some(images) = &spec.cluster.spec.k3s.airgap_images {
        let local = spec.resolve_path(images);
        let sha = crate::host::hash::sha256_file(&local).await.map_err(|e| {
            OpsError::Spec(format!("spec.k3s.airgapImages {}: {e}", local.display()))
        })?;
        resolved.airgap_images = Some((local, sha));
    }
    let mut hosts =
        desired_hosts(&spec.cluster, &resolved).map_err(|e| OpsError::Spec(e.to_string()))?;
    let first_server = hosts
        .iter()
        .find(|h| h.first_server)
        .map(|h| h.name.clone())
        .unwrap_or_default();

    let Connected {
        transports,
        errors,
        notes: connect_notes,
        containers,
    } = connect_all_noted(&spec.hosts(), connect_options).await;
    let skipped = skipped_hosts(errors, &first_server, connect_options.skip_unreachable)?;
    hosts.retain(|h| !skipped.iter().any(|s| s.host == h.name));
    let server =
        Arc::clone(transports.get(&first_server).ok_or_else(|| {
            OpsError::Spec(format!("first server {first_server} has no connection"))
        })?);

    // Known binary hashes spare a `k3s --version` per host (the spec's file is hashed first).
    let file_binaries = match spec.cluster.spec.k3s.binary_origin() {
        BinaryOrigin::File(file) => Some(from_file(&spec.resolve_path(&file)).await?),
        BinaryOrigin::Download { .. } => None,
    };
    let known_binaries = file_binaries
        .iter()
        .flat_map(|b| b.hashes().into_values())
        .map(|sha| (sha, version))
        .collect();
    let observations = join_all(hosts.iter().map(|h| {
        let transport = transports.get(&h.name).cloned();
        let request = ObserveRequest {
            known_binaries: BTreeMap::clone(&known_binaries),
            read_secrets: h.first_server,
        };
        async move {
            let transport =
                transport.ok_or_else(|| OpsError::Spec(format!("{}: no connection", h.name)))?;
            let seen = observe_host(transport.as_ref(), h, &request).await?;
            Ok::<_, OpsError>((h.name.clone(), seen))
        }
    }))
    .await;
    let mut observed = Observed::default();
    let mut admin = None;
    for result in observations {
        let (name, seen) = result?;
        if name == first_server {
            if let Some(raw) = &seen.token {
                let token = JoinToken::parse(raw.expose()).map_err(|e| {
                    OpsError::Spec(format!("{first_server}: {SERVER_TOKEN_PATH}: {e}"))
                })?;
                observed.token = Some(token.raw);
            }
            admin = seen.admin_kubeconfig;
        }
        observed.hosts.insert(name, seen.host);
    }
    let binaries = match file_binaries {
        Some(binaries) => binaries,
        None => {
            let archs = observed.hosts.values().map(|h| h.arch).collect();
            local_binaries(&spec, &version, &archs).await?
        }
    };

    let connector = factory(Arc::clone(&server), admin.clone());
    let server_running = observed
        .hosts
        .get(&first_server)
        .is_some_and(|h| h.service_active);
    let mut api = None;
    if server_running
        && let Ok(client) = connector.connect().await
        && let Ok(nodes) = client.nodes().await
    {
        observed.nodes = Some(nodes);
        api = Some(client);
    }

    let mut exports = desired_exports(&spec);
    if server_running && let Some(admin) = &admin {
        for export in &mut exports {
            export.up_to_date = Some(
                export_content(admin, export)
                    .is_ok_and(|c| is_up_to_date(export, &c, &user_kubeconfig)),
            );
        }
    }

    let desired = Desired {
        cluster: spec.cluster.metadata.name.clone(),
        version,
        binary_sha256: binaries.hashes(),
        hosts,
        exports,
    };
    let plan = compute_plan(&desired, &observed)?;
    Ok(Prepared {
        spec,
        desired,
        transports,
        observed,
        binaries,
        plan,
        first_server,
        connector,
        api,
        skipped,
        user_kubeconfig,
        connect_notes,
        containers,
    })
}
