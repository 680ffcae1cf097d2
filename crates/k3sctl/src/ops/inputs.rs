//! Everything the plan needs from outside the spec file, read on the operator's machine:
//! the K3s version and binary, registry credentials, manifest files.

use std::collections::BTreeSet;

use crate::k3s::release::Arch;
use crate::k3s::version::K3sVersion;
use crate::plan::from_spec::{Resolved, resolve_registries};
use crate::secret::Secret;
use crate::spec::{BinaryOrigin, LoadedSpec, ValueRef, VersionSelector};

use super::binary::{LocalBinaries, from_file};
use super::channel_lookup::channel_version;
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
            fs_err::read_to_string(&full)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| format!("cannot read {}: {e}", full.display()))
        }
    }
}

/// The version the spec asks for: `k3s.version`, or what `k3s.channel` points at on the
/// channel server — its redirect form (`<channelUrl>/<name>` redirects to the release tag),
/// else the channel listing (a running node at another version is then refused by the
/// planner, which points at `k3sctl upgrade`).
pub async fn spec_version(spec: &LoadedSpec) -> Result<K3sVersion, OpsError> {
    let k3s = &spec.cluster.spec.k3s;
    match k3s.selector() {
        Some(VersionSelector::Exact(version)) => Ok(version),
        Some(VersionSelector::Channel(channel)) => {
            channel_version(k3s.channel_url(), &channel.to_string())
                .await
                .map_err(|e| OpsError::Download(format!("spec.k3s.channel {channel}: {e}")))
        }
        None => Err(OpsError::SpecValue {
            field: "spec.k3s".into(),
            problem: "set exactly one of version or channel".into(),
        }),
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
        resolve_registries(&spec.cluster.spec.registries, &|v| read_value_ref(spec, v)).map_err(
            |e| OpsError::SpecValue {
                field: "spec.registries".into(),
                problem: e.to_string(),
            },
        )?;
    let mut manifests = Vec::new();
    for (index, manifest) in spec.cluster.spec.addons.manifests.iter().enumerate() {
        let path = spec.resolve_path(&manifest.file);
        let text = fs_err::read_to_string(&path).map_err(|e| OpsError::SpecValue {
            field: format!("spec.addons.manifests[{index}].file"),
            problem: format!("{}: {e}", path.display()),
        })?;
        manifests.push((manifest.name.clone(), text));
    }
    Ok(Resolved {
        registries,
        manifests,
        airgap_images: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ops::download::test_site::serve;

    const LISTING: &str = r#"{"resourceType":"channels","data":[
        {"id":"stable","name":"stable","latest":"v1.33.5+k3s1"},
        {"id":"latest","name":"latest","latest":"v1.34.3+k3s1"}]}"#;

    fn spec_with(k3s: &str) -> LoadedSpec {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.yaml");
        let text = format!(
            "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nmetadata: {{name: lab}}\nspec:\n  hosts:\n  \
             - {{name: s1, address: 10.0.0.2, role: server}}\n  k3s: {k3s}\n"
        );
        fs_err::write(&path, text).expect("write");
        crate::spec::load_file(&path).expect("valid spec")
    }

    #[tokio::test]
    async fn channel_resolves_through_the_channel_server() {
        let base = serve(BTreeMap::from([(
            "/v1-release/channels".to_string(),
            ("200 OK".to_string(), LISTING.as_bytes().to_vec()),
        )]))
        .await;
        let spec = spec_with(&format!(
            "{{channel: latest, channelUrl: \"{base}/v1-release/channels\"}}"
        ));
        assert_eq!(
            spec_version(&spec).await.expect("resolves").to_string(),
            "v1.34.3+k3s1"
        );
        let pinned = spec_with("{version: v1.33.5+k3s1}");
        assert_eq!(
            spec_version(&pinned).await.expect("pinned").to_string(),
            "v1.33.5+k3s1"
        );
    }

    #[tokio::test]
    async fn the_redirect_form_wins_over_the_listing() {
        // While a release is published the two can disagree: the redirect is what the
        // official installer follows.
        let base = serve(BTreeMap::from([
            (
                "/v1-release/channels".to_string(),
                ("200 OK".to_string(), LISTING.as_bytes().to_vec()),
            ),
            (
                "/v1-release/channels/stable".to_string(),
                (
                    "302 Found\r\nLocation: https://github.com/k3s-io/k3s/releases/tag/v1.33.6%2Bk3s1"
                        .to_string(),
                    vec![],
                ),
            ),
        ]))
        .await;
        let spec_for = |channel: &str| {
            spec_with(&format!(
                "{{channel: {channel}, channelUrl: \"{base}/v1-release/channels\"}}"
            ))
        };
        let stable = spec_version(&spec_for("stable")).await.expect("redirect");
        assert_eq!(stable.to_string(), "v1.33.6+k3s1");
        // No redirect for this channel: the listing answers.
        let latest = spec_version(&spec_for("latest")).await.expect("listing");
        assert_eq!(latest.to_string(), "v1.34.3+k3s1");
    }
}
