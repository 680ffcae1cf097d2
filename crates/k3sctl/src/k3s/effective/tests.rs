use super::*;
use crate::k3s::config::{ClusterSettings, NodeConfig, render_config};
use crate::k3s::unit::{render_env, render_unit};

/// The install script's server unit with flags in ExecStart (each quoted on its own line).
const INSTALLER_UNIT: &str = "[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\n\
Wants=network-online.target\nAfter=network-online.target\n\n[Install]\nWantedBy=multi-user.target\n\n\
[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\n\
EnvironmentFile=-/etc/systemd/system/k3s.service.env\nKillMode=process\nDelegate=yes\n\
LimitNOFILE=1048576\nLimitNPROC=infinity\nLimitCORE=infinity\nTasksMax=infinity\nTimeoutStartSec=0\n\
Restart=always\nRestartSec=5s\nExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service 2>/dev/null'\n\
ExecStartPre=-/sbin/modprobe br_netfilter\nExecStartPre=-/sbin/modprobe overlay\n\
ExecStart=/usr/local/bin/k3s \\\n    server \\\n\t'--disable' \\\n\t'traefik' \\\n\t'--tls-san=10.0.0.9' \\\n\t'--kubelet-arg' \\\n\t'max-pods=150' \\\n";

fn defaults() -> NodeDefaults {
    NodeDefaults {
        hostname: Some("S1".into()),
        internal_ip: Some("10.0.0.2".into()),
    }
}

fn sources(unit: &str, env: &str, config: Option<&str>) -> Sources {
    Sources {
        unit: unit.into(),
        env_files: vec![(
            "/etc/systemd/system/k3s.service.env".into(),
            Secret::new(env),
        )],
        config: config.map(Into::into),
        dropins: vec![],
    }
}

