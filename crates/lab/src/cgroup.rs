//! Per-host cgroups. Without systemd on the machine, `systemd-nspawn --keep-unit` creates its
//! cgroups inside the cgroup it starts in, so every host needs its own cgroup in the cgroup2
//! tree AND (on hybrid machines) in the `name=systemd` v1 tree, entered before nspawn runs.
//! The cgroup2 directory also lets the lab kill a host at once (`cgroup.kill`).

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result, fs_step};
use crate::naming::CGROUP_ROOT;

/// The cgroup trees the lab places hosts in.
#[derive(Debug, Clone)]
pub struct Hierarchies {
    /// The cgroup2 mount (`/sys/fs/cgroup/unified` on hybrid machines, else `/sys/fs/cgroup`).
    pub v2: PathBuf,
    /// The `name=systemd` v1 mount on hybrid machines.
    pub v1_systemd: Option<PathBuf>,
}

impl Hierarchies {
    /// Detects the machine's layout.
    pub fn detect() -> Self {
        let unified = Path::new("/sys/fs/cgroup/unified");
        if unified.join("cgroup.procs").exists() {
            let v1 = Path::new("/sys/fs/cgroup/systemd");
            Self {
                v2: unified.to_owned(),
                v1_systemd: v1.join("cgroup.procs").exists().then(|| v1.to_owned()),
            }
        } else {
            Self {
                v2: PathBuf::from("/sys/fs/cgroup"),
                v1_systemd: None,
            }
        }
    }

    fn roots(&self) -> Vec<&Path> {
        let mut out = vec![self.v2.as_path()];
        out.extend(self.v1_systemd.as_deref());
        out
    }

    /// The lab's directory in every tree.
    pub fn lab_dirs(&self, lab: &str) -> Vec<PathBuf> {
        self.roots()
            .into_iter()
            .map(|r| r.join(CGROUP_ROOT).join(lab))
            .collect()
    }

    /// The host's directory in every tree (cgroup2 first).
    pub fn host_dirs(&self, lab: &str, host: &str) -> Vec<PathBuf> {
        self.lab_dirs(lab)
            .into_iter()
            .map(|d| d.join(host))
            .collect()
    }

    /// The host's cgroup2 directory.
    pub fn host_v2(&self, lab: &str, host: &str) -> PathBuf {
        self.v2.join(CGROUP_ROOT).join(lab).join(host)
    }

    /// Creates the host's directories in every tree.
    pub fn create(&self, lab: &str, host: &str) -> Result<Vec<PathBuf>> {
        let dirs = self.host_dirs(lab, host);
        for dir in &dirs {
            fs_err::create_dir_all(dir).map_err(fs_step(format!("host {host}: create cgroup")))?;
        }
        Ok(dirs)
    }

    /// Every process in the host's cgroup2 subtree.
    pub fn pids(&self, lab: &str, host: &str) -> Vec<u32> {
        pids_below(&self.host_v2(lab, host))
    }

    /// Kills every process of the host at once and waits until they are gone.
    pub fn kill(&self, lab: &str, host: &str, wait: Duration) -> Result<()> {
        let dir = self.host_v2(lab, host);
        if !dir.exists() {
            return Ok(());
        }
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            fs_err::write(&kill_file, "1").map_err(fs_step(format!("host {host}: kill cgroup")))?;
        } else {
            for pid in pids_below(&dir) {
                crate::process::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        wait_empty(self, lab, host, wait)
    }

    /// Removes the lab's cgroup directories (deepest first) in every tree.
    pub fn remove_lab(&self, lab: &str) -> Result<()> {
        for dir in self.lab_dirs(lab) {
            for sub in dirs_below(&dir) {
                match fs_err::remove_dir(&sub) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fs_step(format!("lab {lab}: remove cgroup"))(e)),
                }
            }
        }
        Ok(())
    }

    /// Removes the top `k3sctl-lab` directories when no lab uses them any more.
    pub fn remove_root_if_unused(&self) {
        for root in self.roots() {
            // Fails (busy) while any lab still has cgroups; that is the intended outcome.
            let _ = fs_err::remove_dir(root.join(CGROUP_ROOT));
        }
    }

    /// Every cgroup directory of the lab, in every tree (deepest first).
    pub fn lab_cgroup_dirs(&self, lab: &str) -> Vec<PathBuf> {
        self.lab_dirs(lab)
            .iter()
            .flat_map(|d| dirs_below(d))
            .collect()
    }

    /// Names of the labs that have cgroups (for sweeping leftovers).
    pub fn labs_with_cgroups(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .roots()
            .into_iter()
            .flat_map(|r| subdirs(&r.join(CGROUP_ROOT)))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Waits until no process is left in the host's cgroup.
pub fn wait_empty(h: &Hierarchies, lab: &str, host: &str, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let left = h.pids(lab, host);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > wait {
            return Err(LabError::Timeout {
                host: host.to_owned(),
                step: "wait for all processes to exit".into(),
                after: wait,
                detail: format!("still running: {left:?}"),
                hint: "processes in uninterruptible sleep (D state) block this; check `ps -o pid,stat,cmd -p PID`",
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Names of the directories directly inside `dir` (cgroup control files are skipped).
pub(crate) fn subdirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Directory `dir` and all its sub-directories, deepest first; empty if it does not exist.
fn dirs_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect_dirs(dir, &mut out);
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    out.push(dir.to_owned());
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// CPU time (user + system) used so far by everything in a cgroup2 directory, from the
/// `usage_usec` line of its `cpu.stat` (kept by cgroup2 whether or not the cpu controller is on).
pub fn cpu_used(dir: &Path) -> Result<Duration> {
    let path = dir.join("cpu.stat");
    let unreadable = |source| LabError::Fs {
        step: "read a host's CPU time".into(),
        source,
        hint: "the host must be running (its cgroup exists while it runs)",
    };
    let text = fs_err::read_to_string(&path).map_err(unreadable)?;
    usage_usec(&text).map(Duration::from_micros).ok_or_else(|| {
        unreadable(std::io::Error::other(format!(
            "{}: no usage_usec line",
            path.display()
        )))
    })
}

fn usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == "usage_usec").then(|| value.trim().parse().ok())?
    })
}

fn pids_below(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = dirs_below(dir)
        .iter()
        .filter_map(|d| fs_err::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .filter(|pid| crate::process::alive(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_usage_is_read() {
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n";
        assert_eq!(usage_usec(stat), Some(1_234_567));
        assert_eq!(usage_usec("user_usec 5\n"), None);
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::write(dir.path().join("cpu.stat"), stat).expect("cpu.stat");
        assert_eq!(
            cpu_used(dir.path()).expect("read"),
            Duration::from_micros(1_234_567)
        );
        assert!(cpu_used(&dir.path().join("gone")).is_err());
    }

    #[test]
    fn control_files_are_not_taken_for_labs() {
        // The name=systemd v1 tree keeps files like `tasks` next to the lab directories.
        let root = tempfile::tempdir().expect("temp dir");
        for file in ["tasks", "notify_on_release", "cgroup.procs"] {
            fs_err::write(root.path().join(file), "").expect("control file");
        }
        fs_err::create_dir(root.path().join("dev")).expect("lab dir");
        assert_eq!(subdirs(root.path()), ["dev"]);
    }
}
