//! K3s's other faces on a local server and agent: `k3s kubectl` and the `kubectl` link with K3s's
//! default kubeconfig, `crictl` / `ctr` listing the node's pods, `k3s completion bash` in a real
//! bash, and `k3s check-config` verdicts counted into its exit code.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Cluster, Node, server_token, wait_for};

fn face(node: &Node, link_dir: &Path, prog: &str, args: &[&str], kubectl: &Path) -> Output {
    let bin = if prog == "k3s" {
        node.binary.clone()
    } else {
        link_dir.join(prog)
    };
    Command::new(bin)
        .args(args)
        .env("K3S_SIM_ROOT", &node.root)
        .env("K3S_SIM_KUBECTL", kubectl)
        .env_remove("KUBECONFIG")
        .env("HOME", &node.root)
        .output()
        .expect("run face")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn kubectl_crictl_and_ctr_answer_from_the_node() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &[]);
    s.start();
    let kc = c.wait_ready(&mut s);
    let mut a1 = c.agent("a1", "v1.33.5+k3s1", &server_token(&s), &[]);
    a1.start();
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(30));
    // The install script's links, as /usr/local/bin/{kubectl,crictl,ctr} -> k3s.
    let links = c.dir.path().join("links");
    fs_err::create_dir_all(&links).expect("mkdir");
    for name in ["kubectl", "crictl", "ctr"] {
        fs_err::os::unix::fs::symlink(&s.binary, links.join(name)).expect("link");
    }

    // kubectl with K3s's default kubeconfig, through the subcommand and the link.
    for prog in ["k3s", "kubectl"] {
        let args: &[&str] = if prog == "k3s" {
            &["kubectl", "get", "nodes", "--no-headers"]
        } else {
            &["get", "nodes", "--no-headers"]
        };
        let nodes = ok(&face(&s, &links, prog, args, &c.kubectl), prog);
        assert!(nodes.contains("s1") && nodes.contains("a1"), "{nodes}");
    }
    // KUBECONFIG, when set, wins over K3s's default.
    let mut cmd = Command::new(links.join("kubectl"));
    let other = cmd
        .args(["get", "nodes"])
        .env("K3S_SIM_ROOT", &s.root)
        .env("K3S_SIM_KUBECTL", &c.kubectl)
        .env("KUBECONFIG", c.dir.path().join("absent.yaml"))
        .output()
        .expect("kubectl");
    assert!(
        !ok_or_stdout(&other).contains("a1"),
        "KUBECONFIG was ignored"
    );
    // On an agent there is no /etc/rancher/k3s/k3s.yaml: K3s leaves kubectl to its own default.
    let agent_kubectl = face(&a1, &links, "kubectl", &["get", "nodes"], &c.kubectl);
    assert!(!agent_kubectl.status.success());

    // crictl/ctr list what the API places on each node once its pods run.
    for node in [&s, &a1] {
        let running = wait_for(
            &format!("pods of {} running", node.name),
            Duration::from_secs(30),
            || {
                let out = c.kubectl_ok(
                    &kc,
                    &[
                        "get",
                        "pods",
                        "-A",
                        "--field-selector",
                        &format!("spec.nodeName={}", node.name),
                        "-o",
                        "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}",
                    ],
                );
                let rows: Vec<(String, String)> = out
                    .lines()
                    .filter_map(|l| l.split_once(' '))
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                (!rows.is_empty() && rows.iter().all(|(_, p)| p == "Running")).then_some(rows)
            },
        );
        for (prog, args) in [("crictl", vec!["pods"]), ("k3s", vec!["crictl", "pods"])] {
            let pods = ok(&face(node, &links, prog, &args, &c.kubectl), "crictl pods");
            let mut lines = pods.lines();
            assert!(
                lines.next().is_some_and(|h| h.starts_with("POD ID")),
                "{pods}"
            );
            assert_eq!(lines.count(), running.len(), "{pods}");
            for (name, _) in &running {
                assert!(pods.contains(name.as_str()), "{name} missing: {pods}");
            }
        }
        let ps = ok(
            &face(node, &links, "crictl", &["ps"], &c.kubectl),
            "crictl ps",
        );
        assert!(ps.starts_with("CONTAINER "), "{ps}");
        assert!(ps.lines().skip(1).all(|l| l.contains("Running")), "{ps}");
        assert!(
            ps.lines().count() > running.len(),
            "one or more containers per pod: {ps}"
        );
        let quiet = ok(
            &face(node, &links, "crictl", &["ps", "-q"], &c.kubectl),
            "crictl ps -q",
        );
        assert_eq!(quiet.lines().count(), ps.lines().count() - 1);
        let images = ok(
            &face(node, &links, "crictl", &["images"], &c.kubectl),
            "crictl images",
        );
        assert!(
            images.contains("docker.io/rancher/mirrored-pause"),
            "{images}"
        );
        let ctr_c = ok(
            &face(node, &links, "ctr", &["containers", "list"], &c.kubectl),
            "ctr c ls",
        );
        // App containers plus one pause container per running pod.
        assert_eq!(
            ctr_c.lines().count() - 1,
            quiet.lines().count() + running.len(),
            "{ctr_c}"
        );
        let ctr_i = ok(
            &face(
                node,
                &links,
                "k3s",
                &["ctr", "images", "ls", "-q"],
                &c.kubectl,
            ),
            "ctr i ls",
        );
        assert_eq!(
            ctr_i.lines().count(),
            images.lines().count() - 1,
            "{ctr_i}\n{images}"
        );
        let other_ns = ok(
            &face(
                node,
                &links,
                "ctr",
                &["-n", "default", "containers", "ls"],
                &c.kubectl,
            ),
            "ctr -n default",
        );
        assert_eq!(other_ns.lines().count(), 1, "only the header: {other_ns}");
    }
    let version = ok(
        &face(&a1, &links, "crictl", &["version"], &c.kubectl),
        "crictl version",
    );
    assert!(version.contains("RuntimeName:  containerd"), "{version}");
    let ctr_version = ok(
        &face(&a1, &links, "ctr", &["version"], &c.kubectl),
        "ctr version",
    );
    assert!(ctr_version.contains("Server:"), "{ctr_version}");
    let bad = face(&a1, &links, "crictl", &["pods", "-a"], &c.kubectl);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("flag provided but not defined: -a"));
    s.stop();
    a1.stop();
}

