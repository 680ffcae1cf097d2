//! After a successful upgrade: what the spec file says about the release, and, with
//! `--update-spec`, rewriting its `k3s.version` in place (only that scalar, see `spec::edit`).
//! The file is read again at the end (the user may have edited it during the rollout) and
//! replaced atomically; a file that cannot be read or edited is never written.

use std::path::Path;

use serde::Serialize;

use crate::k3s::version::K3sVersion;
use crate::ops::local_file::replace_file;
use crate::spec::edit::{VersionLine, replace_scalar, version_line};

/// The spec file's state after the upgrade, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SpecFollowUp {
    /// `k3s.version` already names the target.
    UpToDate {
        /// The spec file.
        file: String,
        /// The line of `k3s.version`.
        line: u64,
    },
    /// `--update-spec` rewrote `k3s.version`.
    Updated {
        /// The spec file.
        file: String,
        /// The line changed.
        line: u64,
        /// The version it said.
        from: String,
        /// The version it says now.
        to: String,
    },
    /// `k3s.version` still names the old release: the user should change this line.
    EditNeeded {
        /// The spec file.
        file: String,
        /// The line to change.
        line: u64,
        /// The version it says.
        from: String,
        /// The version to write.
        to: String,
    },
    /// The spec follows a channel, which plan and apply resolve at each run: nothing rewritten.
    Channel {
        /// The spec file.
        file: String,
        /// The line of `k3s.channel`.
        line: u64,
        /// The channel name.
        channel: String,
        /// The version the cluster now runs.
        to: String,
    },
    /// `--update-spec` was asked but the file could not be read or edited; it was not written.
    NotUpdated {
        /// The spec file.
        file: String,
        /// Why.
        reason: String,
        /// The version to write by hand.
        to: String,
    },
}

impl SpecFollowUp {
    /// Whether the user asked for something that did not happen.
    pub fn failed(&self) -> bool {
        matches!(self, Self::NotUpdated { .. })
    }
}

impl std::fmt::Display for SpecFollowUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UpToDate { file, line } => {
                write!(f, "the spec already names this version ({file}:{line})")
            }
            Self::Updated {
                file,
                line,
                from,
                to,
            } => write!(f, "spec updated: {file}:{line}: k3s.version {from} -> {to}"),
            Self::EditNeeded {
                file,
                line,
                from,
                to,
            } => write!(
                f,
                "the spec still says k3s.version {from}: change {file}:{line} to {to} (or re-run \
                 with --update-spec); until then plan and apply refuse to go back to {from}"
            ),
            Self::Channel {
                file,
                line,
                channel,
                to,
            } => write!(
                f,
                "the spec follows channel {channel} ({file}:{line}), which plan and apply resolve \
                 at each run; it was not rewritten. To stay at {to}, replace the channel there \
                 with version: {to}"
            ),
            Self::NotUpdated { file, reason, to } => write!(
                f,
                "--update-spec: {file} was not changed: {reason}; set k3s.version to {to} there \
                 by hand"
            ),
        }
    }
}

/// Looks at the spec file after an upgrade to `to` and, when `update` is set, rewrites its
/// `k3s.version`.
pub fn follow_up(path: &Path, to: &K3sVersion, update: bool) -> SpecFollowUp {
    let file = path.display().to_string();
    let not_updated = |reason: String| SpecFollowUp::NotUpdated {
        file: file.clone(),
        reason,
        to: to.to_string(),
    };
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(e) if update => return not_updated(format!("cannot read it: {e}")),
        // Without the flag, the message can still say what to change, without a line.
        Err(e) => return not_updated(format!("cannot read it to say which line: {e}")),
    };
    let (from, line) = match version_line(&text) {
        Ok(VersionLine::Version { text, position }) => (text, position.line),
        Ok(VersionLine::Channel { text, position }) => {
            return SpecFollowUp::Channel {
                file,
                line: position.line,
                channel: text,
                to: to.to_string(),
            };
        }
        Err(e) => return not_updated(format!("{e}")),
    };
    if from == to.to_string() {
        return SpecFollowUp::UpToDate { file, line };
    }
    if !update {
        return SpecFollowUp::EditNeeded {
            file,
            line,
            from,
            to: to.to_string(),
        };
    }
    let edited = match replace_scalar(&text, "spec.k3s.version", &to.to_string()) {
        Ok(edited) => edited,
        Err(e) => return not_updated(e.to_string()),
    };
    match replace_file(path, edited.as_bytes()) {
        Ok(()) => SpecFollowUp::Updated {
            file,
            line,
            from,
            to: to.to_string(),
        },
        Err(e) => not_updated(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SPEC: &str = "apiVersion: k3sctl.io/v1alpha1\nkind: Cluster\n# the lab\nspec:\n  k3s:\n    \
                        version: \"v1.33.1+k3s1\"  # pinned\n  hosts: []\n";

    fn v(text: &str) -> K3sVersion {
        text.parse().expect("version")
    }

    #[test]
    fn without_the_flag_it_names_the_line_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.yaml");
        fs_err::write(&path, SPEC).expect("write");
        let said = follow_up(&path, &v("v1.34.2+k3s1"), false);
        assert!(
            matches!(&said, SpecFollowUp::EditNeeded { line: 6, .. }),
            "{said:?}"
        );
        assert!(
            said.to_string()
                .contains(&format!("change {}:6 to v1.34.2+k3s1", path.display())),
            "{said}"
        );
        assert_eq!(fs_err::read_to_string(&path).expect("read"), SPEC);
    }

    #[test]
    fn with_the_flag_only_the_version_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.yaml");
        fs_err::write(&path, SPEC).expect("write");
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let said = follow_up(&path, &v("v1.34.2+k3s1"), true);
        assert!(
            matches!(&said, SpecFollowUp::Updated { line: 6, .. }),
            "{said:?}"
        );
        assert_eq!(
            fs_err::read_to_string(&path).expect("read"),
            SPEC.replace("v1.33.1+k3s1", "v1.34.2+k3s1")
        );
        let mode = fs_err::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // Once done, it is up to date.
        assert!(matches!(
            follow_up(&path, &v("v1.34.2+k3s1"), true),
            SpecFollowUp::UpToDate { line: 6, .. }
        ));
    }

    #[test]
    fn a_channel_is_said_not_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.yaml");
        let text = "spec:\n  k3s:\n    channel: stable\n";
        fs_err::write(&path, text).expect("write");
        let said = follow_up(&path, &v("v1.34.2+k3s1"), true);
        assert!(
            matches!(&said, SpecFollowUp::Channel { line: 3, .. }),
            "{said:?}"
        );
        assert!(said.to_string().contains("channel stable"), "{said}");
        assert_eq!(fs_err::read_to_string(&path).expect("read"), text);
    }

    #[test]
    fn a_file_it_cannot_read_or_edit_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("gone.yaml");
        let said = follow_up(&missing, &v("v1.34.2+k3s1"), true);
        assert!(said.failed(), "{said:?}");
        assert!(!missing.exists(), "a file was created");

        let broken = dir.path().join("broken.yaml");
        let text = "spec:\n  k3s: {version: v1.33.1+k3s1\n";
        fs_err::write(&broken, text).expect("write");
        let said = follow_up(&broken, &v("v1.34.2+k3s1"), true);
        assert!(said.failed(), "{said:?}");
        assert!(said.to_string().contains("by hand"), "{said}");
        assert_eq!(fs_err::read_to_string(&broken).expect("read"), text);
    }
}
