//! End to end on the lab with the stand-in: `k3sctl etcd snapshot` on one server. While the
//! server keeps its state in SQLite: `save` copies the store with K3s stopped (refused without
//! consent), `list` shows it, `etcd restore` takes the cluster back to it (a namespace created
//! after the snapshot is gone, the old store kept), also when k3sctl is killed (SIGKILL) part-way
//! (once right after the restore marker is written, once right after `server/db` is moved aside)
//! and run again, `prune` keeps the newest. After the server
//! is converted to embedded etcd
//! (`cluster-init` in a config.yaml.d drop-in, as K3s's docs describe), `save` takes K3s's
//! snapshot on the voter and names the file, `list` reads every server's snapshots from the
//! API (text and JSON), `prune` keeps the newest N of a prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/e2e.rs"]
#[allow(dead_code)]
mod e2e;

use e2e::{build_stand_in, k3sctl, k3sctl_unconfirmed, text};
use lab::{Lab, SpecOptions};

/// The restore marker on the server.
const MARKER: &str = "/var/lib/rancher/k3s/server/k3sctl-restore";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `k3sctl -o json etcd snapshot <args> -c SPEC`, which must succeed; its JSON.
fn snapshot_json(spec: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-o", "json", "etcd", "snapshot"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-c", spec]);
    let out = k3sctl(&all);
    assert!(out.status.success(), "{args:?}:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} json {e}"))
}

/// `prune --retention 1` removed one snapshot of the first server and kept one.
fn prune_keeping_one(spec: &str) -> serde_json::Value {
    let pruned = snapshot_json(spec, &["prune", "--retention", "1"]);
    assert_eq!(
        pruned[0]["removed"].as_array().map(Vec::len),
        Some(1),
        "{pruned}"
    );
    assert_eq!(
        pruned[0]["kept"].as_array().map(Vec::len),
        Some(1),
        "{pruned}"
    );
    pruned
}

