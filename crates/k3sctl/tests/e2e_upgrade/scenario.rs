//! The lab, the release site, the spec and the commands the upgrade scenarios share.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::release_site::ReleaseSite;
use super::watcher::kubectl_json;
use k3sctl::ops::kube_api::TunnelConnector;

pub const V133_4: &str = "v1.33.4+k3s1";
pub const V133: &str = "v1.33.5+k3s1";
pub const V134_1: &str = "v1.34.1+k3s1";
pub const V134_2: &str = "v1.34.2+k3s1";
pub const V134_3: &str = "v1.34.3+k3s1";
pub const V134_4: &str = "v1.34.4+k3s1";
pub const V134_5: &str = "v1.34.5+k3s1";

/// A Deployment `name` of `replicas` pods (`image`, on `node` when given) with a
/// PodDisruptionBudget keeping `min_available` of them: the workload drains must respect.
pub fn budgeted_deployment(
    name: &str,
    image: &str,
    replicas: u32,
    min_available: u32,
    node: Option<&str>,
) -> String {
    let node_selector = node
        .map(|n| format!("      nodeSelector: {{kubernetes.io/hostname: {n}}}\n"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
{node_selector}      containers: [{{name: {name}, image: {image}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}, namespace: default}}
spec:
  minAvailable: {min_available}
  selector: {{matchLabels: {{app: {name}}}}}
"#
    )
}

/// One command's result.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    /// stdout and stderr together.
    pub text: String,
}

impl Out {
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A `k3sctl upgrade` running in the background.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Waits (up to `limit`) for a progress line containing every one of `patterns`; returns it.
    pub fn wait_for(&mut self, patterns: &[&str], limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if patterns.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {patterns:?} within {limit:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the end; stdout, and stderr with the lines already read.
    pub fn finish(mut self) -> Out {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut stdout).expect("read stdout");
        }
        let status = self.child.wait().expect("wait k3sctl");
        self.seen.extend(self.lines.iter());
        Out {
            ok: status.success(),
            text: format!("{stdout}\n{}", self.seen.join("\n")),
            stdout,
        }
    }
}

