//! The upgrade's rollout on the engine, against the fake hosts and a fake API: each node's plan
//! steps in order, the gate between batches, typed failures with their hints and journals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::fake_api::{FROM, FakeApi};
use super::{Log, fake_hosts, position, test_shared};
use crate::k3s::config::NodeRole;
use crate::plan::HostPlan;
use crate::plan::upgrade::steps::recovery_steps;
use crate::plan::upgrade::{NodeKind, NodeState, plan_upgrade};
use crate::run::gate::GateLimits;
use crate::run::{
    ApiConnector, ApiError, ClusterApi, NodeOutcome, RolloutContext, RolloutPolicy, RolloutResult,
    RunOptions, Stopwatch, execute_rollout, run_turn,
};
use crate::spec::UpgradePolicy;

pub(super) const TO: &str = "v1.34.1+k3s1";

/// Upgrades `nodes` (each Ready at [`FROM`]) to [`TO`] on fake hosts (the `broken` ones fail
/// their start) through the fake API as `api` sets it, the first server holding the marker,
/// stopping everything at the first failure; the result and the log.
pub(super) async fn roll(
    nodes: &[(&str, NodeKind)],
    broken: &[&str],
    api: impl FnOnce(FakeApi) -> FakeApi,
) -> (RolloutResult, Vec<String>) {
    let log: Log = Log::default();
    let transports = fake_hosts(nodes.iter().map(|(n, _)| *n), &log, broken);
    let servers: Vec<String> = nodes
        .iter()
        .filter(|(_, kind)| *kind == NodeKind::Server)
        .map(|(n, _)| (*n).to_string())
        .collect();
    let connector = api(FakeApi::new(&log)).connector();
    let mut shared = test_shared(connector, RunOptions::default(), None);
    shared.rollout = Some(RolloutContext {
        binaries: transports
            .keys()
            .map(|n| (n.clone(), ("/bin/true".into(), "a".repeat(64))))
            .collect(),
        api_server: servers[0].clone(),
        servers,
        transports: transports.clone(),
    });
    let states: Vec<NodeState> = nodes
        .iter()
        .map(|(name, kind)| NodeState {
            name: (*name).into(),
            kind: *kind,
            group: None,
            running: FROM.parse().expect("version"),
            ready: true,
            unschedulable: false,
            cordoned_by_k3sctl: false,
        })
        .collect();
    let plan = plan_upgrade(TO.parse().expect("v"), &states, &UpgradePolicy::default());
    let policy = RolloutPolicy {
        gate: GateLimits {
            timeout: Duration::from_secs(2),
            grace: Duration::from_secs(2),
        },
        stop_all_on_failure: true,
    };
    let result = execute_rollout(&plan, &transports, &shared, policy).await;
    let lines = log.lock().expect("lock").clone();
    (result, lines)
}

/// One server and two agents.
async fn roll_one_server(broken: &[&str], refuse_drain: &[&str]) -> (RolloutResult, Vec<String>) {
    let nodes = [
        ("s1", NodeKind::Server),
        ("a1", NodeKind::Agent),
        ("a2", NodeKind::Agent),
    ];
    roll(&nodes, broken, |api| api.refuse_drain(refuse_drain)).await
}

#[tokio::test]
async fn each_node_runs_its_steps_in_order_with_the_gate_between() {
    let (result, lines) = roll_one_server(&[], &[]).await;
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    let outcomes: Vec<_> = result.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [NodeOutcome::Upgraded; 3]);
    // The only server: no drain; the marker is written by the swap's script, before its binary
    // (one round trip: no separate write), and removed after.
    let s1 = [
        "s1: cordon (upgrade to v1.34.1+k3s1)",
        "s1: writing the upgrade marker and putting the new k3s binary in place",
        // Not staged on the fake host: uploaded now.
        "s1: upload /usr/local/bin/k3s",
        "s1: starting k3s",
        "s1: Ready at v1.34.1+k3s1",
        "s1: removing the upgrade marker",
        "s1: uncordon",
    ];
    let positions: Vec<usize> = s1.iter().map(|l| position(&lines, l)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("s1: drain")));
    assert!(
        !lines.iter().any(|l| l.starts_with("s1: write ")),
        "{lines:#?}"
    );
    // Agents: drained, one after another, each after the gate that followed the one before.
    let gate_after_s1 = positions[6] + 1;
    assert_eq!(lines[gate_after_s1], "cluster: health gate");
    let a1 = position(&lines, "a1: cordon (upgrade to v1.34.1+k3s1)");
    assert!(a1 > gate_after_s1);
    assert!(position(&lines, "a1: drain within 300s") > a1);
    assert!(
        position(&lines, "a2: cordon (upgrade to v1.34.1+k3s1)") > position(&lines, "a1: uncordon")
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("upgrade marker") && l.starts_with("a"))
    );
    assert!(lines.contains(&"a1: putting the new k3s binary in place".to_string()));
}

