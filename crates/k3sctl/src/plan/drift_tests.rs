//! Drift: labels, taints, K3s arguments, versions and unknown Nodes against the spec.

use super::*;

fn items(plan: &Plan, kind: DriftKind) -> Vec<&DriftItem> {
    plan.drift.iter().filter(|d| d.kind == kind).collect()
}

fn node<'a>(observed: &'a mut Observed, name: &str) -> &'a mut ObservedNode {
    observed
        .nodes
        .as_mut()
        .expect("nodes")
        .iter_mut()
        .find(|n| n.name == name)
        .expect("node")
}

#[test]
fn a_converged_cluster_has_no_drift_and_no_api_means_none_is_judged() {
    let d = desired("http://mirror-a:5000");
    let plan = compute_plan(&d, &converged(&d)).expect("plans");
    assert_eq!(plan.drift, [], "{}", render_plan(&plan));
    assert!(!render_plan(&plan).contains("Drift"));
    assert_eq!(compute_plan(&d, &fresh()).expect("plans").drift, []);
}

#[test]
fn a_spec_label_overwritten_by_a_person_is_put_back_and_other_labels_are_left_alone() {
    let mut d = desired("http://mirror-a:5000");
    d.hosts[1].labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
    // Fresh: the agent registers with the label (node-label); k3sctl records it as its own.
    let plan = compute_plan(&d, &fresh()).expect("plans");
    assert_eq!(
        plan.hosts[1].steps.last(),
        Some(&Step::EnforceLabels {
            wanted: d.hosts[1].labels.clone(),
            set: d.hosts[1].labels.clone(),
            remove: vec![],
            adopt: true,
        })
    );
    // Live: `kubectl label --overwrite zone=b`, and a label of the person's own.
    let mut observed = converged(&d);
    let n = node(&mut observed, "agent-1");
    n.labels = BTreeMap::from([
        ("zone".to_string(), "b".to_string()),
        ("team".to_string(), "x".to_string()),
    ]);
    n.owned_labels = ["zone".to_string()].into();
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(kinds(&plan, "agent-1"), ["enforce-labels"]);
    assert_eq!(
        plan.drift,
        [DriftItem {
            host: "agent-1".into(),
            kind: DriftKind::Label,
            subject: "zone".into(),
            declared: Some("a".into()),
            live: Some("b".into()),
            fix: DriftFix::Apply,
            hint: None,
        }]
    );
    let text = render_plan(&plan);
    assert!(text.contains("~ node labels: set zone=a"), "{text}");
    assert!(
        text.contains("~ agent-1 label zone: spec a, live b (apply puts it back)"),
        "{text}"
    );
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(json["drift"][0]["declared"], "a");
    assert_eq!(json["drift"][0]["live"], "b");
    assert_eq!(json["drift"][0]["kind"], "label");
    // Dropped from the spec: k3sctl's label goes (drift until then), the person's stays.
    d.hosts[1].labels.clear();
    let plan = compute_plan(&d, &observed).expect("plans");
    let Some(Step::EnforceLabels { set, remove, .. }) = plan.hosts[1].steps.last() else {
        panic!("{plan:#?}")
    };
    assert!(set.is_empty());
    assert_eq!(remove, &["zone".to_string()]);
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(plan.drift[0].declared, None);
    // A label the spec never named and k3sctl never set: no step, no drift.
    node(&mut observed, "agent-1").owned_labels.clear();
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(plan.hosts.iter().all(|h| h.steps.is_empty()), "{plan:#?}");
    assert_eq!(plan.drift, []);
}

#[test]
fn taints_a_person_removed_come_back_and_conflicting_ones_are_reported() {
    const CP: &str = "node-role.kubernetes.io/control-plane:NoSchedule";
    let mut d = desired("http://mirror-a:5000");
    d.hosts[0].taints = vec![CP.into(), "dedicated=infra:NoSchedule".into()];
    let mut observed = converged(&d);
    node(&mut observed, "server-1").taints = vec!["dedicated=other:NoSchedule".into()];
    let plan = compute_plan(&d, &observed).expect("plans");
    let taints = items(&plan, DriftKind::Taint);
    assert_eq!(taints.len(), 2, "{taints:#?}");
    assert_eq!(taints[0].declared.as_deref(), Some(CP));
    assert_eq!(taints[0].live, None);
    assert_eq!(taints[0].fix, DriftFix::Apply);
    assert_eq!(taints[1].subject, "dedicated:NoSchedule");
    assert_eq!(
        taints[1].live.as_deref(),
        Some("dedicated=other:NoSchedule")
    );
    assert_eq!(taints[1].fix, DriftFix::Manual);
    assert!(
        taints[1]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("kubectl taint"))
    );
}

