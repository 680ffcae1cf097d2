//! `k3sctl etcd snapshot save|list|prune`: K3s's own snapshots of embedded etcd. `save` runs
//! `k3s etcd-snapshot save` on a healthy voter (a learner refuses, and K3s's CLI asks the local
//! running server, so the host choice is the node the snapshot is taken on); `list` reads the
//! `ETCDSnapshotFile` objects through the API (every server's snapshots, which one server's
//! `ls` does not show); `prune` runs K3s's prune on every server (each prunes its own). The API
//! is reached as everywhere else, through the first server in spec order whose API answers
//! (`run::FailoverConnector`); a server passed over is no candidate for `save`, and the
//! result says which server answered and why the ones before it did not.
//!
//! A single server keeping its state in SQLite has no etcd snapshots; there the same commands
//! work on archives of its store and token (`run::sqlite_snapshot`): `save` copies them with K3s
//! stopped for the copy (after a confirmation, since the API is down meanwhile), `list` and
//! `prune` read and delete the archives on the server.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::confirm::{Confirmer, ConsentRequest};
use super::connect::{ConnectOptions, connect_all};
use super::error::OpsError;
use super::kube_api::failover_through;
use crate::host::{Transport, shell};
use crate::kube::{ETCD_ROLE_LABEL, NodeInfo, SnapshotFile};
use crate::run::snapshot;
use crate::run::sqlite_snapshot::{self, SqliteSnapshot};
use crate::run::{Answering, ClusterApi, FailoverConnector};

pub use crate::run::snapshot::Saved;

/// What prune removed, per server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// The server.
    pub node: String,
    /// Snapshot names removed.
    pub removed: Vec<String>,
    /// Snapshot names of that prefix left.
    pub kept: Vec<String>,
}

/// Pure: the server to snapshot on: the first spec server (in spec order) whose Node is Ready
/// and a voting etcd member. A cluster whose servers carry no etcd role runs SQLite: refused.
pub fn pick_voter(servers: &[String], nodes: &[NodeInfo]) -> Result<String, String> {
    pick_voter_answering(servers, nodes, &[])
}

/// Pure: as [`pick_voter`], leaving out the servers in `silent`, whose own API did not answer
/// just now (their Node may still say Ready for a while after K3s stopped there, and K3s's
/// snapshot command asks the server running on its host).
pub fn pick_voter_answering(
    servers: &[String],
    nodes: &[NodeInfo],
    silent: &[String],
) -> Result<String, String> {
    let node = |s: &str| nodes.iter().find(|n| n.name == s);
    let etcd: Vec<&str> = servers
        .iter()
        .map(String::as_str)
        .filter(|s| {
            node(s).is_some_and(|n| {
                n.labels.get(ETCD_ROLE_LABEL).map(String::as_str) == Some("true")
                    || n.etcd_voter.is_some()
            })
        })
        .collect();
    if etcd.is_empty() {
        return Err(no_etcd());
    }
    let answers = |s: &str| !silent.iter().any(|q| q == s);
    etcd.iter()
        .find(|s| {
            answers(s)
                && node(s)
                    .is_some_and(|n| n.ready && n.etcd_voter.as_ref().is_some_and(|c| c.status))
        })
        .map(|s| s.to_string())
        .ok_or_else(|| {
            let states: Vec<String> = etcd
                .iter()
                .map(|s| {
                    let n = node(s);
                    let ready = n.is_some_and(|n| n.ready);
                    let voter = n.and_then(|n| n.etcd_voter.as_ref()).is_some_and(|c| c.status);
                    format!(
                        "{s}: {}, {}{}",
                        if ready { "Ready" } else { "not Ready" },
                        if voter { "voter" } else { "not a voter" },
                        if answers(s) {
                            ""
                        } else {
                            ", its API does not answer"
                        }
                    )
                })
                .collect();
            format!(
                "no server is a Ready etcd voter to take the snapshot on ({}); wait for the cluster to settle and retry",
                states.join("; ")
            )
        })
}

fn no_etcd() -> String {
    "this cluster does not run embedded etcd: etcd snapshots need servers started with cluster-init (two or more servers in the spec); a single server keeping its state in SQLite gets SQLite snapshots when the spec names only that server".into()
}

/// The spec's servers and a transport to each.
struct Opened {
    servers: Vec<String>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
}

impl Opened {
    /// The API through the first server (spec order) whose API answers.
    fn connector(&self) -> FailoverConnector {
        failover_through(self.servers.iter().map(String::as_str), &self.transports)
    }
}

