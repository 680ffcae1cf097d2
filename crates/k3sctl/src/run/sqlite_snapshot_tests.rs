use super::*;

/// Runs `script` with K3s's data directory moved into `root` and a `systemctl` that says the
/// unit is stopped and does everything else; returns (success, stdout, stderr).
fn run_in(root: &std::path::Path, script: &str) -> (bool, String, String) {
    let script = format!(
        "systemctl() {{ case \"$1\" in is-active) return 1;; *) return 0;; esac; }}\n{}",
        script.replace(DATA_DIR, &root.to_string_lossy())
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &std::path::Path, text: &str) {
    fs_err::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs_err::write(path, text).expect("write");
}

fn read(path: &std::path::Path) -> String {
    fs_err::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

#[test]
fn a_snapshot_is_saved_listed_checked_and_put_back_with_the_old_store_kept() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = root.path().join("server");
    write(&server.join("db/state.db"), "before");
    write(&server.join("db/state.db-wal"), "wal-before");
    write(&server.join("db/snapshots/etcd-one"), "not archived");
    write(&server.join("token"), "K10abc::server:secret");
    let (ok, out, err) = run_in(root.path(), &save_script("k3s", "on-demand", "s1"));
    assert!(ok, "save: {err}");
    let (path, size) = parse_saved(&out).expect("saved line");
    let name = path.rsplit('/').next().expect("name").to_string();
    assert!(
        name.starts_with("on-demand-s1-") && name.ends_with(SUFFIX),
        "{name}"
    );
    assert!(taken_at(&name).is_some_and(|t| t > 1_700_000_000), "{name}");
    assert!(size > 0);
    assert!(!std::path::Path::new(&format!("{path}.partial")).exists());

    let (ok, out, err) = run_in(root.path(), &list_script());
    assert!(ok, "list: {err}");
    let listed = parse_list(&out);
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0].name, name);
    assert_eq!(listed[0].size, size);
    assert!(listed[0].created.ends_with('Z'), "{:?}", listed[0]);

    // The store changes after the snapshot.
    write(&server.join("db/state.db"), "after");
    let (ok, out, _) = run_in(root.path(), &observe_lines(&path));
    assert!(ok);
    assert!(
        out.contains("sqlite_snapshot=") && out.contains("sqlite_complete=1"),
        "{out}"
    );
    assert!(out.contains("token=same"), "{out}");

    let aside = server.join("db-before-restore-7");
    let replace = replace_script("k3s", &path, &aside.to_string_lossy(), "7");
    let (ok, out, err) = run_in(root.path(), &replace);
    assert!(ok, "replace: {err}");
    assert!(!out.contains("token_restored"), "{out}");
    assert_eq!(read(&server.join("db/state.db")), "before");
    assert_eq!(read(&server.join("db/state.db-wal")), "wal-before");
    assert!(
        !server.join("db/snapshots").exists(),
        "etcd snapshots not archived"
    );
    assert_eq!(
        read(&aside.join("state.db")),
        "after",
        "the old store is kept"
    );
    assert!(!server.join("db-restoring-7").exists());

    // Run again (a re-run after an interruption): the kept store is not overwritten.
    let (ok, _, err) = run_in(root.path(), &replace);
    assert!(ok, "replace again: {err}");
    assert_eq!(read(&aside.join("state.db")), "after");
    assert_eq!(read(&server.join("db/state.db")), "before");

    // Another token on the server: seen (and refused by the planner); none: put back.
    write(&server.join("token"), "K10abc::server:rotated");
    let (_, out, _) = run_in(root.path(), &observe_lines(&path));
    assert!(out.contains("token=different"), "{out}");
    fs_err::remove_file(server.join("token")).expect("rm token");
    let (_, out, _) = run_in(root.path(), &observe_lines(&path));
    assert!(out.contains("token=missing"), "{out}");
    let (ok, out, err) = run_in(
        root.path(),
        &replace_script(
            "k3s",
            &path,
            &server.join("db-before-restore-8").to_string_lossy(),
            "8",
        ),
    );
    assert!(ok, "{err}");
    assert!(out.contains("token_restored=1"), "{out}");
    assert_eq!(read(&server.join("token")), "K10abc::server:secret");
}

#[test]
fn a_running_k3s_or_a_foreign_archive_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = root.path().join("server");
    write(&server.join("db/state.db"), "live");
    let running = format!(
        "systemctl() {{ return 0; }}\n{}",
        replace_script("k3s", "/nonexistent.tar.gz", "/nonexistent-aside", "1")
            .replace(DATA_DIR, &root.path().to_string_lossy())
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&running)
        .output()
        .expect("sh");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("k3s is running"));
    assert_eq!(read(&server.join("db/state.db")), "live");

    let foreign = root.path().join("foreign.tar.gz");
    write(&root.path().join("x/other"), "x");
    assert!(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(root.path().join("x"))
            .arg("-czf")
            .arg(&foreign)
            .arg("other")
            .status()
            .expect("tar")
            .success()
    );
    let (ok, out, _) = run_in(root.path(), &observe_lines(&foreign.to_string_lossy()));
    assert!(ok);
    assert!(
        out.contains("sqlite_snapshot=") && !out.contains("sqlite_complete"),
        "{out}"
    );
    // No token on the server: the save refuses before stopping anything.
    let (ok, _, err) = run_in(root.path(), &save_script("k3s", "x", "s1"));
    assert!(!ok && err.contains("token not found"), "{err}");
}

#[test]
fn the_probe_tells_sqlite_from_etcd() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = root.path().join("server");
    write(&server.join("db/state/registry/x.json"), "{}");
    let (_, out, _) = run_in(root.path(), &datastore_probe_script());
    assert!(probe_says_sqlite(&out), "the stand-in's file store: {out}");
    fs_err::create_dir_all(server.join("db/etcd/member/wal")).expect("mkdir");
    let (_, out, _) = run_in(root.path(), &datastore_probe_script());
    assert!(!probe_says_sqlite(&out), "etcd data: {out}");
}

#[test]
fn pruning_keeps_the_newest_of_a_prefix_on_a_node() {
    let names: Vec<String> = [
        "on-demand-s1-300.tar.gz",
        "on-demand-s1-100.tar.gz",
        "on-demand-s1-200.tar.gz",
        "pre-upgrade-s1-50.tar.gz",
        "on-demand-s10-10.tar.gz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        prune_choice(&names, "on-demand", "s1", 1),
        vec!["on-demand-s1-100.tar.gz", "on-demand-s1-200.tar.gz"]
    );
    assert!(prune_choice(&names, "on-demand", "s1", 5).is_empty());
    assert_eq!(taken_at("x-s1-12.tar.gz"), Some(12));
    assert_eq!(taken_at("x-s1-12"), None);
}
