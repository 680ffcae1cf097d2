//! `k3sctl check`'s judgement, pure: what was observed of the cluster → one result per check,
//! problems first, each problem with a hint.
//!
//! The node and pod judgements are the upgrade gate's (`plan::upgrade::gate`: a node NotReady
//! within its grace period and a Pending pod are *settling*, CrashLoopBackOff or a node NotReady
//! for longer are *failing*) and the etcd judgement is the upgrade's quorum check
//! (`plan::upgrade::quorum::check_quorum`): one implementation for the upgrade's gates and for
//! `check`.

pub mod certs;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::kube::{EtcdMember, NodeInfo, PodHealth};
use crate::plan::upgrade::gate::judge_node;
use crate::plan::upgrade::quorum::{EtcdState, check_quorum};
pub use certs::{CertObservation, CertOwner, CertRow, cert_results, cert_rows};

/// How a check came out, in the order problems are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Wrong now, and waiting will not fix it.
    Fail,
    /// Not there yet but on its way (`--wait` waits for it); unhealthy without `--wait`.
    Settling,
    /// Healthy, but worth knowing (a certificate K3s will renew at its next start).
    Warn,
    /// Healthy.
    Ok,
}

impl Status {
    /// Whether this result makes the cluster unhealthy.
    pub fn is_problem(self) -> bool {
        matches!(self, Self::Fail | Self::Settling)
    }

    /// The word in the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fail => "FAIL",
            Self::Settling => "SETTLING",
            Self::Warn => "warn",
            Self::Ok => "ok",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check (`node-ready`, `readyz`, `etcd`, `pods`, `certificate`, ...).
    pub check: String,
    /// What it looked at (a node, a host, a pod, a file).
    pub subject: String,
    /// How it came out.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do about it (problems and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl CheckResult {
    fn new(check: &str, subject: impl Into<String>, status: Status, detail: String) -> Self {
        Self {
            check: check.into(),
            subject: subject.into(),
            status,
            detail,
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `check subject`, the name a failing check is reported under.
    pub fn name(&self) -> String {
        format!("{} {}", self.check, self.subject)
    }
}

/// What `check` observed (gathered by `ops::check`).
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Unix seconds at the observation.
    pub now: i64,
    /// The spec's servers, in spec order.
    pub servers: Vec<String>,
    /// The spec's agents, in spec order.
    pub agents: Vec<String>,
    /// The version the spec pins (`k3s.version`); `None` when it follows a channel.
    pub version: Option<K3sVersion>,
    /// Hosts that could not be reached, with why.
    pub unreachable: Vec<(String, String)>,
    /// Each reachable server's own /readyz: `Ok(body)` or why it could not be asked.
    pub readyz: Vec<(String, Result<String, String>)>,
    /// Each reachable host's K3s service state (`systemctl is-active`: `active`, `inactive`,
    /// `failed`, `activating`): a stopped service is seen at once, while its Node stays Ready
    /// for the node-monitor grace period (40 s).
    pub services: Vec<(String, String)>,
    /// Every Node.
    pub nodes: Vec<NodeInfo>,
    /// The pods that are not healthy in the namespaces looked at.
    pub pods: Vec<PodHealth>,
    /// The namespaces looked at, for the message (`kube-system`, `all namespaces`).
    pub namespaces: String,
    /// etcd's member list (`/db/info`) when the server the API went through answered it.
    pub etcd_members: Option<Vec<EtcdMember>>,
    /// The certificates read on the hosts and from the exports.
    pub certs: Vec<CertObservation>,
    /// How long a NotReady node is given before it is failing (`upgrade.nodeReadyTimeout`).
    pub grace_secs: u64,
    /// The server whose API answered (the first in spec order whose `/readyz` answers).
    pub api_server: Option<String>,
    /// Why the API did not answer through any server; the node, pod and etcd checks are then
    /// not judged.
    pub api_error: Option<String>,
}

/// Pure: every check's result, problems first (fail, settling, warn, ok), then by check and
/// subject.
pub fn evaluate(obs: &Observation) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for (host, why) in &obs.unreachable {
        results.push(
            CheckResult::new("host", host, Status::Fail, format!("unreachable: {why}"))
                .hint("check that the host is up and reachable over its transport"),
        );
    }
    readyz_results(obs, &mut results);
    service_results(obs, &mut results);
    if let Some(why) = &obs.api_error {
        let servers = obs.servers.join(",");
        let on = match obs.servers.as_slice() {
            [one] => one.clone(),
            _ => format!("any of {}", obs.servers.join(", ")),
        };
        results.push(
            CheckResult::new(
                "api",
                &servers,
                Status::Fail,
                format!("the Kubernetes API does not answer: {}", one_line(why)),
            )
            .hint(format!(
                "nodes, pods and etcd were not checked; is K3s running on {on}?"
            )),
        );
    } else {
        if let Some(server) = &obs.api_server {
            results.push(CheckResult::new(
                "api",
                server,
                Status::Ok,
                format!("answers through {server}"),
            ));
        }
        node_results(obs, &mut results);
        etcd_results(obs, &mut results);
        pod_results(obs, &mut results);
    }
    results.extend(cert_results(&obs.certs, obs.now));
    results.sort_by(|a, b| (a.status, &a.check, &a.subject).cmp(&(b.status, &b.check, &b.subject)));
    results
}

