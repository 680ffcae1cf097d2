//! End to end on the lab with the K3s stand-in running real etcd: HA clusters on embedded etcd.
//! One 5-host lab, scenarios in their natural order:
//! 1. fresh 3 servers + 2 agents: 5 Ready nodes, 3 with roles control-plane,etcd,master, etcdctl
//!    lists 3 started voters; a second apply does nothing (timings printed: the benchmark);
//! 2. a server crashes: the API through the export, agents Ready, `plan` names the host and the
//!    repair; after the host boots, apply converges;
//! 3. the FIRST server crashes and loses /var/lib/rancher/k3s: `plan` works through another
//!    server; apply rebuilds it as a joining server (one cluster of 3 voters, objects kept);
//! 4. refusals: 2 or 4 servers, critical flags on one server;
//! 5. 1 → 3 servers: the SQLite (file store) server converts to etcd (an etcd snapshot is taken
//!    right after, before the others join), a Deployment survives.
//!
//! Referees: Debian's kubectl 1.20 and etcdctl run on a server over ssh.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/e2e.rs"]
mod e2e;

use e2e::{build_stand_in, k3sctl, kube, text};
use lab::{Lab, SpecOptions};

const LAB: &str = "e2e-ha";
const ETCDCTL: &str = "ETCDCTL_API=3 etcdctl --cacert /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt \
    --cert /var/lib/rancher/k3s/server/tls/etcd/client.crt \
    --key /var/lib/rancher/k3s/server/tls/etcd/client.key --endpoints https://127.0.0.1:2379";

/// kubectl 1.20 through an exported kubeconfig.
/// `name -> (status, roles)` from `kubectl get nodes --no-headers`.
fn nodes(kubeconfig: &Path) -> Vec<(String, String, String)> {
    let (ok, out) = kube(kubeconfig, &["get", "nodes", "--no-headers"]);
    assert!(ok, "kubectl get nodes: {out}");
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.into(), f.next()?.into(), f.next()?.into()))
        })
        .collect()
}

/// etcd's member list on `server`: (name, is learner), and the cluster id.
fn members(lab: &Lab, server: &str) -> (Vec<(String, bool)>, String) {
    let out = lab
        .exec(server, &format!("{ETCDCTL} member list -w json"))
        .unwrap_or_else(|e| panic!("etcdctl on {server}: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl json {e}: {out}"));
    let list = v["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or_default().to_owned(),
                        m["isLearner"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (list, v["header"]["cluster_id"].to_string())
}

/// Three started voters, one per server, as `server` sees them; returns the cluster id.
fn assert_three_voters(lab: &Lab, server: &str, servers: &[&str]) -> String {
    let (list, cluster) = members(lab, server);
    assert_eq!(list.len(), 3, "members seen by {server}: {list:?}");
    for (name, learner) in &list {
        assert!(!learner, "{name} is still a learner: {list:?}");
        assert!(
            servers.iter().any(|s| name.starts_with(&format!("{s}-"))),
            "member {name:?} is not started or not one of {servers:?}"
        );
    }
    cluster
}

/// The JSON progress lines (`-o json`).
fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("step").is_some())
        .collect()
}

fn wipe_k3s(lab: &Lab, host: &str) {
    lab.exec(
        host,
        "systemctl disable --now k3s k3s-agent 2>/dev/null; rm -rf /var/lib/rancher /etc/rancher \
         /etc/systemd/system/k3s.service* /etc/systemd/system/k3s-agent.service* \
         /usr/local/bin/k3s; systemctl daemon-reload",
    )
    .unwrap_or_else(|e| panic!("wipe {host}: {e}"));
}

fn spec_with(lab: &Lab, path: &Path, servers: u8, edit: impl Fn(String) -> String) {
    lab.write_spec(
        path,
        &SpecOptions {
            servers: Some(servers),
            ..SpecOptions::default()
        },
    )
    .expect("spec written");
    let written = fs_err::read_to_string(path).expect("read spec");
    fs_err::write(path, edit(written)).expect("write spec");
}

fn apply(spec: &str) -> (String, Duration, Vec<serde_json::Value>) {
    let began = Instant::now();
    let out = k3sctl(&["-o", "json", "apply", "-c", spec]);
    let took = began.elapsed();
    let all = text(&out);
    assert!(out.status.success(), "apply failed:\n{all}");
    (all, took, events(&out.stdout))
}

