//! Engine tests against fake hosts and a fake API: order, groups, failures, secrets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::plan::{HostPlan, Plan, Step};
use crate::secret::Secret;

mod batch;
pub(crate) mod fake_api;
pub(crate) mod fake_host;
mod rollout;
mod rollout_ha;
mod rotation;

use fake_api::{FakeApi, Unreachable};
use fake_host::{FakeHost, fake_hosts};

/// Every call on every fake host and on the fake API, in order: `host: what`.
pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// Servers of the fake cluster: each Node Ready and an etcd voter (a server whose K3s stopped
/// a moment ago still looks like this).
const FAKE_SERVERS: [&str; 5] = ["s1", "s2", "s3", "gone", "refuse-s2"];

/// The fake cluster's API: its Nodes are [`FAKE_SERVERS`]; K3s refuses to remove the etcd
/// member of `refuse-s2` ("it would lose quorum").
fn cluster_api(log: &Log) -> Arc<dyn ApiConnector> {
    FakeApi::new(log)
        .servers(&FAKE_SERVERS)
        .refuse_leave(&["refuse-s2"])
        .connector()
}

/// The engine's shared state for a test over `connector`: nothing to upload, Ready waits of
/// at most 2 s, progress kept in memory.
fn test_shared(
    connector: Arc<dyn ApiConnector>,
    options: RunOptions,
    token: Option<Secret>,
) -> Shared {
    let options = RunOptions {
        node_ready_timeout: Duration::from_secs(2),
        ..options
    };
    let reporter = Arc::new(MemoryReporter::default());
    Shared::new(BTreeMap::new(), reporter, options, connector, token)
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
    let transports = fake_hosts(plan.hosts.iter().map(|h| h.host.as_str()), &log, broken);
    let reporter = Arc::new(MemoryReporter::default());
    let mut shared = test_shared(cluster_api(&log), options, None);
    shared.reporter = reporter.clone();
    shared.binaries = plan
        .hosts
        .iter()
        .map(|h| (h.host.clone(), "/bin/true".into()))
        .collect();
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

/// The status `host` ended with.
fn status_of(summary: &RunSummary, host: &str) -> Option<HostStatus> {
    summary
        .hosts
        .iter()
        .find(|h| h.host == host)
        .map(|h| h.status.clone())
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
    let status = |name: &str| status_of(&summary, name);
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

/// Asserts that each of `agents` started only once the one before was Ready.
fn one_at_a_time(lines: &[String], agents: &[&str]) {
    for pair in agents.windows(2) {
        let (_, ready) = start_and_ready(lines, pair[0]);
        let (start, _) = start_and_ready(lines, pair[1]);
        assert!(
            start > ready,
            "{} started before {} was Ready: {lines:#?}",
            pair[1],
            pair[0]
        );
    }
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
    one_at_a_time(&lines, &["a1", "a2", "a3"]);
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
    // None went down before the one before was back.
    one_at_a_time(&lines, &["a1", "a2", "a3"]);
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
    let status = |name: &str| status_of(&summary, name);
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
    let status = |name: &str| status_of(&summary, name);
    assert!(matches!(status("s2"), Some(HostStatus::Failed { .. })));
    assert!(
        matches!(status("s3"), Some(HostStatus::Skipped { reason }) if reason == "server s2 failed")
    );
    assert!(!lines.iter().any(|l| l.starts_with("s3: starting")));
    assert!(matches!(status("a1"), Some(HostStatus::Ok { .. })));
}

/// A server the API cannot be reached through.
fn down() -> Arc<dyn ApiConnector> {
    Arc::new(Unreachable(
        "ssh: connect to host 10.0.0.1 port 22: Connection refused",
    ))
}

#[tokio::test]
async fn the_api_fails_over_to_the_next_server_and_names_every_failure() {
    let log: Log = Arc::default();
    let failover = FailoverConnector::new(vec![
        ("s1".into(), down()),
        ("s2".into(), cluster_api(&log)),
    ]);
    let (server, api) = failover.connect_named().await.expect("through s2");
    assert_eq!(server, "s2");
    api.wait_etcd_voter("s3", Duration::from_secs(1))
        .await
        .expect("answers");
    assert_eq!(log.lock().expect("lock").as_slice(), ["s3: voter"]);
    let none = FailoverConnector::new(vec![("s1".into(), down())]);
    let err = none
        .connect()
        .await
        .err()
        .expect("nobody answers")
        .to_string();
    assert!(err.contains("s1: ssh: connect to host"), "{err}");
}

#[tokio::test]
async fn a_run_given_the_plans_client_uses_it_without_connecting_again() {
    let log: Log = Arc::default();
    let connected = cluster_api(&log).connect().await.expect("fake");
    let mut shared = test_shared(down(), RunOptions::default(), None);
    assert!(shared.api().await.is_err(), "the connector is down");
    shared.reuse_api(connected);
    let api = shared.api().await.expect("the reused client");
    api.wait_etcd_voter("s2", Duration::from_secs(1))
        .await
        .expect("answers");
    assert_eq!(log.lock().expect("lock").as_slice(), ["s2: voter"]);
}

#[tokio::test]
async fn lifecycle_hosts_run_in_order_api_only_when_unreachable_and_stop_at_a_failure() {
    let log: Log = Arc::default();
    let shared = test_shared(cluster_api(&log), RunOptions::default(), None);
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
            "gone: cordon (removal)",
            // Quorum judged from the Nodes right before each member removal.
            "cluster: quorum look",
            "gone: leave etcd",
            "gone: delete node",
            "cluster: quorum look",
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
        let mut shared = test_shared(cluster_api(&log), RunOptions::default(), None);
        // 5 voters; gone and refuse-s2 are not reached (their Nodes decide for them).
        shared.etcd_servers = fake_hosts(["s1", "s2", "s3"], &log, stopped);
        let plan = HostPlan {
            host: "s3".into(),
            role: NodeRole::Server,
            group: None,
            first_server: false,
            in_cluster: true,
            steps: vec![Step::LeaveEtcd],
        };
        let s3 = FakeHost::new("s3", &log, stopped.contains(&"s3"));
        let transports = BTreeMap::from([("s3".to_string(), s3 as Arc<dyn Transport>)]);
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
    // Refused before anything: only the Nodes read, no leadership hand-over asked, no member
    // removed.
    assert_eq!(log, ["cluster: quorum look"]);
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
    assert!(!p.needs_preflight(), "nothing is installed or started");
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
    assert!(p.needs_preflight(), "a2 restarts");
    let (summary, lines, _) = run(&p, &["a1"]).await;
    let status = |name: &str| status_of(&summary, name);
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