/// Pure: the names of the checks that make the cluster unhealthy.
pub fn failing(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.status.is_problem())
        .map(CheckResult::name)
        .collect()
}

fn readyz_results(obs: &Observation, results: &mut Vec<CheckResult>) {
    for (server, answer) in &obs.readyz {
        results.push(match answer {
            Ok(body) if body.trim() == "ok" => {
                CheckResult::new("readyz", server, Status::Ok, "ok".into())
            }
            Ok(body) => CheckResult::new(
                "readyz",
                server,
                Status::Fail,
                format!("/readyz answered: {}", one_line(body)),
            )
            .hint(format!(
                "see `kubectl get --raw '/readyz?verbose'` and `journalctl -u k3s` on {server}"
            )),
            Err(why) => CheckResult::new(
                "readyz",
                server,
                Status::Fail,
                format!("the API server does not answer: {}", one_line(why)),
            )
            .hint(format!(
                "is K3s running on {server}? `systemctl status k3s`"
            )),
        });
    }
}

fn service_results(obs: &Observation, results: &mut Vec<CheckResult>) {
    for (host, state) in &obs.services {
        let unit = if obs.servers.contains(host) {
            "k3s"
        } else {
            "k3s-agent"
        };
        let status = match state.as_str() {
            "active" => continue,
            "activating" | "reloading" => Status::Settling,
            _ => Status::Fail,
        };
        results.push(
            CheckResult::new(
                "service",
                host,
                status,
                format!(
                    "{unit} is {}",
                    if state.is_empty() { "unknown" } else { state }
                ),
            )
            .hint(format!(
                "on {host}: `systemctl start {unit}`, and `journalctl -u {unit}` for why it stopped"
            )),
        );
    }
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line
    }
}

