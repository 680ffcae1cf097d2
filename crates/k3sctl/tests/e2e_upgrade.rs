//! End-to-end: rolling K3s upgrades on a lab (1 server + 3 agents) with stand-in releases
//! v1.33.x → v1.34.y served by a local release site and channel server with the real URL
//! shapes. One lab carries the scenarios in order (each host boot costs CPU on CI): an upgrade
//! started right after apply while a kube-system pod is still Pending (the gate waits), the
//! dry run and refusals, the watched rollout through a channel redirect, a PodDisruptionBudget
//! that blocks (then disableEviction), a SIGKILLed rollout resumed with a person's cordon kept,
//! and a release that fails to start on its first node (`check` meanwhile finds no server's API
//! answering), fixed and resumed.

#[path = "e2e_upgrade/release_site.rs"]
mod release_site;
#[path = "e2e_upgrade/scenario.rs"]
mod scenario;
#[path = "e2e_upgrade/watcher.rs"]
mod watcher;

use std::time::{Duration, Instant};

use scenario::{
    Scenario, V133, V133_4, V134_1, V134_2, V134_3, V134_4, V134_5, budgeted_deployment,
};
use watcher::Watcher;

/// Besides `web` (3 replicas, at least 2 available): a DaemonSet on every node.
const AGENT_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent-ds, namespace: default}
spec:
  selector: {matchLabels: {app: agent-ds}}
  template:
    metadata: {labels: {app: agent-ds}}
    spec: {containers: [{name: ds, image: busybox}]}
"#;

/// A single pod on `node` whose PodDisruptionBudget allows no eviction.
fn blocker(node: &str) -> String {
    budgeted_deployment("blocker", "busybox", 1, 1, Some(node))
}

/// A kube-system workload that can only start on a node labelled `settle=yes`: its pod stays
/// Pending until the test sets the label, as a freshly applied cluster's pods are for a while.
const SETTLING: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: settle, namespace: kube-system}
spec:
  replicas: 1
  selector: {matchLabels: {app: settle}}
  template:
    metadata: {labels: {app: settle}}
    spec:
      nodeSelector: {settle: "yes"}
      containers: [{name: s, image: busybox}]
"#;

