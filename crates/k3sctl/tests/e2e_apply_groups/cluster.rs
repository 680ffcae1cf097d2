//! The cluster under test: the lab's hosts, the spec written for them (1 server, agents in
//! groups a and b, a registry mirror, TLS SANs, two kubeconfig exports) and ways to run
//! k3sctl and kubectl against it.

use fs_err::os::unix::fs::symlink;
use std::fs::Permissions;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

pub use crate::e2e::{build_stand_in, kubectl, text};
use lab::{Lab, SpecOptions};

/// The DNS name in the server's TLS SANs.
pub const SAN_NAME: &str = "k3s.e2e-groups.example";
/// Context of the plain export.
pub const ADMIN_CONTEXT: &str = "e2e-admin";
/// Context of the export merged into `$KUBECONFIG`.
pub const OPS_CONTEXT: &str = "e2e-ops";
/// A context that was in `$KUBECONFIG` before and must survive the merge.
pub const FOREIGN_CONTEXT: &str = "elsewhere";

/// The lab, the spec file and the local files the exports write.
pub struct Cluster {
    /// The five lab hosts.
    pub lab: Lab,
    /// The spec file.
    pub spec: PathBuf,
    /// The plain export: a symlink `admin.yaml` → `k3s-public.yaml` (which does not exist
    /// before the first apply).
    pub admin: PathBuf,
    /// The merged export's own file (`k3s-private.yaml`).
    pub ops: PathBuf,
    /// `$KUBECONFIG` of every k3sctl run: a symlink `config` → [`Cluster::merged_target`].
    pub merged: PathBuf,
    /// The file behind `config`, mode 0400, holding [`FOREIGN_CONTEXT`] before the first apply.
    pub merged_target: PathBuf,
    binary_lines: String,
}

impl Cluster {
    /// Boots five hosts and prepares the local files.
    pub fn boot() -> Self {
        let lab = Lab::boot("e2e-groups", 5).expect("lab boots");
        let base = lab.dir().join("lab-spec.yaml");
        lab.write_spec(&base, &SpecOptions::default())
            .expect("lab spec");
        let base = fs_err::read_to_string(&base).expect("lab spec");
        // The `k3s:` section (version and stand-in binary) as the lab wrote it.
        let binary_lines = base
            .lines()
            .skip_while(|l| l.trim() != "k3s:")
            .take_while(|l| l.trim() != "kubeconfigs:")
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = lab.dir().to_path_buf();
        // The seeds' layout: exported files behind symlinks the user made.
        let merged_target = dir.join("user-kubeconfig.yaml");
        fs_err::write(&merged_target, foreign_kubeconfig()).expect("user kubeconfig");
        fs_err::set_permissions(&merged_target, Permissions::from_mode(0o400)).expect("chmod");
        let merged = dir.join("config");
        symlink("user-kubeconfig.yaml", &merged).expect("config symlink");
        let admin = dir.join("admin.yaml");
        symlink("k3s-public.yaml", &admin).expect("admin symlink");
        Self {
            spec: dir.join("cluster.yaml"),
            admin,
            ops: dir.join("k3s-private.yaml"),
            merged,
            merged_target,
            lab,
            binary_lines,
        }
    }

    /// Host names, server first.
    pub fn names(&self) -> Vec<String> {
        self.lab.hosts().into_iter().map(|h| h.name).collect()
    }

    /// Address of host `i`.
    pub fn address(&self, i: usize) -> String {
        self.lab.hosts()[i].address.to_string()
    }

