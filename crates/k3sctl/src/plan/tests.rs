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
        labels: BTreeMap::new(),
        files: desired_files(
            role,
            format!("mirrors:\n  docker.io:\n    endpoint:\n    - {mirror}\n"),
            config,
            url,
            !first,
        ),
    }
}

/// The files k3sctl writes on a host of `role`: registries.yaml, config.yaml, the env file
/// (joining through `url`, with the token or not) and the unit; each restarts K3s.
pub(super) fn desired_files(
    role: NodeRole,
    registries: String,
    config: String,
    url: Option<String>,
    with_token: bool,
) -> Vec<DesiredFile> {
    vec![
        DesiredFile {
            path: crate::k3s::registries::REGISTRIES_PATH.into(),
            mode: 0o644,
            content: FileContent::Plain(registries),
            restarts: true,
        },
        DesiredFile {
            path: crate::k3s::config::CONFIG_PATH.into(),
            mode: 0o600,
            content: FileContent::Plain(config),
            restarts: true,
        },
        DesiredFile {
            path: unit::env_path(role),
            mode: 0o600,
            content: FileContent::Env {
                url,
                with_token,
                cluster_init: false,
            },
            restarts: true,
        },
        DesiredFile {
            path: unit::unit_path(role),
            mode: 0o644,
            content: FileContent::Plain(unit::render_unit(role)),
            restarts: true,
        },
    ]
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
        ha: false,
        snapshot_after_conversion: true,
        critical: BTreeMap::new(),
        exports: vec![DesiredExport {
            name: "admin".into(),
            path: "/tmp/lab.yaml".into(),
            context: "lab-admin".into(),
            server: "https://10.0.0.1:6443".into(),
            merge: false,
            up_to_date: None,
        }],
        spec_nodes: ["server-1", "agent-1", "agent-2"].map(String::from).into(),
    }
}

fn fresh() -> Observed {
    fresh_of(&desired("http://mirror-a:5000"))
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
            obs.node_password = true;
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
            etcd_voter: (h.role == NodeRole::Server).then_some(true),
            internal_ip: None,
            labels: BTreeMap::new(),
            owned_labels: Default::default(),
            // What K3s records for the config `host()` renders: node-name and node-ip.
            node_args: Some(
                serde_json::json!([
                    h.role.subcommand(),
                    "--node-name",
                    h.name,
                    "--node-ip",
                    format!("10.0.0.{}", h.name.len())
                ])
                .to_string(),
            ),
        })
        .collect();
    Observed {
        hosts,
        nodes: Some(nodes),
        token: Some(token),
        etcd_members: None,
        // The objects the manifests declare, as K3s applied them.
        objects: Some(
            super::manifest_drift::declared_objects(&d.hosts)
                .0
                .into_iter()
                .map(|o| (o.key, Some(o.doc)))
                .collect(),
        ),
    }
}

/// `host`'s part of the plan.
fn host_plan<'a>(plan: &'a Plan, host: &str) -> &'a HostPlan {
    plan.hosts.iter().find(|h| h.host == host).expect("host")
}

fn kinds(plan: &Plan, host: &str) -> Vec<&'static str> {
    host_plan(plan, host).steps.iter().map(Step::kind).collect()
}

fn text_of_steps(plan: &Plan, host: &str) -> String {
    let h = host_plan(plan, host);
    h.steps
        .iter()
        .map(|s| s.title(h.role))
        .collect::<Vec<_>>()
        .join("\n")
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
fn only_steps_that_disturb_running_nodes_are_disruptions() {
    let fresh_plan = compute_plan(&desired("http://mirror-a:5000"), &fresh()).expect("plans");
    assert!(
        fresh_plan.disruptions().is_empty(),
        "a fresh install asks nothing"
    );
    let before = desired("http://mirror-a:5000");
    let after = desired("http://mirror-b:5000");
    let plan = compute_plan(&after, &converged(&before)).expect("plans");
    let lines: Vec<String> = plan.disruptions().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), plan.hosts.len(), "{lines:#?}");
    assert!(
        lines[0].starts_with("server-1: restart k3s ("),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("agent-1: restart k3s-agent ("))
    );
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

/// Three servers on embedded etcd and one agent, files in their lasting form (servers join
/// through the registration address; their env file needs no restart).
fn ha_desired() -> Desired {
    let mirror = "http://mirror-a:5000";
    let mut hosts = vec![
        host("server-1", NodeRole::Server, None, true, mirror),
        host("server-2", NodeRole::Server, None, false, mirror),
        host("server-3", NodeRole::Server, None, false, mirror),
        host("agent-1", NodeRole::Agent, Some("g1"), false, mirror),
    ];
    for h in hosts.iter_mut().filter(|h| h.role == NodeRole::Server) {
        for f in h.files.iter_mut() {
            if matches!(f.content, FileContent::Env { .. }) {
                f.content = FileContent::Env {
                    url: Some("https://10.0.0.1:6443".into()),
                    with_token: true,
                    cluster_init: false,
                };
                f.restarts = false;
            }
        }
    }
    let mut d = desired(mirror);
    d.spec_nodes = hosts.iter().map(|h| h.name.clone()).collect();
    d.hosts = hosts;
    d.ha = true;
    d.critical = BTreeMap::from([("cluster-cidr".to_owned(), "10.42.0.0/16".to_owned())]);
    d
}

