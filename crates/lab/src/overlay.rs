//! Per-host root file systems: an overlay mount with the shared base image as the read-only
//! lower layer and the host's own upper layer. Costs milliseconds and a few MB per host.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command;
use crate::error::{Result, fs_step};

/// Mounts `lower` + `upper` (with `work`) at `target`, creating the directories.
pub fn mount(host: &str, lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for dir in [upper, work, target] {
        fs_err::create_dir_all(dir)
            .map_err(fs_step(format!("host {host}: create overlay dirs")))?;
    }
    if is_mounted(target) {
        return Ok(());
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    command::run(
        &format!("host {host}: mount overlay root"),
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(target),
        "the kernel needs overlayfs (modprobe overlay) and the state dir must not be on overlayfs",
    )?;
    Ok(())
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = parse_mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Whether `path` is a mount point.
pub fn is_mounted(path: &Path) -> bool {
    let text = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mount_points(&text).iter().any(|p| p == path)
}

/// Unmounts `path`, lazily if a normal unmount is refused (busy).
pub fn unmount(path: &Path) -> Result<()> {
    let normal = command::output(
        "unmount",
        Command::new("umount").arg(path),
        "a process still uses the mount",
    )?;
    if normal.status.success() || !is_mounted(path) {
        return Ok(());
    }
    command::run(
        &format!("unmount {} (lazy)", path.display()),
        Command::new("umount").arg("-l").arg(path),
        "find users of the mount with `fuser -vm PATH`",
    )?;
    Ok(())
}

/// Mount points (field 5) from /proc/self/mountinfo text, with octal escapes decoded.
pub fn parse_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_mount_points_are_decoded() {
        let text = "44 27 0:39 / /var/lib/k3sctl-lab/a/hosts/a-1/root rw - overlay overlay rw\n\
                    45 27 0:40 / /tmp/with\\040space rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse_mount_points(text),
            vec![
                PathBuf::from("/var/lib/k3sctl-lab/a/hosts/a-1/root"),
                PathBuf::from("/tmp/with space")
            ]
        );
    }
}
