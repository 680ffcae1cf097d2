//! Helpers shared by the end-to-end tests on the lab: running k3sctl, Debian's kubectl 1.20
//! as the referee, and the K3s stand-in next to the test binaries where the lab looks for it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the k3sctl binary under test with `args`, confirming as `--yes` does
/// (`K3SCTL_YES=1`): tests run without a terminal. The confirmation itself is tested on a
/// pseudo-terminal in e2e_apply_changes.
#[allow(dead_code)]
pub fn k3sctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env("K3SCTL_YES", "1")
        .args(args)
        .output()
        .expect("k3sctl runs")
}

/// Runs k3sctl as a script without a terminal does: no `--yes`, no `K3SCTL_YES`, stdin
/// closed, so a command that needs a confirmation must refuse.
#[allow(dead_code)]
pub fn k3sctl_unconfirmed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env_remove("K3SCTL_YES")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("k3sctl runs")
}

/// stdout and stderr of a finished command as one text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs kubectl (10 s request timeout) against `kubeconfig`: whether it succeeded, and its
/// output.
#[allow(dead_code)]
pub fn kube(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "10s"])
        .args(args)
        .output()
        .expect("kubectl runs");
    (out.status.success(), text(&out))
}

/// Debian's kubectl 1.20: `K3SCTL_KUBECTL`, else what scripts/ensure-kubectl.sh prints.
pub fn kubectl() -> PathBuf {
    if let Some(path) = std::env::var_os("K3SCTL_KUBECTL") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-kubectl.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("ensure-kubectl.sh runs");
    assert!(
        out.status.success(),
        "ensure-kubectl.sh failed: {}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The stand-in stamped with `version` (`k3s --version` says it), written to
/// `<dir>/k3s-<version>`: the binary an upgrade to `version` installs.
#[allow(dead_code)]
pub fn stamped_stand_in(dir: &Path, version: &str) -> PathBuf {
    let out = dir.join(format!("k3s-{version}"));
    let stamped = Command::new(lab::find_stand_in().expect("stand-in"))
        .args(["stamp", "--version", version, "-o"])
        .arg(&out)
        .output()
        .expect("stamp");
    assert!(stamped.status.success(), "stamp: {}", text(&stamped));
    out
}

/// Builds the stand-in next to the test binaries, where the lab looks for it, unless it is
/// already there.
pub fn build_stand_in() {
    let exe = std::env::current_exe().expect("test binary path");
    if exe
        .ancestors()
        .skip(1)
        .take(2)
        .any(|dir| dir.join("k3s-sim").is_file())
    {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "k3s-sim"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p k3s-sim failed");
}
