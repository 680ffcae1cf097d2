//! Planner tests of adoption: another tool's files, k3sctl's rendering, restart or not.

use std::collections::BTreeMap;

use super::tests::desired_files;
use super::*;
use crate::k3s::config::{ClusterSettings, NodeConfig, NodeRole, render_config};
use crate::k3s::registries::REGISTRIES_PATH;
use crate::k3s::release::Arch;
use crate::k3s::unit;
use crate::secret::Secret;

const TOKEN: &str =
    "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:topsecretpw";
const SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const REGISTRIES: &str =
    "# Managed by k3sctl\nmirrors:\n  docker.io:\n    endpoint:\n    - http://mirror:5000\n";

/// The install script's agent unit, flags in ExecStart.
const INSTALLER_AGENT_UNIT: &str = "[Unit]\nDescription=Lightweight Kubernetes\n\n[Service]\nType=notify\n\
EnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\n\
EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env\nKillMode=process\n\
ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'zone=a' \\\n";

fn agent(extra: BTreeMap<String, serde_json::Value>) -> DesiredHost {
    let config = render_config(&NodeConfig {
        role: NodeRole::Agent,
        node_name: "agent-1".into(),
        node_ip: Some("10.0.0.7".into()),
        node_external_ip: None,
        labels: BTreeMap::from([("zone".into(), "a".into())]),
        taints: vec![],
        cluster: ClusterSettings::default(),
        extra,
    })
    .expect("renders");
    DesiredHost {
        name: "agent-1".into(),
        role: NodeRole::Agent,
        group: None,
        first_server: false,
        taints: vec![],
        labels: BTreeMap::new(),
        files: desired_files(
            NodeRole::Agent,
            REGISTRIES.into(),
            config,
            Some("https://10.0.0.1:6443".into()),
            true,
        ),
    }
}

fn desired(host: DesiredHost) -> Desired {
    Desired {
        cluster: "lab".into(),
        version: "v1.33.5+k3s1".parse().expect("version"),
        binary_sha256: BTreeMap::from([(Arch::Amd64, SHA.to_string())]),
        hosts: vec![host],
        ha: false,
        snapshot_after_conversion: true,
        critical: BTreeMap::new(),
        exports: vec![],
        spec_nodes: ["agent-1".to_owned()].into(),
    }
}

/// An agent installed by the install script: flags in ExecStart, the env file with the bare
/// password and K3S_URL, registries.yaml in another form.
fn installed(start: StartFiles) -> Observed {
    let mut obs = ObservedHost::fresh(Arch::Amd64);
    obs.k3s_version = Some("v1.33.5+k3s1".parse().expect("version"));
    obs.binary_sha256 = Some(SHA.into());
    obs.service_active = true;
    obs.service_enabled = true;
    let text = |t: &str| ObservedFile {
        sha256: Some(Secret::new(t).sha256_hex()),
        shown: Some(t.to_owned()),
    };
    obs.files
        .insert(unit::unit_path(NodeRole::Agent), text(&start.unit));
    obs.files.insert(
        REGISTRIES_PATH.into(),
        text("mirrors:\n  \"docker.io\": {endpoint: [\"http://mirror:5000\"]}\n"),
    );
    obs.files.insert(
        unit::env_path(NodeRole::Agent),
        ObservedFile {
            sha256: Some("e".repeat(64)),
            shown: None,
        },
    );
    obs.start = Some(start);
    Observed {
        hosts: BTreeMap::from([("agent-1".to_owned(), obs)]),
        nodes: Some(vec![ObservedNode {
            name: "agent-1".into(),
            ready: true,
            kubelet_version: "v1.33.5+k3s1".into(),
            taints: vec![],
            owned_taints: Default::default(),
            etcd_voter: None,
            internal_ip: Some("10.0.0.7".into()),
            labels: BTreeMap::new(),
            owned_labels: Default::default(),
            node_args: None,
        }]),
        token: Some(Secret::new(TOKEN)),
        etcd_members: None,
        objects: None,
    }
}

fn start_files() -> StartFiles {
    StartFiles {
        unit: INSTALLER_AGENT_UNIT.into(),
        env_files: vec![(
            unit::env_path(NodeRole::Agent),
            Secret::new("K3S_TOKEN='topsecretpw'\nK3S_URL='https://10.0.0.1:6443'\n"),
        )],
        config: None,
        dropins: vec![],
        unit_dropins: vec![],
        hostname: Some("agent-1".into()),
    }
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.hosts[0].steps.iter().map(Step::kind).collect()
}

