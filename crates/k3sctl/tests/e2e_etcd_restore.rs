//! End to end on the lab with the K3s stand-in running real etcd: `k3sctl etcd restore` and
//! hosts reinstalled under the same name. One 4-host lab (3 servers + 1 agent), scenarios in
//! their natural order:
//! 1. a stray Node (a host no longer in the spec, with its node-password secret) and the agent's
//!    Node deleted, then snapshot → a namespace created → restore refused without a terminal or
//!    `--yes`, shown by `--dry-run` → restore → the namespace is gone, the stray Node and its
//!    secret deleted, the agent (whose Node the snapshot lacks) restarted and registered again,
//!    3 started voters (etcdctl), every node Ready under its own name, the others' old
//!    `server/db` kept aside, no marker left;
//! 2. a second restore killed right after the restored server is back (before the others
//!    rejoined): the marker stays; the same command again finishes without a second reset;
//!    then two snapshots K3s took by hand on another server are listed (from the API) with
//!    the rest, and `prune --name` runs on every server, pruning that server's;
//! 3. K3s stopped on one server after `node remove` of another judged quorum (while its drain
//!    waits on a PodDisruptionBudget): the check right before the member's removal refuses,
//!    naming the stopped one, and etcd keeps 3 members; run again with that server stopped,
//!    `node remove` is refused before it changes anything;
//! 4. an agent and a server wiped (`/var/lib/rancher`, `/etc/rancher`) as a reinstall would:
//!    `plan` says the stale node-password secret (and the server's stale member) are cleaned,
//!    `apply` brings both back under their names without "Node password rejected".
//!
//! Referees: Debian's kubectl 1.20 and etcdctl on a server over ssh.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/e2e.rs"]
#[allow(dead_code)]
mod e2e;

use e2e::{build_stand_in, k3sctl, k3sctl_unconfirmed, kube, text};
use lab::{Lab, SpecOptions};

const LAB: &str = "e2e-restore";
const ETCDCTL: &str = "ETCDCTL_API=3 etcdctl --cacert /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt \
    --cert /var/lib/rancher/k3s/server/tls/etcd/client.crt \
    --key /var/lib/rancher/k3s/server/tls/etcd/client.key --endpoints https://127.0.0.1:2379";
const MARKER: &str = "/var/lib/rancher/k3s/server/k3sctl-restore";
/// One pod pinned to the server TARGET, which a PodDisruptionBudget forbids evicting: a drain
/// of TARGET waits until the budget is deleted.
const PINNED: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: pinned, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeSelector: {kubernetes.io/hostname: TARGET}
      containers: [{name: c, image: nginx}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pinned, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: pinned}}
";

/// `(name, status)` of every node.
fn nodes(kubeconfig: &Path) -> Vec<(String, String)> {
    let (ok, out) = kube(kubeconfig, &["get", "nodes", "--no-headers"]);
    assert!(ok, "kubectl get nodes: {out}");
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.into(), f.next()?.into()))
        })
        .collect();
    v.sort();
    v
}

fn assert_all_ready(kubeconfig: &Path, names: &[&str]) {
    let got = nodes(kubeconfig);
    let mut want: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), "Ready".to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want, "every node Ready under its own name, no other");
}

/// Three started voters, one per server, as etcdctl on `server` sees them.
fn assert_three_voters(lab: &Lab, server: &str, servers: &[&str]) {
    let out = lab
        .exec(server, &format!("{ETCDCTL} member list -w json"))
        .unwrap_or_else(|e| panic!("etcdctl on {server}: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl json {e}: {out}"));
    let list = v["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 3, "members: {out}");
    for m in &list {
        let name = m["name"].as_str().unwrap_or_default();
        assert!(!m["isLearner"].as_bool().unwrap_or(false), "{name} learner");
        assert!(
            servers.iter().any(|s| name.starts_with(&format!("{s}-"))),
            "member {name:?} not started or not one of {servers:?}"
        );
    }
}

fn namespaces(kubeconfig: &Path) -> String {
    let (ok, out) = kube(kubeconfig, &["get", "namespaces", "-o", "name"]);
    assert!(ok, "{out}");
    out
}

fn save(spec: &str) -> String {
    let out = k3sctl(&["-o", "json", "etcd", "snapshot", "save", "-c", spec]);
    assert!(out.status.success(), "save: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["name"].as_str().expect("name").to_string()
}

/// The JSON progress lines.
fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("step").is_some())
        .collect()
}

fn restore(spec: &str, snapshot: &str) -> (Duration, Vec<serde_json::Value>, String) {
    let t = Instant::now();
    let out = k3sctl(&[
        "-o", "json", "--yes", "etcd", "restore", snapshot, "-c", spec,
    ]);
    let took = t.elapsed();
    assert!(out.status.success(), "restore:\n{}", text(&out));
    (took, events(&out.stdout), text(&out))
}

