//! Taking a K3s etcd snapshot on one server (`k3s etcd-snapshot save --name N`, which asks the
//! server running there) and finding where K3s put it (`ls -o json`): shared by
//! `k3sctl etcd snapshot save`, the upgrade's pre-upgrade snapshot and the snapshot after a
//! SQLite→etcd conversion.

use serde::Serialize;

use super::step_error::StepError;
use crate::host::{ExecRequest, Transport, shell};
use crate::kube::{SnapshotFile, parse_snapshot_files};

/// A snapshot just taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// The server it was taken on.
    pub node: String,
    /// Its name.
    pub name: String,
    /// Where it is (`file:///var/lib/rancher/k3s/server/db/snapshots/...`).
    pub location: String,
    /// Size in bytes, when K3s reported it.
    pub size: Option<u64>,
}

/// Pure: the snapshot name in `k3s etcd-snapshot save`'s log (`Snapshot <name> saved.`).
pub fn saved_name(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let i = l.find("Snapshot ")?;
        let rest = &l[i + "Snapshot ".len()..];
        let end = rest.find(" saved.")?;
        Some(rest[..end].to_string()).filter(|n| !n.is_empty() && !n.contains(' '))
    })
}

/// Pure: a snapshot name prefix K3s accepts (and that is a valid object name part): letters,
/// digits, dots and dashes; anything else (`+` of a K3s version) becomes a dash.
pub fn snapshot_prefix(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs `k3s etcd-snapshot ARGS` on the server; returns stdout and stderr (K3s logs there).
pub async fn k3s_snapshot(
    t: &dyn Transport,
    args: &str,
    what: &str,
) -> Result<(String, String), StepError> {
    let out = t
        .exec_checked(
            ExecRequest::new(format!("k3s etcd-snapshot {args}"))
                .sudo(true)
                .describe(what.to_string()),
        )
        .await?;
    Ok((out.stdout_text(), out.stderr_text()))
}

/// The snapshots K3s lists on this server.
pub async fn local_list(t: &dyn Transport) -> Result<Vec<SnapshotFile>, StepError> {
    let (out, _) = k3s_snapshot(t, "ls -o json", "listing etcd snapshots").await?;
    parse_snapshot_files(&out)
        .map_err(|e| StepError::from(format!("{}: k3s etcd-snapshot ls -o json: {e}", t.name())))
}

/// Takes a snapshot named `prefix` on the server `t` reaches (a healthy voter: a learner
/// refuses) and says where it is.
pub async fn save_on(t: &dyn Transport, prefix: &str) -> Result<Saved, StepError> {
    let node = t.name().to_string();
    let (out, log) = k3s_snapshot(
        t,
        &format!("save --name {}", shell::quote(prefix)),
        "taking an etcd snapshot",
    )
    .await?;
    let taken = saved_name(&log)
        .or_else(|| saved_name(&out))
        .ok_or_else(|| {
            StepError::from(format!(
                "{node}: k3s etcd-snapshot save did not say which snapshot it saved:\n{log}"
            ))
        })?;
    let found = local_list(t).await?.into_iter().find(|f| f.name == taken);
    Ok(Saved {
        node,
        location: found
            .as_ref()
            .map(|f| f.location.clone())
            .unwrap_or_default(),
        size: found.and_then(|f| f.size),
        name: taken,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_name_is_read_from_k3s_log() {
        let log = "time=\"2026-01-01T00:00:00Z\" level=info msg=\"Snapshot on-demand-s1-1767225600 saved.\"\n";
        assert_eq!(saved_name(log).as_deref(), Some("on-demand-s1-1767225600"));
        assert_eq!(saved_name("nothing here"), None);
    }

    #[test]
    fn a_version_becomes_a_valid_snapshot_name() {
        assert_eq!(
            snapshot_prefix("pre-upgrade-v1.34.1+k3s1"),
            "pre-upgrade-v1.34.1-k3s1"
        );
    }
}
