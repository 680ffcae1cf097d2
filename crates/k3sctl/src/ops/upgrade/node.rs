//! One node's upgrade: cordon (marked as k3sctl's), drain, deliver the binary (skipped when the
//! host has it), restart, wait Ready at the new version (servers: and /readyz), uncordon only
//! what k3sctl cordoned.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::context::{NodeOutcome, NodeRecord, Rollout, Stopwatch};
use super::error::NodeFailure;
use super::quorum;
use super::recover::MARKER_PATH;
use super::stage::swap_in;
use crate::host::{ExecRequest, Transport};
use crate::k3s::config::NodeRole;
use crate::k3s::unit::{BINARY_PATH, unit_name};
use crate::kube::{
    CORDONED_FOR, CordonOutcome, DrainOptions, DrainRules, Poll, UncordonOutcome, cordon,
    drain_node, readyz, uncordon_if_ours, wait_node_ready,
};
use crate::plan::upgrade::quorum::{check_quorum, may_take_down, server_back};
use crate::plan::upgrade::{NodeAction, NodeKind, PlannedNode};
use crate::run::EventKind;
use crate::run::service::{journal_tail, start_and_wait};

const API_POLL: Duration = Duration::from_millis(250);

/// The value of k3sctl's cordon annotation for an upgrade to `target`.
pub fn cordon_reason(target: &crate::k3s::version::K3sVersion) -> String {
    format!("upgrade to {target}")
}

fn unit_for(kind: NodeKind) -> &'static str {
    unit_name(match kind {
        NodeKind::Server => NodeRole::Server,
        NodeKind::Agent => NodeRole::Agent,
    })
}

struct NodeRun<'r, 'a> {
    rollout: &'r Rollout<'a>,
    node: &'r PlannedNode,
    transport: std::sync::Arc<dyn Transport>,
    watch: Stopwatch,
    notes: Vec<String>,
}

impl NodeRun<'_, '_> {
    fn fail(&self, step: &str, error: String, journal: Option<String>) -> NodeFailure {
        self.rollout
            .say(&self.node.name, step, EventKind::Failed, error.clone());
        NodeFailure {
            node: self.node.name.clone(),
            step: step.to_string(),
            error,
            journal,
        }
    }

    async fn fail_with_journal(&self, step: &str, error: String) -> NodeFailure {
        let text = journal_tail(self.transport.as_ref(), unit_for(self.node.kind)).await;
        self.fail(step, error, Some(text))
    }

    fn done(&self, step: &str, message: String, since: Instant) {
        self.rollout.reporter.report(
            crate::run::Event::new(&self.node.name, step, EventKind::Done, message)
                .took(since.elapsed()),
        );
    }

    async fn cordon(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let client = &self.rollout.cluster.api.client;
        let reason = cordon_reason(&self.node.to);
        let outcome = cordon(client, &self.node.name, &reason)
            .await
            .map_err(|e| self.fail("cordon", e.to_string(), None))?;
        let message = match outcome {
            CordonOutcome::Cordoned => format!("cordoned ({CORDONED_FOR} set)"),
            CordonOutcome::AlreadyOurs => "already cordoned by an earlier k3sctl run".to_string(),
            CordonOutcome::CordonedByOthers => {
                self.notes
                    .push("stays cordoned: it was cordoned before the upgrade".into());
                "was already cordoned by someone else: it stays cordoned afterwards".to_string()
            }
        };
        self.done("cordon", message, t);
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let policy = &self.rollout.policy;
        let options = DrainOptions {
            rules: DrainRules {
                delete_emptydir_data: policy.delete_empty_dir_data,
                force: policy.force,
            },
            disable_eviction: policy.disable_eviction,
            timeout: policy.drain_timeout.to_std(),
            interval: Duration::from_millis(500),
            grace_period_seconds: None,
        };
        if policy.disable_eviction {
            self.rollout.say(
                &self.node.name,
                "drain",
                EventKind::Info,
                "disableEviction: deleting pods instead of evicting them, which bypasses \
                 PodDisruptionBudgets",
            );
        }
        let result = drain_node(&self.rollout.cluster.api.client, &self.node.name, &options).await;
        self.watch.waited(t.elapsed());
        let report = result.map_err(|e| self.fail("drain", e.to_string(), None))?;
        self.done(
            "drain",
            format!(
                "drained: {} pod(s) {}, {} left in place",
                report.plan.evict.len(),
                if report.bypassed_pdbs {
                    "deleted"
                } else {
                    "evicted"
                },
                report.plan.skip.len()
            ),
            t,
        );
        Ok(())
    }

