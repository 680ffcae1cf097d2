//! What the lifecycle scenarios share: a spec naming only some of the lab's hosts, k3sctl run
//! as a user runs it, and the referee's view of a host after an uninstall (asked over SSH,
//! independently of k3sctl's own probe).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::scenario::{Out, Scenario, V133};

/// Writes the spec with `hosts` as `(name, role)`, in that order.
pub fn write_spec(s: &Scenario, hosts: &[(&str, &str)]) {
    let lab = s.lab();
    let addresses: std::collections::BTreeMap<String, String> = lab
        .hosts()
        .into_iter()
        .map(|h| (h.name, h.address.to_string()))
        .collect();
    let list: String = hosts
        .iter()
        .map(|(name, role)| {
            format!(
                "    - {{name: {name}, address: {}, role: {role}}}\n",
                addresses[*name]
            )
        })
        .collect();
    let text = format!(
        "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  \
         hostDefaults:\n    ssh: {{user: root, identityFile: {id}, configFile: {cfg}, \
         knownHostsFile: {kh}}}\n  hosts:\n{list}  k3s:\n    version: {V133}\n    \
         channelUrl: {channels}\n    binary: {{url: \"{url}\", sha256Url: \"{sha}\"}}\n  \
         kubeconfigs:\n    - {{name: lab, path: {kc}}}\n  upgrade:\n    drainTimeout: 60s\n    \
         nodeReadyTimeout: 90s\n",
        name = lab.name(),
        id = lab.identity().display(),
        cfg = lab.ssh_config().display(),
        kh = lab.known_hosts().display(),
        channels = s.site.channel_url(),
        url = s.site.binary_template(),
        sha = s.site.sha256_template(),
        kc = s.kubeconfig.display(),
    );
    fs_err::write(&s.spec, text).expect("write spec");
}

/// Runs `k3sctl apply` and waits (up to 60 s) until `nodes` Nodes are Ready: how long both took.
pub fn apply_until_ready(s: &Scenario, nodes: usize) -> Duration {
    let t = Instant::now();
    let out = k3sctl(s, &["apply"]);
    assert!(out.ok, "apply failed:\n{}", out.text);
    wait_until(
        Duration::from_secs(60),
        &format!("{nodes} Ready nodes"),
        || ready_nodes(s).len() == nodes,
    );
    t.elapsed()
}

/// Runs `k3sctl -c SPEC ARGS` without a terminal.
pub fn k3sctl(s: &Scenario, args: &[&str]) -> Out {
    let cache = s.spec.parent().unwrap_or(Path::new(".")).join("cache");
    let out = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env("XDG_CACHE_HOME", cache)
        .env("NO_COLOR", "1")
        .env_remove("K3SCTL_YES")
        .arg("-c")
        .arg(&s.spec)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run k3sctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("$ k3sctl {}\n{stderr}{stdout}", args.join(" "));
    Out {
        ok: out.status.success(),
        text: format!("{stdout}\n{stderr}"),
        stdout,
    }
}

/// What of K3s the referee still finds on `host`: units known to systemd, K3s's files and
/// directories, the kubectl/crictl/ctr links, processes running the K3s binary or from its data
/// directory, CNI interfaces. Empty: clean.
pub fn k3s_left_on(s: &Scenario, host: &str) -> Vec<String> {
    let script = r#"
for u in k3s k3s-agent; do
  systemctl is-active --quiet $u && echo "active $u"
  systemctl cat $u.service >/dev/null 2>&1 && echo "unit $u"
done
for p in /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet /run/k3s /usr/local/bin/k3s \
         /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service \
         /etc/systemd/system/k3s.service.env /etc/systemd/system/k3s-agent.service.env; do
  [ -e $p ] && echo "file $p"
done
for l in kubectl crictl ctr; do [ -L /usr/local/bin/$l ] && echo "link $l"; done
for p in /proc/[0-9]*; do
  e=$(readlink $p/exe 2>/dev/null) || continue
  case "$e" in /usr/local/bin/k3s*|/var/lib/rancher/*) echo "process ${p#/proc/} $e";; esac
done
for i in cni0 flannel.1; do ip link show $i >/dev/null 2>&1 && echo "interface $i"; done
true
"#;
    s.lab()
        .exec(host, script)
        .expect("referee over ssh")
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Waits up to `limit` until `check` holds.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// kubectl's JSON for `args` (`None` when kubectl fails, e.g. not found).
pub fn get(s: &Scenario, args: &[&str]) -> Option<serde_json::Value> {
    super::watcher::kubectl_json(&s.kubectl, &s.kubeconfig, args)
}

/// Node names.
pub fn node_names(s: &Scenario) -> Vec<String> {
    get(s, &["get", "nodes"])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Ready node names.
pub fn ready_nodes(s: &Scenario) -> Vec<String> {
    get(s, &["get", "nodes"])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|n| {
            n["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}
