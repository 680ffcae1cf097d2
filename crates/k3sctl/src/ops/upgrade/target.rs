//! Which version to upgrade to: `--to`, `--channel` (through the channel server), the version an
//! airgap `--binary` reports, or the spec's `k3s.version` / `k3s.channel`.

use std::path::PathBuf;

use super::error::UpgradeError;
use crate::k3s::version::K3sVersion;
use crate::ops::channel_lookup::channel_version;
use crate::plan::upgrade::TargetSource;
use crate::spec::{LoadedSpec, VersionSelector};

/// What the operator asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetRequest {
    /// `--to vX.Y.Z+k3sN`.
    pub to: Option<K3sVersion>,
    /// `--channel NAME`.
    pub channel: Option<String>,
    /// `--binary FILE` (airgap).
    pub binary: Option<PathBuf>,
}

/// The target, or "ask the airgap binary" when only `--binary` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A known version and where it came from.
    Known(K3sVersion, TargetSource),
    /// The version `--binary` reports on the first node.
    FromBinary,
}

/// Resolves the target. Network I/O only for channels.
pub async fn resolve_target(
    spec: &LoadedSpec,
    request: &TargetRequest,
) -> Result<Target, UpgradeError> {
    if let Some(to) = request.to {
        return Ok(Target::Known(to, TargetSource::Flag));
    }
    let channel_url = spec.cluster.spec.k3s.channel_url();
    if let Some(name) = &request.channel {
        return resolve_channel(channel_url, name).await;
    }
    if request.binary.is_some() {
        return Ok(Target::FromBinary);
    }
    match spec.cluster.spec.k3s.selector() {
        Some(VersionSelector::Exact(version)) => Ok(Target::Known(version, TargetSource::Spec)),
        Some(VersionSelector::Channel(channel)) => {
            resolve_channel(channel_url, &channel.name()).await
        }
        None => Err(UpgradeError::Target(
            "spec.k3s: set exactly one of version or channel, or pass --to / --channel".into(),
        )),
    }
}

async fn resolve_channel(channel_url: &str, name: &str) -> Result<Target, UpgradeError> {
    let version = channel_version(channel_url, name).await.map_err(|e| {
        UpgradeError::Target(format!(
            "cannot resolve channel {name} at {channel_url}: {e}\n  hint: check \
             spec.k3s.channelUrl, or pin the version with --to"
        ))
    })?;
    Ok(Target::Known(
        version,
        TargetSource::Channel(name.to_string()),
    ))
}