#[test]
fn k3s_arguments_that_the_config_does_not_give_are_drift() {
    let d = desired("http://mirror-a:5000");
    let mut observed = converged(&d);
    // A unit drop-in added a kubelet argument and K3s was restarted: the files k3sctl manages
    // are unchanged, so apply leaves it (with a hint).
    node(&mut observed, "agent-2").node_args = Some(
        r#"["agent","--node-name","agent-2","--node-ip","10.0.0.7","--kubelet-arg","max-pods=50"]"#
            .into(),
    );
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(plan.hosts.iter().all(|h| h.steps.is_empty()), "{plan:#?}");
    let args = items(&plan, DriftKind::NodeArg);
    assert_eq!(args.len(), 1, "{args:#?}");
    assert_eq!(
        (args[0].host.as_str(), args[0].subject.as_str()),
        ("agent-2", "kubelet-arg")
    );
    assert_eq!(
        (args[0].declared.as_deref(), args[0].live.as_deref()),
        (None, Some("[max-pods=50]"))
    );
    assert_eq!(args[0].fix, DriftFix::Manual);
    assert!(
        args[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("systemctl cat k3s-agent"))
    );
    assert!(render_plan(&plan).contains("1 drift item(s) that apply leaves to a person"));
    // config.yaml edited by hand and K3s restarted: the file is rewritten and K3s restarts, so
    // the arguments come back with apply.
    if let Some(h) = observed.hosts.get_mut("agent-2") {
        h.files.insert(
            "/etc/rancher/k3s/config.yaml".into(),
            ObservedFile {
                sha256: Some("0".repeat(64)),
                shown: Some("node-name: agent-2\nnode-ip: 10.0.0.9\n".into()),
            },
        );
    }
    node(&mut observed, "agent-2").node_args =
        Some(r#"["agent","--node-name","agent-2","--node-ip","10.0.0.9"]"#.into());
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(kinds(&plan, "agent-2").contains(&"restart"));
    let args = items(&plan, DriftKind::NodeArg);
    assert_eq!(args.len(), 1, "{args:#?}");
    assert_eq!(
        (args[0].declared.as_deref(), args[0].live.as_deref()),
        (Some("[10.0.0.7]"), Some("[10.0.0.9]"))
    );
    assert_eq!(
        (args[0].fix, args[0].hint.as_deref()),
        (DriftFix::Apply, None)
    );
    // An annotation that cannot be read is reported, not a failure.
    node(&mut observed, "agent-2").node_args = Some("{".into());
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(
        items(&plan, DriftKind::NodeArg)[0].subject,
        "k3s.io/node-args"
    );
}

#[test]
fn a_node_name_k3s_chose_itself_is_no_drift() {
    let d = desired("http://mirror-a:5000");
    let mut observed = converged(&d);
    // Started by the install script without --node-name: K3s used the host name, which is what
    // the spec's node-name says.
    node(&mut observed, "agent-2").node_args = Some(r#"["agent","--node-ip","10.0.0.7"]"#.into());
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::NodeArg), Vec::<&DriftItem>::new());
    // A different name than the Node's still is.
    node(&mut observed, "agent-2").node_args =
        Some(r#"["agent","--node-name","other","--node-ip","10.0.0.7"]"#.into());
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::NodeArg).len(), 1);
}

