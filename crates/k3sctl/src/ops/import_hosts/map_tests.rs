//! The import reproduces the hosts' effective configuration: read the install script's layout,
//! build the spec, render k3sctl's files from it and compare what K3s would run with.

use super::map::*;
use crate::k3s::config::NodeRole;
use crate::k3s::effective::{Compare, NodeDefaults, Sources, changes, effective};
use crate::plan::FileContent;
use crate::plan::from_spec::{Resolved, desired_hosts, resolve_registries};
use crate::secret::Secret;
use crate::spec::{Cluster, parse_str};

const SERVER_UNIT: &str = "[Unit]\nDescription=Lightweight Kubernetes\n[Service]\nType=notify\n\
EnvironmentFile=-/etc/systemd/system/k3s.service.env\n\
ExecStart=/usr/local/bin/k3s \\\n    server \\\n\t'--disable' \\\n\t'traefik' \\\n\t'--kubelet-arg' \\\n\t'max-pods=150' \\\n";
const AGENT_UNIT: &str = "[Service]\nEnvironmentFile=-/etc/systemd/system/k3s-agent.service.env\n\
ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'zone=b' \\\n";
/// config.yaml as an Ansible role writes it.
const SERVER_CONFIG: &str = "token: hunter2\ntls-san:\n  - 10.0.0.2\n  - k3s.example.com\ncluster-cidr: 10.52.0.0/16\nflannel-backend: host-gw\n";
const AGENT_CONFIG: &str = "kubelet-arg:\n  - max-pods=110\nnode-ip: 10.1.0.3\n";

fn base() -> Cluster {
    parse_str(
        "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  hostDefaults: {ssh: {user: root}}\n  hosts:\n    - {name: a, address: 10.0.0.2, role: server}\n    - {name: b, address: 10.0.0.3, role: server}\n  k3s: {}\n",
        "skeleton",
    )
    .expect("skeleton parses")
}

fn files(unit: &str, env: &str, config: &str, ip: &str, hostname: &str) -> (Sources, NodeDefaults) {
    (
        Sources {
            unit: unit.into(),
            env_files: vec![("/etc/systemd/system/x.service.env".into(), Secret::new(env))],
            config: Some(config.into()),
            dropins: vec![],
        },
        NodeDefaults {
            hostname: Some(hostname.into()),
            internal_ip: Some(ip.into()),
        },
    )
}

fn seen() -> (Vec<HostSeen>, Vec<(Sources, NodeDefaults)>) {
    let server = files(
        SERVER_UNIT,
        "K3S_TOKEN=hunter2\n",
        SERVER_CONFIG,
        "10.0.0.2",
        "S1",
    );
    let agent = files(
        AGENT_UNIT,
        "K3S_TOKEN='hunter2'\nK3S_URL='https://10.0.0.2:6443'\nHTTP_PROXY=http://p:3128\n",
        AGENT_CONFIG,
        "10.1.0.3",
        "w1",
    );
    let cluster = base();
    let mk = |i: usize, role, src: &(Sources, NodeDefaults)| HostSeen {
        base: cluster.spec.hosts[i].clone(),
        role,
        version: Some("v1.33.5+k3s1".parse().expect("version")),
        hostname: src.1.hostname.clone(),
        files: effective(&src.0, &src.1).expect("effective"),
        running: None,
        registries: Some("mirrors:\n  docker.io:\n    endpoint: [\"http://mirror:5000\"]\n".into()),
        node: Some(NodeSeen {
            labels: [("team".to_owned(), "x".to_owned())].into(),
            taints: vec![],
            internal_ip: src.1.internal_ip.clone(),
        }),
        manifests: vec![],
        takeovers: vec![],
        kept_environment: vec![],
    };
    let list = vec![
        mk(1, crate::spec::Role::Agent, &agent),
        mk(0, crate::spec::Role::Server, &server),
    ];
    (list, vec![agent, server])
}