/// The server a snapshot command reached the API through, and the servers passed over before
/// it (in spec order), each with why its API did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiThrough {
    /// The server the API answered through.
    pub server: String,
    /// `(server, why)` for each server tried before it.
    pub passed_over: Vec<(String, String)>,
}

impl ApiThrough {
    /// Pure: the line telling that the API answered through another server than the first,
    /// naming the servers passed over and why; `None` when the first server answered.
    pub fn note(&self) -> Option<String> {
        if self.passed_over.is_empty() {
            return None;
        }
        let why: Vec<String> = self
            .passed_over
            .iter()
            .map(|(s, e)| format!("{s}: {e}"))
            .collect();
        Some(format!(
            "the Kubernetes API answered through {} ({})",
            self.server,
            why.join("; ")
        ))
    }

    fn silent(&self) -> Vec<String> {
        self.passed_over.iter().map(|(s, _)| s.clone()).collect()
    }
}

/// A snapshot command's result, with the server the API answered through (`None` on a single
/// SQLite server, where the API is not used).
#[derive(Debug, Clone)]
pub struct Answered<T> {
    /// The result.
    pub value: T,
    /// Where the API answered.
    pub api: Option<ApiThrough>,
}

impl<T> Answered<T> {
    fn without_api(value: T) -> Self {
        Self { value, api: None }
    }
}

/// The API through `connector`, or every server tried and why none answered.
async fn reach(
    connector: &FailoverConnector,
) -> Result<(Arc<dyn ClusterApi>, ApiThrough), OpsError> {
    let Answering {
        server,
        api,
        passed_over,
    } = connector
        .connect_answering()
        .await
        .map_err(|error| OpsError::ApiUnreachable {
            servers: connector.servers(),
            error,
        })?;
    let passed_over = passed_over
        .into_iter()
        .map(|(s, e)| (s, e.to_string()))
        .collect();
    Ok((
        api,
        ApiThrough {
            server,
            passed_over,
        },
    ))
}

/// How long a SQLite snapshot's copy and K3s's start may take.
const SQLITE_TIMEOUT: Duration = Duration::from_secs(300);

/// The only server of the spec when it keeps its state in SQLite (name and transport).
async fn sqlite_server(
    path: &Path,
    connect: ConnectOptions,
) -> Result<Option<(String, Arc<dyn Transport>)>, OpsError> {
    let spec = crate::spec::load_file(path)?;
    let servers: Vec<_> = spec
        .hosts()
        .into_iter()
        .filter(|h| h.role == crate::spec::Role::Server)
        .collect();
    if servers.len() != 1 {
        return Ok(None);
    }
    let (transports, errors) = connect_all(&servers, connect).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: String::new(),
        });
    }
    let name = servers[0].name.clone();
    let t = transports
        .get(&name)
        .cloned()
        .ok_or_else(|| OpsError::Etcd(format!("{name}: no connection")))?;
    let sqlite = sqlite_snapshot::is_sqlite(t.as_ref())
        .await
        .map_err(|e| OpsError::Etcd(e.to_string()))?;
    Ok(sqlite.then_some((name, t)))
}

/// Pure: a SQLite snapshot as a listed snapshot of `node`.
fn sqlite_file(node: &str, s: SqliteSnapshot) -> SnapshotFile {
    SnapshotFile {
        name: s.name,
        node: node.to_string(),
        location: format!("file://{}", s.path),
        size: Some(s.size),
        created: Some(s.created),
        ready: true,
    }
}

/// Pure: what a SQLite snapshot's save asks.
fn sqlite_save_consent(node: &str) -> ConsentRequest {
    ConsentRequest::new(
        "etcd snapshot save",
        format!(
            "copy the SQLite store of {node} with K3s stopped (K3s has no online snapshot of it)"
        ),
        vec![format!(
            "{node}: K3s stopped for the copy of server/db and the token, then started again; \
             the Kubernetes API is down meanwhile (running pods keep running)"
        )],
    )
}

async fn open(path: &Path, connect: ConnectOptions) -> Result<Opened, OpsError> {
    // Not prepare::load_spec: snapshots are for clusters with several servers, which apply
    // may not create yet but K3s runs.
    let spec = crate::spec::load_file(path)?;
    let hosts: Vec<_> = spec
        .hosts()
        .into_iter()
        .filter(|h| h.role == crate::spec::Role::Server)
        .collect();
    if hosts.is_empty() {
        return Err(OpsError::NoServer {
            file: path.display().to_string(),
        });
    }
    let (transports, errors) = connect_all(&hosts, connect).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: String::new(),
        });
    }
    Ok(Opened {
        servers: hosts.into_iter().map(|h| h.name).collect(),
        transports,
    })
}

