//! Planner tests: fresh cluster, converged no-op, changes, repairs and refusals.

use std::collections::BTreeMap;

use super::*;
use crate::k3s::config::{NodeConfig, NodeRole, render_config};
use crate::k3s::release::Arch;
use crate::k3s::unit;
use crate::k3s::version::K3sVersion;
use crate::secret::Secret;

const TOKEN: &str =
    "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:topsecretpw";
const SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn version() -> K3sVersion {
    "v1.33.5+k3s1".parse().expect("valid")
}

fn host(name: &str, role: NodeRole, group: Option<&str>, first: bool, mirror: &str) -> DesiredHost {
    let config = render_config(&NodeConfig {
        role,
        node_name: name.into(),
        node_ip: Some(format!("10.0.0.{}", name.len())),
        node_external_ip: None,
        labels: BTreeMap::new(),
        taints: vec![],
        cluster: Default::default(),
        extra: BTreeMap::new(),
    })
    .expect("renders");
    let url = (role == NodeRole::Agent).then(|| "https://10.0.0.1:6443".to_string());
    DesiredHost {
        name: name.into(),
        role,
        group: group.map(str::to_string),
        first_server: first,
        taints: vec![],
        files: vec![
            DesiredFile {
                path: "/etc/rancher/k3s/registries.yaml".into(),
                mode: 0o644,
                content: FileContent::Plain(format!(
                    "mirrors:\n  docker.io:\n    endpoint:\n    - {mirror}\n"
                )),
                restarts: true,
            },
            DesiredFile {
                path: "/etc/rancher/k3s/config.yaml".into(),
                mode: 0o600,
                content: FileContent::Plain(config),
                restarts: true,
            },
            DesiredFile {
                path: unit::env_path(role),
                mode: 0o600,
                content: FileContent::Env {
                    url,
                    with_token: !first,
                },
                restarts: true,
            },
            DesiredFile {
                path: unit::unit_path(role),
                mode: 0o644,
                content: FileContent::Plain(unit::render_unit(role)),
                restarts: true,
            },
        ],
    }
}

fn desired(mirror: &str) -> Desired {
    Desired {
        cluster: "lab".into(),
        version: version(),
        binary_sha256: BTreeMap::from([(Arch::Amd64, SHA.to_string())]),
        hosts: vec![
            host("server-1", NodeRole::Server, None, true, mirror),
            host("agent-1", NodeRole::Agent, Some("g1"), false, mirror),
            host("agent-2", NodeRole::Agent, Some("g2"), false, mirror),
        ],
        exports: vec![DesiredExport {
            name: "admin".into(),
            path: "/tmp/lab.yaml".into(),
            context: "lab-admin".into(),
            server: "https://10.0.0.1:6443".into(),
            merge: false,
            up_to_date: None,
        }],
    }
}

fn fresh() -> Observed {
    let d = desired("http://mirror-a:5000");
    Observed {
        hosts: d
            .hosts
            .iter()
            .map(|h| (h.name.clone(), ObservedHost::fresh(Arch::Amd64)))
            .collect(),
        nodes: None,
        token: None,
    }
}

/// The observation after a successful apply of `d`.
fn converged(d: &Desired) -> Observed {
    let token = Secret::new(TOKEN);
    let hosts = d
        .hosts
        .iter()
        .map(|h| {
            let mut obs = ObservedHost::fresh(Arch::Amd64);
            obs.k3s_version = Some(version());
            obs.binary_sha256 = Some(SHA.into());
            obs.service_active = true;
            obs.service_enabled = true;
            for f in &h.files {
                let (content, shown) = f.content.resolve(Some(&token)).expect("token known");
                obs.files.insert(
                    f.path.clone(),
                    ObservedFile {
                        sha256: Some(content.sha256_hex()),
                        shown: Some(shown),
                    },
                );
            }
            (h.name.clone(), obs)
        })
        .collect();
    let nodes = d
        .hosts
        .iter()
        .map(|h| ObservedNode {
            name: h.name.clone(),
            ready: true,
            kubelet_version: version().to_string(),
            taints: vec![],
            owned_taints: Default::default(),
        })
        .collect();
    Observed {
        hosts,
        nodes: Some(nodes),
        token: Some(token),
    }
}

fn kinds(plan: &Plan, host: &str) -> Vec<&'static str> {
    plan.hosts
        .iter()
        .find(|h| h.host == host)
        .expect("host")
        .steps
        .iter()
        .map(Step::kind)
        .collect()
}

#[test]
fn fresh_cluster_installs_starts_and_joins_everything() {
    let plan = compute_plan(&desired("http://mirror-a:5000"), &fresh()).expect("plans");
    assert_eq!(
        kinds(&plan, "server-1"),
        [
            "upload-binary",
            "write-file",
            "write-file",
            "write-file",
            "write-file",
            "daemon-reload",
            "start",
            "wait-server-ready",
            "wait-node-ready"
        ]
    );
    assert_eq!(kinds(&plan, "agent-1").last(), Some(&"wait-node-ready"));
    assert!(plan.hosts[1].steps.contains(&Step::Start { join: true }));
    assert!(plan.has_changes());
    insta::assert_snapshot!(render_plan(&plan));
}

