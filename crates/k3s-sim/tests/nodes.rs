//! Agents and nodes: join with versions, kubectl node operations, node password rule, late join,
//! wrong tokens, NotReady after heartbeats stop.

mod common;

use std::time::Duration;

use common::{Cluster, cert_events, server_token, wait_for};

#[test]
fn agents_join_and_kubectl_node_operations_work() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &[]);
    s.start();
    let kc = c.wait_ready(&mut s);
    let token = server_token(&s);
    let mut a1 = c.agent(
        "a1",
        "v1.32.9+k3s1",
        &token,
        &[
            "--node-label",
            "zone=b",
            "--node-taint",
            "dedicated=infra:NoSchedule",
        ],
    );
    // registries.yaml is read at agent start and shows up as containerd hosts.toml.
    let regs = a1.path("/etc/rancher/k3s/registries.yaml");
    fs_err::create_dir_all(regs.parent().expect("dir")).expect("mkdir");
    fs_err::write(
        &regs,
        "mirrors:\n  \"*\":\n    endpoint: [\"mirror.lab:5000\"]\n",
    )
    .expect("write");
    a1.start();
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(30));
    // The agent's certificate monitor posts through the API: its year-long certificates are ok.
    let ok = wait_for(
        "a1's CertificateExpirationOK",
        Duration::from_secs(10),
        || cert_events(&c, &kc, "a1", "CertificateExpirationOK").pop(),
    );
    assert_eq!((ok.0.as_str(), ok.2), ("Normal", 1));
    let hosts = fs_err::read_to_string(
        a1.path("/var/lib/rancher/k3s/agent/etc/containerd/certs.d/_default/hosts.toml"),
    )
    .expect("hosts.toml");
    assert!(
        hosts.contains("[host.\"https://mirror.lab:5000/v2\"]"),
        "{hosts}"
    );
    let wide = c.kubectl_ok(&kc, &["get", "nodes", "-o", "wide"]);
    let row = |n: &str| {
        wide.lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("s1")[1..5],
        [
            "Ready",
            "control-plane,master",
            row("s1")[3].as_str(),
            "v1.33.5+k3s1"
        ]
        .map(String::from),
        "{wide}"
    );
    assert_eq!(row("a1")[1], "Ready", "{wide}");
    assert_eq!(row("a1")[2], "<none>", "{wide}");
    assert_eq!(row("a1")[4], "v1.32.9+k3s1", "{wide}");
    assert_eq!(row("a1")[5], "127.0.0.1", "{wide}");

    let jp = |path: &str| {
        c.kubectl_ok(
            &kc,
            &["get", "node", "a1", "-o", &format!("jsonpath={path}")],
        )
    };
    assert_eq!(jp("{.metadata.labels.zone}"), "b");
    assert_eq!(
        jp("{.metadata.labels.node\\.kubernetes\\.io/instance-type}"),
        "k3s"
    );
    assert_eq!(jp("{.spec.taints[0].key}"), "dedicated");
    assert!(jp("{.metadata.annotations.k3s\\.io/node-args}").contains("\"--token\",\"********\""));
    assert!(!jp("{.metadata.annotations.k3s\\.io/node-args}").contains(&token));
    assert!(!jp("{.metadata.annotations.k3s\\.io/node-config-hash}").is_empty());
    assert_eq!(
        jp("{.metadata.annotations.k3s\\.io/internal-ip}"),
        "127.0.0.1"
    );
    assert_eq!(jp("{.status.nodeInfo.kubeletVersion}"), "v1.32.9+k3s1");
    assert!(
        a1.path("/var/lib/rancher/k3s/agent/client-kubelet.crt")
            .exists()
    );
    assert!(a1.path("/etc/rancher/node/password").exists());

    c.kubectl_ok(&kc, &["cordon", "a1"]);
    c.wait_node_status(
        &kc,
        "a1",
        "Ready,SchedulingDisabled",
        Duration::from_secs(5),
    );
    c.kubectl_ok(&kc, &["uncordon", "a1"]);
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(5));
    c.kubectl_ok(&kc, &["label", "node", "a1", "tier=web"]);
    assert_eq!(jp("{.metadata.labels.tier}"), "web");
    c.kubectl_ok(&kc, &["label", "node", "a1", "tier-"]);
    assert_eq!(jp("{.metadata.labels.tier}"), "");
    c.kubectl_ok(&kc, &["taint", "node", "a1", "extra=1:NoExecute"]);
    assert_eq!(
        jp("{.spec.taints[*].key}"),
        "extra dedicated",
        "kubectl taint puts new taints first"
    );
    c.kubectl_ok(&kc, &["taint", "node", "a1", "dedicated-"]);
    assert_eq!(jp("{.spec.taints[*].key}"), "extra");
    c.kubectl_ok(
        &kc,
        &["wait", "--for=condition=Ready", "node/a1", "--timeout=10s"],
    );

    // A config change reaches the k3s.io annotations at the next start (config-file arguments
    // after the subcommand, before the command line, a new hash); node-label is
    // registration-only, so the label stays as it was.
    let node_args = "{.metadata.annotations.k3s\\.io/node-args}";
    let hash = "{.metadata.annotations.k3s\\.io/node-config-hash}";
    let hash_before = jp(hash);
    fs_err::write(
        a1.path("/etc/rancher/k3s/config.yaml"),
        "kubelet-arg: [max-pods=50]\nnode-label: [zone=c]\n",
    )
    .expect("write config");
    a1.stop();
    a1.start();
    wait_for(
        "node-args after the restart",
        Duration::from_secs(20),
        || {
            jp(node_args)
                .starts_with(
                    r#"["agent","--kubelet-arg","max-pods=50","--node-label","zone=c","--server""#,
                )
                .then_some(())
        },
    );
    assert_ne!(jp(hash), hash_before, "the hash follows the arguments");
    assert_eq!(jp("{.metadata.labels.zone}"), "b");

    // Node password: another machine with the same name is refused until the Node is deleted.
    let mut imposter = c.agent("a1", "v1.32.9+k3s1", &token, &[]);
    imposter.root = c.dir.path().join("a1-other");
    a1.stop();
    imposter.start();
    wait_for("node password rejection", Duration::from_secs(20), || {
        imposter
            .log()
            .contains("Node password rejected, duplicate hostname")
            .then_some(())
    });
    assert!(imposter.running(), "the agent keeps retrying");
    c.kubectl_ok(&kc, &["delete", "node", "a1"]);
    wait_for(
        "imposter registers after delete",
        Duration::from_secs(20),
        || {
            let out = c.kubectl(
                &kc,
                &[
                    "get",
                    "node",
                    "a1",
                    "-o",
                    "jsonpath={.metadata.annotations.k3s\\.io/node-args}",
                ],
            );
            out.status.success().then_some(())
        },
    );
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(20));
    imposter.stop();
    s.stop();
}

