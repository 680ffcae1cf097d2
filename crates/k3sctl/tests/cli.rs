//! The `k3sctl` binary: exit codes (0 ok, 1 failure, 2 usage), JSON output, stdout/stderr split,
//! NO_COLOR, and the validate / init / schema / completions / man commands.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn k3sctl() -> Command {
    let mut command = Command::cargo_bin("k3sctl").expect("binary built");
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    command
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid")
        .join(name)
}

fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

#[test]
fn validate_accepts_every_example() {
    for name in ["oci.yaml", "proxmox.yaml", "lab.yaml"] {
        let output = k3sctl()
            .arg("validate")
            .arg("-c")
            .arg(example(name))
            .output()
            .expect("runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .ends_with(": OK")
        );
    }
}

#[test]
fn validate_reports_all_errors_with_exit_1() {
    let output = k3sctl()
        .args(["validate", "-c"])
        .arg(fixture("55-all-errors-at-once.yaml"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("error: ").count(), 4, "{text}");
    assert!(text.ends_with("4 errors found\n"), "{text}");
    assert!(!text.contains('\x1b'), "NO_COLOR means no escape codes");
}

#[test]
fn validate_json_gives_errors_as_data() {
    let output = k3sctl()
        .args(["validate", "-o", "json", "-c"])
        .arg(fixture("16-unknown-key-tls-san.yaml"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let report = stdout_json(&output);
    assert_eq!(report["ok"], false);
    let error = &report["errors"][0];
    assert_eq!(error["line"], 17);
    assert_eq!(error["column"], 5);
    assert_eq!(error["message"], "unknown key `tlsSan`");
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.starts_with("did you mean `tlsSans`?"))
    );
    assert!(
        error["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("16-unknown-key-tls-san.yaml"))
    );

    let ok = k3sctl()
        .args(["validate", "-o", "json", "-c"])
        .arg(example("oci.yaml"))
        .output()
        .expect("runs");
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout_json(&ok)["ok"], true);
}

#[test]
fn missing_spec_file_is_a_located_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = k3sctl()
        .current_dir(dir.path())
        .arg("validate")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("cluster.yaml"),
        "default -c is ./cluster.yaml: {text}"
    );
    assert!(text.contains("k3sctl init"), "says what to do: {text}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["validate", "-o", "yaml"],
        &["completions", "tcsh"],
        &["-v", "-q", "schema"],
    ] {
        let output = k3sctl().args(args).output().expect("runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            output.stdout.is_empty(),
            "usage errors go to stderr: {args:?}"
        );
    }
}

#[test]
fn identity_files_resolve_relative_to_the_spec_and_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    fs_err::create_dir_all(home.join(".ssh")).expect("mkdir");
    fs_err::write(home.join(".ssh/id_ed25519"), "key").expect("write key");
    fs_err::create_dir_all(dir.path().join("specs/keys")).expect("mkdir");
    fs_err::write(dir.path().join("specs/keys/pve"), "key").expect("write key");
    let spec = "\
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: files}
spec:
  hostDefaults:
    ssh: {identityFile: ~/.ssh/id_ed25519}
  proxmoxHosts:
    - {name: pve, address: 10.0.0.100, ssh: {identityFile: keys/pve}}
  hosts:
    - {name: s1, address: 10.0.0.1, role: server}
    - {name: a1, address: 10.0.0.2, role: agent, pct: {proxmoxHost: pve, vmid: 100}}
  k3s: {version: v1.34.3+k3s1}
";
    fs_err::write(dir.path().join("specs/cluster.yaml"), spec).expect("write spec");
    let run = |home: &Path| {
        k3sctl()
            .env("HOME", home)
            .current_dir(dir.path())
            .args(["validate", "-o", "json", "-c", "specs/cluster.yaml"])
            .output()
            .expect("runs")
    };
    let output = run(&home);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let output = run(&dir.path().join("elsewhere"));
    assert_eq!(output.status.code(), Some(1));
    let report = stdout_json(&output);
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(
        errors[0]["message"],
        "identity file `~/.ssh/id_ed25519` does not exist"
    );
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["column"].as_u64()),
        (Some(6), Some(25))
    );
}

#[test]
fn init_writes_a_starter_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = k3sctl()
        .current_dir(dir.path())
        .args(["init", "--name", "edge"])
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "cluster.yaml"
    );
    let written = fs_err::read_to_string(dir.path().join("cluster.yaml")).expect("written");
    assert!(
        written.contains("name: edge") && written.contains("# "),
        "commented starter"
    );

    let output = k3sctl()
        .current_dir(dir.path())
        .arg("validate")
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    fs_err::write(dir.path().join("cluster.yaml"), "mine").expect("write");
    let output = k3sctl()
        .current_dir(dir.path())
        .arg("init")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(
        fs_err::read_to_string(dir.path().join("cluster.yaml")).expect("read"),
        "mine"
    );

    let output = k3sctl()
        .current_dir(dir.path())
        .args(["init", "--force"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    assert_ne!(
        fs_err::read_to_string(dir.path().join("cluster.yaml")).expect("read"),
        "mine"
    );
}

#[test]
fn init_from_ansible_writes_a_valid_spec_and_warns_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::write(
        dir.path().join("hosts.ini"),
        // Hosts named, not addressed: an inventory naming hosts by address makes the import
        // read each host's Node name over ssh, and a test reaches no host outside the lab.
        "[server]\nk3s-1 ansible_host=10.0.0.11\n[agent]\nk3s-2 ansible_host=10.0.0.12\n[all:vars]\nk3s_version=v1.33.5+k3s1\ntoken=s3cr3t-token\n",
    )
    .expect("write inventory");
    let output = k3sctl()
        .current_dir(dir.path())
        .args([
            "init",
            "--from-ansible",
            "hosts.ini",
            "-c",
            "imported.yaml",
            "-o",
            "json",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    assert_eq!(report["path"], "imported.yaml");
    assert!(report["warnings"].to_string().contains("`token` ignored"));
    let spec = fs_err::read_to_string(dir.path().join("imported.yaml")).expect("written");
    assert!(!spec.contains("s3cr3t-token"), "the token is never copied");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("s3cr3t-token"));

    let output = k3sctl()
        .current_dir(dir.path())
        .args(["validate", "-c", "imported.yaml"])
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn schema_is_draft_07_and_matches_the_checked_in_copy() {
    let output = k3sctl().arg("schema").output().expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let schema = stdout_json(&output);
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["definitions"]["Host"]["properties"]["address"]["description"].is_string());
    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/cluster.schema.json");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        fs_err::read_to_string(checked_in).expect("checked-in schema"),
        "run `cargo xtask schema`"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let output = k3sctl()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("_k3sctl") && script.contains("validate"));

    let output = k3sctl().arg("man").output().expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH k3sctl"),
        "{page:.200}"
    );
    assert!(page.contains("validate"));
}
