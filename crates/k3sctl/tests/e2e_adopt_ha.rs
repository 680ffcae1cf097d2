//! End to end on the lab: an HA cluster (3 servers on embedded etcd) laid out as k3s-ansible
//! leaves it, taken over without a restart; then an adoption killed half-way and resumed.
//!
//! The layout, from k3s-ansible's server role and ../shared/notes/ha-lxc-contracts.md §1.1:
//! the first server started the cluster with `cluster-init: true` and its token in config.yaml
//! (the role's config-file form); the second joined with `--server https://<first>:6443` in
//! ExecStart and `K3S_TOKEN` in the env file (its unit-template form); the third with `server:`
//! and `token:` in config.yaml. Each has `--data-dir` and `extra_server_args` in ExecStart, the
//! API endpoint in `tls-san` and `server_config_yaml` in config.yaml. Then:
//! 1. `init --from-ansible` on the k3s-ansible inventory writes the spec; `plan` adopts the three
//!    servers with no restart; `apply` keeps every InvocationID and MainPID; no server is left
//!    with `cluster-init` anywhere (they all have etcd data: rebuilt, each would join through
//!    `server:`; the first server's env file names another server); a second apply has
//!    nothing to do.
//! 2. The playbook runs again (its files back, K3s restarted as it restarts it). An adopting
//!    apply is killed (SIGKILL) while each host's one round trip (record, files,
//!    daemon-reload) is held right after its first file; the hold lifted, the batch stops
//!    there (its caller is gone): every start file is whole (the playbook's or k3sctl's), no
//!    temporary file, nothing restarted; the next apply takes the killed run's lock over,
//!    converges without restarting K3s, and a last apply has nothing to do.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/adopt.rs"]
mod adopt;
#[path = "support/e2e.rs"]
mod e2e;

use adopt::{
    AnsibleCluster, LabSpec, admin_kubeconfig, airgap_dir, ansible_vars, apply_keeps_invocations,
    init_from_ansible, invocations, plan_adopts_without_restart, wait_ready, write_root,
};
use e2e::{build_stand_in, k3sctl, text};
use lab::Lab;
use lab::foreign::{self, k3s_ansible_unit};

const TOKEN: &str = "ha-adopt-secret-51c2";
const UNITS: [&str; 3] = ["k3s", "k3s", "k3s"];
/// k3s-ansible's `extra_server_args` in the inventory and in every server's ExecStart.
const EXTRA_SERVER_ARGS: &str = "--disable traefik --kubelet-arg max-pods=150";
/// k3s-ansible's `server_config_yaml`, copied into every server's config.yaml.
const SERVER_CONFIG_YAML: &str = "write-kubeconfig-mode: \"0600\"\n";
/// The start files of a server.
const START_FILES: [&str; 3] = [
    "/etc/rancher/k3s/config.yaml",
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s.service.env",
];

/// Writes k3s-ansible's HA layout on the three servers (what was there cleared first).
fn lay_out(lab: &Lab, hosts: &[&str], first_ip: &str) {
    let join = format!("https://{first_ip}:6443");
    for (i, host) in hosts.iter().enumerate() {
        foreign::clear_start_files(lab, host).expect("clear");
        let mut args = vec!["--data-dir /var/lib/rancher/k3s"];
        let mut config = format!("tls-san:\n  - {first_ip}\n{SERVER_CONFIG_YAML}");
        let mut env = String::new();
        let server_flag = format!("--server {join}");
        let tls_san = format!("--tls-san {first_ip}");
        match i {
            0 => config.push_str(&format!("cluster-init: true\ntoken: {TOKEN}\n")),
            1 => {
                args.push(&server_flag);
                args.push(&tls_san);
                config = SERVER_CONFIG_YAML.to_owned();
                env = format!("K3S_TOKEN={TOKEN}\n");
            }
            _ => config.push_str(&format!("server: {join}\ntoken: {TOKEN}\n")),
        }
        args.push(EXTRA_SERVER_ARGS);
        write_root(
            lab,
            host,
            "/etc/systemd/system/k3s.service",
            k3s_ansible_unit("server", &args),
            0o644,
        );
        write_root(
            lab,
            host,
            "/etc/systemd/system/k3s.service.env",
            &env,
            0o600,
        );
        write_root(lab, host, "/etc/rancher/k3s/config.yaml", &config, 0o644);
    }
}

/// A k3s-ansible inventory (YAML, its `server` group, hosts named with `ansible_host`) reached
/// through the lab's ssh config and known_hosts.
fn inventory(lab: &Lab, hosts: &[&str], addresses: &[String], airgap: &Path) -> String {
    let servers: String = hosts
        .iter()
        .zip(addresses)
        .map(|(h, a)| format!("        {h}:\n          ansible_host: {a}\n"))
        .collect();
    let vars = ansible_vars(
        lab,
        &lab.ssh_config(),
        &AnsibleCluster {
            version: lab::DEFAULT_K3S_VERSION,
            token: TOKEN,
            api: &addresses[0],
            airgap,
        },
    );
    format!(
        "k3s_cluster:\n  children:\n    server:\n      hosts:\n{servers}{vars}\
         \x20   extra_server_args: \"{EXTRA_SERVER_ARGS}\"\n\
         \x20   server_config_yaml: |\n\
         \x20     {SERVER_CONFIG_YAML}"
    )
}