#[test]
fn rolling_upgrades_on_one_lab() {
    let s = Scenario::boot("upg", 4);
    let server = s.hosts[0].clone();
    let agents: Vec<String> = s.hosts[1..].to_vec();
    s.write_spec(V133_4, "disableEviction: false");
    s.apply_initial();

    // Upgrade right after apply: the cluster is still settling (a kube-system pod Pending).
    // The initial gate waits, saying for what, instead of refusing; once the pod can start,
    // the rollout runs (and the gate after the drained agent waits for it again).
    s.kubectl_apply(SETTLING);
    let mut run = s.spawn_upgrade(&["--to", V133]);
    let line = run.wait_for(
        &[
            "waiting for the cluster to settle",
            "pod kube-system/settle-",
        ],
        Duration::from_secs(60),
    );
    assert!(line.contains("Pending"), "{line}");
    assert!(
        s.versions().values().all(|v| v == V133_4),
        "a node moved while the gate waited: {:?}",
        s.versions()
    );
    s.kubectl(&["label", "node", &agents[0], "settle=yes"]);
    let out = run.finish();
    assert!(out.ok, "upgrade right after apply failed:\n{}", out.text);
    assert!(
        s.versions().values().all(|v| v == V133),
        "{:?}",
        s.versions()
    );
    assert!(s.unschedulable().is_empty());
    s.kubectl(&["-n", "kube-system", "delete", "deployment", "settle"]);
    s.write_spec(V133, "disableEviction: false");
    s.kubectl_apply(&format!(
        "{}---{AGENT_DS}",
        budgeted_deployment("web", "nginx", 3, 2, None)
    ));
    s.wait_ready_replicas("web", 3);

    // Dry run: per-node transitions in order, evictions listed, nothing changed.
    let out = s.upgrade(&["--dry-run", "--to", V134_1]);
    assert!(out.ok, "dry run failed:\n{}", out.text);
    let server_line = out
        .stdout
        .find(&format!("{server} (server): {V133} → {V134_1}"));
    let agent_line = out
        .stdout
        .find(&format!("{} (agent): {V133} → {V134_1}", agents[0]));
    assert!(
        server_line.is_some() && agent_line.is_some() && server_line < agent_line,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("kubelet must never be newer than the API server")
    );
    assert!(out.stdout.contains("evict: default/web-"), "{}", out.stdout);
    assert!(out.stdout.contains("default/agent-ds-"), "{}", out.stdout);
    assert!(s.versions().values().all(|v| v == V133));

    // The real thing drains and restarts every node: without a terminal and without --yes it
    // refuses, naming what it would do to each node; nothing changed.
    let out = s.upgrade_unconfirmed(&["--to", V134_1]);
    assert!(!out.ok, "upgrade ran without a confirmation:\n{}", out.text);
    assert!(
        out.text
            .contains(&format!("upgrade would restart 4 node(s) with {V134_1}"))
            && out
                .text
                .contains(&format!("- {server}: cordon, restart with {V134_1}"))
            && out.text.contains("--yes"),
        "{}",
        out.text
    );
    assert!(s.versions().values().all(|v| v == V133));
    assert!(s.unschedulable().is_empty(), "cordoned without consent");
    assert!(s.unschedulable().is_empty());

    // Refusals, before anything changes.
    s.site.set_channel("stable", "v1.33.4+k3s1");
    let out = s.upgrade(&["--channel", "stable"]);
    assert!(!out.ok);
    assert!(
        out.text
            .contains("channel stable answers v1.33.4+k3s1, lower than v1.33.5+k3s1"),
        "{}",
        out.text
    );
    let out = s.upgrade(&["--to", "v1.35.0+k3s1"]);
    assert!(!out.ok);
    assert!(
        out.text
            .contains("upgrade to the latest v1.34 release first"),
        "{}",
        out.text
    );
    let out = s.upgrade(&["--to", "v1.33.4+k3s1"]);
    assert!(
        !out.ok && out.text.contains("does not downgrade"),
        "{}",
        out.text
    );
    assert!(s.versions().values().all(|v| v == V133));

    // The watched rollout, target from the channel server's redirect.
    s.site.set_channel("v1.34", V134_1);
    let watch = Watcher::start(
        s.kubectl.clone(),
        s.kubeconfig.clone(),
        "web",
        "app=agent-ds",
        &server,
        V134_1,
    );
    watch.wait_for_first_sample(Duration::from_secs(30));
    let ds_before = s.pod_uids("app=agent-ds");
    let started = Instant::now();
    let out = s.upgrade(&["-o", "json", "--channel", "v1.34"]);
    let took = started.elapsed();
    let seen = watch.finish();
    assert!(out.ok, "upgrade failed:\n{}", out.text);
    eprintln!("rollout of 4 nodes took {took:?}; watcher: {seen:?}");
    assert!(seen.samples > 10, "{seen:?}");
    assert!(
        seen.min_ready >= 2,
        "ready replicas dropped below 2: {seen:?}"
    );
    assert!(seen.max_unschedulable <= 1, "{seen:?}");
    assert_eq!(
        seen.agent_before_server, 0,
        "an agent ran the target before the server: {seen:?}"
    );
    assert!(seen.server_at_target > 0, "{seen:?}");
    assert_eq!(
        seen.daemonset_uids, ds_before,
        "DaemonSet pods were evicted: {seen:?}"
    );
    assert!(
        s.versions().values().all(|v| v == V134_1),
        "{:?}",
        s.versions()
    );
    assert!(s.unschedulable().is_empty());
    let lines = out.json_lines();
    let report = lines
        .iter()
        .rev()
        .find(|l| l.get("nodes").is_some())
        .expect("final JSON report");
    assert_eq!(report["source"], "channel v1.34");
    assert_eq!(
        report["smoke"]["pod_problems"],
        serde_json::json!([]),
        "{report}"
    );
    let order: Vec<&str> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(order[0], server, "the server goes first");
    report_overhead(report);

    // A second run has nothing to do.
    let out = s.upgrade(&["--to", V134_1]);
    assert!(out.ok && out.text.contains("nothing to do"), "{}", out.text);

    // A PodDisruptionBudget that can never be satisfied: the drain times out naming it, the
    // rollout stops at that node, later nodes are untouched.
    let blocked = agents[1].clone();
    s.kubectl_apply(&blocker(&blocked));
    s.wait_ready_replicas("blocker", 1);
    s.write_spec(V133, "disableEviction: false");
    let out = s.upgrade(&["--to", V134_2]);
    assert!(!out.ok, "{}", out.text);
    assert!(
        out.text.contains(&format!("{blocked}: step drain failed")),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("PodDisruptionBudget default/blocker"),
        "{}",
        out.text
    );
    let versions = s.versions();
    assert_eq!(versions[&server], V134_2);
    assert_eq!(versions[&agents[0]], V134_2);
    assert_eq!(versions[&blocked], V134_1);
    assert_eq!(versions[&agents[2]], V134_1, "a later node was touched");
    assert_eq!(
        s.unschedulable(),
        vec![blocked.clone()],
        "the failed node stays cordoned"
    );
    // With disableEviction the drain deletes instead and the rollout finishes.
    s.write_spec(V133, "disableEviction: true");
    let out = s.upgrade(&["--to", V134_2]);
    assert!(out.ok, "{}", out.text);
    assert!(out.text.contains("bypasses"), "{}", out.text);
    assert!(out.stdout.contains("smoke check passed"), "{}", out.stdout);
    assert!(s.versions().values().all(|v| v == V134_2));
    assert!(s.unschedulable().is_empty());
    s.kubectl(&["delete", "deployment", "blocker"]);
    s.kubectl(&["delete", "pdb", "blocker"]);
    s.write_spec(V133, "disableEviction: false");

    // SIGKILL mid-rollout, with a node a person cordoned before the upgrade.
    let person = agents[2].clone();
    s.kubectl(&["cordon", &person]);
    s.kill_upgrade_after(&["--to", V134_3], &format!("{}: cordoned", agents[0]));
    let marked = s.k3sctl_cordoned();
    assert!(
        !marked.is_empty(),
        "the kill should leave a k3sctl cordon behind"
    );
    let out = s.upgrade(&["--to", V134_3]);
    assert!(out.ok, "{}", out.text);
    assert!(
        out.text
            .contains("taking over the lock of an interrupted run"),
        "{}",
        out.text
    );
    assert!(s.versions().values().all(|v| v == V134_3));
    assert!(s.k3sctl_cordoned().is_empty(), "k3sctl left a cordon");
    assert_eq!(
        s.unschedulable(),
        vec![person.clone()],
        "the person's cordon must stay"
    );
    s.kubectl(&["uncordon", &person]);

    // A release that cannot start on its first node: stop there with the journal excerpt.
    s.broken_release(V134_4);
    let out = s.upgrade(&["--to", V134_4]);
    assert!(!out.ok, "{}", out.text);
    assert!(
        out.text.contains(&format!("{server}: step restart failed")),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("release is broken (test)"),
        "journal excerpt missing:\n{}",
        out.text
    );
    // Meanwhile no server's API answers: `check` says so, naming the server it tried, and the
    // stopped service.
    let (healthy, report) = s.check();
    assert!(!healthy, "{report:#}");
    let api = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == "api")
        .unwrap_or_else(|| panic!("no api check: {report:#}"));
    assert!(
        api["status"] == "fail"
            && api["subject"] == server.as_str()
            && api["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("no server answered: {server}"))),
        "{report:#}"
    );
    // Fix the release and re-run: the rollout resumes and finishes.
    s.good_release(V134_4);
    let out = s.upgrade(&["--to", V134_4]);
    assert!(out.ok, "{}", out.text);
    // The first server (the API's) is brought back by its recovery steps on the step engine.
    assert!(
        out.text.contains(&format!(
            "{server}: restart k3s (resume the upgrade to {V134_4})"
        )),
        "{}",
        out.text
    );
    assert!(
        s.versions().values().all(|v| v == V134_4),
        "{:?}",
        s.versions()
    );
    assert!(s.unschedulable().is_empty());
    // Without --update-spec, the end names the spec line still holding the old version.
    let spec_before = fs_err::read_to_string(&s.spec).expect("spec");
    let line = 1 + spec_before
        .lines()
        .position(|l| l.trim() == format!("version: {V133}"))
        .expect("the version line");
    let wanted = format!("change {}:{line} to {V134_4}", s.spec.display());
    assert!(
        out.stdout.contains(&wanted),
        "{wanted} not in:\n{}",
        out.stdout
    );

    // Airgap: --binary FILE. Its version is checked on the first server before anything moves.
    let file = s.stamp(V134_5);
    let path = file.display().to_string();
    let out = s.upgrade(&["--binary", &path, "--to", "v1.34.6+k3s1"]);
    assert!(!out.ok);
    assert!(
        out.text.contains(&format!("is {V134_5}, but the target")),
        "{}",
        out.text
    );
    assert!(s.versions().values().all(|v| v == V134_4));
    assert!(s.unschedulable().is_empty());
    let out = s.upgrade(&["--binary", &path, "--update-spec"]);
    assert!(out.ok, "{}", out.text);
    assert!(
        s.versions().values().all(|v| v == V134_5),
        "{:?}",
        s.versions()
    );
    // --update-spec rewrote that one value in place; every other byte is as written.
    let spec_after = fs_err::read_to_string(&s.spec).expect("spec");
    assert_eq!(
        spec_after,
        spec_before.replace(&format!("version: {V133}"), &format!("version: {V134_5}"))
    );
    let wanted = format!(
        "spec updated: {}:{line}: k3s.version {V133} -> {V134_5}",
        s.spec.display()
    );
    assert!(
        out.stdout.contains(&wanted),
        "{wanted} not in:\n{}",
        out.stdout
    );
}

fn report_overhead(report: &serde_json::Value) {
    let mut worst = 0.0f64;
    for node in report["nodes"].as_array().cloned().unwrap_or_default() {
        eprintln!(
            "overhead {}: total {:.2}s waited {:.2}s k3sctl {:.3}s",
            node["name"].as_str().unwrap_or(""),
            node["seconds"].as_f64().unwrap_or(0.0),
            node["waited_seconds"].as_f64().unwrap_or(0.0),
            node["overhead_seconds"].as_f64().unwrap_or(0.0)
        );
        worst = worst.max(node["overhead_seconds"].as_f64().unwrap_or(0.0));
    }
    eprintln!("largest k3sctl overhead per node: {worst:.3}s (target < 1s)");
}