/// Why the first host restarts (it must).
fn restart_reason(plan: &Plan) -> String {
    plan.hosts[0]
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Restart { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("restarts")
}

/// The spec's extra setting `kubelet-arg: [max-pods=150]`.
fn max_pods_150() -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([(
        "kubelet-arg".to_owned(),
        serde_json::json!(["max-pods=150"]),
    )])
}

#[test]
fn only_the_form_changes_files_are_taken_over_without_a_restart() {
    let plan =
        compute_plan(&desired(agent(BTreeMap::new())), &installed(start_files())).expect("plans");
    assert_eq!(
        kinds(&plan),
        [
            "adopt",
            "write-file",
            "write-file",
            "write-file",
            "write-file",
            "daemon-reload",
        ],
        "{plan:#?}"
    );
    let text = render_plan(&plan);
    assert!(
        text.contains("= adopt: no restart (effective configuration unchanged)"),
        "{text}"
    );
    assert!(!text.contains("topsecretpw"), "{text}");
}

/// systemd reads the unit and its drop-ins, not the env file, config.yaml or registries.yaml
/// (K3s reads those at its start): when k3sctl's unit is already in place, taking over the
/// other files needs no `daemon-reload`.
#[test]
fn when_the_unit_is_already_k3sctls_the_adoption_does_not_reload_systemd() {
    let host = agent(BTreeMap::new());
    let unit_text = host
        .files
        .iter()
        .find_map(|f| match &f.content {
            FileContent::Plain(text) if f.path == unit::unit_path(NodeRole::Agent) => {
                Some(text.clone())
            }
            _ => None,
        })
        .expect("k3sctl's unit");
    // The flags the install script put in ExecStart are in config.yaml (another form).
    let mut observed = installed(StartFiles {
        unit: unit_text,
        config: Some("node-label: [\"zone=a\"]\n".into()),
        ..start_files()
    });
    let plan = compute_plan(&desired(host), &observed).expect("plans");
    assert_eq!(
        kinds(&plan),
        ["adopt", "write-file", "write-file", "write-file"],
        "{plan:#?}"
    );
    // A unit file systemd has not loaded yet still gets its reload.
    observed
        .hosts
        .get_mut("agent-1")
        .expect("host")
        .needs_daemon_reload = true;
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &observed).expect("plans");
    assert_eq!(kinds(&plan).last(), Some(&"daemon-reload"), "{plan:#?}");
}

#[test]
fn a_changed_setting_restarts_and_is_named() {
    let mut start = start_files();
    start.config = Some("node-ip: 10.0.0.8\n".into());
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &installed(start)).expect("plans");
    let restart = restart_reason(&plan);
    assert_eq!(restart, "setting node-ip: [10.0.0.8] -> (not set) changed");
    assert!(!kinds(&plan).contains(&"adopt"));
}

#[test]
fn dropins_are_removed_and_their_settings_judged() {
    let mut start = start_files();
    start.dropins = vec![(
        "10-kubelet.yaml".into(),
        "kubelet-arg: [max-pods=150]\n".into(),
    )];
    let extra = max_pods_150();
    let plan = compute_plan(&desired(agent(extra)), &installed(start.clone())).expect("plans");
    assert!(plan.hosts[0].steps.contains(&Step::RemoveFile {
        path: "/etc/rancher/k3s/config.yaml.d/10-kubelet.yaml".into()
    }));
    assert_eq!(kinds(&plan).first(), Some(&"adopt"));
    // Without the setting in the spec, removing the drop-in changes what K3s runs with.
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &installed(start)).expect("plans");
    assert!(
        render_plan(&plan).contains("kubelet-arg: [max-pods=150] -> (not set)"),
        "{}",
        render_plan(&plan)
    );
}

fn unit_dropin(name: &str, text: &str) -> crate::k3s::unit_dropins::UnitDropin {
    crate::k3s::unit_dropins::UnitDropin {
        path: format!("/etc/systemd/system/k3s-agent.service.d/{name}"),
        text: text.to_owned(),
        masks_another: false,
    }
}

