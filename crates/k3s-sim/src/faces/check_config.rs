//! `k3s check-config`: K3s's kernel and system checks (its script adapts Docker's
//! check-config.sh), judged on the real /proc and /sys of this machine and its kernel config
//! (/proc/config.gz, /boot/config-<release>, ...): the sections `Verifying binaries`, `System:`,
//! `Limits:`, `Generally Necessary:` (cgroup hierarchy and required kernel options),
//! `Optional Features:`, network and storage drivers, and a final `STATUS: pass` or
//! `STATUS: N (fail)`; the exit code is the number of failures. Colours unless NO_COLOR is set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A verdict on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine (green).
    Good,
    /// Worth knowing, not a failure (yellow).
    Warn,
    /// Counts as a failure (red, `(fail)`).
    Bad,
}

/// Kernel options K3s needs.
pub const NECESSARY: &[&str] = &[
    "NAMESPACES",
    "NET_NS",
    "PID_NS",
    "IPC_NS",
    "UTS_NS",
    "CGROUPS",
    "CGROUP_PIDS",
    "CGROUP_CPUACCT",
    "CGROUP_DEVICE",
    "CGROUP_FREEZER",
    "CGROUP_SCHED",
    "CPUSETS",
    "MEMCG",
    "SECCOMP",
    "KEYS",
    "VETH",
    "BRIDGE",
    "BRIDGE_NETFILTER",
    "IP_NF_FILTER",
    "IP_NF_TARGET_MASQUERADE",
    "IP_NF_TARGET_REJECT",
    "NETFILTER_XT_MATCH_ADDRTYPE",
    "NETFILTER_XT_MATCH_CONNTRACK",
    "NETFILTER_XT_MATCH_IPVS",
    "NETFILTER_XT_MATCH_COMMENT",
    "NETFILTER_XT_MATCH_MULTIPORT",
    "NETFILTER_XT_MATCH_STATISTIC",
    "IP_NF_NAT",
    "NF_NAT",
    "POSIX_MQUEUE",
];

/// Optional kernel options K3s reports on.
pub const OPTIONAL: &[&str] = &[
    "BLK_CGROUP",
    "BLK_DEV_THROTTLING",
    "CGROUP_PERF",
    "CGROUP_HUGETLB",
    "NET_CLS_CGROUP",
    "CGROUP_NET_PRIO",
    "CFS_BANDWIDTH",
    "FAIR_GROUP_SCHED",
    "RT_GROUP_SCHED",
    "IP_NF_TARGET_REDIRECT",
    "IP_SET",
    "IP_VS",
    "IP_VS_NFCT",
    "IP_VS_PROTO_TCP",
    "IP_VS_PROTO_UDP",
    "IP_VS_RR",
    "EXT4_FS",
    "EXT4_FS_POSIX_ACL",
    "EXT4_FS_SECURITY",
];

/// Options for encrypted overlay networks.
pub const CRYPTO: &[&str] = &[
    "CRYPTO",
    "CRYPTO_AEAD",
    "CRYPTO_GCM",
    "CRYPTO_SEQIV",
    "CRYPTO_GHASH",
    "XFRM",
    "XFRM_USER",
    "XFRM_ALGO",
    "INET_ESP",
];

/// A kernel config: option name (without `CONFIG_`) → `y` or `m`.
pub type KernelConfig = BTreeMap<String, String>;

