//! Kubeconfig exports on the operator's machine: rewrite the server's k3s.yaml per export,
//! write it (mode 0600, through symlinks, see `local_file`) only when it differs, optionally
//! merge into the user's kubeconfig. A local file that exists but cannot be read or parsed is
//! refused, never replaced.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::Transport;
use crate::k3s::kubeconfig::{K3S_KUBECONFIG_PATH, KubeconfigError, parse, rewrite_k3s_kubeconfig};
use crate::k3s::kubeconfig_merge::{EntryChange, merge_kubeconfig};
use crate::plan::DesiredExport;
use crate::secret::Secret;
use crate::spec::LoadedSpec;

use super::error::OpsError;
use super::local_file::{LocalFileError, read_existing, write_private};

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

/// A kubeconfig on this machine: `None` when absent, an error when it exists but cannot be
/// read or is not a kubeconfig (k3sctl never replaces such a file). `hint` is appended to the
/// refusal (what else the user can do for this particular file).
fn read_kubeconfig(path: &Path, hint: &str) -> Result<Option<Secret>, LocalFileError> {
    let Some(text) = read_existing(path)? else {
        return Ok(None);
    };
    match parse(text.expose(), "the file") {
        Ok(_) => Ok(Some(text)),
        Err(e) => Err(LocalFileError::NotAKubeconfig {
            path: path.to_path_buf(),
            reason: reason(e),
            hint: hint.to_string(),
        }),
    }
}