    fn local_binary(&self) -> Result<(PathBuf, String), NodeFailure> {
        let arch = self.rollout.archs.get(&self.node.name).copied();
        arch.and_then(|a| {
            self.rollout
                .binaries
                .by_arch
                .get(&a)
                .map(|(p, s)| (p.clone(), s.clone()))
        })
        .ok_or_else(|| {
            self.fail(
                "deliver",
                "no binary for this host's architecture".into(),
                None,
            )
        })
    }

    async fn deliver(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let (path, sha) = self.local_binary()?;
        if self.is_first_server() {
            // Remembered on the host: if K3s does not come back, the API is gone too, and the
            // next run finds here that this server was mid-upgrade.
            let marker = format!("from={} to={}\n", self.node.from, self.node.to);
            self.transport
                .write_file(Path::new(MARKER_PATH), marker.as_bytes(), 0o644)
                .await
                .map_err(|e| self.fail("deliver", e.to_string(), None))?;
        }
        let what = swap_in(self.transport.as_ref(), &path, &sha)
            .await
            .map_err(|e| self.fail("deliver", e, None))?;
        self.done("deliver", format!("{BINARY_PATH} {what}"), t);
        Ok(())
    }

    fn is_first_server(&self) -> bool {
        self.node.name == self.rollout.cluster.first_server
    }

    async fn clear_marker(&self) -> Result<(), NodeFailure> {
        if !self.is_first_server() {
            return Ok(());
        }
        let req = ExecRequest::new(format!("rm -f {MARKER_PATH}"))
            .sudo(true)
            .describe("removing the upgrade marker");
        self.transport
            .exec_checked(req)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("wait-ready", e.to_string(), None))
    }

    async fn restart(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let unit = unit_for(self.node.kind);
        let result = start_and_wait(
            self.transport.as_ref(),
            unit,
            true,
            self.rollout.policy.node_ready_timeout.to_std(),
        )
        .await;
        self.watch.waited(t.elapsed());
        if let Err(e) = result {
            let journal = e.journal().map(str::to_string);
            return Err(self.fail("restart", e.headline(), journal));
        }
        self.done("restart", format!("{unit} restarted"), t);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let client = &self.rollout.cluster.api.client;
        let timeout = self.rollout.policy.node_ready_timeout.to_std();
        let version = self.node.to.to_string();
        let result = wait_node_ready(
            client,
            &self.node.name,
            Some(&version),
            Poll::new(API_POLL, timeout),
        )
        .await;
        if let Err(e) = result {
            self.watch.waited(t.elapsed());
            return Err(self.fail_with_journal("wait-ready", e.to_string()).await);
        }
        if self.node.kind == NodeKind::Server {
            loop {
                if self.readyz_ok().await {
                    break;
                }
                if t.elapsed() >= timeout {
                    self.watch.waited(t.elapsed());
                    return Err(self
                        .fail_with_journal(
                            "wait-ready",
                            format!("/readyz did not answer ok within {}s", timeout.as_secs()),
                        )
                        .await);
                }
                tokio::time::sleep(API_POLL).await;
            }
        }
        self.watch.waited(t.elapsed());
        let what = if self.node.kind == NodeKind::Server {
            format!("Ready with kubelet {version}, /readyz ok")
        } else {
            format!("Ready with kubelet {version}")
        };
        self.done("wait-ready", what, t);
        Ok(())
    }

    /// This server's own API server answers `ok` on /readyz: through the tunnel for the first
    /// server, else asked on the server itself (`k3s kubectl get --raw /readyz` with K3s's local
    /// admin kubeconfig), since the tunnel reaches only the first server's API.
    async fn readyz_ok(&self) -> bool {
        if self.is_first_server() {
            return matches!(readyz(&self.rollout.cluster.api.client).await, Ok(true));
        }
        let req = ExecRequest::new(format!("{BINARY_PATH} kubectl get --raw /readyz"))
            .sudo(true)
            .timeout(Some(crate::run::service::QUICK))
            .describe("asking the server's own API for /readyz");
        self.transport
            .exec(req)
            .await
            .is_ok_and(|out| out.stdout_text().trim() == "ok")
    }

    fn is_ha_server(&self) -> bool {
        self.node.kind == NodeKind::Server && self.rollout.cluster.is_ha()
    }

    /// HA: refuses to take this server down unless every other member is a healthy voter.
    async fn check_quorum_before(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let look = quorum::look(self.rollout.cluster)
            .await
            .map_err(|e| self.fail("quorum", e.to_string(), None))?;
        let servers = look.server_names();
        if let Err(risk) = may_take_down(&look.state(&servers), &self.node.name) {
            return Err(self.fail(
                "quorum",
                format!(
                    "not taking this server down: it could lose etcd quorum\n{risk}\n  hint: \
                     bring every server back as a voting member, then re-run"
                ),
                None,
            ));
        }
        self.done(
            "quorum",
            format!(
                "every etcd member is a healthy voter ({} of {})",
                servers.len(),
                servers.len()
            ),
            t,
        );
        Ok(())
    }

    /// HA: waits until this server is back as a voting member and every member is a healthy
    /// voter again, before the next server may go down.
    async fn wait_voter(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let timeout = self.rollout.policy.node_ready_timeout.to_std();
        let servers = self.rollout.cluster.servers();
        loop {
            let risk = match quorum::look(self.rollout.cluster).await {
                Ok(look) => {
                    let names = look.server_names();
                    match check_quorum(&look.state(&names)) {
                        Ok(()) => break,
                        Err(risk) => Some((server_back(&self.node.name, &look.nodes), risk)),
                    }
                }
                Err(_) => None,
            };
            if t.elapsed() >= timeout {
                self.watch.waited(t.elapsed());
                let text = match risk {
                    Some((lacks, risk)) => format!(
                        "the etcd cluster did not have every server back as a voting member \
                         within {}s{}\n{risk}",
                        timeout.as_secs(),
                        lacks.map(|l| format!(" ({l})")).unwrap_or_default()
                    ),
                    None => format!(
                        "the API did not answer within {}s, so etcd's members could not be read",
                        timeout.as_secs()
                    ),
                };
                return Err(self.fail_with_journal("wait-voter", text).await);
            }
            tokio::time::sleep(API_POLL).await;
        }
        self.watch.waited(t.elapsed());
        self.done(
            "wait-voter",
            format!(
                "a voting etcd member again; all {} members are healthy voters",
                servers.len()
            ),
            t,
        );
        Ok(())
    }

    async fn uncordon(&mut self) -> Result<(), NodeFailure> {
        let t = Instant::now();
        let client = &self.rollout.cluster.api.client;
        let outcome = uncordon_if_ours(client, &self.node.name)
            .await
            .map_err(|e| self.fail("uncordon", e.to_string(), None))?;
        let message = match outcome {
            UncordonOutcome::Uncordoned => "uncordoned".to_string(),
            UncordonOutcome::LeftCordoned => "left cordoned: k3sctl did not cordon it".to_string(),
            UncordonOutcome::NotCordoned => "was not cordoned".to_string(),
        };
        self.done("uncordon", message, t);
        Ok(())
    }
}

