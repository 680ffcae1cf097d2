//! End to end on the lab's Proxmox stand-in (`--proxmox`): a node host `<lab>-pve` whose LXC
//! containers (no sshd) are reached only with `pct exec` there. The pct transport passes the
//! transport suite; apply installs and joins through pct, a second apply changes nothing, kubectl
//! sees the nodes Ready; a stopped container is reported (autostart off) or started and joined;
//! a container missing /dev/kmsg and the AppArmor line is refused with the lines to add and
//! `--fix-lxc` fixes it (lines before the snapshot section, backup kept, node drained first).

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/transport_suite.rs"]
mod transport_suite;

use e2e::{build_stand_in, k3sctl, kubectl, text};
use k3sctl::host::{
    APPARMOR_LINE, ExecRequest, HostError, KMSG_LINE, PctTransport, ProxmoxError, SshTarget,
    SshTransport, Transport,
};
use lab::{Lab, LabOptions, SpecOptions};

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

fn node_target(lab: &Lab, node: &str, address: &str) -> SshTarget {
    let mut t = SshTarget::new(node, address);
    t.user = Some("root".into());
    t.identity_file = Some(lab.identity());
    t.known_hosts_file = Some(lab.known_hosts());
    t.config_file = Some(lab.ssh_config());
    t
}

fn nodes_ready(lab: &Lab, names: &[&str]) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(lab.dir().join("kubeconfig.yaml"))
        .args(["get", "nodes", "--no-headers"])
        .output()
        .expect("kubectl runs");
    let nodes = text(&out);
    assert!(out.status.success(), "kubectl failed: {nodes}");
    for name in names {
        let status = nodes
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1));
        assert_eq!(status, Some("Ready"), "node {name} in:\n{nodes}");
    }
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

/// The spec with `extra` added under container `vmid`'s `pct:` entry.
fn with_pct_setting(spec: &str, vmid: u32, extra: &str) -> String {
    let mut out = String::new();
    for line in spec.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == format!("vmid: {vmid}") {
            let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
            out.push_str(&format!("{indent}{extra}\n"));
        }
    }
    out
}

