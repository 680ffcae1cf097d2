//! Files on the operator's machine that k3sctl replaces (kubeconfig exports, the user's
//! kubeconfig, the spec after `upgrade --update-spec`): read them telling "absent" from
//! "unreadable", and replace them atomically without unlinking a symlink the user made,
//! loosening a mode the user tightened, or changing the owner.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// The mode a new credential file gets.
pub const DEFAULT_MODE: u32 = 0o600;

/// How many symlinks are followed before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Why a local credential file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    /// The file exists but reading it failed (permissions, a directory, not UTF-8 text, ...).
    #[error(
        "{path} exists but cannot be read ({source}); it was left untouched: fix its permissions \
         or move it away, then re-run"
    )]
    Unreadable {
        /// The path as named (spec or $KUBECONFIG).
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The file exists but its content is not what k3sctl would replace or merge into.
    #[error(
        "{path} exists but is not a kubeconfig ({reason}); it was left untouched: repair it, or \
         move it away so that k3sctl writes a new one{hint}"
    )]
    NotAKubeconfig {
        /// The path as named.
        path: PathBuf,
        /// What the parser said.
        reason: String,
        /// Extra advice for this use of the file (starts with "; " or is empty).
        hint: String,
    },
    /// A symlink chain that does not end (a loop, or longer than the kernel allows).
    #[error("{path}: too many levels of symbolic links; point it at a file or remove it")]
    SymlinkLoop {
        /// The path as named.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("{what} {path}: {source}")]
    Write {
        /// What was being done.
        what: &'static str,
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The file's content, `None` when nothing is there (also a symlink pointing nowhere yet).
/// Any other failure is an error: treating it as "absent" would overwrite the user's file.
pub fn read_existing(path: &Path) -> Result<Option<Secret>, LocalFileError> {
    match fs_err::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Some(Secret::new(text))),
            Err(e) => Err(LocalFileError::Unreadable {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("not UTF-8 text: {}", e.utf8_error()),
                ),
            }),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LocalFileError::Unreadable {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The file a write to `path` must replace: `path` itself, or, when it is a symlink, the end
/// of its chain (relative links resolved against the link's directory). The end need not exist.
pub fn write_target(path: &Path) -> Result<PathBuf, LocalFileError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs_err::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link =
                    fs_err::read_link(&current).map_err(|source| LocalFileError::Unreadable {
                        path: current.clone(),
                        source,
                    })?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(current),
            Err(source) => {
                return Err(LocalFileError::Unreadable {
                    path: current,
                    source,
                });
            }
        }
    }
    Err(LocalFileError::SymlinkLoop {
        path: path.to_path_buf(),
    })
}

/// The mode to write: the existing file's when it grants nothing beyond [`DEFAULT_MODE`]
/// (say 0400), else the default (a credential file never stays group- or world-readable).
pub fn mode_to_write(existing: Option<u32>) -> u32 {
    match existing.map(|m| m & 0o7777) {
        Some(mode) if mode & !DEFAULT_MODE == 0 => mode,
        _ => DEFAULT_MODE,
    }
}

/// Replaces the file at `path` with `content`, atomically (a temporary file in the same
/// directory, synced, then renamed over it). A symlink stays a symlink: its final target is
/// replaced. The target keeps its mode when stricter than 0600; parent directories are created.
pub fn write_private(path: &Path, content: &Secret) -> Result<(), LocalFileError> {
    let target = write_target(path)?;
    let existing = existing_meta(&target)?;
    let mode = mode_to_write(existing.as_ref().map(|m| m.permissions().mode()));
    write_atomic(
        &target,
        content.expose().as_bytes(),
        mode,
        existing.as_ref(),
    )
}

/// Replaces an existing file (such as the spec) with `bytes`, atomically, through symlinks,
/// keeping its mode and owner.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), LocalFileError> {
    let target = write_target(path)?;
    let existing = existing_meta(&target)?;
    let mode = existing
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    write_atomic(&target, bytes, mode, existing.as_ref())
}

fn existing_meta(target: &Path) -> Result<Option<std::fs::Metadata>, LocalFileError> {
    match fs_err::metadata(target) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LocalFileError::Unreadable {
            path: target.to_path_buf(),
            source,
        }),
    }
}

