//! The new K3s binary on the operator's machine: the release download (published sha256
//! checked, cached) or an airgap file, whose version is checked on the first node before any
//! node changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::UpgradeError;
use crate::host::{ExecRequest, Transport, UploadRequest, UploadSource, shell};
use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::ops::OpsError;
use crate::ops::binary::{LocalBinaries, from_file};
use crate::ops::release_cache::{cache_dir, fill_cache, release_checksums};
use crate::spec::{BinaryOrigin, LoadedSpec};

/// Where the candidate binary is staged on the first node for its version check (removed after).
pub const CANDIDATE_CHECK_PATH: &str =
    concat!(crate::k3s::ports::data_dir!(), "/k3sctl-candidate-k3s");

/// The binary to deliver: an airgap file, or the download of `version`.
pub fn airgap_file(spec: &LoadedSpec, flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_path_buf());
    }
    match spec.cluster.spec.k3s.binary_origin() {
        BinaryOrigin::File(file) => Some(spec.resolve_path(&file)),
        BinaryOrigin::Download { .. } => None,
    }
}

/// Reads an airgap binary and checks it runs one of the nodes' architectures.
pub async fn airgap_binaries(
    path: &Path,
    archs: &BTreeSet<Arch>,
) -> Result<LocalBinaries, UpgradeError> {
    let binaries = from_file(path).await.map_err(OpsError::from)?;
    for arch in archs {
        if binaries.path(*arch).is_none() {
            return Err(UpgradeError::Target(format!(
                "{}: the binary is not for {arch}, which some nodes run\n  hint: give the \
                 binary for the nodes' architecture",
                path.display()
            )));
        }
    }
    Ok(binaries)
}

/// Downloads (or finds in the cache) the release binaries of `version` for `archs`.
pub async fn download(
    spec: &LoadedSpec,
    version: &K3sVersion,
    archs: &BTreeSet<Arch>,
) -> Result<LocalBinaries, UpgradeError> {
    let BinaryOrigin::Download { url, sha256_url } = spec.cluster.spec.k3s.binary_origin() else {
        return Err(UpgradeError::Target(
            "spec.k3s.binary.file is set: use it as airgap".into(),
        ));
    };
    let binaries = release_checksums(version, archs, &sha256_url, &cache_dir()).await?;
    fill_cache(version, &binaries, &url).await?;
    Ok(binaries)
}

/// Stages `binary` on the first node, runs `--version` there and removes it: the version the
/// binary really is, checked before any node changes.
pub async fn version_on_node(
    transport: &dyn Transport,
    binary: &Path,
    sha256: &str,
) -> Result<K3sVersion, UpgradeError> {
    let host_err = |e: crate::host::HostError| UpgradeError::Ops(OpsError::Host(e));
    transport
        .upload(UploadRequest {
            source: UploadSource::File(binary.to_path_buf()),
            remote: PathBuf::from(CANDIDATE_CHECK_PATH),
            mode: 0o755,
            sha256: sha256.to_string(),
            timeout: Some(Duration::from_secs(600)),
        })
        .await
        .map_err(host_err)?;
    let staged = shell::quote(CANDIDATE_CHECK_PATH);
    let out = transport
        .exec(
            ExecRequest::new(format!(
                "{staged} --version 2>&1; status=$?; rm -f {staged}; exit $status"
            ))
            .sudo(true)
            .describe("running the candidate binary's --version"),
        )
        .await
        .map_err(host_err)?;
    let text = out.stdout_text();
    if !out.success() {
        return Err(UpgradeError::Target(format!(
            "{}: {} --version did not run on {} (exit {:?}): {}\n  hint: is it a k3s binary for \
             this architecture?",
            binary.display(),
            binary.display(),
            transport.name(),
            out.status,
            text.trim()
        )));
    }
    K3sVersion::from_version_output(&text).map_err(|e| {
        UpgradeError::Target(format!(
            "{}: its --version output on {} is not a K3s version: {e}",
            binary.display(),
            transport.name()
        ))
    })
}
