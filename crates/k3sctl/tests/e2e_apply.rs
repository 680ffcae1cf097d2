//! End to end on the lab with the K3s stand-in: `k3sctl apply -c <spec from the lab>` on one
//! server and two agents gives a cluster that Debian's kubectl sees Ready through the exported
//! kubeconfig; a second apply changes nothing and restarts nothing; the token leaks nowhere.

use std::process::Command;

#[path = "support/e2e.rs"]
mod e2e;

use e2e::{build_stand_in, k3sctl, kubectl, text};
use lab::{Lab, SpecOptions};

fn main_pid_start(lab: &Lab, host: &str, unit: &str) -> String {
    lab.exec(
        host,
        &format!("systemctl show -p ExecMainStartTimestampMonotonic --value {unit}"),
    )
    .expect("systemctl show")
    .trim()
    .to_string()
}

#[test]
fn apply_installs_joins_exports_and_a_second_apply_changes_nothing() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let mut lab = Lab::boot("e2e-apply", 3).expect("lab boots");
    let hosts = lab.hosts();
    let (server, agents) = (&hosts[0], &hosts[1..]);
    let spec = lab.dir().join("cluster.yaml");
    lab.write_spec(&spec, &SpecOptions::default())
        .expect("spec written");
    let spec_arg = spec.to_string_lossy().into_owned();

    // The join endpoint silently unreachable from one agent (the seed's "master IP drift: joins
    // stall") is reported by preflight before anything changes on any host.
    let cut_off = &agents[1].name;
    lab.partition(cut_off, &[&server.name]).expect("partition");
    let refused = k3sctl(&["apply", "-c", &spec_arg]);
    let refused_text = text(&refused);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "apply with the join endpoint unreachable from {cut_off}:\n{refused_text}"
    );
    assert!(
        refused_text.contains(cut_off.as_str())
            && refused_text.contains(&format!("https://{}:6443", server.address)),
        "preflight does not name the host and the endpoint:\n{refused_text}"
    );
    for host in &hosts {
        let left = lab
            .exec(
                &host.name,
                "ls -d /usr/local/bin/k3s /etc/rancher/k3s /etc/systemd/system/k3s*.service \
                 2>/dev/null | wc -l",
            )
            .expect("look for k3s files");
        assert_eq!(left.trim(), "0", "preflight left files on {}", host.name);
    }
    lab.heal(Some(cut_off)).expect("heal");

    let first = k3sctl(&["apply", "-c", &spec_arg]);
    let first_text = text(&first);
    assert!(first.status.success(), "first apply failed:\n{first_text}");

    // The cluster as an independent client sees it, through the exported kubeconfig.
    let kubeconfig = lab.dir().join("kubeconfig.yaml");
    let mode = std::fs::metadata(&kubeconfig)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "exported kubeconfig mode");
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "nodes", "--no-headers"])
        .output()
        .expect("kubectl runs");
    let nodes = text(&out);
    assert!(out.status.success(), "kubectl failed: {nodes}");
    for host in &hosts {
        let line = nodes
            .lines()
            .find(|l| l.split_whitespace().next() == Some(host.name.as_str()));
        let status = line.and_then(|l| l.split_whitespace().nth(1));
        assert_eq!(status, Some("Ready"), "node {} in:\n{nodes}", host.name);
    }

    // The files on the hosts are what the spec says.
    for agent in agents {
        let config = lab
            .exec(&agent.name, "cat /etc/rancher/k3s/config.yaml")
            .expect("config.yaml");
        assert!(
            config.contains(&format!("node-name: {}", agent.name)),
            "{config}"
        );
        // The join URL is given once: K3S_URL in the env file, as the official installer does.
        assert!(
            !config.contains("server:"),
            "join URL in config.yaml: {config}"
        );
        assert!(!config.contains("token"), "token in config.yaml: {config}");
        let env = lab
            .exec(&agent.name, "cat /etc/systemd/system/k3s-agent.service.env")
            .expect("env file");
        assert!(
            env.contains(&format!("K3S_URL=\"https://{}:6443\"", server.address)),
            "no K3S_URL in the env file"
        );
        let env_mode = lab
            .exec(
                &agent.name,
                "stat -c %a /etc/systemd/system/k3s-agent.service.env",
            )
            .expect("stat");
        assert_eq!(env_mode.trim(), "600");
    }

    // The join token appears in no output and no local file k3sctl wrote.
    let token = lab
        .exec(&server.name, "cat /var/lib/rancher/k3s/server/token")
        .expect("token");
    let password = token
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(password.len() >= 8, "token read: {token}");
    let exported = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    for (what, body) in [("apply output", &first_text), ("kubeconfig", &exported)] {
        assert!(!body.contains(&password), "join token in {what}");
    }

    // A second apply: nothing to do, no restart; plan agrees.
    let starts: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| main_pid_start(&lab, &h.name, if i == 0 { "k3s" } else { "k3s-agent" }))
        .collect();
    let second = k3sctl(&["apply", "-c", &spec_arg]);
    let second_text = text(&second);
    assert!(
        second.status.success(),
        "second apply failed:\n{second_text}"
    );
    assert!(
        second_text.contains("Nothing to do"),
        "second apply did something:\n{second_text}"
    );
    let after: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| main_pid_start(&lab, &h.name, if i == 0 { "k3s" } else { "k3s-agent" }))
        .collect();
    assert_eq!(starts, after, "a service restarted during the no-op apply");
    let plan = k3sctl(&["plan", "-c", &spec_arg, "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after apply:\n{}",
        text(&plan)
    );
    assert!(!text(&plan).contains(&password));
}