fn node_results(obs: &Observation, results: &mut Vec<CheckResult>) {
    let spec_hosts: Vec<(&str, &str)> = obs
        .servers
        .iter()
        .map(|s| (s.as_str(), "k3s"))
        .chain(obs.agents.iter().map(|a| (a.as_str(), "k3s-agent")))
        .collect();
    for &(host, unit) in &spec_hosts {
        let Some(node) = obs.nodes.iter().find(|n| n.name == host) else {
            results.push(
                CheckResult::new(
                    "node",
                    host,
                    Status::Fail,
                    "no Node object: not part of the cluster".into(),
                )
                .hint("run `k3sctl apply` to install and join it"),
            );
            continue;
        };
        results.push(match judge_node(node, obs.now, obs.grace_secs) {
            None => CheckResult::new("node", host, Status::Ok, node.describe()),
            Some((stuck, problem)) => CheckResult::new(
                "node",
                host,
                if stuck {
                    Status::Fail
                } else {
                    Status::Settling
                },
                problem,
            )
            .hint(format!(
                "on {host}: `systemctl status {unit}` and `journalctl -u {unit}`"
            )),
        });
        if let Some(version) = &obs.version {
            let wanted = version.to_string();
            if node.kubelet_version != wanted {
                results.push(
                    CheckResult::new(
                        "version",
                        host,
                        Status::Fail,
                        format!("runs {}, the spec says {wanted}", node.kubelet_version),
                    )
                    .hint("`k3sctl upgrade` (or `k3sctl apply`) brings it to the spec's version"),
                );
            }
        }
        for pressure in &node.pressure {
            results.push(
                CheckResult::new("pressure", host, Status::Fail, pressure.clone()).hint(format!(
                    "free disk or memory on {host}; the kubelet evicts pods"
                )),
            );
        }
    }
    for node in &obs.nodes {
        if !spec_hosts.iter().any(|&(h, _)| h == node.name) {
            results.push(
                CheckResult::new(
                    "unknown-node",
                    &node.name,
                    Status::Fail,
                    format!("a Node the spec does not know ({})", node.describe()),
                )
                .hint(format!(
                    "add the host to the spec, or, if it is gone for good, `kubectl delete node {}`",
                    node.name
                )),
            );
        }
    }
}

fn etcd_results(obs: &Observation, results: &mut Vec<CheckResult>) {
    if obs.servers.len() < 2 {
        return;
    }
    let servers: Vec<&str> = obs.servers.iter().map(String::as_str).collect();
    let state = EtcdState {
        servers: &servers,
        nodes: &obs.nodes,
        members: obs.etcd_members.as_deref(),
        stopped: &[],
    };
    let quorum = servers.len() / 2 + 1;
    results.push(match check_quorum(&state) {
        Ok(()) => CheckResult::new(
            "etcd",
            "cluster",
            Status::Ok,
            format!(
                "{n} voting members, no learner, quorum {quorum} of {n}{}",
                if obs.etcd_members.is_none() {
                    " (Node view; etcd's member list not answered)"
                } else {
                    ""
                },
                n = servers.len()
            ),
        ),
        Err(risk) => {
            let state = if risk.lost() {
                "QUORUM LOST"
            } else {
                "quorum holds"
            };
            CheckResult::new(
                "etcd",
                "cluster",
                Status::Fail,
                format!(
                    "{state}: {} of {} healthy voters (needs {}); {}",
                    risk.healthy,
                    risk.members,
                    risk.quorum(),
                    risk.problems.join("; ")
                ),
            )
            .hint(
                "a learner turns voter on its own within minutes; a server down or missing: \
                 start it or `k3sctl apply`; never restart another server meanwhile",
            )
        }
    });
}

fn pod_results(obs: &Observation, results: &mut Vec<CheckResult>) {
    let mut any = false;
    for pod in &obs.pods {
        let (status, problem) = match pod {
            PodHealth::Healthy => continue,
            PodHealth::Settling(p) => (Status::Settling, p),
            PodHealth::Stuck(p) => (Status::Fail, p),
        };
        any = true;
        let (subject, detail) = problem
            .split_once(": ")
            .map(|(s, d)| (s.to_string(), d.to_string()))
            .unwrap_or_else(|| (problem.clone(), String::new()));
        let hint = if status == Status::Settling {
            "still starting: `k3sctl check --wait 60s` waits for it".to_string()
        } else {
            format!(
                "`kubectl describe pod -n {}` and `kubectl logs`",
                subject.replacen('/', " ", 1)
            )
        };
        results.push(CheckResult::new("pod", subject, status, detail).hint(hint));
    }
    if !any {
        results.push(CheckResult::new(
            "pods",
            obs.namespaces.clone(),
            Status::Ok,
            "every pod Running or Completed".into(),
        ));
    }
}
