//! End to end on the lab's Proxmox stand-in (`--proxmox --servers 3 --hosts 5`): a node host
//! `<lab>-pve` whose five LXC containers (no sshd) are reached only with `pct exec` there, and
//! `examples/proxmox.yaml` run on them as it is (only the homelab's addresses swapped for the
//! lab's). In the order a user meets them, on one cluster:
//! - the stand-in keeps pct's contract and the pct transport passes the transport suite;
//! - apply installs 3 servers on embedded etcd and 2 agents, with the controller taints; a
//!   second apply changes nothing;
//! - a stopped container is reported (autostart off) or started and joined;
//! - a container missing /dev/kmsg and the AppArmor line is refused with the lines to add, and
//!   `--fix-lxc` fixes it (lines before the snapshot section, backup kept, node drained first);
//! - `check` and `etcd snapshot save|list` over pct;
//! - `upgrade` over pct: servers one at a time then agents, drained with eviction disabled past
//!   a PodDisruptionBudget that blocks eviction (the example's Vault case); kubectl 1.20 sees
//!   every node Ready at the new version;
//! - the seeds' inventory shape (`pct_id`, `node_name`) pointing at the same containers:
//!   `init --from-ansible` gives a spec that apply runs on the running cluster, then a no-op.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "e2e_pct/cluster_view.rs"]
mod cluster_view;
#[path = "e2e_pct/contract.rs"]
mod contract;
#[path = "support/e2e.rs"]
mod e2e;
#[path = "e2e_pct/example_spec.rs"]
mod example_spec;
#[path = "e2e_pct/import.rs"]
mod import;
#[path = "support/transport_suite.rs"]
mod transport_suite;

use cluster_view::{all_ready, has_label, kubectl_ok, pod_nodes, taints, unschedulable, version};
use e2e::{build_stand_in, k3sctl, stamped_stand_in, text};
use example_spec::{Node, example_spec};
use k3sctl::host::{APPARMOR_LINE, KMSG_LINE};
use lab::{Lab, LabOptions};

const FROM: &str = "v1.33.5+k3s1";
const TO: &str = "v1.34.1+k3s1";
const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane=true:NoSchedule";

/// A single-replica workload whose PodDisruptionBudget never allows an eviction (the example's
/// Vault pods): only `disableEviction` lets a drain move it.
const VAULT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: vault, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault}}
  template:
    metadata: {labels: {app: vault}}
    spec:
      containers: [{name: vault, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: vault, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: vault}}
"#;