/// Writes `bytes` to a temporary file beside `target` (mode `mode`, the owner of `existing`
/// when it can be kept), syncs it and renames it over `target`.
fn write_atomic(
    target: &Path,
    bytes: &[u8],
    mode: u32,
    existing: Option<&std::fs::Metadata>,
) -> Result<(), LocalFileError> {
    let fail = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalFileError::Write { what, path, source }
    };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf);
    if let Some(dir) = &dir {
        fs_err::create_dir_all(dir).map_err(fail("creating the directory", dir))?;
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .unwrap_or_default()
        .join(format!(".{name}.k3sctl-tmp.{}", std::process::id()));
    let written = (|| {
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(DEFAULT_MODE)
            .open(&tmp)
            .map_err(fail("creating", &tmp))?;
        file.write_all(bytes).map_err(fail("writing", &tmp))?;
        if let Some(meta) = existing {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; for anyone else the owner is already theirs.
            let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail("setting the mode of", &tmp))?;
        file.sync_all().map_err(fail("syncing", &tmp))?;
        fs_err::rename(&tmp, target).map_err(fail("replacing", target))
    })();
    if written.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs_err::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).expect("exists").permissions().mode() & 0o7777
    }

    #[test]
    fn absent_is_none_and_a_dangling_link_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            read_existing(&dir.path().join("nope"))
                .expect("ok")
                .is_none()
        );
        symlink("missing.yaml", dir.path().join("config")).expect("link");
        assert!(
            read_existing(&dir.path().join("config"))
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn unreadable_is_an_error_naming_the_path_and_the_remedy() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where a file is expected fails to read for root too.
        let path = dir.path().join("config");
        fs_err::create_dir(&path).expect("dir");
        let err = read_existing(&path).expect_err("a directory is not absent");
        let said = err.to_string();
        assert!(said.contains(&path.display().to_string()), "{said}");
        assert!(said.contains("left untouched"), "{said}");
        assert!(said.contains("move it away"), "{said}");

        let binary = dir.path().join("binary");
        fs_err::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        let said = read_existing(&binary).expect_err("not text").to_string();
        assert!(said.contains("not UTF-8"), "{said}");
    }

    #[test]
    fn writes_through_a_symlink_chain_and_keeps_the_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs_err::write(d.join("k3s-public.yaml"), "old").expect("write");
        symlink("k3s-public.yaml", d.join("middle")).expect("link");
        symlink(d.join("middle"), d.join("config")).expect("link");
        write_private(&d.join("config"), &Secret::new("new")).expect("writes");
        for link in ["config", "middle"] {
            let meta = fs_err::symlink_metadata(d.join(link)).expect("exists");
            assert!(meta.file_type().is_symlink(), "{link} is no longer a link");
        }
        assert_eq!(
            fs_err::read_to_string(d.join("k3s-public.yaml")).expect("read"),
            "new"
        );
        // Nothing left behind next to the target.
        let names: Vec<String> = fs_err::read_dir(d)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_dangling_link_gets_its_target_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        symlink("sub/k3s-private.yaml", d.join("config")).expect("link");
        write_private(&d.join("config"), &Secret::new("x")).expect("writes");
        assert!(
            fs_err::symlink_metadata(d.join("config"))
                .expect("exists")
                .file_type()
                .is_symlink()
        );
        assert_eq!(mode(&d.join("sub/k3s-private.yaml")), 0o600);
    }

    #[test]
    fn a_link_loop_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        symlink("b", d.join("a")).expect("link");
        symlink("a", d.join("b")).expect("link");
        let err = write_private(&d.join("a"), &Secret::new("x")).expect_err("loop");
        assert!(matches!(err, LocalFileError::SymlinkLoop { .. }), "{err}");
    }

    #[test]
    fn replace_file_keeps_mode_and_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs_err::write(d.join("cluster.yaml"), "a").expect("write");
        fs_err::set_permissions(
            d.join("cluster.yaml"),
            std::fs::Permissions::from_mode(0o664),
        )
        .expect("chmod");
        symlink("cluster.yaml", d.join("spec.yaml")).expect("link");
        replace_file(&d.join("spec.yaml"), b"b").expect("replaces");
        assert_eq!(mode(&d.join("cluster.yaml")), 0o664);
        assert_eq!(fs_err::read(d.join("cluster.yaml")).expect("read"), b"b");
        assert!(
            fs_err::symlink_metadata(d.join("spec.yaml"))
                .expect("exists")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_stricter_mode_is_kept_and_a_looser_one_tightened() {
        assert_eq!(mode_to_write(None), 0o600);
        assert_eq!(mode_to_write(Some(0o100400)), 0o400);
        assert_eq!(mode_to_write(Some(0o100600)), 0o600);
        assert_eq!(mode_to_write(Some(0o100644)), 0o600);
        assert_eq!(mode_to_write(Some(0o100640)), 0o600);
        assert_eq!(mode_to_write(Some(0o100700)), 0o600);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.yaml");
        fs_err::write(&path, "a").expect("write");
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        write_private(&path, &Secret::new("b")).expect("writes");
        assert_eq!(mode(&path), 0o400);
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private(&path, &Secret::new("c")).expect("writes");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs_err::read_to_string(&path).expect("read"), "c");
    }
}
