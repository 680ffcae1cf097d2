//! Restarting nodes one at a time for a rotation (certificates, token) on the one step engine
//! every operation uses (`run::run_turn`). Each node's turn is plan steps
//! (`plan::rotate::turn_steps`): for a server of several, the rotation quorum check first (every
//! other server a healthy voting member whose K3s runs); then the action (stop, `k3s
//! certificate rotate`, start; or the env file written with the new token and a restart); then
//! Ready posted after the new start and, for a server of several, every member a healthy voter
//! again before the next node goes down. Agents follow the servers, one at a time.
//!
//! The API is reached through a server's own admin kubeconfig over its SSH tunnel, read again
//! for each turn and after a certificate rotation: through the node itself first when it is a
//! server (after its rotation its certificates are the fresh ones, and they work even when the
//! others' have expired), then through the other servers in spec order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::host::Transport;
use crate::ops::kube_api::failover_through;
use crate::plan::rotate::{RotateAction, RotateNode, turn_plan};
use crate::plan::upgrade::NodeKind;
use crate::run::{
    ApiConnector, Event, EventKind, NodeFailure, Reporter, RolloutContext, RunOptions, Shared,
    Stopwatch, run_turn,
};
use crate::secret::Secret;

/// One node that went through the roll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolledNode {
    /// Node name.
    pub name: String,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Why the roll stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{node}: {step}: {error}")]
pub struct RollFailure {
    /// The node.
    pub node: String,
    /// The step that failed (`quorum`, `rotate-certificates`, `write-file`, `restart`,
    /// `wait-node-ready`, `wait-voter`, `connect`).
    pub step: String,
    /// What went wrong.
    pub error: String,
    /// What to do about it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The unit's last journal lines, when they help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

impl From<NodeFailure> for RollFailure {
    fn from(f: NodeFailure) -> Self {
        Self {
            node: f.node,
            step: f.step,
            error: f.error,
            hint: f.hint,
            journal: f.journal,
        }
    }
}

/// The hosts a roll works on.
pub struct Roll {
    /// The spec's servers, in spec order.
    pub servers: Vec<String>,
    /// A transport per host.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// Progress output.
    pub reporter: Arc<dyn Reporter>,
    /// How long one node may take to come back (started, Ready, a voter).
    pub timeout: Duration,
    /// The join token env files are rendered with (`token rotate`: the new one).
    pub token: Option<Secret>,
}

impl Roll {
    fn is_ha(&self) -> bool {
        self.servers.len() > 1
    }

    /// The API for `node`'s turn: through the node itself first when it is a server, then the
    /// other servers in spec order; each connect reads that server's admin kubeconfig as it is
    /// then (a rotation rewrites it).
    fn connector(&self, node: &RotateNode) -> Arc<dyn ApiConnector> {
        let mut order: Vec<&str> = Vec::new();
        if node.kind == NodeKind::Server {
            order.extend(
                self.servers
                    .iter()
                    .filter(|s| **s == node.name)
                    .map(String::as_str),
            );
        }
        order.extend(
            self.servers
                .iter()
                .filter(|s| **s != node.name)
                .map(String::as_str),
        );
        Arc::new(failover_through(order, &self.transports))
    }

    /// The engine's shared state for `node`'s turn.
    fn shared(&self, node: &RotateNode) -> Shared {
        let options = RunOptions {
            node_ready_timeout: self.timeout,
            server_ready_timeout: self.timeout,
            ..RunOptions::default()
        };
        let mut shared = Shared::new(
            BTreeMap::new(),
            Arc::clone(&self.reporter),
            options,
            self.connector(node),
            self.token.clone(),
        );
        shared.rollout = Some(RolloutContext {
            binaries: BTreeMap::new(),
            servers: self.servers.clone(),
            api_server: String::new(),
            transports: self.transports.clone(),
        });
        shared
    }

    /// Runs the turns one node at a time, in order (`label` says what happens, in the progress
    /// output). Stops at the first failure (the nodes after it are left as they are).
    pub async fn run(
        &self,
        turns: &[(RotateNode, RotateAction)],
        label: &str,
    ) -> Result<Vec<RolledNode>, (Vec<RolledNode>, RollFailure)> {
        let mut done = Vec::new();
        for (node, action) in turns {
            let began = Instant::now();
            let kind = match node.kind {
                NodeKind::Server => "server",
                NodeKind::Agent => "agent",
            };
            self.reporter.report(Event::new(
                &node.name,
                "rotate",
                EventKind::Start,
                format!("{label} ({kind})"),
            ));
            let Some(transport) = self.transports.get(&node.name) else {
                let failure = RollFailure {
                    node: node.name.clone(),
                    step: "connect".into(),
                    error: "no connection to this host".into(),
                    hint: None,
                    journal: None,
                };
                self.reporter.report(Event::new(
                    &node.name,
                    "connect",
                    EventKind::Failed,
                    &failure.error,
                ));
                return Err((done, failure));
            };
            let turn = turn_plan(node, self.is_ha(), action);
            let shared = self.shared(node);
            let result =
                run_turn(&shared, transport.as_ref(), &turn, &mut Stopwatch::start()).await;
            if let Err((failure, _)) = result {
                return Err((done, failure.into()));
            }
            let round = (began.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            done.push(RolledNode {
                name: node.name.clone(),
                seconds: round,
            });
        }
        Ok(done)
    }
}