#[test]
fn late_join_wrong_tokens_and_not_ready() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--token", "right-secret"]);
    // The agent starts first and waits for the server, logging why.
    let mut early = c.agent("early", "v1.33.5+k3s1", "right-secret", &[]);
    let sock_path = c.dir.path().join("early-notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind notify socket");
    early
        .env
        .push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    early.start();
    wait_for("agent retry log", Duration::from_secs(15), || {
        early.log().contains("failed to get CA certs").then_some(())
    });
    assert!(
        early.log().contains("connection refused"),
        "{}",
        early.log()
    );
    // Under Type=notify the stalled join keeps `systemctl start` waiting: no READY=1 yet.
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    assert!(
        sock.recv(&mut buf).is_err(),
        "READY=1 before the agent joined"
    );
    s.start();
    let kc = c.wait_ready(&mut s);
    c.wait_node_status(&kc, "early", "Ready", Duration::from_secs(30));
    sock.set_nonblocking(false).expect("blocking");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let n = sock.recv(&mut buf).expect("READY=1 once joined");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(
        early
            .log()
            .contains("Cluster CA certificate is not trusted"),
        "a bare token trusts any CA, with a warning"
    );

    let token = server_token(&s);
    let (hash_part, _) = token.split_once("::").expect("secure");
    let mut wrong_pw = c.agent(
        "wrong-pw",
        "v1.33.5+k3s1",
        &format!("{hash_part}::server:not-the-secret"),
        &[],
    );
    wrong_pw.start();
    let code = wrong_pw
        .wait_exit(Duration::from_secs(20))
        .expect("agent with wrong password exits");
    assert_ne!(code, 0);
    assert!(
        wrong_pw.log().contains("failed to validate token")
            && wrong_pw.log().contains("401 Unauthorized"),
        "{}",
        wrong_pw.log()
    );

    let bogus_hash = format!("K10{}::server:right-secret", "0".repeat(64));
    let mut wrong_ca = c.agent("wrong-ca", "v1.33.5+k3s1", &bogus_hash, &[]);
    wrong_ca.start();
    let code = wrong_ca
        .wait_exit(Duration::from_secs(20))
        .expect("agent with wrong CA hash exits");
    assert_ne!(code, 0);
    assert!(
        wrong_ca
            .log()
            .contains("token CA hash does not match the Cluster CA certificate hash"),
        "{}",
        wrong_ca.log()
    );
    let nodes = c.kubectl_ok(&kc, &["get", "nodes", "-o", "name"]);
    assert!(!nodes.contains("wrong-"), "{nodes}");

    // Heartbeats stop: NotReady after the grace period (6s in tests), Ready again after restart.
    early.stop();
    c.wait_node_status(&kc, "early", "NotReady", Duration::from_secs(20));
    let reason = c.kubectl_ok(
        &kc,
        &[
            "get",
            "node",
            "early",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
        ],
    );
    assert_eq!(reason, "Kubelet stopped posting node status.");
    // Restart as an agent upgrade: the node reports the new version.
    early.binary = c.binary("v1.34.1+k3s1");
    early.env.clear();
    early.start();
    c.wait_node_status(&kc, "early", "Ready", Duration::from_secs(20));
    let version = c.kubectl_ok(
        &kc,
        &[
            "get",
            "node",
            "early",
            "-o",
            "jsonpath={.status.nodeInfo.kubeletVersion}",
        ],
    );
    assert_eq!(version, "v1.34.1+k3s1");
    s.stop();
}