/// The parser's own words, without the "<file> is not a kubeconfig" framing.
fn reason(e: KubeconfigError) -> String {
    match e {
        KubeconfigError::NotAKubeconfig { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn export_hint(export: &DesiredExport) -> String {
    format!(
        "; or give spec.kubeconfigs entry `{}` another path",
        export.name
    )
}

fn merge_hint(export: &DesiredExport) -> String {
    format!(
        "; or point $KUBECONFIG elsewhere, or set merge: false on spec.kubeconfigs entry `{}`",
        export.name
    )
}

/// Refuses, before anything changes anywhere, an export path or (for a merged export) the
/// user's kubeconfig `user` that exists but cannot be read or is not a kubeconfig.
pub fn check_local_files(exports: &[DesiredExport], user: &Path) -> Result<(), LocalFileError> {
    for export in exports {
        read_kubeconfig(Path::new(&export.path), &export_hint(export))?;
        if export.merge {
            read_kubeconfig(user, &merge_hint(export))?;
        }
    }
    Ok(())
}

/// Whether the export file (and the merge into `user`, when asked) already match. A file
/// that cannot be read counts as not up to date ([`check_local_files`] refuses it).
pub fn is_up_to_date(export: &DesiredExport, content: &Secret, user: &Path) -> bool {
    if read_existing(Path::new(&export.path))
        .ok()
        .flatten()
        .as_ref()
        != Some(content)
    {
        return false;
    }
    if export.merge {
        return match read_kubeconfig(user, "") {
            Ok(existing) => {
                merge_kubeconfig(&existing.unwrap_or_default(), content).is_ok_and(|m| !m.changed())
            }
            Err(_) => false,
        };
    }
    true
}

/// Writes one export (and merges it into the user's kubeconfig `user`) when it differs.
/// Symlinks are written through; a file that exists but cannot be read or parsed is refused
/// and left untouched.
pub fn write_export(
    export: &DesiredExport,
    content: &Secret,
    user: &Path,
) -> Result<ExportResult, OpsError> {
    let path = Path::new(&export.path);
    let changed = read_kubeconfig(path, &export_hint(export))?.as_ref() != Some(content);
    if changed {
        write_private(path, content)?;
    }
    let merged = if export.merge {
        let existing = read_kubeconfig(user, &merge_hint(export))?.unwrap_or_default();
        let merged =
            merge_kubeconfig(&existing, content).map_err(|e| LocalFileError::NotAKubeconfig {
                path: user.to_path_buf(),
                reason: reason(e),
                hint: merge_hint(export),
            })?;
        if merged.changed() {
            write_private(user, &merged.content)?;
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
    use fs_err::os::unix::fs::symlink;
    use std::os::unix::fs::PermissionsExt;

    fn export(path: &Path, merge: bool) -> DesiredExport {
        DesiredExport {
            name: "admin".into(),
            path: path.to_string_lossy().into_owned(),
            context: "lab-admin".into(),
            server: "https://10.0.0.2:6443".into(),
            merge,
            up_to_date: None,
        }
    }

    const EXPORTED: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: lab-admin\n  cluster:\n    server: https://10.0.0.2:6443\ncontexts:\n- name: lab-admin\n  context:\n    cluster: lab-admin\n    user: lab-admin\ncurrent-context: lab-admin\nusers:\n- name: lab-admin\n  user:\n    token: t\n";
    const FOREIGN: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://192.0.2.1:6443\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\ncurrent-context: other\nusers:\n- name: other\n  user:\n    token: o\n";

    #[test]
    fn writes_0600_only_when_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user-config");
        let export = export(&dir.path().join("sub/kube.yaml"), false);
        let content = Secret::new(EXPORTED);
        assert!(!is_up_to_date(&export, &content, &user));
        let first = write_export(&export, &content, &user).expect("writes");
        assert!(first.changed);
        let mode = fs_err::metadata(&export.path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(is_up_to_date(&export, &content, &user));
        assert!(
            !write_export(&export, &content, &user)
                .expect("writes")
                .changed
        );
        assert!(
            !user.exists(),
            "no merge asked, the user's kubeconfig was created"
        );
    }

    /// The seeds' layout: two exported files and `config` a symlink to one of them.
    #[test]
    fn merges_through_the_users_config_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs_err::write(d.join("k3s-public.yaml"), FOREIGN).expect("write");
        fs_err::set_permissions(
            d.join("k3s-public.yaml"),
            std::fs::Permissions::from_mode(0o400),
        )
        .expect("chmod");
        symlink("k3s-public.yaml", d.join("config")).expect("link");
        let export = export(&d.join("k3s-private.yaml"), true);
        let content = Secret::new(EXPORTED);
        check_local_files(std::slice::from_ref(&export), &d.join("config")).expect("readable");
        let result = write_export(&export, &content, &d.join("config")).expect("writes");
        assert!(result.merged.is_some());
        let meta = fs_err::symlink_metadata(d.join("config")).expect("exists");
        assert!(
            meta.file_type().is_symlink(),
            "config was replaced by a file"
        );
        let merged = fs_err::read_to_string(d.join("k3s-public.yaml")).expect("read");
        assert!(
            merged.contains("name: other") && merged.contains("name: lab-admin"),
            "{merged}"
        );
        let mode = fs_err::metadata(d.join("k3s-public.yaml"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400, "the stricter mode was not kept");
        assert!(is_up_to_date(&export, &content, &d.join("config")));
    }

    /// An export path that is a symlink is written through it as well.
    #[test]
    fn an_export_path_that_is_a_symlink_stays_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        symlink("real/admin.yaml", d.join("admin.yaml")).expect("link");
        let export = export(&d.join("admin.yaml"), false);
        write_export(&export, &Secret::new(EXPORTED), &d.join("none")).expect("writes");
        assert!(
            fs_err::symlink_metadata(d.join("admin.yaml"))
                .expect("exists")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs_err::read_to_string(d.join("real/admin.yaml")).expect("read"),
            EXPORTED
        );
    }

    #[test]
    fn an_unparsable_user_kubeconfig_is_refused_and_left_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let user = d.join("config");
        let garbage = b"clusters: [unclosed\n\tkey: : :\n";
        fs_err::write(&user, garbage).expect("write");
        let export = export(&d.join("admin.yaml"), true);
        let err = check_local_files(std::slice::from_ref(&export), &user).expect_err("refused");
        let said = err.to_string();
        assert!(said.contains(&user.display().to_string()), "{said}");
        assert!(said.contains("is not a kubeconfig"), "{said}");
        assert!(
            said.contains("merge: false") && said.contains("`admin`"),
            "{said}"
        );
        let err = write_export(&export, &Secret::new(EXPORTED), &user).expect_err("refused");
        assert!(err.to_string().contains("left untouched"), "{err}");
        assert_eq!(fs_err::read(&user).expect("read"), garbage);
        assert!(!is_up_to_date(&export, &Secret::new(EXPORTED), &user));
    }

    #[test]
    fn a_user_kubeconfig_that_cannot_be_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("config");
        fs_err::create_dir(&user).expect("a directory cannot be read as a file");
        let export = export(&dir.path().join("admin.yaml"), true);
        let err = write_export(&export, &Secret::new(EXPORTED), &user).expect_err("refused");
        let said = err.to_string();
        assert!(
            said.contains("cannot be read") && said.contains(&user.display().to_string()),
            "{said}"
        );
        assert!(user.is_dir());
    }

    #[test]
    fn an_export_path_holding_something_else_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        fs_err::write(&path, "- just\n- a list\n").expect("write");
        let export = export(&path, false);
        let err = check_local_files(std::slice::from_ref(&export), &dir.path().join("u"))
            .expect_err("refused");
        assert!(err.to_string().contains("another path"), "{err}");
        assert!(write_export(&export, &Secret::new(EXPORTED), &dir.path().join("u")).is_err());
        assert_eq!(
            fs_err::read_to_string(&path).expect("read"),
            "- just\n- a list\n"
        );
    }
}