/// Builds `k3sctl-lab` (the stand-in's `pct` and agent) next to the test binaries.
fn build_lab_binary() {
    let exe = std::env::current_exe().expect("test binary path");
    if exe
        .ancestors()
        .skip(1)
        .take(2)
        .any(|dir| dir.join("k3sctl-lab").is_file())
    {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "lab", "--bin", "k3sctl-lab"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p lab failed");
}

fn started_at(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(
        host,
        &format!("systemctl show -p ExecMainStartTimestampMonotonic --value {unit}"),
    )
    .expect("systemctl show")
    .trim()
    .to_owned()
}

/// The spec with `extra` added under container `vmid`'s `pct:` entry (a flow mapping).
fn with_pct_setting(spec: &str, vmid: u32, extra: &str) -> String {
    let from = format!("vmid: {vmid}}}");
    assert_eq!(spec.matches(&from).count(), 1, "{spec}");
    spec.replacen(&from, &format!("vmid: {vmid}, {extra}}}"), 1)
}

fn run(args: &[&str]) -> (bool, String) {
    let t = Instant::now();
    let out = k3sctl(args);
    let said = text(&out);
    eprintln!("$ k3sctl {} ({:?})\n{said}", args.join(" "), t.elapsed());
    (out.status.success(), said)
}

#[test]
fn proxmox_example_runs_through_pct() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    build_lab_binary();
    let mut opts = LabOptions::new("e2e-pct", 5);
    opts.proxmox = true;
    let lab = Lab::up(&opts).expect("lab boots");
    let dir = lab.dir().to_path_buf();
    let kubeconfig = dir.join("kubeconfig.yaml");
    let from_binary = stamped_stand_in(&dir, FROM);
    let (spec_text, nodes) = example_spec(&lab, &from_binary, FROM, &kubeconfig);
    let spec = dir.join("cluster.yaml");
    fs_err::write(&spec, &spec_text).expect("spec");
    let spec_arg = spec.to_string_lossy().into_owned();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let (servers, agents) = nodes.split_at(3);
    let (first, last_agent) = (&servers[0], &agents[1]);

    // Containers run no sshd: only pct reaches them; pct keeps Proxmox's contract.
    let port22 = std::net::TcpStream::connect((first.address.as_str(), 22));
    assert!(port22.is_err(), "a container answers on port 22");
    contract::pct_keeps_its_contract(&lab, first.vmid);
    let (direct, through_pct) = contract::transport_over_pct(&lab, &first.host, first.vmid);
    println!("bench: one command over ssh {direct:?}, through pct exec {through_pct:?}");

    // Apply: 3 servers on embedded etcd, 2 agents, the controllers tainted.
    let t = Instant::now();
    let (ok, said) = run(&["apply", "-c", &spec_arg]);
    println!(
        "bench: first apply of 5 containers through pct took {:?}",
        t.elapsed()
    );
    assert!(ok, "first apply failed:\n{said}");
    all_ready(&kubeconfig, &names);
    for server in servers {
        assert_eq!(taints(&kubeconfig, &server.name), [CONTROL_PLANE_TAINT]);
        assert!(
            has_label(
                &kubeconfig,
                &server.name,
                "node-role.kubernetes.io/etcd",
                "true"
            ),
            "{} is no etcd member",
            server.name
        );
    }
    for agent in agents {
        assert!(taints(&kubeconfig, &agent.name).is_empty());
    }

    // A second apply changes nothing.
    let before: Vec<String> = nodes
        .iter()
        .map(|n| {
            started_at(
                &lab,
                &n.host,
                if n.name.starts_with("k3sc") {
                    "k3s"
                } else {
                    "k3s-agent"
                },
            )
        })
        .collect();
    let t = Instant::now();
    let (ok, said) = run(&["apply", "-c", &spec_arg]);
    println!(
        "bench: no-op apply of 5 containers through pct took {:?}",
        t.elapsed()
    );
    assert!(ok, "second apply failed:\n{said}");
    assert!(said.contains("nothing to do"), "{said}");
    let after: Vec<String> = nodes
        .iter()
        .map(|n| {
            started_at(
                &lab,
                &n.host,
                if n.name.starts_with("k3sc") {
                    "k3s"
                } else {
                    "k3s-agent"
                },
            )
        })
        .collect();
    assert_eq!(before, after, "K3s restarted somewhere");

    stopped_container(&lab, &spec_text, &spec_arg, last_agent, &kubeconfig, &names);
    lxc_settings_fixed(&lab, &spec_arg, last_agent, first, &kubeconfig, &names);
    day_two_over_pct(&lab, &spec_arg, servers);
    let to_binary = upgrade_over_pct(&lab, &spec_arg, &nodes, &kubeconfig);
    imported_inventory_applies(&lab, &nodes, &kubeconfig, &to_binary);
}

/// A stopped container with autostart off is reported and nothing changes anywhere; with
/// autostart (the default) it is started and joins again.
fn stopped_container(
    lab: &Lab,
    spec_text: &str,
    spec_arg: &str,
    agent: &Node,
    kubeconfig: &Path,
    names: &[&str],
) {
    let node = &lab.proxmox().expect("proxmox").node;
    lab.exec(node, &format!("pct stop {}", agent.vmid))
        .expect("pct stop");
    let no_autostart = lab.dir().join("no-autostart.yaml");
    fs_err::write(
        &no_autostart,
        with_pct_setting(spec_text, agent.vmid, "autostart: false"),
    )
    .expect("spec");
    let (ok, said) = run(&["apply", "-c", &no_autostart.to_string_lossy()]);
    assert!(!ok, "apply went on:\n{said}");
    assert!(
        said.contains(&format!(
            "{}: container {} on {node} is not running",
            agent.name, agent.vmid
        )),
        "{said}"
    );
    assert_eq!(
        lab.exec(node, &format!("pct status {}", agent.vmid))
            .expect("status")
            .trim(),
        "status: stopped"
    );

    let (ok, said) = run(&["apply", "-c", spec_arg]);
    assert!(ok, "apply failed:\n{said}");
    assert!(
        said.contains(&format!("container {} on", agent.vmid))
            && said.contains("was stopped; started it"),
        "{said}"
    );
    all_ready(kubeconfig, names);
}