/// Runs one node's part of the rollout (the batch's health gate is the caller's).
pub async fn run_node(
    rollout: &Rollout<'_>,
    node: &PlannedNode,
) -> Result<NodeRecord, (NodeFailure, NodeRecord)> {
    let transport = match rollout.cluster.transport(&node.name) {
        Ok(t) => t,
        Err(e) => {
            let failure = NodeFailure {
                node: node.name.clone(),
                step: "connect".into(),
                error: e.to_string(),
                journal: None,
            };
            let record = Stopwatch::start().record(&node.name, NodeOutcome::Failed, vec![]);
            return Err((failure, record));
        }
    };
    let mut run = NodeRun {
        rollout,
        node,
        transport,
        watch: Stopwatch::start(),
        notes: Vec::new(),
    };
    let outcome = match &node.action {
        NodeAction::Skip => return Ok(run.watch.record(&node.name, NodeOutcome::Skipped, vec![])),
        NodeAction::Finish => {
            rollout.say(
                &node.name,
                "finish",
                EventKind::Start,
                format!(
                    "already at {}, cordoned by an interrupted run: finishing",
                    node.to
                ),
            );
            NodeOutcome::Finished
        }
        NodeAction::Upgrade { .. } => {
            rollout.say(
                &node.name,
                "upgrade",
                EventKind::Start,
                format!("{} → {}", node.from, node.to),
            );
            NodeOutcome::Upgraded
        }
    };
    let result = steps(&mut run).await;
    match result {
        Ok(()) => Ok(run.watch.record(&node.name, outcome, run.notes.clone())),
        Err(failure) => {
            let record = run
                .watch
                .record(&node.name, NodeOutcome::Failed, run.notes.clone());
            Err((failure, record))
        }
    }
}

async fn steps(run: &mut NodeRun<'_, '_>) -> Result<(), NodeFailure> {
    if let NodeAction::Upgrade { drain, .. } = run.node.action {
        if run.is_ha_server() {
            run.check_quorum_before().await?;
        }
        run.cordon().await?;
        if drain {
            run.drain().await?;
        }
        run.deliver().await?;
        run.restart().await?;
    }
    run.wait_ready().await?;
    if run.is_ha_server() {
        run.wait_voter().await?;
    }
    run.clear_marker().await?;
    run.uncordon().await
}