#[test]
fn a_dropin_replacing_exec_start_is_taken_over_without_a_restart_when_the_spec_holds_its_flags() {
    // K3s runs with the drop-in's command line; the spec (as the import writes it) holds the
    // same flags in config.yaml. k3sctl takes the drop-in's ExecStart over: the effective
    // configuration after apply is the one before, no flag given twice, no restart.
    let mut start = start_files();
    start.unit_dropins = vec![unit_dropin(
        "20-exec.conf",
        "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s agent --node-label zone=a \
         --kubelet-arg max-pods=150\nEnvironment=HTTP_PROXY=http://p:3128\n",
    )];
    let host = agent(max_pods_150());
    let plan = compute_plan(&desired(host.clone()), &installed(start.clone())).expect("plans");
    assert_eq!(kinds(&plan).first(), Some(&"adopt"), "{plan:#?}");
    assert!(!kinds(&plan).contains(&"restart"), "{plan:#?}");
    let takeover = plan.hosts[0]
        .steps
        .iter()
        .find_map(|s| match s {
            Step::TakeOverUnitDropin(t) => Some(t.clone()),
            _ => None,
        })
        .expect("takes the drop-in over");
    assert_eq!(
        takeover.rest.as_deref(),
        Some("[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n")
    );
    assert!(kinds(&plan).contains(&"daemon-reload"), "{plan:#?}");
    let text = render_plan(&plan);
    assert!(
        text.contains(&format!(
            "take over /etc/systemd/system/k3s-agent.service.d/20-exec.conf: its ExecStart \
             override gives way to k3sctl's k3s-agent unit (the flags are in config.yaml); \
             rewritten without its ExecStart lines (its other lines stay), the original kept \
             as {}",
            takeover.backup
        )),
        "{text}"
    );
    // The adoption is recorded before the drop-in changes.
    let order = kinds(&plan);
    let adopt = order.iter().position(|k| *k == "adopt");
    let taken = order.iter().position(|k| *k == "take-over-dropin");
    assert!(adopt < taken, "{order:?}");

    // A hand-written spec without the drop-in's flags: taking it over drops them, which is a
    // change of what K3s runs with, named in the restart.
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &installed(start)).expect("plans");
    let reason = restart_reason(&plan);
    assert!(
        reason.contains("kubelet-arg: [max-pods=150] -> (not set)"),
        "{reason}"
    );
    assert!(kinds(&plan).contains(&"take-over-dropin"));

    // Once taken over, nothing is left to do with it.
    let mut start = start_files();
    start.unit_dropins = vec![unit_dropin(
        "20-exec.conf",
        "[Service]\nEnvironment=HTTP_PROXY=http://p:3128\n",
    )];
    let plan = compute_plan(&desired(host), &installed(start)).expect("plans");
    assert!(!kinds(&plan).contains(&"take-over-dropin"), "{plan:#?}");
}

#[test]
fn a_dropin_environment_line_a_spec_setting_contradicts_restarts_naming_it() {
    let mut start = start_files();
    start.unit_dropins = vec![unit_dropin(
        "10-name.conf",
        "[Service]\nEnvironment=K3S_NODE_NAME=agent-old\n",
    )];
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &installed(start)).expect("plans");
    // The env line stays in the drop-in and k3sctl's config.yaml node-name overrides it.
    assert_eq!(
        restart_reason(&plan),
        "setting node-name: agent-old -> (not set) changed",
        "{plan:#?}"
    );
    assert!(!kinds(&plan).contains(&"take-over-dropin"));
}

#[test]
fn a_real_registry_change_still_restarts() {
    let mut host = agent(BTreeMap::new());
    host.files[0].content = FileContent::Plain(REGISTRIES.replace("mirror:5000", "other:5000"));
    let plan = compute_plan(&desired(host), &installed(start_files())).expect("plans");
    assert!(
        plan.hosts[0].steps.contains(&Step::Restart {
            reason: "registries.yaml changed".into()
        }),
        "{plan:#?}"
    );
}

#[test]
fn files_that_cannot_be_judged_restart_as_before() {
    let mut observed = installed(start_files());
    observed.hosts.get_mut("agent-1").expect("host").start = None;
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &observed).expect("plans");
    assert!(
        plan.hosts[0].steps.contains(&Step::Restart {
            reason: "config.yaml, k3s-agent.service.env, k3s-agent.service changed".into()
        }),
        "{plan:#?}"
    );
    // A stopped service is started, not adopted.
    let mut observed = installed(start_files());
    observed
        .hosts
        .get_mut("agent-1")
        .expect("host")
        .service_active = false;
    let plan = compute_plan(&desired(agent(BTreeMap::new())), &observed).expect("plans");
    assert!(kinds(&plan).contains(&"start") && !kinds(&plan).contains(&"adopt"));
}

