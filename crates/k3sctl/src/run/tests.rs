//! Engine tests against fake hosts and a fake API: order, groups, failures, secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::host::{ExecOutput, ExecRequest, HostError, Transport, UploadRequest};
use crate::k3s::config::NodeRole;
use crate::plan::{HostPlan, ObservedNode, Plan, Step};
use crate::secret::Secret;

const TOKEN: &str =
    "K10bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb::server:verysecret";

/// Every call on every fake host, in order: `host: what`.
type Log = Arc<Mutex<Vec<String>>>;

struct FakeHost {
    name: String,
    log: Log,
    broken: bool,
    starts: Mutex<u64>,
}

#[async_trait]
impl Transport for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let ok = |stdout: String| {
            Ok(ExecOutput {
                status: Some(0),
                stdout: stdout.into_bytes(),
                stderr: vec![],
            })
        };
        if req.command.contains("systemctl show") {
            let starts = *self.starts.lock().expect("lock");
            let state = if self.broken && starts > 0 {
                "failed"
            } else {
                "active"
            };
            // The host's clock reads 1000; each start happens 10 s later than the last.
            let started_at = 1_000 + 10 * starts;
            return ok(format!(
                "Now=1000\nActiveState={state}\nExecMainStartTimestampMonotonic={starts}\n\
                 ExecMainStartTimestamp=@{started_at}\n"
            ));
        }
        if req.command.contains("daemon-reload") {
            // Slow enough for hosts running side by side to interleave in the log; a broken
            // host's reload fails.
            self.log
                .lock()
                .expect("lock")
                .push(format!("{}: {}", self.name, req.what()));
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.log
                .lock()
                .expect("lock")
                .push(format!("{}: reloaded", self.name));
            return Ok(ExecOutput {
                status: Some(if self.broken { 1 } else { 0 }),
                stdout: vec![],
                stderr: b"Failed to reload daemon".to_vec(),
            });
        }
        if req.command.starts_with("systemctl is-active") {
            // A broken host's K3s has stopped.
            return ok(if self.broken { "failed\n" } else { "active\n" }.into());
        }
        // A server's own API answers /readyz (the waits of a rollout's non-API servers).
        if req.command.contains("get --raw /readyz") {
            return ok("ok\n".into());
        }
        if req.command.starts_with("journalctl") {
            return ok("level=fatal msg=\"failed to get CA certs: connection refused\"\n".into());
        }
        if req.command.contains("--no-block") {
            *self.starts.lock().expect("lock") += 1;
        }
        self.log
            .lock()
            .expect("lock")
            .push(format!("{}: {}", self.name, req.what()));
        ok(String::new())
    }

    async fn upload(&self, req: UploadRequest) -> Result<(), HostError> {
        self.log.lock().expect("lock").push(format!(
            "{}: upload {}",
            self.name,
            req.remote.display()
        ));
        Ok(())
    }

    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        Ok((path == Path::new(crate::k3s::token::SERVER_TOKEN_PATH))
            .then(|| TOKEN.as_bytes().to_vec()))
    }

    async fn write_file(&self, path: &Path, bytes: &[u8], _mode: u32) -> Result<(), HostError> {
        let text = String::from_utf8_lossy(bytes);
        let mut log = self.log.lock().expect("lock");
        log.push(format!(
            "{}: write {} token={}",
            self.name,
            path.display(),
            text.contains("verysecret")
        ));
        Ok(())
    }
}

struct FakeApi {
    log: Log,
}

/// Servers of the fake cluster: each Node Ready and an etcd voter (a server whose K3s stopped
/// a moment ago still looks like this).
const FAKE_SERVERS: [&str; 5] = ["s1", "s2", "s3", "gone", "refuse-s2"];

