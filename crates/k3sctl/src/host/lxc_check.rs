//! LXC preflight for Proxmox containers (pure): the applied configuration (`pct config <vmid>
//! --current 1`) and facts gathered inside the container → every problem, each with the exact
//! line to add to `/etc/pve/lxc/<vmid>.conf` when a line fixes it. The settings and why: see
//! ../shared notes ha-lxc-contracts §2.4–2.5 (techno-tim k3s-ansible `roles/proxmox_lxc`, pve-docs
//! pct.adoc, kind#662 / k0s#744 for /dev/kmsg, k3d#612 for nf_conntrack_max, techno-tim#230 for
//! ZFS).

use std::fmt;

/// The /dev/kmsg mount entry (binds the node's kernel log device into the container).
pub const KMSG_LINE: &str = "lxc.mount.entry: /dev/kmsg dev/kmsg none defaults,bind,create=file";
/// AppArmor off for the container (K3s's containerd and runc need it).
pub const APPARMOR_LINE: &str = "lxc.apparmor.profile: unconfined";
/// Every device allowed (cgroup v2 key; `lxc.cgroup.*` does nothing on cgroup2 hosts).
pub const DEVICES_LINE: &str = "lxc.cgroup2.devices.allow: a";
/// Keep every capability.
pub const CAP_DROP_LINE: &str = "lxc.cap.drop: ";
/// Writable /proc and /sys (kube-proxy writes nf_conntrack_max).
pub const MOUNT_AUTO_LINE: &str = "lxc.mount.auto: proc:rw sys:rw";

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LxcSeverity {
    /// K3s will not work: apply refuses unless it can fix it (`--fix-lxc`).
    Error,
    /// Worth knowing; apply goes on.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcProblem {
    /// How serious.
    pub severity: LxcSeverity,
    /// What is wrong.
    pub what: String,
    /// The line to add to the container's .conf, when one fixes it.
    pub line: Option<String>,
}

impl fmt::Display for LxcProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(line) = &self.line {
            write!(f, " (add `{line}`)")?;
        }
        Ok(())
    }
}

/// Facts from inside the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsideFacts {
    /// `/dev/kmsg` exists.
    pub kmsg: bool,
    /// `findmnt -no PROPAGATION /`.
    pub propagation: String,
    /// `stat -fc %T /sys/fs/cgroup`.
    pub cgroup_fs: String,
    /// `/sys/fs/cgroup/cgroup.controllers`.
    pub controllers: String,
    /// `yes`, `no` (read-only) or `absent` (no conntrack in this kernel/namespace).
    pub conntrack: String,
    /// `stat -fc %T /var/lib`.
    pub rootfs: String,
}

/// The script printing [`InsideFacts`] as `key=value` lines.
pub const INSIDE_SCRIPT: &str = r#"k=no; [ -e /dev/kmsg ] && k=yes; echo "kmsg=$k"
echo "propagation=$(findmnt -no PROPAGATION / 2>/dev/null)"
echo "cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
f=/proc/sys/net/netfilter/nf_conntrack_max
if [ -e "$f" ]; then v=$(cat "$f"); if (echo "$v" > "$f") 2>/dev/null; then c=yes; else c=no; fi; else c=absent; fi
echo "conntrack=$c"
echo "rootfs=$(stat -fc %T /var/lib 2>/dev/null)"
"#;

/// Parses the output of [`INSIDE_SCRIPT`].
pub fn parse_inside(text: &str) -> InsideFacts {
    let mut f = InsideFacts::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k {
            "kmsg" => f.kmsg = v == "yes",
            "propagation" => f.propagation = v,
            "cgroupfs" => f.cgroup_fs = v,
            "controllers" => f.controllers = v,
            "conntrack" => f.conntrack = v,
            "rootfs" => f.rootfs = v,
            _ => {}
        }
    }
    f
}