fn list(items: &[&str]) -> Setting {
    Setting::List(items.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn installer_unit_flags_env_and_config_merge() {
    let env =
        "K3S_TOKEN='mysecret'\nK3S_URL=\"https://10.0.0.9:6443\"\nHTTP_PROXY=http://proxy:3128\n";
    let config = "node-ip: 10.0.0.2\ndisable: [servicelb]\nkubelet-arg:\n  - eviction-hard=memory.available<5%\n";
    let e = effective(&sources(INSTALLER_UNIT, env, Some(config)), &defaults()).expect("reads");
    assert_eq!(e.subcommand, "server");
    // config.yaml first, then the command line: lists accumulate in that order.
    assert_eq!(
        e.settings["kubelet-arg"],
        list(&["eviction-hard=memory.available<5%", "max-pods=150"])
    );
    assert_eq!(e.settings["disable"], list(&["servicelb", "traefik"]));
    assert_eq!(e.settings["tls-san"], list(&["10.0.0.9"]));
    assert_eq!(
        e.settings["server"],
        Setting::Value("https://10.0.0.9:6443".into())
    );
    assert!(matches!(e.settings["token"], Setting::Secret(_)));
    // node-ip equal to the address K3s chose anyway is no setting.
    assert!(!e.settings.contains_key("node-ip"));
    assert!(e.environment.contains_key("HTTP_PROXY"));
    assert!(!format!("{e:?}").contains("mysecret"));
}

#[test]
fn flag_forms_are_the_same_configuration() {
    let unit = |exec: &str| format!("[Service]\nExecStart=/usr/local/bin/k3s {exec}\n");
    let a = effective(
        &sources(
            &unit("server --node-label=a=1 --node-label b=2 --cluster-init --write-kubeconfig-mode 644 -t pw"),
            "",
            None,
        ),
        &defaults(),
    )
    .expect("a");
    let b = effective(
        &sources(
            &unit("server"),
            "K3S_TOKEN=pw\nK3S_KUBECONFIG_MODE=0644\n",
            Some("cluster-init: true\nnode-label:\n- b=2\nnode-label+: [a=1]\n"),
        ),
        &defaults(),
    )
    .expect("b");
    let how = Compare {
        role: NodeRole::Server,
        server_with_data: false,
    };
    assert_eq!(changes(&a, &b, how), vec![]);
    assert_eq!(
        a.settings["write-kubeconfig-mode"],
        Setting::Value("0644".into())
    );
}

#[test]
fn dropins_are_read_in_name_order_later_wins_and_plus_appends() {
    let mut s = sources(
        "[Service]\nExecStart=/usr/local/bin/k3s agent\n",
        "",
        Some("node-label: [zone=a]\nsnapshotter: native\nkubelet-arg: [a=1]\n"),
    );
    s.dropins = vec![
        (
            "20-late.yaml".into(),
            "snapshotter: fuse-overlayfs\n".into(),
        ),
        (
            "10-early.yml".into(),
            "snapshotter: stargz\nkubelet-arg+: b=2\n".into(),
        ),
        ("README.txt".into(), "snapshotter: ignored\n".into()),
        ("15-labels.YAML".into(), "node-label: [zone=b]\n".into()),
    ];
    let e = effective(&s, &defaults()).expect("reads");
    assert_eq!(
        e.settings["snapshotter"],
        Setting::Value("fuse-overlayfs".into())
    );
    assert_eq!(e.settings["kubelet-arg"], list(&["a=1", "b=2"]));
    // A plain key in a later file replaces the list.
    assert_eq!(e.settings["node-label"], list(&["zone=b"]));
}

#[test]
fn command_line_overrides_config_values() {
    let e = effective(
        &sources(
            "[Service]\nExecStart=/usr/local/bin/k3s server --flannel-backend=wireguard-native\n",
            "",
            Some("flannel-backend: host-gw\n"),
        ),
        &defaults(),
    )
    .expect("reads");
    assert_eq!(
        e.settings["flannel-backend"],
        Setting::Value("wireguard-native".into())
    );
}

#[test]
fn defaults_and_automatic_sans_are_no_settings() {
    let config = "cluster-cidr: 10.42.0.0/16\nservice-cidr: [10.43.0.0/16]\ncluster-dns: 10.43.0.10\n\
cluster-domain: cluster.local\nwrite-kubeconfig-mode: \"600\"\nnode-name: s1\nflannel-backend: vxlan\n\
tls-san: [127.0.0.1, localhost, 10.0.0.2, k8s.example.com, 10.0.0.2]\nsecrets-encryption: false\n";
    let e = effective(
        &sources(
            "[Service]\nExecStart=/usr/local/bin/k3s server\n",
            "",
            Some(config),
        ),
        &defaults(),
    )
    .expect("reads");
    assert_eq!(
        e.settings.keys().collect::<Vec<_>>(),
        ["tls-san"],
        "{:?}",
        e.settings
    );
    assert_eq!(e.settings["tls-san"], list(&["k8s.example.com"]));
}

#[test]
fn comma_lists_split_and_sets_sort() {
    let e = effective(
        &sources(
            "[Service]\nExecStart=/usr/local/bin/k3s server '--disable=traefik,servicelb' --disable local-storage\n",
            "",
            None,
        ),
        &defaults(),
    )
    .expect("reads");
    assert_eq!(
        e.settings["disable"],
        list(&["local-storage", "servicelb", "traefik"])
    );
}

#[test]
fn real_changes_are_named_and_secrets_never_shown() {
    let how = Compare {
        role: NodeRole::Agent,
        server_with_data: false,
    };
    let unit = "[Service]\nExecStart=/usr/local/bin/k3s agent\n";
    let a = effective(
        &sources(
            unit,
            "K3S_TOKEN=K10aa::node:one\nK3S_URL=https://10.0.0.9:6443\n",
            Some("node-ip: 10.0.0.2\n"),
        ),
        &defaults(),
    )
    .expect("a");
    let b = effective(
        &sources(
            unit,
            "K3S_TOKEN=K10aa::server:two\nK3S_URL=https://10.0.0.9:6443/\n",
            Some("node-ip: 10.0.1.2\n"),
        ),
        &defaults(),
    )
    .expect("b");
    let found = changes(&a, &b, how);
    let keys: Vec<&str> = found.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["node-ip", "token"]);
    let shown: String = found.iter().map(ToString::to_string).collect();
    assert!(!shown.contains("one") && !shown.contains("two"), "{shown}");
    assert!(
        shown.contains("node-ip: (not set) -> [10.0.1.2]"),
        "{shown}"
    );
}

#[test]
fn token_forms_with_the_same_password_are_the_same() {
    let how = Compare {
        role: NodeRole::Agent,
        server_with_data: false,
    };
    let unit = "[Service]\nExecStart=/usr/local/bin/k3s agent\n";
    let hash = "a".repeat(64);
    let a = effective(&sources(unit, "K3S_TOKEN=pw\n", None), &defaults()).expect("a");
    let b = effective(
        &sources(unit, &format!("K3S_TOKEN=K10{hash}::server:pw\n"), None),
        &defaults(),
    )
    .expect("b");
    assert_eq!(changes(&a, &b, how), vec![]);
}

#[test]
fn a_server_with_data_ignores_join_settings() {
    let unit = "[Service]\nExecStart=/usr/local/bin/k3s server\n";
    let a = effective(
        &sources(
            unit,
            "K3S_URL=https://10.0.0.9:6443\nK3S_TOKEN=pw\n",
            Some("cluster-init: true\n"),
        ),
        &defaults(),
    )
    .expect("a");
    let b = effective(&sources(unit, "", None), &defaults()).expect("b");
    let with_data = Compare {
        role: NodeRole::Server,
        server_with_data: true,
    };
    assert_eq!(changes(&a, &b, with_data), vec![]);
    let fresh = Compare {
        server_with_data: false,
        ..with_data
    };
    let keys: Vec<String> = changes(&a, &b, fresh).into_iter().map(|c| c.key).collect();
    assert_eq!(keys, ["cluster-init", "server", "token"]);
}

#[test]
fn dropped_environment_is_a_change() {
    let how = Compare {
        role: NodeRole::Server,
        server_with_data: true,
    };
    let unit =
        "[Service]\nEnvironment=\"NO_PROXY=10.0.0.0/8\"\nExecStart=/usr/local/bin/k3s server\n";
    let a = effective(
        &sources(unit, "HTTPS_PROXY=http://u:secret@p:3128\n", None),
        &defaults(),
    )
    .expect("a");
    let b = effective(&sources(unit, "", None), &defaults()).expect("b");
    let found = changes(&a, &b, how);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        "env HTTPS_PROXY: <redacted> -> (not set)"
    );
}