/// The set the adoption records (path → sha256) and the plan that records it.
fn adoption_set(plan: &Plan) -> BTreeMap<String, String> {
    plan.hosts[0]
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Adopt { files } => Some(files.clone()),
            _ => None,
        })
        .expect("an adopt step")
}

/// The host after the adopting apply wrote `written` of k3sctl's files (and its record, which
/// comes first) and stopped: those files are k3sctl's, the others still the installer's.
fn interrupted(written: &[&str], record: &BTreeMap<String, String>) -> Observed {
    let host = agent(BTreeMap::new());
    let mut start = start_files();
    let mut observed = installed(start_files());
    let token = observed.token.clone();
    for path in written {
        let file = host.files.iter().find(|f| f.path == *path).expect("file");
        let (text, _) = file.content.resolve(token.as_ref()).expect("renders");
        let obs = observed.hosts.get_mut("agent-1").expect("host");
        obs.files.insert(
            (*path).to_owned(),
            ObservedFile {
                sha256: Some(text.sha256_hex()),
                shown: None,
            },
        );
        if *path == unit::unit_path(NodeRole::Agent) {
            start.unit = text.expose().to_owned();
        } else if *path == unit::env_path(NodeRole::Agent) {
            start.env_files = vec![((*path).to_owned(), text)];
        } else {
            start.config = Some(text.expose().to_owned());
        }
    }
    let obs = observed.hosts.get_mut("agent-1").expect("host");
    obs.start = Some(start);
    obs.adopted = record.clone();
    observed
}

#[test]
fn an_adoption_stopped_between_its_writes_resumes_without_a_restart() {
    let spec = desired(agent(BTreeMap::new()));
    let set = adoption_set(&compute_plan(&spec, &installed(start_files())).expect("plans"));
    assert_eq!(
        set.keys().cloned().collect::<Vec<_>>(),
        [
            "/etc/rancher/k3s/config.yaml",
            "/etc/systemd/system/k3s-agent.service",
            "/etc/systemd/system/k3s-agent.service.env"
        ]
    );
    // Stopped after config.yaml: with the installer's unit still there (its ExecStart flag
    // next to the spec's config.yaml) the files are a mix nobody judged.
    let config = "/etc/rancher/k3s/config.yaml";
    let plan = compute_plan(&spec, &interrupted(&[config], &set)).expect("plans");
    assert_eq!(
        kinds(&plan),
        [
            "adopt",
            "write-file",
            "write-file",
            "write-file",
            "daemon-reload"
        ],
        "{plan:#?}"
    );
    assert_eq!(adoption_set(&plan), set);
    // Without the record, the same mix is judged as what K3s runs with: it cannot be trusted
    // (the record is what makes the resumption safe), and the observation would also see
    // config.yaml newer than K3s's start.
    let mut unrecorded = interrupted(&[config], &BTreeMap::new());
    unrecorded
        .hosts
        .get_mut("agent-1")
        .expect("host")
        .restart_pending = true;
    let plan = compute_plan(&spec, &unrecorded).expect("plans");
    assert!(kinds(&plan).contains(&"restart"), "{plan:#?}");
}

#[test]
fn an_adoption_stopped_after_its_writes_only_reloads_systemd() {
    let spec = desired(agent(BTreeMap::new()));
    let set = adoption_set(&compute_plan(&spec, &installed(start_files())).expect("plans"));
    let mut observed = interrupted(
        &[
            "/etc/rancher/k3s/config.yaml",
            "/etc/systemd/system/k3s-agent.service.env",
            "/etc/systemd/system/k3s-agent.service",
        ],
        &set,
    );
    let obs = observed.hosts.get_mut("agent-1").expect("host");
    obs.needs_daemon_reload = true;
    obs.files.insert(
        REGISTRIES_PATH.into(),
        ObservedFile {
            sha256: Some(Secret::new(REGISTRIES).sha256_hex()),
            shown: None,
        },
    );
    let plan = compute_plan(&spec, &observed).expect("plans");
    assert_eq!(kinds(&plan), ["daemon-reload"], "{plan:#?}");
}