#[test]
fn the_imported_spec_renders_what_the_hosts_run() {
    let (seen, sources) = seen();
    let imported = build(&base(), seen).expect("builds");
    let c = &imported.cluster;
    // The server first, named after its host name; the agent's node-ip as its private address.
    assert_eq!(c.spec.hosts[0].name, "s1");
    assert_eq!(c.spec.hosts[1].name, "w1");
    assert_eq!(c.spec.hosts[1].private_address.as_deref(), Some("10.1.0.3"));
    assert_eq!(
        c.spec.k3s.version.map(|v| v.to_string()).as_deref(),
        Some("v1.33.5+k3s1")
    );
    assert_eq!(
        c.spec
            .cluster
            .cluster_cidr
            .map(|x| x.to_string())
            .as_deref(),
        Some("10.52.0.0/16")
    );
    assert_eq!(c.spec.cluster.tls_sans, ["k3s.example.com"]);
    assert_eq!(c.spec.cluster.disable, ["traefik"]);
    assert_eq!(c.spec.cluster.server_config["flannel-backend"], "host-gw");
    assert_eq!(
        c.spec.cluster.server_config["kubelet-arg"],
        serde_json::json!(["max-pods=150"])
    );
    assert_eq!(
        c.spec.cluster.agent_config["kubelet-arg"],
        serde_json::json!(["max-pods=110"])
    );
    assert_eq!(c.spec.hosts[1].labels["zone"], "b");
    assert_eq!(
        c.spec.registries.mirrors["docker.io"].endpoints,
        ["http://mirror:5000"]
    );
    // What the spec cannot say is a warning; the token is nowhere.
    let warnings = imported.warnings.join("\n");
    assert!(warnings.contains("HTTP_PROXY"), "{warnings}");
    assert!(warnings.contains("team=x"), "{warnings}");
    let text = crate::spec::render_spec(c, &[]).expect("renders");
    assert!(!text.contains("hunter2") && !warnings.contains("hunter2"));
    let text = annotate(&text, &imported.comments);
    assert!(
        text.contains("clusterCidr: 10.52.0.0/16  # from s1: config.yaml"),
        "{text}"
    );
    assert!(text.contains("# from s1: ExecStart"), "{text}");
    crate::spec::load_str(
        &text,
        "imported",
        &crate::spec::ValidationContext {
            base_dir: ".".into(),
            home: None,
        },
    )
    .expect("the imported spec validates");

    // k3sctl's rendering of the spec runs the same (only the dropped HTTP_PROXY differs).
    assert_renders_the_same(c, &sources, &[], &["env HTTP_PROXY"]);
}

/// k3sctl's rendering of the imported spec `c` (its unit with the agent's unit drop-ins
/// `agent_dropins` as they are after apply) runs as the hosts' files `sources` (agent, server)
/// say, except for `agent_changes`.
fn assert_renders_the_same(
    c: &Cluster,
    sources: &[(Sources, NodeDefaults)],
    agent_dropins: &[crate::k3s::unit_dropins::UnitDropin],
    agent_changes: &[&str],
) {
    let registries =
        resolve_registries(&c.spec.registries, &|_| Err("none".into())).expect("no credentials");
    let desired = desired_hosts(
        c,
        &Resolved {
            registries,
            ..Default::default()
        },
    )
    .expect("renders");
    let token = Secret::new("K10aaaa::server:hunter2");
    for (host, (src, defaults)) in desired.iter().zip([&sources[1], &sources[0]]) {
        let file = |suffix: &str| {
            host.files
                .iter()
                .find(|f| f.path.ends_with(suffix))
                .expect("file")
        };
        let plain = |suffix: &str| match &file(suffix).content {
            FileContent::Plain(t) => t.clone(),
            _ => panic!("plain"),
        };
        let (env, _) = file(".service.env")
            .content
            .resolve(Some(&token))
            .expect("env");
        let dropins = if host.role == NodeRole::Agent {
            crate::k3s::unit_dropins::after_takeover(agent_dropins)
        } else {
            Vec::new()
        };
        let ours = Sources {
            unit: crate::k3s::effective::unit_with_dropins(&plain(".service"), &dropins),
            env_files: vec![("env".into(), env)],
            config: Some(plain("config.yaml")),
            dropins: vec![],
        };
        let before = effective(src, defaults).expect("before");
        let after = effective(&ours, defaults).expect("after");
        let how = Compare {
            role: host.role,
            server_with_data: host.role == NodeRole::Server,
        };
        let keys: Vec<String> = changes(&before, &after, how)
            .into_iter()
            .map(|c| c.key)
            .collect();
        let expected: Vec<&str> = if host.role == NodeRole::Agent {
            agent_changes.to_vec()
        } else {
            vec![]
        };
        assert_eq!(keys, expected, "{}", host.name);
    }
}

