//! Staging the new binary ahead of a rollout: every node to upgrade receives it next to
//! /usr/local/bin/k3s (hosts in parallel, within the run's one upload limit, sha256 verified
//! there), so a node's own turn ([`crate::plan::Step::SwapBinary`]) only swaps it in with one
//! rename. Uploading is the biggest part of k3sctl's own time per node; staging takes it out of
//! the window in which the node is cordoned.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::binary_record::{RECORD_PATH, hash_snippet, record_script};
use super::context::Shared;
use super::events::{Event, EventKind};
use super::record::NodeFailure;
use super::upgrade_marker::{MARKER_PATH, UpgradeMarker, write_snippet};
use crate::host::{ExecRequest, HostError, Transport, UploadRequest, UploadSource, shell};
use crate::k3s::unit::BINARY_PATH;
use crate::plan::upgrade::{NodeAction, UpgradePlan};
use tokio::sync::Semaphore;

/// Where the new binary waits on a host (same directory as the binary: the swap is a rename).
pub const STAGED_PATH: &str = "/usr/local/bin/.k3s-k3sctl-staged";

/// Where k3sctl remembers the verified hash of the staged binary (keyed by its size, mtime,
/// ctime and inode, as [`crate::run::binary_record`] does for the installed one), so the swap
/// does not hash 70 MB again inside the node's cordoned window.
pub const STAGED_RECORD_PATH: &str = "/var/lib/k3sctl/k3s-staged.sha256";

/// The files the swap works on (the real ones in [`swap_script`]; temporary ones in tests).
struct SwapPaths<'a> {
    binary: &'a str,
    staged: &'a str,
    staged_record: &'a str,
    binary_record: &'a str,
    marker: &'a str,
}

const HOST_PATHS: SwapPaths<'static> = SwapPaths {
    binary: BINARY_PATH,
    staged: STAGED_PATH,
    staged_record: STAGED_RECORD_PATH,
    binary_record: RECORD_PATH,
    marker: MARKER_PATH,
};

/// The shell script that swaps the staged binary in: only when its sha256 is the expected one
/// (from the staging record while the file is unchanged, else hashed). After the rename the
/// installed binary's record is written, so the next `apply` does not hash it either.
/// With `marker` (the server the API goes through), the upgrade marker is written first, in the
/// same round trip; the script stops there when it cannot be written, so the binary is never
/// replaced without it.
/// Prints `swapped`, `present` (already the binary) or `missing`.
pub fn swap_script(sha256: &str, marker: Option<&UpgradeMarker>) -> String {
    swap_script_at(&HOST_PATHS, sha256, marker)
}

fn swap_script_at(p: &SwapPaths<'_>, sha256: &str, marker: Option<&UpgradeMarker>) -> String {
    let staged = shell::quote(p.staged);
    let staged_record = shell::quote(p.staged_record);
    let sha = shell::quote(sha256);
    format!(
        "{mark}{staged_hash}if [ -f {staged} ] && [ \"$bh\" = {sha} ]; then\n\
         mv -f {staged} {binary}\n{record}rm -f {staged_record}\necho swapped\n\
         else\n{binary_hash}if [ \"$bh\" = {sha} ]; then rm -f {staged} {staged_record}; echo present; \
         else echo missing; fi\nfi\n",
        mark = marker.map_or(String::new(), |m| write_snippet(p.marker, m)),
        staged_hash = hash_snippet(p.staged, p.staged_record),
        binary_hash = hash_snippet(p.binary, p.binary_record),
        binary = shell::quote(p.binary),
        record = record_script(p.binary, p.binary_record, sha256).replace("set -e\n", ""),
    )
}

async fn stage_one(
    transport: Arc<dyn Transport>,
    local: &Path,
    sha256: &str,
) -> Result<bool, String> {
    for path in [BINARY_PATH, STAGED_PATH] {
        let have = transport
            .file_sha256(Path::new(path))
            .await
            .map_err(|e| e.to_string())?;
        if have.as_deref() == Some(sha256) {
            if path == STAGED_PATH {
                remember_staged(transport.as_ref(), sha256).await?;
            }
            return Ok(false);
        }
    }
    transport
        .upload(UploadRequest {
            source: UploadSource::File(local.to_path_buf()),
            remote: STAGED_PATH.into(),
            mode: 0o755,
            sha256: sha256.to_string(),
            timeout: Some(Duration::from_secs(600)),
        })
        .await
        .map_err(|e| e.to_string())?;
    remember_staged(transport.as_ref(), sha256).await?;
    Ok(true)
}