fn steps(evs: &[serde_json::Value]) -> Vec<String> {
    evs.iter()
        .filter(|e| e["kind"] == "done")
        .map(|e| {
            format!(
                "{} {}",
                e["step"].as_str().unwrap_or(""),
                e["host"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn restore_resume_and_reinstalled_hosts_rejoin() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let lab = Lab::boot(LAB, 4).expect("lab boots");
    let hosts = lab.hosts();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let servers = &names[..3];
    let agent = names[3];
    let spec = lab.dir().join("cluster.yaml");
    let spec_arg = spec.to_string_lossy().into_owned();
    let kubeconfig = lab.dir().join("kubeconfig.yaml");
    lab.write_spec(
        &spec,
        &SpecOptions {
            servers: Some(3),
            ..SpecOptions::default()
        },
    )
    .expect("spec written");
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "apply:\n{}", text(&out));
    assert_all_ready(&kubeconfig, &names);

    // --- 1. A stray Node, the agent's Node gone; snapshot, a namespace, restore. ---
    let stray = lab.dir().join("stray-node.yaml");
    fs_err::write(
        &stray,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: gone-host\n  labels:\n    kubernetes.io/hostname: gone-host\n",
    )
    .expect("stray node manifest");
    let (ok, out) = kube(&kubeconfig, &["create", "-f", &stray.to_string_lossy()]);
    assert!(ok, "{out}");
    let (ok, out) = kube(
        &kubeconfig,
        &[
            "-n",
            "kube-system",
            "create",
            "secret",
            "generic",
            "gone-host.node-password.k3s",
            "--from-literal=hash=x",
        ],
    );
    assert!(ok, "{out}");
    // The agent's Node is not in the snapshot: its kubelet does not register again by itself.
    let (ok, out) = kube(&kubeconfig, &["delete", "node", agent]);
    assert!(ok, "{out}");
    let snap = save(&spec_arg);
    let (ok, out) = kube(&kubeconfig, &["create", "namespace", "after-snapshot"]);
    assert!(ok, "{out}");

    // No terminal and no --yes: refused, nothing changed.
    let refused = k3sctl_unconfirmed(&["etcd", "restore", &snap, "-c", &spec_arg]);
    let refused_text = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{refused_text}");
    assert!(
        refused_text.contains("needs a confirmation")
            && refused_text
                .contains("every change made through the Kubernetes API after the snapshot")
            && refused_text.contains("db-before-restore-"),
        "{refused_text}"
    );
    assert!(namespaces(&kubeconfig).contains("namespace/after-snapshot"));
    // The steps, without changing anything.
    let dry = k3sctl(&["etcd", "restore", &snap, "--dry-run", "-c", &spec_arg]);
    let dry_text = text(&dry);
    assert!(dry.status.success(), "{dry_text}");
    assert!(
        dry_text.contains("--cluster-reset-restore-path=/var/lib/rancher/k3s/server/db/snapshots/")
            && dry_text.contains(&format!(
                "[{}] move /var/lib/rancher/k3s/server/db aside",
                servers[1]
            )),
        "{dry_text}"
    );
    lab.exec(servers[0], &format!("test ! -e {MARKER}"))
        .expect("a dry run writes no marker");

    let (took, evs, all) = restore(&spec_arg, &snap);
    let done = steps(&evs);
    assert!(
        done.iter().any(|s| s.starts_with("cluster-reset ")),
        "{all}"
    );
    // Servers rejoined one at a time, in spec order, after the restored one.
    let pos = |s: &str| {
        done.iter()
            .position(|d| d == s)
            .unwrap_or_else(|| panic!("no {s} in {done:?}"))
    };
    let target = done
        .iter()
        .find_map(|d| d.strip_prefix("start-restored "))
        .expect("restored server")
        .to_string();
    let others: Vec<&str> = servers.iter().copied().filter(|s| *s != target).collect();
    assert!(pos(&format!("rejoin {}", others[0])) < pos(&format!("move-db-aside {}", others[1])));
    assert!(!namespaces(&kubeconfig).contains("namespace/after-snapshot"));
    let (ok, out) = kube(&kubeconfig, &["get", "node", "gone-host"]);
    assert!(
        !ok && out.contains("NotFound"),
        "the stray Node is deleted: {out}"
    );
    let (ok, out) = kube(
        &kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "secret",
            "gone-host.node-password.k3s",
        ],
    );
    assert!(
        !ok && out.contains("NotFound"),
        "its node-password secret too: {out}"
    );
    let said = |step: &str, host: &str, what: &str| {
        evs.iter().any(|e| {
            e["step"] == step
                && e["host"] == host
                && e["message"].as_str().is_some_and(|m| m.contains(what))
        })
    };
    assert!(
        said("delete-stray-nodes", "gone-host", "deleted Node gone-host"),
        "{all}"
    );
    assert!(
        said("check-agents", agent, "Ready again"),
        "the agent was restarted: {all}"
    );
    assert_three_voters(&lab, servers[0], servers);
    assert_all_ready(&kubeconfig, &names);
    for s in &others {
        lab.exec(
            s,
            "ls -d /var/lib/rancher/k3s/server/db-before-restore-*/etcd",
        )
        .unwrap_or_else(|e| panic!("{s}: old data kept: {e}"));
    }
    lab.exec(&target, &format!("test ! -e {MARKER}"))
        .expect("marker removed");
    eprintln!(
        "bench: etcd restore of 3 servers + 1 agent: {:.1}s",
        took.as_secs_f64()
    );

    // --- 2. Interrupted after the reset, then re-run. ---
    let snap2 = save(&spec_arg);
    let (ok, out) = kube(&kubeconfig, &["create", "namespace", "after-second"]);
    assert!(ok, "{out}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .args([
            "-o", "json", "--yes", "etcd", "restore", &snap2, "-c", &spec_arg,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("k3sctl runs");
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut killed = false;
    for line in reader.lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["step"] == "start-restored" && v["kind"] == "done" {
            child.kill().expect("kill k3sctl");
            killed = true;
            break;
        }
    }
    let _ = child.wait();
    assert!(killed, "the restore never reached start-restored");
    lab.exec(&target, &format!("grep -q reset=done {MARKER}"))
        .expect("the marker remembers the reset");
    let (_, evs, all) = restore(&spec_arg, &snap2);
    let done = steps(&evs);
    assert!(
        !done
            .iter()
            .any(|s| s.starts_with("cluster-reset ") || s.starts_with("mark ")),
        "the re-run must resume, not reset again: {all}"
    );
    assert!(!namespaces(&kubeconfig).contains("namespace/after-second"));
    assert_three_voters(&lab, servers[0], servers);
    assert_all_ready(&kubeconfig, &names);
    lab.exec(&target, &format!("test ! -e {MARKER}"))
        .expect("marker removed");

    // --- Snapshots of every server: two that K3s took by hand on another server are listed
    // from the API with the rest; prune runs on every server and prunes that one's. ---
    let by_hand = others[0];
    for _ in 0..2 {
        lab.exec(by_hand, "k3s etcd-snapshot save --name by-hand")
            .expect("k3s etcd-snapshot save");
        std::thread::sleep(Duration::from_millis(1100));
    }
    let prefix = format!("by-hand-{by_hand}-");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = k3sctl(&["-o", "json", "etcd", "snapshot", "list", "-c", &spec_arg]);
        assert!(out.status.success(), "list:\n{}", text(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let listed = list
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| {
                        i["node"] == by_hand
                            && i["name"].as_str().is_some_and(|n| n.starts_with(&prefix))
                    })
                    .count()
            })
            .unwrap_or(0);
        if listed == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{by_hand}'s snapshots not listed: {list}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = k3sctl(&[
        "-o",
        "json",
        "etcd",
        "snapshot",
        "prune",
        "--name",
        "by-hand",
        "--retention",
        "1",
        "-c",
        &spec_arg,
    ]);
    assert!(out.status.success(), "prune:\n{}", text(&out));
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let per_server = pruned.as_array().cloned().unwrap_or_default();
    assert_eq!(per_server.len(), 3, "one entry per server: {pruned}");
    for entry in &per_server {
        let (removed, kept) = if entry["node"] == by_hand {
            (1, 1)
        } else {
            (0, 0)
        };
        assert_eq!(
            entry["removed"].as_array().map(Vec::len),
            Some(removed),
            "{pruned}"
        );
        assert_eq!(
            entry["kept"].as_array().map(Vec::len),
            Some(kept),
            "{pruned}"
        );
    }

    // --- 3. A server whose K3s stops after `node remove` judged quorum (in life: while the
    // confirmation is open; here: while the drain waits on a PodDisruptionBudget) is seen by
    // the check right before the member goes: refused, the member kept. ---
    // `stopped` is never servers[0], which the exported kubeconfig names, nor the server the
    // remove's API and lock go through (the first that stays).
    let stopped = others[1];
    let pinned = lab.dir().join("pinned.yaml");
    fs_err::write(&pinned, PINNED.replace("TARGET", &target)).expect("pinned manifest");
    let (ok, out) = kube(&kubeconfig, &["apply", "-f", &pinned.to_string_lossy()]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, on) = kube(
            &kubeconfig,
            &[
                "get",
                "pods",
                "-l",
                "app=pinned",
                "-o",
                "jsonpath={.items[*].spec.nodeName} {.items[*].status.phase}",
            ],
        );
        if on.trim() == format!("{target} Running") {
            break;
        }
        assert!(Instant::now() < deadline, "the pinned pod never ran: {on}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env("K3SCTL_YES", "1")
        .args([
            "-o", "json", "node", "remove", &target, "--force", "-c", &spec_arg,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("k3sctl runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let draining = serde_json::from_str::<serde_json::Value>(&line)
            .is_ok_and(|v| v["step"] == "drain" && v["kind"] == "start");
        seen.push(line);
        if draining {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("\"drain\"")),
        "node remove never reached its drain: {seen:?}"
    );
    let t = Instant::now();
    lab.exec(stopped, "systemctl stop k3s").expect("stop k3s");
    let (ok, out) = kube(&kubeconfig, &["delete", "pdb", "pinned"]);
    assert!(ok, "{out}");
    seen.extend(lines);
    let status = child.wait().expect("k3sctl ends");
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{all}");
    let refusal = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["step"] == "leave-etcd" && v["kind"] == "failed")
        .unwrap_or_else(|| panic!("no failed leave-etcd: {all}"));
    let message = refusal["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{target}: not removing its etcd member"))
            && message.contains("would lose quorum")
            && message.contains(&format!(
                "{stopped}: Ready=True EtcdIsVoter=True (K3s stopped)"
            )),
        "{all}"
    );
    eprintln!(
        "bench: member removal refused {:.1}s after {stopped} stopped mid-run",
        t.elapsed().as_secs_f64()
    );
    let members = lab
        .exec(others[0], &format!("{ETCDCTL} member list"))
        .expect("etcdctl");
    assert_eq!(members.lines().count(), 3, "no member removed: {members}");
    let (ok, out) = kube(&kubeconfig, &["delete", "deployment", "pinned"]);
    assert!(ok, "{out}");
    let (ok, out) = kube(&kubeconfig, &["uncordon", &target]);
    assert!(ok, "{out}");
    let (ok, out) = kube(
        &kubeconfig,
        &["annotate", "node", &target, "k3sctl.io/cordoned-for-"],
    );
    assert!(ok, "{out}");

    // The same with K3s already stopped when it starts: refused at once, nothing changes.
    let refused = k3sctl(&["node", "remove", &target, "--force", "-c", &spec_arg]);
    let refused_text = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{refused_text}");
    assert!(
        refused_text.contains(&format!("not removing server {target}"))
            && refused_text.contains("would lose quorum")
            && refused_text.contains(&format!(
                "{stopped}: Ready=True EtcdIsVoter=True (K3s stopped)"
            )),
        "{refused_text}"
    );
    let (_, cordoned) = kube(
        &kubeconfig,
        &[
            "get",
            "node",
            &target,
            "-o",
            "jsonpath={.spec.unschedulable}",
        ],
    );
    assert_eq!(cordoned.trim(), "", "nothing changed on {target}");
    lab.exec(stopped, "systemctl start k3s").expect("start k3s");
    let deadline = Instant::now() + Duration::from_secs(120);
    while lab
        .exec(stopped, "k3s kubectl get --raw /readyz")
        .map(|o| o.trim() != "ok")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "{stopped} never came back");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_three_voters(&lab, servers[0], servers);

    // --- 4. Reinstalled agent and server, same names. ---
    let wiped_server = others[1];
    for h in [agent, wiped_server] {
        lab.exec(
            h,
            "systemctl stop k3s k3s-agent 2>/dev/null; rm -rf /var/lib/rancher /etc/rancher",
        )
        .unwrap_or_else(|e| panic!("wipe {h}: {e}"));
    }
    let plan = k3sctl(&["plan", "-c", &spec_arg]);
    let plan_text = text(&plan);
    assert!(plan.status.success(), "{plan_text}");
    assert_eq!(
        plan_text
            .matches("delete the stale node-password secret")
            .count(),
        2,
        "{plan_text}"
    );
    assert!(
        plan_text.contains("remove the stale etcd member"),
        "{plan_text}"
    );
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(
        out.status.success(),
        "apply after reinstall:\n{}",
        text(&out)
    );
    for h in [agent, wiped_server] {
        let journal = lab
            .exec(
                h,
                "journalctl -u k3s -u k3s-agent --no-pager -o cat || true",
            )
            .unwrap_or_default();
        assert!(
            !journal.contains("Node password rejected"),
            "{h}: {journal}"
        );
    }
    assert_three_voters(&lab, servers[0], servers);
    assert_all_ready(&kubeconfig, &names);
}
