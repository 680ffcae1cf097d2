//! `k3s etcd-snapshot` against running local servers on embedded etcd: on-demand save (a real
//! etcd snapshot, checked with `etcdctl snapshot status`), ls in its three shapes, delete, prune,
//! scheduled snapshots with retention, `ETCDSnapshotFile` objects of every server in the API,
//! and the refusals (server stopped, no embedded etcd). Needs Debian's etcd-server and
//! etcd-client.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Cluster, server_token, wait_for};

// A server on embedded etcd, shared with the HA tests; snapshot helpers added below.
use common::etcd_server::EtcdServer as Srv;

fn server(c: &Cluster, name: &str, extra: &[&str]) -> Srv {
    Srv::new(c, name, "snap-secret", extra)
}

impl Srv {
    /// `k3s etcd-snapshot ARGS` on this node, asking its running server.
    fn snap(&self, args: &[&str]) -> Output {
        let url = self.url();
        Command::new(&self.node.binary)
            .arg("etcd-snapshot")
            .args(args)
            .args(["--etcd-server", &url])
            .env("K3S_SIM_ROOT", &self.node.root)
            .output()
            .expect("run k3s etcd-snapshot")
    }

    fn snap_ok(&self, args: &[&str]) -> (String, String) {
        let out = self.snap(args);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert!(out.status.success(), "etcd-snapshot {args:?}: {o}{e}");
        (o, e)
    }

    /// Runs `k3s server <args> <extra>` in the foreground to its exit: (code, log of this run).
    fn run_once(&mut self, extra: &[&str]) -> (Option<i32>, String) {
        let saved = self.node.args.clone();
        self.node.args.extend(extra.iter().map(|s| s.to_string()));
        let before = self.node.log().len();
        self.node.start();
        let code = self.node.wait_exit(Duration::from_secs(60));
        self.node.args = saved;
        (code, self.node.log()[before..].to_string())
    }

    fn snapshot_dir(&self) -> PathBuf {
        self.node.path("/var/lib/rancher/k3s/server/db/snapshots")
    }