fn ok_or_stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn completion_script_completes_in_bash() {
    let c = Cluster::new();
    let bin_dir = c.dir.path().join("bin-k3s");
    fs_err::create_dir_all(&bin_dir).expect("mkdir");
    fs_err::os::unix::fs::symlink(common::sim_binary(), bin_dir.join("k3s")).expect("link");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = r#"source <(k3s completion bash) && complete -p k3s &&
COMP_WORDS=(k3s cer); COMP_CWORD=1; _cli_bash_autocomplete; echo "top=${COMPREPLY[*]}"
COMP_WORDS=(k3s certificate r); COMP_CWORD=2; _cli_bash_autocomplete; echo "sub=${COMPREPLY[*]}"
COMP_WORDS=(k3s agent --node-l); COMP_CWORD=2; _cli_bash_autocomplete; echo "flag=${COMPREPLY[*]}""#;
    let out = Command::new("bash")
        .args(["-c", script])
        .env("PATH", &path)
        .output()
        .expect("bash");
    let text = ok(&out, "bash completion");
    assert!(
        text.contains(
            "complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete k3s"
        ),
        "{text}"
    );
    assert!(text.contains("top=certificate\n"), "{text}");
    assert!(text.contains("sub=rotate\n"), "{text}");
    assert!(text.contains("flag=--node-label\n"), "{text}");
    let zsh = Command::new(common::sim_binary())
        .args(["completion", "zsh"])
        .output()
        .expect("zsh");
    assert!(ok(&zsh, "zsh").starts_with("#compdef k3s"));
    let none = Command::new(common::sim_binary())
        .args(["completion"])
        .output()
        .expect("none");
    assert!(!none.status.success());
}

#[test]
fn check_config_counts_its_failures_into_the_exit_code() {
    let out = Command::new(common::sim_binary())
        .arg("check-config")
        .env("NO_COLOR", "1")
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for heading in [
        "System:",
        "Limits:",
        "Generally Necessary:",
        "Optional Features:",
    ] {
        assert!(
            text.contains(&format!("\n{heading}\n")),
            "{heading}: {text}"
        );
    }
    let fails = text.lines().filter(|l| l.ends_with("(fail)")).count();
    let status = text.lines().last().unwrap_or_default();
    let code = out.status.code().expect("exit code");
    if text.contains("info: reading kernel config from") {
        // Every failed verdict counts, STATUS included.
        if code == 0 {
            assert_eq!(status, "STATUS: pass", "{text}");
        } else {
            assert_eq!(status, format!("STATUS: {code} (fail)"), "{text}");
            assert_eq!(fails, code as usize + 1, "{text}");
        }
    } else {
        assert_ne!(code, 0, "no kernel config is a failure: {text}");
    }
    // A kernel config named explicitly that lacks everything fails every necessary option.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config");
    fs_err::write(&cfg, "CONFIG_NAMESPACES=y\n").expect("write");
    let bare = Command::new(common::sim_binary())
        .args(["check-config"])
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .output()
        .expect("check-config");
    let bare_text = String::from_utf8_lossy(&bare.stdout).to_string();
    assert!(
        bare_text.contains("- CONFIG_NAMESPACES: enabled\n"),
        "{bare_text}"
    );
    assert!(
        bare_text.contains("- CONFIG_VETH: missing (fail)\n"),
        "{bare_text}"
    );
    assert!(bare.status.code().expect("code") >= 29, "{bare_text}");
}
