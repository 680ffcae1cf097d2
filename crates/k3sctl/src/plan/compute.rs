//! The planner: (desired, observed) → ordered steps per host. Pure.

use super::adopt;
use super::datastore::{DatastoreAction, MIN_CONVERSION_VERSION, decide};
use super::desired::{Desired, DesiredHost, FileContent};
use super::diff::unified_diff;
use super::observed::{Observed, ObservedHost, ObservedNode};
use super::step::{ExportStep, HostPlan, Plan, Step};
use crate::k3s::links::{self, CommandLink};
use crate::k3s::ports::{DATA_DIR, DB_DIR};
use crate::k3s::registries::REGISTRIES_PATH;
use crate::k3s::release::Arch;
use crate::k3s::unit;
use crate::k3s::version::K3sVersion;
use crate::kube::{plan_labels, plan_taints};

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
    /// A server has both etcd data and a SQLite store not yet migrated: K3s would start the old
    /// etcd and skip the migration.
    #[error(
        "host {host}: has embedded etcd data (server/db/etcd/member/wal) next to its SQLite store \
         {store}: an earlier conversion stopped half-way, and K3s would start the stale etcd and \
         skip the migration\n  hint: keep a copy of {store}, remove {DB_DIR}/etcd \
         on {host} and apply again"
    )]
    StaleEtcd {
        /// Host name.
        host: String,
        /// The SQLite store.
        store: String,
    },
    /// The single server runs a K3s that cannot migrate SQLite to etcd.
    #[error(
        "host {host}: runs K3s {running}, which creates an empty datastore instead of migrating \
         SQLite to embedded etcd (migration needs {MIN_CONVERSION_VERSION} or newer)\n  hint: \
         `k3sctl upgrade` the server first, then add servers"
    )]
    ConversionTooOld {
        /// Host name.
        host: String,
        /// Its version.
        running: K3sVersion,
    },
    /// No cluster exists yet and the spec's first server, which starts it, was left out.
    #[error(
        "no cluster exists yet and the spec's first server, which starts it, was left out as \
         unreachable\n  hint: bring it back and apply again"
    )]
    NoBootstrapServer,
    /// Several servers each hold their own SQLite cluster.
    #[error(
        "servers {} each hold a separate SQLite datastore: they are separate clusters, which \
         k3sctl cannot merge\n  hint: keep the cluster of one of them and wipe {DATA_DIR} on \
         the others",
        hosts.join(", ")
    )]
    SeveralClusters {
        /// The servers.
        hosts: Vec<String>,
    },
    /// Hosts the spec names by address whose K3s runs the node under another name: applying
    /// would rename (and restart) them.
    #[error("{}", super::named_by_address::explain(.0))]
    NamedByAddress(Vec<super::named_by_address::Misnamed>),
}

