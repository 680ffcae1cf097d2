//! Where ssh master connections live between runs.
//!
//! Every master gets a control socket named after what it connects to (a hash of its ssh
//! arguments: address, user, port, identity, config and known_hosts files, options), in one
//! directory private to the user. A `k3sctl plan` followed by `k3sctl apply` therefore reuses the
//! masters of the first run instead of paying every handshake twice, and `ControlPersist` (see
//! [`SshTarget::persist`](super::SshTarget::persist)) ends each master a short while after its
//! last use, also when the k3sctl that started it was killed.
//!
//! Safety of the directory: it is created 0700 and used only when it is a real directory (not a
//! symlink), owned by the effective user and closed to group and others, so nobody else can put
//! a socket where k3sctl would connect. When that does not hold (another user created the path
//! first), k3sctl warns and uses a fresh random private directory for this run instead (no reuse).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Prefix of the per-run directories older k3sctl versions created in /tmp (one per host and
/// run, left behind by runs that ended without dropping their transports).
const LEGACY_PREFIX: &str = ".k3sctl-ssh-";

/// A legacy directory this young may belong to a run that is still starting its master.
const LEGACY_MIN_AGE: Duration = Duration::from_secs(600);

/// The directory holding control sockets, and whether masters in it may be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDir {
    /// The directory.
    pub path: PathBuf,
    /// False when the shared per-user directory was unsafe and a private one-run directory is
    /// used instead.
    pub reuse: bool,
}

/// The process-wide control directory, chosen (and legacy leftovers swept) on first use.
pub fn control_dir() -> Result<&'static ControlDir, String> {
    static DIR: OnceLock<Result<ControlDir, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = control_base();
        let uid = nix::unistd::geteuid().as_raw();
        sweep_legacy(&base, uid);
        let shared = base.join(format!("k3sctl-ssh-{uid}"));
        match ensure_private_dir(&shared, uid) {
            Ok(()) => Ok(ControlDir {
                path: shared,
                reuse: true,
            }),
            Err(why) => {
                tracing::warn!(
                    "not reusing ssh connections between runs: {why}; remove it or fix its \
                     owner and mode (0700)"
                );
                let dir = tempfile::Builder::new()
                    .prefix("k3sctl-ssh-")
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir_in(&base)
                    .map_err(|e| {
                        format!("creating a control directory in {}: {e}", base.display())
                    })?;
                Ok(ControlDir {
                    path: dir.keep(),
                    reuse: false,
                })
            }
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Where control directories go: $XDG_RUNTIME_DIR when set and short (unix socket paths are
/// limited to ~100 bytes), else /tmp.
fn control_base() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(p) if p.is_absolute() && p.as_os_str().len() < 40 => p,
        _ => PathBuf::from("/tmp"),
    }
}

/// Creates `path` as a 0700 directory if missing and checks that it is safe to hold control
/// sockets: a directory (not a symlink), owned by `uid`, no access for group or others.
pub fn ensure_private_dir(path: &Path, uid: u32) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let meta = fs_err::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    if meta.uid() != uid {
        return Err(format!(
            "{} belongs to uid {}, not to this user (uid {uid})",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}; only its owner may use it",
            path.display()
        ));
    }
    Ok(())
}

