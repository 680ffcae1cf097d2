//! The base image: a Debian root file system built once with debootstrap, cached under
//! `<cache>/base-<hash>/root` where the hash covers the whole recipe, so a changed recipe
//! builds a new base and never changes one that overlays use. Builds happen in a temp dir
//! renamed into place, under a lock, so parallel tests build it once.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::command;
use crate::error::{LabError, Result, fs_step};
use crate::lock::FileLock;
use crate::mirror;

/// What goes into the base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Debian suite.
    pub suite: &'static str,
    /// debootstrap variant.
    pub variant: &'static str,
    /// Packages added to the variant.
    pub packages: &'static [&'static str],
    /// Units disabled after installation.
    pub disabled_units: &'static [&'static str],
    /// Drop-in written to /etc/ssh/sshd_config.d/ (only the per-host ed25519 key is used).
    pub sshd_config: &'static str,
    /// Bumped whenever the post-install steps in this file change meaning.
    pub post_steps_version: u32,
}

/// The recipe every lab uses.
pub const RECIPE: Recipe = Recipe {
    suite: "bookworm",
    variant: "minbase",
    packages: &[
        "systemd",
        "systemd-sysv",
        "openssh-server",
        "iproute2",
        "dbus",
        "ca-certificates",
        "python3",
        "etcd-server",
        "etcd-client",
        "procps",
        "curl",
        "nftables",
        // What configuration tools expect on a Debian host (Ansible's apt module, become).
        "python3-apt",
        "sudo",
        // kubectl 1.20 for K3s's `kubectl` face (the stand-in runs it with K3s's kubeconfig).
        "kubernetes-client",
    ],
    // etcd-server's postinst enables a one-node etcd; HA tests start their own cluster.
    disabled_units: &["etcd.service"],
    sshd_config: "HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n",
    post_steps_version: 1,
};

impl Recipe {
    /// Stable text form of the recipe; its hash names the cache entry.
    pub fn canonical(&self) -> String {
        format!(
            "suite={}\nvariant={}\npackages={}\ndisabled={}\nsshd_config={:?}\npost={}\n",
            self.suite,
            self.variant,
            self.packages.join(","),
            self.disabled_units.join(","),
            self.sshd_config,
            self.post_steps_version
        )
    }

    /// First 16 hex digits of the SHA-256 of [`Recipe::canonical`].
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.canonical().as_bytes());
        hex::encode(digest)[..16].to_owned()
    }

    /// Cache directory of this recipe's image.
    pub fn cache_dir(&self, cache_root: &Path) -> PathBuf {
        cache_root.join(format!("base-{}", self.fingerprint()))
    }
}

/// Returns the root directory of the base image, building it first if the cache lacks it.
pub fn ensure(recipe: &Recipe, cache_root: &Path) -> Result<PathBuf> {
    let done = recipe.cache_dir(cache_root);
    let root = done.join("root");
    if root.is_dir() {
        return Ok(root);
    }
    let _lock = FileLock::acquire(
        &cache_root.join(format!("base-{}.lock", recipe.fingerprint())),
        "base image build",
    )?;
    if root.is_dir() {
        return Ok(root); // built by someone else while we waited
    }
    if done.exists() {
        // An entry without its root (damaged by hand); nothing can use it, rebuild it.
        fs_err::remove_dir_all(&done).map_err(fs_step("base image: remove damaged cache entry"))?;
    }
    let tmp = cache_root.join(format!(".build-base-{}", recipe.fingerprint()));
    if tmp.exists() {
        // Left by a build that died; we hold the lock, so nobody uses it.
        fs_err::remove_dir_all(&tmp).map_err(fs_step("base image: remove stale build dir"))?;
    }
    fs_err::create_dir_all(&tmp).map_err(fs_step("base image: create build dir"))?;
    build(recipe, &tmp)?;
    fs_err::write(tmp.join("recipe.txt"), recipe.canonical())
        .map_err(fs_step("base image: write recipe"))?;
    fs_err::rename(&tmp, &done).map_err(fs_step("base image: move into cache"))?;
    Ok(root)
}