async fn k3s_snapshot(
    t: &dyn Transport,
    args: &str,
    what: &str,
) -> Result<(String, String), OpsError> {
    snapshot::k3s_snapshot(t, args, what)
        .await
        .map_err(|e| OpsError::Etcd(e.to_string()))
}

async fn local_list(t: &dyn Transport) -> Result<Vec<SnapshotFile>, OpsError> {
    snapshot::local_list(t)
        .await
        .map_err(|e| OpsError::Etcd(e.to_string()))
}

fn transport<'a>(o: &'a Opened, name: &str) -> Result<&'a Arc<dyn Transport>, OpsError> {
    o.transports
        .get(name)
        .ok_or_else(|| OpsError::Etcd(format!("{name}: no connection")))
}

/// Every Node, read through the API that answered through `through`.
async fn nodes(api: &dyn ClusterApi, through: &ApiThrough) -> Result<Vec<NodeInfo>, OpsError> {
    api.node_infos()
        .await
        .map_err(|e| OpsError::Etcd(format!("{}: {e}", through.server)))
}

/// Takes an on-demand snapshot named `name` (default `on-demand`) on a healthy voter, or, on a
/// single SQLite server, a copy of its store after `confirm` agreed to the stop.
pub async fn save(
    path: &Path,
    name: Option<&str>,
    connect: ConnectOptions,
    confirm: &Confirmer,
) -> Result<Answered<Saved>, OpsError> {
    let prefix = name.unwrap_or("on-demand");
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(OpsError::Usage(format!(
            "--name {prefix:?}: use letters, digits, dots and dashes"
        )));
    }
    if let Some((node, t)) = sqlite_server(path, connect).await? {
        confirm.ask(&sqlite_save_consent(&node))?;
        return sqlite_snapshot::save_on(t.as_ref(), prefix, SQLITE_TIMEOUT)
            .await
            .map(Answered::without_api)
            .map_err(|e| OpsError::Etcd(e.to_string()));
    }
    let o = open(path, connect).await?;
    save_etcd(&o, &o.connector(), prefix).await
}

/// `save` on embedded etcd: a Ready voter whose API answers, chosen through `connector`.
async fn save_etcd(
    o: &Opened,
    connector: &FailoverConnector,
    prefix: &str,
) -> Result<Answered<Saved>, OpsError> {
    let (api, through) = reach(connector).await?;
    let nodes = nodes(api.as_ref(), &through).await?;
    let node =
        pick_voter_answering(&o.servers, &nodes, &through.silent()).map_err(OpsError::Etcd)?;
    let t = transport(o, &node)?;
    let saved = snapshot::save_on(t.as_ref(), prefix)
        .await
        .map_err(|e| OpsError::Etcd(e.to_string()))?;
    Ok(Answered {
        value: saved,
        api: Some(through),
    })
}

/// Every server's snapshots, from the API's `ETCDSnapshotFile` objects.
pub async fn list(
    path: &Path,
    connect: ConnectOptions,
) -> Result<Answered<Vec<SnapshotFile>>, OpsError> {
    if let Some((node, t)) = sqlite_server(path, connect).await? {
        let found = sqlite_snapshot::list_on(t.as_ref())
            .await
            .map_err(|e| OpsError::Etcd(e.to_string()))?;
        return Ok(Answered::without_api(
            found.into_iter().map(|s| sqlite_file(&node, s)).collect(),
        ));
    }
    let o = open(path, connect).await?;
    list_etcd(&o.servers, &o.connector()).await
}

/// `list` on embedded etcd: the `ETCDSnapshotFile` objects, through `connector`.
async fn list_etcd(
    servers: &[String],
    connector: &FailoverConnector,
) -> Result<Answered<Vec<SnapshotFile>>, OpsError> {
    let (api, through) = reach(connector).await?;
    let nodes = nodes(api.as_ref(), &through).await?;
    if !nodes.iter().any(|n| {
        servers.contains(&n.name)
            && n.labels.get(ETCD_ROLE_LABEL).map(String::as_str) == Some("true")
    }) {
        return Err(OpsError::Etcd(no_etcd()));
    }
    let files = api
        .snapshot_files()
        .await
        .map_err(|e| OpsError::Etcd(format!("{}: {e}", through.server)))?
        .ok_or_else(|| {
            OpsError::Etcd(
                "the API does not serve ETCDSnapshotFile objects: K3s lists snapshots there since v1.28.4+k3s2 (v1.27.8+k3s2, v1.26.11+k3s2); upgrade K3s or run k3s etcd-snapshot ls on each server".into(),
            )
        })?;
    Ok(Answered {
        value: files,
        api: Some(through),
    })
}

