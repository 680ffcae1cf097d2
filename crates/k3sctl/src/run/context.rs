//! State shared by the tasks of one run: transports, the join token once read, the API client
//! once connected, the restart gate and the upload limit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};

use super::api::{ApiConnector, ClusterApi};
use super::events::Reporter;
use crate::secret::Secret;

/// Tunables of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many hosts receive the binary at once.
    pub upload_concurrency: usize,
    /// How long the first server may take to write its token and answer /readyz.
    pub server_ready_timeout: Duration,
    /// How long a node may take to start and become Ready.
    pub node_ready_timeout: Duration,
    /// How many agents of a group run their steps at once, by the engine's group name
    /// (`engine::DEFAULT_GROUP` for agents without one); groups not listed use
    /// `default_join_concurrency`.
    pub join_concurrency: BTreeMap<String, usize>,
    /// Agents of a group not in `join_concurrency` at once (1: one at a time).
    pub default_join_concurrency: usize,
}

impl RunOptions {
    /// How many agents of `group` run at once (at least 1).
    pub fn join_concurrency_of(&self, group: &str) -> usize {
        self.join_concurrency
            .get(group)
            .copied()
            .unwrap_or(self.default_join_concurrency)
            .max(1)
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            upload_concurrency: 4,
            server_ready_timeout: Duration::from_secs(300),
            node_ready_timeout: Duration::from_secs(300),
            join_concurrency: BTreeMap::new(),
            default_join_concurrency: 1,
        }
    }
}

/// What the steps of a rollout (an upgrade's per-node turns) need beyond `apply`'s.
#[derive(Clone)]
pub struct RolloutContext {
    /// The new binary per host: local path and sha256.
    pub binaries: BTreeMap<String, (PathBuf, String)>,
    /// The spec's servers, in spec order (the quorum check's view of the members).
    pub servers: Vec<String>,
    /// The server the run's API client goes through: a server's own `/readyz` is asked through
    /// the client only for that server, on the server itself for the others (empty when no API
    /// answered as the run began).
    pub api_server: String,
    /// Every host's transport (the quorum check asks each server whether K3s runs).
    pub transports: BTreeMap<String, Arc<dyn crate::host::Transport>>,
}

/// Shared state of one run.
pub struct Shared {
    /// Local binary per host that needs an upload.
    pub binaries: BTreeMap<String, PathBuf>,
    /// Progress output.
    pub reporter: Arc<dyn Reporter>,
    /// Tunables.
    pub options: RunOptions,
    /// Bounds concurrent uploads.
    pub uploads: Semaphore,
    /// One restart of a serving node at a time.
    pub restart_gate: Arc<Mutex<()>>,
    /// The join URL, probed from each host right before it joins.
    pub join_endpoint: Option<String>,
    /// Nodes registered before the run (a datastore conversion must keep them all).
    pub known_nodes: Vec<String>,
    /// A running server whose etcd removes stale members.
    pub etcd_peer: Option<Arc<dyn crate::host::Transport>>,
    /// The cluster's servers reached (those that stay and those that leave), whose K3s service
    /// `leave-etcd` asks over ssh right before it removes a member: a server stopped since the
    /// plan was judged still has a Ready Node for the node-monitor grace period (40 s).
    pub etcd_servers: BTreeMap<String, Arc<dyn crate::host::Transport>>,
    /// What a rollout's steps need (cordon, drain, swap, quorum); `None` for `apply`.
    pub rollout: Option<RolloutContext>,
    connector: Arc<dyn ApiConnector>,
    token: Mutex<Option<Secret>>,
    api: Mutex<Option<Arc<dyn ClusterApi>>>,
}

impl Shared {
    /// New shared state; `token` is the one observed before planning, if any.
    pub fn new(
        binaries: BTreeMap<String, PathBuf>,
        reporter: Arc<dyn Reporter>,
        options: RunOptions,
        connector: Arc<dyn ApiConnector>,
        token: Option<Secret>,
    ) -> Self {
        Self {
            binaries,
            reporter,
            uploads: Semaphore::new(options.upload_concurrency.max(1)),
            options,
            restart_gate: Arc::new(Mutex::new(())),
            join_endpoint: None,
            known_nodes: Vec::new(),
            etcd_peer: None,
            etcd_servers: BTreeMap::new(),
            rollout: None,
            connector,
            token: Mutex::new(token),
            api: Mutex::new(None),
        }
    }

    /// The join token, once known.
    pub async fn token(&self) -> Option<Secret> {
        self.token.lock().await.clone()
    }

    /// Records the token read from the first server.
    pub async fn set_token(&self, token: Secret) {
        *self.token.lock().await = Some(token);
    }

    /// Starts the run with a client already connected (the one the plan's observation read the
    /// Nodes through), so the run does not open a second tunnel to the same API.
    pub fn reuse_api(&mut self, api: Arc<dyn ClusterApi>) {
        *self.api.get_mut() = Some(api);
    }

    /// The API client, connecting on first use.
    pub async fn api(&self) -> Result<Arc<dyn ClusterApi>, String> {
        let mut guard = self.api.lock().await;
        if let Some(api) = guard.as_ref() {
            return Ok(Arc::clone(api));
        }
        let api = self
            .connector
            .connect()
            .await
            .map_err(|e| format!("cannot reach the API: {e}"))?;
        *guard = Some(Arc::clone(&api));
        Ok(api)
    }

    /// The API client, connecting until one answers or `timeout` runs out (the server the
    /// client went through may be restarting; the connector tries every server it knows).
    pub async fn api_within(&self, timeout: Duration) -> Result<Arc<dyn ClusterApi>, String> {
        let began = std::time::Instant::now();
        loop {
            match self.api().await {
                Ok(api) => return Ok(api),
                Err(e) if began.elapsed() >= timeout => {
                    return Err(format!("{e} (for {}s)", timeout.as_secs()));
                }
                Err(_) => tokio::time::sleep(super::service::POLL).await,
            }
        }
    }

    /// Drops a client that failed, so the next use reconnects.
    pub async fn forget_api(&self) {
        *self.api.lock().await = None;
    }
}
