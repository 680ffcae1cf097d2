//! Where the stand-in keeps its files. Every absolute path goes through [`host_path`], which puts
//! `K3S_SIM_ROOT` in front so local tests can run several nodes on one machine.

use std::path::{Path, PathBuf};

/// Environment variable naming a directory that prefixes every absolute path.
pub const ROOT_ENV: &str = "K3S_SIM_ROOT";

/// K3s's default data directory (`--data-dir`).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/rancher/k3s";
/// K3s's default config file (`--config`).
pub const DEFAULT_CONFIG: &str = "/etc/rancher/k3s/config.yaml";
/// K3s's default kubeconfig output (`--write-kubeconfig`).
pub const DEFAULT_KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";
/// The private registry configuration (`--private-registry`).
pub const DEFAULT_REGISTRIES: &str = "/etc/rancher/k3s/registries.yaml";
/// The node password file.
pub const NODE_PASSWORD: &str = "/etc/rancher/node/password";

/// Maps a path as k3s would see it to the path on this machine (prefixing `K3S_SIM_ROOT`).
pub fn host_path(p: impl AsRef<Path>) -> PathBuf {
    let p = p.as_ref();
    match std::env::var_os(ROOT_ENV) {
        Some(root) if !root.is_empty() && p.is_absolute() => {
            let rel = p.strip_prefix("/").unwrap_or(p);
            Path::new(&root).join(rel)
        }
        _ => p.to_path_buf(),
    }
}

/// The layout below a data directory (paths already mapped with [`host_path`]).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Wraps a data directory given as k3s sees it (`--data-dir`).
    pub fn new(data_dir: &str) -> Self {
        Self {
            root: host_path(data_dir),
        }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `server/`.
    pub fn server(&self) -> PathBuf {
        self.root.join("server")
    }

    /// `server/tls/`.
    pub fn tls(&self) -> PathBuf {
        self.server().join("tls")
    }

    /// `server/db/`.
    pub fn db(&self) -> PathBuf {
        self.server().join("db")
    }

    /// `server/manifests/`.
    pub fn manifests(&self) -> PathBuf {
        self.server().join("manifests")
    }

    /// `server/token`.
    pub fn token(&self) -> PathBuf {
        self.server().join("token")
    }

    /// The lock file held while the server runs.
    pub fn server_lock(&self) -> PathBuf {
        self.server().join("k3s-sim.lock")
    }

    /// `agent/`.
    pub fn agent(&self) -> PathBuf {
        self.root.join("agent")
    }

    /// `agent/etc/containerd/certs.d/`, where k3s writes per-registry `hosts.toml`.
    pub fn containerd_certs_d(&self) -> PathBuf {
        self.agent().join("etc").join("containerd").join("certs.d")
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = fs_err::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs_err::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/b.txt");
        write_atomic(&p, b"x", 0o600).expect("write");
        let meta = fs_err::metadata(&p).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs_err::read(&p).expect("read"), b"x");
    }
}