/// Computes the plan.
pub fn compute_plan(desired: &Desired, observed: &Observed) -> Result<Plan, PlanError> {
    let misnamed = super::named_by_address::misnamed(desired, observed);
    if !misnamed.is_empty() {
        return Err(PlanError::NamedByAddress(misnamed));
    }
    let datastore = decide(desired, observed)?;
    let nodes = observed.nodes_by_name();
    let mut hosts = desired
        .hosts
        .iter()
        .map(|host| {
            let obs = observed
                .hosts
                .get(&host.name)
                .ok_or_else(|| PlanError::NotObserved(host.name.clone()))?;
            let node = nodes.get(host.name.as_str()).copied();
            plan_host(desired, host, obs, node, observed, &datastore)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((server, steps)) = super::manifest_drift::apply_steps(desired, observed)
        && let Some(plan) = hosts.iter_mut().find(|h| h.host == server)
    {
        plan.steps.extend(steps);
    }
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
    let drift = super::drift::find_drift(desired, observed, &hosts);
    Ok(Plan {
        cluster: desired.cluster.clone(),
        version: desired.version,
        datastore,
        critical: if desired.ha {
            desired.critical.clone()
        } else {
            Default::default()
        },
        hosts,
        exports,
        drift,
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

/// The labels step: a node that registers in this run gets (and k3sctl records) the spec's
/// labels; a live node gets every label the spec names back to the spec's value and loses only
/// labels k3sctl set that the spec no longer names.
fn label_step(host: &DesiredHost, node: Option<&ObservedNode>) -> Option<Step> {
    match node {
        None if host.labels.is_empty() => None,
        None => Some(Step::EnforceLabels {
            wanted: host.labels.clone(),
            set: host.labels.clone(),
            remove: Vec::new(),
            adopt: true,
        }),
        Some(node) => {
            let change = plan_labels(&node.labels, &node.owned_labels, &host.labels, false);
            change
                .writes(&node.owned_labels)
                .then(|| Step::EnforceLabels {
                    wanted: host.labels.clone(),
                    set: change.set,
                    remove: change.remove,
                    adopt: false,
                })
        }
    }
}

/// The env file a bootstrapping or converting server starts with: `K3S_CLUSTER_INIT`, no join.
fn bootstrap_env(cluster_init: bool) -> FileContent {
    FileContent::Env {
        url: None,
        with_token: false,
        cluster_init,
    }
}

fn plan_host(
    desired: &Desired,
    host: &DesiredHost,
    obs: &ObservedHost,
    node: Option<&ObservedNode>,
    observed: &Observed,
    datastore: &DatastoreAction,
) -> Result<HostPlan, PlanError> {
    // A server that bootstraps or converts starts from the bootstrap form of its env file;
    // once it serves, the lasting form is written back (no restart: K3s ignores both once its
    // datastore exists), so a later rebuild of this host joins instead of starting a second
    // cluster.
    let lasting_env = host
        .files
        .iter()
        .find(|f| matches!(f.content, FileContent::Env { .. }))
        .cloned();
    let mut host = host.clone();
    let mut seal = None;
    let bootstraps = datastore.host() == Some(host.name.as_str());
    if bootstraps {
        let cluster_init = !matches!(
            datastore,
            DatastoreAction::Bootstrap {
                cluster_init: false,
                ..
            }
        );
        for file in &mut host.files {
            if matches!(file.content, FileContent::Env { .. }) {
                file.content = bootstrap_env(cluster_init);
                file.restarts = true;
            }
        }
        if cluster_init {
            seal = lasting_env;
        }
    }
    let host = &host;
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
    let start_paths = adopt::start_paths(host.role);
    let mut start_written = Vec::new();
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
        if start_paths.contains(&file.path) {
            start_written.push(file_name(&file.path).to_string());
        } else if file.path == REGISTRIES_PATH
            && let (FileContent::Plain(wanted), Some(shown)) = (&file.content, &seen.shown)
            && adopt::same_yaml(wanted, shown)
        {
            // Only the form of registries.yaml changes: K3s reads the same mirrors.
        } else if file.restarts {
            restart_reasons.push(file_name(&file.path).to_string());
        }
    }
    // The install script's command links, where the place is free (never over a person's own).
    for command in links::COMMANDS {
        if obs.links.get(command) == Some(&CommandLink::Missing) {
            steps.push(Step::LinkCommand {
                command: command.to_owned(),
                path: links::link_path(command),
            });
        }
    }
    // Drop-ins would override the spec's config.yaml: k3sctl takes them over (their settings
    // belong in the spec) and the effective configuration decides whether K3s restarts.
    let dropins: Vec<String> = obs
        .start
        .iter()
        .flat_map(|s| s.dropins.iter())
        .map(|(name, _)| format!("{}/{name}", adopt::DROPIN_DIR))
        .collect();
    for path in &dropins {
        steps.push(Step::RemoveFile { path: path.clone() });
    }
    // A unit drop-in that replaces ExecStart would give K3s its own command line over k3sctl's
    // unit (and the spec's list flags twice): k3sctl takes its ExecStart lines over, keeping
    // the original; the effective configuration decides whether K3s restarts.
    let takeovers = obs
        .start
        .as_ref()
        .map(|s| crate::k3s::unit_dropins::takeovers(&s.unit_dropins))
        .unwrap_or_default();
    if !takeovers.is_empty() {
        unit_changed = true;
    }
    steps.extend(takeovers.iter().cloned().map(Step::TakeOverUnitDropin));
    let mut adopt_unchanged = false;
    if !start_written.is_empty() || !dropins.is_empty() || !takeovers.is_empty() {
        let judged = (obs.service_active && !bootstraps)
            .then(|| adopt::judge_after_record(host, obs, node, observed.token.as_ref()))
            .flatten();
        match judged {
            Some(adoption) if adoption.changes.is_empty() => adopt_unchanged = true,
            Some(adoption) => restart_reasons.extend(
                adoption
                    .changes
                    .iter()
                    .map(|change| format!("setting {change}")),
            ),
            None => {
                let restarting = host
                    .files
                    .iter()
                    .filter(|f| {
                        f.restarts && start_written.contains(&file_name(&f.path).to_string())
                    })
                    .map(|f| file_name(&f.path).to_string());
                restart_reasons.extend(restarting);
                if !dropins.is_empty() {
                    restart_reasons.push("config.yaml.d".into());
                }
                restart_reasons
                    .extend(takeovers.iter().map(|t| format!("ExecStart of {}", t.path)));
            }
        }
    }
    if unit_changed || obs.needs_daemon_reload {
        steps.push(Step::DaemonReload);
    }
    if adopt_unchanged
        && restart_reasons.is_empty()
        && !obs.restart_pending
        && obs.service_active
        && obs.service_enabled
        && let Some(files) = adopt::desired_set(host, observed.token.as_ref())
    {
        // Recorded before the first write: a run stopped between the writes leaves files the
        // record explains, and the next run resumes without a restart.
        let at = steps
            .iter()
            .position(|s| {
                matches!(
                    s,
                    Step::WriteFile { .. } | Step::RemoveFile { .. } | Step::TakeOverUnitDropin(_)
                )
            })
            .unwrap_or(steps.len());
        steps.insert(at, Step::Adopt { files });
    }

    let api_up = observed.nodes.is_some();
    let etcd_member = desired.ha && host.role == crate::k3s::config::NodeRole::Server;
    let wait = |steps: &mut Vec<Step>| {
        if bootstraps {
            steps.push(Step::WaitServerReady);
        }
        steps.push(Step::WaitNodeReady);
        if etcd_member {
            steps.push(Step::WaitEtcdVoter);
        }
    };
    // A server without data joins even when its Node object survived (a rebuilt host); an
    // agent the API already knows is only started again.
    let joins = if etcd_member {
        !bootstraps && !obs.etcd_data
    } else {
        !bootstraps && !host.first_server && node.is_none()
    };
    if let DatastoreAction::Convert { store, .. } = datastore
        && bootstraps
    {
        let at = steps
            .iter()
            .position(|s| !matches!(s, Step::UploadBinary { .. }))
            .unwrap_or(steps.len());
        steps.insert(
            at,
            Step::ConvertDatastore {
                store: store.clone(),
            },
        );
        steps.push(Step::Restart {
            reason: "convert its SQLite datastore to embedded etcd; the API on this node is \
                     down meanwhile"
                .into(),
        });
        steps.push(Step::WaitServerReady);
        steps.push(Step::WaitNodeReady);
        steps.push(Step::VerifyMigration {
            store: store.clone(),
        });
        steps.push(Step::WaitEtcdVoter);
        if desired.snapshot_after_conversion {
            // The SQLite backup is the way back to before; this is the first restore point on
            // etcd, taken before any other server joins.
            steps.push(Step::EtcdSnapshot {
                name: "post-conversion".into(),
            });
        }
    } else if etcd_member && joins && (obs.service_active || node.is_some()) {
        // A server without data that the cluster knew (or that keeps trying to start): its old
        // etcd member, if any, is removed, then it joins again.
        if let Some(member) = observed
            .etcd_members
            .iter()
            .flatten()
            .find(|m| m.is_of_node(&host.name))
        {
            steps.push(Step::RemoveEtcdMember {
                member: member.name.clone(),
                id: member.id.clone(),
            });
        }
        if obs.service_active && obs.service_enabled {
            steps.push(Step::Restart {
                reason: "it has no etcd data: join the cluster again".into(),
            });
        } else {
            steps.push(Step::Start { join: true });
        }
        wait(&mut steps);
    } else if !obs.service_active || !obs.service_enabled {
        steps.push(Step::Start { join: joins });
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
    // A host the API knows whose node password is gone (wiped, reinstalled) would be rejected
    // under its old name: its stale password Secret goes right before K3s starts.
    if node.is_some()
        && !obs.node_password
        && let Some(at) = steps
            .iter()
            .position(|s| matches!(s, Step::Start { .. } | Step::Restart { .. }))
    {
        steps.insert(at, Step::RemoveNodePassword);
    }
    if let Some(step) = taint_step(host, node) {
        steps.push(step);
    }
    if let Some(step) = label_step(host, node) {
        steps.push(step);
    }

    if let Some(file) = seal {
        let path = file.path.clone();
        steps.push(Step::WriteFile {
            path,
            mode: file.mode,
            diff: String::new(),
            create: false,
            content: file.content,
        });
    }

    Ok(HostPlan {
        host: host.name.clone(),
        role: host.role,
        group: host.group.clone(),
        first_server: bootstraps,
        in_cluster: node.is_some(),
        steps,
    })
}
