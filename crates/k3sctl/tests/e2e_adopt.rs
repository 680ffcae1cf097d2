//! End to end on the lab: adopting a cluster another tool installed, without restarting it.
//! The hosts are set up the way the official install script lays K3s out
//! (../shared/notes/k3s-contracts.md): its unit with flags in ExecStart, its env file with
//! K3S_TOKEN/K3S_URL, and config.yaml written as an Ansible role writes it, flags split
//! between the unit and config.yaml. Then: `init --from-hosts` writes the spec; `plan` shows
//! no restart; `apply` takes the files over with every K3s PID unchanged; the next plan has
//! nothing to do; a registry mirror added restarts one node at a time; `upgrade` works. One
//! agent also has a unit drop-in (`k3s-agent.service.d/*.conf`) with a setting, the other a
//! drop-in in /run's `k3s-.service.d/` that replaces ExecStart: it is taken over (moved aside,
//! kept) without a restart and no flag is given twice. Then
//! the same cluster laid out as k3s-ansible leaves it is taken over again from a k3s-ansible
//! inventory (`e2e_adopt/ansible.rs`), again without a restart.

use std::time::Instant;

#[path = "support/adopt.rs"]
mod adopt;
#[path = "e2e_adopt/ansible.rs"]
mod ansible;
#[path = "support/e2e.rs"]
mod e2e;

use adopt::{LabSpec, admin_kubeconfig, plan_adopts_without_restart, wait_ready, write_root};
use e2e::{build_stand_in, k3sctl, kube, stamped_stand_in, text};
use lab::Lab;
use lab::foreign::{self, InstallScript};

const TOKEN: &str = "adopt-secret-7f3a";
/// Where the third host's drop-in replacing ExecStart is: /run, in the prefix directory
/// systemd applies to `k3s-agent.service`.
const EXEC_DROPIN_DIR: &str = "/run/systemd/system/k3s-.service.d";

fn main_pid(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(host, &format!("systemctl show -p MainPID --value {unit}"))
        .expect("systemctl show")
        .trim()
        .to_owned()
}