/// k3sctl's own rendering of the installer's layout reads back as the same configuration.
#[test]
fn k3sctl_rendering_of_the_installer_layout_is_unchanged() {
    let env = "K3S_TOKEN=\"mysecret\"\n";
    let installed = effective(
        &sources(INSTALLER_UNIT, env, Some("node-ip: 10.0.0.2\n")),
        &defaults(),
    )
    .expect("installed");
    let node = NodeConfig {
        role: NodeRole::Server,
        node_name: "s1".into(),
        node_ip: Some("10.0.0.2".into()),
        node_external_ip: None,
        labels: Default::default(),
        taints: vec![],
        cluster: ClusterSettings {
            tls_sans: vec!["10.0.0.9".into(), "10.0.0.2".into()],
            disable: vec!["traefik".into()],
            write_kubeconfig_mode: Some("0600".into()),
            ..Default::default()
        },
        extra: [(
            "kubelet-arg".to_owned(),
            serde_json::json!(["max-pods=150"]),
        )]
        .into(),
    };
    let rendered = Sources {
        unit: render_unit(NodeRole::Server),
        env_files: vec![("env".into(), render_env(None, None, false))],
        config: Some(render_config(&node).expect("renders")),
        dropins: vec![],
    };
    let ours = effective(&rendered, &defaults()).expect("ours");
    let how = Compare {
        role: NodeRole::Server,
        server_with_data: true,
    };
    assert_eq!(changes(&installed, &ours, how), vec![]);
}

