//! Behaviour every transport must show, run against each transport's edge test.

use std::path::Path;
use std::time::Duration;

use k3sctl::host::hash::sha256_hex;
use k3sctl::host::{ExecRequest, HostError, Transport, UploadRequest, UploadSource};

/// Runs every check; `scratch` is a directory the transport's host can write to.
pub async fn run_all(t: &dyn Transport, scratch: &Path) {
    exec_reports_stdout_stderr_and_exit_code(t).await;
    exec_feeds_stdin(t).await;
    exec_checked_fails_with_stderr(t).await;
    exec_times_out(t).await;
    sudo_exec_runs_as_root(t).await;
    upload_streams_verifies_and_renames(t, scratch).await;
    upload_with_wrong_hash_leaves_target(t, scratch).await;
    read_and_write_files(t, scratch).await;
}

async fn exec_reports_stdout_stderr_and_exit_code(t: &dyn Transport) {
    let out = t
        .exec(ExecRequest::new("echo out; echo err >&2; exit 7"))
        .await
        .expect("exec");
    assert_eq!(out.status, Some(7));
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    let quoting = t
        .exec(ExecRequest::new("printf '%s|' \"it's\" '$HOME' \"a  b\""))
        .await
        .expect("exec");
    assert_eq!(quoting.stdout_text(), "it's|$HOME|a  b|");
}

async fn exec_feeds_stdin(t: &dyn Transport) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let out = t
        .exec(ExecRequest::new("sha256sum | cut -d' ' -f1").stdin(data.clone()))
        .await
        .expect("exec");
    assert_eq!(out.stdout_text().trim(), sha256_hex(&data));
    // A command that ignores its stdin must not hang or fail the transport.
    let out = t
        .exec(ExecRequest::new("exit 0").stdin(data))
        .await
        .expect("exec ignoring stdin");
    assert!(out.success());
}

async fn exec_checked_fails_with_stderr(t: &dyn Transport) {
    let err = t
        .exec_checked(ExecRequest::new("echo boom >&2; exit 3").describe("the boom step"))
        .await
        .expect_err("fails");
    let msg = err.to_string();
    assert!(matches!(err, HostError::CommandFailed { .. }), "{msg}");
    assert!(msg.contains(t.name()), "{msg}");
    assert!(msg.contains("the boom step"), "{msg}");
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("boom"), "{msg}");
}

async fn exec_times_out(t: &dyn Transport) {
    let start = std::time::Instant::now();
    // A duration no other test uses, to find the process afterwards.
    let err = t
        .exec(ExecRequest::new("sleep 13.579").timeout(Some(Duration::from_millis(300))))
        .await
        .expect_err("times out");
    assert!(matches!(err, HostError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(4));
    // The host stops the command itself shortly after the caller gave up (bounded: 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = t
            .exec_checked(ExecRequest::new(
                "ps -eo args | grep -c '^sleep 13[.]579' || true",
            ))
            .await
            .expect("ps");
        if left.stdout_text().trim() == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed-out command still runs 5 s after the timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sudo_exec_runs_as_root(t: &dyn Transport) {
    let out = t
        .exec_checked(ExecRequest::new("id -u").sudo(true))
        .await
        .expect("sudo exec");
    assert_eq!(out.stdout_text().trim(), "0");
}

async fn upload_streams_verifies_and_renames(t: &dyn Transport, scratch: &Path) {
    let local = tempfile::NamedTempFile::new().expect("tmp");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    fs_err::write(local.path(), &data).expect("write local");
    let remote = scratch.join("bin dir/k3s");
    let sha = k3sctl::host::hash::sha256_file(local.path())
        .await
        .expect("hash");
    t.upload(UploadRequest {
        source: UploadSource::File(local.path().to_owned()),
        remote: remote.clone(),
        mode: 0o755,
        sha256: sha.clone(),
        timeout: Some(Duration::from_secs(60)),
    })
    .await
    .expect("upload");
    assert_eq!(t.file_sha256(&remote).await.expect("hash"), Some(sha));
    let mode = t
        .exec_checked(ExecRequest::new(format!(
            "stat -c %a {}",
            k3sctl::host::shell::quote_path(&remote)
        )))
        .await
        .expect("stat");
    assert_eq!(mode.stdout_text().trim(), "755");
    let leftovers = t
        .exec_checked(ExecRequest::new(format!(
            "ls -A {}",
            k3sctl::host::shell::quote_path(remote.parent().expect("parent"))
        )))
        .await
        .expect("ls");
    assert_eq!(leftovers.stdout_text(), "k3s\n", "no temp files left");
}

async fn upload_with_wrong_hash_leaves_target(t: &dyn Transport, scratch: &Path) {
    let remote = scratch.join("kept");
    t.write_file(&remote, b"original", 0o644)
        .await
        .expect("write");
    let err = t
        .upload(UploadRequest {
            source: UploadSource::Reader(Box::new(&b"tampered"[..])),
            remote: remote.clone(),
            mode: 0o644,
            sha256: sha256_hex(b"something else"),
            timeout: None,
        })
        .await
        .expect_err("mismatch");
    match &err {
        HostError::ChecksumMismatch { actual, .. } => assert_eq!(actual, &sha256_hex(b"tampered")),
        other => panic!("expected checksum mismatch, got {other}"),
    }
    assert_eq!(
        t.read_file(&remote).await.expect("read"),
        Some(b"original".to_vec())
    );
}

async fn read_and_write_files(t: &dyn Transport, scratch: &Path) {
    let path = scratch.join("etc/rancher/k3s/config.yaml");
    assert_eq!(t.read_file(&path).await.expect("read absent"), None);
    assert_eq!(t.file_sha256(&path).await.expect("hash absent"), None);
    let content = b"node-ip: 10.0.0.1\n\xff binary ok\n".to_vec();
    t.write_file(&path, &content, 0o600).await.expect("write");
    assert_eq!(
        t.read_file(&path).await.expect("read"),
        Some(content.clone())
    );
    assert_eq!(
        t.file_sha256(&path).await.expect("hash"),
        Some(sha256_hex(&content))
    );
    let mode = t
        .exec_checked(ExecRequest::new(format!(
            "stat -c %a {}",
            k3sctl::host::shell::quote_path(&path)
        )))
        .await
        .expect("stat");
    assert_eq!(mode.stdout_text().trim(), "600");
    let dir_mode = t
        .exec_checked(ExecRequest::new(format!(
            "stat -c %a {}",
            k3sctl::host::shell::quote_path(path.parent().expect("parent"))
        )))
        .await
        .expect("stat dir");
    assert_eq!(
        dir_mode.stdout_text().trim(),
        "755",
        "parents stay readable"
    );
    let unreadable = t
        .read_file(Path::new("/proc/self/nonexistent-dir/x"))
        .await
        .expect("absent path");
    assert_eq!(unreadable, None);
}