#[test]
fn agent_token_is_separate_from_the_server_token() {
    let c = Cluster::new();
    let mut s = c.server(
        "s1",
        "v1.33.5+k3s1",
        &["--token", "server-secret", "--agent-token", "agent-secret"],
    );
    s.start();
    let kc = c.wait_ready(&mut s);
    let agent_token_file = s.path("/var/lib/rancher/k3s/server/agent-token");
    assert!(
        !fs_err::symlink_metadata(&agent_token_file)
            .expect("agent-token")
            .file_type()
            .is_symlink()
    );
    let agent_token = fs_err::read_to_string(&agent_token_file)
        .expect("read")
        .trim()
        .to_string();
    assert!(
        agent_token.starts_with("K10") && agent_token.ends_with("::node:agent-secret"),
        "{agent_token}"
    );
    let server_token = server_token(&s);
    assert!(
        server_token.ends_with("::server:server-secret"),
        "{server_token}"
    );

    let mut with_agent_token = c.agent("a1", "v1.33.5+k3s1", &agent_token, &[]);
    let mut with_server_token = c.agent("a2", "v1.33.5+k3s1", &server_token, &[]);
    with_agent_token.start();
    with_server_token.start();
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(30));
    c.wait_node_status(&kc, "a2", "Ready", Duration::from_secs(30));
    with_agent_token.stop();
    with_server_token.stop();
    s.stop();
}

#[test]
fn kubelet_posts_status_and_lease_right_after_start() {
    // With a heartbeat far longer than the test, only the post a starting kubelet makes at once
    // can create the Leases: a node whose first post waited for the interval would have none.
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &[]);
    s.env.push(("K3S_SIM_HEARTBEAT".into(), "10m".into()));
    s.start();
    let kc = c.wait_ready(&mut s);
    let token = server_token(&s);
    let mut a1 = c.agent("a1", "v1.33.5+k3s1", &token, &[]);
    a1.env.push(("K3S_SIM_HEARTBEAT".into(), "10m".into()));
    a1.start();
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(30));
    let leases = wait_for("both node leases", Duration::from_secs(10), || {
        let out = c.kubectl_ok(
            &kc,
            &[
                "get",
                "leases",
                "-n",
                "kube-node-lease",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.spec.renewTime}{\"\\n\"}{end}",
            ],
        );
        (out.contains("s1=") && out.contains("a1=")).then_some(out)
    });
    for line in leases.lines() {
        let (_, renew) = line.split_once('=').expect("name=time");
        assert!(
            renew.contains('.'),
            "renewTime carries sub-second precision: {leases}"
        );
    }
}