#[test]
fn unreadable_sources_are_errors_with_the_place() {
    let err = effective(&sources("[Service]\nType=notify\n", "", None), &defaults())
        .expect_err("no ExecStart");
    assert!(err.to_string().contains("no ExecStart"), "{err}");
    let err = effective(
        &sources(
            "[Service]\nExecStart=/usr/local/bin/k3s server 'open\n",
            "",
            None,
        ),
        &defaults(),
    )
    .expect_err("quote");
    assert!(err.to_string().contains("unterminated"), "{err}");
    let err = effective(
        &sources(
            "[Service]\nExecStart=/usr/local/bin/k3s server\n",
            "",
            Some("- a\n- b\n"),
        ),
        &defaults(),
    )
    .expect_err("not a map");
    assert!(
        err.to_string().starts_with("/etc/rancher/k3s/config.yaml:"),
        "{err}"
    );
}

#[test]
fn words_split_like_systemd() {
    assert_eq!(
        split_words(r#"a 'b c' "d \"e\"" f\ g"#).expect("splits"),
        ["a", "b c", "d \"e\"", "f g"]
    );
    assert_eq!(
        parse_env_file("# c\nA=1\nexport B=\"two words\"\n;x\nC='x y'\n"),
        [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "two words".to_owned()),
            ("C".to_owned(), "x y".to_owned())
        ]
    );
}

#[test]
fn origins_name_the_file_each_setting_came_from() {
    let mut s = sources(
        INSTALLER_UNIT,
        "K3S_URL=https://10.0.0.9:6443\n",
        Some("snapshotter: native\nflannel-backend: host-gw\n"),
    );
    s.dropins = vec![("10-x.yaml".into(), "snapshotter: stargz\n".into())];
    let e = effective(&s, &defaults()).expect("reads");
    assert_eq!(e.origins["snapshotter"], "config.yaml.d/10-x.yaml");
    assert_eq!(e.origins["flannel-backend"], "config.yaml");
    assert_eq!(e.origins["kubelet-arg"], "ExecStart");
    assert_eq!(e.origins["server"], "K3S_URL");
}

#[test]
fn node_args_read_like_a_command_line() {
    let json = r#"["server","--cluster-cidr","10.52.0.0/16","--disable","traefik","--token","********","--node-ip","10.0.0.2","--cluster-init","true"]"#;
    let e = from_node_args(json, &defaults()).expect("reads");
    assert_eq!(e.subcommand, "server");
    assert_eq!(e.settings["cluster-cidr"], list(&["10.52.0.0/16"]));
    assert_eq!(e.settings["disable"], list(&["traefik"]));
    assert_eq!(e.settings["cluster-init"], Setting::On);
    assert!(!e.settings.contains_key("node-ip"));
    assert!(from_node_args("not json", &defaults()).is_err());
}

#[test]
fn command_line_arguments_become_config_keys() {
    let config = config_from_args(
        "--disable traefik --disable=servicelb --kubelet-arg 'max-pods=110' --flannel-backend=host-gw --secrets-encryption",
    )
    .expect("parses");
    assert_eq!(
        config["disable"],
        serde_json::json!(["traefik", "servicelb"])
    );
    assert_eq!(config["kubelet-arg"], serde_json::json!(["max-pods=110"]));
    assert_eq!(config["flannel-backend"], "host-gw");
    assert_eq!(config["secrets-encryption"], true);
    let err = config_from_args("stray --x").expect_err("stray word");
    assert!(
        err.to_string()
            .contains("the arguments have the stray argument `stray`"),
        "{err}"
    );
}

