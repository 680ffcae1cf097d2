//! The HA rollout on the engine, against fake hosts and a fake API whose Nodes and etcd member
//! list follow the servers' restarts: the quorum check before each server, one server down at a
//! time, the marker only on the server the API goes through, and a server that does not come
//! back as a voter stopping the rollout with etcd's view of the members.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{FakeHost, Log};
use crate::host::Transport;
use crate::kube::{
    CordonOutcome, DrainOptions, DrainPlan, DrainReport, ETCD_ROLE_LABEL, EtcdMember, NodeInfo,
    UncordonOutcome,
};
use crate::plan::ObservedNode;
use crate::plan::upgrade::gate::GateVerdict;
use crate::plan::upgrade::quorum::ETCD_NODE_NAME;
use crate::plan::upgrade::{NodeKind, NodeState, plan_upgrade};
use crate::run::gate::GateLimits;
use crate::run::{
    ApiConnector, ApiError, ClusterApi, ConnectedApi, MemoryReporter, NodeOutcome, RolloutContext,
    RolloutPolicy, RolloutResult, RunOptions, Shared, execute_rollout,
};
use crate::spec::UpgradePolicy;

const FROM: &str = "v1.33.5+k3s1";
const TO: &str = "v1.34.1+k3s1";
const SERVERS: [&str; 3] = ["s1", "s2", "s3"];

/// Three embedded-etcd servers. A server is down from its cordon's restart until the API saw it
/// Ready at the new version; `stuck` stays a learner after its restart.
struct HaApi {
    log: Log,
    stuck: Option<&'static str>,
    /// Servers restarted so far (Ready at the target seen).
    back: Mutex<Vec<String>>,
}

impl HaApi {
    fn note(&self, line: String) {
        self.log.lock().expect("lock").push(line);
    }

    fn learner(&self, name: &str) -> bool {
        self.stuck == Some(name) && self.back.lock().expect("lock").iter().any(|b| b == name)
    }
}

#[async_trait]
impl ClusterApi for HaApi {
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
        _: &BTreeMap<String, String>,
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
    async fn node_infos(&self) -> Result<Vec<NodeInfo>, ApiError> {
        self.note("cluster: quorum look".into());
        Ok(SERVERS
            .iter()
            .map(|name| {
                let learner = self.learner(name);
                NodeInfo {
                    name: (*name).into(),
                    ready: true,
                    kubelet_version: FROM.into(),
                    labels: [(ETCD_ROLE_LABEL.to_string(), "true".to_string())].into(),
                    annotations: [(ETCD_NODE_NAME.to_string(), format!("{name}-1a2b"))].into(),
                    etcd_voter: Some(crate::kube::Condition {
                        status: !learner,
                        detail: learner.then(|| "MemberIsLearner".to_string()),
                    }),
                    ..NodeInfo::default()
                }
            })
            .collect())
    }
    async fn etcd_members(&self) -> Result<Option<Vec<EtcdMember>>, ApiError> {
        Ok(Some(
            SERVERS
                .iter()
                .map(|name| EtcdMember {
                    name: format!("{name}-1a2b"),
                    peer_urls: vec![format!("https://{name}:2380")],
                    is_learner: self.learner(name),
                })
                .collect(),
        ))
    }
    async fn cordon(&self, name: &str, reason: &str) -> Result<CordonOutcome, ApiError> {
        self.note(format!("{name}: cordon ({reason})"));
        Ok(CordonOutcome::Cordoned)
    }
    async fn uncordon(&self, name: &str) -> Result<UncordonOutcome, ApiError> {
        self.note(format!("{name}: uncordon"));
        Ok(UncordonOutcome::Uncordoned)
    }
    async fn drain(&self, name: &str, _: &DrainOptions) -> Result<DrainReport, ApiError> {
        self.note(format!("{name}: drain"));
        Ok(DrainReport {
            plan: DrainPlan::default(),
            bypassed_pdbs: false,
            elapsed: Duration::ZERO,
        })
    }
    async fn wait_node_at(&self, name: &str, version: &str, _: Duration) -> Result<(), ApiError> {
        self.note(format!("{name}: Ready at {version}"));
        self.back.lock().expect("lock").push(name.to_string());
        Ok(())
    }
    async fn health(&self, _: Duration) -> Result<GateVerdict, ApiError> {
        self.note("cluster: health gate".into());
        Ok(GateVerdict::Healthy)
    }
}