#[test]
fn a_drop_in_replacing_exec_start_is_imported_once_and_taken_over_without_a_change() {
    // The agent's unit drop-in replaces the installer's ExecStart with its own flags (a list
    // flag among them) and sets a proxy; the spec carries the flags, apply takes the drop-in's
    // ExecStart over, and K3s runs the same: no flag twice, the proxy kept by the drop-in.
    let dropins = crate::k3s::unit_dropins::applied(
        "k3s-agent",
        &[(
            "/run/systemd/system/k3s-.service.d/20-exec.conf".to_owned(),
            "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s agent --node-label zone=c \\\n  \
             --kubelet-arg=max-pods=120 --kubelet-arg=image-gc-high-threshold=80\n\
             Environment=HTTP_PROXY=http://p:3128\n"
                .to_owned(),
        )],
    );
    assert_eq!(dropins.len(), 1);
    let (mut seen, mut sources) = seen();
    let unit = crate::k3s::effective::unit_with_dropins(AGENT_UNIT, &dropins);
    let (agent_sources, defaults) = files(
        &unit,
        "K3S_TOKEN='hunter2'\nK3S_URL='https://10.0.0.2:6443'\n",
        AGENT_CONFIG,
        "10.1.0.3",
        "w1",
    );
    let agent = seen
        .iter_mut()
        .find(|h| h.role == crate::spec::Role::Agent)
        .expect("agent");
    agent.files = effective(&agent_sources, &defaults).expect("effective");
    agent.takeovers = crate::k3s::unit_dropins::takeovers(&dropins);
    agent.kept_environment = crate::k3s::unit_dropins::environment_names(
        &crate::k3s::unit_dropins::after_takeover(&dropins),
    );
    sources[0] = (agent_sources, defaults);
    let imported = build(&base(), seen).expect("builds");
    let c = &imported.cluster;
    let agent = c.spec.hosts.iter().find(|h| h.name == "w1").expect("w1");
    assert_eq!(
        agent.labels["zone"], "c",
        "the drop-in's label, not the unit's"
    );
    assert_eq!(
        c.spec.cluster.agent_config["kubelet-arg"],
        serde_json::json!(["max-pods=110", "max-pods=120", "image-gc-high-threshold=80"])
    );
    let warnings = imported.warnings.join("\n");
    assert!(
        warnings.contains(
            "w1: /run/systemd/system/k3s-.service.d/20-exec.conf replaces the unit's ExecStart"
        ) && warnings.contains(".before-k3sctl-"),
        "{warnings}"
    );
    assert!(!warnings.contains("HTTP_PROXY"), "{warnings}");
    assert_renders_the_same(c, &sources, &dropins, &[]);
}

#[test]
fn no_server_is_an_error_and_a_load_balancer_becomes_the_registration_address() {
    let (mut agents, _) = seen();
    agents.retain(|h| h.role == crate::spec::Role::Agent);
    assert!(
        build(&base(), agents)
            .expect_err("no server")
            .contains("k3s.service")
    );
    let (mut seen, _) = seen();
    let agent = seen
        .iter_mut()
        .find(|h| h.role == crate::spec::Role::Agent)
        .expect("agent");
    agent.files.settings.insert(
        "server".into(),
        crate::k3s::effective::Setting::Value("https://lb.example.com:6443".into()),
    );
    let imported = build(&base(), seen).expect("builds");
    assert_eq!(
        imported
            .cluster
            .spec
            .cluster
            .registration_address
            .as_deref(),
        Some("lb.example.com")
    );
}

#[test]
fn a_flag_given_as_an_environment_variable_is_not_missing_from_what_runs() {
    // The annotation K3s writes lists its command line and config files, never the flags its
    // environment gives (here K3S_RESOLV_CONF from a unit drop-in).
    let (mut seen, _) = seen();
    let (sources, defaults) = files(
        "[Service]\nExecStart=/usr/local/bin/k3s agent\n\n[Service]\n\
         Environment=K3S_RESOLV_CONF=/etc/resolv.conf\n",
        "K3S_URL=https://10.0.0.2:6443\n",
        "",
        "10.1.0.3",
        "w1",
    );
    let agent = seen
        .iter_mut()
        .find(|h| h.role == crate::spec::Role::Agent)
        .expect("agent");
    agent.files = effective(&sources, &defaults).expect("effective");
    agent.running =
        Some(crate::k3s::effective::from_node_args(r#"["agent"]"#, &defaults).expect("node args"));
    let imported = build(&base(), seen.clone()).expect("builds");
    assert!(
        !imported
            .warnings
            .iter()
            .any(|w| w.contains("other settings")),
        "{:#?}",
        imported.warnings
    );
    // A flag of the command line that K3s does not run with still is reported.
    let agent = seen
        .iter_mut()
        .find(|h| h.role == crate::spec::Role::Agent)
        .expect("agent");
    let (sources, _) = files(
        "[Service]\nExecStart=/usr/local/bin/k3s agent --resolv-conf /etc/resolv.conf\n",
        "K3S_URL=https://10.0.0.2:6443\n",
        "",
        "10.1.0.3",
        "w1",
    );
    agent.files = effective(&sources, &defaults).expect("effective");
    let imported = build(&base(), seen).expect("builds");
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("resolv-conf: (not set) -> /etc/resolv.conf")),
        "{:#?}",
        imported.warnings
    );
}