/// Snapshot names hold Unix seconds: the next one must be taken in another second.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Starts `etcd restore ARCHIVE` and kills k3sctl (SIGKILL) as soon as `reached` holds on the
/// host's root file system (`root`, as seen from this machine), polled every 5 ms from here: an
/// ssh session to the host per poll would start later than a quick restore ends. Panics when the
/// restore ended by itself first.
fn restore_killed_when(
    root: &Path,
    spec: &str,
    archive: &str,
    what: &str,
    reached: impl Fn(&Path) -> bool,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env("K3SCTL_YES", "1")
        .args(["etcd", "restore", archive, "-c", spec])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("k3sctl runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached(root) {
        if let Some(status) = child.try_wait().expect("k3sctl's status") {
            panic!("the restore ended by itself ({status}) before {what}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the restore never reached {what} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill k3sctl");
    let status = child.wait().expect("k3sctl ends");
    assert_eq!(
        status.code(),
        None,
        "the restore ended by itself before {what}: {status}"
    );
}

/// `path` (absolute on the host) under the host's root as seen from this machine.
fn on_host(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[test]
fn snapshots_and_restore_on_sqlite_then_saved_listed_and_pruned_on_etcd() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let lab = Lab::boot("e2e-snap", 1).expect("lab boots");
    let host = lab.hosts()[0].name.clone();
    let spec = lab.dir().join("cluster.yaml");
    lab.write_spec(&spec, &SpecOptions::default())
        .expect("spec written");
    let spec_arg = spec.to_string_lossy().into_owned();
    let out = k3sctl(&["apply", "-c", &spec_arg]);
    assert!(out.status.success(), "apply:\n{}", text(&out));

    // SQLite: the store and token are copied with K3s stopped; without a terminal and without
    // --yes that stop is refused, and K3s keeps running.
    let started = |lab: &Lab| {
        lab.exec(
            &host,
            "systemctl show -p ExecMainStartTimestampMonotonic --value k3s",
        )
        .expect("k3s start time")
    };
    let before = started(&lab);
    let refused = k3sctl_unconfirmed(&["etcd", "snapshot", "save", "-c", &spec_arg]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("K3s stopped for the copy"),
        "{}",
        text(&refused)
    );
    assert_eq!(started(&lab), before, "nothing stopped without consent");
    let t = Instant::now();
    let saved = snapshot_json(&spec_arg, &["save"]);
    let sqlite_save = t.elapsed();
    let archive = saved["name"].as_str().unwrap_or("").to_string();
    assert!(
        archive.starts_with(&format!("on-demand-{host}-")) && archive.ends_with(".tar.gz"),
        "{saved}"
    );
    assert_eq!(
        saved["location"],
        format!("file:///var/lib/rancher/k3s/server/sqlite-snapshots/{archive}")
    );
    assert_ne!(
        started(&lab),
        before,
        "K3s was stopped for the copy and started again"
    );
    lab.exec(&host, "systemctl is-active k3s")
        .expect("k3s runs after the save");
    println!("k3sctl etcd snapshot save (SQLite, 1 server): {sqlite_save:?}");

    // After the snapshot: a namespace; the restore takes the cluster back to before it.
    lab.exec(&host, "k3s kubectl create namespace after-sqlite-snapshot")
        .expect("namespace created");
    let out = k3sctl(&["etcd", "snapshot", "list", "-c", &spec_arg]);
    assert!(out.status.success(), "SQLite list:\n{}", text(&out));
    assert!(stdout(&out).contains(&archive), "{}", stdout(&out));
    let out = k3sctl(&["etcd", "restore", &archive, "--dry-run", "-c", &spec_arg]);
    assert!(out.status.success(), "dry run:\n{}", text(&out));
    assert!(
        stdout(&out).contains("Restore of SQLite snapshot")
            && stdout(&out).contains("put the SQLite store of"),
        "{}",
        stdout(&out)
    );
    // Killed right after the marker is written (K3s being stopped), then again right after
    // server/db is moved aside (the snapshot's store going in): each time the marker stays.
    let root = lab.root_dir(&host).expect("host root");
    restore_killed_when(
        &root,
        &spec_arg,
        &archive,
        "the marker was written",
        |root| on_host(root, MARKER).exists(),
    );
    lab.exec(&host, &format!("test -e {MARKER}"))
        .expect("the marker stays after the first kill");
    restore_killed_when(
        &root,
        &spec_arg,
        &archive,
        "server/db was moved aside",
        |root| {
            fs_err::read_dir(on_host(root, "/var/lib/rancher/k3s/server"))
                .map(|entries| {
                    entries.flatten().any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("db-before-restore-")
                    })
                })
                .unwrap_or(false)
        },
    );
    lab.exec(&host, &format!("test -e {MARKER}"))
        .expect("the marker stays after the second kill");
    // The same command again finishes it.
    let t = Instant::now();
    let out = k3sctl(&["etcd", "restore", &archive, "-c", &spec_arg]);
    let sqlite_restore = t.elapsed();
    assert!(out.status.success(), "SQLite restore:\n{}", text(&out));
    assert!(
        stdout(&out).contains("restored the SQLite store from"),
        "{}",
        stdout(&out)
    );
    let gone = lab
        .exec(
            &host,
            "k3s kubectl get namespace after-sqlite-snapshot 2>&1 || true",
        )
        .unwrap_or_default();
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
    lab.exec(&host, "k3s kubectl get namespace kube-system")
        .expect("the restored store serves the API");
    let kept = lab
        .exec(
            &host,
            "ls -d /var/lib/rancher/k3s/server/db-before-restore-*",
        )
        .expect("the store before the restore is kept");
    assert_eq!(kept.lines().count(), 1, "{kept}");
    lab.exec(
        &host,
        &format!(
            "test -e {}/state.db || test -e {}/state",
            kept.trim(),
            kept.trim()
        ),
    )
    .expect("the store before the restore is the one kept");
    lab.exec(&host, "systemctl is-active k3s")
        .expect("k3s runs after the restore");
    lab.exec(&host, &format!("test ! -e {MARKER}"))
        .expect("the marker is gone");
    println!("k3sctl etcd restore (SQLite, 1 server, resumed after two kills): {sqlite_restore:?}");

    // A second SQLite snapshot; prune keeps the newest.
    next_second();
    snapshot_json(&spec_arg, &["save"]);
    let pruned = prune_keeping_one(&spec_arg);
    assert_eq!(
        pruned[0]["removed"],
        serde_json::json!([archive]),
        "{pruned}"
    );

    // The server converted to embedded etcd by hand, as K3s's docs do it.
    lab.exec(
        &host,
        "mkdir -p /etc/rancher/k3s/config.yaml.d && echo 'cluster-init: true' > /etc/rancher/k3s/config.yaml.d/90-etcd.yaml && systemctl restart k3s",
    )
    .expect("convert to etcd");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let voter = lab
            .exec(
                &host,
                &format!(
                    "k3s kubectl get node {host} -o jsonpath='{{.status.conditions[?(@.type==\"EtcdIsVoter\")].status}}' || true"
                ),
            )
            .unwrap_or_default();
        if voter.trim() == "True" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{host} never became an etcd voter"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // save: on the voter, K3s's name and file.
    let t = Instant::now();
    let out = k3sctl(&["etcd", "snapshot", "save", "-c", &spec_arg]);
    let save_time = t.elapsed();
    assert!(out.status.success(), "save:\n{}", text(&out));
    let line = stdout(&out);
    let prefix = format!("snapshot on-demand-{host}-");
    assert!(line.starts_with(&prefix), "{line}");
    assert!(
        line.contains(&format!(
            " saved on {host}: file:///var/lib/rancher/k3s/server/db/snapshots/on-demand-{host}-"
        )),
        "{line}"
    );
    let path = line
        .trim()
        .rsplit("file://")
        .next()
        .expect("path")
        .to_string();
    lab.exec(&host, &format!("test -s {path}"))
        .expect("the snapshot file exists and is not empty");
    println!("k3sctl etcd snapshot save (1 server, through ssh): {save_time:?}");

    next_second();
    let saved = snapshot_json(&spec_arg, &["save", "--name", "pre-upgrade"]);
    assert_eq!(saved["node"], host.as_str());
    assert!(
        saved["name"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("pre-upgrade-{host}-"))
    );
    assert!(saved["size"].as_u64().unwrap_or(0) > 0, "{saved}");
    next_second();
    snapshot_json(&spec_arg, &["save"]);

    // list: from the API, text and JSON.
    let out = k3sctl(&["etcd", "snapshot", "list", "-c", &spec_arg]);
    assert!(out.status.success(), "list:\n{}", text(&out));
    let table = stdout(&out);
    let head: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(head, vec!["NAME", "NODE", "SIZE", "CREATED", "LOCATION"]);
    assert_eq!(table.lines().count(), 4, "{table}");
    let list = snapshot_json(&spec_arg, &["list"]);
    let items = list.as_array().expect("array");
    assert_eq!(items.len(), 3, "{list}");
    assert!(items.iter().all(|i| i["node"] == host.as_str()));

    // prune deletes backups: without a terminal and without --yes it refuses, naming them.
    let refused = k3sctl_unconfirmed(&[
        "etcd",
        "snapshot",
        "prune",
        "-c",
        &spec_arg,
        "--retention",
        "1",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!(
            "- {host}: delete 1 of its 2 snapshot(s) named on-demand-*"
        )),
        "{}",
        text(&refused)
    );
    lab.exec(&host, &format!("test -e {path}"))
        .expect("nothing deleted without consent");

    // prune keeps the newest on-demand one; the other prefix stays.
    prune_keeping_one(&spec_arg);
    lab.exec(&host, &format!("test ! -e {path}"))
        .expect("the oldest on-demand snapshot is gone");
    let list = snapshot_json(&spec_arg, &["list"]);
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("pre-upgrade-")),
        "{names:?}"
    );
}
