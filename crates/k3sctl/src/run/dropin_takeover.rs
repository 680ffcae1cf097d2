//! Taking over a unit drop-in that replaces K3s's `ExecStart` on the host
//! ([`crate::k3s::unit_dropins::Takeover`]): the original copied to its backup (a name systemd
//! does not read), then the drop-in rewritten without its `ExecStart` lines, keeping its mode,
//! or moved to the backup. One shell script, atomic per file.

use base64::Engine;

use crate::host::shell::quote;
use crate::k3s::unit_dropins::Takeover;

/// The script that performs `takeover`.
pub fn script(takeover: &Takeover) -> String {
    let path = quote(&takeover.path);
    let backup = quote(&takeover.backup);
    match &takeover.rest {
        None => format!("set -e\nmv -f {path} {backup}\n"),
        Some(rest) => {
            let data = base64::engine::general_purpose::STANDARD.encode(rest);
            let new = quote(&format!("{}.k3sctl-new", takeover.path));
            format!(
                "set -e\ncp -p {path} {backup}\nprintf '%s' '{data}' | base64 -d > {new}\n\
                 chmod --reference={path} {new}\nmv -f {new} {path}\n"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn run(script: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .expect("sh runs");
        assert!(status.success(), "{script}");
    }

    #[test]
    fn a_drop_in_is_rewritten_without_exec_start_or_moved_aside_and_always_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("20-exec.conf");
        let original =
            "[Service]\nExecStart=\nExecStart=/usr/local/bin/k3s server --x\nEnvironment=A=1\n";
        fs_err::write(&path, original).expect("write");
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let p = path.to_string_lossy().into_owned();
        let rewrite = Takeover {
            path: p.clone(),
            backup: format!("{p}.before-k3sctl-1"),
            rest: Some("[Service]\nEnvironment=A=1\n".into()),
            exec_start: vec![],
        };
        run(&script(&rewrite));
        assert_eq!(
            fs_err::read_to_string(&path).expect("read"),
            "[Service]\nEnvironment=A=1\n"
        );
        let mode = fs_err::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            fs_err::read_to_string(&rewrite.backup).expect("backup"),
            original
        );
        let aside = Takeover {
            backup: format!("{p}.before-k3sctl-2"),
            rest: None,
            ..rewrite
        };
        run(&script(&aside));
        assert!(!path.exists());
        assert_eq!(
            fs_err::read_to_string(&aside.backup).expect("backup"),
            "[Service]\nEnvironment=A=1\n"
        );
    }
}