/// `key: value` pairs of `pct config` output, in order (raw `lxc.*` keys repeat).
pub fn parse_config(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim();
            (!k.is_empty() && !k.contains(' ')).then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn values<'a>(config: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> {
    config
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn words(v: &str) -> Vec<String> {
    v.trim_matches(|c| c == '"' || c == '\'')
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Every problem of one container.
pub fn check(config_text: &str, inside: &InsideFacts) -> Vec<LxcProblem> {
    let config = parse_config(config_text);
    let mut out = Vec::new();
    let mut push = |severity, what: String, line: Option<&str>| {
        out.push(LxcProblem {
            severity,
            what,
            line: line.map(str::to_owned),
        });
    };
    if let Some(lock) = values(&config, "lock").next() {
        push(
            LxcSeverity::Error,
            format!(
                "the container is locked ({lock}): Proxmox refuses changes until the {lock} operation ends (or `pct unlock`)"
            ),
            None,
        );
    }
    if values(&config, "unprivileged").any(|v| v == "1") {
        push(
            LxcSeverity::Warning,
            "unprivileged container: K3s needs the kubelet feature gate KubeletInUserNamespace=true there (k3s#4249); the known-good setup is privileged (unprivileged: 0, set at creation)".into(),
            None,
        );
    }
    let nesting = values(&config, "features").any(|v| {
        v.split(',')
            .any(|f| f.trim() == "nesting=1" || f.trim() == "nesting")
    });
    if !nesting {
        let existing: Vec<&str> = values(&config, "features").collect();
        let line = if existing.is_empty() {
            "features: nesting=1".to_owned()
        } else {
            format!("features: {},nesting=1", existing.join(","))
        };
        push(
            LxcSeverity::Error,
            "features lack nesting=1 (containerd runs nested containers)".into(),
            Some(&line),
        );
    }
    let unconfined = values(&config, "lxc.apparmor.profile")
        .last()
        .is_some_and(|v| v.trim_matches('"') == "unconfined");
    if !unconfined {
        push(
            LxcSeverity::Error,
            "AppArmor confines the container (lxc.apparmor.profile is not unconfined)".into(),
            Some(APPARMOR_LINE),
        );
    }
    let all_devices = values(&config, "lxc.cgroup2.devices.allow")
        .any(|v| v.trim() == "a" || v.trim().starts_with("a "));
    if !all_devices {
        push(
            LxcSeverity::Error,
            "devices are restricted (no `lxc.cgroup2.devices.allow: a`)".into(),
            Some(DEVICES_LINE),
        );
    }
    for (k, v) in config.iter().filter(|(k, _)| k.starts_with("lxc.cgroup.")) {
        let v2 = k.replacen("lxc.cgroup.", "lxc.cgroup2.", 1);
        push(
            LxcSeverity::Warning,
            format!(
                "`{k}: {v}` is a cgroup v1 key: it does nothing on cgroup2 hosts (PVE 7+, removed in PVE 9)"
            ),
            Some(&format!("{v2}: {v}")),
        );
    }
    if values(&config, "lxc.cap.drop").all(|v| !v.trim().is_empty()) {
        push(
            LxcSeverity::Warning,
            "LXC drops capabilities by default (sys_module, sys_time, ...); the known-good setup keeps them".into(),
            Some(CAP_DROP_LINE),
        );
    }
    if !inside.kmsg {
        push(
            LxcSeverity::Error,
            "/dev/kmsg is missing: the kubelet fails with \"open /dev/kmsg: no such file or directory\" (or let `--fix-lxc` install the conf-kmsg unit in the container)".into(),
            Some(KMSG_LINE),
        );
    }
    let proc_rw =
        values(&config, "lxc.mount.auto").any(|v| words(v).iter().any(|w| w == "proc:rw"));
    if inside.conntrack == "no" {
        // Outside the host's first network namespace the kernel makes nf_conntrack_max
        // read-only whatever the mounts say; kube-proxy must then not try to raise it.
        push(
            LxcSeverity::Warning,
            "/proc/sys/net/netfilter/nf_conntrack_max is not writable: kube-proxy fails with permission denied when it wants to raise it (k3d#612); set `kube-proxy-arg: [conntrack-max-per-core=0]` in the K3s config".into(),
            (!proc_rw).then_some(MOUNT_AUTO_LINE),
        );
    }
    if !inside.propagation.is_empty() && !inside.propagation.contains("shared") {
        push(
            LxcSeverity::Error,
            format!(
                "`/` is mounted {} (not shared): volume mounts do not propagate (let `--fix-lxc` install the conf-kmsg unit, which runs `mount --make-rshared /`)",
                inside.propagation
            ),
            None,
        );
    }
    if !inside.cgroup_fs.is_empty() && inside.cgroup_fs != "cgroup2fs" {
        push(
            LxcSeverity::Warning,
            format!(
                "/sys/fs/cgroup is {} (not the unified cgroup2 hierarchy)",
                inside.cgroup_fs
            ),
            None,
        );
    }
    let missing: Vec<&str> = ["cpu", "memory", "pids"]
        .into_iter()
        .filter(|c| !inside.controllers.split_whitespace().any(|x| x == *c))
        .collect();
    if inside.cgroup_fs == "cgroup2fs" && !missing.is_empty() {
        push(
            LxcSeverity::Warning,
            format!(
                "cgroup controllers missing in the container: {} (resource limits will not apply)",
                missing.join(", ")
            ),
            None,
        );
    }
    if inside.rootfs == "zfs" {
        push(
            LxcSeverity::Warning,
            format!(
                "the root file system is ZFS: containerd's overlayfs snapshotter may not work (techno-tim#230); set `snapshotter: native` or `fuse-overlayfs` (features: fuse=1) in k3s config, or mount an ext4 volume at {}",
                crate::k3s::ports::DATA_PARENT
            ),
            None,
        );
    }
    out
}

/// `text` with `lines` inserted at the end of the live configuration: before the first
/// `[section]` (snapshots, pending), so they do not land in a snapshot. Lines whose key is
/// already set to another value are replaced for single-valued keys (`features`, `lxc.apparmor.profile`,
/// `lxc.mount.auto`, `lxc.cap.drop`).
pub fn insert_lines(text: &str, lines: &[String]) -> String {
    let single = [
        "features",
        "lxc.apparmor.profile",
        "lxc.mount.auto",
        "lxc.cap.drop",
    ];
    let key_of = |l: &str| -> Option<String> {
        let at = l.find([':', '='])?;
        Some(l[..at].trim().to_owned())
    };
    let replaced: Vec<String> = lines
        .iter()
        .filter_map(|l| key_of(l))
        .filter(|k| single.contains(&k.as_str()))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut inserted = false;
    let mut live = true;
    for line in text.lines() {
        if line.starts_with('[') && !inserted {
            while out.last().is_some_and(|l| l.trim().is_empty()) {
                out.pop();
            }
            out.extend(lines.iter().cloned());
            out.push(String::new());
            inserted = true;
            live = false;
        }
        if live && key_of(line).is_some_and(|k| replaced.contains(&k)) && !line.starts_with('#') {
            continue;
        }
        out.push(line.to_owned());
    }
    if !inserted {
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        out.extend(lines.iter().cloned());
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "arch: amd64\nfeatures: nesting=1\nhostname: k\nonboot: 1\n\
lxc.apparmor.profile: unconfined\nlxc.cgroup2.devices.allow: a\nlxc.cap.drop: \n\
lxc.mount.auto: proc:rw sys:rw\nlxc.mount.entry: /dev/kmsg dev/kmsg none defaults,bind,create=file\n";

    fn inside_ok() -> InsideFacts {
        parse_inside(
            "kmsg=yes\npropagation=shared\ncgroupfs=cgroup2fs\ncontrollers=cpuset cpu io memory pids\nconntrack=yes\nrootfs=ext4\n",
        )
    }

    #[test]
    fn the_known_good_setup_has_no_problem() {
        assert_eq!(check(GOOD, &inside_ok()), vec![]);
    }

    #[test]
    fn missing_kmsg_and_apparmor_are_reported_with_their_lines() {
        let config = GOOD
            .replace("lxc.apparmor.profile: unconfined\n", "")
            .replace(&format!("{KMSG_LINE}\n"), "");
        let inside = InsideFacts {
            kmsg: false,
            ..inside_ok()
        };
        let problems = check(&config, &inside);
        let lines: Vec<&str> = problems.iter().filter_map(|p| p.line.as_deref()).collect();
        assert_eq!(lines, [APPARMOR_LINE, KMSG_LINE]);
        assert!(problems.iter().all(|p| p.severity == LxcSeverity::Error));
    }

    #[test]
    fn v1_keys_lock_zfs_and_read_only_conntrack() {
        let config = "arch: amd64\nlock: backup\nlxc.cgroup.devices.allow: a\nlxc.mount.auto: \"proc:mixed sys:ro\"\n";
        let inside = InsideFacts {
            conntrack: "no".into(),
            rootfs: "zfs".into(),
            ..inside_ok()
        };
        let text: Vec<String> = check(config, &inside)
            .iter()
            .map(ToString::to_string)
            .collect();
        let all = text.join("\n");
        assert!(all.contains("locked (backup)"), "{all}");
        assert!(
            all.contains("`lxc.cgroup.devices.allow: a` is a cgroup v1 key"),
            "{all}"
        );
        assert!(
            all.contains("(add `lxc.cgroup2.devices.allow: a`)"),
            "{all}"
        );
        assert!(all.contains("nf_conntrack_max is not writable"), "{all}");
        assert!(all.contains(&format!("(add `{MOUNT_AUTO_LINE}`)")), "{all}");
        assert!(all.contains("ZFS"), "{all}");
        assert!(all.contains("(add `features: nesting=1`)"), "{all}");
    }

    #[test]
    fn lines_go_before_the_first_section_and_replace_single_keys() {
        let text = "arch: amd64\nlxc.apparmor.profile: generated\n\n[snap1]\narch: amd64\nlxc.apparmor.profile: generated\n";
        let out = insert_lines(text, &[APPARMOR_LINE.to_owned(), KMSG_LINE.to_owned()]);
        assert_eq!(
            out,
            format!(
                "arch: amd64\n{APPARMOR_LINE}\n{KMSG_LINE}\n\n[snap1]\narch: amd64\nlxc.apparmor.profile: generated\n"
            )
        );
        assert_eq!(
            insert_lines("arch: amd64\n", &[DEVICES_LINE.to_owned()]),
            format!("arch: amd64\n{DEVICES_LINE}\n")
        );
    }
}
