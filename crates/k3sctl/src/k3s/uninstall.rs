//! What uninstalling K3s from a host means, pure: the same things K3s's own `k3s-killall.sh`
//! and `k3s-uninstall.sh` / `k3s-agent-uninstall.sh` (written by the install script, get.k3s.io)
//! stop and remove, as one shell script k3sctl runs over its transport, and a probe that lists
//! what of it is still on a host.
//!
//! Kept, as K3s's uninstall keeps them: `/etc/rancher/node` (the node password; the server's
//! `<node>.node-password.k3s` secret is deleted with the Node instead) and `/etc/default/k3s*`
//! (not written by K3s or k3sctl). The script is idempotent: on a clean host it changes nothing.

use super::ports::{DATA_DIR, DATA_PARENT};
use super::unit::BINARY_PATH;

/// The systemd units K3s runs as (both, whichever role the host had).
pub const UNITS: [&str; 2] = ["k3s", "k3s-agent"];

/// Directories removed with everything in them (K3s's uninstall list, plus k3sctl's own record
/// directory).
pub const DIRECTORIES: [&str; 7] = [
    "/etc/rancher/k3s",
    "/run/k3s",
    "/run/flannel",
    DATA_DIR,
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/lib/k3sctl",
];

/// Files removed: units, their env files, the binary (and k3sctl's staged copy), the scripts
/// an install-script installation leaves.
pub const FILES: [&str; 10] = [
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s.service.env",
    "/etc/systemd/system/k3s-agent.service",
    "/etc/systemd/system/k3s-agent.service.env",
    BINARY_PATH,
    "/usr/local/bin/.k3s-k3sctl-staged",
    "/usr/local/bin/k3s-killall.sh",
    "/usr/local/bin/k3s-uninstall.sh",
    "/usr/local/bin/k3s-agent-uninstall.sh",
    "/etc/systemd/system/multi-user.target.wants/k3s.service",
];

/// Network interfaces K3s's CNI (flannel) and kube-proxy create.
pub const INTERFACES: [&str; 6] = [
    "cni0",
    "flannel.1",
    "flannel-v6.1",
    "flannel-wg",
    "flannel-wg-v6",
    "kube-ipvs0",
];

/// Mount points (and everything below) unmounted before the directories go.
const MOUNT_ROOTS: [&str; 4] = ["/run/k3s", DATA_DIR, "/var/lib/kubelet", "/run/netns/cni-"];

/// One line per kind of thing the uninstall removes, for plans and confirmations.
pub fn summary() -> Vec<String> {
    vec![
        format!(
            "stop and disable {}; kill K3s's remaining processes (containerd shims, pods)",
            UNITS.map(|u| format!("{u}.service")).join(", ")
        ),
        format!("unmount and remove {}", DIRECTORIES.join(", ")),
        format!("remove the units and env files, {BINARY_PATH} and the kubectl/crictl/ctr links"),
        format!(
            "delete the CNI network interfaces ({}) and namespaces, and the KUBE-/CNI-/flannel \
             iptables rules",
            INTERFACES.join(", ")
        ),
    ]
}

