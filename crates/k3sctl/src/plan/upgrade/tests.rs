use std::collections::BTreeMap;

use super::*;
use crate::spec::{GroupOrder, UpgradePolicy};

fn v(text: &str) -> K3sVersion {
    text.parse().expect("valid version")
}

fn node(name: &str, kind: NodeKind, group: Option<&str>, running: &str) -> NodeState {
    NodeState {
        name: name.into(),
        kind,
        group: group.map(str::to_string),
        running: v(running),
        ready: true,
        unschedulable: false,
        cordoned_by_k3sctl: false,
    }
}

fn cluster() -> Vec<NodeState> {
    vec![
        node("a1", NodeKind::Agent, Some("g1"), "v1.33.5+k3s1"),
        node("s1", NodeKind::Server, None, "v1.33.5+k3s1"),
        node("a2", NodeKind::Agent, Some("g2"), "v1.33.5+k3s1"),
        node("a3", NodeKind::Agent, Some("g1"), "v1.33.5+k3s1"),
        node("a4", NodeKind::Agent, Some("g1"), "v1.33.5+k3s1"),
    ]
}

fn order(plan: &UpgradePlan) -> Vec<Vec<Vec<Vec<String>>>> {
    plan.phases
        .iter()
        .map(|p| {
            p.lanes
                .iter()
                .map(|l| {
                    l.batches
                        .iter()
                        .map(|b| b.nodes.iter().map(|n| n.name.clone()).collect())
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn servers_first_then_groups_in_batches_sequentially() {
    let policy = UpgradePolicy {
        agent_batch_size: 2,
        ..UpgradePolicy::default()
    };
    let plan = plan_upgrade(v("v1.34.1+k3s1"), &cluster(), &policy);
    assert_eq!(
        order(&plan),
        vec![
            vec![vec![vec!["s1".to_string()]]],
            vec![vec![
                vec!["a1".to_string(), "a3".to_string()],
                vec!["a4".to_string()]
            ]],
            vec![vec![vec!["a2".to_string()]]],
        ]
    );
    // The only server is cordoned but not drained; agents are drained.
    let s1 = plan.nodes().next().expect("server first");
    assert_eq!(
        s1.action,
        NodeAction::Upgrade {
            drain: false,
            keep_cordoned: false
        }
    );
    assert!(plan.nodes().skip(1).all(|n| n.action
        == NodeAction::Upgrade {
            drain: true,
            keep_cordoned: false
        }));
}

#[test]
fn parallel_groups_share_one_phase_with_a_lane_each() {
    let policy = UpgradePolicy {
        groups: GroupOrder::Parallel,
        ..UpgradePolicy::default()
    };
    let plan = plan_upgrade(v("v1.34.1+k3s1"), &cluster(), &policy);
    assert_eq!(plan.phases.len(), 2);
    let lanes: Vec<&str> = plan.phases[1]
        .lanes
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(lanes, ["g1", "g2"]);
    assert_eq!(plan.phases[1].lanes[0].batches.len(), 3);
}

#[test]
fn resume_skips_done_nodes_finishes_ours_and_keeps_a_person_cordon() {
    let mut nodes = cluster();
    nodes[1].running = v("v1.34.1+k3s1"); // s1 done
    nodes[0].running = v("v1.34.1+k3s1"); // a1 restarted, still cordoned by us
    nodes[0].unschedulable = true;
    nodes[0].cordoned_by_k3sctl = true;
    nodes[3].unschedulable = true; // a3 cordoned by a person
    let plan = plan_upgrade(v("v1.34.1+k3s1"), &nodes, &UpgradePolicy::default());
    let actions: BTreeMap<String, NodeAction> = plan
        .nodes()
        .map(|n| (n.name.clone(), n.action.clone()))
        .collect();
    assert_eq!(actions["s1"], NodeAction::Skip);
    assert_eq!(actions["a1"], NodeAction::Finish);
    assert_eq!(
        actions["a3"],
        NodeAction::Upgrade {
            drain: true,
            keep_cordoned: true
        }
    );
    // Skipped nodes do not take a slot in a batch: a1 (finish) and a3 are separate batches.
    let g1 = &plan.phases[1].lanes[0];
    assert_eq!(g1.batches.len(), 3);
    assert!(plan.has_work());
    let text = render_upgrade_plan(&plan, &BTreeMap::new());
    assert!(
        text.contains("s1 (server): v1.34.1+k3s1 already at the target, left alone"),
        "{text}"
    );
    assert!(
        text.contains("stays cordoned (a person cordoned it)"),
        "{text}"
    );
    assert!(
        text.contains("kubelet must never be newer than the API server"),
        "{text}"
    );
}

#[test]
fn nothing_to_do_when_everything_runs_the_target() {
    let nodes: Vec<NodeState> = cluster()
        .into_iter()
        .map(|mut n| {
            n.running = v("v1.34.1+k3s1");
            n
        })
        .collect();
    let plan = plan_upgrade(v("v1.34.1+k3s1"), &nodes, &UpgradePolicy::default());
    assert!(!plan.has_work());
    assert!(render_upgrade_plan(&plan, &BTreeMap::new()).contains("nothing to do"));
}

#[test]
fn drain_previews_are_listed_under_their_node() {
    let plan = plan_upgrade(v("v1.34.1+k3s1"), &cluster(), &UpgradePolicy::default());
    let drains = BTreeMap::from([(
        "a1".to_string(),
        DrainPreview {
            evict: vec!["default/web-1".into()],
            skip: vec!["default/ds-x (DaemonSet)".into()],
            blocked: vec![],
        },
    )]);
    let text = render_upgrade_plan(&plan, &drains);
    let a1 = text.find("a1 (agent)").expect("a1 shown");
    let evict = text.find("evict: default/web-1").expect("evictions shown");
    assert!(evict > a1, "{text}");
    assert!(text.contains("stay: default/ds-x (DaemonSet)"), "{text}");
    let s1 = text.find("s1 (server)").expect("server shown");
    assert!(s1 < a1, "servers are listed first:\n{text}");
}

#[test]
fn refuses_downgrade_naming_the_node() {
    let mut nodes = cluster();
    nodes[2].running = v("v1.34.2+k3s1");
    let err = check_target(v("v1.34.1+k3s1"), &TargetSource::Flag, &nodes).expect_err("down");
    assert!(matches!(err, UpgradeRefusal::Downgrade { ref node, .. } if node == "a2"));
    assert!(err.to_string().contains("does not downgrade"), "{err}");
}

#[test]
fn refuses_a_skipped_minor_naming_the_intermediate() {
    let mut nodes = cluster();
    nodes[4].running = v("v1.32.9+k3s1");
    let err = check_target(v("v1.34.1+k3s1"), &TargetSource::Spec, &nodes).expect_err("skip");
    let text = err.to_string();
    assert!(text.contains("a4 runs v1.32.9+k3s1"), "{text}");
    assert!(text.contains("latest v1.33 release first"), "{text}");
    assert!(text.contains("--channel v1.33"), "{text}");
}

#[test]
fn refuses_a_channel_that_went_backwards() {
    let mut nodes = cluster();
    nodes[1].running = v("v1.33.6+k3s1");
    let source = TargetSource::Channel("stable".into());
    let err = check_target(v("v1.33.5+k3s1"), &source, &nodes).expect_err("behind");
    let text = err.to_string();
    assert!(
        text.contains("channel stable answers v1.33.5+k3s1, lower than v1.33.6+k3s1 running on s1"),
        "{text}"
    );
    assert!(text.contains("never follows one down"), "{text}");
    // The same answer equal to what runs is fine.
    assert_eq!(
        check_target(v("v1.33.6+k3s1"), &source, &nodes[1..2]),
        Ok(())
    );
}

#[test]
fn a_permitted_upgrade_passes() {
    assert_eq!(
        check_target(v("v1.34.1+k3s1"), &TargetSource::Flag, &cluster()),
        Ok(())
    );
}

fn kinds(node: &PlannedNode) -> Vec<&'static str> {
    node.steps.iter().map(crate::plan::Step::kind).collect()
}

#[test]
fn each_node_turn_is_its_plan_steps() {
    let policy = UpgradePolicy::default();
    let target = v("v1.34.1+k3s1");
    // One server: no drain, the marker on it (the API goes through it), no quorum steps.
    let plan = plan_upgrade(target, &cluster(), &policy);
    let by_name = |plan: &UpgradePlan, name: &str| {
        plan.nodes()
            .find(|n| n.name == name)
            .cloned()
            .expect("node in plan")
    };
    assert_eq!(
        kinds(&by_name(&plan, "s1")),
        [
            "cordon",
            "deliver",
            "restart",
            "wait-ready",
            "clear-marker",
            "uncordon"
        ]
    );
    assert_eq!(
        kinds(&by_name(&plan, "a1")),
        [
            "cordon",
            "drain",
            "deliver",
            "restart",
            "wait-ready",
            "uncordon"
        ]
    );
    let s1 = by_name(&plan, "s1");
    assert!(
        s1.steps
            .iter()
            .any(|s| matches!(s, crate::plan::Step::SwapBinary { marker: true, .. }))
    );
    assert!(
        s1.steps
            .iter()
            .any(|s| matches!(s, crate::plan::Step::WaitReadyAt { readyz: true, .. }))
    );
    // Three servers: each checks quorum before going down and waits for it after; only the
    // first (the API's server) carries the marker; servers are drained.
    let mut ha = cluster();
    ha.push(node("s2", NodeKind::Server, None, "v1.33.5+k3s1"));
    ha.push(node("s3", NodeKind::Server, None, "v1.33.5+k3s1"));
    let plan = plan_upgrade(target, &ha, &policy);
    assert_eq!(
        kinds(&by_name(&plan, "s2")),
        [
            "quorum",
            "cordon",
            "drain",
            "deliver",
            "restart",
            "wait-ready",
            "wait-voter",
            "uncordon"
        ]
    );
    assert_eq!(
        kinds(&by_name(&plan, "s1")),
        [
            "quorum",
            "cordon",
            "drain",
            "deliver",
            "restart",
            "wait-ready",
            "wait-voter",
            "clear-marker",
            "uncordon"
        ]
    );
    // An agent at the target that an interrupted run cordoned: the waits and the uncordon.
    let mut finish = cluster();
    finish[0].running = target;
    finish[0].unschedulable = true;
    finish[0].cordoned_by_k3sctl = true;
    finish[2].running = target;
    let plan = plan_upgrade(target, &finish, &policy);
    assert_eq!(kinds(&by_name(&plan, "a1")), ["wait-ready", "uncordon"]);
    assert!(by_name(&plan, "a2").steps.is_empty());
    // A node a person cordoned is upgraded and left cordoned.
    let mut person = cluster();
    person[0].unschedulable = true;
    let plan = plan_upgrade(target, &person, &policy);
    assert!(matches!(
        by_name(&plan, "a1").steps.last(),
        Some(crate::plan::Step::Uncordon {
            keep_cordoned: true
        })
    ));
    // The plan shows each node's steps, with the drain's preview under the drain step.
    let mut drains = BTreeMap::new();
    drains.insert(
        "a1".to_string(),
        DrainPreview {
            evict: vec!["default/web-1".into()],
            ..DrainPreview::default()
        },
    );
    let text = render_upgrade_plan(&plan, &drains);
    let drain_at = text.find("- drain: evict").expect("drain step shown");
    let evict_at = text.find("evict: default/web-1").expect("preview shown");
    let swap_at = drain_at
        + text[drain_at..]
            .find("- put k3s v1.34.1+k3s1 in place")
            .expect("swap shown");
    assert!(drain_at < evict_at && evict_at < swap_at, "{text}");
    assert!(
        text.contains("- leave it cordoned (a person cordoned it)"),
        "{text}"
    );
}

#[test]
fn a_snapshot_comes_first_on_multi_server_clusters_unless_skipped() {
    // (policy, servers, --no-snapshot) → taken
    let table = [
        (None, 3, false, true),
        (None, 1, false, false),
        (Some(false), 3, false, false),
        (Some(true), 1, false, true),
        (Some(true), 3, true, false),
        (None, 3, true, false),
    ];
    for (policy, servers, flag, want) in table {
        assert_eq!(
            snapshot_wanted(policy, servers, flag),
            want,
            "{policy:?} {servers} {flag}"
        );
    }
    let target = v("v1.34.1+k3s1");
    assert_eq!(snapshot_name(target), "pre-upgrade-v1.34.1-k3s1");
    let mut plan = plan_upgrade(target, &cluster(), &UpgradePolicy::default());
    assert!(!render_upgrade_plan(&plan, &BTreeMap::new()).contains("etcd snapshot"));
    plan.snapshot = Some(snapshot_name(target));
    let text = render_upgrade_plan(&plan, &BTreeMap::new());
    assert!(
        text.contains("first: an etcd snapshot `pre-upgrade-v1.34.1-k3s1`"),
        "{text}"
    );
}

#[test]
fn a_first_server_that_failed_its_own_upgrade_is_brought_back_by_steps() {
    let (from, to) = (v("v1.34.3+k3s1"), v("v1.34.4+k3s1"));
    let steps = steps::recovery_steps(from, to);
    let kinds: Vec<&str> = steps.iter().map(crate::plan::Step::kind).collect();
    assert_eq!(kinds, ["deliver", "restart", "wait-ready"]);
    // The marker it already carries stays until the resumed turn clears it; /readyz is its
    // own (the API goes through it).
    assert_eq!(
        steps[0],
        crate::plan::Step::SwapBinary {
            from,
            to,
            marker: false
        }
    );
    assert_eq!(
        steps[2],
        crate::plan::Step::WaitReadyAt {
            version: to,
            readyz: true
        }
    );
}