#[async_trait]
impl ClusterApi for FakeApi {
    async fn node_infos(&self) -> Result<Vec<crate::kube::NodeInfo>, ApiError> {
        Ok(FAKE_SERVERS
            .iter()
            .map(|name| {
                let mut n = crate::kube::NodeInfo {
                    name: (*name).into(),
                    ready: true,
                    etcd_voter: Some(crate::kube::Condition {
                        status: true,
                        detail: None,
                    }),
                    ..crate::kube::NodeInfo::default()
                };
                n.labels
                    .insert(crate::kube::ETCD_ROLE_LABEL.into(), "true".into());
                n
            })
            .collect())
    }
    async fn etcd_members(&self) -> Result<Option<Vec<crate::kube::EtcdMember>>, ApiError> {
        Ok(None)
    }
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError> {
        Ok(vec![])
    }
    async fn readyz(&self) -> Result<(), ApiError> {
        Ok(())
    }
    async fn enforce_taints(
        &self,
        name: &str,
        wanted: &[String],
        adopt: bool,
    ) -> Result<Vec<String>, ApiError> {
        let mut log = self.log.lock().expect("lock");
        log.push(format!("{name}: taints {} adopt={adopt}", wanted.join(",")));
        Ok(vec![])
    }
    async fn enforce_labels(
        &self,
        name: &str,
        wanted: &BTreeMap<String, String>,
        adopt: bool,
    ) -> Result<(), ApiError> {
        let pairs: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut log = self.log.lock().expect("lock");
        log.push(format!("{name}: labels {} adopt={adopt}", pairs.join(",")));
        Ok(())
    }
    async fn wait_node_ready(
        &self,
        name: &str,
        started_at: Option<crate::kube::StartedAt>,
        _timeout: Duration,
    ) -> Result<(), ApiError> {
        let started_at = started_at.map(|s| s.second);
        self.log.lock().expect("lock").push(format!(
            "{name}: wait for Ready posted after {started_at:?}"
        ));
        // Long enough for hosts running side by side to interleave in the log.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: ready"));
        Ok(())
    }
    async fn delete_node_password(&self, name: &str) -> Result<bool, ApiError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: delete node password"));
        Ok(true)
    }
    async fn wait_etcd_voter(&self, name: &str, _timeout: Duration) -> Result<(), ApiError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: voter"));
        Ok(())
    }
    async fn cordon(
        &self,
        name: &str,
        reason: &str,
    ) -> Result<crate::kube::CordonOutcome, ApiError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: cordon for {reason}"));
        Ok(crate::kube::CordonOutcome::Cordoned)
    }
    async fn leave_etcd(&self, name: &str, _timeout: Duration) -> Result<String, ApiError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: leave etcd"));
        if name.starts_with("refuse") {
            return Err(ApiError("it would lose quorum".into()));
        }
        Ok("member removed".into())
    }
    async fn delete_node(&self, name: &str, _timeout: Duration) -> Result<String, ApiError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{name}: delete node"));
        Ok("deleted".into())
    }
}

struct FakeConnector {
    log: Log,
}

#[async_trait]
impl ApiConnector for FakeConnector {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        Ok(Arc::new(FakeApi {
            log: Arc::clone(&self.log),
        }))
    }
}

fn env_step(role: NodeRole, with_token: bool) -> Step {
    Step::WriteFile {
        path: crate::k3s::unit::env_path(role),
        mode: 0o600,
        diff: String::new(),
        create: true,
        content: crate::plan::FileContent::Env {
            url: None,
            with_token,
            cluster_init: false,
        },
    }
}

fn host(name: &str, group: Option<&str>, first: bool) -> HostPlan {
    let role = if first {
        NodeRole::Server
    } else {
        NodeRole::Agent
    };
    let mut steps = vec![
        Step::UploadBinary {
            version: "v1.33.5+k3s1".parse().expect("v"),
            installed: None,
            sha256: "a".repeat(64),
        },
        env_step(role, !first),
        Step::Start { join: !first },
    ];
    if first {
        steps.push(Step::WaitServerReady);
    }
    steps.push(Step::WaitNodeReady);
    HostPlan {
        host: name.into(),
        role,
        group: group.map(str::to_string),
        first_server: first,
        in_cluster: false,
        steps,
    }
}

async fn run(plan: &Plan, broken: &[&str]) -> (RunSummary, Vec<String>, Arc<MemoryReporter>) {
    run_with(plan, broken, RunOptions::default()).await
}

