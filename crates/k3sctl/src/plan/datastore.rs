//! How this run brings up the cluster's datastore, decided from what the servers hold: a new
//! cluster (the first server bootstraps, with `cluster-init` when there are several servers),
//! a single SQLite server converted to embedded etcd (growing 1 → N servers), or nothing (the
//! cluster exists; every server that has no data joins it). Pure.

use serde::Serialize;

use super::compute::PlanError;
use super::desired::Desired;
use super::observed::Observed;
use crate::k3s::config::NodeRole;
use crate::k3s::version::K3sVersion;

/// Oldest K3s that migrates SQLite to etcd on `--cluster-init`; older ones start an empty
/// datastore instead (docs.k3s.io/datastore/ha-embedded, "Existing single-node clusters").
pub const MIN_CONVERSION_VERSION: &str = "v1.22.2+k3s1";

/// What happens to the datastore in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum DatastoreAction {
    /// The cluster exists: nothing to create (servers without data join it).
    Keep,
    /// No server holds cluster data: `host` starts a new cluster.
    Bootstrap {
        /// The server that starts the cluster (the spec's first server).
        host: String,
        /// With `cluster-init` (embedded etcd, several servers).
        cluster_init: bool,
    },
    /// The single server's SQLite store becomes embedded etcd before other servers join.
    Convert {
        /// The server that converts.
        host: String,
        /// Its SQLite store.
        store: String,
    },
}

impl DatastoreAction {
    /// The server that bootstraps or converts in this run, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Keep => None,
            Self::Bootstrap { host, .. } | Self::Convert { host, .. } => Some(host),
        }
    }
}

/// Decides the datastore action.
pub fn decide(desired: &Desired, observed: &Observed) -> Result<DatastoreAction, PlanError> {
    let servers: Vec<&str> = desired
        .hosts
        .iter()
        .filter(|h| h.role == NodeRole::Server)
        .map(|h| h.name.as_str())
        .collect();
    let seen = |name: &str| observed.hosts.get(name);
    for name in &servers {
        if let Some(host) = seen(name)
            && host.etcd_data
            && let Some(store) = &host.sqlite_store
        {
            return Err(PlanError::StaleEtcd {
                host: (*name).to_owned(),
                store: store.clone(),
            });
        }
    }
    let with_etcd = servers
        .iter()
        .filter(|n| seen(n).is_some_and(|h| h.etcd_data))
        .count();
    let with_sqlite: Vec<&str> = servers
        .iter()
        .copied()
        .filter(|n| seen(n).is_some_and(|h| h.sqlite_store.is_some()))
        .collect();
    let exists = observed.token.is_some()
        || observed.nodes.as_ref().is_some_and(|n| !n.is_empty())
        || with_etcd > 0
        || !with_sqlite.is_empty();
    if !exists {
        let first = desired
            .hosts
            .iter()
            .find(|h| h.first_server)
            .map(|h| h.name.clone())
            .ok_or(PlanError::NoBootstrapServer)?;
        return Ok(DatastoreAction::Bootstrap {
            host: first,
            cluster_init: desired.ha,
        });
    }
    if !desired.ha || with_etcd > 0 {
        return Ok(DatastoreAction::Keep);
    }
    match with_sqlite.as_slice() {
        [host] => {
            let minimum: K3sVersion = MIN_CONVERSION_VERSION.parse().unwrap_or(desired.version);
            let running = seen(host).and_then(|h| h.k3s_version);
            if let Some(running) = running
                && running < minimum
            {
                return Err(PlanError::ConversionTooOld {
                    host: (*host).to_owned(),
                    running,
                });
            }
            Ok(DatastoreAction::Convert {
                host: (*host).to_owned(),
                store: seen(host)
                    .and_then(|h| h.sqlite_store.clone())
                    .unwrap_or_default(),
            })
        }
        [] => Ok(DatastoreAction::Keep),
        several => Err(PlanError::SeveralClusters {
            hosts: several.iter().map(|h| (*h).to_owned()).collect(),
        }),
    }
}
