//! End to end on the lab with the stand-in: changes to a running cluster. A registry mirror
//! change reaches every node and restarts them one at a time although the agents are in
//! different groups; a lock held by someone else stops apply naming the holder until
//! `--force-unlock`; a deleted Node object is repaired by the next apply; a server taint from
//! the spec is enforced on the live Node (K3s sets `node-taint` only at registration) and
//! removed when the spec drops it, while a taint a person set stays. Restarting running nodes
//! asks first: on a terminal `n` changes nothing, and without one apply refuses unless `--yes`.

use std::process::Command;

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/pty.rs"]
mod pty;

use e2e::{build_stand_in, k3sctl, k3sctl_unconfirmed, kubectl, text};
use lab::{Lab, SpecOptions};

/// The lab's spec with each agent in its own group and a docker.io mirror.
fn spec_text(base: &str, mirror: &str) -> String {
    let mut out = String::new();
    let mut group = 0;
    for line in base.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "role: agent" {
            group += 1;
            out.push_str(&format!("    group: g{group}\n"));
        }
    }
    out.push_str(&format!(
        "  registries:\n    mirrors:\n      docker.io:\n        endpoints: [\"{mirror}\"]\n"
    ));
    out
}

/// `spec` with `taints` added to the server host.
fn with_server_taint(spec: &str, taint: &str) -> String {
    let mut out = String::new();
    for line in spec.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "role: server" {
            out.push_str(&format!("    taints: [\"{taint}\"]\n"));
        }
    }
    out
}

/// The node's taints (`key[=value]:Effect`) and k3sctl's ownership annotation.
fn node_taints(kubeconfig: &std::path::Path, node: &str) -> (Vec<String>, String) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "node", node, "-o", "json"])
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("node json");
    let taints = v["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| match t["value"].as_str() {
            Some(value) if !value.is_empty() => {
                format!(
                    "{}={value}:{}",
                    t["key"].as_str().unwrap_or(""),
                    t["effect"].as_str().unwrap_or("")
                )
            }
            _ => format!(
                "{}:{}",
                t["key"].as_str().unwrap_or(""),
                t["effect"].as_str().unwrap_or("")
            ),
        })
        .collect();
    let owned = v["metadata"]["annotations"]["k3sctl.io/taints"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (taints, owned)
}

/// Start time of the unit's main process, in microseconds of the (shared) monotonic clock.
/// (host, step, kind) of each JSON progress line k3sctl wrote on stdout (`-o json`), in order.
fn progress_events(stdout: &[u8]) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let field = |k: &str| v.get(k)?.as_str().map(str::to_string);
            Some((field("host")?, field("step")?, field("kind")?))
        })
        .collect()
}

fn started_us(lab: &Lab, host: &str, unit: &str) -> u64 {
    lab.exec(
        host,
        &format!("systemctl show -p ExecMainStartTimestampMonotonic --value {unit}"),
    )
    .expect("systemctl show")
    .trim()
    .parse()
    .expect("a number")
}

