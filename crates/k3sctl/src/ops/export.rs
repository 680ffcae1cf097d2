//! Kubeconfig exports on the operator's machine: rewrite the server's k3s.yaml per export,
//! write it with mode 0600 only when it differs, optionally merge into the user's kubeconfig.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::Transport;
use crate::k3s::kubeconfig::{K3S_KUBECONFIG_PATH, rewrite_k3s_kubeconfig};
use crate::k3s::kubeconfig_merge::{EntryChange, merge_kubeconfig};
use crate::plan::DesiredExport;
use crate::secret::Secret;
use crate::spec::LoadedSpec;

use super::error::OpsError;

/// What an export did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportResult {
    /// Export name.
    pub name: String,
    /// File written.
    pub path: String,
    /// Context name.
    pub context: String,
    /// Whether the file changed.
    pub changed: bool,
    /// The merge into the user's kubeconfig, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeResult>,
}

/// A merge into the user's kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeResult {
    /// The user's kubeconfig path.
    pub path: String,
    /// Per-entry changes.
    pub changes: Vec<EntryChange>,
}

/// The exports the spec asks for (up-to-date unknown).
pub fn desired_exports(spec: &LoadedSpec) -> Vec<DesiredExport> {
    let cluster = &spec.cluster;
    cluster
        .spec
        .kubeconfigs
        .iter()
        .map(|e| DesiredExport {
            name: e.name.clone(),
            path: spec.resolve_path(&e.path).to_string_lossy().into_owned(),
            context: cluster.export_context(e),
            server: cluster.export_server(e).unwrap_or_default(),
            merge: e.merge,
            up_to_date: None,
        })
        .collect()
}

/// Reads the admin kubeconfig from the first server.
pub async fn read_admin_kubeconfig(server: &dyn Transport) -> Result<Secret, OpsError> {
    let bytes = server
        .read_file(Path::new(K3S_KUBECONFIG_PATH))
        .await?
        .ok_or_else(|| {
            OpsError::Kubeconfig(format!(
                "{}: {K3S_KUBECONFIG_PATH} does not exist: K3s has not started there yet",
                server.name()
            ))
        })?;
    Ok(Secret::new(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The content of one export.
pub fn export_content(admin: &Secret, export: &DesiredExport) -> Result<Secret, OpsError> {
    rewrite_k3s_kubeconfig(admin, &export.server, &export.context)
        .map_err(|e| OpsError::Kubeconfig(format!("kubeconfig export {}: {e}", export.name)))
}

fn read_local(path: &Path) -> Option<Secret> {
    std::fs::read_to_string(path).ok().map(Secret::new)
}

/// The user's kubeconfig: the first entry of $KUBECONFIG, else ~/.kube/config.
pub fn user_kubeconfig_path() -> PathBuf {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty())
    {
        return first;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".kube").join("config")
}

/// Whether the export file (and the merge, when asked) already match.
pub fn is_up_to_date(export: &DesiredExport, content: &Secret) -> bool {
    if read_local(Path::new(&export.path)).as_ref() != Some(content) {
        return false;
    }
    if export.merge {
        let existing = read_local(&user_kubeconfig_path()).unwrap_or_default();
        return merge_kubeconfig(&existing, content).is_ok_and(|m| !m.changed());
    }
    true
}

/// Writes `content` to `path` with mode 0600 (atomically, parent directories created).
pub fn write_private(path: &Path, content: &Secret) -> Result<(), OpsError> {
    let err = |what: &str, e: std::io::Error| {
        OpsError::Kubeconfig(format!("{what} {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err("creating the directory of", e))?;
    }
    let tmp = path.with_extension(format!("k3sctl-tmp.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err("writing", e))?;
    file.write_all(content.expose().as_bytes())
        .map_err(|e| err("writing", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err("chmod", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| err("replacing", e))
}

/// Writes one export (and merges it) when it differs.
pub fn write_export(export: &DesiredExport, content: &Secret) -> Result<ExportResult, OpsError> {
    let path = Path::new(&export.path);
    let changed = read_local(path).as_ref() != Some(content);
    if changed {
        write_private(path, content)?;
    }
    let merged = if export.merge {
        let user = user_kubeconfig_path();
        let existing = read_local(&user).unwrap_or_default();
        let merged = merge_kubeconfig(&existing, content)
            .map_err(|e| OpsError::Kubeconfig(format!("merging into {}: {e}", user.display())))?;
        if merged.changed() {
            write_private(&user, &merged.content)?;
        }
        Some(MergeResult {
            path: user.to_string_lossy().into_owned(),
            changes: merged.changes,
        })
    } else {
        None
    };
    Ok(ExportResult {
        name: export.name.clone(),
        path: export.path.clone(),
        context: export.context.clone(),
        changed,
        merged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_0600_only_when_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let export = DesiredExport {
            name: "admin".into(),
            path: dir
                .path()
                .join("sub/kube.yaml")
                .to_string_lossy()
                .into_owned(),
            context: "lab-admin".into(),
            server: "https://10.0.0.2:6443".into(),
            merge: false,
            up_to_date: None,
        };
        let content = Secret::new("apiVersion: v1\nkind: Config\n");
        assert!(!is_up_to_date(&export, &content));
        let first = write_export(&export, &content).expect("writes");
        assert!(first.changed);
        let mode = std::fs::metadata(&export.path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(is_up_to_date(&export, &content));
        assert!(!write_export(&export, &content).expect("writes").changed);
    }
}