#[test]
fn a_flag_the_unit_gives_as_an_environment_variable_is_no_drift() {
    // The spec gives resolv-conf; K3s on agent-2 has it from a unit drop-in's
    // `Environment=K3S_RESOLV_CONF=`, which its node-args annotation does not list.
    let mut d = desired("http://mirror-a:5000");
    let host = d
        .hosts
        .iter_mut()
        .find(|h| h.name == "agent-2")
        .expect("agent-2");
    for file in &mut host.files {
        if file.path == "/etc/rancher/k3s/config.yaml"
            && let FileContent::Plain(text) = &mut file.content
        {
            text.push_str("resolv-conf: /etc/resolv.conf\n");
        }
    }
    let mut observed = converged(&d);
    let plan = compute_plan(&d, &observed).expect("plans");
    let args = items(&plan, DriftKind::NodeArg);
    assert_eq!(args.len(), 1, "{args:#?}");
    assert_eq!(args[0].subject, "resolv-conf");
    let start = |value: &str| StartFiles {
        unit: "[Service]\nExecStart=/usr/local/bin/k3s agent\n".into(),
        unit_dropins: vec![crate::k3s::unit_dropins::UnitDropin {
            path: "/etc/systemd/system/k3s-agent.service.d/10-resolv.conf".into(),
            text: format!("[Service]\nEnvironment=K3S_RESOLV_CONF={value}\n"),
            masks_another: false,
        }],
        ..StartFiles::default()
    };
    observed.hosts.get_mut("agent-2").expect("host").start = Some(start("/etc/resolv.conf"));
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::NodeArg), Vec::<&DriftItem>::new());
    // Another value in the environment than the spec's is still drift.
    observed.hosts.get_mut("agent-2").expect("host").start = Some(start("/run/resolv.conf"));
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::NodeArg).len(), 1);
}

#[test]
fn a_join_flag_the_env_file_now_gives_is_no_drift() {
    let d = desired("http://mirror-a:5000");
    let mut observed = converged(&d);
    // Started by k3s-ansible (`--server` and `--token` on the command line), adopted without a
    // restart: k3sctl's env file gives both as K3S_URL and K3S_TOKEN.
    node(&mut observed, "agent-2").node_args = Some(
        r#"["agent","--node-ip","10.0.0.7","--server","https://10.0.0.1:6443","--token","********"]"#
            .into(),
    );
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::NodeArg), Vec::<&DriftItem>::new());
    // Another server than the env file's is drift.
    node(&mut observed, "agent-2").node_args =
        Some(r#"["agent","--node-ip","10.0.0.7","--server","https://10.0.0.9:6443"]"#.into());
    let plan = compute_plan(&d, &observed).expect("plans");
    let args = items(&plan, DriftKind::NodeArg);
    assert_eq!(args.len(), 1, "{args:#?}");
    assert_eq!(args[0].subject, "server");
}

#[test]
fn unknown_nodes_and_other_kubelet_versions_are_reported_never_planned() {
    let mut d = desired("http://mirror-a:5000");
    let mut observed = converged(&d);
    let mut stray = node(&mut observed, "agent-2").clone();
    stray.name = "stray".into();
    stray.ready = false;
    stray.kubelet_version = "v1.32.1+k3s1".into();
    observed.nodes.as_mut().expect("nodes").push(stray);
    node(&mut observed, "agent-1").kubelet_version = "v1.32.1+k3s1".into();
    // agent-2 is in the spec but left out of this run (unreachable): its Node is explained.
    d.hosts.retain(|h| h.name != "agent-2");
    let plan = compute_plan(&d, &observed).expect("plans");
    assert!(plan.hosts.iter().all(|h| h.steps.is_empty()), "{plan:#?}");
    let unknown = items(&plan, DriftKind::UnknownNode);
    assert_eq!(unknown.len(), 1, "{:#?}", plan.drift);
    assert_eq!(unknown[0].host, "stray");
    assert_eq!(unknown[0].fix, DriftFix::Manual);
    assert!(
        unknown[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("kubectl delete node stray"))
    );
    let versions = items(&plan, DriftKind::KubeletVersion);
    assert_eq!(versions.len(), 1, "{versions:#?}");
    assert_eq!(
        (versions[0].declared.as_deref(), versions[0].live.as_deref()),
        (Some("v1.33.5+k3s1"), Some("v1.32.1+k3s1"))
    );
    assert!(render_plan(&plan).contains("! stray: not a host of the spec (apply leaves it)"));
}

/// `d` with a HelmChartConfig override and an extra manifest on its server, as
/// `plan::from_spec` renders them.
fn with_manifests(mut d: Desired, extra: &str) -> Desired {
    use crate::k3s::manifests::{helm_chart_config_path, manifest_path, render_helm_chart_config};
    let server = &mut d.hosts[0];
    server.files.push(DesiredFile {
        path: helm_chart_config_path("traefik"),
        mode: 0o600,
        content: FileContent::Plain(
            render_helm_chart_config("traefik", "ports:\n  web:\n    expose: true\n")
                .expect("renders"),
        ),
        restarts: false,
    });
    server.files.push(DesiredFile {
        path: manifest_path("extra"),
        mode: 0o600,
        content: FileContent::Plain(extra.into()),
        restarts: false,
    });
    d
}

const EXTRA: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: apps\n\
                     data:\n  mode: blue\n";

