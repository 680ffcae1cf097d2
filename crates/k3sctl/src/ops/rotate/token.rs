//! `k3sctl token rotate`: K3s's `k3s token rotate` on a running server (K3s generates the new
//! token and re-keys its bootstrap data), then every node restarted one at a time with its env
//! file rewritten with the new token (servers first, quorum kept; then agents). The token is
//! read from the server like every other k3sctl command reads it, and never shown.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::roll::{RollFailure, RolledNode};
use super::{Rotation, open, spec_nodes};
use crate::host::ExecRequest;
use crate::k3s::config::NodeRole;
use crate::k3s::token::{JoinToken, SERVER_TOKEN_PATH};
use crate::k3s::unit::{BINARY_PATH, unit_name};
use crate::ops::connect::ConnectOptions;
use crate::ops::error::OpsError;
use crate::plan::from_spec::lasting_env;
use crate::plan::rotate::{RotateAction, describe, restart_order};
use crate::run::service::is_active;
use crate::run::{Event, EventKind, Reporter};
use crate::secret::Secret;

/// What every rotation of the server token must say: K3s encrypts its bootstrap data with the
/// token, and a snapshot keeps the token it was taken with.
pub const SNAPSHOT_CAVEAT: &str = "etcd snapshots taken before this rotation can only be \
     restored with the old token, which k3sctl does not keep: take a new snapshot now \
     (`k3sctl etcd snapshot save`)";

/// What `token rotate` did.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRotateReport {
    /// The server that rotated the token.
    pub rotated_on: Option<String>,
    /// The nodes restarted with the new token, in order.
    pub restarted: Vec<RolledNode>,
    /// Where it stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<RollFailure>,
    /// The snapshot caveat.
    pub caveat: &'static str,
}

/// Connects and decides the order; changes nothing.
pub async fn prepare_token_rotate(
    path: &Path,
    connect: ConnectOptions,
) -> Result<Rotation, OpsError> {
    let (spec, transports) = open(path, connect).await?;
    let order = restart_order(&spec_nodes(&spec));
    let mut summary = vec![
        "rotate the cluster's server token with `k3s token rotate` on the first running server \
         (K3s picks the new token; it is never shown)"
            .to_string(),
    ];
    summary.extend(describe(
        "then restart every node with the new token in its env file",
        &order,
    ));
    summary.push(format!("note: {SNAPSHOT_CAVEAT}"));
    Ok(Rotation {
        spec,
        path: path.to_path_buf(),
        connect,
        export: None,
        transports,
        order,
        summary,
    })
}

fn failure(node: &str, step: &str, error: String) -> RollFailure {
    RollFailure {
        node: node.into(),
        step: step.into(),
        error,
        hint: None,
        journal: None,
    }
}

impl Rotation {
    async fn read_token(&self, server: &str) -> Result<Secret, RollFailure> {
        let t = self
            .transports
            .get(server)
            .ok_or_else(|| failure(server, "read-token", "no connection".into()))?;
        let bytes = t
            .read_file(Path::new(SERVER_TOKEN_PATH))
            .await
            .map_err(|e| failure(server, "read-token", e.to_string()))?
            .ok_or_else(|| {
                failure(
                    server,
                    "read-token",
                    format!("{SERVER_TOKEN_PATH} is missing"),
                )
            })?;
        let text = String::from_utf8_lossy(&bytes).to_string();
        JoinToken::parse(&text)
            .map(|t| t.raw)
            .map_err(|e| failure(server, "read-token", format!("{SERVER_TOKEN_PATH}: {e}")))
    }

    /// Rotates the token, then restarts every node with it.
    pub async fn rotate_token(&self, reporter: Arc<dyn Reporter>) -> TokenRotateReport {
        let mut report = TokenRotateReport {
            rotated_on: None,
            restarted: Vec::new(),
            failure: None,
            caveat: SNAPSHOT_CAVEAT,
        };
        match self.rotate_and_restart(reporter, &mut report).await {
            Ok(()) => {}
            Err(f) => report.failure = Some(f),
        }
        report
    }

    async fn rotate_and_restart(
        &self,
        reporter: Arc<dyn Reporter>,
        report: &mut TokenRotateReport,
    ) -> Result<(), RollFailure> {
        let servers = self.servers();
        let server_unit = unit_name(NodeRole::Server);
        // Every server must run: a stopped one would not learn the new token, and its restart
        // later with the old one would be refused by the re-keyed bootstrap data.
        let mut acting = None;
        for s in &servers {
            let t = self
                .transports
                .get(s)
                .ok_or_else(|| failure(s, "connect", "no connection".into()))?;
            if !is_active(t.as_ref(), server_unit).await {
                return Err(failure(
                    s,
                    "preflight",
                    format!(
                        "{server_unit} is not running: every server must run to rotate the \
                         token\n  hint: start it (or `k3sctl apply`), then re-run"
                    ),
                ));
            }
            acting.get_or_insert_with(|| s.clone());
        }
        let acting =
            acting.ok_or_else(|| failure("-", "preflight", "the spec has no server".into()))?;
        let old = self.read_token(&acting).await?;
        let t = self
            .transports
            .get(&acting)
            .cloned()
            .ok_or_else(|| failure(&acting, "rotate", "no connection".into()))?;
        let started = std::time::Instant::now();
        reporter.report(Event::new(
            &acting,
            "token-rotate",
            EventKind::Start,
            "`k3s token rotate`",
        ));
        let req = ExecRequest::new(format!("{BINARY_PATH} token rotate 2>&1"))
            .sudo(true)
            .timeout(Some(crate::run::service::QUICK))
            .describe("rotating the server token");
        let out = t
            .exec(req)
            .await
            .map_err(|e| failure(&acting, "token-rotate", e.to_string()))?;
        if !out.success() {
            return Err(failure(
                &acting,
                "token-rotate",
                format!(
                    "`k3s token rotate` failed ({}): {}",
                    out.status_text(),
                    out.stdout_text().trim()
                ),
            ));
        }
        let new = self.read_token(&acting).await?;
        if new.expose() == old.expose() {
            return Err(failure(
                &acting,
                "token-rotate",
                "`k3s token rotate` succeeded but the server token did not change".into(),
            ));
        }
        report.rotated_on = Some(acting.clone());
        reporter.report(
            Event::new(
                &acting,
                "token-rotate",
                EventKind::Done,
                "server token rotated (not shown)",
            )
            .took(started.elapsed()),
        );
        // Each node's env file as apply renders it; the engine renders it with the new token.
        let mut turns = Vec::new();
        for node in &self.order {
            let host = self
                .spec
                .cluster
                .spec
                .hosts
                .iter()
                .find(|h| h.name == node.name)
                .ok_or_else(|| failure(&node.name, "render", "not a host of the spec".into()))?;
            let env = lasting_env(&self.spec.cluster, host);
            turns.push((node.clone(), RotateAction::Token { env }));
        }
        let roll = self.roll(reporter, Some(new));
        let result = roll.run(&turns, "restarting with the new token").await;
        match result {
            Ok(done) => {
                report.restarted = done;
                Ok(())
            }
            Err((done, f)) => {
                report.restarted = done;
                Err(f)
            }
        }
    }
}