pub struct Scenario {
    lab: lab::Lab,
    pub hosts: Vec<String>,
    /// How many of the first hosts are servers.
    servers: usize,
    pub site: ReleaseSite,
    dir: tempfile::TempDir,
    pub spec: PathBuf,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    sim: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("K3SCTL_KUBECTL") {
        return PathBuf::from(p);
    }
    let out = Command::new(workspace().join("scripts/ensure-kubectl.sh"))
        .output()
        .expect("run scripts/ensure-kubectl.sh");
    assert!(out.status.success(), "ensure-kubectl.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The k3s-sim stand-in next to the test binary, built when missing.
fn stand_in() -> PathBuf {
    if let Ok(p) = lab::find_stand_in() {
        return p;
    }
    let exe = std::env::current_exe().expect("test exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target dir above target/debug/deps")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "k3s-sim"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(workspace())
        .status()
        .expect("cargo build -p k3s-sim");
    assert!(status.success());
    lab::find_stand_in().expect("k3s-sim after building it")
}

impl Scenario {
    pub fn boot(name: &str, hosts: u8) -> Self {
        Self::boot_with_servers(name, hosts, 1)
    }

    /// A lab whose first `servers` hosts are servers (embedded etcd when more than one).
    pub fn boot_with_servers(name: &str, hosts: u8, servers: usize) -> Self {
        let sim = stand_in();
        let dir = tempfile::tempdir().expect("tempdir");
        let site = ReleaseSite::start(dir.path().join("releases"));
        let lab = lab::Lab::boot(name, hosts).expect("boot lab");
        let s = Self {
            hosts: lab.hosts().into_iter().map(|h| h.name).collect(),
            servers,
            lab,
            site,
            spec: dir.path().join("cluster.yaml"),
            kubeconfig: dir.path().join("kubeconfig"),
            kubectl: kubectl_path(),
            sim,
            dir,
        };
        for v in [V133_4, V133, super::scenario::V134_1, V134_2, V134_3] {
            s.good_release(v);
        }
        s.write_spec(V133, "disableEviction: false");
        s
    }

    /// The lab (the HA scenarios run etcdctl and systemctl on its hosts).
    #[allow(dead_code)]
    pub fn lab(&self) -> &lab::Lab {
        &self.lab
    }

    /// Writes the spec: download mode from the local site, short timeouts.
    pub fn write_spec(&self, version: &str, extra: &str) {
        let lab = &self.lab;
        let hosts: String = lab
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "    - {{name: {}, address: {}, role: {}}}\n",
                    h.name,
                    h.address,
                    if i < self.servers { "server" } else { "agent" }
                )
            })
            .collect();
        let text = format!(
            "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  \
             hostDefaults:\n    ssh: {{user: root, identityFile: {id}, configFile: {cfg}, \
             knownHostsFile: {kh}}}\n  hosts:\n{hosts}  k3s:\n    version: {version}\n    \
             channelUrl: {channels}\n    binary: {{url: \"{url}\", sha256Url: \"{sha}\"}}\n  \
             kubeconfigs:\n    - {{name: lab, path: {kc}}}\n  upgrade:\n    drainTimeout: 15s\n    \
             nodeReadyTimeout: 60s\n    {extra}\n",
            name = lab.name(),
            id = lab.identity().display(),
            cfg = lab.ssh_config().display(),
            kh = lab.known_hosts().display(),
            channels = self.site.channel_url(),
            url = self.site.binary_template(),
            sha = self.site.sha256_template(),
            kc = self.kubeconfig.display(),
        );
        fs_err::write(&self.spec, text).expect("write spec");
    }

    /// A stamped stand-in release with its checksum listing.
    pub fn good_release(&self, version: &str) {
        let dir = self.site.root.join(version);
        let status = Command::new(&self.sim)
            .args(["release", "--version", version, "--dir"])
            .arg(&dir)
            .status()
            .expect("k3s-sim release");
        assert!(status.success());
    }

    /// A stand-in binary stamped with `version`, as an airgap file.
    pub fn stamp(&self, version: &str) -> PathBuf {
        let out = self.dir.path().join(format!("airgap-{version}"));
        let status = Command::new(&self.sim)
            .args(["stamp", "--version", version, "-o"])
            .arg(&out)
            .status()
            .expect("k3s-sim stamp");
        assert!(status.success());
        out
    }

    /// A release whose binary cannot start (prints a fatal line and exits 1).
    pub fn broken_release(&self, version: &str) {
        let dir = self.site.root.join(version);
        fs_err::create_dir_all(&dir).expect("release dir");
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'k3s version {version} (broken)'; \
             echo 'go version go1.24'; exit 0; fi\necho 'level=fatal msg=\"starting kubernetes: \
             release is broken (test)\"' >&2\nexit 1\n"
        );
        fs_err::write(dir.join("k3s"), &script).expect("write broken k3s");
        let sha = hex::encode(Sha256::digest(script.as_bytes()));
        fs_err::write(dir.join("sha256sum-amd64.txt"), format!("{sha}  k3s\n")).expect("sha");
    }

    /// Installs the cluster at v1.33 with `apply`.
    pub fn apply_initial(&self) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let reporter = Arc::new(k3sctl::run::MemoryReporter::default());
        let report = runtime
            .block_on(k3sctl::ops::apply(
                &self.spec,
                k3sctl::ops::ApplyOptions::default(),
                TunnelConnector::shared,
                reporter.clone(),
            ))
            .expect("apply");
        assert!(report.success(), "apply failed: {:?}", report.summary);
        self.wait(Duration::from_secs(60), "4 Ready nodes", || {
            self.ready_nodes() == self.hosts.len()
        });
    }

    /// `k3sctl -c SPEC COMMAND` with this scenario's cache, agreeing to confirmations.
    fn command(&self, command: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_k3sctl"));
        cmd.env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .env("K3SCTL_YES", "1")
            .arg("-c")
            .arg(&self.spec)
            .arg(command);
        cmd
    }

    fn k3sctl(&self) -> Command {
        self.command("upgrade")
    }

    /// Runs `k3sctl check -o json`: whether it exited 0, and its report.
    pub fn check(&self) -> (bool, serde_json::Value) {
        let out = self
            .command("check")
            .args(["-o", "json"])
            .output()
            .expect("run k3sctl check");
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "check -o json is not JSON ({e}):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), report)
    }

    /// Runs `k3sctl etcd snapshot ARGS -o json`, which must succeed: its JSON and its stderr.
    #[allow(dead_code)] // e2e_ha_upgrade's
    pub fn etcd_snapshot(&self, args: &[&str]) -> (serde_json::Value, String) {
        let out = self
            .command("etcd")
            .arg("snapshot")
            .args(args)
            .args(["-o", "json"])
            .output()
            .expect("run k3sctl etcd snapshot");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "k3sctl etcd snapshot {}:\n{stdout}{stderr}",
            args.join(" ")
        );
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("etcd snapshot -o json is not JSON ({e}):\n{stdout}"));
        (json, stderr)
    }

    /// Runs `k3sctl upgrade ARGS`.
    pub fn upgrade(&self, args: &[&str]) -> Out {
        let out = self.k3sctl().args(args).output().expect("run k3sctl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("$ k3sctl upgrade {}\n{stderr}{stdout}", args.join(" "));
        Out {
            ok: out.status.success(),
            text: format!("{stdout}\n{stderr}"),
            stdout,
        }
    }

    /// Runs `k3sctl upgrade ARGS` as a script without a terminal would: no `--yes`, stdin
    /// closed (the confirmation cannot be answered).
    pub fn upgrade_unconfirmed(&self, args: &[&str]) -> Out {
        let out = self
            .k3sctl()
            .env_remove("K3SCTL_YES")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run k3sctl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Out {
            ok: out.status.success(),
            text: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
            stdout,
        }
    }

    /// Starts `k3sctl upgrade ARGS` in the background; its progress lines are read as they come.
    pub fn spawn_upgrade(&self, args: &[&str]) -> Running {
        let mut child = self
            .k3sctl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn k3sctl");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("(running) {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Starts `k3sctl upgrade ARGS` and SIGKILLs it once its progress shows `pattern`.
    pub fn kill_upgrade_after(&self, args: &[&str], pattern: &str) {
        let mut child = self
            .k3sctl()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn k3sctl");
        let stderr = child.stderr.take().expect("stderr");
        let mut seen = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("(to be killed) {line}");
            if line.contains(pattern) {
                seen = true;
                break;
            }
        }
        child.kill().expect("SIGKILL k3sctl");
        let _ = child.wait();
        assert!(seen, "k3sctl ended before showing `{pattern}`");
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_apply(&self, yaml: &str) {
        let file = self.dir.path().join("objects.yaml");
        fs_err::write(&file, yaml).expect("write objects");
        let path = file.display().to_string();
        self.kubectl(&["apply", "--validate=false", "-f", &path]);
    }

    fn get(&self, args: &[&str]) -> serde_json::Value {
        kubectl_json(&self.kubectl, &self.kubeconfig, args).unwrap_or_default()
    }

    fn nodes(&self) -> Vec<serde_json::Value> {
        self.get(&["get", "nodes"])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn ready_nodes(&self) -> usize {
        self.nodes()
            .iter()
            .filter(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count()
    }

    /// kubeletVersion per node.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.nodes()
            .iter()
            .map(|n| {
                (
                    n["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    n["status"]["nodeInfo"]["kubeletVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    }

    /// Cordoned nodes, sorted.
    pub fn unschedulable(&self) -> Vec<String> {
        self.nodes()
            .iter()
            .filter(|n| n["spec"]["unschedulable"].as_bool() == Some(true))
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Nodes carrying k3sctl's cordon annotation.
    pub fn k3sctl_cordoned(&self) -> Vec<String> {
        self.nodes()
            .iter()
            .filter(|n| {
                n["metadata"]["annotations"]
                    .get("k3sctl.io/cordoned-for")
                    .is_some()
            })
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    pub fn pod_uids(&self, label: &str) -> std::collections::BTreeSet<String> {
        self.get(&["get", "pods", "-l", label])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .collect()
    }

    pub fn wait_ready_replicas(&self, deployment: &str, want: i64) {
        self.wait(Duration::from_secs(60), deployment, || {
            self.get(&["get", "deployment", deployment])["status"]["readyReplicas"].as_i64()
                == Some(want)
        });
    }

    fn wait(&self, limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
