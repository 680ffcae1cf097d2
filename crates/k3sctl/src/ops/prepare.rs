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
use super::unreachable::{SkippedHost, skipped_hosts, with_late_failures};
use crate::host::{HostError, Transport};
use crate::k3s::config::NodeRole;
use crate::k3s::token::{JoinToken, SERVER_TOKEN_PATH};
use crate::plan::from_spec::critical_values;
use crate::plan::from_spec::desired_hosts;
use crate::plan::{Desired, Observed, Plan, compute_plan};
use crate::run::etcd::list_members;
use crate::run::observe::{ObserveError, ObserveRequest, observe_host};
use crate::run::{ApiConnector, ClusterApi, FailoverConnector, Reporter, RunOptions, Shared};
use crate::secret::Secret;
use crate::spec::{BinaryOrigin, LoadedSpec, load_file};

/// Builds the API connector through the server reached by `server`. `admin` is its admin
/// kubeconfig when it was already read.
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
    /// The server k3sctl works through (the lock, the admin kubeconfig): the first server in
    /// spec order that runs and holds the token; the spec's first server for a new cluster.
    pub first_server: String,
    /// API connector: through each running server in turn, the first that answers.
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

impl Prepared {
    /// The apply engine's shared state for running this plan (or a part of it): the local
    /// binary of each host `upload` selects, the join endpoint, the token observed and the
    /// Nodes registered before the run.
    pub fn run_state(
        &self,
        upload: impl Fn(&str) -> bool,
        options: RunOptions,
        reporter: Arc<dyn Reporter>,
    ) -> Shared {
        let binaries = self
            .observed
            .hosts
            .iter()
            .filter(|(name, _)| upload(name))
            .filter_map(|(name, obs)| Some((name.clone(), self.binaries.path(obs.arch)?.into())))
            .collect();
        let mut shared = Shared::new(
            binaries,
            reporter,
            options,
            Arc::clone(&self.connector),
            self.observed.token.clone(),
        );
        shared.join_endpoint = self.spec.cluster.api_endpoint();
        shared.known_nodes = self
            .observed
            .nodes
            .iter()
            .flatten()
            .map(|n| n.name.clone())
            .collect();
        shared
    }
}