/// The control socket's file name for a master started with `args` (its ssh arguments without
/// the control and log paths): the same target and options always give the same name.
pub fn socket_name<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let mut hash = Sha256::new();
    for a in args {
        hash.update(a.as_ref().as_encoded_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    hex::encode(&digest[..8])
}

/// A digest of the files that decide whom ssh trusts for `target`: its known_hosts file (the
/// configured one, `UserKnownHostsFile`, or ~/.ssh/known_hosts) and its config file. Missing
/// files count as empty.
pub fn trust_files_digest(target: &super::SshTarget) -> String {
    let home_known = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/known_hosts"));
    let known = target
        .option("UserKnownHostsFile")
        .and_then(|v| v.split_whitespace().next())
        .map(PathBuf::from)
        .or_else(|| target.known_hosts_file.clone())
        .or(home_known);
    let mut hash = Sha256::new();
    for file in [known, target.config_file.clone()].into_iter().flatten() {
        hash.update(file.as_os_str().as_encoded_bytes());
        hash.update([0]);
        hash.update(fs_err::read(&file).unwrap_or_default());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}

/// Removes the per-run directories older versions left in `base`: only those owned by `uid`,
/// older than [`LEGACY_MIN_AGE`], whose master no longer answers (a live master means a run that
/// still uses it).
fn sweep_legacy(base: &Path, uid: u32) {
    let Ok(entries) = fs_err::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(LEGACY_PREFIX) {
            continue;
        }
        let path = entry.path();
        if is_removable_legacy(&path, uid)
            && let Err(e) = fs_err::remove_dir_all(&path)
        {
            tracing::debug!("leaving {}: {e}", path.display());
        }
    }
}

fn is_removable_legacy(path: &Path, uid: u32) -> bool {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return false;
    };
    let old = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= LEGACY_MIN_AGE);
    meta.file_type().is_dir()
        && meta.uid() == uid
        && old
        && std::os::unix::net::UnixStream::connect(path.join("master")).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_new_directory_is_private_to_its_owner() {
        let base = tempfile::tempdir().expect("tmp");
        let dir = base.path().join("k3sctl-ssh-x");
        ensure_private_dir(&dir, uid()).expect("created");
        let meta = fs_err::metadata(&dir).expect("meta");
        assert_eq!(meta.mode() & 0o777, 0o700);
        // A second run accepts what the first created.
        ensure_private_dir(&dir, uid()).expect("reused");
    }

    #[test]
    fn a_directory_others_can_enter_or_own_or_a_symlink_is_refused() {
        let base = tempfile::tempdir().expect("tmp");
        let open = base.path().join("open");
        fs_err::create_dir(&open).expect("mkdir");
        fs_err::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = ensure_private_dir(&open, uid()).expect_err("open dir");
        assert!(err.contains("mode 0777"), "{err}");

        let target = base.path().join("target");
        fs_err::create_dir(&target).expect("mkdir");
        fs_err::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = base.path().join("link");
        fs_err::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = ensure_private_dir(&link, uid()).expect_err("symlink");
        assert!(err.contains("not a directory"), "{err}");

        let err = ensure_private_dir(&target, uid() + 1).expect_err("other owner");
        assert!(err.contains("belongs to uid"), "{err}");
    }

    #[test]
    fn socket_names_are_stable_per_target_and_differ_between_targets() {
        let a = socket_name(&["-p", "22", "--", "10.0.0.1"]);
        assert_eq!(a, socket_name(&["-p", "22", "--", "10.0.0.1"]));
        assert_eq!(a.len(), 16);
        assert_ne!(a, socket_name(&["-p", "2222", "--", "10.0.0.1"]));
        assert_ne!(a, socket_name(&["-p", "22", "--", "10.0.0.2"]));
        // Argument boundaries count: "ab","c" is not "a","bc".
        assert_ne!(socket_name(&["ab", "c"]), socket_name(&["a", "bc"]));
    }

    #[test]
    fn editing_known_hosts_or_the_config_changes_the_trust_digest() {
        let dir = tempfile::tempdir().expect("tmp");
        let kh = dir.path().join("known_hosts");
        fs_err::write(&kh, "10.0.0.1 ssh-ed25519 AAAA1\n").expect("kh");
        let mut t = super::super::SshTarget::new("h", "10.0.0.1");
        t.known_hosts_file = Some(kh.clone());
        t.config_file = Some(dir.path().join("ssh_config"));
        let before = trust_files_digest(&t);
        assert_eq!(
            before,
            trust_files_digest(&t),
            "stable while nothing changes"
        );
        fs_err::write(&kh, "10.0.0.1 ssh-ed25519 BBBB2\n").expect("kh");
        let after_key = trust_files_digest(&t);
        assert_ne!(before, after_key, "a replaced key means a new master");
        fs_err::write(dir.path().join("ssh_config"), "Port 2222\n").expect("config");
        assert_ne!(after_key, trust_files_digest(&t), "a config edit too");
    }

    #[test]
    fn only_old_dead_legacy_directories_of_this_user_are_swept() {
        let base = tempfile::tempdir().expect("tmp");
        let old = base.path().join(".k3sctl-ssh-old");
        let young = base.path().join(".k3sctl-ssh-young");
        let live = base.path().join(".k3sctl-ssh-live");
        let other = base.path().join("unrelated");
        for d in [&old, &young, &live, &other] {
            fs_err::create_dir(d).expect("mkdir");
            fs_err::write(d.join("log"), "").expect("log");
        }
        let _listener =
            std::os::unix::net::UnixListener::bind(live.join("master")).expect("listen");
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        for d in [&old, &live, &other] {
            fs_err::File::open(d)
                .and_then(|f| f.set_modified(long_ago))
                .expect("age");
        }
        sweep_legacy(base.path(), uid());
        assert!(!old.exists(), "an old directory without a live master goes");
        assert!(
            young.exists(),
            "a young one may be a run starting its master"
        );
        assert!(live.exists(), "a live master belongs to a running run");
        assert!(other.exists(), "only k3sctl's own names are touched");
    }
}