/// Parses kernel config text (`CONFIG_X=y`, `CONFIG_Y=m`, comments ignored).
pub fn parse_kernel_config(text: &str) -> KernelConfig {
    text.lines()
        .filter_map(|l| l.strip_prefix("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .filter(|(_, v)| *v == "y" || *v == "m")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The report being written.
#[derive(Debug, Default)]
pub struct Report {
    /// Text so far.
    pub text: String,
    /// Failures so far.
    pub failures: u32,
    /// Whether to colour.
    pub color: bool,
}

impl Report {
    fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Adds `label: value` with a verdict.
    pub fn line(&mut self, prefix: &str, label: &str, value: &str, v: Verdict) {
        let (label, value) = match v {
            Verdict::Good => (self.paint(label, "37"), self.paint(value, "32")),
            Verdict::Warn => (self.paint(label, "1"), self.paint(value, "1;33")),
            Verdict::Bad => {
                self.failures += 1;
                (
                    self.paint(label, "1"),
                    self.paint(&format!("{value} (fail)"), "1;31"),
                )
            }
        };
        self.text.push_str(&format!("{prefix}{label}: {value}\n"));
    }

    /// Adds a plain line.
    pub fn say(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// Kernel option lines; `necessary` makes a missing option a failure.
    pub fn flags(&mut self, prefix: &str, cfg: &KernelConfig, names: &[&str], necessary: bool) {
        for n in names {
            let label = format!("CONFIG_{n}");
            match cfg.get(*n).map(String::as_str) {
                Some("y") => self.line(prefix, &label, "enabled", Verdict::Good),
                Some(_) => self.line(prefix, &label, "enabled (as module)", Verdict::Good),
                None if necessary => self.line(prefix, &label, "missing", Verdict::Bad),
                None => self.line(prefix, &label, "missing", Verdict::Warn),
            }
        }
    }
}

/// What the checks look at, gathered from the machine (separate so the judging is testable).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Directory of the running binary.
    pub bin_dir: String,
    /// iptables' directory and its `iptables --version` answer, if iptables exists.
    pub iptables: Option<(String, String)>,
    /// SwapTotal in kB.
    pub swap_kb: u64,
    /// Destinations of routes (dotted quads) from /proc/net/route.
    pub routes: Vec<String>,
    /// /proc/sys/kernel/keys/root_maxkeys.
    pub root_maxkeys: Option<u64>,
    /// File-system type of /sys/fs/cgroup and /sys/fs/cgroup/unified (statfs magic).
    pub cgroup_fs: (Option<i64>, Option<i64>),
    /// Controllers available (cgroup.controllers on v2, /proc/self/cgroup on v1).
    pub controllers: Vec<String>,
    /// AppArmor enabled, and whether apparmor_parser exists.
    pub apparmor: Option<bool>,
    /// Where the kernel config was read, and its options.
    pub kernel: Option<(PathBuf, KernelConfig)>,
}

const CGROUP2_MAGIC: i64 = 0x6367_7270;

/// Judges the facts; returns the report (text and failure count).
pub fn judge(f: &Facts, color: bool) -> Report {
    let mut r = Report {
        color,
        ..Report::default()
    };
    r.say("");
    r.say(&format!("Verifying binaries in {}:", f.bin_dir));
    r.line("", "- sha256sum", "sha256sums unavailable", Verdict::Warn);
    r.line("", "- links", "link list unavailable", Verdict::Warn);
    r.say("");
    r.say("System:");
    match &f.iptables {
        Some((dir, info)) => {
            let version = info.split_whitespace().nth(1).unwrap_or("");
            let legacy = info.contains("(legacy)");
            let parts: Vec<u32> = version
                .trim_start_matches('v')
                .split('.')
                .filter_map(|p| p.parse().ok())
                .collect();
            let v = (
                parts.first().copied().unwrap_or(0),
                parts.get(1).copied().unwrap_or(0),
                parts.get(2).copied().unwrap_or(0),
            );
            let label = format!("- {dir} {info}");
            if !version.starts_with('v') {
                r.line(
                    "",
                    &label,
                    &format!("unknown version: {info}"),
                    Verdict::Warn,
                );
            } else if v >= (1, 8, 0) && !legacy && v < (1, 8, 4) {
                r.line(
                    "",
                    &label,
                    "should be older than v1.8.0, newer than v1.8.3, or in legacy mode",
                    Verdict::Bad,
                );
            } else if v >= (1, 8, 0) {
                r.line("", &label, "ok", Verdict::Good);
            } else {
                r.line("", &label, "older than v1.8", Verdict::Good);
            }
        }
        None => r.line("", "- unknown iptables", "unknown version: ", Verdict::Warn),
    }
    if f.swap_kb > 0 {
        r.line("", "- swap", "should be disabled", Verdict::Warn);
    } else {
        r.line("", "- swap", "disabled", Verdict::Good);
    }
    if f.routes
        .iter()
        .any(|d| d.starts_with("10.42.") || d.starts_with("10.43."))
    {
        r.line(
            "",
            "- routes",
            "default CIDRs 10.42.0.0/16 or 10.43.0.0/16 already routed",
            Verdict::Warn,
        );
    } else {
        r.line("", "- routes", "ok", Verdict::Good);
    }
    r.say("");
    r.say("Limits:");
    let keys = "/proc/sys/kernel/keys/root_maxkeys";
    match f.root_maxkeys {
        Some(n) if n > 10000 => r.line("", &format!("- {keys}"), &n.to_string(), Verdict::Good),
        other => {
            let shown = other.map(|n| n.to_string()).unwrap_or_default();
            r.line("", &format!("- {keys}"), &shown, Verdict::Bad);
            r.say("    This should be set to at least 10000, for example: sysctl -w kernel/keys/root_maxkeys=1000000");
        }
    }
    r.say("");
    let Some((config_path, cfg)) = &f.kernel else {
        r.say("error: cannot find kernel config");
        r.say("  try running this again, naming the kernel config:");
        r.say("  set CONFIG=/path/to/kernel/.config or pass /path/to/kernel/.config as argument");
        r.failures += 1;
        return r;
    };
    let info = format!(
        "info: reading kernel config from {} ...",
        config_path.display()
    );
    let info = r.paint(&info, "36");
    r.say(&info);
    r.say("");
    r.say("Generally Necessary:");
    let variant = match f.cgroup_fs {
        (None, _) => "Nonexistent",
        (Some(CGROUP2_MAGIC), _) => "V2",
        (_, Some(CGROUP2_MAGIC)) => "Hybrid",
        _ => "V1",
    };
    if variant == "Nonexistent" {
        r.line(
            "- ",
            "cgroup hierarchy",
            "cgroups Nonexistent",
            Verdict::Bad,
        );
    } else {
        let wanted: &[&str] = if variant == "V2" {
            &["cpu", "cpuset", "memory"]
        } else {
            &["cpuset", "memory"]
        };
        let ok = wanted.iter().all(|w| f.controllers.iter().any(|c| c == w));
        let status = if ok { "good" } else { "bad" };
        r.line(
            "- ",
            "cgroup hierarchy",
            &format!(
                "cgroups {variant} mounted, {} controllers status: {status}",
                wanted.join("|")
            ),
            if ok { Verdict::Good } else { Verdict::Bad },
        );
    }
    if let Some(parser) = f.apparmor {
        if parser {
            r.line(
                "- ",
                "apparmor",
                "enabled and tools installed",
                Verdict::Good,
            );
        } else {
            r.line(
                "- ",
                "apparmor",
                "enabled, but apparmor_parser missing",
                Verdict::Bad,
            );
            r.say("    (use \"apt-get install apparmor\" to fix this)");
        }
    }
    r.flags("- ", cfg, NECESSARY, true);
    r.say("");
    r.say("Optional Features:");
    r.flags("- ", cfg, &["USER_NS"], false);
    r.flags("- ", cfg, OPTIONAL, false);
    r.say("- Network Drivers:");
    r.say("  - \"overlay\":");
    r.flags("    - ", cfg, &["VXLAN"], false);
    r.say("      Optional (for encrypted networks):");
    r.flags("      - ", cfg, CRYPTO, false);
    r.say("- Storage Drivers:");
    r.say("  - \"overlay\":");
    r.flags("    - ", cfg, &["OVERLAY_FS"], false);
    r.say("");
    let failures = r.failures;
    if failures == 0 {
        r.line("", "STATUS", "pass", Verdict::Good);
    } else {
        r.line("", "STATUS", &failures.to_string(), Verdict::Bad);
        r.failures = failures;
    }
    r
}

fn statfs_type(path: &str) -> Option<i64> {
    let out = Command::new("stat")
        .args(["--file-system", "--format=%t", path])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    i64::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).ok()
}

fn read_kernel_config(explicit: Option<&str>) -> Option<(PathBuf, KernelConfig)> {
    let release = fs_err::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let short = release.rsplit('-').next().unwrap_or(&release).to_string();
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![PathBuf::from(p)],
        None => [
            "/proc/config.gz".to_string(),
            format!("/boot/config-{release}"),
            format!("/boot/config-{short}"),
            format!("/usr/src/linux-{release}/.config"),
            "/usr/src/linux/.config".to_string(),
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect(),
    };
    let path = candidates.into_iter().find(|p| p.exists())?;
    // Compressed or plain, as the script reads it (zcat, else the file as is).
    let text = Command::new("zcat")
        .arg(&path)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .or_else(|| fs_err::read_to_string(&path).ok())?;
    Some((path, parse_kernel_config(&text)))
}

fn on_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// Gathers the facts from this machine.
pub fn gather(explicit_config: Option<&str>) -> Facts {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .display()
        .to_string();
    let iptables = on_path("iptables").and_then(|p| {
        let out = Command::new(&p).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let dir = p
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        Some((dir, text))
    });
    let swap_kb = fs_err::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("SwapTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let routes = fs_err::read_to_string("/proc/net/route")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let dest = l.split_whitespace().nth(1)?;
            let n = u32::from_str_radix(dest, 16).ok()?;
            let b = n.to_le_bytes();
            Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
        })
        .collect();
    let root_maxkeys = fs_err::read_to_string("/proc/sys/kernel/keys/root_maxkeys")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let cgroup_fs = (
        statfs_type("/sys/fs/cgroup"),
        statfs_type("/sys/fs/cgroup/unified"),
    );
    let controllers = if cgroup_fs.0 == Some(CGROUP2_MAGIC) {
        fs_err::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    } else {
        fs_err::read_to_string("/proc/self/cgroup")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .flat_map(|c| c.split(','))
            .map(str::to_string)
            .collect()
    };
    let apparmor = (fs_err::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false))
    .then(|| on_path("apparmor_parser").is_some());
    Facts {
        bin_dir,
        iptables,
        swap_kb,
        routes,
        root_maxkeys,
        cgroup_fs,
        controllers,
        apparmor,
        kernel: read_kernel_config(explicit_config),
    }
}

