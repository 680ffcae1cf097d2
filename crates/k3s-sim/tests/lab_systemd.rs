//! The stand-in on lab hosts (systemd-nspawn Debian containers with real systemd), installed as
//! /usr/local/bin/k3s and run by units shaped like the ones the K3s installer writes
//! (Type=notify, EnvironmentFile, Restart=always), checked with kubectl 1.20 from the machine.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{kubectl_path, sim_binary, wait_for};

fn unit(name: &str, command: &str) -> String {
    format!(
        "[Unit]\nDescription=Lightweight Kubernetes\nWants=network-online.target\nAfter=network-online.target\n\n\
         [Install]\nWantedBy=multi-user.target\n\n\
         [Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\n\
         EnvironmentFile=-/etc/systemd/system/{name}.service.env\nKillMode=process\nDelegate=yes\n\
         LimitNOFILE=1048576\nTimeoutStartSec=0\nRestart=always\nRestartSec=5s\n\
         ExecStartPre=-/sbin/modprobe br_netfilter\nExecStartPre=-/sbin/modprobe overlay\n\
         ExecStart=/usr/local/bin/k3s {command}\n"
    )
}

fn write(root: &Path, path: &str, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Installs a stamped binary as /usr/local/bin/k3s (temp file + rename, like an upgrade).
fn install(root: &Path, stamped: &Path) {
    let dir = root.join("usr/local/bin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(stamped, dir.join(".k3s.new")).expect("copy");
    std::fs::rename(dir.join(".k3s.new"), dir.join("k3s")).expect("rename");
}

fn stamp(dir: &Path, version: &str) -> std::path::PathBuf {
    let out = dir.join(version).join("k3s");
    let st = std::process::Command::new(sim_binary())
        .args(["stamp", "--version", version, "-o"])
        .arg(&out)
        .output()
        .expect("stamp");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    out
}

#[test]
fn systemd_units_start_join_upgrade_and_notice_a_stopped_agent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = lab::Lab::boot("t-k3s-sim", 2).expect("lab boots");
    let hosts = lab.hosts();
    let (server, agent) = (&hosts[0], &hosts[1]);
    let server_root = lab.root_dir(&server.name).expect("root");
    let agent_root = lab.root_dir(&agent.name).expect("root");
    let v1 = stamp(tmp.path(), "v1.33.5+k3s1");
    for root in [&server_root, &agent_root] {
        install(root, &v1);
    }
    let knobs = "K3S_SIM_HEARTBEAT=2s\nK3S_SIM_NODE_GRACE=8s\n";
    write(
        &server_root,
        "/etc/systemd/system/k3s.service",
        &unit("k3s", "server"),
        0o644,
    );
    write(&server_root, "/etc/default/k3s", knobs, 0o644);
    write(
        &server_root,
        "/etc/rancher/k3s/config.yaml",
        &format!("tls-san: [{}]\n", server.address),
        0o600,
    );
    write(
        &agent_root,
        "/etc/systemd/system/k3s-agent.service",
        &unit("k3s-agent", "agent"),
        0o644,
    );
    write(&agent_root, "/etc/default/k3s-agent", knobs, 0o644);

    // Type=notify: `enable --now` returns once the server said READY=1, so it answers right away.
    lab.exec(
        &server.name,
        "systemctl daemon-reload && systemctl enable --now k3s",
    )
    .expect("start server");
    let kc = tmp.path().join("kubeconfig");
    let local =
        std::fs::read_to_string(server_root.join("etc/rancher/k3s/k3s.yaml")).expect("k3s.yaml");
    std::fs::write(
        &kc,
        local.replace(
            "https://127.0.0.1:6443",
            &format!("https://{}:6443", server.address),
        ),
    )
    .expect("write");
    let kubectl = |args: &[&str]| {
        std::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .args(args)
            .output()
            .expect("kubectl")
    };
    let ready = kubectl(&["get", "--raw", "/readyz"]);
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );

    let token = std::fs::read_to_string(server_root.join("var/lib/rancher/k3s/server/token"))
        .expect("token");
    let env = format!(
        "K3S_TOKEN={}\nK3S_URL=https://{}:6443\n",
        token.trim(),
        server.address
    );
    write(
        &agent_root,
        "/etc/systemd/system/k3s-agent.service.env",
        &env,
        0o600,
    );
    lab.exec(
        &agent.name,
        "systemctl daemon-reload && systemctl enable --now k3s-agent",
    )
    .expect("start agent");
    let nodes =
        String::from_utf8_lossy(&kubectl(&["get", "nodes", "-o", "wide"]).stdout).to_string();
    for h in [server, agent] {
        let line = nodes
            .lines()
            .find(|l| l.starts_with(&format!("{} ", h.name)))
            .unwrap_or_default()
            .to_string();
        assert!(
            line.contains(" Ready ")
                && line.contains("v1.33.5+k3s1")
                && line.contains(&h.address.to_string()),
            "{nodes}"
        );
    }
    let journal = lab
        .exec(&agent.name, "journalctl -u k3s-agent --no-pager")
        .expect("journal");
    assert!(journal.contains("k3s agent is up and running"), "{journal}");

    // Upgrade: replace the binary, restart server then agent.
    let v2 = stamp(tmp.path(), "v1.34.1+k3s1");
    for root in [&server_root, &agent_root] {
        install(root, &v2);
    }
    lab.exec(&server.name, "systemctl restart k3s && k3s --version")
        .expect("restart server");
    lab.exec(&agent.name, "systemctl restart k3s-agent")
        .expect("restart agent");
    let versions = String::from_utf8_lossy(
        &kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.nodeInfo.kubeletVersion}",
        ])
        .stdout,
    )
    .to_string();
    assert_eq!(versions, "v1.34.1+k3s1 v1.34.1+k3s1");

    // A stopped agent's node turns NotReady after the grace period.
    lab.exec(&agent.name, "systemctl stop k3s-agent")
        .expect("stop agent");
    wait_for("agent NotReady", Duration::from_secs(40), || {
        let out =
            String::from_utf8_lossy(&kubectl(&["get", "node", &agent.name, "--no-headers"]).stdout)
                .to_string();
        out.contains("NotReady").then_some(())
    });

    // A wrong token: the agent exits, systemd keeps restarting it, journald says why.
    let bad = format!(
        "K3S_TOKEN={}x\nK3S_URL=https://{}:6443\n",
        token.trim(),
        server.address
    );
    write(
        &agent_root,
        "/etc/systemd/system/k3s-agent.service.env",
        &bad,
        0o600,
    );
    lab.exec(&agent.name, "systemctl start --no-block k3s-agent")
        .expect("start");
    wait_for("token refusal in journald", Duration::from_secs(30), || {
        let j = lab
            .exec(&agent.name, "journalctl -u k3s-agent --no-pager")
            .unwrap_or_default();
        j.contains("failed to validate token").then_some(())
    });
    let state = lab
        .exec_output(
            &agent.name,
            "systemctl is-active k3s-agent",
            Duration::from_secs(10),
        )
        .expect("is-active");
    assert_ne!(state.stdout.trim(), "active");
    lab.down().expect("lab down");
}