/// Keeps the newest `retention` snapshots named `prefix` on every server (K3s prunes per node),
/// after `confirm` agreed to the removals (nothing to remove, nothing asked).
pub async fn prune(
    path: &Path,
    prefix: &str,
    retention: usize,
    connect: ConnectOptions,
    confirm: &Confirmer,
) -> Result<Answered<Vec<Pruned>>, OpsError> {
    if let Some((node, t)) = sqlite_server(path, connect).await? {
        return prune_sqlite(&node, t.as_ref(), prefix, retention, confirm)
            .await
            .map(Answered::without_api);
    }
    let o = open(path, connect).await?;
    prune_etcd(&o, &o.connector(), prefix, retention, confirm).await
}

/// `prune` on embedded etcd: K3s's prune on every server, after the API (through
/// `connector`) showed that the cluster runs etcd.
async fn prune_etcd(
    o: &Opened,
    connector: &FailoverConnector,
    prefix: &str,
    retention: usize,
    confirm: &Confirmer,
) -> Result<Answered<Vec<Pruned>>, OpsError> {
    let (api, through) = reach(connector).await?;
    if pick_voter(&o.servers, &nodes(api.as_ref(), &through).await?).is_err_and(|e| e == no_etcd())
    {
        return Err(OpsError::Etcd(no_etcd()));
    }
    let ours = |s: &str, files: Vec<SnapshotFile>| -> Vec<String> {
        let start = format!("{prefix}-{s}-");
        files
            .into_iter()
            .filter(|f| f.name.starts_with(&start))
            .map(|f| f.name)
            .collect()
    };
    let mut before = Vec::new();
    for s in &o.servers {
        let t = transport(o, s)?;
        before.push((s, Arc::clone(t), ours(s, local_list(t.as_ref()).await?)));
    }
    let removals: Vec<String> = before
        .iter()
        .filter(|(_, _, names)| names.len() > retention)
        .map(|(s, _, names)| prune_line(s, prefix, names.len() - retention, names.len(), retention))
        .collect();
    confirm.ask(&prune_consent(removals))?;
    let mut out = Vec::new();
    for (s, t, before) in before {
        k3s_snapshot(
            t.as_ref(),
            &format!(
                "prune --name {} --snapshot-retention {retention}",
                shell::quote(prefix)
            ),
            "pruning etcd snapshots",
        )
        .await?;
        let kept = ours(s, local_list(t.as_ref()).await?);
        out.push(Pruned {
            node: s.clone(),
            removed: before.into_iter().filter(|n| !kept.contains(n)).collect(),
            kept,
        });
    }
    Ok(Answered {
        value: out,
        api: Some(through),
    })
}

/// Pure: prune's confirmation, one line per server that loses snapshots.
fn prune_consent(removals: Vec<String>) -> ConsentRequest {
    ConsentRequest::new(
        "etcd snapshot prune",
        format!("delete etcd snapshots on {} server(s)", removals.len()),
        removals,
    )
    .with_losses(vec![
        "the deleted snapshots: a restore can no longer go back to them".into(),
    ])
}

/// Pure: prune's line for one server.
fn prune_line(node: &str, prefix: &str, removed: usize, of: usize, retention: usize) -> String {
    format!(
        "{node}: delete {removed} of its {of} snapshot(s) named {prefix}-* (the newest {retention} kept)"
    )
}

async fn prune_sqlite(
    node: &str,
    t: &dyn Transport,
    prefix: &str,
    retention: usize,
    confirm: &Confirmer,
) -> Result<Vec<Pruned>, OpsError> {
    let err = |e: crate::run::step_error::StepError| OpsError::Etcd(e.to_string());
    let names: Vec<String> = sqlite_snapshot::list_on(t)
        .await
        .map_err(err)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let removed = sqlite_snapshot::prune_choice(&names, prefix, node, retention);
    let start = format!("{prefix}-{node}-");
    let ours = names.iter().filter(|n| n.starts_with(&start)).count();
    let removals = if removed.is_empty() {
        Vec::new()
    } else {
        vec![prune_line(node, prefix, removed.len(), ours, retention)]
    };
    confirm.ask(&prune_consent(removals))?;
    sqlite_snapshot::delete_on(t, &removed).await.map_err(err)?;
    let kept = sqlite_snapshot::list_on(t)
        .await
        .map_err(err)?
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with(&start))
        .collect();
    Ok(vec![Pruned {
        node: node.to_string(),
        removed,
        kept,
    }])
}

#[cfg(test)]
mod tests;
