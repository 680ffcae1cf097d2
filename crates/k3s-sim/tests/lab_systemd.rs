//! The stand-in on real lab hosts under real systemd units, checked with Debian's kubectl 1.20:
//! installed as /usr/local/bin/k3s, started by `k3s.service` / `k3s-agent.service` shaped like
//! the official installer's (Type=notify, env files), configured through config.yaml. One lab of
//! three hosts (a server and two agents) serves every check, in order: an agent started before
//! the server, the nodes, kubectl's node verbs, NotReady, a server restart, an upgrade by binary
//! swap, a wrong token.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::lab_host::{put, swap_binary, unit};
use common::{kubectl_path, sim_binary, wait_for};
use lab::Lab;

const VERSION: &str = "v1.33.5+k3s1";
/// The version the upgrade step installs.
const NEWER: &str = "v1.34.1+k3s1";
/// A bare-password token: the agents get it before the server has made its CA.
const TOKEN: &str = "lab-systemd-join-secret";
/// Short test timings: heartbeats every second, NotReady after 6 s, retries every second.
const KNOBS: &str = "K3S_SIM_HEARTBEAT=1s\nK3S_SIM_NODE_GRACE=6s\nK3S_SIM_RETRY=1s\n";
const WAIT: Duration = Duration::from_secs(60);

/// The install script's `create_symlinks`: /usr/local/bin/{kubectl,crictl,ctr} -> k3s, each
/// skipped when that command already exists on PATH unless forced (`INSTALL_K3S_SYMLINK=force`).
/// Lab hosts carry Debian's kubectl, so only a forced install links `kubectl`.
fn link_faces(lab: &Lab, host: &str, force: bool) {
    for cmd in ["kubectl", "crictl", "ctr"] {
        let script = format!(
            "cd /usr/local/bin && if [ ! -e {cmd} ]; then \
             if [ -z \"$(command -v {cmd})\" ] || [ {force} = true ]; then ln -sf k3s {cmd}; fi; fi"
        );
        lab.exec(host, &script)
            .unwrap_or_else(|e| panic!("link {cmd} on {host}: {e}"));
    }
}

/// Installs the stamped binary, the unit, its env file, /etc/default knobs and config.yaml.
fn install(lab: &Lab, host: &str, binary: &[u8], role: &str, config: &str, env: &str) {
    let name = if role == "server" { "k3s" } else { "k3s-agent" };
    swap_binary(lab, host, binary);
    link_faces(lab, host, role == "server");
    put(
        lab,
        host,
        &format!("/etc/systemd/system/{name}.service"),
        unit(role, name).as_bytes(),
        0o644,
    );
    put(
        lab,
        host,
        &format!("/etc/systemd/system/{name}.service.env"),
        env.as_bytes(),
        0o600,
    );
    put(
        lab,
        host,
        &format!("/etc/default/{name}"),
        KNOBS.as_bytes(),
        0o644,
    );
    put(
        lab,
        host,
        "/etc/rancher/k3s/config.yaml",
        config.as_bytes(),
        0o600,
    );
    lab.exec(host, "systemctl daemon-reload")
        .expect("daemon-reload");
}