/// Records the hash the host just verified for the staged binary.
async fn remember_staged(transport: &dyn Transport, sha256: &str) -> Result<(), String> {
    transport
        .exec_checked(
            ExecRequest::new(record_script(STAGED_PATH, STAGED_RECORD_PATH, sha256))
                .sudo(true)
                .describe("remembering the staged binary's hash"),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Stages the binary on every node the plan upgrades, within the run's upload limit. A failure
/// names the host; nothing has been cordoned or restarted yet.
pub async fn stage_all(
    plan: &UpgradePlan,
    transports: &BTreeMap<String, Arc<dyn Transport>>,
    shared: &Shared,
) -> Result<(), NodeFailure> {
    let started = Instant::now();
    let nodes: Vec<_> = plan
        .nodes()
        .filter(|n| matches!(n.action, NodeAction::Upgrade { .. }))
        .collect();
    let binaries = shared.rollout.as_ref().map(|r| &r.binaries);
    let results = join_all(nodes.iter().map(|node| async move {
        let fail = |error: String| NodeFailure {
            node: node.name.clone(),
            step: "stage-binary".into(),
            error,
            hint: None,
            journal: None,
        };
        let transport = transports
            .get(&node.name)
            .cloned()
            .ok_or_else(|| fail(format!("{}: no connection", node.name)))?;
        let (local, sha) = binaries
            .and_then(|b| b.get(&node.name))
            .ok_or_else(|| fail("no binary for this host's architecture".into()))?;
        let _permit = shared.uploads.acquire().await;
        stage_one(transport, local, sha).await.map_err(fail)
    }))
    .await;
    let mut uploaded = 0;
    for result in results {
        if result? {
            uploaded += 1;
        }
    }
    shared.reporter.report(
        Event::new(
            "cluster",
            "stage-binary",
            EventKind::Done,
            format!(
                "new binary staged on {uploaded} host(s) ({} already had it)",
                nodes.len() - uploaded
            ),
        )
        .took(started.elapsed()),
    );
    Ok(())
}

/// Puts the staged binary in place on one host; uploads it directly (within `uploads`, the
/// run's upload limit) when it is not staged. With `marker`, the upgrade marker is written
/// first in the same script (so also before a direct upload).
pub async fn swap_in(
    transport: &dyn Transport,
    local: &Path,
    sha256: &str,
    marker: Option<&UpgradeMarker>,
    uploads: &Semaphore,
) -> Result<&'static str, HostError> {
    let what = match marker {
        Some(_) => "writing the upgrade marker and putting the new k3s binary in place",
        None => "putting the new k3s binary in place",
    };
    let out = transport
        .exec_checked(
            ExecRequest::new(swap_script(sha256, marker))
                .sudo(true)
                .describe(what),
        )
        .await?;
    match out.stdout_text().trim() {
        "present" => Ok("already has the new binary"),
        "swapped" => Ok("replaced with the staged binary (sha256 verified)"),
        _ => {
            let _permit = uploads.acquire().await;
            transport
                .upload(UploadRequest {
                    source: UploadSource::File(local.to_path_buf()),
                    remote: BINARY_PATH.into(),
                    mode: 0o755,
                    sha256: sha256.to_string(),
                    timeout: Some(Duration::from_secs(600)),
                })
                .await?;
            Ok("replaced (uploaded now, sha256 verified)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The swap's files in a temporary directory: `k3s`, `staged`, their records under `rec/`,
    /// the marker at `marker`.
    struct Files {
        dir: tempfile::TempDir,
        binary: String,
        staged: String,
        staged_record: String,
        binary_record: String,
        marker: String,
    }

    impl Files {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let at = |name: &str| dir.path().join(name).display().to_string();
            Self {
                binary: at("k3s"),
                staged: at("staged"),
                staged_record: at("rec/staged.sha256"),
                binary_record: at("rec/binary.sha256"),
                marker: at("marker"),
                dir,
            }
        }

        fn paths(&self) -> SwapPaths<'_> {
            SwapPaths {
                binary: &self.binary,
                staged: &self.staged,
                staged_record: &self.staged_record,
                binary_record: &self.binary_record,
                marker: &self.marker,
            }
        }
    }

    /// Runs a script with sh, its trimmed stdout.
    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[tokio::test]
    async fn the_swap_only_uses_a_staged_file_with_the_right_hash() {
        let files = Files::new();
        let (binary, staged) = (&files.binary, &files.staged);
        let (br, mk) = (&files.binary_record, &files.marker);
        let script = swap_script_at(&files.paths(), &"a".repeat(64), None);
        fs_err::write(binary, b"old").expect("write");
        fs_err::write(staged, b"wrong").expect("write");
        assert_eq!(sh(&script), "missing");
        assert_eq!(fs_err::read(binary).expect("read"), b"old");
        let sha = crate::host::hash::sha256_hex(b"new");
        let script = script.replace(&"a".repeat(64), &sha);
        fs_err::write(staged, b"new").expect("write");
        assert_eq!(sh(&script), "swapped");
        assert_eq!(fs_err::read(binary).expect("read"), b"new");
        assert!(!std::path::Path::new(staged).exists());
        // The installed binary's record was written: its hash is not computed again.
        assert!(
            fs_err::read_to_string(br)
                .expect("binary record")
                .starts_with(&sha)
        );
        assert_eq!(sh(&script), "present");
        // No marker asked for, none written.
        assert!(!std::path::Path::new(mk).exists());
    }

    /// The first server's swap writes the recovery marker in its own script: present before the
    /// binary changes (also when the binary must be uploaded afterwards), and the binary left
    /// alone when the marker cannot be written.
    #[tokio::test]
    async fn the_marker_is_written_by_the_swap_before_the_binary_changes() {
        let files = Files::new();
        let dir = &files.dir;
        let (b, st) = (&files.binary, &files.staged);
        let marker = UpgradeMarker {
            from: "v1.33.5+k3s1".parse().expect("version"),
            to: "v1.34.1+k3s1".parse().expect("version"),
        };
        let sha = crate::host::hash::sha256_hex(b"new");
        // The marker's directory is a file: the marker cannot be written, nothing is swapped.
        let blocked = dir.path().join("blocked");
        fs_err::write(&blocked, b"").expect("write");
        let mk = blocked.join("k3sctl-upgrade").display().to_string();
        let paths = SwapPaths {
            marker: &mk,
            ..files.paths()
        };
        fs_err::write(b, b"old").expect("write");
        fs_err::write(st, b"new").expect("write");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(swap_script_at(&paths, &sha, Some(&marker)))
            .output()
            .expect("sh");
        assert_eq!(
            out.status.code(),
            Some(super::super::upgrade_marker::MARKER_EXIT)
        );
        assert_eq!(fs_err::read(b).expect("read"), b"old");
        assert_eq!(fs_err::read(st).expect("staged kept"), b"new");
        // Where it can be written: the marker is there, with the turn's versions, and swapped.
        let mk = dir
            .path()
            .join("k3s-state/k3sctl-upgrade")
            .display()
            .to_string();
        let paths = SwapPaths {
            marker: &mk,
            ..paths
        };
        assert_eq!(sh(&swap_script_at(&paths, &sha, Some(&marker))), "swapped");
        assert_eq!(fs_err::read(b).expect("read"), b"new");
        let text = fs_err::read_to_string(&mk).expect("marker");
        assert_eq!(UpgradeMarker::parse(&text), Some(marker));
        // Nothing staged (the binary will be uploaded after the script): the marker is written
        // all the same, before the caller's upload.
        fs_err::remove_file(&mk).expect("remove");
        let other = "0".repeat(64);
        assert_eq!(
            sh(&swap_script_at(&paths, &other, Some(&marker))),
            "missing"
        );
        assert!(std::path::Path::new(&mk).exists());
    }

    #[tokio::test]
    async fn a_staging_record_spares_the_hash_only_while_the_file_is_unchanged() {
        let files = Files::new();
        let paths = files.paths();
        let (b, st, sr, br) = (
            &files.binary,
            &files.staged,
            &files.staged_record,
            &files.binary_record,
        );
        fs_err::write(b, b"old").expect("write");
        fs_err::write(st, b"staged").expect("write");
        // A record claiming another hash for the unchanged staged file is believed: the swap
        // goes by the record (which only k3sctl writes, right after the host verified it)...
        let marker = "f".repeat(64);
        sh(&record_script(st, sr, &marker));
        assert_eq!(sh(&swap_script_at(&paths, &marker, None)), "swapped");
        // ...but not once the staged file changed: then it is hashed and refused.
        fs_err::remove_file(br).expect("forget the installed binary's record");
        fs_err::write(st, b"staged").expect("write");
        sh(&record_script(st, sr, &marker));
        fs_err::write(st, b"tampered!").expect("write");
        assert_eq!(sh(&swap_script_at(&paths, &marker, None)), "missing");
    }
}
