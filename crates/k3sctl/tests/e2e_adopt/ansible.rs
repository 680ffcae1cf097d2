//! The k3s-ansible shape on the adopted cluster: the hosts laid out as k3s-ansible's roles
//! leave them (the install script's unit with `extra_server_args` in ExecStart, the agents'
//! `--server` flag and `K3S_TOKEN=` env line, the server's config.yaml with `token` and
//! `tls-san` merged with `server_config_yaml`, `agent_config_yaml`, the binary from
//! `airgap_dir`), K3s restarted as the playbook does; then `init --from-ansible` on a
//! k3s-ansible inventory whose `ansible_ssh_common_args` carry the ssh config and known_hosts
//! files and whose hosts are named by address (its sample's layout: the Node names are read
//! from the hosts), and `plan` / `apply` take the cluster over without restarting anything.

use std::path::Path;

use lab::Lab;
use lab::foreign::installer_unit;

use super::TOKEN;
use super::adopt::{
    AnsibleCluster, airgap_dir, ansible_vars, apply_keeps_invocations, init_from_ansible,
    invocations, plan_adopts_without_restart, write_root,
};
use super::e2e::{k3sctl, text};

/// The version the adopted cluster runs after its upgrade.
const VERSION: &str = "v1.33.6+k3s1";

/// Lays the hosts out as k3s-ansible does (k3sctl's files and record gone) and restarts K3s
/// as its playbook does.
pub fn lay_out(lab: &Lab, hosts: &[&str], server_ip: &str) {
    let token = TOKEN;
    for (i, h) in hosts.iter().enumerate() {
        lab::foreign::clear_start_files(lab, h).expect("clean");
        let unit = if i == 0 {
            // INSTALL_K3S_EXEC is extra_server_args; the env file has no K3S_TOKEN left.
            write_root(
                lab,
                h,
                "/etc/systemd/system/k3s.service",
                installer_unit(
                    "server",
                    &["--disable", "traefik", "--kubelet-arg", "max-pods=150"],
                )
                .as_bytes(),
                0o644,
            );
            write_root(lab, h, "/etc/systemd/system/k3s.service.env", b"", 0o600);
            // to_nice_yaml of {token, tls-san: api_endpoint} merged with server_config_yaml.
            write_root(
                lab,
                h,
                "/etc/rancher/k3s/config.yaml",
                format!("tls-san: {server_ip}\ntoken: {token}\nwrite-kubeconfig-mode: '0600'\n")
                    .as_bytes(),
                0o644,
            );
            "k3s"
        } else {
            let url = format!("https://{server_ip}:6443");
            write_root(
                lab,
                h,
                "/etc/systemd/system/k3s-agent.service",
                installer_unit("agent", &["--server", &url, "--node-label", "zone=z1"]).as_bytes(),
                0o644,
            );
            write_root(
                lab,
                h,
                "/etc/systemd/system/k3s-agent.service.env",
                format!("K3S_TOKEN={token}\n").as_bytes(),
                0o600,
            );
            write_root(
                lab,
                h,
                "/etc/rancher/k3s/config.yaml",
                b"kubelet-arg:\n  - max-pods=110\n",
                0o644,
            );
            "k3s-agent"
        };
        lab.exec(
            h,
            &format!("systemctl daemon-reload && systemctl restart {unit}"),
        )
        .expect("restart");
    }
}

/// A k3s-ansible inventory (its sample's layout: `k3s_cluster` with `server` and `agent`
/// children, hosts named by their address) for the lab hosts, reached through the lab's ssh
/// config and known_hosts.
pub fn inventory(lab: &Lab, addresses: &[String], ssh_config: &str, airgap: &Path) -> String {
    // Named by address, as in k3s-ansible's sample inventory.
    let host = |i: usize| format!("        {}:\n", addresses[i]);
    let vars = ansible_vars(
        lab,
        Path::new(ssh_config),
        &AnsibleCluster {
            version: VERSION,
            token: TOKEN,
            api: &addresses[0],
            airgap,
        },
    );
    format!(
        "k3s_cluster:\n  children:\n    server:\n      hosts:\n{server}    agent:\n      hosts:\n{agents}\
         {vars}\
         \x20   extra_server_args: \"--disable traefik --kubelet-arg max-pods=150\"\n\
         \x20   extra_agent_args: \"--node-label zone=z1\"\n\
         \x20   server_config_yaml: |\n\
         \x20     write-kubeconfig-mode: \"0600\"\n\
         \x20   agent_config_yaml: |\n\
         \x20     kubelet-arg:\n\
         \x20       - max-pods=110\n",
        server = host(0),
        agents = (1..addresses.len()).map(host).collect::<String>(),
    )
}

/// `init --from-ansible`, `plan`, `apply`, `plan` on the k3s-ansible layout: nothing restarts.
pub fn readopt(lab: &Lab, hosts: &[&str], addresses: &[String], ssh_config: &str, stamped: &Path) {
    let units = ["k3s", "k3s-agent", "k3s-agent"];
    let airgap = airgap_dir(lab, stamped);
    let (spec_arg, written) = init_from_ansible(
        lab,
        &inventory(lab, addresses, ssh_config, &airgap),
        "from-ansible.yaml",
        TOKEN,
    );
    for want in [
        format!("knownHostsFile: {}", lab.known_hosts().display()),
        format!("configFile: {ssh_config}"),
        format!("file: {}", airgap.join("k3s").display()),
        "max-pods=150".into(),
        "max-pods=110".into(),
        "zone: z1".into(),
    ] {
        assert!(written.contains(&want), "{want} missing:\n{written}");
    }
    // The hosts, named by address in the inventory, carry the Node names K3s runs with.
    let parsed: serde_json::Value = serde_saphyr::from_str(&written).expect("spec yaml");
    for (i, (h, address)) in hosts.iter().zip(addresses).enumerate() {
        let host = &parsed["spec"]["hosts"][i];
        assert_eq!(host["name"], *h, "{written}");
        assert_eq!(host["address"], *address, "{written}");
    }

    let before = invocations(lab, hosts, &units);
    plan_adopts_without_restart(&spec_arg, hosts.len());
    let out = apply_keeps_invocations(
        lab,
        hosts,
        &units,
        &before,
        &["-o", "json", "apply", "-c", &spec_arg],
        "adopting apply (k3s-ansible layout)",
    );
    // Nothing restarts, so nothing waits for another host: every host starts before any
    // finishes its first step.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("step").is_some())
        .collect();
    let first_done = events
        .iter()
        .position(|v| v["kind"] == "done")
        .expect("a step done");
    for h in hosts {
        let start = events
            .iter()
            .position(|v| v["host"] == *h && v["kind"] == "start")
            .unwrap_or_else(|| panic!("{h} did nothing:\n{}", text(&out)));
        assert!(
            start < first_done,
            "{h} waited for another host:\n{}",
            text(&out)
        );
    }
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}