/// sha256 of each start file on each host (`-` when missing).
fn start_shas(lab: &Lab, hosts: &[&str]) -> Vec<BTreeMap<String, String>> {
    hosts
        .iter()
        .map(|h| {
            START_FILES
                .iter()
                .map(|path| {
                    let sha = lab
                        .exec(h, &format!("sha256sum {path} 2>/dev/null | cut -d' ' -f1"))
                        .expect("sha256sum");
                    let sha = sha.trim();
                    let sha = if sha.is_empty() { "-" } else { sha };
                    ((*path).to_owned(), sha.to_owned())
                })
                .collect()
        })
        .collect()
}

/// No server has `cluster-init` in a file K3s starts from, and the first server's env file
/// joins through another server.
fn no_cluster_init(lab: &Lab, hosts: &[&str], second_ip: &str) {
    for h in hosts {
        let found = lab
            .exec(
                h,
                "grep -il -e cluster-init -e K3S_CLUSTER_INIT /etc/rancher/k3s/config.yaml \
                 /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env || true",
            )
            .expect("grep");
        assert_eq!(found.trim(), "", "{h} still starts with cluster-init");
    }
    let env = lab
        .exec(hosts[0], "cat /etc/systemd/system/k3s.service.env")
        .expect("env file");
    assert!(
        env.contains(&format!("K3S_URL=\"https://{second_ip}:6443\"")),
        "{env}"
    );
}

/// A stand-in for `mv`, first on root's PATH, that stops right after renaming a file k3sctl
/// wrote (`*.k3sctl-tmp.*`) while /run/k3sctl-test-hold exists: it says so in
/// /run/k3sctl-test-held and waits until the hold is lifted. It holds each host's batch of
/// script steps right after its first file.
const HOLDING_MV: &str = r#"#!/bin/sh
/bin/mv "$@" || exit $?
case "$*" in
  *.k3sctl-tmp.*)
    if [ -e /run/k3sctl-test-hold ]; then
      touch /run/k3sctl-test-held
      while [ -e /run/k3sctl-test-hold ]; do sleep 0.05; done
    fi;;
esac
"#;