#[test]
fn proxmox_containers_are_managed_through_pct() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    build_lab_binary();
    let mut opts = LabOptions::new("e2e-pct", 2);
    opts.proxmox = true;
    let lab = Lab::up(&opts).expect("lab boots");
    let px = lab.proxmox().expect("proxmox stand-in").clone();
    let hosts = lab.hosts();
    let (server, agent) = (&hosts[0], &hosts[1]);
    let node = hosts.iter().find(|h| h.name == px.node).expect("node host");
    let spec = lab.dir().join("cluster.yaml");
    lab.write_spec(&spec, &SpecOptions::default())
        .expect("spec written");
    let spec_text = std::fs::read_to_string(&spec).expect("spec");
    assert!(spec_text.contains("proxmoxHosts:"), "{spec_text}");
    assert!(spec_text.contains("vmid: 201"), "{spec_text}");
    let spec_arg = spec.to_string_lossy().into_owned();

    // Containers run no sshd: only pct reaches them.
    let port22 = std::net::TcpStream::connect((server.address, 22));
    assert!(port22.is_err(), "a container answers on port 22");

    // The stand-in keeps pct's contract: status lines, refusals, and push exiting 0 on failure.
    let pct = |cmd: &str| {
        let out = lab
            .exec_output(&px.node, cmd, std::time::Duration::from_secs(60))
            .expect("ssh to the node");
        (out.code, format!("{}{}", out.stdout, out.stderr))
    };
    assert_eq!(pct("pct status 201"), (Some(0), "status: running\n".into()));
    assert_eq!(
        pct("pct start 201"),
        (Some(255), "CT 201 already running\n".into())
    );
    let (code, said) = pct("pct push 201 /etc/hostname /no/such/dir/x");
    assert_eq!(code, Some(0), "push failure exits 0 like real pct: {said}");
    assert!(
        said.contains("failed to create file: /no/such/dir/x"),
        "{said}"
    );
    assert_eq!(
        pct("pct push 201 /etc/hostname /root/pushed --perms 0600 && pct exec 201 -- stat -c %a /root/pushed").1,
        "600\n"
    );
    assert_eq!(
        pct("su nobody -s /bin/sh -c 'pct status 201'"),
        (Some(255), "please run as root\n".into())
    );

    // The transport contract over pct, and pct's refusals as typed errors.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let ssh = Arc::new(
            SshTransport::connect(node_target(&lab, &px.node, &node.address.to_string()))
                .await
                .expect("ssh to the node"),
        );
        let ct = PctTransport::new(
            &server.name,
            &px.node,
            Arc::clone(&ssh),
            201,
            server.address.to_string(),
        );
        let scratch = std::path::Path::new("/root");
        transport_suite::run_all(&ct, scratch).await;
        // The ssh session's environment stays out of the container.
        let env = ct
            .exec(ExecRequest::new("env"))
            .await
            .expect("env")
            .stdout_text();
        assert!(!env.contains("SSH_CONNECTION"), "{env}");
        let missing = PctTransport::new("ghost", &px.node, Arc::clone(&ssh), 299, "10.0.0.1");
        match missing.status().await {
            Err(HostError::Proxmox(ProxmoxError::NotOnNode { vmid: 299, .. })) => {}
            other => panic!("expected NotOnNode, got {other:?}"),
        }
        // Hop overhead: the same trivial command through pct vs. on the node itself.
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            ct.exec(ExecRequest::new("true")).await.expect("pct exec");
        }
        let through_pct = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            ssh.exec(ExecRequest::new("true")).await.expect("ssh exec");
        }
        let direct = t.elapsed() / n;
        println!("bench: one command over ssh {direct:?}, through pct exec {through_pct:?}");
    });

    // Apply through pct; a second apply changes nothing.
    let t = Instant::now();
    let first = k3sctl(&["apply", "-c", &spec_arg]);
    println!("bench: first apply through pct took {:?}", t.elapsed());
    let first_text = text(&first);
    assert!(first.status.success(), "first apply failed:\n{first_text}");
    nodes_ready(&lab, &[&server.name, &agent.name]);
    let before = started_at(&lab, &server.name, "k3s");
    let t = Instant::now();
    let second = k3sctl(&["apply", "-c", &spec_arg]);
    println!("bench: no-op apply through pct took {:?}", t.elapsed());
    let second_text = text(&second);
    assert!(
        second.status.success(),
        "second apply failed:\n{second_text}"
    );
    assert!(second_text.contains("nothing to do"), "{second_text}");
    assert_eq!(
        started_at(&lab, &server.name, "k3s"),
        before,
        "k3s restarted"
    );

    // A stopped container with autostart off: reported, nothing changes anywhere.
    lab.exec(&px.node, "pct stop 202").expect("pct stop");
    let no_autostart = lab.dir().join("no-autostart.yaml");
    std::fs::write(
        &no_autostart,
        with_pct_setting(&spec_text, 202, "autostart: false"),
    )
    .expect("spec");
    let refused = k3sctl(&["apply", "-c", &no_autostart.to_string_lossy()]);
    let refused_text = text(&refused);
    assert!(!refused.status.success(), "apply went on:\n{refused_text}");
    assert!(
        refused_text.contains(&format!(
            "{}: container 202 on {} is not running",
            agent.name, px.node
        )),
        "{refused_text}"
    );
    assert_eq!(
        lab.exec(&px.node, "pct status 202").expect("status").trim(),
        "status: stopped"
    );
    assert_eq!(
        started_at(&lab, &server.name, "k3s"),
        before,
        "server touched"
    );

    // With autostart (the default) the container is started and joins again.
    let started = k3sctl(&["apply", "-c", &spec_arg]);
    let started_text = text(&started);
    assert!(started.status.success(), "apply failed:\n{started_text}");
    assert!(
        started_text.contains("container 202 on")
            && started_text.contains("was stopped; started it"),
        "{started_text}"
    );
    nodes_ready(&lab, &[&server.name, &agent.name]);

    // A container without /dev/kmsg and the AppArmor line (and a snapshot section in its .conf):
    // refused with the exact lines; --fix-lxc writes them before the section and it joins.
    let conf = "/etc/pve/lxc/202.conf";
    lab.exec(
        &px.node,
        &format!(
            "sed -i -e '/kmsg/d' -e '/apparmor/d' {conf} && printf '\\n[before-k3s]\\narch: amd64\\nlxc.apparmor.profile: generated\\nsnaptime: 1700000000\\n' >> {conf} && pct reboot 202"
        ),
    )
    .expect("break the container's settings");
    assert_eq!(
        lab.exec(&agent.name, "test -e /dev/kmsg || echo missing")
            .expect("kmsg check")
            .trim(),
        "missing"
    );
    let refused = k3sctl(&["apply", "-c", &spec_arg]);
    let refused_text = text(&refused);
    assert!(!refused.status.success(), "apply went on:\n{refused_text}");
    assert!(
        refused_text.contains("add to /etc/pve/lxc/202.conf"),
        "{refused_text}"
    );
    assert!(refused_text.contains(APPARMOR_LINE), "{refused_text}");
    assert!(refused_text.contains(KMSG_LINE), "{refused_text}");
    assert!(!refused_text.contains("201.conf"), "{refused_text}");

    let fixed = k3sctl(&["apply", "-c", &spec_arg, "--fix-lxc"]);
    let fixed_text = text(&fixed);
    assert!(
        fixed.status.success(),
        "apply --fix-lxc failed:\n{fixed_text}"
    );
    assert!(fixed_text.contains("cordoned and drained"), "{fixed_text}");
    let after = lab.exec(&px.node, &format!("cat {conf}")).expect("conf");
    let section = after.find("[before-k3s]").expect("snapshot section kept");
    let line = after.find(APPARMOR_LINE).expect("apparmor line written");
    assert!(line < section, "line written into the snapshot:\n{after}");
    assert!(
        after[section..].contains("lxc.apparmor.profile: generated"),
        "{after}"
    );
    let backups = lab
        .exec(&px.node, "ls /root/k3sctl-lxc-backup/")
        .expect("backup");
    assert!(backups.contains("202.conf."), "{backups}");
    assert_eq!(
        lab.exec(
            &agent.name,
            "test -e /dev/kmsg && systemctl is-enabled conf-kmsg.service"
        )
        .expect("kmsg after the fix")
        .trim(),
        "enabled"
    );
    nodes_ready(&lab, &[&server.name, &agent.name]);
    let again = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(
        again.status.success(),
        "apply after the fix:\n{}",
        text(&again)
    );
}
