//! The binary: version lines, stamping, release layout, k3s-like flag errors.

mod common;

use std::process::Command;

use common::sim_binary;

fn run(bin: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin)
        .args(args)
        .env_remove("K3S_SIM_ROOT")
        .output()
        .expect("run")
}

#[test]
fn version_prints_two_k3s_lines_with_the_stamped_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&sim_binary(), &["--version"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("k3s version v1.33.5+k3s1 ("), "{text}");
    assert!(lines[1].starts_with("go version go1."), "{text}");

    let stamped = dir.path().join("k3s");
    let st = run(
        &sim_binary(),
        &[
            "stamp",
            "--version",
            "v1.34.1+k3s2",
            "-o",
            stamped.to_str().expect("utf8"),
        ],
    );
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let text = String::from_utf8_lossy(&run(&stamped, &["--version"]).stdout).to_string();
    assert!(text.starts_with("k3s version v1.34.1+k3s2 ("), "{text}");

    // A stamped copy can be stamped again (the slot is found in any stamped binary).
    let again = dir.path().join("k3s-again");
    let st = Command::new(&stamped)
        .args(["--version"])
        .output()
        .expect("run");
    assert!(st.status.success());
    let st = run(
        &sim_binary(),
        &[
            "stamp",
            "--from",
            stamped.to_str().expect("utf8"),
            "--version",
            "v1.35.0-rc1+k3s1",
            "-o",
            again.to_str().expect("utf8"),
        ],
    );
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run(&again, &["--version"]).stdout)
            .starts_with("k3s version v1.35.0-rc1+k3s1 (")
    );

    let bad = run(
        &sim_binary(),
        &[
            "stamp",
            "--version",
            "1.2.3",
            "-o",
            again.to_str().expect("utf8"),
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid k3s version"));
}

#[test]
fn release_dir_has_binary_and_checksums() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rel = dir.path().join("v1.33.6+k3s1");
    let out = run(
        &sim_binary(),
        &[
            "release",
            "--version",
            "v1.33.6+k3s1",
            "--dir",
            rel.to_str().expect("utf8"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sums = fs_err::read_to_string(rel.join("sha256sum-amd64.txt")).expect("sums");
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("sha256sum-amd64.txt")
        .current_dir(&rel)
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "{sums}");
    assert!(sums.trim_end().ends_with("  k3s"), "{sums}");
    let v = String::from_utf8_lossy(&run(&rel.join("k3s"), &["--version"]).stdout).to_string();
    assert!(v.starts_with("k3s version v1.33.6+k3s1 ("), "{v}");
    // Installed as `k3s`, the sim-only commands are not there.
    let as_k3s = run(
        &rel.join("k3s"),
        &["stamp", "--version", "v1.33.6+k3s1", "-o", "/tmp/x"],
    );
    assert!(!as_k3s.status.success());
}

#[test]
fn unknown_flags_fail_like_k3s() {
    for (args, flag) in [
        (vec!["server", "--foo"], "-foo"),
        (vec!["agent", "--cluster-init"], "-cluster-init"),
    ] {
        let out = run(&sim_binary(), &args);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "Incorrect Usage: flag provided but not defined: {flag}"
            )),
            "{err}"
        );
    }
}

#[test]
fn a_release_stamped_to_fail_reports_its_version_but_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rel = dir.path().join("v1.34.2+k3s1");
    let out = run(
        &sim_binary(),
        &[
            "release",
            "--version",
            "v1.34.2+k3s1",
            "--dir",
            rel.to_str().expect("utf8"),
            "--fail-start",
            "failed to load kernel module overlay",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k3s = rel.join("k3s");
    assert!(
        String::from_utf8_lossy(&run(&k3s, &["--version"]).stdout)
            .starts_with("k3s version v1.34.2+k3s1 (")
    );
    for role in ["server", "agent"] {
        let started = Command::new(&k3s)
            .arg(role)
            .env("K3S_SIM_ROOT", dir.path().join("root"))
            .output()
            .expect("run");
        assert_eq!(started.status.code(), Some(1), "{role}");
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(
            err.contains("level=fatal msg=\"failed to load kernel module overlay\""),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("root/var/lib/rancher").exists(),
        "a broken release touches nothing"
    );
}