    fn files(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = fs_err::read_dir(self.snapshot_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn saved_name(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("Snapshot ") && l.contains(" saved."))
        .unwrap_or_else(|| panic!("no 'Snapshot ... saved.' in {stderr}"));
    let after = &line[line.find("Snapshot ").expect("word") + 9..];
    after[..after.find(" saved.").expect("saved")].to_string()
}

fn etcdctl_status(file: &Path) -> serde_json::Value {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .expect("run etcdctl (apt-get install etcd-client)");
    assert!(
        out.status.success(),
        "etcdctl snapshot status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// (snapshotName, nodeName) of every ETCDSnapshotFile in the API.
fn api_snapshots(c: &Cluster, kc: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(kc, &["get", "etcdsnapshotfiles", "-o", "json"]))
            .expect("json");
    let mut out: Vec<(String, String)> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["spec"]["snapshotName"].as_str().unwrap_or("").to_string(),
                i["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn snapshots_on_demand_scheduled_and_in_the_api() {
    let c = Cluster::new();
    let mut s1 = server(
        &c,
        "s1",
        &[
            "--cluster-init",
            "--etcd-snapshot-schedule-cron",
            "@every 2s",
            "--etcd-snapshot-retention",
            "2",
        ],
    );
    s1.node.start();
    let kc1 = s1.ready(&c);
    c.kubectl_ok(&kc1, &["create", "namespace", "before-snapshot"]);

    // On demand: a real etcd snapshot under server/db/snapshots, named <name>-<node>-<ts>.
    let t = Instant::now();
    let (_, err) = s1.snap_ok(&["save"]);
    let save_ms = t.elapsed().as_millis();
    let name = saved_name(&err);
    let ts: i64 = name
        .strip_prefix("on-demand-s1-")
        .unwrap_or_else(|| panic!("{name}"))
        .parse()
        .expect("unix timestamp");
    assert!((ts - time_now()).abs() < 60, "{name}");
    let file = s1.snapshot_dir().join(&name);
    let status = etcdctl_status(&file);
    assert!(status["totalKey"].as_u64().unwrap_or(0) > 10, "{status}");
    println!("on-demand snapshot of a one-server cluster: {save_ms} ms (CLI round trip)");

    // ls: table, json (ETCDSnapshotFileList), yaml.
    let (table, _) = s1.snap_ok(&["ls"]);
    let head: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(head, vec!["Name", "Location", "Size", "Created"], "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} in {table}"));
    assert!(row.contains(&format!("file://{}", file.display())), "{row}");
    let (json, _) = s1.snap_ok(&["list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(list["apiVersion"], "k3s.cattle.io/v1");
    assert_eq!(list["kind"], "ETCDSnapshotFileList");
    let item = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["spec"]["snapshotName"] == name.as_str())
        .expect("item")
        .clone();
    assert_eq!(item["spec"]["nodeName"], "s1");
    assert_eq!(
        item["status"]["size"],
        fs_err::metadata(&file).expect("file").len().to_string()
    );
    let (yaml, _) = s1.snap_ok(&["l", "-o", "yaml"]);
    assert!(yaml.contains("kind: ETCDSnapshotFileList"), "{yaml}");

    // Scheduled: every 2 s, pruned to the newest 2 of this node.
    wait_for(
        "4 scheduled snapshots taken",
        Duration::from_secs(30),
        || {
            (s1.node
                .log()
                .matches("Saved etcd snapshot etcd-snapshot-s1-")
                .count()
                >= 4)
                .then_some(())
        },
    );
    wait_for("retention 2", Duration::from_secs(10), || {
        (s1.files("etcd-snapshot-s1-").len() == 2).then_some(())
    });

    // A second server: its snapshots appear in the API next to s1's.
    let token = server_token(&s1.node);
    let s1_url = s1.url();
    let mut s2 = server(
        &c,
        "s2",
        &[
            "--server",
            &s1_url,
            "--token",
            &token,
            "--etcd-disable-snapshots",
        ],
    );
    s2.node.start();
    let kc2 = s2.ready(&c);
    let (_, err2) = s2.snap_ok(&["save", "--name", "pre-upgrade"]);
    let name2 = saved_name(&err2);
    assert!(name2.starts_with("pre-upgrade-s2-"), "{name2}");
    wait_for(
        "both servers' snapshots in the API",
        Duration::from_secs(10),
        || {
            let all = api_snapshots(&c, &kc1);
            (all.contains(&(name.clone(), "s1".into()))
                && all.contains(&(name2.clone(), "s2".into())))
            .then_some(())
        },
    );
    assert!(
        s2.files("etcd-snapshot-").is_empty(),
        "s2 has snapshots disabled"
    );

    // prune keeps the newest N of a prefix on this node; delete removes by name.
    std::thread::sleep(Duration::from_millis(1100));
    let newer = saved_name(&s1.snap_ok(&["save"]).1);
    s1.snap_ok(&["prune", "--snapshot-retention", "1"]);
    assert_eq!(s1.files("on-demand-"), vec![newer.clone()]);
    wait_for("pruned object gone", Duration::from_secs(10), || {
        let all = api_snapshots(&c, &kc2);
        (!all.iter().any(|(n, _)| n == &name) && all.iter().any(|(n, _)| n == &newer)).then_some(())
    });
    let (_, del) = s1.snap_ok(&["delete", &newer]);
    assert!(del.contains(&format!("Snapshot {newer} deleted.")), "{del}");
    assert!(s1.files("on-demand-").is_empty());
    wait_for("deleted object gone", Duration::from_secs(10), || {
        (!api_snapshots(&c, &kc2).iter().any(|(n, _)| n == &newer)).then_some(())
    });

    // The CLI asks the running server: with K3s stopped it fails.
    s2.node.stop();
    let out = s2.snap(&["save"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s1.node.stop();

    // A server on the file store (no embedded etcd) refuses.
    let mut single = server(&c, "single", &[]);
    single.node.start();
    single.ready(&c);
    let out = single.snap(&["save"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("etcd datastore disabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn time_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("secs")
}

fn namespaces(c: &Cluster, kc: &Path) -> String {
    c.kubectl_ok(kc, &["get", "namespaces", "-o", "name"])
}

fn voters(s: &Srv, n: usize) {
    wait_for(&format!("{n} voters"), Duration::from_secs(45), || {
        let ms = s.members();
        (ms.len() == n && ms.iter().all(|(_, l)| !l)).then_some(())
    });
}

#[test]
fn cluster_reset_restores_a_snapshot_and_peers_rejoin_only_without_their_db() {
    let c = Cluster::new();
    let mut s1 = server(&c, "s1", &["--cluster-init", "--etcd-disable-snapshots"]);
    s1.node.start();
    let kc1 = s1.ready(&c);
    let token = server_token(&s1.node);
    let s1_url = s1.url();
    let mut s2 = server(
        &c,
        "s2",
        &[
            "--server",
            &s1_url,
            "--token",
            &token,
            "--etcd-disable-snapshots",
        ],
    );
    s2.node.start();
    s2.ready(&c);
    voters(&s1, 2);
    c.kubectl_ok(&kc1, &["create", "namespace", "kept"]);
    let name = saved_name(&s1.snap_ok(&["save"]).1);
    let snapshot = s1.snapshot_dir().join(&name);
    c.kubectl_ok(&kc1, &["create", "namespace", "after-snapshot"]);

    // The documented procedure: stop every server, reset on one from the snapshot.
    s2.node.stop();
    s1.node.stop();
    assert!(snapshot.is_file());
    // K3s refuses a reset while a server URL is set (s2 joined with --server).
    let (code, log) = s2.run_once(&["--cluster-reset"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("cannot perform cluster-reset while server URL is set"),
        "{log}"
    );
    // The path as K3s sees it on the host (the stand-in maps it below K3S_SIM_ROOT).
    let path = format!("/var/lib/rancher/k3s/server/db/snapshots/{name}");
    let t = Instant::now();
    let (code, log) = s1.run_once(&["--cluster-reset", "--cluster-reset-restore-path", &path]);
    let reset_ms = t.elapsed().as_millis();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes"),
        "{log}"
    );
    println!("cluster-reset with restore of a 2-server cluster's snapshot: {reset_ms} ms");
    let db = s1.node.path("/var/lib/rancher/k3s/server/db");
    assert!(db.join("reset-flag").is_file());
    let old: Vec<String> = fs_err::read_dir(&db)
        .expect("db")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("etcd-old-"))
        .collect();
    assert_eq!(old.len(), 1, "old data moved aside: {old:?}");
    // A second reset is refused while the flag is there.
    let (code, log) = s1.run_once(&["--cluster-reset", "--cluster-reset-restore-path", &path]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("cluster-reset was successfully performed"),
        "{log}"
    );

    // A normal start: the flag goes, the cluster has the snapshot's objects and one member.
    s1.node.start();
    let kc1 = s1.ready(&c);
    assert!(!db.join("reset-flag").exists());
    let ns = namespaces(&c, &kc1);
    assert!(
        ns.contains("namespace/kept") && !ns.contains("namespace/after-snapshot"),
        "{ns}"
    );
    assert_eq!(s1.members().len(), 1);

    // A peer still holding its old server/db does not rejoin: its etcd waits for the old cluster.
    let before = s2.node.log().len();
    s2.node.start();
    wait_for(
        "s2 waiting on its old cluster",
        Duration::from_secs(30),
        || {
            s2.node.log()[before..]
                .contains("Waiting for etcd to become available")
                .then_some(())
        },
    );
    assert_eq!(s1.members().len(), 1, "the stale peer must not join");
    s2.node.stop();
    // With server/db removed it joins as a new member.
    fs_err::remove_dir_all(s2.node.path("/var/lib/rancher/k3s/server/db")).expect("rm db");
    let t = Instant::now();
    s2.node.start();
    s2.ready(&c);
    voters(&s1, 2);
    println!(
        "peer rejoin after removing server/db: {} ms",
        t.elapsed().as_millis()
    );

    // Without a path, --cluster-reset shrinks to this member and keeps the data.
    s2.node.stop();
    s1.node.stop();
    let (code, log) = s1.run_once(&["--cluster-reset"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("restart without --cluster-reset flag now"),
        "{log}"
    );
    s1.node.start();
    let kc1 = s1.ready(&c);
    assert_eq!(s1.members().len(), 1);
    assert!(namespaces(&c, &kc1).contains("namespace/kept"));
}
