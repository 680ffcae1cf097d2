//! Restarting nodes one at a time for a rotation (certificates, token), keeping etcd quorum:
//! before a server goes down every other server must be a healthy voting member; after it
//! starts, it must post Ready (and, with several servers, be a voter again with every member
//! healthy) before the next node goes down. Agents follow the servers, one at a time.
//!
//! The API is reached through a server's own admin kubeconfig over its SSH tunnel, opened anew
//! for each look: through another server before a server goes down, through the rotated
//! server itself afterwards (its fresh certificates work even when the others' have expired).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;

use crate::host::{ExecRequest, Transport};
use crate::k3s::config::NodeRole;
use crate::k3s::unit::{BINARY_PATH, ENV_FILE_MODE, unit_name};
use crate::kube::{
    ApiConnection, NodeInfo, Poll, StartedAt, connect_through, etcd_members, list_nodes,
    wait_node_ready_after,
};
use crate::ops::export::read_admin_kubeconfig;
use crate::plan::rotate::RotateNode;
use crate::plan::upgrade::NodeKind;
use crate::plan::upgrade::quorum::{EtcdState, check_quorum, may_restart};
use crate::run::service::{QUICK, journal_tail, start_and_wait};
use crate::run::{Event, EventKind, Reporter};
use crate::secret::Secret;

use crate::k3s::ports::API_PORT;
const POLL: Duration = Duration::from_millis(250);

/// What happens on a node between its stop and its start.
#[derive(Debug, Clone)]
pub enum Action {
    /// Stop K3s, `k3s certificate rotate [--service ...]`, start K3s.
    RotateCertificates {
        /// `--service` values; empty: K3s's default for the node.
        services: Vec<String>,
    },
    /// Write the unit's env file (mode 0600; it holds the token), then restart K3s.
    RewriteEnv {
        /// The env file.
        path: String,
        /// Its content.
        content: Secret,
    },
}

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
    /// The step that failed (`quorum`, `stop`, `rotate`, `start`, `wait-ready`, `wait-voter`).
    pub step: String,
    /// What went wrong.
    pub error: String,
    /// The unit's last journal lines, when they help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

/// The hosts a roll works on.
pub struct Roll {
    /// The spec's servers, in spec order.
    pub servers: Vec<String>,
    /// A transport per host.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// Progress output.
    pub reporter: Arc<dyn Reporter>,
    /// How long one node may take to come back (Ready, voter).
    pub timeout: Duration,
}

fn unit_of(kind: NodeKind) -> &'static str {
    unit_name(match kind {
        NodeKind::Server => NodeRole::Server,
        NodeKind::Agent => NodeRole::Agent,
    })
}

/// One look at the etcd cluster through some server's API.
struct Look {
    nodes: Vec<NodeInfo>,
    members: Option<Vec<crate::kube::EtcdMember>>,
    stopped: Vec<String>,
}

impl Roll {
    fn say(&self, host: &str, step: &str, kind: EventKind, message: impl Into<String>) {
        self.reporter.report(Event::new(host, step, kind, message));
    }

    fn done(&self, host: &str, step: &str, message: impl Into<String>, since: Instant) {
        self.reporter
            .report(Event::new(host, step, EventKind::Done, message).took(since.elapsed()));
    }

    fn transport(&self, host: &str) -> Result<&Arc<dyn Transport>, RollFailure> {
        self.transports.get(host).ok_or_else(|| RollFailure {
            node: host.into(),
            step: "connect".into(),
            error: "no connection to this host".into(),
            journal: None,
        })
    }

    fn is_ha(&self) -> bool {
        self.servers.len() > 1
    }