async fn run_with(
    plan: &Plan,
    broken: &[&str],
    options: RunOptions,
) -> (RunSummary, Vec<String>, Arc<MemoryReporter>) {
    let log: Log = Arc::default();
    let broken: BTreeSet<&str> = broken.iter().copied().collect();
    let transports: BTreeMap<String, Arc<dyn Transport>> = plan
        .hosts
        .iter()
        .map(|h| {
            let fake = FakeHost {
                name: h.host.clone(),
                log: Arc::clone(&log),
                broken: broken.contains(h.host.as_str()),
                starts: Mutex::new(0),
            };
            (h.host.clone(), Arc::new(fake) as Arc<dyn Transport>)
        })
        .collect();
    let binaries = plan
        .hosts
        .iter()
        .map(|h| (h.host.clone(), "/bin/true".into()))
        .collect();
    let reporter = Arc::new(MemoryReporter::default());
    let options = RunOptions {
        node_ready_timeout: Duration::from_secs(2),
        ..options
    };
    let shared = Shared::new(
        binaries,
        reporter.clone(),
        options,
        Arc::new(FakeConnector {
            log: Arc::clone(&log),
        }),
        None,
    );
    let summary = execute(plan, &transports, &shared).await;
    let lines = log.lock().expect("lock").clone();
    (summary, lines, reporter)
}

fn plan(hosts: Vec<HostPlan>) -> Plan {
    Plan {
        cluster: "lab".into(),
        version: "v1.33.5+k3s1".parse().expect("v"),
        datastore: crate::plan::DatastoreAction::Keep,
        critical: BTreeMap::new(),
        hosts,
        exports: vec![],
        drift: vec![],
    }
}

fn position(lines: &[String], wanted: &str) -> usize {
    lines
        .iter()
        .position(|l| l == wanted)
        .unwrap_or_else(|| panic!("{wanted} not in {lines:#?}"))
}

#[tokio::test]
async fn first_server_ready_before_any_agent_starts_and_token_reaches_agents() {
    let p = plan(vec![
        host("s1", None, true),
        host("a1", Some("g1"), false),
        host("a2", Some("g2"), false),
    ]);
    let (summary, lines, _) = run(&p, &[]).await;
    assert!(summary.success(), "{}", summary.render());
    let server_ready = position(&lines, "s1: ready");
    for agent in ["a1", "a2"] {
        let start = position(&lines, &format!("{agent}: starting k3s-agent"));
        assert!(
            start > server_ready,
            "{agent} started before the server was ready: {lines:#?}"
        );
        position(
            &lines,
            &format!("{agent}: write /etc/systemd/system/k3s-agent.service.env token=true"),
        );
    }
    position(
        &lines,
        "s1: write /etc/systemd/system/k3s.service.env token=false",
    );
    assert_eq!(summary.changes(), 9);
}

#[tokio::test]
async fn a_failing_host_stops_its_group_only() {
    let p = plan(vec![
        host("s1", None, true),
        host("a1", Some("g1"), false),
        host("a3", Some("g1"), false),
        host("a2", Some("g2"), false),
    ]);
    let (summary, lines, reporter) = run(&p, &["a1"]).await;
    let status = |name: &str| {
        summary
            .hosts
            .iter()
            .find(|h| h.host == name)
            .map(|h| h.status.clone())
    };
    match status("a1") {
        Some(HostStatus::Failed { step, hint, error }) => {
            assert_eq!(step, "start");
            assert!(error.contains("failed to get CA certs"), "{error}");
            assert!(hint.is_some_and(|h| h.contains("registrationAddress")));
        }
        other => panic!("a1: {other:?}"),
    }
    assert!(
        matches!(status("a3"), Some(HostStatus::Skipped { reason }) if reason == "a1 failed in group g1")
    );
    assert!(matches!(status("a2"), Some(HostStatus::Ok { .. })));
    assert!(!lines.iter().any(|l| l.starts_with("a3: starting")));
    let events = reporter.events.lock().expect("lock");
    let json = serde_json::to_string(&*events).expect("json");
    assert!(!json.contains("verysecret"), "token leaked into events");
}

/// The log positions of `agent`'s start and of its Ready.
fn start_and_ready(lines: &[String], agent: &str) -> (usize, usize) {
    (
        position(lines, &format!("{agent}: starting k3s-agent")),
        position(lines, &format!("{agent}: ready")),
    )
}

fn one_group(agents: &[&str]) -> Plan {
    let mut hosts = vec![host("s1", None, true)];
    hosts.extend(agents.iter().map(|a| host(a, Some("g1"), false)));
    plan(hosts)
}