/// The uninstall script (run as root). Prints one `removed <what>` line per thing it removed.
pub fn script() -> String {
    let units = UNITS.join(" ");
    let dirs = DIRECTORIES.join(" ");
    let files = FILES.join(" ");
    let links = super::links::remove_snippet();
    let interfaces = INTERFACES.join(" ");
    let mount_pattern = MOUNT_ROOTS.join("|");
    format!(
        r#"set -u
say() {{ echo "removed $*"; }}
if command -v systemctl >/dev/null 2>&1; then
  for unit in {units}; do
    if [ -n "$(systemctl list-unit-files --no-legend "$unit.service" 2>/dev/null)" ] || systemctl is-active --quiet "$unit" 2>/dev/null; then
      systemctl stop "$unit" >/dev/null 2>&1
      systemctl disable "$unit" >/dev/null 2>&1
      systemctl reset-failed "$unit" >/dev/null 2>&1
      say "service $unit"
    fi
  done
fi
# Processes K3s leaves behind a stopped unit (KillMode=process): anything running from the K3s
# binary, its data directory (containerd and its shims) or a container root under /run/k3s,
# and everything those started (the pods).
victims=""
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$exe" in {binary}|"{binary} (deleted)"|{data_dir}/*|/run/k3s/*) victims="$victims ${{p#/proc/}}";; esac
done
changed=1
while [ -n "$victims" ] && [ "$changed" = 1 ]; do
  changed=0
  for p in /proc/[0-9]*; do
    pid=${{p#/proc/}}
    case " $victims " in *" $pid "*) continue;; esac
    ppid=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f2) || continue
    case " $victims " in *" $ppid "*) victims="$victims $pid"; changed=1;; esac
  done
done
for pid in $victims; do
  [ "$pid" = "$$" ] && continue
  kill -9 "$pid" 2>/dev/null && say "process $pid"
done
# Mounts below K3s's directories, deepest first.
awk '{{print $2}}' /proc/self/mounts | grep -E '^({mount_pattern})' | sort -r | while read -r m; do
  umount -f "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  say "mount $m"
done
if command -v ip >/dev/null 2>&1; then
  for ns in $(ip netns list 2>/dev/null | awk '{{print $1}}' | grep '^cni-'); do
    ip netns delete "$ns" && say "network namespace $ns"
  done
  ip -o link show 2>/dev/null | awk -F': ' '/master cni0/ {{print $2}}' | while read -r iface; do
    iface=${{iface%%@*}}
    [ -n "$iface" ] && ip link delete "$iface" 2>/dev/null && say "interface $iface"
  done
  for iface in {interfaces}; do
    if ip link show "$iface" >/dev/null 2>&1; then
      ip link delete "$iface" && say "interface $iface"
    fi
  done
fi
for tool in iptables ip6tables; do
  command -v "$tool-save" >/dev/null 2>&1 || continue
  command -v "$tool-restore" >/dev/null 2>&1 || continue
  rules=$("$tool-save" 2>/dev/null) || continue
  if printf '%s\n' "$rules" | grep -qE 'KUBE-|CNI-|[Ff][Ll][Aa][Nn][Nn][Ee][Ll]'; then
    printf '%s\n' "$rules" | grep -v KUBE- | grep -v CNI- | grep -iv flannel | "$tool-restore" && say "$tool rules (KUBE-, CNI-, flannel)"
  fi
done
for f in {files}; do
  if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f" && say "$f"; fi
done
{links}for d in {dirs}; do
  if [ -e "$d" ]; then rm -rf "$d" && say "$d"; fi
done
rmdir /etc/rancher {data_parent} 2>/dev/null
command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload
exit 0
"#,
        binary = BINARY_PATH,
        data_dir = DATA_DIR,
        data_parent = DATA_PARENT,
    )
}

/// A script that prints, one per line, what of K3s is still on the host (`unit NAME` for an
/// installed or running unit, `process PID EXE` for a K3s process, else the path). Nothing
/// printed: the host is clean.
pub fn probe_script() -> String {
    let units = UNITS.join(" ");
    let paths: Vec<&str> = FILES.iter().chain(DIRECTORIES.iter()).copied().collect();
    let paths = paths.join(" ");
    let links = super::links::probe_snippet();
    format!(
        r#"for unit in {units}; do
  if systemctl is-active --quiet "$unit" 2>/dev/null || [ -n "$(systemctl list-unit-files --no-legend "$unit.service" 2>/dev/null)" ]; then echo "unit $unit"; fi
done
for f in {paths}; do [ -e "$f" ] && echo "$f"; done
{links}for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$exe" in {binary}|"{binary} (deleted)"|{data_dir}/*|/run/k3s/*) echo "process ${{p#/proc/}} $exe";; esac
done
exit 0
"#,
        binary = BINARY_PATH,
        data_dir = DATA_DIR,
    )
}

/// What the probe found, one entry per line it printed.
pub fn parse_probe(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_covers_what_k3s_uninstall_removes() {
        let script = script();
        for must in [
            "/etc/rancher/k3s",
            "/var/lib/rancher/k3s",
            "/var/lib/kubelet",
            "/etc/systemd/system/k3s.service.env",
            "/usr/local/bin/kubectl",
            "flannel.1",
            "cni0",
            "for tool in iptables ip6tables",
            "\"$tool-save\"",
            "systemctl disable",
            "daemon-reload",
        ] {
            assert!(script.contains(must), "missing {must}");
        }
        // /etc/rancher/node (the node password) stays, as with K3s's uninstall.
        assert!(!script.contains("/etc/rancher/node"));
        // Links are removed only when they point to K3s (k3s::links).
        assert!(script.contains(&super::super::links::remove_snippet()));
    }

    #[test]
    fn the_script_is_valid_sh() {
        for text in [script(), probe_script()] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &text])
                .output()
                .expect("sh runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn probe_output_is_one_item_per_line() {
        assert!(parse_probe("\n  \n").is_empty());
        assert_eq!(
            parse_probe("unit k3s-agent\n/usr/local/bin/k3s\n"),
            vec!["unit k3s-agent", "/usr/local/bin/k3s"]
        );
    }

    #[test]
    fn the_summary_names_every_directory() {
        let text = summary().join("\n");
        for d in DIRECTORIES {
            assert!(text.contains(d), "{d}");
        }
    }
}
