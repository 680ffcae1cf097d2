//! Helpers of the adoption tests on the lab (`e2e_adopt`, `e2e_adopt_ha`): what identifies a
//! running K3s, the plan of an adoption, and waiting for the Nodes. Each test file includes it
//! next to `support/e2e.rs`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::Lab;

use super::e2e::{k3sctl, kubectl, text};

/// What the plan says for a host whose files are taken over without a restart.
pub const ADOPT_LINE: &str = "adopt: no restart (effective configuration unchanged)";

/// What identifies a running K3s, per host: systemd's invocation and the main PID.
pub fn invocations(lab: &Lab, hosts: &[&str], units: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .zip(units)
        .map(|(h, u)| {
            lab.exec(
                h,
                &format!("systemctl show -p InvocationID -p MainPID --value {u}"),
            )
            .expect("systemctl show")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
        })
        .collect()
}

/// `plan` on hosts another tool laid out: every one of the `count` hosts is adopted, none
/// restarts. Returns what the plan printed.
pub fn plan_adopts_without_restart(spec_arg: &str, count: usize) -> String {
    let plan = k3sctl(&["plan", "-c", spec_arg]);
    assert!(plan.status.success(), "plan:\n{}", text(&plan));
    let shown = text(&plan);
    assert_eq!(shown.matches(ADOPT_LINE).count(), count, "{shown}");
    assert!(!shown.contains("> restart"), "{shown}");
    shown
}

/// Waits (90 s at most) until `count` Nodes are Ready.
pub fn wait_ready(kubeconfig: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "nodes", "--no-headers"])
            .output()
            .expect("kubectl runs");
        let ready = text(&out).lines().filter(|l| l.contains(" Ready ")).count();
        if out.status.success() && ready == count {
            return;
        }
        assert!(Instant::now() < deadline, "nodes not Ready: {}", text(&out));
        std::thread::sleep(Duration::from_millis(500));
    }
}