/// `k3s check-config [CONFIG]` (or `CONFIG=path`); prints the verdicts, exit code = failures.
pub fn run(args: &[String]) -> i32 {
    let env_config = std::env::var("CONFIG").ok().filter(|c| !c.is_empty());
    let explicit = args.first().cloned().or(env_config);
    let facts = gather(explicit.as_deref());
    let color = std::env::var_os("NO_COLOR").is_none();
    let report = judge(&facts, color);
    print!("{}", report.text);
    i32::try_from(report.failures).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(cfg: &str) -> Facts {
        Facts {
            bin_dir: "/usr/local/bin".into(),
            iptables: Some(("/usr/sbin".into(), "iptables v1.8.9 (nf_tables)".into())),
            swap_kb: 0,
            routes: vec!["0.0.0.0".into(), "10.213.0.0".into()],
            root_maxkeys: Some(1_000_000),
            cgroup_fs: (Some(CGROUP2_MAGIC), None),
            controllers: vec!["cpuset".into(), "cpu".into(), "memory".into()],
            apparmor: None,
            kernel: Some((PathBuf::from("/proc/config.gz"), parse_kernel_config(cfg))),
        }
    }

    fn all_necessary() -> String {
        NECESSARY
            .iter()
            .map(|n| format!("CONFIG_{n}=y\n"))
            .collect()
    }

    #[test]
    fn a_complete_kernel_passes_with_the_script_sections() {
        let r = judge(&facts(&all_necessary()), false);
        for heading in [
            "Verifying binaries in /usr/local/bin:",
            "System:",
            "Limits:",
            "info: reading kernel config from /proc/config.gz ...",
            "Generally Necessary:",
            "Optional Features:",
            "- Network Drivers:",
            "- Storage Drivers:",
        ] {
            assert!(r.text.contains(heading), "{heading} missing:\n{}", r.text);
        }
        assert!(
            r.text.contains(
                "- cgroup hierarchy: cgroups V2 mounted, cpu|cpuset|memory controllers status: good"
            ),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("- /usr/sbin iptables v1.8.9 (nf_tables): ok\n"),
            "{}",
            r.text
        );
        assert!(r.text.ends_with("STATUS: pass\n"), "{}", r.text);
        assert_eq!(r.failures, 0);
    }

    #[test]
    fn missing_options_and_limits_fail_and_are_counted() {
        let mut f =
            facts(&all_necessary().replace("CONFIG_VETH=y\n", "# CONFIG_VETH is not set\n"));
        f.root_maxkeys = Some(200);
        f.routes.push("10.42.0.0".into());
        f.cgroup_fs = (Some(0x0102_1994), Some(CGROUP2_MAGIC));
        f.controllers = vec!["memory".into()];
        let r = judge(&f, false);
        assert!(
            r.text.contains("- CONFIG_VETH: missing (fail)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("root_maxkeys: 200 (fail)"), "{}", r.text);
        assert!(r.text.contains("already routed"), "{}", r.text);
        assert!(
            r.text
                .contains("cgroups Hybrid mounted, cpuset|memory controllers status: bad (fail)"),
            "{}",
            r.text
        );
        assert_eq!(r.failures, 3);
        assert!(r.text.ends_with("STATUS: 3 (fail)\n"), "{}", r.text);
        // Modules count as enabled; optional options only warn.
        let m = judge(
            &facts(&all_necessary().replace("CONFIG_VETH=y", "CONFIG_VETH=m")),
            false,
        );
        assert!(m.text.contains("- CONFIG_VETH: enabled (as module)"));
        assert!(m.text.contains("- CONFIG_IP_VS: missing\n"));
    }

    #[test]
    fn colours_only_when_asked() {
        let r = judge(&facts(&all_necessary()), true);
        assert!(r.text.contains("\x1b[32mpass\x1b[0m"));
    }
}