    /// Writes the spec with the first `hosts` hosts and `mirror` as docker.io's endpoint.
    pub fn write_spec(&self, hosts: usize, mirror: &str) {
        let lab = &self.lab;
        let mut s = format!(
            "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: e2e-groups\nspec:\n  \
             hostDefaults:\n    ssh:\n      user: root\n      identityFile: {}\n      \
             configFile: {}\n      knownHostsFile: {}\n  hosts:\n",
            lab.identity().display(),
            lab.ssh_config().display(),
            lab.known_hosts().display()
        );
        for (i, h) in lab.hosts().iter().take(hosts).enumerate() {
            let (role, group) = match i {
                0 => ("server", None),
                1 | 2 => ("agent", Some("a")),
                _ => ("agent", Some("b")),
            };
            s.push_str(&format!(
                "    - name: {}\n      address: {}\n      role: {role}\n",
                h.name, h.address
            ));
            if let Some(g) = group {
                s.push_str(&format!("      group: {g}\n"));
            }
        }
        // Group a's two agents join side by side; group b keeps the default of one at a time.
        s.push_str("  groups:\n    a:\n      joinConcurrency: 2\n");
        s.push_str(&self.binary_lines);
        let server = self.address(0);
        s.push_str(&format!(
            "  cluster:\n    tlsSans: [\"{server}\", {SAN_NAME}]\n  registries:\n    mirrors:\n      \
             docker.io:\n        endpoints: [\"{mirror}\"]\n  kubeconfigs:\n    - name: admin\n      \
             path: {}\n      context: {ADMIN_CONTEXT}\n    - name: ops\n      \
             server: https://{server}:6443\n      path: {}\n      context: {OPS_CONTEXT}\n      \
             merge: true\n",
            self.admin.display(),
            self.ops.display()
        ));
        fs_err::write(&self.spec, s).expect("write spec");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_k3sctl"));
        cmd.env("K3SCTL_YES", "1")
            .args(args)
            .arg("-c")
            .arg(&self.spec)
            .env("KUBECONFIG", &self.merged);
        cmd
    }

    /// Runs k3sctl `args -c <spec>` to the end.
    pub fn k3sctl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("k3sctl runs")
    }

    /// Runs k3sctl `args -c <spec>` with `$KUBECONFIG` set to `kubeconfig`.
    pub fn k3sctl_with_kubeconfig(&self, args: &[&str], kubeconfig: &Path) -> Output {
        self.command(args)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("k3sctl runs")
    }

    /// Starts `k3sctl apply` and streams its progress lines (stderr).
    pub fn spawn_apply(&self) -> (Child, Receiver<String>) {
        let mut child = self
            .command(&["apply"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("k3sctl starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    /// Node name → STATUS column, as kubectl sees it with `args`.
    pub fn node_statuses(&self, args: &[&str]) -> Vec<(String, String)> {
        let out = Command::new(kubectl())
            .args(args)
            .args(["get", "nodes", "--no-headers"])
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
            })
            .collect()
    }

    /// Main PID of host `i`'s K3s unit.
    pub fn main_pid(&self, i: usize) -> String {
        let unit = if i == 0 { "k3s" } else { "k3s-agent" };
        self.lab
            .exec(
                &self.names()[i],
                &format!("systemctl show -p MainPID --value {unit}"),
            )
            .expect("systemctl show")
            .trim()
            .to_owned()
    }

    /// registries.yaml on host `i`.
    pub fn registries(&self, i: usize) -> String {
        self.lab
            .exec(&self.names()[i], "cat /etc/rancher/k3s/registries.yaml")
            .expect("cat registries.yaml")
    }
}

/// Waits for a progress line that satisfies `wanted`, collecting every line seen into `seen`.
pub fn wait_for_line(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    wanted: impl Fn(&str) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = wanted(&line);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// A user kubeconfig that already holds an unrelated cluster.
fn foreign_kubeconfig() -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {FOREIGN_CONTEXT}\n  cluster:\n    \
         server: https://192.0.2.1:6443\ncontexts:\n- name: {FOREIGN_CONTEXT}\n  context:\n    \
         cluster: {FOREIGN_CONTEXT}\n    user: {FOREIGN_CONTEXT}\ncurrent-context: {FOREIGN_CONTEXT}\n\
         users:\n- name: {FOREIGN_CONTEXT}\n  user:\n    token: not-a-real-token\n"
    )
}