#[test]
fn converged_cluster_has_nothing_to_do() {
    let mut d = desired("http://mirror-a:5000");
    d.exports[0].up_to_date = Some(true);
    let plan = compute_plan(&d, &converged(&d)).expect("plans");
    assert!(plan.hosts.iter().all(|h| h.steps.is_empty()), "{plan:#?}");
    assert!(!plan.has_changes());
    assert!(render_plan(&plan).ends_with("Nothing to do.\n"));
}

#[test]
fn registry_change_rewrites_and_restarts_every_node() {
    let before = desired("http://mirror-a:5000");
    let after = desired("http://mirror-b:5000");
    let plan = compute_plan(&after, &converged(&before)).expect("plans");
    for h in &plan.hosts {
        let kinds: Vec<_> = h.steps.iter().map(Step::kind).collect();
        assert_eq!(kinds[..2], ["write-file", "restart"], "{}", h.host);
        let Step::WriteFile { diff, .. } = &h.steps[0] else {
            panic!("write first")
        };
        assert!(
            diff.contains("-    - http://mirror-a:5000")
                && diff.contains("+    - http://mirror-b:5000"),
            "{diff}"
        );
    }
}

#[test]
fn token_never_appears_in_text_or_json() {
    let d = desired("http://mirror-a:5000");
    let mut obs = converged(&d);
    // Env files differ (e.g. deleted by hand): they must be rewritten without showing the token.
    for h in obs.hosts.values_mut() {
        h.files.retain(|path, _| !path.ends_with(".env"));
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    let text = render_plan(&plan);
    let json = serde_json::to_string(&plan).expect("json");
    assert!(text.contains("content holds secrets"));
    for shown in [&text, &json] {
        assert!(!shown.contains("topsecretpw"), "token leaked: {shown}");
    }
}

#[test]
fn missing_node_and_stopped_service_are_repaired() {
    let d = desired("http://mirror-a:5000");
    let mut obs = converged(&d);
    if let Some(nodes) = obs.nodes.as_mut() {
        nodes.retain(|n| n.name != "agent-1");
    }
    if let Some(h) = obs.hosts.get_mut("agent-2") {
        h.service_active = false;
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    assert_eq!(kinds(&plan, "server-1"), Vec::<&str>::new());
    assert_eq!(kinds(&plan, "agent-1"), ["restart", "wait-node-ready"]);
    assert_eq!(kinds(&plan, "agent-2"), ["start", "wait-node-ready"]);
    // Registered in the API: started again, not joined (no join probe, no "join" wording).
    let agent2 = plan
        .hosts
        .iter()
        .find(|h| h.host == "agent-2")
        .expect("agent-2");
    assert_eq!(agent2.steps[0], Step::Start { join: false });
}

#[test]
fn interrupted_apply_restarts_even_when_files_match() {
    let d = desired("http://mirror-a:5000");
    let mut obs = converged(&d);
    if let Some(h) = obs.hosts.get_mut("agent-2") {
        h.restart_pending = true;
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    assert_eq!(kinds(&plan, "agent-2"), ["restart", "wait-node-ready"]);
}

#[test]
fn version_change_on_a_running_node_points_to_upgrade() {
    let d = desired("http://mirror-a:5000");
    let mut obs = converged(&d);
    if let Some(h) = obs.hosts.get_mut("agent-1") {
        h.k3s_version = Some("v1.32.1+k3s1".parse().expect("valid"));
        h.binary_sha256 = Some("2".repeat(64));
    }
    let err = compute_plan(&d, &obs).expect_err("refused");
    assert!(err.to_string().contains("k3sctl upgrade"), "{err}");
}

#[test]
fn server_taints_are_enforced_on_live_nodes_and_only_k3sctls_are_removed() {
    const CP: &str = "node-role.kubernetes.io/control-plane:NoSchedule";
    let mut d = desired("http://mirror-a:5000");
    d.hosts[0].taints = vec![CP.into()];
    // Fresh: the server registers with the taint (node-taint) and k3sctl records it as its own.
    let plan = compute_plan(&d, &fresh()).expect("plans");
    assert_eq!(kinds(&plan, "server-1").last(), Some(&"enforce-taints"));
    assert_eq!(
        plan.hosts[0].steps.last(),
        Some(&Step::EnforceTaints {
            wanted: vec![CP.into()],
            add: vec![CP.into()],
            remove: vec![],
            adopt: true,
        })
    );
    assert!(!kinds(&plan, "agent-1").contains(&"enforce-taints"));
    // A live server without it (registration-only in K3s): added, nothing else happens.
    let mut observed = converged(&d);
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(kinds(&plan, "server-1"), ["enforce-taints"]);
    assert!(render_plan(&plan).contains(&format!("~ node taints: add {CP}")));
    // Present and recorded as k3sctl's: nothing to do.
    let nodes = observed.nodes.as_mut().expect("nodes");
    nodes[0].taints = vec![CP.into(), "person=1:NoExecute".into()];
    nodes[0].owned_taints = [CP.to_string()].into();
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(plan.hosts.iter().all(|h| h.steps.is_empty()), "{plan:#?}");
    // Dropped from the spec: k3sctl's taint goes, the person's stays.
    d.hosts[0].taints.clear();
    let plan = compute_plan(&d, &observed).expect("plans");
    let Some(Step::EnforceTaints { add, remove, .. }) = plan.hosts[0].steps.last() else {
        panic!("{plan:#?}")
    };
    assert!(add.is_empty());
    assert_eq!(remove, &vec![CP.to_string()]);
}