fn hcc_key() -> manifest_drift::ObjectKey {
    manifest_drift::ObjectKey {
        api_version: "helm.cattle.io/v1".into(),
        kind: "HelmChartConfig".into(),
        namespace: Some("kube-system".into()),
        name: "traefik".into(),
    }
}

#[test]
fn manifest_objects_edited_or_deleted_in_the_api_are_drift_that_apply_writes_back() {
    let d = with_manifests(desired("http://mirror-a:5000"), EXTRA);
    let mut observed = converged(&d);
    assert_eq!(observed.objects.as_ref().map(|o| o.len()), Some(2));
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(plan.drift, [], "converged: {:#?}", plan.drift);
    assert_eq!(kinds(&plan, "server-1"), Vec::<&str>::new());

    // A person edits the override's values (`kubectl edit helmchartconfig`), adds a label of
    // their own (not the spec's: not compared), and deletes the ConfigMap.
    let objects = observed.objects.as_mut().expect("read");
    let live = objects
        .get_mut(&hcc_key())
        .and_then(Option::as_mut)
        .expect("live");
    live["spec"]["valuesContent"] = "ports:\n  web:\n    expose: false\n".into();
    live["metadata"]["labels"] = serde_json::json!({"team": "x"});
    let cm = objects
        .keys()
        .find(|k| k.kind == "ConfigMap")
        .cloned()
        .expect("cm");
    objects.insert(cm, None);
    let plan = compute_plan(&d, &observed).expect("plans");
    let manifest = items(&plan, DriftKind::Manifest);
    assert_eq!(
        manifest,
        [
            &DriftItem {
                host: "server-1".into(),
                kind: DriftKind::Manifest,
                subject: "HelmChartConfig kube-system/traefik spec.valuesContent".into(),
                declared: Some("ports:\n  web:\n    expose: true\n".into()),
                live: Some("ports:\n  web:\n    expose: false\n".into()),
                fix: DriftFix::Apply,
                hint: None,
            },
            &DriftItem {
                host: "server-1".into(),
                kind: DriftKind::Manifest,
                subject: "ConfigMap apps/app".into(),
                declared: Some("declared in k3sctl-extra.yaml".into()),
                live: None,
                fix: DriftFix::Apply,
                hint: None,
            },
        ]
    );
    // One step per manifest, on the server, with the declared documents.
    assert_eq!(kinds(&plan, "server-1"), ["apply-objects", "apply-objects"]);
    let Some(Step::ApplyObjects {
        file,
        objects,
        docs,
    }) = plan.hosts[0].steps.first()
    else {
        panic!("{:#?}", plan.hosts[0].steps);
    };
    assert_eq!(file, "k3sctl-traefik-config.yaml");
    assert_eq!(objects, &["HelmChartConfig kube-system/traefik"]);
    assert_eq!(
        docs[0]["spec"]["valuesContent"],
        "ports:\n  web:\n    expose: true\n"
    );
    assert!(
        plan.disruptions().is_empty(),
        "writing objects restarts nothing"
    );
    let shown = render_plan(&plan);
    assert!(
        shown.contains(
            "server-1 manifest object HelmChartConfig kube-system/traefik spec.valuesContent: \
             spec ports:\\n  web:\\n    expose: true\\n, live ports:\\n  web:\\n    expose: \
             false\\n (apply puts it back)"
        ),
        "{shown}"
    );

    // Without the API's objects nothing is judged.
    observed.objects = None;
    let plan = compute_plan(&d, &observed).expect("plans");
    assert_eq!(items(&plan, DriftKind::Manifest), Vec::<&DriftItem>::new());
    assert_eq!(kinds(&plan, "server-1"), Vec::<&str>::new());
}

#[test]
fn a_manifest_that_is_not_objects_is_reported_to_a_person() {
    let d = with_manifests(desired("http://mirror-a:5000"), "just: text\n");
    let plan = compute_plan(&d, &converged(&d)).expect("plans");
    let manifest = items(&plan, DriftKind::Manifest);
    assert_eq!(manifest.len(), 1, "{manifest:#?}");
    assert_eq!(manifest[0].subject, "k3sctl-extra.yaml");
    assert_eq!(manifest[0].fix, DriftFix::Manual);
    assert!(
        manifest[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("no apiVersion, kind or metadata.name")),
        "{manifest:#?}"
    );
    assert_eq!(kinds(&plan, "server-1"), Vec::<&str>::new());
}
