//! The release download on the operator's machine: checksums from the release's
//! `sha256sum-<arch>.txt`, binaries downloaded once into
//! `~/.cache/k3sctl/releases/<version>/<asset>` and verified there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::binary::LocalBinaries;
use super::download::{get_text, get_to_file};
use super::error::OpsError;
use crate::k3s::release::{Arch, checksum_for, expand_url};
use crate::k3s::version::K3sVersion;

/// The cache directory: `$XDG_CACHE_HOME/k3sctl/releases`, else `~/.cache/k3sctl/releases`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".cache")
        });
    base.join("k3sctl").join("releases")
}

/// Where an asset is cached.
pub fn cached_path(root: &std::path::Path, version: &K3sVersion, arch: Arch) -> PathBuf {
    root.join(version.to_string()).join(arch.asset())
}

/// The published sha256 of each needed architecture's binary (reads only the listings).
pub async fn release_checksums(
    version: &K3sVersion,
    archs: &BTreeSet<Arch>,
    sha256_template: &str,
    root: &std::path::Path,
) -> Result<LocalBinaries, OpsError> {
    let mut by_arch = BTreeMap::new();
    for arch in archs {
        let url = expand_url(sha256_template, version, *arch).map_err(|e| OpsError::SpecValue {
            field: "spec.k3s.binary.sha256Url".into(),
            problem: e.to_string(),
        })?;
        let listing = get_text(&url)
            .await
            .map_err(|e| OpsError::Download(e.to_string()))?;
        let sha = checksum_for(&listing, arch.asset())
            .map_err(|e| OpsError::Download(format!("{url}: {e}")))?;
        by_arch.insert(*arch, (cached_path(root, version, *arch), sha));
    }
    Ok(LocalBinaries { by_arch })
}

/// Makes sure every binary is in the cache with its published hash, downloading what is
/// missing or damaged.
pub async fn fill_cache(
    version: &K3sVersion,
    binaries: &LocalBinaries,
    url_template: &str,
) -> Result<(), OpsError> {
    for (arch, (path, sha)) in &binaries.by_arch {
        if crate::host::hash::sha256_file(path)
            .await
            .is_ok_and(|have| &have == sha)
        {
            continue;
        }
        let url = expand_url(url_template, version, *arch).map_err(|e| OpsError::SpecValue {
            field: "spec.k3s.binary.url".into(),
            problem: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(path);
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| OpsError::Download(format!("{}: {e}", dir.display())))?;
        let partial = path.with_extension("part");
        let got = get_to_file(&url, &partial)
            .await
            .map_err(|e| OpsError::Download(e.to_string()))?;
        if &got != sha {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(OpsError::Download(format!(
                "{url}: sha256 {got} does not match the published {sha}; the download was discarded"
            )));
        }
        tokio::fs::rename(&partial, path)
            .await
            .map_err(|e| OpsError::Download(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release site with the GitHub URL shapes: the asset answers 302 to an object URL.
    async fn release_site(asset: &'static [u8], listing: String) -> String {
        let dir = "/k3s-io/k3s/releases/download/v1.33.5%2Bk3s1";
        let routes = BTreeMap::from([
            (
                format!("{dir}/sha256sum-amd64.txt"),
                ("200 OK".to_string(), listing.into_bytes()),
            ),
            (
                format!("{dir}/k3s"),
                ("302 Found\r\nLocation: /objects/k3s".to_string(), vec![]),
            ),
            (
                "/objects/k3s".to_string(),
                ("200 OK".to_string(), asset.to_vec()),
            ),
        ]);
        let base = super::super::download::test_site::serve(routes).await;
        format!("{base}/k3s-io/k3s/releases/download")
    }

    #[tokio::test]
    async fn downloads_once_verifies_and_reuses_the_cache() {
        let asset: &'static [u8] = b"\x7fELF pretend k3s binary";
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(asset));
        let base = release_site(
            asset,
            format!(
                "{sha}  k3s\n{}  k3s-airgap-images-amd64.tar\n",
                "0".repeat(64)
            ),
        )
        .await;
        let cache = tempfile::tempdir().expect("tempdir");
        let version: K3sVersion = "v1.33.5+k3s1".parse().expect("version");
        let archs = BTreeSet::from([Arch::Amd64]);
        let binaries = release_checksums(
            &version,
            &archs,
            &format!("{base}/{{version}}/sha256sum-{{arch}}.txt"),
            cache.path(),
        )
        .await
        .expect("checksums");
        assert_eq!(binaries.hashes()[&Arch::Amd64], sha);
        let template = format!("{base}/{{version}}/{{asset}}");
        fill_cache(&version, &binaries, &template)
            .await
            .expect("downloads");
        let path = cached_path(cache.path(), &version, Arch::Amd64);
        assert_eq!(fs_err::read(&path).expect("cached"), asset);
        // A second fill finds the cached file and does not need the site.
        fill_cache(&version, &binaries, "http://127.0.0.1:9/{version}/{asset}")
            .await
            .expect("cached");
        // A damaged cache is downloaded again; a wrong published hash is refused.
        fs_err::write(&path, b"damaged").expect("write");
        let mut wrong = binaries.clone();
        if let Some(entry) = wrong.by_arch.get_mut(&Arch::Amd64) {
            entry.1 = "f".repeat(64);
        }
        let err = fill_cache(&version, &wrong, &template)
            .await
            .expect_err("hash mismatch");
        assert!(
            err.to_string().contains("does not match the published"),
            "{err}"
        );
        fill_cache(&version, &binaries, &template)
            .await
            .expect("re-downloads");
        assert_eq!(fs_err::read(&path).expect("cached"), asset);
    }
}