#[test]
fn env_files_are_the_ones_the_unit_names_in_its_order() {
    let unit = "[Unit]\nDescription=x\nEnvironmentFile=/etc/not-service\n[Service]\n\
                EnvironmentFile=-/etc/default/%N\nEnvironmentFile=/etc/ansible/%n.env\n\
                EnvironmentFile=-/etc/default/%N\nExecStart=/usr/local/bin/k3s agent\n";
    assert_eq!(
        unit_env_files(unit, "k3s-agent"),
        [
            "/etc/default/k3s-agent",
            "/etc/ansible/k3s-agent.service.env"
        ]
    );
    // An empty assignment resets the list, as systemd does.
    let reset = format!("{unit}EnvironmentFile=\nEnvironmentFile=/etc/k3s.env\n");
    assert_eq!(unit_env_files(&reset, "k3s-agent"), ["/etc/k3s.env"]);
    let found = vec![
        (
            "/etc/systemd/system/k3s-agent.service.env".to_owned(),
            Secret::new("K3S_URL=https://a:6443\n"),
        ),
        (
            "/etc/ansible/k3s-agent.service.env".to_owned(),
            Secret::new("K3S_URL=https://b:6443\n"),
        ),
    ];
    let read = env_files_of_unit(unit, "k3s-agent", &found);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].0, "/etc/ansible/k3s-agent.service.env");
}

#[test]
fn unit_dropins_apply_in_name_order_and_reset_execstart_and_env_files() {
    let d = "/etc/systemd/system/k3s.service.d";
    let found = vec![
        (
            format!("{d}/20-exec.conf"),
            "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s server --disable=servicelb\n"
                .to_owned(),
        ),
        (
            format!("{d}/10-env.conf"),
            "[Service]\nEnvironment=HTTP_PROXY=http://a:3128 K3S_NODE_NAME=first\n\
             EnvironmentFile=\nEnvironmentFile=-/etc/k3s/extra.env\n"
                .to_owned(),
        ),
        (
            format!("{d}/30-name.conf"),
            "[Service]\nEnvironment=K3S_NODE_NAME=second\n".to_owned(),
        ),
        // Not a .conf file: systemd does not read it.
        (
            format!("{d}/40-ignored.conf.bak"),
            "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s agent\n".to_owned(),
        ),
    ];
    let dropins = crate::k3s::unit_dropins::applied("k3s", &found);
    let unit = unit_with_dropins(INSTALLER_UNIT, &dropins);
    // EnvironmentFile= with no value dropped the unit's three env files.
    assert_eq!(unit_env_files(&unit, "k3s"), ["/etc/k3s/extra.env"]);
    let mut s = sources(&unit, "K3S_TOKEN=never-read\n", None);
    s.env_files = vec![(
        "/etc/k3s/extra.env".into(),
        Secret::new("K3S_KUBECONFIG_MODE=644\n"),
    )];
    let e = effective(&s, &defaults()).expect("effective");
    assert_eq!(e.subcommand, "server");
    // The unit's ExecStart flags are gone: the drop-in's ExecStart replaced them.
    assert_eq!(e.settings.get("disable"), Some(&list(&["servicelb"])));
    assert!(!e.settings.contains_key("kubelet-arg"), "{e:?}");
    assert!(!e.settings.contains_key("tls-san"), "{e:?}");
    assert_eq!(
        e.settings.get("node-name"),
        Some(&Setting::Value("second".into()))
    );
    assert_eq!(
        e.settings.get("write-kubeconfig-mode"),
        Some(&Setting::Value("0644".into()))
    );
    assert!(!e.settings.contains_key("token"), "{e:?}");
    assert!(e.environment.contains_key("HTTP_PROXY"));
    // Without drop-ins the unit is read as it is.
    assert_eq!(unit_with_dropins(INSTALLER_UNIT, &[]), INSTALLER_UNIT);
}

#[test]
fn install_script_options_in_an_env_file_are_no_environment_of_k3s() {
    // Someone kept the install command in the env file: K3s ignores it, its flags are those of
    // ExecStart, and dropping the line changes nothing K3s runs with.
    let with = effective(
        &sources(
            INSTALLER_UNIT,
            "K3S_TOKEN=x\nINSTALL_K3S_EXEC='server --disable traefik'\nHTTP_PROXY=http://p\n",
            None,
        ),
        &defaults(),
    )
    .expect("effective");
    let without = effective(
        &sources(INSTALLER_UNIT, "K3S_TOKEN=x\nHTTP_PROXY=http://p\n", None),
        &defaults(),
    )
    .expect("effective");
    assert_eq!(with, without);
    assert!(with.environment.contains_key("HTTP_PROXY"));
}