/// kubectl 1.20 with the exported kubeconfig.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--request-timeout", "10s"])
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl, fails the test on a non-zero exit, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn node_field(&self, node: &str, jsonpath: &str) -> Option<String> {
        let out = self.run(&["get", "node", node, "-o", &format!("jsonpath={jsonpath}")]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ready(&self, node: &str) -> Option<String> {
        self.node_field(node, "{.status.conditions[?(@.type==\"Ready\")].status}")
    }

    fn wait_ready(&self, node: &str, want: &str) {
        wait_for(&format!("node {node} Ready={want}"), WAIT, || {
            (self.ready(node).as_deref() == Some(want)).then_some(())
        });
    }
}

/// Rows of `kubectl get nodes -o wide` by node name.
fn wide_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn journal(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(host, &format!("journalctl -u {unit} --no-pager -o cat"))
        .expect("journalctl")
}

fn stamp(dir: &Path, version: &str) -> Vec<u8> {
    let out = dir.join(version).join("k3s");
    let status = Command::new(sim_binary())
        .args(["stamp", "--version", version, "-o"])
        .arg(&out)
        .status()
        .expect("run k3s-sim stamp");
    assert!(status.success(), "k3s-sim stamp failed");
    fs_err::read(&out).expect("read stamped binary")
}

#[test]
fn stand_in_runs_under_the_installer_units_on_lab_hosts() {
    lab::require_root().expect("the lab needs root");
    let lab = Lab::boot("simsd", 3).expect("boot a 3-host lab");
    let hosts = lab.hosts();
    let (server, early, late) = (&hosts[0], &hosts[1], &hosts[2]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let binary = stamp(tmp.path(), VERSION);
    let api = format!("https://{}:6443", server.address);

    let server_config = format!(
        "node-ip: \"{ip}\"\ntoken: {TOKEN}\ntls-san:\n- \"{ip}\"\nwrite-kubeconfig-mode: \"0600\"\n",
        ip = server.address
    );
    install(&lab, &server.name, &binary, "server", &server_config, "");
    let agent_config =
        |agent: &lab::Host| format!("node-ip: \"{}\"\nserver: {api}\n", agent.address);
    let env = format!("K3S_TOKEN=\"{TOKEN}\"\n");
    install(
        &lab,
        &early.name,
        &binary,
        "agent",
        &agent_config(early),
        &env,
    );

    // An agent started before the server retries, visibly, until the server is up.
    lab.exec(&early.name, "systemctl enable --now --no-block k3s-agent")
        .expect("start the early agent");
    wait_for("the early agent's retry lines", WAIT, || {
        let log = journal(&lab, &early.name, "k3s-agent");
        (log.matches("failed to get CA certs").count() >= 2).then_some(())
    });
    let state = lab
        .exec_output(&early.name, "systemctl is-active k3s-agent", WAIT)
        .expect("is-active");
    assert_eq!(
        state.stdout.trim(),
        "activating",
        "Type=notify: not ready before joining"
    );

    // Type=notify: `systemctl start` returns once the server says READY=1.
    lab.exec(&server.name, "systemctl enable --now k3s")
        .expect("start the server");
    assert_eq!(
        lab.exec(&server.name, "systemctl is-active k3s")
            .expect("is-active")
            .trim(),
        "active"
    );
    // The second agent joins with the secure token read from the server (CA hash checked).
    let secure = fs_err::read_to_string(
        lab.root_dir(&server.name)
            .expect("root")
            .join("var/lib/rancher/k3s/server/token"),
    )
    .expect("read the server token");
    let secure = secure.trim().to_owned();
    assert!(secure.starts_with("K10") && secure.ends_with(&format!("::server:{TOKEN}")));
    let env = format!("K3S_TOKEN=\"{secure}\"\n");
    install(
        &lab,
        &late.name,
        &binary,
        "agent",
        &agent_config(late),
        &env,
    );
    lab.exec(&late.name, "systemctl enable --now k3s-agent")
        .expect("start the second agent");

    let k3s_yaml = fs_err::read_to_string(
        lab.root_dir(&server.name)
            .expect("root")
            .join("etc/rancher/k3s/k3s.yaml"),
    )
    .expect("read k3s.yaml");
    assert!(k3s_yaml.contains("https://127.0.0.1:6443"), "{k3s_yaml}");
    let kubeconfig = tmp.path().join("kubeconfig.yaml");
    fs_err::write(
        &kubeconfig,
        k3s_yaml.replace("https://127.0.0.1:6443", &api),
    )
    .expect("write kubeconfig");
    let kubectl = Kubectl {
        bin: kubectl_path(),
        kubeconfig,
    };

    // get nodes -o wide: server + 2 agents Ready, stamped version, lab addresses.
    for host in &hosts {
        kubectl.wait_ready(&host.name, "True");
    }
    let rows = wide_rows(&kubectl.ok(&["get", "nodes", "-o", "wide"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    for host in &hosts {
        let row = rows
            .iter()
            .find(|r| r[0] == host.name)
            .unwrap_or_else(|| panic!("{} missing in {rows:?}", host.name));
        assert_eq!(row[1], "Ready", "{row:?}");
        assert_eq!(row[4], VERSION, "{row:?}");
        assert_eq!(row[5], host.address.to_string(), "{row:?}");
        let roles = if host == server {
            "control-plane,master"
        } else {
            "<none>"
        };
        assert_eq!(row[2], roles, "{row:?}");
    }
    assert!(
        journal(&lab, &early.name, "k3s-agent").contains("registered with"),
        "the early agent joined once the server was up"
    );
    check_faces(&lab, &server.name, &late.name);

    // cordon / uncordon / label / taint.
    let node = early.name.as_str();
    kubectl.ok(&["cordon", node]);
    assert_eq!(
        kubectl.node_field(node, "{.spec.unschedulable}").as_deref(),
        Some("true")
    );
    kubectl.ok(&["uncordon", node]);
    assert_eq!(
        kubectl.node_field(node, "{.spec.unschedulable}").as_deref(),
        Some("")
    );
    kubectl.ok(&["label", "node", node, "bench.k3sctl.io/tier=gold"]);
    kubectl.ok(&["taint", "node", node, "dedicated=infra:NoSchedule"]);
    let labelled = kubectl.ok(&[
        "get",
        "nodes",
        "-l",
        "bench.k3sctl.io/tier=gold",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), format!("node/{node}"));
    let taints = kubectl
        .node_field(node, "{.spec.taints[*].key}")
        .unwrap_or_default();
    assert!(taints.contains("dedicated"), "{taints}");
    kubectl.ok(&["create", "namespace", "kept-across-restarts"]);

    // delete node: gone from the API; the agent registers again when restarted.
    kubectl.ok(&["delete", "node", &late.name]);
    let names = kubectl.ok(&["get", "nodes", "-o", "name"]);
    assert!(!names.contains(&late.name), "{names}");
    lab.exec(&late.name, "systemctl restart k3s-agent")
        .expect("restart agent");
    kubectl.wait_ready(&late.name, "True");

    // A stopped agent's node turns NotReady after the grace period, Ready again after a start.
    lab.exec(&early.name, "systemctl stop k3s-agent")
        .expect("stop agent");
    kubectl.wait_ready(node, "Unknown");
    let wide = kubectl.ok(&["get", "nodes", "-o", "wide"]);
    let row = wide_rows(&wide)
        .into_iter()
        .find(|r| r[0] == node)
        .expect("row");
    assert_eq!(row[1], "NotReady", "{wide}");
    lab.exec(&early.name, "systemctl start k3s-agent")
        .expect("start agent");
    kubectl.wait_ready(node, "True");

    // Restarting the server keeps every object.
    lab.exec(&server.name, "systemctl restart k3s")
        .expect("restart server");
    for host in &hosts {
        kubectl.wait_ready(&host.name, "True");
    }
    let labelled = kubectl.ok(&[
        "get",
        "nodes",
        "-l",
        "bench.k3sctl.io/tier=gold",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), format!("node/{node}"));
    let taints = kubectl
        .node_field(node, "{.spec.taints[*].key}")
        .unwrap_or_default();
    assert!(taints.contains("dedicated"), "{taints}");
    kubectl.ok(&["get", "namespace", "kept-across-restarts"]);
    assert_eq!(wide_rows(&kubectl.ok(&["get", "nodes"])).len(), 3);

    // Upgrade: swap the binary everywhere, restart the server, then the agents.
    let newer = stamp(tmp.path(), NEWER);
    for host in &hosts {
        swap_binary(&lab, &host.name, &newer);
    }
    lab.exec(&server.name, "systemctl restart k3s")
        .expect("restart server");
    for agent in [early, late] {
        lab.exec(&agent.name, "systemctl restart k3s-agent")
            .expect("restart agent");
    }
    let want = [NEWER; 3].join(" ");
    wait_for("every node on the new version", WAIT, || {
        let versions = kubectl.ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.nodeInfo.kubeletVersion}",
        ]);
        (versions == want).then_some(())
    });

    // A wrong token: the agent exits, systemd keeps restarting it, journald says why.
    let bad = format!("K3S_TOKEN=\"{secure}x\"\n");
    put(
        &lab,
        &late.name,
        "/etc/systemd/system/k3s-agent.service.env",
        bad.as_bytes(),
        0o600,
    );
    lab.exec(&late.name, "systemctl restart --no-block k3s-agent")
        .expect("restart with a wrong token");
    wait_for("the token refusal in journald", WAIT, || {
        journal(&lab, &late.name, "k3s-agent")
            .contains("failed to validate token")
            .then_some(())
    });
    let state = lab
        .exec_output(&late.name, "systemctl is-active k3s-agent", WAIT)
        .expect("is-active");
    assert_ne!(state.stdout.trim(), "active");

    lab.down().expect("tear the lab down");
}

/// K3s's other faces on the hosts: kubectl through the forced link and `k3s kubectl` with K3s's
/// kubeconfig on the server, Debian's own kubectl left alone on an agent, crictl/ctr listing the
/// agent's pods, the completion script in bash and check-config's verdicts.
fn check_faces(lab: &Lab, server: &str, agent: &str) {
    let run = |host: &str, cmd: &str| {
        lab.exec_output(host, cmd, WAIT)
            .unwrap_or_else(|e| panic!("{host}: {cmd}: {e}"))
    };
    for cmd in [
        "kubectl get nodes --no-headers",
        "k3s kubectl get nodes --no-headers",
    ] {
        let out = run(server, cmd);
        assert!(out.code == Some(0), "{cmd}: {}", out.stderr);
        assert_eq!(out.stdout.lines().count(), 3, "{cmd}: {}", out.stdout);
    }
    assert_eq!(
        run(server, "readlink /usr/local/bin/kubectl").stdout.trim(),
        "k3s"
    );
    assert_eq!(
        run(agent, "command -v kubectl").stdout.trim(),
        "/usr/bin/kubectl"
    );
    let pods = wait_for("the agent's pods running under crictl", WAIT, || {
        let out = run(agent, "crictl pods");
        (out.code == Some(0) && out.stdout.lines().count() > 1 && !out.stdout.contains("NotReady"))
            .then_some(out.stdout)
    });
    assert!(pods.starts_with("POD ID"), "{pods}");
    let ps = run(agent, "k3s crictl ps");
    assert!(ps.code == Some(0), "{}", ps.stderr);
    assert!(
        ps.stdout.lines().count() >= pods.lines().count(),
        "{}\n{pods}",
        ps.stdout
    );
    let ctr = run(agent, "ctr containers ls -q | wc -l");
    let running = pods.lines().count() - 1;
    let containers = ps.stdout.lines().count() - 1;
    assert_eq!(
        ctr.stdout.trim(),
        (running + containers).to_string(),
        "pause + app containers"
    );
    let completion = run(
        server,
        "bash -c 'source <(k3s completion bash); complete -p k3s'",
    );
    assert!(
        completion.stdout.contains("-F _cli_bash_autocomplete k3s"),
        "{}",
        completion.stderr
    );
    let check = run(server, "NO_COLOR=1 k3s check-config");
    let last = check.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("STATUS: "),
        "{}{}",
        check.stdout,
        check.stderr
    );
    assert_eq!(
        (check.code == Some(0)),
        last == "STATUS: pass",
        "{}",
        check.stdout
    );
}
