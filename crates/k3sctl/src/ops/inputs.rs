//! Everything the plan needs from outside the spec file, read on the operator's machine:
//! the K3s version and binary, registry credentials, manifest files.

use std::collections::BTreeSet;

use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::plan::from_spec::{Resolved, resolve_registries};
use crate::secret::Secret;
use crate::spec::{BinaryOrigin, LoadedSpec, ValueRef, VersionSelector};

use super::binary::{LocalBinaries, from_file};
use super::error::OpsError;
use super::release_cache::{cache_dir, release_checksums};

/// Reads a credential reference: an environment variable or a file (trailing newline removed).
pub fn read_value_ref(spec: &LoadedSpec, value: &ValueRef) -> Result<Secret, String> {
    match value {
        ValueRef::Env(name) => std::env::var(name)
            .map(Secret::new)
            .map_err(|_| format!("environment variable {name} is not set")),
        ValueRef::File(path) => {
            let full = spec.resolve_path(path);
            std::fs::read_to_string(&full)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| format!("cannot read {}: {e}", full.display()))
        }
    }
}

/// The version the spec asks for.
pub fn spec_version(spec: &LoadedSpec) -> Result<K3sVersion, OpsError> {
    match spec.cluster.spec.k3s.selector() {
        Some(VersionSelector::Exact(version)) => version
            .to_string()
            .parse()
            .map_err(|e| OpsError::Spec(format!("spec.k3s.version: {e}"))),
        Some(VersionSelector::Channel(channel)) => Err(OpsError::Unsupported(format!(
            "spec.k3s.channel ({channel}) is resolved by `k3sctl upgrade`; for apply, pin \
             spec.k3s.version"
        ))),
        None => Err(OpsError::Spec(
            "spec.k3s: set exactly one of version or channel".into(),
        )),
    }
}

/// The local binaries for the observed architectures: the spec's file, or the published
/// checksums of the release (the download itself happens in apply, into the cache).
pub async fn local_binaries(
    spec: &LoadedSpec,
    version: &K3sVersion,
    archs: &BTreeSet<Arch>,
) -> Result<LocalBinaries, OpsError> {
    match spec.cluster.spec.k3s.binary_origin() {
        BinaryOrigin::File(file) => Ok(from_file(&spec.resolve_path(&file)).await?),
        BinaryOrigin::Download { sha256_url, .. } => {
            release_checksums(version, archs, &sha256_url, &cache_dir()).await
        }
    }
}

/// Registry credentials and manifest files.
pub fn resolve_inputs(spec: &LoadedSpec) -> Result<Resolved, OpsError> {
    let registries =
        resolve_registries(&spec.cluster.spec.registries, &|v| read_value_ref(spec, v))
            .map_err(|e| OpsError::Spec(e.to_string()))?;
    let mut manifests = Vec::new();
    for (index, manifest) in spec.cluster.spec.addons.manifests.iter().enumerate() {
        let path = spec.resolve_path(&manifest.file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            OpsError::Spec(format!(
                "spec.addons.manifests[{index}].file {}: {e}",
                path.display()
            ))
        })?;
        manifests.push((manifest.name.clone(), text));
    }
    Ok(Resolved {
        registries,
        manifests,
    })
}
