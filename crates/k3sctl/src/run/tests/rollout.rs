//! The upgrade's rollout on the engine, against the fake hosts and a fake API: each node's plan
//! steps in order, the gate between batches, typed failures with their hints and journals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{FakeHost, Log};
use crate::host::Transport;
use crate::kube::{CordonOutcome, DrainOptions, DrainPlan, DrainReport, UncordonOutcome};
use crate::plan::ObservedNode;
use crate::plan::upgrade::gate::GateVerdict;
use crate::plan::upgrade::{NodeKind, NodeState, plan_upgrade};
use crate::run::gate::GateLimits;
use crate::run::{
    ApiConnector, ApiError, ClusterApi, ConnectedApi, MemoryReporter, NodeOutcome, RolloutContext,
    RolloutPolicy, RolloutResult, RunOptions, Shared, execute_rollout,
};
use crate::spec::UpgradePolicy;

const FROM: &str = "v1.33.5+k3s1";
const TO: &str = "v1.34.1+k3s1";

struct RolloutApi {
    log: Log,
    refuse_drain: BTreeSet<String>,
}

impl RolloutApi {
    fn note(&self, line: String) {
        self.log.lock().expect("lock").push(line);
    }
}

#[async_trait]
impl ClusterApi for RolloutApi {
    async fn nodes(&self) -> Result<Vec<ObservedNode>, ApiError> {
        Ok(vec![])
    }
    async fn readyz(&self) -> Result<(), ApiError> {
        Ok(())
    }
    async fn enforce_taints(
        &self,
        _: &str,
        _: &[String],
        _: bool,
    ) -> Result<Vec<String>, ApiError> {
        Ok(vec![])
    }
    async fn enforce_labels(
        &self,
        _: &str,
        _: &std::collections::BTreeMap<String, String>,
        _: bool,
    ) -> Result<(), ApiError> {
        Ok(())
    }
    async fn wait_node_ready(
        &self,
        _: &str,
        _: Option<crate::kube::StartedAt>,
        _: Duration,
    ) -> Result<(), ApiError> {
        Ok(())
    }
    async fn wait_etcd_voter(&self, _: &str, _: Duration) -> Result<(), ApiError> {
        Ok(())
    }
    async fn cordon(&self, name: &str, reason: &str) -> Result<CordonOutcome, ApiError> {
        self.note(format!("{name}: cordon ({reason})"));
        Ok(CordonOutcome::Cordoned)
    }
    async fn uncordon(&self, name: &str) -> Result<UncordonOutcome, ApiError> {
        self.note(format!("{name}: uncordon"));
        Ok(UncordonOutcome::Uncordoned)
    }
    async fn drain(&self, name: &str, options: &DrainOptions) -> Result<DrainReport, ApiError> {
        self.note(format!(
            "{name}: drain within {}s",
            options.timeout.as_secs()
        ));
        if self.refuse_drain.contains(name) {
            return Err(ApiError(format!(
                "cannot drain node {name}: PodDisruptionBudget default/blocker allows no \
                 disruption"
            )));
        }
        Ok(DrainReport {
            plan: DrainPlan::default(),
            bypassed_pdbs: false,
            elapsed: Duration::ZERO,
        })
    }
    async fn wait_node_at(&self, name: &str, version: &str, _: Duration) -> Result<(), ApiError> {
        self.note(format!("{name}: Ready at {version}"));
        Ok(())
    }
    async fn health(&self, _: Duration) -> Result<GateVerdict, ApiError> {
        self.note("cluster: health gate".into());
        Ok(GateVerdict::Healthy)
    }
}

fn state(name: &str, kind: NodeKind) -> NodeState {
    NodeState {
        name: name.into(),
        kind,
        group: None,
        running: FROM.parse().expect("version"),
        ready: true,
        unschedulable: false,
        cordoned_by_k3sctl: false,
    }
}

async fn roll(broken: &[&str], refuse_drain: &[&str]) -> (RolloutResult, Vec<String>) {
    let names = ["s1", "a1", "a2"];
    let log: Log = Arc::default();
    let transports: BTreeMap<String, Arc<dyn Transport>> = names
        .iter()
        .map(|name| {
            let fake = FakeHost {
                name: (*name).into(),
                log: Arc::clone(&log),
                broken: broken.contains(name),
                starts: Mutex::new(0),
            };
            ((*name).to_string(), Arc::new(fake) as Arc<dyn Transport>)
        })
        .collect();
    let api = Arc::new(RolloutApi {
        log: Arc::clone(&log),
        refuse_drain: refuse_drain.iter().map(|s| (*s).to_string()).collect(),
    });
    let connector: Arc<dyn ApiConnector> = Arc::new(ConnectedApi(api));
    let options = RunOptions {
        node_ready_timeout: Duration::from_secs(2),
        ..RunOptions::default()
    };
    let mut shared = Shared::new(
        BTreeMap::new(),
        Arc::new(MemoryReporter::default()),
        options,
        connector,
        None,
    );
    shared.rollout = Some(RolloutContext {
        binaries: names
            .iter()
            .map(|n| ((*n).to_string(), ("/bin/true".into(), "a".repeat(64))))
            .collect(),
        servers: vec!["s1".into()],
        api_server: "s1".into(),
        transports: transports.clone(),
    });
    let nodes = [
        state("s1", NodeKind::Server),
        state("a1", NodeKind::Agent),
        state("a2", NodeKind::Agent),
    ];
    let plan = plan_upgrade(TO.parse().expect("v"), &nodes, &UpgradePolicy::default());
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

fn at(lines: &[String], wanted: &str) -> usize {
    lines
        .iter()
        .position(|l| l == wanted)
        .unwrap_or_else(|| panic!("{wanted} not in {lines:#?}"))
}

#[tokio::test]
async fn each_node_runs_its_steps_in_order_with_the_gate_between() {
    let (result, lines) = roll(&[], &[]).await;
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
    let positions: Vec<usize> = s1.iter().map(|l| at(&lines, l)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("s1: drain")));
    assert!(
        !lines.iter().any(|l| l.starts_with("s1: write ")),
        "{lines:#?}"
    );
    // Agents: drained, one after another, each after the gate that followed the one before.
    let gate_after_s1 = positions[6] + 1;
    assert_eq!(lines[gate_after_s1], "cluster: health gate");
    let a1 = at(&lines, "a1: cordon (upgrade to v1.34.1+k3s1)");
    assert!(a1 > gate_after_s1);
    assert!(at(&lines, "a1: drain within 300s") > a1);
    assert!(at(&lines, "a2: cordon (upgrade to v1.34.1+k3s1)") > at(&lines, "a1: uncordon"));
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("upgrade marker") && l.starts_with("a"))
    );
    assert!(lines.contains(&"a1: putting the new k3s binary in place".to_string()));
}

#[tokio::test]
async fn a_refused_drain_stops_the_rollout_with_the_api_s_reason() {
    let (result, lines) = roll(&[], &["a1"]).await;
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
    let (result, _) = roll(&["a1"], &[]).await;
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