#[test]
fn ha_create_survive_rebuild_refuse_and_convert() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let mut lab = Lab::boot(LAB, 5).expect("lab boots");
    let hosts = lab.hosts();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let servers = &names[..3];
    let spec = lab.dir().join("cluster.yaml");
    let spec_arg = spec.to_string_lossy().into_owned();
    let kubeconfig = lab.dir().join("kubeconfig.yaml");

    // --- 1. Fresh HA: 3 servers, 2 agents. ---
    spec_with(&lab, &spec, 3, |s| s);
    let plan = k3sctl(&["plan", "-c", &spec_arg]);
    let plan_text = text(&plan);
    assert!(plan.status.success(), "plan: {plan_text}");
    assert!(
        plan_text.contains("cluster-init")
            && plan_text.contains("Cluster-wide server settings (identical on every server)")
            && plan_text.contains("cluster-cidr: 10.42.0.0/16"),
        "plan does not show the bootstrap and the critical values:\n{plan_text}"
    );
    let (out, took, evs) = apply(&spec_arg);
    let ready = nodes(&kubeconfig);
    assert_eq!(ready.len(), 5, "{ready:?}");
    for (name, status, roles) in &ready {
        assert_eq!(status, "Ready", "{name}: {ready:?}");
        if servers.contains(&name.as_str()) {
            assert_eq!(roles, "control-plane,etcd,master", "{name}");
        } else {
            assert_eq!(roles, "<none>", "{name}");
        }
    }
    let cluster_id = assert_three_voters(&lab, servers[2], servers);
    // cluster-init was only for the bootstrap: every server's env file now joins.
    for server in servers {
        let env = lab
            .exec(server, "cat /etc/systemd/system/k3s.service.env")
            .expect("env");
        assert!(
            !env.contains("CLUSTER_INIT") && env.contains("K3S_URL="),
            "{server}: {env}"
        );
    }
    // Servers joined one at a time: each started only after the previous one was a voter.
    let at = |host: &str, step: &str, kind: &str| {
        evs.iter()
            .position(|e| e["host"] == host && e["step"] == step && e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} {step} on {host}:\n{out}"))
    };
    for pair in servers.windows(2) {
        assert!(
            at(pair[0], "wait-etcd-voter", "done") < at(pair[1], "start", "start"),
            "{} started before {} was a voter",
            pair[1],
            pair[0]
        );
    }
    let seconds = |host: &str, step: &str| {
        evs.iter()
            .find(|e| e["host"] == host && e["step"] == step && e["kind"] == "done")
            .and_then(|e| e["seconds"].as_f64())
            .unwrap_or_default()
    };
    eprintln!("bench: fresh 3+2 HA apply {:.1}s", took.as_secs_f64());
    for server in &servers[1..] {
        eprintln!(
            "bench: {server} join: start {:.1}s + Ready {:.1}s + voter {:.1}s",
            seconds(server, "start"),
            seconds(server, "wait-node-ready"),
            seconds(server, "wait-etcd-voter")
        );
    }
    let second = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(
        second.status.success() && text(&second).contains("Nothing to do"),
        "second apply:\n{}",
        text(&second)
    );
    let (ok, made) = kube(
        &kubeconfig,
        &["create", "configmap", "before-crash", "--from-literal=k=v"],
    );
    assert!(ok, "{made}");

    // --- 2. One server crashes. ---
    let crashed = servers[1];
    lab.crash(crashed).expect("crash");
    let (ok, got) = kube(&kubeconfig, &["get", "configmap", "before-crash"]);
    assert!(ok, "API through {} with {crashed} down: {got}", servers[0]);
    for (name, status, _) in nodes(&kubeconfig) {
        if !servers.contains(&name.as_str()) {
            assert_eq!(status, "Ready", "agent {name} with {crashed} down");
        }
    }
    // Without the flag plan refuses and names it; with it, plan shows the rest and the repair.
    let refused = k3sctl(&["plan", "-c", &spec_arg]);
    assert!(
        !refused.status.success() && text(&refused).contains("--skip-unreachable"),
        "{}",
        text(&refused)
    );
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--skip-unreachable"]);
    let plan_text = text(&plan);
    assert_eq!(
        plan.status.code(),
        Some(1),
        "plan with {crashed} down:\n{plan_text}"
    );
    assert!(
        plan_text.contains(&format!("skipped (unreachable, not planned): {crashed}"))
            && plan_text.contains("repair: bring the skipped host(s) back")
            && plan_text.contains(&format!("{} (server)", servers[2])),
        "plan does not show the repair:\n{plan_text}"
    );
    lab.start(crashed).expect("start");
    apply(&spec_arg);
    assert_three_voters(&lab, crashed, servers);
    assert!(nodes(&kubeconfig).iter().all(|(_, s, _)| s == "Ready"));

    // --- 3. The first server crashes and loses its data. ---
    let first = servers[0];
    lab.crash(first).expect("crash");
    // Token, lock and API work through another server while the first is down.
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--skip-unreachable"]);
    assert!(
        plan.status.code() == Some(1)
            && text(&plan).contains(&format!("skipped (unreachable, not planned): {first}"))
            && text(&plan).contains(&format!("{} (server)", servers[1])),
        "plan with the first server down:\n{}",
        text(&plan)
    );
    let exported = k3sctl(&["kubeconfig", "-c", &spec_arg, "--stdout"]);
    assert!(
        exported.status.success() && text(&exported).contains("certificate-authority-data"),
        "kubeconfig with the first server down:\n{}",
        text(&exported)
    );
    let root = lab.root_dir(first).expect("root dir");
    fs_err::remove_dir_all(root.join("var/lib/rancher/k3s")).expect("wipe the first server");
    lab.start(first).expect("start");
    let (out, _, _) = apply(&spec_arg);
    assert!(
        out.contains("remove-etcd-member"),
        "the stale member was not removed:\n{out}"
    );
    let env = lab
        .exec(first, "cat /etc/systemd/system/k3s.service.env")
        .expect("env");
    assert!(
        !env.contains("CLUSTER_INIT"),
        "rebuilt with cluster-init: {env}"
    );
    for server in servers {
        let seen = assert_three_voters(&lab, server, servers);
        assert_eq!(seen, cluster_id, "{server} is in another cluster");
    }
    let (ok, got) = kube(&kubeconfig, &["get", "configmap", "before-crash"]);
    assert!(ok, "object lost after the rebuild: {got}");

    // --- 4. Refusals, before any host is touched. ---
    for (count, wanted) in [(2, "has 2 servers"), (4, "has 4 servers")] {
        let bad = lab.dir().join(format!("bad-{count}.yaml"));
        spec_with(&lab, &bad, count, |s| s);
        let out = k3sctl(&["plan", "-c", &bad.to_string_lossy()]);
        let said = text(&out);
        assert!(
            !out.status.success()
                && said.contains(wanted)
                && said.contains("embedded etcd needs an odd number")
                && said.contains("bad-"),
            "{count} servers:\n{said}"
        );
    }
    let bad = lab.dir().join("bad-critical.yaml");
    let second_server = servers[1].to_owned();
    spec_with(&lab, &bad, 3, |s| {
        let marker = format!("name: {second_server}\n");
        s.replacen(
            &marker,
            &format!("{marker}    config:\n      flannel-backend: wireguard-native\n"),
            1,
        )
    });
    let out = k3sctl(&["apply", "-c", &bad.to_string_lossy()]);
    let said = text(&out);
    assert!(
        !out.status.success()
            && said.contains("`flannel-backend` on server")
            && said.contains("critical configuration value")
            && said.contains("spec.cluster.serverConfig"),
        "critical flag on one server:\n{said}"
    );

    // --- 5. 1 → 3 servers: conversion of a SQLite (file store) server. ---
    for name in &names {
        wipe_k3s(&lab, name);
    }
    let single = lab.dir().join("single.yaml");
    spec_with(&lab, &single, 1, |s| s);
    apply(&single.to_string_lossy());
    let (ok, made) = kube(
        &kubeconfig,
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.example/web:1",
        ],
    );
    assert!(ok, "{made}");
    spec_with(&lab, &spec, 3, |s| s);
    let plan = k3sctl(&["plan", "-c", &spec_arg]);
    let plan_text = text(&plan);
    assert!(
        plan_text.contains(&format!("Conversion: {first}")) && plan_text.contains("API is down"),
        "plan does not announce the conversion:\n{plan_text}"
    );
    let (out, took, evs) = apply(&spec_arg);
    eprintln!("bench: 1 -> 3 conversion apply {:.1}s", took.as_secs_f64());
    let backup = evs
        .iter()
        .filter(|e| e["step"] == "convert-datastore" && e["kind"] == "info")
        .find_map(|e| {
            e["message"]
                .as_str()?
                .rsplit(" at ")
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no backup path printed:\n{out}"));
    let kept = lab
        .exec(first, &format!("test -d {backup} && ls {backup}"))
        .expect("backup kept on the host");
    assert!(!kept.trim().is_empty(), "backup {backup} is empty");
    lab.exec(
        first,
        "test -e /var/lib/rancher/k3s/server/db/state.migrated",
    )
    .expect("the store was migrated");
    // The first restore point on etcd, taken before the other servers joined.
    let snapshot_done = evs
        .iter()
        .position(|e| e["step"] == "etcd-snapshot" && e["kind"] == "done" && e["host"] == *first)
        .unwrap_or_else(|| panic!("no etcd snapshot after the conversion:\n{out}"));
    let first_join = evs
        .iter()
        .position(|e| e["step"] == "start" && e["kind"] == "start" && e["host"] != *first)
        .expect("a server joined");
    assert!(
        snapshot_done < first_join,
        "the snapshot came after a join:\n{out}"
    );
    let listed = lab
        .exec(first, "k3s etcd-snapshot ls")
        .expect("k3s etcd-snapshot ls");
    assert!(
        listed.contains(&format!("post-conversion-{first}-")),
        "{listed}"
    );
    let (ok, got) = kube(&kubeconfig, &["get", "deployment", "web"]);
    assert!(ok, "Deployment lost in the conversion: {got}");
    assert_three_voters(&lab, servers[1], servers);
    let roles: Vec<String> = nodes(&kubeconfig)
        .into_iter()
        .filter(|(n, _, _)| servers.contains(&n.as_str()))
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(roles, ["control-plane,etcd,master"; 3]);

    lab.down().expect("lab down");
}
