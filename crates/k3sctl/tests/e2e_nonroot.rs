//! End to end as a non-root login user (cloud images' `ubuntu`/`debian` with sudo), on the
//! smallest lab that has both roles (1 server + 1 agent): apply, kubeconfig and upgrade through
//! passwordless `sudo -n` leave the same files, owners and modes as a root login would and nothing
//! owned by the user outside its home; then a host whose sudo asks for a password stops the run
//! with k3sctl's documented error before anything changes on any host.

#[path = "support/e2e.rs"]
mod e2e;

use e2e::{build_stand_in, k3sctl, kube, stamped_stand_in, text};
use lab::{Lab, LabOptions, LoginUser, SpecOptions, SudoMode};

const USER: &str = "debian";
const NEWER: &str = "v1.34.1+k3s1";

/// Owner and mode of every file k3sctl manages on `host`, and its k3s unit's start time.
fn snapshot(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(
        host,
        &format!(
            "cd / && stat -c '%n %U:%G %a' usr/local/bin/k3s etc/rancher/k3s/config.yaml \
             etc/systemd/system/{unit}.service etc/systemd/system/{unit}.service.env && \
             sha256sum usr/local/bin/k3s etc/rancher/k3s/config.yaml \
             etc/systemd/system/{unit}.service.env && \
             systemctl show -p ExecMainStartTimestampMonotonic --value {unit}"
        ),
    )
    .unwrap_or_else(|e| panic!("snapshot of {host}: {e}"))
}

fn nodes_ready(kubeconfig: &std::path::Path, hosts: &[lab::Host], version: &str) -> String {
    let (ok, nodes) = kube(kubeconfig, &["get", "nodes", "--no-headers"]);
    assert!(ok, "kubectl failed: {nodes}");
    for host in hosts {
        let cols: Vec<&str> = nodes
            .lines()
            .find(|l| l.split_whitespace().next() == Some(host.name.as_str()))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        assert_eq!(cols.get(1), Some(&"Ready"), "{}: {nodes}", host.name);
        assert_eq!(cols.get(4), Some(&version), "{}: {nodes}", host.name);
    }
    nodes
}

#[test]
fn a_sudo_user_applies_exports_and_upgrades_and_password_sudo_is_refused() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let user = LoginUser::new(USER, SudoMode::Passwordless).expect("user");
    let lab = Lab::up(&LabOptions {
        login_user: Some(user),
        ..LabOptions::new("e2e-nonroot", 2)
    })
    .expect("lab boots");
    let hosts = lab.hosts();
    let (server, agent) = (&hosts[0], &hosts[1]);
    let spec = lab.dir().join("cluster.yaml");
    lab.write_spec(&spec, &SpecOptions::default())
        .expect("spec written");
    let spec_text = fs_err::read_to_string(&spec).expect("spec");
    assert!(spec_text.contains(&format!("user: {USER}")), "{spec_text}");
    let spec_arg = spec.to_string_lossy().into_owned();
    assert_eq!(
        lab.exec(
            &server.name,
            &format!("sudo -u {USER} sudo -n true && echo ok")
        )
        .expect("sudo -n")
        .trim(),
        "ok"
    );

    // apply as the user: files owned by root with the modes a root login gets.
    let applied = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(applied.status.success(), "apply:\n{}", text(&applied));
    let kubeconfig = lab.dir().join("kubeconfig.yaml");
    nodes_ready(&kubeconfig, &hosts, lab::DEFAULT_K3S_VERSION);
    for (host, unit) in [(server, "k3s"), (agent, "k3s-agent")] {
        let snap = snapshot(&lab, &host.name, unit);
        for want in [
            "usr/local/bin/k3s root:root 755".to_string(),
            "etc/rancher/k3s/config.yaml root:root 600".to_string(),
            format!("etc/systemd/system/{unit}.service root:root 644"),
            format!("etc/systemd/system/{unit}.service.env root:root 600"),
        ] {
            assert!(
                snap.contains(&want),
                "{}: want {want} in\n{snap}",
                host.name
            );
        }
        let strays = lab
            .exec(
                &host.name,
                &format!(
                    "find / \\( -path /proc -o -path /sys -o -path /dev -o -path /home/{USER} \
                     -o -path /run/user \\) -prune -o -user {USER} -print 2>/dev/null; true"
                ),
            )
            .expect("find");
        assert_eq!(strays.trim(), "", "{}: files owned by {USER}", host.name);
    }
    let token_mode = lab
        .exec(
            &server.name,
            "stat -c '%U %a' /var/lib/rancher/k3s/server/token",
        )
        .expect("stat token");
    assert_eq!(token_mode.trim(), "root 600");

    // kubeconfig as the user: the admin kubeconfig is read through sudo.
    let printed = k3sctl(&["kubeconfig", "-c", &spec_arg, "--stdout"]);
    let printed_text = String::from_utf8_lossy(&printed.stdout).to_string();
    assert!(printed.status.success(), "kubeconfig:\n{}", text(&printed));
    assert!(
        printed_text.contains(&format!("https://{}:6443", server.address)),
        "{printed_text}"
    );
    let mode = fs_err::metadata(&kubeconfig)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "exported kubeconfig mode");

    // upgrade as the user (airgap binary), then the spec names the new version.
    let newer = stamped_stand_in(lab.dir(), NEWER);
    let newer_arg = newer.to_string_lossy().into_owned();
    let upgraded = k3sctl(&[
        "upgrade", "-c", &spec_arg, "--binary", &newer_arg, "--to", NEWER, "--yes",
    ]);
    assert!(upgraded.status.success(), "upgrade:\n{}", text(&upgraded));
    nodes_ready(&kubeconfig, &hosts, NEWER);
    lab.write_spec(
        &spec,
        &SpecOptions {
            k3s_binary: Some(newer.clone()),
            k3s_version: Some(NEWER.into()),
            ..SpecOptions::default()
        },
    )
    .expect("spec at the new version");
    for (host, unit) in [(server, "k3s"), (agent, "k3s-agent")] {
        let snap = snapshot(&lab, &host.name, unit);
        assert!(
            snap.contains("usr/local/bin/k3s root:root 755"),
            "{}: {snap}",
            host.name
        );
    }
    let noop = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(
        noop.status.success() && text(&noop).contains("Nothing to do"),
        "apply after the upgrade:\n{}",
        text(&noop)
    );

    // The agent's sudo now asks for a password: the run stops with the documented error, and
    // no host changed (files, owners, modes, service start times).
    let before: Vec<String> = [(server, "k3s"), (agent, "k3s-agent")]
        .iter()
        .map(|(h, u)| snapshot(&lab, &h.name, u))
        .collect();
    lab.set_sudo(&agent.name, SudoMode::Password)
        .expect("password sudo");
    let refused = k3sctl(&["apply", "-c", &spec_arg]);
    let refused_text = text(&refused);
    assert!(!refused.status.success(), "apply went on:\n{refused_text}");
    assert!(
        refused_text.contains(&format!(
            "{}: sudo asks for a password for this user",
            agent.name
        )),
        "{refused_text}"
    );
    assert!(refused_text.contains("NOPASSWD"), "{refused_text}");
    let after: Vec<String> = [(server, "k3s"), (agent, "k3s-agent")]
        .iter()
        .map(|(h, u)| snapshot(&lab, &h.name, u))
        .collect();
    assert_eq!(before, after, "a host changed although the run was refused");
}