/// `apply -o json`, killed (SIGKILL) while every host's batch of script steps is held right
/// after its first file (see [`HOLDING_MV`]); then the hold is lifted. The batch, whose
/// caller is gone, must stop there. Returns the killed process's id and the events it printed.
fn apply_killed_after_first_write(
    lab: &Lab,
    hosts: &[&str],
    spec_arg: &str,
) -> (u32, Vec<serde_json::Value>) {
    for h in hosts {
        write_root(lab, h, "/usr/local/bin/mv", HOLDING_MV, 0o755);
        lab.exec(
            h,
            "rm -f /run/k3sctl-test-held; touch /run/k3sctl-test-hold",
        )
        .expect("hold");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env("K3SCTL_YES", "1")
        .args(["-o", "json", "apply", "-c", spec_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("k3sctl runs");
    let pid = child.id();
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let events = std::thread::spawn(move || {
        reader
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + std::time::Duration::from_secs(90);
    let held = |h: &str| {
        lab.exec(h, "test -e /run/k3sctl-test-held && echo held || true")
            .is_ok_and(|out| out.trim() == "held")
    };
    while !hosts.iter().all(|h| held(h)) {
        assert!(
            Instant::now() < deadline,
            "not every host's batch reached its first file"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the apply ended before its writes were held"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().expect("SIGKILL k3sctl");
    let _ = child.wait();
    let events = events.join().expect("events");
    // Let the ssh masters close the killed run's sessions, then lift the hold.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for h in hosts {
        lab.exec(h, "rm -f /run/k3sctl-test-hold")
            .expect("lift the hold");
    }
    // The batches end (their next result line has no reader): none is left running.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    for h in hosts {
        loop {
            let running = lab
                .exec(h, "pgrep -f 'k3sctl_no[w]' || true")
                .expect("pgrep");
            if running.trim().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{h}: the killed run's batch still runs: {running}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        lab.exec(h, "rm -f /usr/local/bin/mv /run/k3sctl-test-held")
            .expect("remove the holding mv");
    }
    (pid, events)
}

#[test]
fn adopts_k3s_ansibles_ha_cluster_without_restarts_also_when_interrupted() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let began = Instant::now();
    let lab = Lab::boot("e2e-adopt-ha", 3).expect("lab boots");
    let lab_spec = LabSpec::of(&lab);
    let all = lab.hosts();
    let hosts: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
    let addresses: Vec<String> = all.iter().map(|h| h.address.to_string()).collect();

    // The cluster as k3s-ansible builds it: the first server, then the others one by one.
    let k3s = lab_spec.k3s();
    for h in &hosts {
        write_root(&lab, h, "/usr/local/bin/k3s", &k3s, 0o755);
    }
    lay_out(&lab, &hosts, &addresses[0]);
    foreign::start(&lab, &hosts, &["server"; 3], false).expect("start K3s");
    let kubeconfig = admin_kubeconfig(&lab, hosts[0], &addresses[0], 3);
    eprintln!(
        "[layout] 3 servers up at {:.1} s",
        began.elapsed().as_secs_f64()
    );

    // --- 1. init --from-ansible, plan, apply: nothing restarts. ---
    let airgap = airgap_dir(&lab, Path::new(&lab_spec.binary));
    let (spec_arg, written) = init_from_ansible(
        &lab,
        &inventory(&lab, &hosts, &addresses, &airgap),
        "cluster.yaml",
        TOKEN,
    );
    let parsed: serde_json::Value = serde_saphyr::from_str(&written).expect("spec yaml");
    for (i, h) in hosts.iter().enumerate() {
        let host = &parsed["spec"]["hosts"][i];
        assert_eq!(host["name"], *h, "{written}");
        assert_eq!(host["role"], "server", "{written}");
    }
    assert!(!written.contains("cluster-init"), "{written}");

    let before = invocations(&lab, &hosts, &UNITS);
    let plan = plan_adopts_without_restart(&spec_arg, 3);
    // The first server's config.yaml loses `cluster-init` (and its env file gets the joining
    // form, checked on the host below): no restart, since K3s ignores both with etcd data.
    let first =
        &plan[plan.find(hosts[0]).expect("first server")..plan.find(hosts[1]).expect("second")];
    assert!(first.contains(adopt::ADOPT_LINE), "{plan}");
    assert!(first.contains("-cluster-init: true"), "{plan}");
    assert!(!plan.contains("+cluster-init"), "{plan}");
    apply_keeps_invocations(
        &lab,
        &hosts,
        &UNITS,
        &before,
        &["apply", "-c", &spec_arg],
        "[1] adopting apply (3 HA servers)",
    );
    no_cluster_init(&lab, &hosts, &addresses[1]);
    let adopted = start_shas(&lab, &hosts);
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(text(&out).contains("Nothing to do"), "{}", text(&out));
    assert_eq!(invocations(&lab, &hosts, &UNITS), before);
    eprintln!("[1] done at {:.1} s", began.elapsed().as_secs_f64());

    // --- 2. The playbook again, then an adopting apply killed after its first write. ---
    lay_out(&lab, &hosts, &addresses[0]);
    foreign::start(&lab, &hosts, &["server"; 3], true).expect("restart K3s");
    wait_ready(&kubeconfig, 3);
    let playbook = start_shas(&lab, &hosts);
    let before = invocations(&lab, &hosts, &UNITS);
    assert_ne!(playbook, adopted);
    let (pid, events) = apply_killed_after_first_write(&lab, &hosts, &spec_arg);
    let lock = lab
        .exec(hosts[0], "cat /var/lib/rancher/k3s/k3sctl.lock")
        .expect("the killed run's lock is still there");
    assert!(lock.contains(&format!("pid={pid} ")), "{lock}");
    let midway = start_shas(&lab, &hosts);
    let mut written = 0;
    let mut left = 0;
    for (i, h) in hosts.iter().enumerate() {
        for path in START_FILES {
            let now = &midway[i][path];
            assert!(
                *now == playbook[i][path] || *now == adopted[i][path],
                "{h}:{path} is neither the playbook's nor k3sctl's (sha {now}): \
                 half-written\n{events:?}"
            );
            if playbook[i][path] != adopted[i][path] {
                if *now == adopted[i][path] {
                    written += 1;
                } else {
                    left += 1;
                }
            }
        }
        let stray = lab
            .exec(
                h,
                "find /etc/rancher/k3s /etc/systemd/system -name '*.k3sctl-tmp.*' 2>/dev/null",
            )
            .expect("find");
        assert_eq!(stray.trim(), "", "{h}: a temporary file left");
    }
    eprintln!("[2] killed after the first write: {written} file(s) written, {left} left");
    assert!(
        written > 0 && left > 0,
        "not interrupted half-way: {events:?}"
    );
    assert_eq!(
        invocations(&lab, &hosts, &UNITS),
        before,
        "the killed run restarted K3s"
    );

    let plan = k3sctl(&["plan", "-c", &spec_arg]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(!text(&plan).contains("> restart"), "{}", text(&plan));
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    let said = text(&out);
    assert!(out.status.success(), "apply after the killed one:\n{said}");
    let notice = said
        .lines()
        .find(|l| l.contains("taking over the lock of an interrupted run"))
        .unwrap_or_else(|| panic!("no takeover notice:\n{said}"));
    assert!(notice.contains(&format!("pid={pid} ")), "{notice}");
    assert_eq!(
        invocations(&lab, &hosts, &UNITS),
        before,
        "K3s restarted:\n{said}"
    );
    assert_eq!(start_shas(&lab, &hosts), adopted, "{said}");
    no_cluster_init(&lab, &hosts, &addresses[1]);
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(text(&out).contains("Nothing to do"), "{}", text(&out));
    assert_eq!(invocations(&lab, &hosts, &UNITS), before);
    eprintln!("[2] done at {:.1} s", began.elapsed().as_secs_f64());
}