/// A container without /dev/kmsg and the AppArmor line (and a snapshot section in its .conf) is
/// refused with the exact lines; `--fix-lxc` drains it, writes them before the section, keeps a
/// backup, and it is Ready again.
fn lxc_settings_fixed(
    lab: &Lab,
    spec_arg: &str,
    agent: &Node,
    server: &Node,
    kubeconfig: &Path,
    names: &[&str],
) {
    let node = &lab.proxmox().expect("proxmox").node;
    let conf = format!("/etc/pve/lxc/{}.conf", agent.vmid);
    lab.exec(
        node,
        &format!(
            "sed -i -e '/kmsg/d' -e '/apparmor/d' {conf} && printf '\\n[before-k3s]\\narch: amd64\\nlxc.apparmor.profile: generated\\nsnaptime: 1700000000\\n' >> {conf} && pct reboot {}",
            agent.vmid
        ),
    )
    .expect("break the container's settings");
    assert_eq!(
        lab.exec(&agent.host, "test -e /dev/kmsg || echo missing")
            .expect("kmsg check")
            .trim(),
        "missing"
    );
    let (ok, said) = run(&["apply", "-c", spec_arg]);
    assert!(!ok, "apply went on:\n{said}");
    assert!(said.contains(&format!("add to {conf}")), "{said}");
    assert!(said.contains(APPARMOR_LINE), "{said}");
    assert!(said.contains(KMSG_LINE), "{said}");
    assert!(!said.contains(&format!("{}.conf", server.vmid)), "{said}");

    let (ok, said) = run(&["--yes", "apply", "-c", spec_arg, "--fix-lxc"]);
    assert!(ok, "apply --fix-lxc failed:\n{said}");
    assert!(said.contains("cordoned and drained"), "{said}");
    let after = lab.exec(node, &format!("cat {conf}")).expect("conf");
    let section = after.find("[before-k3s]").expect("snapshot section kept");
    let line = after.find(APPARMOR_LINE).expect("apparmor line written");
    assert!(line < section, "line written into the snapshot:\n{after}");
    assert!(
        after[section..].contains("lxc.apparmor.profile: generated"),
        "{after}"
    );
    let backups = lab
        .exec(node, "ls /root/k3sctl-lxc-backup/")
        .expect("backup");
    assert!(
        backups.contains(&format!("{}.conf.", agent.vmid)),
        "{backups}"
    );
    assert_eq!(
        lab.exec(
            &agent.host,
            "test -e /dev/kmsg && systemctl is-enabled conf-kmsg.service"
        )
        .expect("kmsg after the fix")
        .trim(),
        "enabled"
    );
    all_ready(kubeconfig, names);
    assert!(unschedulable(kubeconfig).is_empty(), "left cordoned");
    let (ok, said) = run(&["apply", "-c", spec_arg]);
    assert!(ok, "apply after the fix:\n{said}");
}

/// `upgrade` over pct with the example's settings: servers first, one at a time, then agents
/// drained with eviction disabled past the Vault-like budget; every node Ready at the target.
fn upgrade_over_pct(lab: &Lab, spec_arg: &str, nodes: &[Node], kubeconfig: &Path) -> PathBuf {
    let vault = lab.dir().join("vault.yaml");
    fs_err::write(&vault, VAULT).expect("vault manifest");
    kubectl_ok(kubeconfig, &["apply", "-f", &vault.to_string_lossy()]);
    let start = Instant::now();
    let vault_on = loop {
        let on = pod_nodes(kubeconfig, "vault");
        if let Some(node) = on.first() {
            break node.clone();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "vault pod never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(
        vault_on.starts_with("k3sw"),
        "a tainted controller runs the workload: {vault_on}"
    );

    let to_binary = stamped_stand_in(lab.dir(), TO);
    let t = Instant::now();
    let out = k3sctl(&[
        "--yes",
        "upgrade",
        "-c",
        spec_arg,
        "--binary",
        &to_binary.to_string_lossy(),
        "-o",
        "json",
    ]);
    println!(
        "bench: upgrade of 5 containers through pct took {:?}",
        t.elapsed()
    );
    let said = text(&out);
    eprintln!("$ k3sctl upgrade\n{said}");
    assert!(out.status.success(), "upgrade failed:\n{said}");
    assert!(said.contains("bypasses"), "{said}");
    let report: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l.get("nodes").is_some())
        .expect("final JSON report");
    let order: Vec<&str> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order[..3], names[..3], "servers first, in order");
    let mut agents_order = order[3..].to_vec();
    agents_order.sort_unstable();
    assert_eq!(agents_order, names[3..], "{order:?}");

    all_ready(kubeconfig, &names);
    for node in nodes {
        assert_eq!(version(kubeconfig, &node.name), TO, "{}", node.name);
    }
    assert!(unschedulable(kubeconfig).is_empty(), "left cordoned");
    let start = Instant::now();
    loop {
        let on = pod_nodes(kubeconfig, "vault");
        if on.len() == 1 && on[0].starts_with("k3sw") {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "vault not running on an agent after the upgrade: {on:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (ok, said) = run(&[
        "--yes",
        "upgrade",
        "-c",
        spec_arg,
        "--binary",
        &to_binary.to_string_lossy(),
    ]);
    assert!(ok && said.contains("nothing to do"), "{said}");
    to_binary
}

