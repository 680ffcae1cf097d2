//! Lays out a directory like a K3s GitHub release: the binary asset plus `sha256sum-<arch>.txt`.

use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::version::{Stamp, VersionError, stamp_file};

/// The release asset name for an architecture (`k3s` for amd64, `k3s-arm64`, `k3s-armhf`).
pub fn asset_name(arch: &str) -> String {
    if arch == "amd64" {
        "k3s".to_string()
    } else {
        format!("k3s-{arch}")
    }
}

/// Writes `<dir>/<asset>` with `stamp` and `<dir>/sha256sum-<arch>.txt` beside it.
/// Returns the path of the binary.
pub fn write_release(
    from: &Path,
    dir: &Path,
    stamp: &Stamp,
    arch: &str,
) -> Result<PathBuf, VersionError> {
    let asset = asset_name(arch);
    let bin = dir.join(&asset);
    stamp_file(from, &bin, stamp)?;
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| VersionError::Io { path, source }
    };
    let bytes = fs_err::read(&bin).map_err(io(&bin))?;
    let sum = hex::encode(sha2::Sha256::digest(&bytes));
    let sums = dir.join(format!("sha256sum-{arch}.txt"));
    crate::paths::write_atomic(&sums, format!("{sum}  {asset}\n").as_bytes(), 0o644)
        .map_err(io(&sums))?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_follow_github_release() {
        assert_eq!(asset_name("amd64"), "k3s");
        assert_eq!(asset_name("arm64"), "k3s-arm64");
    }
}