#[test]
fn a_changed_spec_after_a_half_adoption_is_not_judged_on_the_mix() {
    let spec = desired(agent(BTreeMap::new()));
    let set = adoption_set(&compute_plan(&spec, &installed(start_files())).expect("plans"));
    let observed = interrupted(&["/etc/rancher/k3s/config.yaml"], &set);
    // The spec changed meanwhile in a way that alone would need no restart (a label K3s
    // applies only at registration is not a setting): the mix on the host is not what K3s
    // runs with, so the planner restarts rather than judge it.
    let mut host = agent(BTreeMap::new());
    let FileContent::Plain(unit_text) = &host.files[3].content else {
        panic!("unit is plain");
    };
    host.files[3].content = FileContent::Plain(format!("{unit_text}# edited\n"));
    let plan = compute_plan(&desired(host), &observed).expect("plans");
    assert!(kinds(&plan).contains(&"restart"), "{plan:#?}");
    assert!(!kinds(&plan).contains(&"adopt"), "{plan:#?}");
}

#[test]
fn env_files_are_read_from_where_the_installed_unit_says() {
    // The installed unit reads its join settings from a file of its own, not from the
    // installer's `.service.env`: K3S_URL is there, so nothing changes.
    let custom = "/etc/k3s/agent.env";
    let mut start = start_files();
    start.unit = INSTALLER_AGENT_UNIT
        .replace(
            "EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env",
            &format!("EnvironmentFile={custom}"),
        )
        .replace("EnvironmentFile=-/etc/default/%N\n", "");
    let (_, text) = start.env_files.remove(0);
    start.env_files.push((custom.into(), text));
    let spec = desired(agent(BTreeMap::new()));
    let mut observed = installed(start.clone());
    observed
        .hosts
        .get_mut("agent-1")
        .expect("host")
        .files
        .insert(unit::env_path(NodeRole::Agent), ObservedFile::default());
    let plan = compute_plan(&spec, &observed).expect("plans");
    assert!(kinds(&plan).contains(&"adopt"), "{plan:#?}");
    // A file the old unit did not read but k3sctl's does (/etc/default/%N) starts counting:
    // its proxy is a real change.
    start.env_files.push((
        "/etc/default/k3s-agent".into(),
        Secret::new("HTTP_PROXY=http://proxy:3128\n"),
    ));
    let plan = compute_plan(&spec, &installed(start)).expect("plans");
    let text = render_plan(&plan);
    assert!(text.contains("env HTTP_PROXY"), "{text}");
    assert!(!kinds(&plan).contains(&"adopt"), "{plan:#?}");
}

#[test]
fn a_host_named_by_its_address_whose_node_runs_under_another_name_is_refused_with_the_fix() {
    // A hand-written spec names the agent by its address; K3s on it runs the node as its host
    // name, agent-1.
    let mut host = agent(BTreeMap::new());
    host.name = "10.0.0.7".into();
    let mut observed = installed(start_files());
    let obs = observed.hosts.remove("agent-1").expect("host");
    observed.hosts.insert("10.0.0.7".into(), obs);
    let err = compute_plan(&desired(host.clone()), &observed).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "host 10.0.0.7 is named by its address, but K3s there runs its node as `agent-1`"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "hint: name the host as its node runs: `name: agent-1` with `address: 10.0.0.7`"
        ),
        "{text}"
    );
    // A node-name in its files is the name K3s runs it under.
    let mut start = start_files();
    start.config = Some("node-name: edge-7\n".into());
    let mut observed = installed(start);
    let obs = observed.hosts.remove("agent-1").expect("host");
    observed.hosts.insert("10.0.0.7".into(), obs);
    let err = compute_plan(&desired(host.clone()), &observed).expect_err("refused");
    assert!(err.to_string().contains("`name: edge-7`"), "{err}");
    // The node really registered under the address: nothing to say.
    if let Some(nodes) = observed.nodes.as_mut() {
        nodes[0].name = "10.0.0.7".into();
    }
    assert!(compute_plan(&desired(host.clone()), &observed).is_ok());
    // No K3s on the host yet: the address is a fine name for a new node.
    let mut observed = installed(start_files());
    let mut obs = observed.hosts.remove("agent-1").expect("host");
    obs.start = None;
    observed.hosts.insert("10.0.0.7".into(), obs);
    assert!(compute_plan(&desired(host), &observed).is_ok());
}