/// The day-two commands over pct: `check` finds the cluster healthy (etcd's 3 members, nodes,
/// pods, certificates); an etcd snapshot is saved by K3s in a server container and listed.
fn day_two_over_pct(lab: &Lab, spec_arg: &str, servers: &[Node]) {
    let (ok, said) = run(&["check", "-c", spec_arg, "--wait", "60s"]);
    assert!(ok, "check failed:\n{said}");
    let out = k3sctl(&["-o", "json", "etcd", "snapshot", "save", "-c", spec_arg]);
    assert!(out.status.success(), "snapshot save:\n{}", text(&out));
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let on = servers
        .iter()
        .find(|s| saved["node"] == s.name.as_str())
        .unwrap_or_else(|| panic!("saved on no server: {saved}"));
    let name = saved["name"].as_str().expect("snapshot name");
    let path = saved["location"]
        .as_str()
        .and_then(|l| l.strip_prefix("file://"))
        .unwrap_or_else(|| panic!("no file location: {saved}"));
    lab.exec(&on.host, &format!("test -s {path}"))
        .expect("the snapshot file is in the server's container");
    let (ok, said) = run(&["etcd", "snapshot", "list", "-c", spec_arg]);
    assert!(ok && said.contains(name), "snapshot list:\n{said}");
}

/// The seeds' inventory shape, pointing at the lab: `init --from-ansible` then `apply` as is
/// (see `e2e_pct/import.rs` for the two values the import does not carry yet).
fn imported_inventory_applies(lab: &Lab, nodes: &[Node], kubeconfig: &Path, binary: &Path) {
    let airgap = lab.dir().join("airgap");
    fs_err::create_dir_all(&airgap).expect("airgap dir");
    fs_err::copy(binary, airgap.join("k3s")).expect("airgap binary");
    import::names_resolve(lab, nodes);
    let inventory = lab.dir().join("inventory.ini");
    fs_err::write(&inventory, import::inventory(lab, nodes, TO, &airgap)).expect("inventory");
    let imported = lab.dir().join("imported.yaml");
    let imported_arg = imported.to_string_lossy().into_owned();
    let (ok, said) = run(&[
        "-c",
        &imported_arg,
        "init",
        "--from-ansible",
        &inventory.to_string_lossy(),
        "--name",
        "homelab",
    ]);
    assert!(ok, "init --from-ansible failed:\n{said}");
    let text = fs_err::read_to_string(&imported).expect("imported spec");
    let px = lab.proxmox().expect("proxmox stand-in");
    assert!(text.contains(&format!("- name: {}\n", px.node)), "{text}");
    for node in nodes {
        let entry = format!(
            "- name: {n}\n    address: {n}\n    role: {role}\n    pct:\n      proxmoxHost: {px}\n      vmid: {vmid}\n",
            n = node.name,
            role = if node.name.starts_with("k3sc") {
                "server"
            } else {
                "agent"
            },
            px = px.node,
            vmid = node.vmid,
        );
        assert!(text.contains(&entry), "no {entry} in:\n{text}");
    }
    // Applied as imported: the known_hosts file (ansible_ssh_common_args) and the binary
    // (airgap_dir) come from the inventory itself.
    let known_hosts = format!("knownHostsFile: {}", lab.known_hosts().display());
    let binary = format!("file: {}", airgap.join("k3s").display());
    assert!(
        text.contains(&known_hosts) && text.contains(&binary),
        "the import did not carry ansible_ssh_common_args / airgap_dir:\n{text}"
    );
    fs_err::write(&imported, &text).expect("spec");

    let (ok, said) = run(&["--yes", "apply", "-c", &imported_arg]);
    assert!(ok, "apply of the imported spec failed:\n{said}");
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    all_ready(kubeconfig, &names);
    for node in nodes {
        assert_eq!(version(kubeconfig, &node.name), TO, "{}", node.name);
        let config = lab
            .exec(&node.host, "cat /etc/rancher/k3s/config.yaml")
            .expect("config.yaml");
        assert!(!config.contains("node-ip"), "{}: {config}", node.name);
    }
    let (ok, said) = run(&["apply", "-c", &imported_arg]);
    assert!(ok && said.contains("nothing to do"), "{said}");
}
