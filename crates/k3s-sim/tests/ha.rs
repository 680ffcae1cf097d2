//! HA on embedded etcd with local processes: servers on their own ports (`K3S_SIM_ETCD_PORTS`),
//! checked with kubectl 1.20 and Debian's etcdctl (etcd-client). Needs the `etcd` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, server_token, wait_for};

// A server of an HA cluster, shared with the snapshot tests.
use common::etcd_server::EtcdServer as Srv;

fn server(c: &Cluster, name: &str, extra: &[&str]) -> Srv {
    Srv::new(c, name, "ha-secret", extra)
}

fn etcdctl(s: &Srv, args: &[&str]) -> String {
    s.etcdctl(args)
}

/// (name, is_learner) of every member.
fn members(s: &Srv) -> Vec<(String, bool)> {
    s.members()
}

fn ready(c: &Cluster, s: &mut Srv) -> PathBuf {
    s.ready(c)
}

fn jsonpath(c: &Cluster, kc: &Path, args: &[&str], path: &str) -> String {
    let jp = format!("jsonpath={path}");
    let mut all = args.to_vec();
    all.extend(["-o", &jp]);
    c.kubectl_ok(kc, &all)
}

#[test]
fn three_servers_share_one_etcd_and_agents_fail_over() {
    let c = Cluster::new();
    let t0 = Instant::now();
    let mut s1 = server(&c, "s1", &["--cluster-init"]);
    s1.node.start();
    let kc1 = ready(&c, &mut s1);
    let first = t0.elapsed();
    let token = server_token(&s1.node);
    assert!(token.starts_with("K10"), "{token}");
    let s1_url = s1.url();
    let mut s2 = server(&c, "s2", &["--server", &s1_url, "--token", &token]);
    s2.node.start();
    let kc2 = ready(&c, &mut s2);
    let s2_url = s2.url();
    // The third joins through the second: any server can take joins.
    let mut s3 = server(&c, "s3", &["--server", &s2_url, "--token", &token]);
    s3.node.start();
    let kc3 = ready(&c, &mut s3);
    eprintln!(
        "first server ready after {first:?}, three servers ready after {:?}",
        t0.elapsed()
    );

    // etcdctl as the K3s docs show it: three started voters, named <node>-<8 hex>.
    let ms = wait_for("3 voters", Duration::from_secs(30), || {
        let ms = members(&s1);
        (ms.len() == 3 && ms.iter().all(|(n, l)| !n.is_empty() && !l)).then_some(ms)
    });
    for (name, _) in &ms {
        let node = name.rsplit_once('-').map(|(n, _)| n).unwrap_or("");
        assert!(["s1", "s2", "s3"].contains(&node), "{ms:?}");
    }
    let s1_member =
        fs_err::read_to_string(s1.node.path("/var/lib/rancher/k3s/server/db/etcd/name"))
            .expect("member name file");
    assert!(
        ms.iter().any(|(n, _)| *n == s1_member),
        "{ms:?} {s1_member}"
    );

    // Node roles, EtcdIsVoter and the etcd annotations, seen through any server.
    let roles = c.kubectl_ok(&kc3, &["get", "nodes", "--no-headers"]);
    assert_eq!(
        roles.matches("control-plane,etcd,master").count(),
        3,
        "{roles}"
    );
    let voter = jsonpath(
        &c,
        &kc2,
        &["get", "node", "s1"],
        "{.status.conditions[?(@.type==\"EtcdIsVoter\")].status}/{.status.conditions[?(@.type==\"EtcdIsVoter\")].reason}/{.metadata.annotations.etcd\\.k3s\\.cattle\\.io/node-name}/{.metadata.annotations.etcd\\.k3s\\.cattle\\.io/node-address}",
    );
    assert_eq!(
        voter,
        format!("True/MemberNotLearner/{s1_member}/127.0.0.1")
    );

    // /db/info (local request) lists the members as K3s's etcdserverpb.Member JSON.
    let out = c.kubectl_ok(&kc1, &["get", "--raw", "/db/info"]);
    assert_eq!(out.matches("\"peerURLs\"").count(), 3, "{out}");
    // Without credentials from this machine too (curl, no client certificate).
    let out = Command::new("curl")
        .args(["-sk", &format!("{}/db/info", s1.url())])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text.matches("\"peerURLs\"").count(), 3, "{text}");

    // A watch through s2 sees what is created through s1, and s3 reads it.
    let mut watch = Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&kc2)
        .args([
            "get",
            "configmaps",
            "-w",
            "--no-headers",
            "--request-timeout=20s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_secs(1));
    c.kubectl_ok(
        &kc1,
        &["create", "configmap", "across", "--from-literal=k=v"],
    );
    let data = wait_for("configmap through s3", Duration::from_secs(10), || {
        let out = c.kubectl(
            &kc3,
            &["get", "configmap", "across", "-o", "jsonpath={.data.k}"],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    });
    assert_eq!(data, "v");
    std::thread::sleep(Duration::from_secs(1));
    let _ = watch.kill();
    let out = watch.wait_with_output().expect("watch output");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("across"),
        "watch through s2 saw: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An agent learns every server; when its server stops it stays Ready through another.
    let mut a1 = c.node(
        "a1",
        "v1.33.5+k3s1",
        &[
            "agent",
            "--server",
            &s1_url,
            "--token",
            &token,
            "--node-name",
            "a1",
            "--node-ip",
            "127.0.0.1",
        ],
    );
    a1.start();
    c.wait_node_status(&kc3, "a1", "Ready", Duration::from_secs(30));
    let lb = a1.path("/var/lib/rancher/k3s/agent/etc/k3s-agent-load-balancer.json");
    let lb_text = wait_for("load balancer file", Duration::from_secs(10), || {
        fs_err::read_to_string(&lb).ok()
    });
    for s in [&s1, &s2, &s3] {
        assert!(
            lb_text.contains(&format!("127.0.0.1:{}", s.port)),
            "{lb_text}"
        );
    }
    let leader = jsonpath(
        &c,
        &kc1,
        &["get", "lease", "-n", "kube-system", "k3s"],
        "{.spec.holderIdentity}",
    );
    assert_eq!(leader, "s1", "the first server leads the controllers");
    s1.node.stop();
    wait_for("a1 switched servers", Duration::from_secs(15), || {
        a1.log().contains("switched to").then_some(())
    });
    // Past the grace period (6s) a1 is still Ready: its heartbeats reach s2 or s3.
    std::thread::sleep(Duration::from_secs(8));
    c.wait_node_status(&kc3, "a1", "Ready", Duration::from_secs(1));
    // Another server took over the controllers: s1 turns NotReady, a Deployment gets pods.
    c.wait_node_status(&kc2, "s1", "NotReady", Duration::from_secs(30));
    let holder = jsonpath(
        &c,
        &kc2,
        &["get", "lease", "-n", "kube-system", "k3s"],
        "{.spec.holderIdentity}",
    );
    assert!(holder == "s2" || holder == "s3", "{holder}");
    c.kubectl_ok(
        &kc3,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    wait_for(
        "deployment ready via the new leader",
        Duration::from_secs(30),
        || {
            let out = c.kubectl(
                &kc2,
                &[
                    "get",
                    "deployment",
                    "web",
                    "-o",
                    "jsonpath={.status.readyReplicas}",
                ],
            );
            (String::from_utf8_lossy(&out.stdout) == "2").then_some(())
        },
    );
    // Two of three members keep quorum; etcdctl on s3 still sees s1's member.
    assert_eq!(members(&s3).len(), 3);

    // The agent restarted while its --server (s1) is down starts through a saved server.
    a1.stop();
    let before = a1.log().len();
    a1.start();
    wait_for("agent up again without s1", Duration::from_secs(30), || {
        a1.log()[before..]
            .contains("k3s agent is up and running")
            .then_some(())
    });
    c.wait_node_status(&kc3, "a1", "Ready", Duration::from_secs(10));

    // s1 comes back with --server ignored (its etcd data exists) and rejoins as itself.
    s1.node.start();
    ready(&c, &mut s1);
    assert!(
        s1.node
            .log()
            .contains("Starting etcd for existing cluster member")
    );
    c.wait_node_status(&kc3, "s1", "Ready", Duration::from_secs(30));
    a1.stop();

    // s3 rebuilt on a wiped disk while its old member remains: refused as a duplicate name.
    let s3_db = s3.node.path("/var/lib/rancher/k3s/server/db");
    s3.node.stop();
    fs_err::remove_dir_all(&s3_db).expect("wipe s3");
    let before = s3.node.log().len();
    s3.node.start();
    assert_eq!(s3.node.wait_exit(Duration::from_secs(30)), Some(1));
    let refused = s3.node.log()[before..].to_string();
    assert!(
        refused.contains("duplicate node name found, please use a unique name for this node"),
        "{refused}"
    );
    // The member controller removes the old member on request, then the Node is deleted.
    c.kubectl_ok(
        &kc2,
        &["annotate", "node", "s3", "etcd.k3s.cattle.io/remove=true"],
    );
    wait_for("member of s3 removed", Duration::from_secs(20), || {
        (members(&s2).len() == 2).then_some(())
    });
    wait_for(
        "removed-node-name annotation",
        Duration::from_secs(10),
        || {
            let v = jsonpath(
                &c,
                &kc2,
                &["get", "node", "s3"],
                "{.metadata.annotations.etcd\\.k3s\\.cattle\\.io/removed-node-name}",
            );
            v.starts_with("s3-").then_some(())
        },
    );
    c.kubectl_ok(&kc2, &["delete", "node", "s3"]);
    // Now it joins again as a new member.
    fs_err::remove_dir_all(&s3_db).ok();
    s3.node.start();
    ready(&c, &mut s3);
    wait_for("3 voters again", Duration::from_secs(30), || {
        let ms = members(&s2);
        (ms.len() == 3 && ms.iter().all(|(_, l)| !l)).then_some(())
    });
    c.wait_node_status(&kc2, "s3", "Ready", Duration::from_secs(20));

    // Deleting an etcd server's Node removes its member too; the removed server's etcd stops,
    // and so does the server.
    c.kubectl_ok(&kc2, &["delete", "node", "s3"]);
    wait_for(
        "member of deleted node s3 removed",
        Duration::from_secs(20),
        || (members(&s2).len() == 2).then_some(()),
    );
    assert!(
        s3.node
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|c| c != 0)
    );
}

#[test]
fn refused_joins_and_a_learner_until_promoted() {
    let c = Cluster::new();
    let mut s1 = server(&c, "s1", &["--cluster-init"]);
    // No promotion for now: the next server stays a learner.
    s1.node
        .env
        .push(("K3S_SIM_LEARNER_PROMOTE".into(), "1h".into()));
    s1.node.start();
    let kc1 = ready(&c, &mut s1);
    let token = server_token(&s1.node);
    let s1_url = s1.url();
    let mut s2 = server(
        &c,
        "s2",
        &[
            "--server",
            &s1_url,
            "--token",
            &token,
            "--disable",
            "servicelb",
        ],
    );
    s2.node.start();
    let code = s2.node.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "log:\n{}", s2.node.log());
    let log = s2.node.log();
    assert!(
        log.contains("failed to validate server configuration: critical configuration value mismatch between servers")
            && log.contains("DisableServiceLB"),
        "{log}"
    );
    assert_eq!(
        members(&s1).len(),
        1,
        "a refused server is never added to etcd"
    );

    // A wrong token is refused before anything is fetched.
    let mut s3 = server(
        &c,
        "s3",
        &["--server", &s1_url, "--token", "K10deadbeef::server:wrong"],
    );
    s3.node.start();
    assert_eq!(s3.node.wait_exit(Duration::from_secs(30)), Some(1));
    assert!(
        s3.node.log().contains("token CA hash does not match"),
        "{}",
        s3.node.log()
    );

    // A joining server is a learner until the etcd leader's server promotes it: its Node shows
    // EtcdIsVoter False/MemberIsLearner, etcdctl lists a learner, its API is not served yet.
    let mut s4 = server(&c, "s4", &["--server", &s1_url, "--token", &token]);
    s4.node.start();
    let voter = |c: &Cluster| {
        let out = c.kubectl(
            &kc1,
            &[
                "get",
                "node",
                "s4",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"EtcdIsVoter\")].status}/{.status.conditions[?(@.type==\"EtcdIsVoter\")].reason}",
            ],
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    wait_for("s4 shown as a learner", Duration::from_secs(60), || {
        (voter(&c) == "False/MemberIsLearner").then_some(())
    });
    assert!(members(&s1).iter().any(|(n, l)| n.starts_with("s4-") && *l));
    assert!(!s4.kubeconfig().exists(), "no API while a learner");
    wait_for("learner log", Duration::from_secs(30), || {
        s4.node
            .log()
            .contains("this server has not yet been promoted from learner to voting member")
            .then_some(())
    });
    // s1 restarted with the default promotion interval (5s) promotes it.
    s1.node.stop();
    s1.node.env.retain(|(k, _)| k != "K3S_SIM_LEARNER_PROMOTE");
    s1.node.start();
    ready(&c, &mut s1);
    ready(&c, &mut s4);
    wait_for("s4 a voter", Duration::from_secs(60), || {
        (voter(&c) == "True/MemberNotLearner").then_some(())
    });
    assert!(members(&s1).iter().all(|(_, l)| !l));
}

#[test]
fn single_server_migrates_to_etcd_and_a_wiped_disk_splits_the_cluster() {
    let c = Cluster::new();
    // A single server on the file store (the SQLite stand-in).
    let mut s1 = server(&c, "s1", &[]);
    s1.node.start();
    let kc1 = ready(&c, &mut s1);
    c.kubectl_ok(
        &kc1,
        &["create", "configmap", "before", "--from-literal=k=v"],
    );
    let db = s1.node.path("/var/lib/rancher/k3s/server/db");
    assert!(db.join("state").is_dir() && !db.join("etcd").exists());
    s1.node.stop();

    // Restarted with --cluster-init: objects move into etcd, the old store is renamed.
    s1.node.args.push("--cluster-init".into());
    s1.node.start();
    ready(&c, &mut s1);
    let log = s1.node.log();
    assert!(
        log.contains("Migrating content from sqlite to etcd"),
        "{log}"
    );
    assert!(db.join("state.migrated").is_dir() && !db.join("state").exists());
    assert!(db.join("etcd/member/wal").is_dir());
    assert_eq!(
        jsonpath(&c, &kc1, &["get", "configmap", "before"], "{.data.k}"),
        "v"
    );
    assert!(
        etcdctl(
            &s1,
            &["get", "/registry/configmaps/default/before", "--keys-only"]
        )
        .contains("before")
    );
    c.wait_node_status(&kc1, "s1", "Ready", Duration::from_secs(20));
    let roles = c.kubectl_ok(&kc1, &["get", "node", "s1", "--no-headers"]);
    assert!(roles.contains("control-plane,etcd,master"), "{roles}");

    // A second server joins; then s1's disk is wiped and it starts with --cluster-init again:
    // a new, separate cluster (the split-brain trap), not a rejoin.
    let token = server_token(&s1.node);
    let s1_url = s1.url();
    let mut s2 = server(&c, "s2", &["--server", &s1_url, "--token", &token]);
    s2.node.start();
    let kc2 = ready(&c, &mut s2);
    wait_for("2 voters", Duration::from_secs(30), || {
        let ms = members(&s1);
        (ms.len() == 2 && ms.iter().all(|(_, l)| !l)).then_some(())
    });
    // A restart with etcd data on disk: --cluster-init is ignored and nothing migrates again.
    s1.node.stop();
    let before = s1.node.log().len();
    s1.node.start();
    ready(&c, &mut s1);
    let again = s1.node.log()[before..].to_string();
    assert!(
        again.contains("Starting etcd for existing cluster member") && !again.contains("Migrating"),
        "{again}"
    );
    assert_eq!(
        jsonpath(&c, &kc2, &["get", "configmap", "before"], "{.data.k}"),
        "v"
    );

    // The trap: the cluster is down, s1's disk is wiped, config still says --cluster-init: s1
    // starts a new, separate one-member cluster instead of rejoining.
    s2.node.stop();
    // Without quorum s1's API reports etcd not ready, as kube-apiserver's /readyz does.
    let kc1_old = s1.kubeconfig();
    wait_for(
        "readyz failing without quorum",
        Duration::from_secs(20),
        || {
            let out = c.kubectl(&kc1_old, &["get", "--raw", "/readyz"]);
            (!out.status.success()).then_some(())
        },
    );
    // Restarted without quorum, s1 waits for its peer instead of failing.
    s1.node.stop();
    let before = s1.node.log().len();
    s1.node.start();
    wait_for("s1 waiting for quorum", Duration::from_secs(45), || {
        assert!(s1.node.running(), "s1 exited:\n{}", s1.node.log());
        s1.node.log()[before..]
            .contains("Waiting for etcd to become available (a quorum of members must be up)")
            .then_some(())
    });
    s2.node.start();
    ready(&c, &mut s1);
    ready(&c, &mut s2);
    s2.node.stop();
    s1.node.stop();
    let before = s1.node.log().len();
    fs_err::remove_dir_all(&db).expect("wipe server/db");
    s1.node.start();
    let kc1 = ready(&c, &mut s1);
    let fresh_log = s1.node.log()[before..].to_string();
    assert!(
        fresh_log.contains("Starting etcd for new cluster"),
        "{fresh_log}"
    );
    assert!(!fresh_log.contains("Migrating content"), "{fresh_log}");
    let alone = members(&s1);
    assert_eq!(
        alone.len(),
        1,
        "the wiped server is alone in a new cluster: {alone:?}"
    );
    assert!(
        !c.kubectl(&kc1, &["get", "configmap", "before"])
            .status
            .success(),
        "the new cluster has none of the old objects"
    );
    // s2's disk still holds the old cluster.
    assert!(
        s2.node
            .path("/var/lib/rancher/k3s/server/db/etcd/member/wal")
            .is_dir()
    );
}
