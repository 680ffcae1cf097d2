//! Where the lab keeps its files: per-lab state under `/var/lib/k3sctl-lab/<lab>/`, the base
//! image cache under `/var/cache/k3sctl-lab/` (`K3SCTL_LAB_CACHE` overrides it).

use std::path::{Path, PathBuf};

/// Root of all lab state directories.
pub const STATE_ROOT: &str = "/var/lib/k3sctl-lab";
/// Default cache root (base images).
pub const DEFAULT_CACHE_ROOT: &str = "/var/cache/k3sctl-lab";
/// Environment variable overriding the cache root.
pub const CACHE_ENV: &str = "K3SCTL_LAB_CACHE";

/// The cache root in effect.
pub fn cache_root() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_ROOT), PathBuf::from)
}

/// Lock file serialising lab index allocation and orphan sweeps.
pub fn registry_lock() -> PathBuf {
    Path::new(STATE_ROOT).join(".registry.lock")
}

/// File layout of one lab.
#[derive(Debug, Clone)]
pub struct LabPaths {
    /// `/var/lib/k3sctl-lab/<lab>`.
    pub dir: PathBuf,
}

impl LabPaths {
    /// Layout of lab `name`.
    pub fn new(name: &str) -> Self {
        Self {
            dir: Path::new(STATE_ROOT).join(name),
        }
    }

    /// The lab's state file (written first on creation, removed last on teardown).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Lock serialising changes to this lab (faults, teardown).
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lab.lock")
    }

    /// Private key used to log in to every host.
    pub fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// known_hosts with every host's real ed25519 key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// ssh_config with one block per host.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// Where `--spec-out` puts the stamped K3s stand-in.
    pub fn k3s_binary(&self) -> PathBuf {
        self.dir.join("k3s")
    }

    /// Where the spec's kubeconfig export is written.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
    }

    /// Directory of host `host`.
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.dir.join("hosts").join(host)
    }

    /// Overlay upper layer of `host` (its own files).
    pub fn upper(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("upper")
    }

    /// Overlay work directory of `host`.
    pub fn work(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("work")
    }

    /// Merged root file system of `host`, as seen from the machine.
    pub fn root(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("root")
    }

    /// Console output of `host`'s systemd-nspawn.
    pub fn console_log(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("console.log")
    }

    /// PID of `host`'s systemd-nspawn.
    pub fn pid_file(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("nspawn.pid")
    }

    /// Path of the lock file systemd-nspawn created for `host`'s root (recorded at boot).
    pub fn nspawn_lock_record(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("nspawn-lock-path")
    }
}