async fn roll_ha(stuck: Option<&'static str>) -> (RolloutResult, Vec<String>) {
    let log: Log = Arc::default();
    let transports: BTreeMap<String, Arc<dyn Transport>> = SERVERS
        .iter()
        .map(|name| {
            let fake = FakeHost {
                name: (*name).into(),
                log: Arc::clone(&log),
                broken: false,
                starts: Mutex::new(0),
            };
            ((*name).to_string(), Arc::new(fake) as Arc<dyn Transport>)
        })
        .collect();
    let api = Arc::new(HaApi {
        log: Arc::clone(&log),
        stuck,
        back: Mutex::default(),
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
        binaries: SERVERS
            .iter()
            .map(|n| ((*n).to_string(), ("/bin/true".into(), "a".repeat(64))))
            .collect(),
        servers: SERVERS.iter().map(|s| (*s).to_string()).collect(),
        api_server: "s1".into(),
        transports: transports.clone(),
    });
    let nodes: Vec<NodeState> = SERVERS
        .iter()
        .map(|name| NodeState {
            name: (*name).into(),
            kind: NodeKind::Server,
            group: None,
            running: FROM.parse().expect("version"),
            ready: true,
            unschedulable: false,
            cordoned_by_k3sctl: false,
        })
        .collect();
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
async fn servers_go_one_at_a_time_each_back_as_a_voter_before_the_next() {
    let (result, lines) = roll_ha(None).await;
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    let outcomes: Vec<_> = result.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [NodeOutcome::Upgraded; 3]);
    // Only the API's server carries the marker, written by its swap's script (one round trip).
    assert!(
        lines.contains(
            &"s1: writing the upgrade marker and putting the new k3s binary in place".to_string()
        ),
        "{lines:#?}"
    );
    assert!(lines.contains(&"s1: removing the upgrade marker".to_string()));
    for other in ["s2", "s3"] {
        assert!(lines.contains(&format!("{other}: putting the new k3s binary in place")));
        assert!(!lines.contains(&format!("{other}: removing the upgrade marker")));
    }
    assert!(!lines.iter().any(|l| l.contains(": write ")), "{lines:#?}");
    // Each server: a quorum look before its cordon, and its uncordon (after the wait for the
    // voters, which looks again) before the next server's cordon.
    for pair in SERVERS.windows(2) {
        let uncordon = at(&lines, &format!("{}: uncordon", pair[0]));
        let next = at(&lines, &format!("{}: cordon (upgrade to {TO})", pair[1]));
        assert!(uncordon < next, "{lines:#?}");
        assert!(
            lines[uncordon..next]
                .iter()
                .any(|l| l == "cluster: quorum look"),
            "no quorum check before {}: {lines:#?}",
            pair[1]
        );
    }
    let s1_ready = at(&lines, &format!("s1: Ready at {TO}"));
    let s1_clear = at(&lines, "s1: removing the upgrade marker");
    assert!(
        lines[s1_ready..s1_clear]
            .iter()
            .any(|l| l == "cluster: quorum look"),
        "the marker went before s1 was a voter again: {lines:#?}"
    );
}

#[tokio::test]
async fn a_server_that_does_not_come_back_as_a_voter_stops_the_rollout_with_etcds_view() {
    let (result, lines) = roll_ha(Some("s2")).await;
    assert_eq!(result.failures.len(), 1, "{:?}", result.failures);
    let failure = &result.failures[0];
    assert_eq!(
        (failure.node.as_str(), failure.step.as_str()),
        ("s2", "wait-voter")
    );
    for part in [
        "did not have every server back as a voting member within 2s",
        "server s2: not a voting member (MemberIsLearner)",
        "etcd member list: s2-1a2b (learner) https://s2:2380",
        "etcd member list: s1-1a2b (voter)",
    ] {
        assert!(failure.error.contains(part), "{part} not in {failure}");
    }
    assert!(failure.journal.is_some(), "{failure}");
    // Never a second server down: s3 is not touched, s2 stays cordoned for the re-run.
    let s3 = result.records.iter().find(|r| r.name == "s3").expect("s3");
    assert_eq!(s3.outcome, NodeOutcome::Untouched);
    assert!(!lines.iter().any(|l| l.starts_with("s3: ")), "{lines:#?}");
    assert!(!lines.contains(&"s2: uncordon".to_string()));
}