#[test]
fn adopts_an_installer_cluster_without_restarts_then_changes_and_upgrades_it() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let lab = Lab::boot("e2e-adopt", 3).expect("lab boots");
    let hosts = lab.hosts();
    let dir = lab.dir().to_path_buf();
    let lab_spec = LabSpec::of(&lab);
    let (lab_yaml, binary) = (&lab_spec.yaml, &lab_spec.binary);
    let address = |i: usize| {
        lab_yaml["spec"]["hosts"][i]["address"]
            .as_str()
            .expect("address")
            .to_owned()
    };
    let server_ip = address(0);

    // The install script's layout, the flags split between the unit and config.yaml.
    let k3s = lab_spec.k3s();
    let units = ["k3s", "k3s-agent", "k3s-agent"];
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    InstallScript {
        token: TOKEN,
        server_ip: &server_ip,
    }
    .lay_out(&lab, &names, Some(&k3s))
    .expect("install script layout");
    // A unit drop-in on the first agent giving K3s a setting as an env variable.
    write_root(
        &lab,
        names[1],
        "/etc/systemd/system/k3s-agent.service.d/10-resolv.conf",
        b"[Service]\nEnvironment=K3S_RESOLV_CONF=/etc/resolv.conf\n",
        0o644,
    );
    // On the second agent, a drop-in that replaces ExecStart where systemd also looks: in /run,
    // in the prefix directory that applies to every k3s-*.service (written inside the
    // container: its /run is its own tmpfs).
    lab.exec(
        names[2],
        &format!(
            "mkdir -p {EXEC_DROPIN_DIR} && printf '%s\\n' '[Service]' 'ExecStart=' \
             'ExecStart=/usr/local/bin/k3s agent --node-label zone=z2 --kubelet-arg max-pods=120' \
             > {EXEC_DROPIN_DIR}/50-exec.conf"
        ),
    )
    .expect("drop-in");
    foreign::start(&lab, &names, &["server", "agent", "agent"], false).expect("start K3s");
    let dropin_paths = lab
        .exec(names[2], "systemctl show -p DropInPaths --value k3s-agent")
        .expect("systemctl show");
    assert!(
        dropin_paths.contains(&format!("{EXEC_DROPIN_DIR}/50-exec.conf")),
        "systemd does not apply the drop-in: {dropin_paths}"
    );
    let kubeconfig = admin_kubeconfig(&lab, &hosts[0].name, &server_ip, 3);

    // A skeleton: hosts and ssh settings (and, on the lab, where the stand-in binary is).
    let skeleton = dir.join("skeleton.yaml");
    let mut sk = format!(
        "kind: Cluster\nmetadata: {{name: adopted}}\nspec:\n  hostDefaults:\n    ssh: {}\n  hosts:\n",
        serde_json::to_string(&lab_yaml["spec"]["hostDefaults"]["ssh"]).expect("json")
    );
    for i in 0..hosts.len() {
        sk.push_str(&format!("    - address: \"{}\"\n", address(i)));
    }
    sk.push_str(&format!("  k3s:\n    binary: {{file: \"{binary}\"}}\n"));
    fs_err::write(&skeleton, sk).expect("skeleton");

    let spec = dir.join("cluster.yaml");
    let spec_arg = spec.to_string_lossy().into_owned();
    let started = Instant::now();
    let out = k3sctl(&[
        "init",
        "-c",
        &spec_arg,
        "--from-hosts",
        &skeleton.to_string_lossy(),
    ]);
    assert!(out.status.success(), "init --from-hosts:\n{}", text(&out));
    eprintln!(
        "init --from-hosts: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let written = fs_err::read_to_string(&spec).expect("spec");
    eprintln!("{written}");
    assert!(!written.contains(TOKEN) && !text(&out).contains(TOKEN));
    for want in [
        "# from",
        "disable:",
        "- traefik",
        "max-pods=150",
        "max-pods=110",
        "zone: z1",
        "role: agent",
        // From the unit drop-in of the first agent.
        "resolv-conf: /etc/resolv.conf",
        // From the drop-in replacing the second agent's ExecStart.
        "zone: z2",
        "max-pods=120",
        "replaces the unit's ExecStart",
    ] {
        assert!(written.contains(want), "{want} missing:\n{written}");
    }

    let pids = |lab: &Lab| -> Vec<String> {
        hosts
            .iter()
            .zip(units)
            .map(|(h, u)| main_pid(lab, &h.name, u))
            .collect()
    };
    let before = pids(&lab);
    let invocation = adopt::invocations(&lab, &[names[2]], &["k3s-agent"]);
    let shown = plan_adopts_without_restart(&spec_arg, hosts.len());
    assert!(
        shown.contains(&format!(
            "take over {EXEC_DROPIN_DIR}/50-exec.conf: its ExecStart override gives way"
        )) && shown.contains("moved aside, the original kept as"),
        "{shown}"
    );

    let started = Instant::now();
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "adopting apply:\n{}", text(&out));
    eprintln!("adopting apply: {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(pids(&lab), before, "K3s restarted:\n{}", text(&out));
    let unit = lab
        .exec(&hosts[1].name, "cat /etc/systemd/system/k3s-agent.service")
        .expect("cat");
    assert!(unit.starts_with("# Managed by k3sctl"), "{unit}");
    // The drop-in replacing ExecStart was taken over: moved aside (kept), K3s not restarted
    // (same invocation), k3sctl's unit gives the command and config.yaml each flag once.
    assert_eq!(
        adopt::invocations(&lab, &[names[2]], &["k3s-agent"]),
        invocation
    );
    let listing = lab
        .exec(names[2], &format!("ls {EXEC_DROPIN_DIR}"))
        .expect("ls");
    assert!(
        !listing.lines().any(|l| l.trim().ends_with(".conf"))
            && listing.contains("50-exec.conf.before-k3sctl-"),
        "{listing}"
    );
    let exec_start = lab
        .exec(names[2], "systemctl show -p ExecStart --value k3s-agent")
        .expect("show");
    assert!(
        exec_start.contains("/usr/local/bin/k3s") && !exec_start.contains("--"),
        "{exec_start}"
    );
    let config = lab
        .exec(names[2], "cat /etc/rancher/k3s/config.yaml")
        .expect("config");
    assert_eq!(config.matches("max-pods=120").count(), 1, "{config}");
    assert_eq!(config.matches("max-pods=110").count(), 1, "{config}");
    assert!(config.contains("zone=z2"), "{config}");

    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let started = Instant::now();
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    eprintln!("no-op apply: {:.2} s", started.elapsed().as_secs_f64());
    assert!(text(&out).contains("Nothing to do"), "{}", text(&out));
    assert_eq!(pids(&lab), before);

    // A real change: a registry mirror restarts every node, one at a time.
    let mut with_mirror = fs_err::read_to_string(&spec).expect("spec");
    with_mirror.push_str(
        "  registries:\n    mirrors:\n      docker.io:\n        endpoints: [\"http://mirror.example:5000\"]\n",
    );
    fs_err::write(&spec, with_mirror).expect("spec");
    let out = k3sctl(&["-o", "json", "apply", "-c", &spec_arg]);
    assert!(out.status.success(), "mirror apply:\n{}", text(&out));
    let after = pids(&lab);
    for i in 0..hosts.len() {
        assert_ne!(after[i], before[i], "{} not restarted", hosts[i].name);
    }
    let mut restarted: Vec<String> = Vec::new();
    let mut ready: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        match (field("step").as_str(), field("kind").as_str()) {
            ("restart", "start") => {
                assert!(
                    restarted.iter().all(|h| ready.contains(h)),
                    "{} restarted while another node was not Ready",
                    field("host")
                );
                restarted.push(field("host"));
            }
            ("wait-node-ready", "done") => ready.push(field("host")),
            _ => {}
        }
    }
    assert_eq!(restarted.len(), 3, "{}", text(&out));

    // Upgrade works on the adopted cluster.
    let stamped = stamped_stand_in(&dir, "v1.33.6+k3s1");
    let out = k3sctl(&[
        "upgrade",
        "-c",
        &spec_arg,
        "--yes",
        "--binary",
        &stamped.to_string_lossy(),
        "--to",
        "v1.33.6+k3s1",
    ]);
    assert!(out.status.success(), "upgrade:\n{}", text(&out));
    let (_, nodes) = kube(&kubeconfig, &["get", "nodes", "--no-headers"]);
    assert_eq!(nodes.matches("v1.33.6+k3s1").count(), 3, "{nodes}");

    // The hosts as k3s-ansible leaves them (someone ran its playbook again), taken over from
    // its inventory.
    ansible::lay_out(&lab, &names, &server_ip);
    wait_ready(&kubeconfig, 3);
    let addresses: Vec<String> = (0..hosts.len()).map(address).collect();
    let ssh_config = lab_yaml["spec"]["hostDefaults"]["ssh"]["configFile"]
        .as_str()
        .expect("ssh config")
        .to_owned();
    ansible::readopt(&lab, &names, &addresses, &ssh_config, &stamped);
}