#[tokio::test]
async fn agents_of_a_group_join_one_at_a_time_by_default() {
    let (summary, lines, _) = run(&one_group(&["a1", "a2", "a3"]), &[]).await;
    assert!(summary.success(), "{}", summary.render());
    for (before, after) in [("a1", "a2"), ("a2", "a3")] {
        let (_, ready) = start_and_ready(&lines, before);
        let (start, _) = start_and_ready(&lines, after);
        assert!(
            start > ready,
            "{after} started before {before} was Ready: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn join_concurrency_lets_a_few_agents_of_a_group_join_at_once() {
    let options = RunOptions {
        join_concurrency: [("g1".to_string(), 2)].into(),
        ..Default::default()
    };
    let p = one_group(&["a1", "a2", "a3", "a4"]);
    let (summary, lines, _) = run_with(&p, &[], options).await;
    assert!(summary.success(), "{}", summary.render());
    let [a1, a2, a3, a4] = ["a1", "a2", "a3", "a4"].map(|a| start_and_ready(&lines, a));
    // a1 and a2 run side by side; a3 waits for one of them, a4 for the next.
    assert!(
        a2.0 < a1.1 && a1.0 < a2.1,
        "a1 and a2 did not overlap: {lines:#?}"
    );
    assert!(
        a3.0 > a1.1.min(a2.1),
        "a3 started with two running: {lines:#?}"
    );
    let mut readies = [a1.1, a2.1, a3.1];
    readies.sort_unstable();
    assert!(a4.0 > readies[1], "a4 started with two running: {lines:#?}");
    // The server is alone before any agent, whatever the concurrency.
    let server_ready = position(&lines, "s1: ready");
    assert!([a1.0, a2.0, a3.0, a4.0].iter().all(|&s| s > server_ready));
}

#[tokio::test]
async fn join_concurrency_never_restarts_two_running_nodes_of_a_group_at_once() {
    let options = RunOptions {
        join_concurrency: [("g1".to_string(), 3)].into(),
        ..Default::default()
    };
    let mut p = one_group(&["a1", "a2", "a3"]);
    for h in p.hosts.iter_mut().filter(|h| h.host != "s1") {
        h.in_cluster = true;
    }
    let (summary, lines, _) = run_with(&p, &[], options).await;
    assert!(summary.success(), "{}", summary.render());
    for (before, after) in [("a1", "a2"), ("a2", "a3")] {
        let (_, ready) = start_and_ready(&lines, before);
        let (start, _) = start_and_ready(&lines, after);
        assert!(
            start > ready,
            "{after} went down before {before} was back: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn the_default_applies_to_groups_without_their_own_setting() {
    let options = RunOptions {
        join_concurrency: [("g2".to_string(), 1)].into(),
        default_join_concurrency: 3,
        ..Default::default()
    };
    let mut p = one_group(&["a1", "a2", "a3"]);
    p.hosts.push(host("b1", Some("g2"), false));
    p.hosts.push(host("b2", Some("g2"), false));
    let (summary, lines, _) = run_with(&p, &[], options).await;
    assert!(summary.success(), "{}", summary.render());
    let [a1, a2, a3] = ["a1", "a2", "a3"].map(|a| start_and_ready(&lines, a));
    let first_ready = a1.1.min(a2.1).min(a3.1);
    assert!(
        a1.0 < first_ready && a2.0 < first_ready && a3.0 < first_ready,
        "g1 did not start its three agents at once: {lines:#?}"
    );
    let (b1, b2) = (start_and_ready(&lines, "b1"), start_and_ready(&lines, "b2"));
    assert!(b2.0 > b1.1, "g2 kept its own limit of 1: {lines:#?}");
}

#[tokio::test]
async fn with_concurrency_a_failure_lets_running_hosts_finish_and_skips_the_rest() {
    let options = RunOptions {
        join_concurrency: [("g1".to_string(), 2)].into(),
        ..Default::default()
    };
    let (summary, lines, _) = run_with(&one_group(&["a1", "a2", "a3"]), &["a1"], options).await;
    let status = |name: &str| {
        summary
            .hosts
            .iter()
            .find(|h| h.host == name)
            .map(|h| h.status.clone())
    };
    assert!(matches!(status("a1"), Some(HostStatus::Failed { .. })));
    assert!(
        matches!(status("a2"), Some(HostStatus::Ok { .. })),
        "{:?}",
        status("a2")
    );
    assert!(
        matches!(status("a3"), Some(HostStatus::Skipped { reason }) if reason == "a1 failed in group g1")
    );
    assert!(!lines.iter().any(|l| l.starts_with("a3: starting")));
}

#[tokio::test]
async fn first_server_failure_skips_everyone() {
    let p = plan(vec![host("s1", None, true), host("a1", Some("g1"), false)]);
    let (summary, lines, _) = run(&p, &["s1"]).await;
    assert!(matches!(summary.hosts[0].status, HostStatus::Failed { .. }));
    assert!(
        matches!(&summary.hosts[1].status, HostStatus::Skipped { reason } if reason == "the first server failed")
    );
    assert!(!lines.iter().any(|l| l.starts_with("a1: starting")));
}

#[tokio::test]
async fn restarts_of_serving_nodes_never_overlap() {
    let restart = |name: &str, group: &str| HostPlan {
        host: name.into(),
        role: NodeRole::Agent,
        group: Some(group.into()),
        first_server: false,
        in_cluster: true,
        steps: vec![
            Step::Restart {
                reason: "registries.yaml changed".into(),
            },
            Step::WaitNodeReady,
        ],
    };
    let p = plan(vec![
        restart("a1", "g1"),
        restart("a2", "g2"),
        restart("a3", "g3"),
    ]);
    let (summary, lines, _) = run(&p, &[]).await;
    assert!(summary.success());
    // Every restart is followed by its own Ready before the next restart begins.
    let relevant: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("starting") || l.ends_with("ready"))
        .collect();
    for pair in relevant.chunks(2) {
        let host = pair[0].split(':').next().unwrap_or_default();
        assert_eq!(pair[1], &format!("{host}: ready"), "{relevant:#?}");
    }
    assert_eq!(relevant.len(), 6);
    // Each Ready wait refuses posts from before that host's own restart (host clock).
    for name in ["a1", "a2", "a3"] {
        assert!(
            lines.contains(&format!("{name}: wait for Ready posted after Some(1010)")),
            "{lines:#?}"
        );
    }
    let _ = Secret::new("unused");
}

fn config_step(text: &str) -> Step {
    Step::WriteFile {
        path: crate::k3s::config::CONFIG_PATH.into(),
        mode: 0o600,
        diff: String::new(),
        create: true,
        content: crate::plan::FileContent::Plain(text.into()),
    }
}

#[tokio::test]
async fn joiners_write_token_free_files_and_reload_before_their_turn_env_after_the_token() {
    let mut hosts = vec![
        host("s1", None, true),
        host("a1", Some("g"), false),
        host("a2", Some("g"), false),
    ];
    for h in &mut hosts {
        // upload, config.yaml, env, daemon-reload, start, waits
        h.steps
            .insert(1, config_step(&format!("node-name: {}\n", h.host)));
        h.steps.insert(3, Step::DaemonReload);
    }
    let (summary, lines, _) = run(&plan(hosts), &[]).await;
    assert!(summary.success(), "{}", summary.render());
    let server_ready = position(&lines, "s1: ready");
    let a1_start = position(&lines, "a1: starting k3s-agent");
    for agent in ["a1", "a2"] {
        let config = position(
            &lines,
            &format!("{agent}: write /etc/rancher/k3s/config.yaml token=false"),
        );
        let reload = position(&lines, &format!("{agent}: systemctl daemon-reload"));
        let env = position(
            &lines,
            &format!("{agent}: write /etc/systemd/system/k3s-agent.service.env token=true"),
        );
        // Staged before the server is even ready, so before the first agent's turn.
        assert!(config < server_ready && reload < server_ready, "{lines:#?}");
        assert!(reload < a1_start, "{lines:#?}");
        // The token file only in its turn, once the token is known.
        assert!(env > server_ready, "{lines:#?}");
        // A node registering now has no stale Ready to wait out: its first Ready counts.
        position(
            &lines,
            &format!("{agent}: wait for Ready posted after None"),
        );
        // Each step ran once.
        let count = |w: &str| lines.iter().filter(|l| l.as_str() == w).count();
        assert_eq!(
            count(&format!("{agent}: systemctl daemon-reload")),
            1,
            "{lines:#?}"
        );
    }
    // upload + config + env + reload + start on each of 3 hosts.
    assert_eq!(summary.changes(), 15);
}

#[tokio::test]
async fn taints_are_enforced_through_the_api_once_the_node_is_ready() {
    let mut server = host("s1", None, true);
    server.steps.push(Step::EnforceTaints {
        wanted: vec!["node-role.kubernetes.io/control-plane:NoSchedule".into()],
        add: vec!["node-role.kubernetes.io/control-plane:NoSchedule".into()],
        remove: vec![],
        adopt: true,
    });
    let p = plan(vec![server, host("a1", None, false)]);
    let (summary, lines, _) = run(&p, &[]).await;
    assert!(summary.success(), "{}", summary.render());
    let ready = position(&lines, "s1: ready");
    let taints = position(
        &lines,
        "s1: taints node-role.kubernetes.io/control-plane:NoSchedule adopt=true",
    );
    assert!(ready < taints, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("a1: taints")),
        "{lines:#?}"
    );
}

/// A server that joins: start, Ready, then a voter.
fn joining_server(name: &str) -> HostPlan {
    let mut h = host(name, None, false);
    h.role = NodeRole::Server;
    h.group = None;
    h.steps = vec![
        env_step(NodeRole::Server, true),
        Step::Start { join: true },
        Step::WaitNodeReady,
        Step::WaitEtcdVoter,
    ];
    h
}

#[tokio::test]
async fn servers_join_one_at_a_time_each_a_voter_before_the_next_then_agents() {
    let p = plan(vec![
        host("s1", None, true),
        joining_server("s2"),
        joining_server("s3"),
        host("a1", Some("g1"), false),
    ]);
    let (summary, lines, _) = run(&p, &[]).await;
    assert!(summary.success(), "{}", summary.render());
    let s2_voter = position(&lines, "s2: voter");
    let s3_start = position(&lines, "s3: starting k3s");
    assert!(
        s2_voter < s3_start,
        "s3 started before s2 was a voter: {lines:#?}"
    );
    let s3_voter = position(&lines, "s3: voter");
    let a1_start = position(&lines, "a1: starting k3s-agent");
    assert!(
        s3_voter < a1_start,
        "an agent started before the servers: {lines:#?}"
    );
}

#[tokio::test]
async fn a_failing_server_stops_the_servers_after_it_but_not_the_agents() {
    let p = plan(vec![
        host("s1", None, true),
        joining_server("s2"),
        joining_server("s3"),
        host("a1", Some("g1"), false),
    ]);
    let (summary, lines, _) = run(&p, &["s2"]).await;
    let status = |name: &str| {
        summary
            .hosts
            .iter()
            .find(|h| h.host == name)
            .map(|h| h.status.clone())
    };
    assert!(matches!(status("s2"), Some(HostStatus::Failed { .. })));
    assert!(
        matches!(status("s3"), Some(HostStatus::Skipped { reason }) if reason == "server s2 failed")
    );
    assert!(!lines.iter().any(|l| l.starts_with("s3: starting")));
    assert!(matches!(status("a1"), Some(HostStatus::Ok { .. })));
}

struct DownConnector;

#[async_trait]
impl ApiConnector for DownConnector {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        Err(ApiError(
            "ssh: connect to host 10.0.0.1 port 22: Connection refused".into(),
        ))
    }
}

#[tokio::test]
async fn the_api_fails_over_to_the_next_server_and_names_every_failure() {
    let log: Log = Arc::default();
    let failover = FailoverConnector::new(vec![
        (
            "s1".into(),
            Arc::new(DownConnector) as Arc<dyn ApiConnector>,
        ),
        (
            "s2".into(),
            Arc::new(FakeConnector {
                log: Arc::clone(&log),
            }),
        ),
    ]);
    let api = failover.connect().await.expect("through s2");
    api.wait_etcd_voter("s3", Duration::from_secs(1))
        .await
        .expect("answers");
    assert_eq!(log.lock().expect("lock").as_slice(), ["s3: voter"]);
    let none = FailoverConnector::new(vec![(
        "s1".into(),
        Arc::new(DownConnector) as Arc<dyn ApiConnector>,
    )]);
    let err = none
        .connect()
        .await
        .err()
        .expect("nobody answers")
        .to_string();
    assert!(err.contains("s1: ssh: connect to host"), "{err}");
}

#[path = "tests/rollout.rs"]
mod rollout;
mod rollout_ha;

#[path = "tests/rotation.rs"]
mod rotation;

#[tokio::test]
async fn lifecycle_hosts_run_in_order_api_only_when_unreachable_and_stop_at_a_failure() {
    let log: Log = Arc::default();
    let reporter = Arc::new(MemoryReporter::default());
    let shared = Shared::new(
        BTreeMap::new(),
        reporter.clone(),
        RunOptions::default(),
        Arc::new(FakeConnector {
            log: Arc::clone(&log),
        }),
        None,
    );
    let leaving = |name: &str, steps: Vec<Step>| HostPlan {
        host: name.into(),
        role: NodeRole::Server,
        group: None,
        first_server: false,
        in_cluster: true,
        steps,
    };
    let plans = vec![
        // Unreachable: only its API steps can run, and they do.
        leaving(
            "gone",
            vec![
                Step::Cordon {
                    reason: "removal".into(),
                },
                Step::LeaveEtcd,
                Step::DeleteNode,
            ],
        ),
        // Unreachable with a host step: fails there, before deleting its Node.
        leaving("refuse-s2", vec![Step::LeaveEtcd, Step::DeleteNode]),
        leaving("s3", vec![Step::DeleteNode]),
    ];
    let summary = crate::run::lifecycle::execute_in_order(&plans, &BTreeMap::new(), &shared).await;
    let log = log.lock().expect("lock").clone();
    assert_eq!(
        log,
        [
            "gone: cordon for removal",
            "gone: leave etcd",
            "gone: delete node",
            "refuse-s2: leave etcd",
        ]
    );
    assert!(matches!(
        summary.hosts[0].status,
        HostStatus::Ok { changes: 3 }
    ));
    match &summary.hosts[1].status {
        HostStatus::Failed { step, error, .. } => {
            assert_eq!(step, "leave-etcd");
            assert!(error.contains("it would lose quorum"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &summary.hosts[2].status,
        HostStatus::Skipped { reason } if reason == "refuse-s2 failed"
    ));
    // A host step on an unreachable host is refused, not silently skipped.
    let stop = leaving("gone", vec![Step::StopService]);
    let summary = crate::run::lifecycle::execute_in_order(&[stop], &BTreeMap::new(), &shared).await;
    match &summary.hosts[0].status {
        HostStatus::Failed { error, .. } => assert!(error.contains("not reachable"), "{error}"),
        other => panic!("{other:?}"),
    }
}

/// `leave-etcd` judges quorum with every server's K3s service asked right then: a server
/// stopped after the plan was judged (its Node still Ready) makes it refuse, before the
/// leadership is touched or the member removed.
#[tokio::test]
async fn leave_etcd_asks_every_server_whether_k3s_runs_right_before_removing_the_member() {
    async fn leave(stopped: &[&str]) -> (Vec<String>, HostStatus) {
        let log: Log = Arc::default();
        let fake = |name: &str| {
            Arc::new(FakeHost {
                name: name.into(),
                log: Arc::clone(&log),
                broken: stopped.contains(&name),
                starts: Mutex::new(0),
            })
        };
        let mut shared = Shared::new(
            BTreeMap::new(),
            Arc::new(MemoryReporter::default()),
            RunOptions::default(),
            Arc::new(FakeConnector {
                log: Arc::clone(&log),
            }),
            None,
        );
        // 5 voters; gone and refuse-s2 are not reached (their Nodes decide for them).
        for name in ["s1", "s2", "s3"] {
            shared
                .etcd_servers
                .insert(name.into(), fake(name) as Arc<dyn Transport>);
        }
        let plan = HostPlan {
            host: "s3".into(),
            role: NodeRole::Server,
            group: None,
            first_server: false,
            in_cluster: true,
            steps: vec![Step::LeaveEtcd],
        };
        let transports = BTreeMap::from([("s3".to_string(), fake("s3") as Arc<dyn Transport>)]);
        let summary = crate::run::lifecycle::execute_in_order(&[plan], &transports, &shared).await;
        let log = log.lock().expect("lock").clone();
        (log, summary.hosts[0].status.clone())
    }
    // All running: 4 healthy voters of 4 stay.
    let (log, status) = leave(&[]).await;
    assert!(matches!(status, HostStatus::Ok { .. }), "{status:?}");
    assert!(log.contains(&"s3: leave etcd".to_string()), "{log:?}");
    // One stopped: 4 of 5 healthy, removing s3 leaves 3 of 4, still a quorum of 3.
    let (log, status) = leave(&["s1"]).await;
    assert!(matches!(status, HostStatus::Ok { .. }), "{status:?}");
    assert!(log.contains(&"s3: leave etcd".to_string()), "{log:?}");
    // Two stopped since the plan: removing s3 would leave 2 healthy of 4 members.
    let (log, status) = leave(&["s1", "s2"]).await;
    match &status {
        HostStatus::Failed { step, error, hint } => {
            assert_eq!(step, "leave-etcd");
            assert!(
                error.contains("s3: not removing its etcd member")
                    && error.contains("would lose quorum")
                    && error.contains("s1: Ready=True EtcdIsVoter=True (K3s stopped)")
                    && error.contains("s2: Ready=True EtcdIsVoter=True (K3s stopped)"),
                "{error}"
            );
            assert!(
                hint.as_deref()
                    .is_some_and(|h| h.contains("bring the other servers back")),
                "{hint:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Refused before anything: no leadership hand-over asked, no member removed.
    assert!(log.is_empty(), "{log:?}");
}

/// A node already in the cluster whose files are taken over without a restart.
fn adopting(name: &str, role: NodeRole, group: Option<&str>) -> HostPlan {
    HostPlan {
        host: name.into(),
        role,
        group: group.map(str::to_string),
        first_server: false,
        in_cluster: true,
        steps: vec![
            Step::Adopt {
                files: BTreeMap::new(),
            },
            config_step("node-name: x\n"),
            Step::DaemonReload,
        ],
    }
}

#[tokio::test]
async fn nodes_whose_k3s_keeps_running_are_taken_over_side_by_side() {
    let p = plan(vec![
        adopting("s1", NodeRole::Server, None),
        adopting("s2", NodeRole::Server, None),
        adopting("a1", NodeRole::Agent, Some("g1")),
        adopting("a2", NodeRole::Agent, Some("g1")),
    ]);
    assert!(p.hosts.iter().all(HostPlan::leaves_k3s_running));
    let (summary, lines, _) = run(&p, &[]).await;
    assert!(summary.success(), "{summary:?}");
    // Every host reloads before any reload finishes: nobody waited for another.
    let first_done = position(&lines, "s1: reloaded").min(position(&lines, "a2: reloaded"));
    for name in ["s1", "s2", "a1", "a2"] {
        assert!(
            position(&lines, &format!("{name}: systemctl daemon-reload")) < first_done,
            "{lines:#?}"
        );
    }
    assert!(!lines.iter().any(|l| l.contains("Ready")), "{lines:#?}");
}

#[tokio::test]
async fn a_restart_is_not_quiet_and_a_quiet_failure_stops_its_group() {
    let mut restarting = adopting("a2", NodeRole::Agent, Some("g1"));
    restarting.steps.push(Step::Restart {
        reason: "registries.yaml changed".into(),
    });
    restarting.steps.push(Step::WaitNodeReady);
    assert!(!restarting.leaves_k3s_running());
    let mut evicting = adopting("a4", NodeRole::Agent, Some("g2"));
    evicting.steps.push(Step::EnforceTaints {
        wanted: vec!["dedicated=x:NoExecute".into()],
        add: vec!["dedicated=x:NoExecute".into()],
        remove: vec![],
        adopt: false,
    });
    assert!(!evicting.leaves_k3s_running());
    let p = plan(vec![
        adopting("a1", NodeRole::Agent, Some("g1")),
        restarting,
        adopting("a3", NodeRole::Agent, Some("g2")),
    ]);
    let (summary, lines, _) = run(&p, &["a1"]).await;
    let status = |name: &str| {
        summary
            .hosts
            .iter()
            .find(|h| h.host == name)
            .map(|h| h.status.clone())
    };
    assert!(
        matches!(status("a1"), Some(HostStatus::Failed { step, .. }) if step == "daemon-reload"),
        "{summary:?}"
    );
    assert!(
        matches!(status("a2"), Some(HostStatus::Skipped { reason }) if reason == "a1 failed in group g1"),
        "{summary:?}"
    );
    assert!(matches!(status("a3"), Some(HostStatus::Ok { .. })));
    assert!(!lines.iter().any(|l| l.starts_with("a2: ")), "{lines:#?}");
}