fn build(recipe: &Recipe, dir: &Path) -> Result<()> {
    let root = dir.join("root");
    let mirror = mirror::mirror_for(recipe.suite);
    let log = dir.join("debootstrap.log");
    let log_file = fs_err::File::create(&log).map_err(fs_step("base image: create log"))?;
    let log_err = log_file
        .try_clone()
        .map_err(fs_step("base image: create log"))?;
    let mut cmd = Command::new("debootstrap");
    cmd.arg(format!("--variant={}", recipe.variant))
        .arg(format!("--include={}", recipe.packages.join(",")))
        .arg(recipe.suite)
        .arg(&root)
        .arg(&mirror)
        .stdout(log_file.into_parts().0)
        .stderr(log_err.into_parts().0);
    let status = cmd.status().map_err(|e| LabError::Command {
        step: "base image: debootstrap".into(),
        command: command::display(&cmd),
        detail: format!("cannot start: {e}"),
        hint: "install debootstrap: apt-get install debootstrap",
    })?;
    if !status.success() {
        return Err(LabError::Command {
            step: "base image: debootstrap".into(),
            command: command::display(&cmd),
            detail: format!("{status}; see {}", log.display()),
            hint: "check that the mirror is reachable (set K3SCTL_LAB_MIRROR to override it)",
        });
    }
    post_install(recipe, &root)
}

fn post_install(recipe: &Recipe, root: &Path) -> Result<()> {
    for unit in recipe.disabled_units {
        command::run(
            &format!("base image: disable {unit}"),
            Command::new("systemctl")
                .arg(format!("--root={}", root.display()))
                .args(["disable", "--quiet", unit]),
            "check that the recipe names an installed unit",
        )?;
    }
    // debootstrap generated shared host keys; every host gets its own in its overlay.
    let ssh_dir = root.join("etc/ssh");
    for entry in fs_err::read_dir(&ssh_dir).map_err(fs_step("base image: list host keys"))? {
        let path = entry.map_err(fs_step("base image: list host keys"))?.path();
        let is_host_key = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("ssh_host_"));
        if is_host_key {
            fs_err::remove_file(&path).map_err(fs_step("base image: remove shared host key"))?;
        }
    }
    fs_err::write(
        ssh_dir.join("sshd_config.d/k3sctl-lab.conf"),
        recipe.sshd_config,
    )
    .map_err(fs_step("base image: write sshd drop-in"))?;
    let archives = root.join("var/cache/apt/archives");
    if let Ok(entries) = fs_err::read_dir(&archives) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "deb") {
                fs_err::remove_file(entry.path())
                    .map_err(fs_step("base image: drop .deb cache"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_the_recipe() {
        let a = RECIPE.fingerprint();
        assert_eq!(a.len(), 16);
        assert_eq!(a, RECIPE.fingerprint());
        let changed = Recipe {
            packages: &["systemd"],
            ..RECIPE
        };
        assert_ne!(a, changed.fingerprint());
        let bumped = Recipe {
            post_steps_version: RECIPE.post_steps_version + 1,
            ..RECIPE
        };
        assert_ne!(a, bumped.fingerprint());
    }

    #[test]
    fn cached_base_is_used_without_building() {
        let cache = tempfile::tempdir().expect("temp dir");
        let root = RECIPE.cache_dir(cache.path()).join("root");
        fs_err::create_dir_all(&root).expect("fake base");
        assert_eq!(ensure(&RECIPE, cache.path()).expect("cache hit"), root);
        let other = Recipe {
            disabled_units: &[],
            ..RECIPE
        };
        assert_ne!(
            other.cache_dir(cache.path()),
            RECIPE.cache_dir(cache.path())
        );
    }
}
