//! The stand-in as an HA K3s on lab hosts, under the installer's units, checked with kubectl 1.20
//! and Debian's etcdctl (the K3s docs' command, on the hosts). One lab of four hosts, in order:
//! a single server migrated to etcd by `cluster-init`; a join refused for a critical value; two
//! servers joining (the third through the second); an agent; three voters; an object and a watch
//! across servers; a server stopped while the agent stays Ready; its return; a wiped disk with
//! `cluster-init` starting a separate cluster.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lab_host::{put, swap_binary, unit};
use common::{kubectl_path, sim_binary, wait_for};
use lab::Lab;

const VERSION: &str = "v1.33.5+k3s1";
const TOKEN: &str = "lab-ha-join-secret";
const KNOBS: &str = "K3S_SIM_HEARTBEAT=1s\nK3S_SIM_NODE_GRACE=6s\nK3S_SIM_RETRY=1s\n\
K3S_SIM_ETCD_ELECTION_TIMEOUT=1s\nK3S_SIM_LEARNER_PROMOTE=1s\nK3S_SIM_LEADER_LEASE=4s\n";
const WAIT: Duration = Duration::from_secs(60);
const ETCDCTL: &str = "ETCDCTL_API=3 etcdctl --cacert /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt \
--cert /var/lib/rancher/k3s/server/tls/etcd/client.crt --key /var/lib/rancher/k3s/server/tls/etcd/client.key \
--endpoints https://127.0.0.1:2379";

fn install(lab: &Lab, host: &str, role: &str, config: &str, env: &str) {
    let name = if role == "server" { "k3s" } else { "k3s-agent" };
    for (path, text, mode) in [
        (
            format!("/etc/systemd/system/{name}.service"),
            unit(role, name),
            0o644,
        ),
        (
            format!("/etc/systemd/system/{name}.service.env"),
            env.to_string(),
            0o600,
        ),
        (format!("/etc/default/{name}"), KNOBS.to_string(), 0o644),
        (
            "/etc/rancher/k3s/config.yaml".to_string(),
            config.to_string(),
            0o600,
        ),
    ] {
        put(lab, host, &path, text.as_bytes(), mode);
    }
    lab.exec(host, "systemctl daemon-reload")
        .expect("daemon-reload");
}

fn server_config(ip: &std::net::Ipv4Addr, extra: &str) -> String {
    format!("node-ip: \"{ip}\"\ntoken: {TOKEN}\ntls-san:\n- \"{ip}\"\n{extra}")
}