#[tokio::test]
async fn a_refused_drain_stops_the_rollout_with_the_api_s_reason() {
    let (result, lines) = roll_one_server(&[], &["a1"]).await;
    assert_eq!(result.failures.len(), 1);
    let failure = &result.failures[0];
    assert_eq!(
        (failure.node.as_str(), failure.step.as_str()),
        ("a1", "drain")
    );
    assert!(
        failure
            .error
            .contains("PodDisruptionBudget default/blocker"),
        "{failure}"
    );
    assert!(
        failure.to_string().starts_with("a1: step drain failed"),
        "{failure}"
    );
    let a2 = result.records.iter().find(|r| r.name == "a2").expect("a2");
    assert_eq!(a2.outcome, NodeOutcome::Untouched);
    assert!(!lines.iter().any(|l| l.starts_with("a2:")), "{lines:#?}");
    // a1 stays cordoned: the failure stopped its turn before the uncordon.
    assert!(!lines.iter().any(|l| l == "a1: uncordon"));
}

#[tokio::test]
async fn a_release_that_does_not_start_fails_with_its_journal_and_the_typed_hint() {
    let (result, _) = roll_one_server(&["a1"], &[]).await;
    let failure = &result.failures[0];
    assert_eq!(failure.step, "restart");
    assert!(failure.error.contains("did not start"), "{failure}");
    assert!(
        failure
            .journal
            .as_deref()
            .is_some_and(|j| j.contains("failed to get CA certs")),
        "{failure}"
    );
    assert!(
        failure
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("registrationAddress")),
        "{failure}"
    );
    let a1 = result.records.iter().find(|r| r.name == "a1").expect("a1");
    assert_eq!(a1.outcome, NodeOutcome::Failed);
    assert!(a1.waited_seconds <= a1.seconds);
}

/// No server's API answers until K3s is back: connecting fails the first `down` times, then
/// goes through `inner`.
struct DownUntilBack {
    down: u32,
    attempts: Mutex<u32>,
    inner: Arc<dyn ApiConnector>,
}

#[async_trait]
impl ApiConnector for DownUntilBack {
    async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
        {
            let mut attempts = self.attempts.lock().expect("lock");
            *attempts += 1;
            if *attempts <= self.down {
                return Err(ApiError(
                    "no server answered: s1: connection refused".into(),
                ));
            }
        }
        self.inner.connect().await
    }
}

#[tokio::test]
async fn the_recovery_of_a_first_server_waits_for_its_api_to_come_back() {
    let log: Log = Log::default();
    let transports = fake_hosts(["s1"], &log, &[]);
    let connector = Arc::new(DownUntilBack {
        down: 2,
        attempts: Mutex::new(0),
        inner: FakeApi::new(&log).connector(),
    });
    let mut shared = test_shared(
        Arc::clone(&connector) as Arc<dyn ApiConnector>,
        RunOptions::default(),
        None,
    );
    // No API answered when the run began: none to go through, /readyz asked on the server.
    shared.rollout = Some(RolloutContext {
        binaries: [("s1".to_string(), ("/bin/true".into(), "a".repeat(64)))].into(),
        servers: vec!["s1".into()],
        api_server: String::new(),
        transports: transports.clone(),
    });
    let turn = HostPlan {
        host: "s1".into(),
        role: NodeRole::Server,
        group: None,
        first_server: true,
        in_cluster: true,
        steps: recovery_steps(FROM.parse().expect("v"), TO.parse().expect("v")),
    };
    run_turn(
        &shared,
        transports["s1"].as_ref(),
        &turn,
        &mut Stopwatch::start(),
    )
    .await
    .map_err(|(failure, _)| failure.to_string())
    .expect("recovered once the API is back");
    assert_eq!(*connector.attempts.lock().expect("lock"), 3);
    let lines = log.lock().expect("lock").clone();
    assert!(position(&lines, "s1: starting k3s") < position(&lines, "s1: Ready at v1.34.1+k3s1"));
}