#[test]
fn mirror_change_rolls_one_node_at_a_time_lock_names_its_holder_and_lost_nodes_are_repaired() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let lab = Lab::boot("e2e-changes", 3).expect("lab boots");
    let hosts = lab.hosts();
    let units = ["k3s", "k3s-agent", "k3s-agent"];
    let base_path = lab.dir().join("lab-spec.yaml");
    lab.write_spec(&base_path, &SpecOptions::default())
        .expect("spec written");
    let base = fs_err::read_to_string(&base_path).expect("spec");
    let spec = lab.dir().join("cluster.yaml");
    let spec_arg = spec.to_string_lossy().into_owned();

    fs_err::write(&spec, spec_text(&base, "http://mirror-a.example:5000")).expect("write spec");
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "first apply:\n{}", text(&out));

    fs_err::write(&spec, spec_text(&base, "http://mirror-b.example:5000")).expect("write spec");
    let mirror_on_agent = || {
        lab.exec(&hosts[1].name, "cat /etc/rancher/k3s/registries.yaml")
            .expect("cat")
    };
    // Restarting running nodes needs a confirmation: without a terminal and without --yes,
    // refused with what it would do and the way out; nothing changed.
    let refused = k3sctl_unconfirmed(&["apply", "-c", &spec_arg]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("apply would disturb 3 running node(s)")
            && said.contains(&format!("- {}: restart k3s (", hosts[0].name))
            && said.contains("--yes"),
        "{said}"
    );
    assert!(
        mirror_on_agent().contains("mirror-a"),
        "changed without consent"
    );
    // On a terminal it asks; `n` changes nothing.
    let declined = pty::k3sctl_on_pty(
        &["apply", "-c", &spec_arg],
        "Proceed?",
        "n",
        std::time::Duration::from_secs(120),
    );
    assert_eq!(declined.status.code(), Some(1), "{}", declined.screen);
    assert!(
        declined
            .screen
            .contains("apply will disturb 3 running node(s)")
            && declined.screen.contains("cancelled at the confirmation"),
        "{}",
        declined.screen
    );
    assert!(mirror_on_agent().contains("mirror-a"), "changed after `n`");

    // Someone else's lock: refused with the holder named, nothing changed; --force-unlock goes on.
    lab.exec(
        &hosts[0].name,
        "echo 'alice@laptop pid=4242 since=1700000000' > /var/lib/rancher/k3s/k3sctl.lock",
    )
    .expect("plant lock");
    let refused = k3sctl(&["apply", "-c", &spec_arg]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).contains("alice@laptop pid=4242"),
        "holder not named:\n{}",
        text(&refused)
    );
    let registries = lab
        .exec(&hosts[1].name, "cat /etc/rancher/k3s/registries.yaml")
        .expect("cat");
    assert!(
        registries.contains("mirror-a"),
        "changed despite the lock: {registries}"
    );

    let before: Vec<u64> = hosts
        .iter()
        .zip(units)
        .map(|(h, u)| started_us(&lab, &h.name, u))
        .collect();
    let out = k3sctl(&["-o", "json", "apply", "-c", &spec_arg, "--force-unlock"]);
    assert!(
        out.status.success(),
        "apply --force-unlock:\n{}",
        text(&out)
    );
    let events = progress_events(&out.stdout);
    let after: Vec<u64> = hosts
        .iter()
        .zip(units)
        .map(|(h, u)| started_us(&lab, &h.name, u))
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        assert!(after[i] > before[i], "{} was not restarted", host.name);
        let registries = lab
            .exec(&host.name, "cat /etc/rancher/k3s/registries.yaml")
            .expect("cat");
        assert!(
            registries.contains("http://mirror-b.example:5000"),
            "{}: {registries}",
            host.name
        );
    }
    // One at a time: the server first, and each restart only after every node restarted
    // before it was Ready again (its wait-node-ready done), although the two agents are in
    // different groups (which join side by side). Events come in one ordered stream.
    let mut order: Vec<(u64, &str)> = after
        .iter()
        .copied()
        .zip(hosts.iter().map(|h| h.name.as_str()))
        .collect();
    order.sort();
    assert_eq!(
        order[0].1, hosts[0].name,
        "the server restarts first: {order:?}"
    );
    let mut restarted: Vec<&str> = Vec::new();
    let mut ready: Vec<&str> = Vec::new();
    for (host, step, kind) in &events {
        match (step.as_str(), kind.as_str()) {
            ("restart", "start") => {
                let pending: Vec<&&str> = restarted.iter().filter(|h| !ready.contains(h)).collect();
                assert!(
                    pending.is_empty(),
                    "{host} restarted while {pending:?} was not Ready yet: {events:?}"
                );
                restarted.push(host);
            }
            ("wait-node-ready", "done") => ready.push(host),
            _ => {}
        }
    }
    assert_eq!(restarted.len(), hosts.len(), "restarts: {events:?}");
    let lock = lab
        .exec(
            &hosts[0].name,
            "ls /var/lib/rancher/k3s/k3sctl.lock 2>&1 || true",
        )
        .expect("ls");
    assert!(lock.contains("No such file"), "lock left behind: {lock}");

    // A deleted Node comes back with the next apply; the apply after that has nothing to do.
    let kubeconfig = lab.dir().join("kubeconfig.yaml");
    let deleted = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["delete", "node", &hosts[2].name])
        .output()
        .expect("kubectl runs");
    assert!(deleted.status.success(), "{}", text(&deleted));
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("Node object is missing"),
        "{}",
        text(&plan)
    );
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "repair apply:\n{}", text(&out));
    let nodes = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "node", &hosts[2].name, "--no-headers"])
        .output()
        .expect("kubectl runs");
    assert!(
        text(&nodes).contains(" Ready "),
        "not repaired: {}",
        text(&nodes)
    );
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // Controller taint: enforced on the live Node, recorded as k3sctl's.
    const CP: &str = "node-role.kubernetes.io/control-plane:NoSchedule";
    let server = hosts[0].name.clone();
    let mirror_b = spec_text(&base, "http://mirror-b.example:5000");
    fs_err::write(&spec, with_server_taint(&mirror_b, CP)).expect("write spec");
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "taint apply:\n{}", text(&out));
    let (taints, owned) = node_taints(&kubeconfig, &server);
    assert!(taints.contains(&CP.to_string()), "{taints:?}");
    assert_eq!(owned, CP);
    // K3s does not put it back by itself (registration-only): a person removes it, the plan
    // shows it, apply restores it on the live Node without restarting anything.
    let untaint = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["taint", "node", &server, &format!("{CP}-")])
        .output()
        .expect("kubectl runs");
    assert!(untaint.status.success(), "{}", text(&untaint));
    let person = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["taint", "node", &server, "person=1:PreferNoSchedule"])
        .output()
        .expect("kubectl runs");
    assert!(person.status.success(), "{}", text(&person));
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!("node taints: add {CP}")),
        "{}",
        text(&plan)
    );
    let started = started_us(&lab, &server, "k3s");
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "taint repair:\n{}", text(&out));
    assert_eq!(
        started_us(&lab, &server, "k3s"),
        started,
        "restarted for a taint"
    );
    let (taints, _) = node_taints(&kubeconfig, &server);
    assert!(taints.contains(&CP.to_string()), "{taints:?}");
    // Dropped from the spec: k3sctl's taint goes, the person's stays.
    fs_err::write(&spec, &mirror_b).expect("write spec");
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "untaint apply:\n{}", text(&out));
    let (taints, owned) = node_taints(&kubeconfig, &server);
    assert!(!taints.contains(&CP.to_string()), "{taints:?}");
    assert!(
        taints.contains(&"person=1:PreferNoSchedule".to_string()),
        "{taints:?}"
    );
    assert_eq!(owned, "");
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}
