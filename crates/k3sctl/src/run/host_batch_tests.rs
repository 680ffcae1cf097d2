//! The batch script run by a real `sh` on this machine, files in a temporary directory.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;

fn write(path: &Path, content: &[u8], mode: u32) -> Item {
    let sha = crate::host::hash::sha256_hex(content);
    Item {
        kind: "write-file",
        what: format!("writing {}", path.display()),
        script: shell::atomic_write_script(path, mode, &sha),
        stdin: content.to_vec(),
        write: Some((path.to_string_lossy().into_owned(), sha)),
        budget: QUICK,
    }
}

fn command(what: &str, script: &str) -> Item {
    Item::new("remove-file", what.into(), script.into())
}

fn run_sh(items: &[Item]) -> ExecOutput {
    let (script, stdin) = script(items);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stdin)
        .expect("feed");
    let out = child.wait_with_output().expect("wait");
    ExecOutput {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs_err::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("k3sctl-tmp"))
        .collect()
}

#[test]
fn every_file_gets_exactly_its_own_bytes_and_mode_and_each_step_its_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let contents: [&[u8]; 4] = [
        b"node-name: a\n",
        b"",
        b"K3S_TOKEN=\"K10secret\"\nno newline at the end",
        &[0, 1, 2, 255, b'\n', b'\'', b'"', b'$'],
    ];
    let mut items: Vec<Item> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| write(&dir.path().join(format!("sub/f{i}")), c, 0o640))
        .collect();
    let marker = dir.path().join("ran");
    items.insert(
        2,
        command(
            "touching",
            &format!("touch {}", quote(&marker.to_string_lossy())),
        ),
    );
    let out = run_sh(&items);
    assert!(out.success(), "{out:?}");
    let results = outcomes("h", &items, &out);
    assert_eq!(results.len(), 5, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r, Outcome::Done(Some(_)))),
        "{results:?}"
    );
    for (i, c) in contents.iter().enumerate() {
        let path = dir.path().join(format!("sub/f{i}"));
        assert_eq!(fs_err::read(&path).expect("read"), *c, "f{i}");
        let mode = fs_err::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
    assert!(marker.exists());
    assert!(leftovers(&dir.path().join("sub")).is_empty());
}

#[test]
fn a_failing_step_stops_the_batch_and_is_reported_with_its_own_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let items = vec![
        write(&a, b"first\n", 0o600),
        command("warning", "echo 'a warning of its own' >&2"),
        command("failing on purpose", "echo boom >&2\nexit 3"),
        write(&b, b"never\n", 0o600),
    ];
    let out = run_sh(&items);
    assert_eq!(out.status, Some(3));
    let results = outcomes("h", &items, &out);
    assert_eq!(results.len(), 3, "nothing after the failure: {results:?}");
    assert!(matches!(results[0], Outcome::Done(_)));
    assert!(matches!(results[1], Outcome::Done(_)));
    let Outcome::Failed(HostError::CommandFailed {
        host,
        what,
        status,
        stderr,
    }) = &results[2]
    else {
        panic!("{results:?}");
    };
    assert_eq!(
        (
            host.as_str(),
            what.as_str(),
            status.as_str(),
            stderr.as_str()
        ),
        ("h", "failing on purpose", "exit code 3", "boom")
    );
    assert_eq!(fs_err::read_to_string(&a).expect("a"), "first\n");
    assert!(!b.exists(), "the step after the failure ran");
}

#[test]
fn a_file_arriving_wrong_is_a_checksum_mismatch_of_that_file_and_the_target_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs_err::write(&b, "old").expect("old");
    let mut wrong = write(&b, b"new", 0o600);
    wrong.write = Some((b.to_string_lossy().into_owned(), "0".repeat(64)));
    wrong.script = shell::atomic_write_script(&b, 0o600, &"0".repeat(64));
    let items = vec![write(&a, b"a", 0o600), wrong];
    let out = run_sh(&items);
    let results = outcomes("h", &items, &out);
    assert!(
        matches!(&results[1], Outcome::Failed(HostError::ChecksumMismatch { remote, .. }) if remote == &b),
        "{results:?}"
    );
    assert_eq!(fs_err::read_to_string(&b).expect("b"), "old");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_batch_that_ends_early_fails_the_first_step_without_a_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let items = vec![
        write(&dir.path().join("a"), b"a", 0o600),
        command("killed", "kill -9 $$"),
        write(&dir.path().join("b"), b"b", 0o600),
    ];
    // The subshell's `$$` is the batch's shell: the whole batch dies after the first step.
    let out = run_sh(&items);
    assert_eq!(out.status, None, "{out:?}");
    let results = outcomes("h", &items, &out);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(matches!(results[0], Outcome::Done(_)));
    assert!(
        matches!(&results[1], Outcome::Failed(HostError::CommandFailed { what, status, .. })
            if what == "killed" && status == "killed by a signal"),
        "{results:?}"
    );
}

#[test]
fn a_description_cannot_end_the_header_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("injected");
    let mut item = command("x", "true");
    item.what = format!("x\ntouch {}", marker.display());
    let out = run_sh(&[item]);
    assert!(out.success(), "{out:?}");
    assert!(!marker.exists());
}

#[test]
fn only_script_steps_are_batched() {
    assert!(is_script_step(&Step::DaemonReload));
    assert!(is_script_step(&Step::Adopt {
        files: Default::default()
    }));
    assert!(!is_script_step(&Step::WriteFile {
        path: "/x".into(),
        mode: 0o600,
        diff: String::new(),
        create: true,
        content: FileContent::LocalFile {
            local: "/tmp/x".into(),
            sha256: "a".repeat(64),
        },
    }));
    assert!(!is_script_step(&Step::Restart { reason: "x".into() }));
}