    /// The API through the first of `candidates` that answers with its own admin kubeconfig.
    async fn api_via<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Result<(String, ApiConnection), String> {
        let mut failures = Vec::new();
        for server in candidates {
            let Some(t) = self.transports.get(server) else {
                continue;
            };
            let admin = match read_admin_kubeconfig(t.as_ref()).await {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("{server}: {e}"));
                    continue;
                }
            };
            match connect_through(t.as_ref(), admin.expose(), API_PORT).await {
                Ok(api) => match list_nodes(&api.client).await {
                    Ok(_) => return Ok((server.to_string(), api)),
                    Err(e) => failures.push(format!("{server}: {e}")),
                },
                Err(e) => failures.push(format!("{server}: {e}")),
            }
        }
        Err(failures.join("; "))
    }

    /// Which servers' K3s services are not active (asked over SSH, all at once).
    async fn stopped_servers(&self) -> Vec<String> {
        let asks = self.servers.iter().map(|s| async move {
            let up = match self.transports.get(s) {
                Some(t) => service_active(t.as_ref(), unit_of(NodeKind::Server)).await,
                None => false,
            };
            (s.clone(), up)
        });
        join_all(asks)
            .await
            .into_iter()
            .filter(|(_, up)| !up)
            .map(|(s, _)| s)
            .collect()
    }

    async fn look(&self, api: &ApiConnection) -> Result<Look, String> {
        let (nodes, members, stopped) = tokio::join!(
            list_nodes(&api.client),
            etcd_members(&api.client),
            self.stopped_servers()
        );
        Ok(Look {
            nodes: nodes.map_err(|e| e.to_string())?,
            members: members.ok().flatten(),
            stopped,
        })
    }

    /// Before server `name` goes down: every other server a healthy voter. When no other
    /// server's API answers (their admin certificates may have expired), their K3s services
    /// must all run, and that is said.
    async fn quorum_before(&self, name: &str) -> Result<(), RollFailure> {
        let t = Instant::now();
        let others = self
            .servers
            .iter()
            .map(String::as_str)
            .filter(|s| *s != name);
        let fail = |error: String| RollFailure {
            node: name.into(),
            step: "quorum".into(),
            error,
            journal: None,
        };
        let servers: Vec<&str> = self.servers.iter().map(String::as_str).collect();
        match self.api_via(others).await {
            Ok((via, api)) => {
                let look = self.look(&api).await.map_err(fail)?;
                let state = EtcdState {
                    servers: &servers,
                    nodes: &look.nodes,
                    members: look.members.as_deref(),
                    stopped: &look.stopped,
                };
                may_restart(&state, name).map_err(|risk| {
                    fail(format!(
                        "not taking this server down: it could lose etcd quorum\n{risk}\n  hint: \
                         bring every other server back as a voting member, then re-run"
                    ))
                })?;
                self.done(
                    name,
                    "quorum",
                    format!("every other etcd member is a healthy voter (seen through {via})"),
                    t,
                );
            }
            Err(why) => {
                let stopped = self.stopped_servers().await;
                let others_down: Vec<&String> = stopped.iter().filter(|s| *s != name).collect();
                if !others_down.is_empty() {
                    return Err(fail(format!(
                        "not taking this server down: server(s) {} are not running and the API \
                         could not be asked ({why})",
                        others_down
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                self.done(
                    name,
                    "quorum",
                    format!(
                        "no other server's API answered ({why}); every other server's K3s \
                         service runs"
                    ),
                    t,
                );
            }
        }
        Ok(())
    }

    async fn act(
        &self,
        node: &RotateNode,
        t: &dyn Transport,
        action: &Action,
    ) -> Result<Option<StartedAt>, RollFailure> {
        let unit = unit_of(node.kind);
        let fail = |step: &str, error: String, journal: Option<String>| RollFailure {
            node: node.name.clone(),
            step: step.into(),
            error,
            journal,
        };
        match action {
            Action::RotateCertificates { services } => {
                let s = Instant::now();
                let stop = ExecRequest::new(format!("systemctl stop {unit}"))
                    .sudo(true)
                    .timeout(Some(self.timeout))
                    .describe(format!("stopping {unit}"));
                t.exec_checked(stop)
                    .await
                    .map_err(|e| fail("stop", e.to_string(), None))?;
                self.done(&node.name, "stop", format!("{unit} stopped"), s);
                let s = Instant::now();
                let command = rotate_command(services);
                let rotate = ExecRequest::new(format!("{command} 2>&1"))
                    .sudo(true)
                    .timeout(Some(QUICK))
                    .describe("rotating K3s's certificates");
                let out = t.exec(rotate).await;
                let ok = matches!(&out, Ok(o) if o.success());
                if !ok {
                    let said = match out {
                        Ok(o) => o.stdout_text().trim().to_string(),
                        Err(e) => e.to_string(),
                    };
                    // Start K3s again with its old certificates rather than leave it down.
                    let _ = start_and_wait(t, unit, false, self.timeout).await;
                    return Err(fail("rotate", format!("`{command}` failed: {said}"), None));
                }
                self.done(&node.name, "rotate", format!("`{command}`"), s);
                let s = Instant::now();
                let started = start_and_wait(t, unit, false, self.timeout)
                    .await
                    .map_err(|e| fail("start", e.headline(), e.journal().map(str::to_string)))?;
                self.done(&node.name, "start", format!("{unit} started"), s);
                Ok(started)
            }
            Action::RewriteEnv { path, content } => {
                let s = Instant::now();
                t.write_file(Path::new(path), content.expose().as_bytes(), ENV_FILE_MODE)
                    .await
                    .map_err(|e| fail("write", e.to_string(), None))?;
                self.done(&node.name, "write", format!("{path} rewritten"), s);
                let s = Instant::now();
                let started = start_and_wait(t, unit, true, self.timeout)
                    .await
                    .map_err(|e| fail("restart", e.headline(), e.journal().map(str::to_string)))?;
                self.done(&node.name, "restart", format!("{unit} restarted"), s);
                Ok(started)
            }
        }
    }

    /// After the start: Ready as posted by the new process; servers of several: a voter again
    /// with every member healthy.
    async fn back(
        &self,
        node: &RotateNode,
        t: &dyn Transport,
        started: Option<StartedAt>,
    ) -> Result<(), RollFailure> {
        let s = Instant::now();
        let deadline = s + self.timeout;
        let unit = unit_of(node.kind);
        let fail_journal = |step: &'static str, error: String| async move {
            RollFailure {
                node: node.name.clone(),
                step: step.into(),
                error,
                journal: Some(journal_tail(t, unit).await),
            }
        };
        // A server is asked through itself first: its certificates are the fresh ones.
        let mut order: Vec<&str> = Vec::new();
        if node.kind == NodeKind::Server {
            order.push(&node.name);
        }
        order.extend(
            self.servers
                .iter()
                .map(String::as_str)
                .filter(|s| *s != node.name),
        );
        let api = loop {
            let last = match self.api_via(order.iter().copied()).await {
                Ok((_, api)) => break api,
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(fail_journal(
                    "wait-ready",
                    format!(
                        "the API did not answer within {}s: {last}",
                        self.timeout.as_secs()
                    ),
                )
                .await);
            }
            tokio::time::sleep(POLL).await;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) =
            wait_node_ready_after(&api.client, &node.name, started, Poll::new(POLL, left)).await
        {
            return Err(fail_journal("wait-ready", e.to_string()).await);
        }
        self.done(&node.name, "wait-ready", "Ready", s);
        if node.kind != NodeKind::Server || !self.is_ha() {
            return Ok(());
        }
        let s = Instant::now();
        let servers: Vec<&str> = self.servers.iter().map(String::as_str).collect();
        loop {
            let verdict = match self.look(&api).await {
                Ok(look) => check_quorum(&EtcdState {
                    servers: &servers,
                    nodes: &look.nodes,
                    members: look.members.as_deref(),
                    stopped: &look.stopped,
                })
                .map_err(|r| r.to_string()),
                Err(e) => Err(e),
            };
            match verdict {
                Ok(()) => break,
                Err(why) if Instant::now() >= deadline => {
                    return Err(fail_journal(
                        "wait-voter",
                        format!(
                            "not every server was a healthy voting member again within {}s:\n{why}",
                            self.timeout.as_secs()
                        ),
                    )
                    .await);
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
        self.done(
            &node.name,
            "wait-voter",
            format!(
                "a voting etcd member again; all {} members are healthy voters",
                servers.len()
            ),
            s,
        );
        Ok(())
    }

    /// Runs `order` one node at a time (`label` says what happens, in the progress output);
    /// `action` says what each node gets. Stops at the first
    /// failure (the nodes after it are left as they are).
    pub async fn run(
        &self,
        order: &[RotateNode],
        label: &str,
        action: impl Fn(&RotateNode) -> Action,
    ) -> Result<Vec<RolledNode>, (Vec<RolledNode>, RollFailure)> {
        let mut done = Vec::new();
        for node in order {
            let s = Instant::now();
            let result = async {
                let t = self.transport(&node.name)?.clone();
                let kind = match node.kind {
                    NodeKind::Server => "server",
                    NodeKind::Agent => "agent",
                };
                self.say(
                    &node.name,
                    "rotate",
                    EventKind::Start,
                    format!("{label} ({kind})"),
                );
                if node.kind == NodeKind::Server && self.is_ha() {
                    self.quorum_before(&node.name).await?;
                }
                let started = self.act(node, t.as_ref(), &action(node)).await?;
                self.back(node, t.as_ref(), started).await
            }
            .await;
            if let Err(failure) = result {
                self.say(&node.name, &failure.step, EventKind::Failed, &failure.error);
                return Err((done, failure));
            }
            let round = (s.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            done.push(RolledNode {
                name: node.name.clone(),
                seconds: round,
            });
        }
        Ok(done)
    }
}

/// Pure: the rotate command run on a node.
pub fn rotate_command(services: &[String]) -> String {
    if services.is_empty() {
        format!("{BINARY_PATH} certificate rotate")
    } else {
        format!(
            "{BINARY_PATH} certificate rotate --service {}",
            services.join(",")
        )
    }
}

/// Whether `unit` is active on the host.
pub async fn service_active(t: &dyn Transport, unit: &str) -> bool {
    let req = ExecRequest::new(format!("systemctl is-active {unit}"))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe(format!("checking {unit}"));
    t.exec(req)
        .await
        .is_ok_and(|out| out.stdout_text().trim() == "active")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotate_command_passes_the_services() {
        assert_eq!(rotate_command(&[]), "/usr/local/bin/k3s certificate rotate");
        assert_eq!(
            rotate_command(&["admin".into(), "api-server".into()]),
            "/usr/local/bin/k3s certificate rotate --service admin,api-server"
        );
    }
}