/// kubectl 1.20 against one server's API.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn for_server(lab: &Lab, host: &lab::Host, dir: &std::path::Path) -> Self {
        let text = fs_err::read_to_string(
            lab.root_dir(&host.name)
                .expect("root")
                .join("etc/rancher/k3s/k3s.yaml"),
        )
        .expect("read k3s.yaml");
        let kubeconfig = dir.join(format!("{}.yaml", host.name));
        fs_err::write(
            &kubeconfig,
            text.replace(
                "https://127.0.0.1:6443",
                &format!("https://{}:6443", host.address),
            ),
        )
        .expect("write kubeconfig");
        Kubectl {
            bin: kubectl_path(),
            kubeconfig,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(["--request-timeout", "10s"])
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn condition(&self, node: &str, ty: &str) -> Option<String> {
        let jp = format!("jsonpath={{.status.conditions[?(@.type==\"{ty}\")].status}}");
        let out = self.run(&["get", "node", node, "-o", &jp]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_condition(&self, node: &str, ty: &str, want: &str) {
        wait_for(&format!("node {node} {ty}={want}"), WAIT, || {
            (self.condition(node, ty).as_deref() == Some(want)).then_some(())
        });
    }
}

fn journal(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(host, &format!("journalctl -u {unit} --no-pager -o cat"))
        .expect("journalctl")
}

/// (name, is_learner) of the members etcdctl lists on `host`.
fn members(lab: &Lab, host: &str) -> Vec<(String, bool)> {
    let out = lab
        .exec(host, &format!("{ETCDCTL} member list -w json"))
        .expect("etcdctl member list");
    let v: serde_json::Value = serde_json::from_str(&out).expect("member list json");
    v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn secure_token(lab: &Lab, host: &str) -> String {
    fs_err::read_to_string(
        lab.root_dir(host)
            .expect("root")
            .join("var/lib/rancher/k3s/server/token"),
    )
    .expect("server token")
    .trim()
    .to_string()
}

#[test]
fn stand_in_is_an_ha_k3s_on_lab_hosts() {
    lab::require_root().expect("the lab needs root");
    let lab = Lab::boot("simha", 4).expect("boot a 4-host lab");
    let hosts = lab.hosts();
    let (h0, h1, h2, agent) = (&hosts[0], &hosts[1], &hosts[2], &hosts[3]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let stamped = tmp.path().join("k3s");
    assert!(
        Command::new(sim_binary())
            .args(["stamp", "--version", VERSION, "-o"])
            .arg(&stamped)
            .status()
            .expect("stamp")
            .success()
    );
    let binary = fs_err::read(&stamped).expect("binary");
    for h in &hosts {
        swap_binary(&lab, &h.name, &binary);
    }

    // 1. A single server on the SQLite stand-in, then restarted with cluster-init: migrated.
    install(
        &lab,
        &h0.name,
        "server",
        &server_config(&h0.address, ""),
        "",
    );
    lab.exec(&h0.name, "systemctl enable --now k3s")
        .expect("start h0");
    let k0 = Kubectl::for_server(&lab, h0, tmp.path());
    k0.ok(&["create", "configmap", "before", "--from-literal=k=v"]);
    install(
        &lab,
        &h0.name,
        "server",
        &server_config(&h0.address, "cluster-init: true\n"),
        "",
    );
    let t = Instant::now();
    lab.exec(&h0.name, "systemctl restart k3s")
        .expect("restart h0 with cluster-init");
    eprintln!("conversion restart took {:?}", t.elapsed());
    let log = journal(&lab, &h0.name, "k3s");
    assert!(
        log.contains("Migrating content from sqlite to etcd"),
        "{log}"
    );
    assert!(
        lab.exec(
            &h0.name,
            "test -d /var/lib/rancher/k3s/server/db/state.migrated && test ! -e /var/lib/rancher/k3s/server/db/state && echo ok"
        )
        .expect("migrated store")
        .contains("ok")
    );
    assert_eq!(
        k0.ok(&["get", "configmap", "before", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    assert_eq!(members(&lab, &h0.name).len(), 1);
    let token = secure_token(&lab, &h0.name);
    let join_env = format!(
        "K3S_TOKEN=\"{token}\"\nK3S_URL=\"https://{}:6443\"\n",
        h0.address
    );

    // 2. A joining server with a different critical value is refused.
    install(
        &lab,
        &h1.name,
        "server",
        &format!("node-ip: \"{}\"\ndisable: servicelb\n", h1.address),
        &join_env,
    );
    lab.exec(&h1.name, "systemctl start --no-block k3s")
        .expect("start h1 (refused)");
    wait_for("critical value refusal", WAIT, || {
        journal(&lab, &h1.name, "k3s")
            .contains("critical configuration value mismatch between servers")
            .then_some(())
    });
    lab.exec(&h1.name, "systemctl stop k3s").expect("stop h1");
    assert!(journal(&lab, &h1.name, "k3s").contains("DisableServiceLB"));
    assert_eq!(members(&lab, &h0.name).len(), 1, "never added to etcd");

    // 3. h1 joins through h0 (K3S_URL + K3S_TOKEN), h2 through h1 (config.yaml server/token).
    let t = Instant::now();
    install(
        &lab,
        &h1.name,
        "server",
        &format!("node-ip: \"{}\"\n", h1.address),
        &join_env,
    );
    lab.exec(&h1.name, "systemctl start k3s").expect("join h1");
    let join1 = t.elapsed();
    let t = Instant::now();
    install(
        &lab,
        &h2.name,
        "server",
        &format!(
            "node-ip: \"{}\"\nserver: https://{}:6443\ntoken: \"{token}\"\n",
            h2.address, h1.address
        ),
        "",
    );
    lab.exec(&h2.name, "systemctl start k3s").expect("join h2");
    let join2 = t.elapsed();
    eprintln!("joins: h1 {join1:?}, h2 {join2:?}");
    let ms = wait_for("3 voters", WAIT, || {
        let ms = members(&lab, &h2.name);
        (ms.len() == 3 && ms.iter().all(|(n, l)| !n.is_empty() && !l)).then_some(ms)
    });
    for (name, _) in &ms {
        assert!(
            [&h0.name, &h1.name, &h2.name]
                .iter()
                .any(|n| name.starts_with(&format!("{n}-"))),
            "{ms:?}"
        );
    }
    let mem = lab
        .exec(&h2.name, "ps -o rss= -C etcd | head -1")
        .unwrap_or_default();
    eprintln!("etcd RSS on {}: {} KiB", h2.name, mem.trim());

    // 4. An agent joining through h0.
    install(
        &lab,
        &agent.name,
        "agent",
        &format!(
            "node-ip: \"{}\"\nserver: https://{}:6443\n",
            agent.address, h0.address
        ),
        &format!("K3S_TOKEN=\"{token}\"\n"),
    );
    lab.exec(&agent.name, "systemctl enable --now k3s-agent")
        .expect("start agent");
    let k1 = Kubectl::for_server(&lab, h1, tmp.path());
    let k2 = Kubectl::for_server(&lab, h2, tmp.path());
    for h in [h0, h1, h2] {
        k2.wait_condition(&h.name, "Ready", "True");
        k2.wait_condition(&h.name, "EtcdIsVoter", "True");
    }
    k2.wait_condition(&agent.name, "Ready", "True");
    let nodes = k1.ok(&["get", "nodes", "--no-headers"]);
    assert_eq!(
        nodes.matches("control-plane,etcd,master").count(),
        3,
        "{nodes}"
    );
    let addr = k1.ok(&[
        "get",
        "node",
        &h2.name,
        "-o",
        "jsonpath={.metadata.annotations.etcd\\.k3s\\.cattle\\.io/node-address}",
    ]);
    assert_eq!(addr, h2.address.to_string());

    // 5. A watch through h1 sees what is created through h0; h2 reads it.
    let mut watch = k1
        .cmd()
        .args([
            "get",
            "configmaps",
            "-w",
            "--no-headers",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_secs(1));
    k0.ok(&["create", "configmap", "across", "--from-literal=k=v"]);
    wait_for("configmap through h2", Duration::from_secs(10), || {
        k2.run(&["get", "configmap", "across"])
            .status
            .success()
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let _ = watch.kill();
    let seen = watch.wait_with_output().expect("watch output");
    assert!(
        String::from_utf8_lossy(&seen.stdout).contains("across"),
        "{}",
        String::from_utf8_lossy(&seen.stdout)
    );

    // 6. h0 (the agent's --server) stops: the agent stays Ready through another server.
    lab.exec(&h0.name, "systemctl stop k3s").expect("stop h0");
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(k2.condition(&agent.name, "Ready").as_deref(), Some("True"));
    k2.wait_condition(&h0.name, "Ready", "Unknown");
    assert!(journal(&lab, &agent.name, "k3s-agent").contains("switched to"));
    lab.exec(&h0.name, "systemctl start k3s")
        .expect("restart h0");
    assert!(journal(&lab, &h0.name, "k3s").contains("Starting etcd for existing cluster member"));
    k2.wait_condition(&h0.name, "Ready", "True");

    // 7. The trap: the cluster is down, h0's disk is wiped and its config.yaml still says
    //    cluster-init: h0 starts a new, separate one-member cluster instead of rejoining.
    for h in [h1, h2] {
        lab.exec(&h.name, "systemctl stop k3s").expect("stop");
    }
    lab.exec(
        &h0.name,
        "systemctl stop k3s && rm -rf /var/lib/rancher/k3s/server/db && systemctl start k3s",
    )
    .expect("wipe h0 and start it again");
    assert_eq!(
        members(&lab, &h0.name).len(),
        1,
        "h0 is alone in a new cluster"
    );
    assert!(!k0.run(&["get", "configmap", "across"]).status.success());
    assert!(
        lab.exec(
            &h1.name,
            "test -d /var/lib/rancher/k3s/server/db/etcd/member/wal && echo kept"
        )
        .expect("old data")
        .contains("kept")
    );
}
