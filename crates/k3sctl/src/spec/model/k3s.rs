//! Which K3s to install and where its binary comes from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::k3s::channel::DEFAULT_CHANNEL_URL;
pub use crate::k3s::release::{DEFAULT_BINARY_URL, DEFAULT_SHA256_URL};
use crate::k3s::version::K3sVersion;
use crate::spec::version::ChannelName;

/// The K3s release to run and its sources. Exactly one of `version` and `channel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K3sSpec {
    /// An exact release, for example `v1.34.3+k3s1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<K3sVersion>,
    /// A release channel resolved at apply time: stable, latest, testing or vX.Y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelName>,
    /// Base URL of the channel server. Default: https://update.k3s.io/v1-release/channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_url: Option<String>,
    /// Where the k3s binary comes from. Default: the GitHub release download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinarySource>,
    /// Airgap images tarball copied to every host (relative to the spec file). Must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airgap_images: Option<String>,
}

/// Where the k3s binary comes from: exactly one of `url` and `file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BinarySource {
    /// Download URL template; `{version}`, `{asset}` (k3s, k3s-arm64, ...) and `{arch}` are
    /// replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL template of the sha256sum file the download is checked against (with `url` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_url: Option<String>,
    /// A local k3s binary (airgap), relative to the spec file. Must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// What to install: an exact version or a channel to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// `k3s.version`.
    Exact(K3sVersion),
    /// `k3s.channel`.
    Channel(ChannelName),
}

/// The binary source with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryOrigin {
    /// Download from URL templates.
    Download {
        /// Binary URL template.
        url: String,
        /// Checksum file URL template.
        sha256_url: String,
    },
    /// A local file, as written in the spec (resolve with `LoadedSpec::resolve_path`).
    File(String),
}

impl K3sSpec {
    /// The version selector; `None` only for a spec that did not pass validation.
    pub fn selector(&self) -> Option<VersionSelector> {
        match (&self.version, &self.channel) {
            (Some(version), None) => Some(VersionSelector::Exact(*version)),
            (None, Some(channel)) => Some(VersionSelector::Channel(channel.clone())),
            _ => None,
        }
    }

    /// The channel server base URL, default applied.
    pub fn channel_url(&self) -> &str {
        self.channel_url.as_deref().unwrap_or(DEFAULT_CHANNEL_URL)
    }

    /// The binary source, defaults applied.
    pub fn binary_origin(&self) -> BinaryOrigin {
        let source = self.binary.clone().unwrap_or_default();
        match source.file {
            Some(file) => BinaryOrigin::File(file),
            None => BinaryOrigin::Download {
                url: source.url.unwrap_or_else(|| DEFAULT_BINARY_URL.to_owned()),
                sha256_url: source
                    .sha256_url
                    .unwrap_or_else(|| DEFAULT_SHA256_URL.to_owned()),
            },
        }
    }
}