fn fresh_of(d: &Desired) -> Observed {
    Observed {
        hosts: d
            .hosts
            .iter()
            .map(|h| (h.name.clone(), ObservedHost::fresh(Arch::Amd64)))
            .collect(),
        nodes: None,
        token: None,
        etcd_members: None,
        objects: None,
    }
}

fn env_write(plan: &Plan, host: &str) -> Vec<FileContent> {
    host_plan(plan, host)
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::WriteFile { content, .. } if matches!(content, FileContent::Env { .. }) => {
                Some(content.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn fresh_ha_bootstraps_once_then_servers_join_as_voters_one_by_one() {
    let d = ha_desired();
    let plan = compute_plan(&d, &fresh_of(&d)).expect("plans");
    assert_eq!(
        plan.datastore,
        DatastoreAction::Bootstrap {
            host: "server-1".into(),
            cluster_init: true
        }
    );
    let first = kinds(&plan, "server-1");
    assert_eq!(
        first[first.len() - 5..],
        [
            "start",
            "wait-server-ready",
            "wait-node-ready",
            "wait-etcd-voter",
            "write-file"
        ]
    );
    // cluster-init only for the bootstrap; then the lasting join form is written back, so a
    // rebuild of this host later joins instead of starting a second cluster.
    let envs = env_write(&plan, "server-1");
    assert_eq!(
        envs,
        [
            FileContent::Env {
                url: None,
                with_token: false,
                cluster_init: true
            },
            FileContent::Env {
                url: Some("https://10.0.0.1:6443".into()),
                with_token: true,
                cluster_init: false
            }
        ]
    );
    for joiner in ["server-2", "server-3"] {
        let k = kinds(&plan, joiner);
        assert_eq!(
            k[k.len() - 3..],
            ["start", "wait-node-ready", "wait-etcd-voter"]
        );
        assert!(!env_write(&plan, joiner).iter().any(|e| matches!(
            e,
            FileContent::Env {
                cluster_init: true,
                ..
            }
        )));
        let h = plan.hosts.iter().find(|h| h.host == joiner).expect("host");
        assert!(h.steps.contains(&Step::Start { join: true }));
    }
    assert!(!kinds(&plan, "agent-1").contains(&"wait-etcd-voter"));
    let text = render_plan(&plan);
    assert!(text.contains("cluster-init"), "{text}");
    assert!(text.contains("Cluster-wide server settings (identical on every server):\n  cluster-cidr: 10.42.0.0/16"), "{text}");
}

#[test]
fn converged_ha_has_nothing_to_do_and_a_server_env_change_needs_no_restart() {
    let mut d = ha_desired();
    d.exports[0].up_to_date = Some(true);
    let mut obs = converged(&d);
    for name in ["server-1", "server-2", "server-3"] {
        obs.hosts.get_mut(name).expect("host").etcd_data = true;
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    assert!(!plan.has_changes(), "{}", render_plan(&plan));
    obs.hosts
        .get_mut("server-2")
        .expect("host")
        .files
        .retain(|path, _| !path.ends_with(".env"));
    let plan = compute_plan(&d, &obs).expect("plans");
    assert_eq!(kinds(&plan, "server-2"), ["write-file"]);
}

#[test]
fn rebuilt_first_server_joins_and_never_gets_cluster_init() {
    let d = ha_desired();
    let mut obs = converged(&d);
    for name in ["server-2", "server-3"] {
        obs.hosts.get_mut(name).expect("host").etcd_data = true;
    }
    // server-1 was wiped: nothing of K3s on it, but its Node object is still in the API.
    obs.hosts
        .insert("server-1".into(), ObservedHost::fresh(Arch::Amd64));
    let plan = compute_plan(&d, &obs).expect("plans");
    assert_eq!(plan.datastore, DatastoreAction::Keep);
    let first = plan
        .hosts
        .iter()
        .find(|h| h.host == "server-1")
        .expect("host");
    assert!(!first.first_server);
    assert!(first.steps.contains(&Step::Start { join: true }));
    assert!(!kinds(&plan, "server-1").contains(&"wait-server-ready"));
    assert_eq!(
        env_write(&plan, "server-1"),
        [FileContent::Env {
            url: Some("https://10.0.0.1:6443".into()),
            with_token: true,
            cluster_init: false
        }]
    );
    assert!(!render_plan(&plan).contains("starts the cluster"));
}

#[test]
fn growing_one_sqlite_server_to_three_converts_it_first() {
    let single = desired("http://mirror-a:5000");
    let mut obs = converged(&single);
    let store = "/var/lib/rancher/k3s/server/db/state.db";
    obs.hosts.get_mut("server-1").expect("host").sqlite_store = Some(store.into());
    let d = ha_desired();
    for name in ["server-2", "server-3"] {
        obs.hosts
            .insert(name.into(), ObservedHost::fresh(Arch::Amd64));
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    assert!(
        plan.disruptions().iter().any(|l| l
            .to_string()
            .starts_with("server-1: stop k3s and convert its datastore")),
        "{:#?}",
        plan.disruptions()
    );
    assert_eq!(
        plan.datastore,
        DatastoreAction::Convert {
            host: "server-1".into(),
            store: store.into()
        }
    );
    let k = kinds(&plan, "server-1");
    assert_eq!(k[0], "convert-datastore");
    assert_eq!(
        k[k.len() - 7..],
        [
            "restart",
            "wait-server-ready",
            "wait-node-ready",
            "verify-migration",
            "wait-etcd-voter",
            "etcd-snapshot",
            "write-file"
        ]
    );
    // The first restore point on etcd, before any other server joins; not with
    // upgrade.snapshot: false.
    assert!(text_of_steps(&plan, "server-1").contains("etcd snapshot `post-conversion`"));
    let no_snapshot = Desired {
        snapshot_after_conversion: false,
        ..d.clone()
    };
    let plan_without = compute_plan(&no_snapshot, &obs).expect("plans");
    assert!(!kinds(&plan_without, "server-1").contains(&"etcd-snapshot"));
    assert!(matches!(
        env_write(&plan, "server-1")[0],
        FileContent::Env {
            cluster_init: true,
            ..
        }
    ));
    let text = render_plan(&plan);
    assert!(
        text.contains("Conversion: server-1") && text.contains("API is down"),
        "{text}"
    );
    assert!(kinds(&plan, "server-2").contains(&"wait-etcd-voter"));
}

#[test]
fn conversion_refusals_name_the_host_and_the_way_out() {
    let d = ha_desired();
    let base = || {
        let mut obs = converged(&desired("http://mirror-a:5000"));
        for name in ["server-2", "server-3"] {
            obs.hosts
                .insert(name.into(), ObservedHost::fresh(Arch::Amd64));
        }
        obs.hosts.get_mut("server-1").expect("host").sqlite_store = Some("/db/state.db".into());
        obs
    };
    let mut stale = base();
    stale.hosts.get_mut("server-1").expect("host").etcd_data = true;
    let err = compute_plan(&d, &stale).expect_err("stale").to_string();
    assert!(
        err.contains("server-1") && err.contains("member/wal"),
        "{err}"
    );

    let mut old = base();
    let old_version: K3sVersion = "v1.21.5+k3s1".parse().expect("v");
    old.hosts.get_mut("server-1").expect("host").k3s_version = Some(old_version);
    let mut old_d = d.clone();
    old_d.version = old_version;
    let err = compute_plan(&old_d, &old).expect_err("too old").to_string();
    assert!(
        err.contains("v1.22.2") && err.contains("k3sctl upgrade"),
        "{err}"
    );

    let mut two = base();
    two.hosts.get_mut("server-2").expect("host").sqlite_store = Some("/db/state.db".into());
    let err = compute_plan(&d, &two)
        .expect_err("two clusters")
        .to_string();
    assert!(err.contains("server-1, server-2"), "{err}");
}

#[test]
fn a_server_that_lost_its_data_has_its_stale_member_removed_then_rejoins() {
    let d = ha_desired();
    let mut obs = converged(&d);
    for name in ["server-1", "server-3"] {
        obs.hosts.get_mut(name).expect("host").etcd_data = true;
    }
    // server-2's disk was wiped; K3s keeps trying (and failing) to join under its old name.
    obs.etcd_members = Some(
        [
            "server-1-0a0b0c0d",
            "server-2-1a2b3c4d",
            "server-3-deadbeef",
        ]
        .iter()
        .enumerate()
        .map(|(i, name)| EtcdMember {
            id: format!("{}", 100 + i),
            name: (*name).into(),
            peer_urls: vec![],
            learner: false,
        })
        .collect(),
    );
    let plan = compute_plan(&d, &obs).expect("plans");
    assert_eq!(
        kinds(&plan, "server-2"),
        [
            "remove-etcd-member",
            "restart",
            "wait-node-ready",
            "wait-etcd-voter"
        ]
    );
    let h = plan
        .hosts
        .iter()
        .find(|h| h.host == "server-2")
        .expect("host");
    assert_eq!(
        h.steps[0],
        Step::RemoveEtcdMember {
            member: "server-2-1a2b3c4d".into(),
            id: "101".into()
        }
    );
    assert!(kinds(&plan, "server-1").is_empty() && kinds(&plan, "server-3").is_empty());
}

#[test]
fn a_reinstalled_host_has_its_stale_node_password_removed_before_it_starts() {
    let d = ha_desired();
    let mut obs = converged(&d);
    for name in ["server-1", "server-2", "server-3"] {
        obs.hosts.get_mut(name).expect("host").etcd_data = true;
    }
    obs.etcd_members = Some(vec![EtcdMember {
        id: "103".into(),
        name: "server-3-deadbeef".into(),
        peer_urls: vec![],
        learner: false,
    }]);
    // /var/lib/rancher and /etc/rancher wiped on server-3 and agent-1 (K3s stopped): no data,
    // no config, no node password; their Node objects are still in the API.
    for name in ["server-3", "agent-1"] {
        let h = obs.hosts.get_mut(name).expect("host");
        h.etcd_data = false;
        h.node_password = false;
        h.service_active = false;
        h.files.retain(|path, _| !path.starts_with("/etc/rancher/"));
    }
    let plan = compute_plan(&d, &obs).expect("plans");
    let server = kinds(&plan, "server-3");
    assert_eq!(
        &server[server.len() - 5..],
        [
            "remove-etcd-member",
            "remove-node-password",
            "start",
            "wait-node-ready",
            "wait-etcd-voter"
        ],
        "{server:?}"
    );
    let agent = kinds(&plan, "agent-1");
    assert_eq!(
        &agent[agent.len() - 3..],
        ["remove-node-password", "start", "wait-node-ready"],
        "{agent:?}"
    );
    let text = crate::plan::render_plan(&plan);
    assert!(
        text.contains("delete the stale node-password secret"),
        "{text}"
    );
    // A host the API does not know joins without touching any secret.
    let mut obs = converged(&d);
    obs.nodes
        .as_mut()
        .expect("nodes")
        .retain(|n| n.name != "agent-1");
    let h = obs.hosts.get_mut("agent-1").expect("host");
    h.node_password = false;
    h.service_active = false;
    let plan = compute_plan(&d, &obs).expect("plans");
    assert!(!kinds(&plan, "agent-1").contains(&"remove-node-password"));
}

#[path = "drift_tests.rs"]
mod drift_tests;

#[test]
fn command_links_are_created_only_where_the_place_is_free() {
    use crate::k3s::links::CommandLink;
    let mut d = desired("http://mirror-a:5000");
    d.exports[0].up_to_date = Some(true);
    let mut observed = converged(&d);
    for obs in observed.hosts.values_mut() {
        obs.links = BTreeMap::from([
            // A person's kubectl on PATH, a free place, and the install script's link.
            (
                "kubectl".to_string(),
                CommandLink::Taken("/usr/bin/kubectl".into()),
            ),
            ("crictl".to_string(), CommandLink::Missing),
            ("ctr".to_string(), CommandLink::ToK3s),
        ]);
    }
    let plan = compute_plan(&d, &observed).expect("plans");
    for host in ["server-1", "agent-1", "agent-2"] {
        assert_eq!(kinds(&plan, host), ["link-command"], "{host}");
        assert_eq!(
            text_of_steps(&plan, host),
            "link /usr/local/bin/crictl -> k3s"
        );
    }
    // A link is a change that disturbs nothing: no restart, no confirmation.
    assert!(plan.has_changes());
    assert!(plan.disruptions().is_empty());
    assert!(render_plan(&plan).contains("  + link /usr/local/bin/crictl -> k3s\n"));

    // Once linked (or where every place is taken), nothing is left to do.
    for obs in observed.hosts.values_mut() {
        obs.links.insert("crictl".to_string(), CommandLink::ToK3s);
        obs.links.insert(
            "ctr".to_string(),
            CommandLink::Taken("/usr/local/bin/ctr -> /opt/containerd/bin/ctr".into()),
        );
    }
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(!plan.has_changes(), "{plan:#?}");

    // A fresh host gets all three, after the binary and its files.
    let mut fresh = fresh();
    for obs in fresh.hosts.values_mut() {
        for command in crate::k3s::links::COMMANDS {
            obs.links.insert(command.to_string(), CommandLink::Missing);
        }
    }
    let plan = compute_plan(&desired("http://mirror-a:5000"), &fresh).expect("plans");
    let steps = kinds(&plan, "agent-1");
    let links: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "link-command")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(links.len(), 3, "{steps:?}");
    let start = steps.iter().position(|k| *k == "start").expect("start");
    assert!(links.iter().all(|i| *i < start), "{steps:?}");
}
