//! Per-user kernel limits a lab's size depends on. Every host runs its own systemd, journald,
//! logind, dbus and sshd as root, and all of them count against the machine's per-user inotify
//! limits (containers share the machine's user namespace): on a default Debian machine
//! (`fs.inotify.max_user_instances` = 128) at most 16 hosts (8 instances each) boot and the
//! rest end "degraded" or without sshd. Before creating hosts the lab compares what is in use plus what the new hosts
//! need with each limit, raises a limit that is too low (saying so), and refuses with the exact
//! `sysctl` to run when it cannot. The kernel key limits (`kernel.keys.maxkeys`) are not
//! checked: nspawn's seccomp filter makes keyctl fail inside hosts, so logins (pam_keyinit) create
//! no keys there.

use std::path::Path;

use crate::error::{LabError, Result};

/// One per-user limit and what a lab host needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// sysctl name, e.g. `fs.inotify.max_user_instances`.
    pub sysctl: &'static str,
    /// What one booted host uses (measured on an idle lab host, with room for k3s and logins).
    pub per_host: u64,
    /// Kept free for the machine itself beyond what it uses now.
    pub reserve: u64,
}

impl Limit {
    /// The file under /proc/sys.
    pub fn proc_path(&self) -> String {
        format!("/proc/sys/{}", self.sysctl.replace('.', "/"))
    }
}

/// inotify instances: measured 8 per idle host (24 booted hosts held 192, the machine itself 0);
/// 12 leaves room for a non-root login's `systemd --user` and k3s.
pub const INOTIFY_INSTANCES: Limit = Limit {
    sysctl: "fs.inotify.max_user_instances",
    per_host: 12,
    reserve: 32,
};

/// inotify watches: measured about 60 per idle host; 512 leaves ample room.
pub const INOTIFY_WATCHES: Limit = Limit {
    sysctl: "fs.inotify.max_user_watches",
    per_host: 512,
    reserve: 8192,
};

/// The limits checked before a lab is created.
pub const LIMITS: [Limit; 2] = [INOTIFY_INSTANCES, INOTIFY_WATCHES];

/// What root uses of each inotify limit now (instances, watches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InUse {
    /// inotify instances held by root's processes (an instance shared after fork counts once
    /// per process, so this errs high).
    pub instances: u64,
    /// inotify watches of those instances.
    pub watches: u64,
}

impl InUse {
    fn of(&self, limit: &Limit) -> u64 {
        if limit.sysctl == INOTIFY_WATCHES.sysctl {
            self.watches
        } else {
            self.instances
        }
    }
}

/// A limit too low for the lab: its value now and what is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// The limit.
    pub limit: Limit,
    /// Its current value.
    pub current: u64,
    /// The value the lab needs.
    pub needed: u64,
}

/// Pure: which limits are too low for `new_hosts` more hosts given what is in use.
pub fn shortfalls(new_hosts: u64, in_use: InUse, current: &[(Limit, u64)]) -> Vec<Shortfall> {
    current
        .iter()
        .filter_map(|(limit, value)| {
            let needed = in_use.of(limit) + limit.per_host * new_hosts + limit.reserve;
            (*value < needed).then_some(Shortfall {
                limit: *limit,
                current: *value,
                needed,
            })
        })
        .collect()
}

/// Counts root's inotify instances and watches from /proc.
pub fn measure_in_use() -> InUse {
    let mut used = InUse::default();
    let Ok(procs) = fs_err::read_dir("/proc") else {
        return used;
    };
    for p in procs.flatten() {
        let dir = p.path();
        let is_pid = p
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if is_pid && owned_by_root(&dir) {
            let one = of_process(&dir);
            used.instances += one.instances;
            used.watches += one.watches;
        }
    }
    used
}

/// The inotify instances and watches one process (`/proc/<pid>`) holds.
pub fn of_process(proc_dir: &Path) -> InUse {
    let mut used = InUse::default();
    let Ok(fds) = fs_err::read_dir(proc_dir.join("fd")) else {
        return used;
    };
    for fd in fds.flatten() {
        let is_inotify =
            fs_err::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify");
        if !is_inotify {
            continue;
        }
        used.instances += 1;
        let info = fs_err::read_to_string(proc_dir.join("fdinfo").join(fd.file_name()))
            .unwrap_or_default();
        used.watches += info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count() as u64;
    }
    used
}

fn owned_by_root(proc_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs_err::metadata(proc_dir).is_ok_and(|m| m.uid() == 0)
}

fn read_value(limit: &Limit) -> Option<u64> {
    fs_err::read_to_string(limit.proc_path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Makes sure the machine's limits fit `new_hosts` more hosts (besides everything running now):
/// raises each limit that is too low, printing what it changed, or refuses with the sysctl to
/// run when the value cannot be written.
pub fn ensure(new_hosts: u64) -> Result<Vec<Shortfall>> {
    let current: Vec<(Limit, u64)> = LIMITS
        .iter()
        .filter_map(|l| read_value(l).map(|v| (*l, v)))
        .collect();
    let short = shortfalls(new_hosts, measure_in_use(), &current);
    for s in &short {
        let path = s.limit.proc_path();
        match fs_err::write(&path, format!("{}\n", s.needed)) {
            Ok(()) => eprintln!(
                "k3sctl-lab: raised {} from {} to {} for {new_hosts} more hosts (each host's systemd, journald and sshd use it)",
                s.limit.sysctl, s.current, s.needed
            ),
            Err(e) => {
                return Err(LabError::KernelLimit {
                    sysctl: s.limit.sysctl,
                    current: s.current,
                    needed: s.needed,
                    hosts: new_hosts,
                    detail: e.to_string(),
                });
            }
        }
    }
    Ok(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_debian_machine_is_too_small_for_24_hosts() {
        let used = InUse {
            instances: 20,
            watches: 2000,
        };
        let debian = [(INOTIFY_INSTANCES, 128), (INOTIFY_WATCHES, 192_530)];
        assert!(shortfalls(5, used, &debian).is_empty(), "5 hosts fit");
        let short = shortfalls(24, used, &debian);
        assert_eq!(
            short,
            [Shortfall {
                limit: INOTIFY_INSTANCES,
                current: 128,
                needed: 20 + 12 * 24 + 32
            }]
        );
        // Watches run out only for very large labs on small machines.
        let small = [(INOTIFY_WATCHES, 8192 * 2)];
        assert_eq!(
            shortfalls(200, used, &small)[0].needed,
            2000 + 512 * 200 + 8192
        );
        assert_eq!(
            INOTIFY_INSTANCES.proc_path(),
            "/proc/sys/fs/inotify/max_user_instances"
        );
    }

    #[test]
    fn a_process_inotify_instance_and_watch_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("watched");
        fs_err::write(&file, "x").expect("write");
        // GNU tail -f watches the file through inotify.
        let mut tail = std::process::Command::new("tail")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("tail");
        let proc_dir = std::path::PathBuf::from(format!("/proc/{}", tail.id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = of_process(&proc_dir);
        while seen.watches == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            seen = of_process(&proc_dir);
        }
        let _ = tail.kill();
        let _ = tail.wait();
        assert_eq!(seen.instances, 1, "{seen:?}");
        assert!(seen.watches >= 1, "{seen:?}");
        assert_eq!(of_process(Path::new("/proc/no-such-pid")), InUse::default());
    }
}