/// Loads and validates the spec (an even number of servers is refused by validation).
pub fn load_spec(path: &Path) -> Result<LoadedSpec, OpsError> {
    let spec = load_file(path)?;
    if spec.cluster.servers().count() == 0 {
        return Err(OpsError::NoServer {
            file: path.display().to_string(),
        });
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
        let sha =
            crate::host::hash::sha256_file(&local)
                .await
                .map_err(|e| OpsError::SpecValue {
                    field: "spec.k3s.airgapImages".into(),
                    problem: format!("{}: {e}", local.display()),
                })?;
        resolved.airgap_images = Some((local, sha));
    }
    let mut hosts = desired_hosts(&spec.cluster, &resolved)?;
    let critical = critical_values(&spec.cluster, &hosts);

    // The spec's binary file is hashed while the hosts are connected to: known binary hashes
    // spare a `k3s --version` per host, and the hash is not on the way to the first command.
    let binary_file = match spec.cluster.spec.k3s.binary_origin() {
        BinaryOrigin::File(file) => Some(spec.resolve_path(&file)),
        BinaryOrigin::Download { .. } => None,
    };
    // On a worker of its own: hashing between reads would otherwise hold up the connections.
    let hashing = tokio::spawn(async move {
        match &binary_file {
            Some(path) => Some(from_file(path).await),
            None => None,
        }
    });
    let spec_hosts = spec.hosts();
    let connecting = connect_all_noted(
        &spec_hosts,
        ConnectOptions {
            first_command_checks_reuse: true,
            ..connect_options
        },
    );
    let (
        Connected {
            transports,
            errors,
            notes: connect_notes,
            containers,
        },
        file_binaries,
    ) = tokio::join!(connecting, hashing);
    let servers: Vec<String> = spec.cluster.servers().map(|h| h.name.clone()).collect();
    let mut skipped = skipped_hosts(errors, &servers, connect_options.skip_unreachable)?;
    hosts.retain(|h| !skipped.iter().any(|s| s.host == h.name));

    let file_binaries = match file_binaries {
        Ok(hashed) => hashed.transpose()?,
        // Only a panic ends the task early (nothing aborts it): carry it on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
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
            read_secrets: h.role == NodeRole::Server,
        };
        async move {
            let transport = transport.ok_or_else(|| OpsError::NoConnection {
                host: h.name.clone(),
            })?;
            match observe_host(transport.as_ref(), h, &request).await {
                Ok(seen) => Ok(Ok((h.name.clone(), seen))),
                // The facts are the first command: a reused ssh master whose host no longer
                // answers, and no fresh connection, is found here (see `first_command_checks_reuse`).
                Err(ObserveError::Host(e @ HostError::Unreachable { .. })) => Ok(Err(e)),
                Err(e) => Err(OpsError::from(e)),
            }
        }
    }))
    .await;
    let mut late = Vec::new();
    let observations: Vec<Result<_, OpsError>> = observations
        .into_iter()
        .filter_map(|result| match result {
            Ok(Err(unreachable)) => {
                late.push(unreachable);
                None
            }
            Ok(Ok(seen)) => Some(Ok(seen)),
            Err(e) => Some(Err(e)),
        })
        .collect();
    if !late.is_empty() {
        skipped = with_late_failures(skipped, late, &servers, connect_options.skip_unreachable)?;
        hosts.retain(|h| !skipped.iter().any(|s| s.host == h.name));
    }
    let mut observed = Observed::default();
    let mut secrets: Vec<ServerSecrets> = Vec::new();
    for result in observations {
        let (name, seen) = result?;
        if let Some(raw) = &seen.token {
            let token = JoinToken::parse(raw.expose()).map_err(|error| OpsError::Token {
                host: name.clone(),
                path: SERVER_TOKEN_PATH.to_owned(),
                error,
            })?;
            secrets.push(ServerSecrets {
                name: name.clone(),
                active: seen.host.service_active,
                token: token.raw,
                admin: seen.admin_kubeconfig.clone(),
            });
        }
        observed.hosts.insert(name, seen.host);
    }
    check_one_cluster(&secrets)?;
    // Servers in desired order: the spec's first server first.
    let order: Vec<&str> = hosts
        .iter()
        .filter(|h| h.role == NodeRole::Server)
        .map(|h| h.name.as_str())
        .collect();
    secrets.sort_by_key(|s| (!s.active, order.iter().position(|n| *n == s.name)));
    observed.token = secrets.first().map(|s| s.token.clone());
    let first_server = secrets
        .iter()
        .find(|s| s.active)
        .map(|s| s.name.clone())
        .or_else(|| {
            hosts
                .iter()
                .find(|h| h.first_server)
                .map(|h| h.name.clone())
        })
        .or_else(|| order.first().map(|n| (*n).to_owned()))
        .unwrap_or_default();
    let admin = secrets
        .iter()
        .find(|s| s.name == first_server)
        .and_then(|s| s.admin.clone());
    let binaries = match file_binaries {
        Some(binaries) => binaries,
        None => {
            let archs = observed.hosts.values().map(|h| h.arch).collect();
            local_binaries(&spec, &version, &archs).await?
        }
    };

    // One connector per running server, the one k3sctl works through first; then the others
    // (a server that is not running yet may come up during the run).
    let mut connectors: Vec<(String, Arc<dyn ApiConnector>)> = Vec::new();
    let mut servers_by_preference: Vec<&str> = vec![first_server.as_str()];
    servers_by_preference.extend(secrets.iter().filter(|s| s.active).map(|s| s.name.as_str()));
    servers_by_preference.extend(order.iter().copied());
    for name in servers_by_preference {
        if connectors.iter().any(|(n, _)| n == name) {
            continue;
        }
        let Some(transport) = transports.get(name) else {
            continue;
        };
        let admin = secrets
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.admin.clone());
        connectors.push((name.to_owned(), factory(Arc::clone(transport), admin)));
    }
    let connector: Arc<dyn ApiConnector> = Arc::new(FailoverConnector::new(connectors));
    let server_running = secrets.iter().any(|s| s.active);
    let mut api = None;
    if server_running
        && let Ok(client) = connector.connect().await
        && let Ok(nodes) = client.nodes().await
    {
        observed.nodes = Some(nodes);
        observed.objects = read_declared_objects(client.as_ref(), &hosts).await;
        api = Some(client);
    }

    // The etcd members, seen by the server k3sctl works through (a server that lost its data
    // may have left its member behind).
    if spec.cluster.is_ha()
        && let Some(seen) = observed.hosts.get(&first_server)
        && seen.service_active
        && seen.etcd_data
        && let Some(transport) = transports.get(&first_server)
    {
        match list_members(transport.as_ref()).await {
            Ok(members) => observed.etcd_members = Some(members),
            Err(e) => tracing::warn!(server = %first_server, "cannot list etcd members: {e}"),
        }
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
        ha: spec.cluster.is_ha(),
        snapshot_after_conversion: spec.cluster.spec.upgrade.snapshot != Some(false),
        critical,
        exports,
        spec_nodes: spec
            .cluster
            .spec
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect(),
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

/// What one server holds of the cluster's secrets.
struct ServerSecrets {
    name: String,
    active: bool,
    token: Secret,
    admin: Option<Secret>,
}

/// Every server that holds a token must hold the same one: two different tokens mean two
/// separate clusters (for example a wiped first server that bootstrapped a new one).
fn check_one_cluster(secrets: &[ServerSecrets]) -> Result<(), OpsError> {
    let Some(first) = secrets.first() else {
        return Ok(());
    };
    let others: Vec<&str> = secrets
        .iter()
        .filter(|s| s.token.expose() != first.token.expose())
        .map(|s| s.name.as_str())
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(OpsError::SplitBrain {
        first: first.name.clone(),
        others: others.into_iter().map(str::to_owned).collect(),
    })
}

/// The objects the spec's manifests declare, as the API has them (for their drift); `None`
/// when they cannot be read (said in the log: the plan then judges no object).
async fn read_declared_objects(
    api: &dyn crate::run::ClusterApi,
    hosts: &[crate::plan::DesiredHost],
) -> Option<crate::plan::manifest_drift::LiveObjects> {
    let (objects, _) = crate::plan::manifest_drift::declared_objects(hosts);
    let keys: Vec<_> = objects.into_iter().map(|o| o.key).collect();
    if keys.is_empty() {
        return Some(Default::default());
    }
    match api.read_objects(&keys).await {
        Ok(live) => Some(keys.into_iter().zip(live).collect()),
        Err(e) => {
            tracing::warn!("cannot read the objects the spec's manifests declare: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, token: &str) -> ServerSecrets {
        ServerSecrets {
            name: name.into(),
            active: true,
            token: Secret::new(token),
            admin: None,
        }
    }

    #[test]
    fn two_tokens_are_two_clusters_and_are_refused_without_showing_them() {
        let same = [
            server("s1", "K10aa::server:one"),
            server("s2", "K10aa::server:one"),
        ];
        assert!(check_one_cluster(&same).is_ok());
        assert!(check_one_cluster(&[]).is_ok());
        let split = [
            server("s1", "K10aa::server:one"),
            server("s2", "K10aa::server:one"),
            server("s3", "K10bb::server:two"),
        ];
        let said = check_one_cluster(&split)
            .expect_err("split brain")
            .to_string();
        assert!(
            said.starts_with("server(s) s3 hold a different cluster token than s1"),
            "{said}"
        );
        assert!(
            said.contains("split brain") && !said.contains("server:two"),
            "{said}"
        );
    }

    #[test]
    fn a_spec_that_does_not_load_keeps_its_located_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.yaml");
        fs_err::write(
            &path,
            "kind: Cluster\nmetadata: {name: lab}\nspec:\n  hosts:\n    - name: s1\n      address: 10.0.0.1\n      rol: server\n",
        )
        .expect("write");
        let Err(OpsError::Spec(errors)) = load_spec(&path) else {
            panic!("not a typed spec error");
        };
        let unknown = errors
            .errors()
            .iter()
            .find(|e| e.message.contains("unknown key `rol`"))
            .expect("the unknown key is reported");
        assert_eq!((unknown.line, unknown.column), (7, 7), "{errors}");
    }
}
