//! Starting and stopping one host's systemd-nspawn. nspawn runs detached (its own session),
//! enters the host's cgroups before it starts, so `systemctl` inside works and several hosts
//! never share unit cgroups, and inherits no descriptor beyond stdio (`inherit.rs`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::command;
use crate::error::{LabError, Result, fs_step};
use crate::inherit;
use crate::process;

/// Where systemd-nspawn keeps per-image lock files.
pub const NSPAWN_LOCK_DIR: &str = "/run/systemd/nspawn/locks";
/// Where systemd-nspawn keeps per-machine propagation directories.
pub const NSPAWN_PROPAGATE_DIR: &str = "/run/systemd/nspawn/propagate";

/// Everything needed to boot one host.
#[derive(Debug, Clone)]
pub struct BootTarget {
    /// Host name (for messages).
    pub host: String,
    /// nspawn machine name, unique on the machine; also the network namespace name.
    pub machine: String,
    /// Merged root file system.
    pub root: PathBuf,
    /// The host's cgroup directories (all trees).
    pub cgroups: Vec<PathBuf>,
    /// PID file of nspawn.
    pub pid_file: PathBuf,
    /// Console output.
    pub console_log: PathBuf,
    /// File recording the nspawn lock file path, for cleanup after crashes.
    pub lock_record: PathBuf,
}

// $1 = pid file, then cgroup.procs files up to "--", then the command. The shell enters every
// cgroup, records its PID and becomes nspawn, so the PID stays nspawn's.
const LAUNCHER: &str = r#"p="$1"; shift
while [ "$1" != "--" ]; do echo $$ > "$1" || exit 1; shift; done; shift
echo $$ > "$p"; exec "$@""#;

impl BootTarget {
    /// Starts nspawn detached; returns once it runs (not once the host is ready).
    pub fn launch(&self) -> Result<u32> {
        let step = format!("host {}: start systemd-nspawn", self.host);
        self.remove_stale_nspawn_files()?;
        remove_if_exists(&self.pid_file).map_err(fs_step(step.clone()))?;
        let lock = nspawn_lock_path(&self.root).map_err(fs_step(step.clone()))?;
        fs_err::write(&self.lock_record, lock.to_string_lossy().as_bytes())
            .map_err(fs_step(step.clone()))?;
        let console = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console_log)
            .map_err(fs_step(step.clone()))?;
        let console2 = console.try_clone().map_err(fs_step(step.clone()))?;
        let mut cmd = Command::new("setsid");
        cmd.args(["-f", "sh", "-c", LAUNCHER, "sh"])
            .arg(&self.pid_file)
            .args(self.cgroups.iter().map(|c| c.join("cgroup.procs")))
            .arg("--")
            .arg("systemd-nspawn")
            .args(self.nspawn_args())
            .stdin(Stdio::null())
            .stdout(console.into_parts().0)
            .stderr(console2.into_parts().0);
        let status = inherit::status_alone(&mut cmd).map_err(|e| LabError::Command {
            step: step.clone(),
            command: command::display(&cmd),
            detail: format!("cannot start: {e}"),
            hint: "install util-linux (setsid) and systemd-container (systemd-nspawn)",
        })?;
        if !status.success() {
            return Err(self.launch_failed(&step, format!("setsid exited with {status}")));
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(pid) = self.running_pid() {
                return Ok(pid);
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err(self.launch_failed(&step, "nspawn did not start within 10s".into()))
    }

    fn launch_failed(&self, step: &str, detail: String) -> LabError {
        LabError::Host {
            host: self.host.clone(),
            step: step.to_owned(),
            detail: format!("{detail}; console: {}", tail(&self.console_log, 5)),
            hint: format!("see {}", self.console_log.display()),
        }
    }

    fn nspawn_args(&self) -> Vec<String> {
        vec![
            "--boot".into(),
            format!("--directory={}", self.root.display()),
            format!("--machine={}", self.machine),
            "--register=no".into(),
            "--keep-unit".into(),
            "--link-journal=no".into(),
            "--private-network".into(),
            format!("--network-namespace-path=/run/netns/{}", self.machine),
            "--console=read-only".into(),
            "--kill-signal=SIGRTMIN+3".into(),
        ]
    }

    /// PID of this host's nspawn if it runs.
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs_err::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmd = process::cmdline(pid)?;
        let ours =
            cmd.contains("systemd-nspawn") && cmd.contains(&format!("--machine={}", self.machine));
        (ours && process::alive(pid)).then_some(pid)
    }

    /// Asks the host to power off (SIGTERM to nspawn) and waits up to `wait` for nspawn to exit.
    /// Returns false when nspawn still runs.
    pub fn stop_gracefully(&self, wait: Duration) -> bool {
        let Some(pid) = self.running_pid() else {
            return true;
        };
        process::signal(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < wait {
            if !process::alive(pid) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Removes nspawn's lock file and propagation dir left by a killed nspawn.
    pub fn remove_stale_nspawn_files(&self) -> Result<()> {
        if self.running_pid().is_some() {
            return Ok(());
        }
        remove_nspawn_files(&self.host, &self.machine, &self.lock_record)
    }
}

/// Removes the recorded lock file and the propagation dir of `machine`.
pub fn remove_nspawn_files(host: &str, machine: &str, lock_record: &Path) -> Result<()> {
    let step = format!("host {host}: remove stale nspawn files");
    if let Ok(lock) = fs_err::read_to_string(lock_record) {
        let lock = PathBuf::from(lock.trim());
        if lock.starts_with(NSPAWN_LOCK_DIR) {
            remove_if_exists(&lock).map_err(fs_step(step.clone()))?;
        }
    }
    let propagate = Path::new(NSPAWN_PROPAGATE_DIR).join(machine);
    if propagate.exists() {
        fs_err::remove_dir_all(&propagate).map_err(fs_step(step))?;
    }
    Ok(())
}

/// The lock file nspawn creates for a directory image: `inode-<dev>:<ino>` of the root.
pub fn nspawn_lock_path(root: &Path) -> std::io::Result<PathBuf> {
    let meta = fs_err::metadata(root)?;
    Ok(Path::new(NSPAWN_LOCK_DIR).join(format!("inode-{}:{}", meta.dev(), meta.ino())))
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The last `lines` lines of a file, joined by " | ", for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
